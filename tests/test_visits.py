"""Visits from sightings: coverage, association, misses; real AIS stays; the CLI's inputs."""

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyogrio.raw import read

from detector.ais import read_ais
from detector.cli.main import main
from detector.errors import UsageError
from detector.sightings import load_sightings
from detector.visits import Acquisition, Sightings, _fit_stays, _stays, link_visits, outside_every_zone
from detector.zones import Zone, ZoneKind, load_zones
from tests.conftest import shared

T0 = datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
BERTH = Zone("berth", ZoneKind.BERTH, shapely.box(133.040, 42.740, 133.050, 42.744))


def sightings(rows: list[tuple[int, float, float]], length: float = 180.0) -> Sightings:
    a = np.array(rows, float).reshape(-1, 3)
    return Sightings(a[:, 0].astype(np.int64), a[:, 1], a[:, 2], np.full(len(a), length), np.full(len(a), "tanker", dtype=object))


def days(n: int) -> list[Acquisition]:
    return [Acquisition(T0 + timedelta(days=2 * i)) for i in range(n)]


def test_one_ship_seen_three_times_is_one_visit_with_bounds() -> None:
    acqs = days(6)
    s = sightings([(1, 133.045, 42.742), (2, 133.04502, 42.74201), (3, 133.04499, 42.742)])
    [v] = link_visits(acqs, s, [BERTH])
    assert (v.first_seen, v.last_seen, v.n_obs) == (acqs[1].time, acqs[3].time, 3)
    assert v.arrived_after == acqs[0].time
    # one observed absence (acq 4) is tolerated as a possible miss; the second (acq 5) ends the
    # visit, which departed before the first absence
    assert v.departed_before == acqs[4].time
    s2 = sightings([(1, 133.045, 42.742), (2, 133.045, 42.742)])
    [v2] = link_visits(acqs, s2, [BERTH])
    assert v2.departed_before == acqs[3].time


def test_an_unobserved_berth_neither_ends_nor_starts_a_visit() -> None:
    elsewhere = shapely.box(0, 0, 1, 1)
    acqs = [Acquisition(T0 + timedelta(days=i), elsewhere if i in (2, 3, 4) else None) for i in range(7)]
    s = sightings([(1, 133.045, 42.742), (5, 133.045, 42.742)])
    [v] = link_visits(acqs, s, [BERTH])
    assert v.n_obs == 2 and v.arrived_after == acqs[0].time


def test_a_cloud_over_the_berth_is_a_hole_in_the_footprint_not_an_empty_berth() -> None:
    scene = shapely.box(133.0, 42.7, 133.1, 42.8)
    cloudy = scene.difference(BERTH.polygon.buffer(0.002))  # the footprint of a scene with a cloud over the berth
    acqs = [Acquisition(T0 + timedelta(days=i), cloudy if i in (2, 3) else scene) for i in range(6)]
    s = sightings([(1, 133.045, 42.742), (4, 133.045, 42.742)])
    [v] = link_visits(acqs, s, [BERTH])  # two images saw nothing there, and did not see the berth at all
    assert (v.n_obs, v.first_seen, v.last_seen) == (2, acqs[1].time, acqs[4].time)
    clear = [Acquisition(a.time, scene) for a in acqs]  # the same images seeing the berth empty: two visits
    assert len(link_visits(clear, s, [BERTH])) == 2


def test_a_ship_leaving_and_another_arriving_are_two_visits() -> None:
    acqs = days(8)
    s = sightings([(0, 133.045, 42.742), (1, 133.045, 42.742), (4, 133.0451, 42.742), (5, 133.045, 42.742)])
    visits = link_visits(acqs, s, [BERTH])
    assert [(v.n_obs, v.departed_before) for v in visits] == [(2, acqs[2].time), (2, acqs[6].time)]
    # lengths that differ mean different ships, even at the same spot
    acqs = days(3)
    s = Sightings(
        np.array([0, 1]),
        np.array([133.045, 133.045]),
        np.array([42.742, 42.742]),
        np.array([180.0, 60.0]),
        np.array(["a", "b"], dtype=object),
    )
    assert len(link_visits(acqs, s, [BERTH])) == 2


def test_the_images_pull_a_wrong_stay_prior_toward_the_truth() -> None:
    # One berth over 1,200 days: stays lognormal (median 40 h, sigma 0.6), empty
    # spells exponential (mean 60 h), images 1-5 days apart.
    rng = np.random.default_rng(0)
    starts, ends, t = [], [], 0.0
    while t < 24 * 1200:
        stay = rng.lognormal(np.log(40), 0.6)
        starts.append(t)
        ends.append(t + stay)
        t += stay + rng.exponential(60)
    looks = np.cumsum(rng.integers(1, 6, 400) * 24.0)
    i = np.searchsorted(starts, looks, "right") - 1
    occupied = (i >= 0) & (looks < np.array(ends)[i])
    gaps, still = np.diff(looks)[occupied[:-1]], occupied[1:][occupied[:-1]]
    busy = np.full(len(gaps), occupied.mean())
    truth = _stays(np.array([72.0]), np.log(40), 0.6)[0]
    for median_h in (10.0, 100.0):
        fitted = _fit_stays(np.log(median_h), 1.0, gaps, still, busy)
        before, after = _stays(np.array([72.0]), np.log(median_h), 1.0)[0], _stays(np.array([72.0]), *fitted)[0]
        assert abs(after - truth) < abs(before - truth) / 2, (median_h, before, after, truth)


def test_global_assignment_beats_greedy() -> None:
    # Two ships 60 m apart; each moves 40 m. Greedy nearest-first would cross them.
    acqs = days(2)
    d = 1 / 111_000
    s = sightings(
        [
            (0, 133.045, 42.742),
            (0, 133.045 + 60 * d / 0.734, 42.742),
            (1, 133.045 + 35 * d / 0.734, 42.742),
            (1, 133.045 + 100 * d / 0.734, 42.742),
        ]
    )
    visits = link_visits(acqs, s, [BERTH])
    assert len(visits) == 2 and sorted(len(v.sightings) for v in visits) == [2, 2]
    assert {tuple(v.sightings) for v in visits} == {(0, 2), (1, 3)}


def test_real_ais_stays_sampled_every_12_hours() -> None:
    tracks = read_ais(shared("ais", "gfw-sample"))
    zones = [
        Zone("Singapore anchorage", ZoneKind.ANCHORAGE, shapely.box(103.50, 1.22, 103.56, 1.27)),
        Zone("Vancouver", ZoneKind.PORT, shapely.box(-122.97, 49.15, -122.87, 49.22)),
        Zone("Tacoma", ZoneKind.PORT, shapely.box(-122.52, 47.30, -122.42, 47.37)),
        Zone("Fujairah", ZoneKind.PORT, shapely.box(56.42, 25.17, 56.52, 25.27)),
        Zone("Jebel Ali", ZoneKind.PORT, shapely.box(52.48, 24.36, 52.58, 24.46)),
    ]
    times = [datetime(2017, 9, 21, tzinfo=UTC) + timedelta(hours=12 * i) for i in range(7)]
    rows = []
    for i, when in enumerate(times):
        _, lon, lat = tracks.at(when)  # anonymous: identities dropped
        rows += [(i, x, y) for x, y in zip(lon, lat, strict=True)]
    s = Sightings(
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        np.full(len(rows), np.nan),
        np.full(len(rows), "ship", dtype=object),
    )
    visits = link_visits([Acquisition(t) for t in times], s, zones)
    by_zone = {z.name: [v for v in visits if v.zone == z.name] for z in zones}
    [grace] = by_zone["Singapore anchorage"]  # GRACE STAR's 3-day stay is one visit
    assert grace.n_obs == len(times) and grace.first_seen == times[0]
    # each real stay sampled at least once is one visit; none is split
    for name in ("Vancouver", "Tacoma"):
        assert len(by_zone[name]) == 1, name
    assert all(len(v) <= 1 for v in by_zone.values())


def test_zone_file_errors(tmp_path: Path) -> None:
    def write(features: list) -> Path:
        p = tmp_path / "zones.geojson"
        p.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        return p

    bowtie = {"type": "Polygon", "coordinates": [[[133, 42], [133.1, 42.1], [133.1, 42], [133, 42.1], [133, 42]]]}
    with pytest.raises(UsageError, match=r"zone 'B1' is an invalid polygon.*Self-intersection"):
        load_zones(write([{"type": "Feature", "properties": {"name": "B1", "kind": "berth"}, "geometry": bowtie}]))
    box = shapely.geometry.mapping(shapely.box(133, 42, 133.1, 42.1))
    with pytest.raises(UsageError, match="kind 'dock'"):
        load_zones(write([{"type": "Feature", "properties": {"name": "B1", "kind": "dock"}, "geometry": box}]))
    with pytest.raises(UsageError, match="named twice"):
        load_zones(write([{"type": "Feature", "properties": {"name": "B", "kind": "berth"}, "geometry": box}] * 2))
    assert {z.kind for z in load_zones()} == set(ZoneKind)  # the shipped default


def test_detection_file_errors_name_the_row(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("acquired_at,lon,lat\n2024-05-01T01:30:00Z,133.045,42.742\n,133.0,42.7\n")
    with pytest.raises(UsageError, match=r"d\.csv:3: no acquired_at"):
        load_sightings(detections=p)
    p.write_text("acquired_at,lon,lat\n2024-05-01T01:30:00Z,133.045,42.742\n2024-05-03T01:30:00,133.0,42.7\n")
    with pytest.raises(UsageError, match=r"d\.csv:3: .*mixes times"):
        load_sightings(detections=p)
    p.write_text("acquired_at,lon,lat\n05/01/2024,133.045,42.742\n")
    with pytest.raises(UsageError, match=r"d\.csv:2: .*not ISO 8601"):
        load_sightings(detections=p)
    g = tmp_path / "d.geojson"
    g.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32653"}},
                "features": [],
            }
        )
    )
    with pytest.raises(UsageError, match="not lon/lat"):
        load_sightings(detections=g)


def test_visits_cli_on_a_detections_csv(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    rows = ["acquired_at,lon,lat,length_m,class"]
    for i in range(4):
        rows.append(f"{(T0 + timedelta(days=2 * i)).isoformat().replace('+00:00', 'Z')},133.0435,42.7420,180,ship")
    p.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main(["visits", "--detections", str(p), "--out", str(out), "--period", "month"]) == 0
    visits = (out / "visits.csv").read_text().splitlines()
    assert visits[0].startswith("visit_id,zone,class,first_seen,last_seen,n_obs,lon,lat,length_m,arrived_after,departed_before,")
    assert {"tanker_prob", "mmsi", "dark", "barrels_low", "barrels_high"} <= set(visits[0].split(","))
    zones = sorted(line.split(",")[1] for line in visits[1:])
    assert zones == ["Oil berth 1", "Oil products terminal", "Vostochny port"]
    assert "Oil berth 1,2024-05,tanker,1," in (out / "visit_counts.csv").read_text()  # a 180 m ship at an oil berth

    # Seen in all 4 images: with recall 0.5 the vessel could have been missed in all of them one time in 16.
    def estimated(path: Path) -> float:
        return next(float(r["estimated"]) for r in csv.DictReader(path.open()) if r["zone"] == "Oil berth 1")

    sure = estimated(out / "visit_counts.csv")
    assert main(["visits", "--detections", str(p), "--out", str(tmp_path / "half"), "--recall", "0.5", "--period", "month"]) == 0
    assert estimated(tmp_path / "half" / "visit_counts.csv") == pytest.approx(sure / (1 - 0.5**4), abs=0.01)
    assert json.loads((out / "visits.geojson").read_text())["features"]
    # the GeoPackage: the three visits as points with the CSV's columns, the zones with their counts
    _, _, points, columns = read(out / "visits.gpkg", layer="visits")
    assert sorted(columns[1].tolist()) == zones and columns[3][0] == np.datetime64("2024-05-01T01:30")
    assert shapely.from_wkb(points[0]).equals_exact(shapely.Point(133.0435, 42.7420), 1e-6)
    _, _, _, (names, _, _, linked, _) = read(out / "visits.gpkg", layer="zones")
    assert dict(zip(names, linked, strict=True))["Oil berth 1"] == 1 and int(linked.sum()) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("acquired_at,lon,lat\n2024-05-01T01:30:00Z,533.0,42.7\n")
    assert main(["visits", "--detections", str(bad), "--out", str(out)]) == 2


def test_images_and_detections_outside_every_zone_are_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    genoa = shapely.box(8.85, 44.38, 8.95, 44.42)  # another port's footprint
    ship_there = sightings([(0, 8.9, 44.4)])
    assert outside_every_zone([Acquisition(T0, genoa)], ship_there, [BERTH])
    assert outside_every_zone([Acquisition(T0, genoa)], sightings([]), [BERTH])  # nothing found, and nothing looked at the berth
    assert not outside_every_zone([Acquisition(T0, genoa.union(BERTH.polygon))], ship_there, [BERTH])  # the berth was seen, empty
    assert not outside_every_zone([Acquisition(T0)], sightings([(0, 133.045, 42.742)]), [BERTH])  # a ship at the berth
    assert outside_every_zone([Acquisition(T0)], ship_there, [BERTH])  # no footprint: the detections tell
    assert not outside_every_zone([Acquisition(T0)], sightings([]), [BERTH])  # no footprint, no detection: nothing to tell by
    p = tmp_path / "genoa.csv"
    p.write_text("acquired_at,lon,lat,length_m,class\n2023-07-10T10:20:00Z,8.9,44.4,120,ship\n")
    assert main(["visits", "--detections", str(p), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "warning: no image (1) and no detection (1) lies in any zone of the default, Vostochny's" in err
    capsys.readouterr()
    vostochny = tmp_path / "vostochny.csv"
    vostochny.write_text("acquired_at,lon,lat,length_m,class\n2024-05-01T01:30:00Z,133.0435,42.7420,180,ship\n")
    assert main(["visits", "--detections", str(vostochny), "--out", str(tmp_path / "out2")]) == 0
    assert "warning" not in capsys.readouterr().err
