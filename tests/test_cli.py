"""The ``shipwatch detect`` command end to end, with the real weights on small scenes."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from detector.cli.main import main
from tests.conftest import DATA, REPO, shipwatch

MARINA = DATA / "marina_0p3m.tif"
pytestmark = pytest.mark.real_model


def test_bad_inputs_fail_one_line_each_and_good_scenes_still_run(tmp_path: Path, make_geotiff) -> None:
    empty = tmp_path / "empty.tif"
    empty.touch()
    text = tmp_path / "notes.tif"
    text.write_text("not a raster\n" * 20)
    good_big = make_geotiff("big.tif", width=300, height=300)
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(good_big.read_bytes()[:40000])
    nocrs = make_geotiff("nocrs.tif", crs=None, transform=Affine.identity())
    for band, rows in (("B02", 16), ("B03", 16), ("B04", 20)):
        make_geotiff(f"grids/x_{band}.tif", data=np.ones((1, rows, 16), np.uint16))
    allnodata = make_geotiff("nodata.tif", data=np.zeros((3, 40, 40), np.uint16), nodata=0)
    bad = [tmp_path / "missing.tif", empty, text, truncated, nocrs, tmp_path / "grids"]
    out = tmp_path / "out"
    proc = shipwatch("detect", *map(str, bad), str(allnodata), str(MARINA), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("  error: ")]
    assert len(errors) == len(bad)
    for path, line in zip(bad, errors, strict=True):
        assert str(path) in line and ";" in line  # names the file, then the fix
    assert f"{allnodata}: 0 ships (all nodata)" in proc.stdout
    rows = list(csv.DictReader((out / "detections.csv").open()))
    assert rows and {r["scene"] for r in rows} == {MARINA.name}


def test_weights_with_wrong_checksum_are_refused(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    with (models / "yolo26n-obb.pt").open("ab") as f:
        f.write(b"\0")
    proc = shipwatch("detect", str(MARINA), "--out", str(tmp_path / "o"), env={"SHIPWATCH_MODELS_DIR": str(models)})
    assert proc.returncode == 2
    assert "differs from the registry" in proc.stderr and "--trust-weights" in proc.stderr
    assert "Traceback" not in proc.stderr
    stray = tmp_path / "other.pt"
    stray.write_bytes(b"weights")
    assert main(["detect", str(MARINA), "--out", str(tmp_path / "o"), "--weights", str(stray)]) == 2


def test_rerun_does_no_work_twice_and_writes_identical_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["detect", str(MARINA), "--out", str(out)]) == 0
    first = {name: (out / name).read_bytes() for name in ("detections.geojson", "detections.csv")}
    capsys.readouterr()
    assert main(["detect", str(MARINA), "--out", str(out)]) == 0
    assert "(reused)" in capsys.readouterr().out
    assert first == {name: (out / name).read_bytes() for name in first}
    collection = json.loads(first["detections.geojson"])
    assert collection["type"] == "FeatureCollection" and collection["features"]
    feature = collection["features"][0]
    ring = feature["geometry"]["coordinates"][0]
    assert feature["geometry"]["type"] == "Polygon" and len(ring) == 5 and ring[0] == ring[-1]
    props = feature["properties"]
    assert props["acquired_at"] == "2024-05-01T01:30:00Z"  # from the TIFF date tag
    assert set(props) == {
        "scene", "acquired_at", "class", "score", "length_m", "beam_m", "heading_deg", "lon", "lat",
        "px_cx", "px_cy", "px_length", "px_width", "px_angle_deg",
    }  # fmt: skip
    assert 0 <= props["heading_deg"] < 180 and props["length_m"] >= props["beam_m"] > 0


def test_ungeoreferenced_scene_with_gsd(tmp_path: Path) -> None:
    import rasterio

    plain = tmp_path / "plain.tif"
    with rasterio.open(MARINA) as src:
        profile = {**src.profile, "crs": None, "transform": Affine.identity()}
        with rasterio.open(plain, "w", **profile) as dst:
            dst.write(src.read())
    out = tmp_path / "out"
    assert main(["detect", str(plain), "--out", str(out)]) == 2
    assert main(["detect", str(plain), "--out", str(out), "--allow-ungeoreferenced", "--gsd", "0.3"]) == 0
    features = json.loads((out / "detections.geojson").read_text())["features"]
    assert features and all(f["geometry"] is None and f["properties"]["lon"] is None for f in features)
    assert all(f["properties"]["length_m"] == pytest.approx(f["properties"]["px_length"] * 0.3, abs=0.02) for f in features)


def test_bands_take_one_or_three(tmp_path: Path, make_geotiff, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_geotiff("four.tif", count=4)
    assert main(["detect", str(path), "--out", str(tmp_path / "o"), "--bands", "4,3"]) == 2
    assert "--bands '4,3': give 1 or 3 bands" in capsys.readouterr().err
    assert main(["detect", str(path), "--out", str(tmp_path / "o"), "--bands", "B08,3,2"]) == 2
    assert "numbers or Sentinel-2 band names" in capsys.readouterr().err


def test_bands_by_name_are_normalised() -> None:
    from detector.cli.detect import _bands

    assert _bands("B8, b4,B03") == ("B08", "B04", "B03") and _bands("4,3,2") == (4, 3, 2) and _bands(None) is None


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output's parent folder should be")
    proc = shipwatch("detect", str(MARINA), "--out", str(blocked / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {blocked / 'out'}: Not a directory; check the path, its permissions and the free space"
    ]
