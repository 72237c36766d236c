"""AIS cross-check, dark visits, watchlist candidates and cargo estimates."""

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from detector.ais import read_ais
from detector.cli.main import main
from detector.errors import UsageError
from detector.evidence import barrels, candidates, read_watchlist
from tests.conftest import REPO, shared

GRACE_STAR = 567532000


def test_real_ais_match_and_a_dark_detection(tmp_path: Path) -> None:
    tracks = read_ais(shared("ais", "gfw-sample"))
    times = [datetime(2017, 9, 21, 12, tzinfo=UTC), datetime(2017, 9, 22, 12, tzinfo=UTC)]
    rows = ["acquired_at,lon,lat,length_m,beam_m"]
    for t in times:
        ids, lon, lat = tracks.at(t)
        k = list(ids).index(GRACE_STAR)
        stamp = t.isoformat().replace("+00:00", "Z")
        rows.append(f"{stamp},{lon[k]},{lat[k]},180,32")
        rows.append(f"{stamp},{lon[k] + 0.045},{lat[k]},120,20")  # ~5 km east: no AIS there
    det = tmp_path / "det.csv"
    det.write_text("\n".join(rows) + "\n")
    zones = tmp_path / "zones.geojson"
    box = [[103.45, 1.20], [103.62, 1.20], [103.62, 1.30], [103.45, 1.30], [103.45, 1.20]]
    zones.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Singapore anchorage", "kind": "anchorage"}, "geometry": {"type": "Polygon", "coordinates": [box]}}]}))  # fmt: skip
    out = tmp_path / "out"
    code = main(["visits", "--detections", str(det), "--zones", str(zones), "--ais", str(shared("ais", "gfw-sample")),
                 "--watchlist", str(REPO / "examples" / "watchlist.csv"), "--out", str(out)])  # fmt: skip
    assert code == 0
    visits = list(csv.DictReader((out / "visits.csv").open()))
    assert {"tanker_prob", "mmsi", "dark", "barrels_low", "barrels_high"} <= set(visits[0])
    grace = [v for v in visits if v["mmsi"] == str(GRACE_STAR)]
    assert len(grace) == 1 and grace[0]["dark"] == "false" and grace[0]["n_obs"] == "2"
    dark = [v for v in visits if v["dark"] == "true"]
    assert len(dark) == 1 and dark[0]["mmsi"] == ""
    assert "EXAMPLE TANKER TWO" in grace[0]["candidates"].split(";")[0]  # 180 x 32 m


def test_bad_ais_and_watchlist_files_name_the_line(tmp_path: Path) -> None:
    cases = [
        (read_ais, "ais.csv", "mmsi,lon,lat\n1,2,3\n", r"ais\.csv:1: missing column"),
        (read_ais, "ais.csv", "mmsi,timestamp,lon,lat\n1,2024-05-01T00:00:00Z,133.0,42.7\n2,yesterday,133.0,42.7\n",
         r"ais\.csv:3: time 'yesterday'"),
        (read_ais, "ais.csv", "mmsi,timestamp,lon,lat\n1,2024-05-01T00:00:00Z,233.0,42.7\n", r"ais\.csv:2: lon 233.0 is out of range"),
        (read_watchlist, "w.csv", "name,imo,mmsi,length_m\nX,1,2,100\n", r"w\.csv:1: missing column"),
        (read_watchlist, "w.csv", "name,imo,mmsi,length_m,beam_m,type,flag,sanctioned\nX,1,2,long,30,t,f,true\n",
         r"w\.csv:2: length_m 'long'"),
    ]  # fmt: skip
    for read, name, text, error in cases:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(UsageError, match=error):
            read(path)


def test_candidates_and_cargo() -> None:
    vessels = read_watchlist(REPO / "examples" / "watchlist.csv")
    ranked = candidates(104.0, 17.5, None, vessels)
    assert ranked[0][0].name == "EXAMPLE TANKER ONE"
    assert candidates(104.0, 17.5, 3, vessels)[0][0].name == "EXAMPLE BULKER"  # an AIS match comes first
    low, high = barrels(183.0)
    # an MR product tanker (183 m, about 50,000 t deadweight) carries about 350,000-400,000 barrels
    assert low < 380_000 < high and high / low < 2.5


def test_ais_ship_type_is_evidence() -> None:
    from detector.classify import TankerModel

    model = TankerModel()
    at_anchor = model(length_m=180.0, beam_m=30.0)
    assert model(length_m=180.0, beam_m=30.0, ais_type=80).tanker_prob > 0.9 > at_anchor.tanker_prob
    assert model(length_m=180.0, beam_m=30.0, ais_type=70).tanker_prob < at_anchor.tanker_prob
