"""``shipwatch report (--db FILE | --visits DIR) --out DIR``."""

from __future__ import annotations

from pathlib import Path

import click

from detector.ais import read_ais
from detector.cli.visits import detector_rates, warn_if_outside_zones
from detector.errors import UsageError
from detector.evidence import read_watchlist, visits_with_evidence
from detector.export import read_visits
from detector.report import ReportInput, write_report
from detector.review import review_stats
from detector.sightings import load_store
from detector.store import Store
from detector.zones import load_zones


@click.command()
@click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), help="A Shipwatch store: visits are counted from it, with pictures."
)
@click.option(
    "--visits",
    "visits_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder from shipwatch visits (no pictures).",
)
@click.option("--zones", type=click.Path(dir_okay=False, path_type=Path), help="Zones GeoJSON [default: Vostochny, approximate].")
@click.option("--ais", type=click.Path(exists=True, path_type=Path), help="AIS file or folder (with --db).")
@click.option("--watchlist", type=click.Path(dir_okay=False, path_type=Path), help="Watchlist CSV (with --db).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@detector_rates
def report(
    db: Path | None,
    visits_dir: Path | None,
    zones: Path | None,
    ais: Path | None,
    watchlist: Path | None,
    out_dir: Path,
    recall: float,
    precision: float,
) -> None:
    """Write OUT/report.html: a self-contained page (no network) with charts, a quicklook, crops and evidence."""
    if (db is None) == (visits_dir is None):
        raise UsageError("pass exactly one of --db and --visits")
    zone_list = load_zones(zones)
    if db is not None:
        store = load_store(db)
        tracks = read_ais(ais) if ais else None
        vessels = read_watchlist(watchlist) if watchlist else []
        warn_if_outside_zones(store.acquisitions, store.sightings, zone_list, zones)
        found = visits_with_evidence(store.acquisitions, store.sightings, zone_list, None, tracks, vessels)
        with Store(db) as opened:
            stats = review_stats(opened)
        path = write_report(ReportInput(found, zone_list, store, review=stats, recall=recall, precision=precision), out_dir)
    else:
        csv_path = visits_dir / "visits.csv"  # type: ignore[operator]
        if not csv_path.is_file():
            raise UsageError(f"{csv_path}: not found; pass the --out folder of shipwatch visits")
        path = write_report(ReportInput(read_visits(csv_path), zone_list, recall=recall, precision=precision), out_dir)
    click.echo(f"report -> {path}")
