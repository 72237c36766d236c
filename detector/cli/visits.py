"""``shipwatch visits (--db FILE | --detections FILE) [--zones FILE] --out DIR``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click

from detector.ais import read_ais
from detector.classify import TankerModel
from detector.evidence import read_watchlist, visits_with_evidence
from detector.export import write_visits
from detector.gpkg import visit_layers, write_gpkg
from detector.sightings import load_sightings
from detector.visits import Acquisition, Sightings, outside_every_zone, zone_totals
from detector.zones import Zone, load_zones


def warn_if_outside_zones(
    acquisitions: Sequence[Acquisition], sightings: Sightings, zones: Sequence[Zone], path: Path | None
) -> None:
    """Say so on stderr when no image or detection meets the zones: every count would be 0 for that reason alone."""
    if outside_every_zone(acquisitions, sightings, zones):
        which = str(path) if path else "the default, Vostochny's"
        click.echo(
            f"warning: no image ({len(acquisitions)}) and no detection ({len(sightings.acq)}) lies in any zone of {which}; "
            "the zones are likely another port's: pass --zones with a GeoJSON of your port's (polygons with name and kind)",
            err=True,
        )


def detector_rates(command: Callable[..., None]) -> Callable[..., None]:
    """--recall and --precision: what the counts' estimate needs to know of the detector."""
    command = click.option(
        "--precision",
        type=click.FloatRange(0, 1, min_open=True),
        default=1.0,
        show_default=True,
        help="The detector's precision at its threshold: the estimate discounts its false alarms.",
    )(command)
    return click.option(
        "--recall",
        type=click.FloatRange(0, 1, min_open=True),
        default=1.0,
        show_default=True,
        help="The detector's recall at its threshold, for imagery like yours (its model card): "
        "the estimated count makes up for the visits it missed.",
    )(command)


@click.command()
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="A Shipwatch store (from shipwatch detect).")
@click.option("--detections", type=click.Path(dir_okay=False, path_type=Path), help="A detections CSV or GeoJSON.")
@click.option("--zones", type=click.Path(dir_okay=False, path_type=Path), help="Zones GeoJSON [default: Vostochny, approximate].")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--period", type=click.Choice(["week", "month"]), default="week", show_default=True)
@click.option(
    "--ais",
    type=click.Path(exists=True, path_type=Path),
    help="AIS: GFW NDJSON, MarineCadastre CSV or mmsi,timestamp,lon,lat CSV (file or folder).",
)
@click.option("--watchlist", type=click.Path(dir_okay=False, path_type=Path), help="Watchlist CSV (see examples/watchlist.csv).")
@click.option(
    "--classify",
    "classify_config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Tanker evidence config [default: built in].",
)
@detector_rates
def visits(
    db: Path | None,
    detections: Path | None,
    zones: Path | None,
    out_dir: Path,
    period: str,
    ais: Path | None,
    watchlist: Path | None,
    classify_config: Path | None,
    recall: float,
    precision: float,
) -> None:
    """Link detections across acquisitions into visits per zone and count them.

    Each visit gets a tanker probability (with its evidence), and with --ais an MMSI and a dark flag,
    with --watchlist ranked candidates; tanker visits get a cargo estimate in barrels.
    Writes OUT/visits.csv, OUT/visit_counts.csv, OUT/visits.geojson and OUT/visits.gpkg (visits and
    zones with their counts). Counts come twice: the visits linked, and the number estimated from them
    given the detector's --recall and --precision and the chance that each link joined two vessels.
    """
    zone_list = load_zones(zones)
    acquisitions, sightings = load_sightings(db, detections)
    tracks = read_ais(ais) if ais else None
    vessels = read_watchlist(watchlist) if watchlist else []
    warn_if_outside_zones(acquisitions, sightings, zone_list, zones)
    found = visits_with_evidence(acquisitions, sightings, zone_list, TankerModel(classify_config), tracks, vessels)
    paths = (
        *write_visits(out_dir, found, period, recall, precision),
        write_gpkg(out_dir / "visits.gpkg", visit_layers(found, zone_list, recall, precision)),
    )
    click.echo(
        f"{len(found)} visits from {len(sightings.acq)} detections in {len(acquisitions)} acquisitions -> {', '.join(map(str, paths))}"
    )
    totals = zone_totals(found, recall, precision)
    for zone in zone_list:
        linked, estimated = totals.get(zone.name, (0, 0.0))
        click.echo(f"  {zone.name} ({zone.kind.value}): {linked} linked, {estimated:.1f} estimated")
