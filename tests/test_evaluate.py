"""scripts/evaluate.py's matching rules, on boxes whose answers are worked out by hand."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detector.records import Detections
from tests.conftest import REPO, shared

spec = importlib.util.spec_from_file_location("shipwatch_evaluate", REPO / "scripts" / "evaluate.py")
evaluate = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules[spec.name] = evaluate  # type: ignore[union-attr]  # its dataclass looks itself up there
spec.loader.exec_module(evaluate)  # type: ignore[union-attr]


def square(x: float, y: float, side: float = 10.0) -> np.ndarray:
    h = side / 2
    return np.array([[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h]])


def found(*boxes: tuple[float, float, float]) -> Detections:
    """Axis-aligned 10 px squares: (x, y, score)."""
    obb = [[x, y, 10.0, 10.0, 0.0] for x, y, _ in boxes]
    return Detections(np.array(obb).reshape(-1, 5), [s for *_, s in boxes], np.zeros(len(boxes), np.int64))


def item(name: str, labels: list[np.ndarray], detections: Detections):  # type: ignore[no-untyped-def]
    polys = np.array(labels).reshape(-1, 4, 2)
    return evaluate.Item(name, polys, np.zeros(len(polys), np.int64), detections)


def test_centre_matching_is_one_to_one() -> None:
    labels = np.array([square(10, 10), square(40, 10)])
    # two centres in the first ship, none in the second, one in open water
    hit = evaluate.found_labels(labels, found((9, 9, 0.9), (12, 11, 0.8), (100, 100, 0.7)))
    assert hit.tolist() == [True, False]
    assert evaluate.found_labels(labels, found((9, 9, 0.9), (41, 9, 0.8))).tolist() == [True, True]
    assert evaluate.found_labels(labels, found((41, 9, 0.9))).tolist() == [False, True]
    assert evaluate.found_labels(labels[:0], found((9, 9, 0.9))).tolist() == []


def test_threshold_metrics_and_count_error() -> None:
    items = [
        item("a", [square(10, 10), square(40, 10)], found((10, 10, 0.9), (40, 10, 0.3), (80, 80, 0.6))),
        item("b", [square(10, 10)], found((60, 60, 0.2))),
    ]
    r = evaluate.at_threshold(items, 0.5)  # kept: a's 0.9 (a hit) and 0.6 (a miss)
    assert (r["precision"], r["recall"]) == (0.5, pytest.approx(1 / 3))
    assert r["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert r["per_scene"]["a"] == {"labelled": 2, "found": 2, "matched": 1, "count_error": 0.0}
    assert r["per_scene"]["b"]["count_error"] == 1.0
    low = evaluate.at_threshold(items, 0.1)
    assert (low["precision"], low["recall"]) == (0.5, pytest.approx(2 / 3))
    # every label is a 10 px square: all in one length bin, found 1 of 3 at 0.5
    assert r["recall_by_length"] == {"0-15 px": {"labelled": 3, "found": 1, "recall": pytest.approx(1 / 3)}}
    ship = np.array([[0, 0], [30, 0], [30, 6], [0, 6]], float)  # 30 px long, 6 wide
    assert evaluate.label_lengths(np.array([ship, square(5, 5)])).tolist() == [30.0, 10.0]
    mixed = evaluate.at_threshold([item("c", [ship, square(100, 100)], found((15, 3, 0.9)))], 0.5)["recall_by_length"]
    assert {k: (v["found"], v["labelled"]) for k, v in mixed.items()} == {"0-15 px": (0, 1), "20-40 px": (1, 1)}


def test_a_scene_with_a_threshold_of_its_own_is_counted_at_it() -> None:
    """--weights auto: each scene at its model's threshold, named in its row."""
    own = item("a", [square(10, 10), square(40, 10)], found((10, 10, 0.9), (40, 10, 0.3)))
    own.model, own.conf = "s2-ensemble-swir", 0.15
    other = item("b", [square(10, 10)], found((10, 10, 0.4)))
    r = evaluate.at_threshold([own, other], 0.5)
    assert r["per_scene"]["a"] == {
        "labelled": 2,
        "found": 2,
        "matched": 2,
        "count_error": 0.0,
        "model": "s2-ensemble-swir",
        "conf": 0.15,
    }
    assert r["per_scene"]["b"]["found"] == 0 and "model" not in r["per_scene"]["b"]


def test_average_precision_ranks_by_score_at_iou_half() -> None:
    labels = [square(10, 10), square(40, 10)]
    # ranked: hit (IoU 1), miss (a box 6 px off: IoU 4/16 < 0.5), hit (IoU 1)
    items = [item("a", labels, found((10, 10, 0.9), (46, 10, 0.8), (40, 10, 0.7)))]
    ap, recall, precision = evaluate.average_precision(items, 0)
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3])
    assert ap == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    # a duplicate of an already matched ship is a false positive
    dup = [item("a", labels[:1], found((10, 10, 0.9), (10, 10, 0.8)))]
    assert evaluate.average_precision(dup, 0)[0] == pytest.approx(1.0)
    assert evaluate.average_precision(dup, 0)[2][-1] == pytest.approx(0.5)


def test_fold_argument() -> None:
    parser = evaluate.argparse.ArgumentParser()
    assert evaluate.parse_fold("runs/a=b/last.pt=busan,durban", parser) == ("runs/a=b/last.pt", ["busan", "durban"])
    with pytest.raises(SystemExit):
        evaluate.parse_fold("runs/last.pt", parser)


def test_weights_as_files_an_ensemble_of_files_or_a_registry_name() -> None:
    paths, bands, spec = evaluate.members_of("nir.pt+tc.pt", "B08,B04,B03+B04,B03,B02")
    assert paths == [evaluate.Path("nir.pt"), evaluate.Path("tc.pt")] and spec is None
    assert bands == [("B08", "B04", "B03"), ("B04", "B03", "B02")]
    with pytest.raises(evaluate.UsageError, match="2 weights files but --bands B08,B04,B03 names 1"):
        evaluate.members_of("nir.pt+tc.pt", "B08,B04,B03")
    paths, bands, spec = evaluate.members_of("s2-ensemble", None)
    assert [p.name for p in paths] == ["yolo26n-obb-s2-nir-sgd.pt", "yolov8n-obb-s2-nir-sgd.pt"]
    assert bands == [("B08", "B04", "B03"), ("B08", "B04", "B03")] and spec.scale == 3.0  # type: ignore[attr-defined]
    _, bands, spec = evaluate.members_of("yolo26n-obb-s2", None)
    assert bands == [None] and spec.name == "yolo26n-obb-s2"  # type: ignore[attr-defined]  # RGB: a folder's true colour


def test_nested_threshold_never_uses_a_folds_own_labels() -> None:
    fold_a = [item("a", [square(10, 10)], found((10, 10, 0.9), (80, 80, 0.5)))]  # best above 0.5
    fold_b = [item("b", [square(10, 10)], found((10, 10, 0.3)))]  # best at any threshold up to 0.3
    assert evaluate.pick_threshold(fold_a) == 0.525 and evaluate.pick_threshold(fold_b) == 0.05
    nested = evaluate.nested_thresholds([fold_a, fold_b])
    assert nested["thresholds"] == [0.05, 0.525]
    # a at 0.05 keeps its false alarm; b at 0.525 loses its ship
    assert (nested["precision"], nested["recall"], nested["f1"]) == (0.5, 0.5, 0.5)
    assert nested["per_scene"]["b"] == {"labelled": 1, "found": 0, "matched": 0, "count_error": 1.0}


def test_f1_by_threshold_pooled_and_by_fold_and_its_picture(tmp_path: Path) -> None:
    """The two folds above: a peaks above 0.5, b up to 0.3; pooled, a mix of both."""
    fold_a = [item("a", [square(10, 10)], found((10, 10, 0.9), (80, 80, 0.5)))]
    fold_b = [item("b", [square(10, 10)], found((10, 10, 0.3)))]
    curves = evaluate.f1_by_threshold([fold_a, fold_b])
    at = {t: k for k, t in enumerate(curves["thresholds"])}
    by_fold = curves["folds"]
    assert list(by_fold) == ["a", "b"]
    # a: its false alarm counts up to 0.5 (F1 2/3), then only the ship (1); b: its ship up to 0.3
    assert [round(by_fold["a"][at[t]], 3) for t in (0.05, 0.5, 0.525, 0.875)] == [0.667, 0.667, 1.0, 1.0]
    assert [by_fold["b"][at[t]] for t in (0.05, 0.3, 0.325)] == [1.0, 1.0, 0.0]
    # pooled: 2 of 2 ships and 3 found up to 0.3 (0.8), then 1 ship and 2 found (0.5), then 1 and 1 (2/3)
    assert [round(curves["pooled"][at[t]], 3) for t in (0.3, 0.325, 0.525)] == [0.8, 0.5, 0.667]
    assert "folds" not in evaluate.f1_by_threshold([fold_a])  # one fold: the pooled curve is its own
    report = {
        "f1_by_threshold": curves,
        "best_threshold": evaluate.pick_threshold(fold_a + fold_b),
        "nested": evaluate.nested_thresholds([fold_a, fold_b]),
    }
    path = tmp_path / "eval.f1.png"
    evaluate.draw_f1_curves(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_f1_interval_resamples_scenes() -> None:
    def scene(matched: int, found: int, labelled: int) -> dict[str, int]:
        return {"matched": matched, "found": found, "labelled": labelled}

    alike = {name: scene(8, 10, 10) for name in "abcd"}  # every scene at F1 0.8: nothing to resample
    assert evaluate.f1_interval(alike) == pytest.approx((0.8, 0.8))
    # one port perfect, one blind, two between: pooled F1 0.5, the interval spans the ports' spread
    mixed = {"a": scene(10, 10, 10), "b": scene(0, 10, 10), "c": scene(5, 10, 10), "d": scene(5, 10, 10)}
    low, high = evaluate.f1_interval(mixed)
    assert low < 0.3 and high > 0.7
    assert evaluate.f1_interval(mixed) == (low, high)  # seeded: the same figures every run


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "scripts" / "evaluate.py"), "--weights", str(tmp_path / "missing.pt"),
           "--coco", str(tmp_path / "ann.json"), "--scenes", str(tmp_path), "--json", str(tmp_path / "out.json")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: {tmp_path / 'missing.pt'}: no such weights file" in proc.stderr
    assert not (tmp_path / "out.json").exists()
    # good weights, but no COCO file where --coco points: one line naming it (a traceback before)
    cmd[cmd.index("--weights") + 1] = str(REPO / "models" / "yolo26n-obb-s2-nir.pt")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert (
        proc.stderr.strip().splitlines()[-1]  # after the progress bar's first line
        == f"error: {tmp_path / 'ann.json'}: No such file or directory; check the path, its permissions and the free space"
    )


def test_usage_mistakes_are_one_line_and_exit_2(tmp_path: Path) -> None:
    evaluate_py = [sys.executable, str(REPO / "scripts" / "evaluate.py"), "--json", str(tmp_path / "out.json")]
    weights = str(REPO / "models" / "yolo26n-obb-s2-nir.pt")
    (tmp_path / "images" / "val").mkdir(parents=True)
    (tmp_path / "images" / "val" / "broken.png").write_text("not a png")
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: {{0: ship}}\n")
    for args, said in (
        (["--weights", f"{weights}+{weights}", "--bands", "B08,B04,B03", "--coco", str(data), "--scenes", str(tmp_path)],
         f"{weights}+{weights}: 2 weights files but --bands B08,B04,B03 names 1 band lists; give one band list per file"),
        (["--weights", weights, "--data", str(data), "--split", "test"], f"{data}: no test split"),
        (["--weights", weights, "--data", str(data)], f"{tmp_path / 'images' / 'val' / 'broken.png'}: not an image"),
        (["--weights", "auto", "--conf", "0.3", "--coco", str(data), "--scenes", str(tmp_path), "--pick-threshold"],
         "--weights auto takes each scene's model with its own bands, scale and threshold, on --coco scenes; "
         "leave out --conf, --pick-threshold"),
    ):  # fmt: skip
        proc = subprocess.run(evaluate_py + args, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-800:]
        assert f"error: {said}" in proc.stderr
    assert not (tmp_path / "out.json").exists()


def test_pictures_outline_found_missed_and_false_alarms_in_their_colours(tmp_path: Path, make_geotiff) -> None:  # type: ignore[no-untyped-def]
    import cv2

    from detector.raster import open_scene

    scene = open_scene(make_geotiff("port.tif", data=np.zeros((3, 60, 80), np.uint8)))
    labels = [square(15, 15), square(60, 40)]  # the first found, the second missed
    it = evaluate.Item("port", np.array(labels), np.zeros(2, np.int64), found((15, 15, 0.9), (40, 50, 0.8), (60, 40, 0.1)), scene)
    out = evaluate.draw_item(it, 0.5, tmp_path / "pictures" / "port.png", zoom=2)
    image = cv2.imread(str(out))
    strip = 24  # the caption above the scene
    assert image.shape == (strip + 120, 160, 3)

    def colours(x0: int, y0: int, x1: int, y1: int) -> set[tuple[int, ...]]:
        """The colours along a label's outline, zoomed: its top edge, in scene pixels."""
        return {tuple(int(v) for v in image[strip + 2 * y0, x]) for x in range(2 * x0 + 2, 2 * x1 - 2)}

    assert colours(10, 10, 20, 20) == {evaluate.FOUND_BGR}
    assert colours(55, 35, 65, 45) == {evaluate.MISSED_BGR}
    assert colours(35, 45, 45, 55) == {evaluate.FALSE_BGR}  # 0.8 in open water: a false alarm
    assert image[: strip - 2].any()  # the caption (0.1, in the missed ship, is below the threshold: not drawn)


@pytest.mark.real_model
def test_coco_scenes_score_a_dota_model_by_its_ships_only(tmp_path: Path) -> None:
    """A 15-class DOTA model on a labelled Sentinel-2 port: AP for ships, not for class 0 (plane)."""
    import json

    s2 = shared("sen2ships-dev")
    out = tmp_path / "dota.json"
    cmd = [sys.executable, str(REPO / "scripts" / "evaluate.py"), "--weights", "yolo26n-obb-dota", "--scale", "3",
           "--coco", str(s2 / "annotations.json"), "--scenes", str(s2), "--ports", "algiers", "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-800:]
    report = json.loads(out.read_text())
    assert list(report["ap50"]) == ["ship"]
    # Algiers' large ships are within a DOTA model's reach at 3x: some found, so ship AP is above 0.
    assert report["per_scene"]["algiers"]["matched"] > 0 and report["map50"] > 0


@pytest.mark.real_model
def test_a_scene_that_cannot_be_evaluated_is_reported_and_the_others_scored(tmp_path: Path, make_geotiff) -> None:  # type: ignore[no-untyped-def]
    """Two labelled ports, one lacking B04: the other is scored, the JSON written, the bad one named, exit 2."""
    import json

    images, annotations = [], []
    for k, port in enumerate(("alpha", "beta"), 1):
        for band in ("B03", "B04", "B08") if port == "alpha" else ("B03", "B08"):
            data = np.full((1, 96, 128), 500, np.uint16)
            data[0, 40:46, 30:60] = 4000
            make_geotiff(f"s2/{port}/{port}_{band}.tif", data=data, crs="EPSG:32653", transform=None)
        images.append({"id": k, "file_name": f"{port}_rgb.tif", "height": 96, "width": 128})
        annotations.append({"id": k, "image_id": k, "bbox": [30, 40, 30, 6]})
    ann = tmp_path / "s2" / "annotations.json"
    ann.write_text(json.dumps({"images": images, "annotations": annotations}))
    out = tmp_path / "eval.json"
    cmd = [sys.executable, str(REPO / "scripts" / "evaluate.py"), "--weights", "s2-ensemble", "--pick-threshold",
           "--coco", str(ann), "--scenes", str(tmp_path / "s2"), "--json", str(out), "--pr", str(tmp_path / "curves" / "pr.png")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert sorted(p.name for p in (tmp_path / "curves").iterdir()) == ["pr.f1.png", "pr.png"]  # both pictures where --pr says
    report = json.loads(out.read_text())
    assert list(report["per_scene"]) == ["alpha"] and report["per_scene"]["alpha"]["labelled"] == 1
    assert "no band files for B04" in report["skipped"]["beta"]
    assert "1 scene(s) could not be evaluated" in proc.stderr and "  beta: " in proc.stderr


@pytest.mark.real_model
def test_auto_evaluates_each_scene_with_the_model_detect_picks(tmp_path: Path) -> None:
    """Algiers whole, and Durban as a folder of B08 and B11 only (as some sen2ships ports come)."""
    import json

    s2 = shared("sen2ships-dev")
    for port, bands in (("algiers", ("B02", "B03", "B04", "B08", "B11")), ("durban", ("B08", "B11"))):
        (tmp_path / port).mkdir()
        for band in (s2 / port).iterdir():
            if any(f"_{b}_" in band.name for b in bands):
                (tmp_path / port / band.name).symlink_to(band)
    out = tmp_path / "auto.json"
    cmd = [sys.executable, str(REPO / "scripts" / "evaluate.py"), "--weights", "auto", "--coco", str(s2 / "annotations.json"),
           "--scenes", str(tmp_path), "--ports", "algiers,durban", "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-800:]
    scenes = json.loads(out.read_text())["per_scene"]
    assert {p: (r["model"], r["conf"]) for p, r in scenes.items()} == {
        "algiers": ("s2-ensemble", 0.375),
        "durban": ("s2-ensemble-b08", 0.375),
    }
    assert scenes["durban"]["matched"] >= 18  # of 36 labelled: near infrared alone still finds ships
    assert "durban  " in proc.stdout and "s2-ensemble-b08 at 0.375" in proc.stdout


@pytest.mark.real_model
def test_the_aoi_stretch_measurement_runs_and_reports_each_stretch(tmp_path: Path) -> None:
    """scripts/aoi_stretch.py on one port, one square: a row per stretch, its counts those of the port's labels."""
    import json

    s2 = shared("sen2ships-dev")
    out = tmp_path / "aoi_stretch.json"
    cmd = [sys.executable, str(REPO / "scripts" / "aoi_stretch.py"), "--coco", str(s2 / "annotations.json"),
           "--scenes", str(s2), "--ports", "cartagena", "--picks", "1", "--sides", "200", "--json", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-800:]
    report = json.loads(out.read_text())
    assert report["ports"] == ["cartagena"] and report["conf"] == 0.375
    tile = {k: v for k, v in report["rows"].items() if k.startswith("tile")}
    assert sorted(tile) == ["tile: --aoi", "tile: stretched by the tile", "tile: the crop"]
    assert all(r["labelled"] == 19 and r["matched"] <= min(r["found"], 19) for r in tile.values())
    assert tile["tile: --aoi"]["matched"] >= tile["tile: stretched by the tile"]["matched"]
    assert {"tight 200 px, stretched by the crop", "tight 200 px, stretched by the square"} <= set(report["rows"])
