"""Dataset building and a tiny training run: 1 epoch on a few chips, the weights written and loaded."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.chips import BuildSettings, LabelledScene, build_yolo_obb, obb_from_mask, rle_decode
from detector.errors import UsageError
from detector.yolo import YoloDetector
from tests.conftest import DATA, REPO


def marina_scenes() -> list[LabelledScene]:
    bgr = cv2.imread(str(DATA / "P0861__1024__0___1648.jpg"))
    rows = np.loadtxt(DATA / "P0861__1024__0___1648.txt")
    polys = rows[:, 1:].reshape(-1, 4, 2) * 1024
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    flipped = polys.copy()
    flipped[..., 0] = 1024 - flipped[..., 0]
    keep = rows[:, 0] == 1  # DOTA's ship class
    cls = np.zeros(len(rows), np.int64)  # one class here: ship
    return [
        LabelledScene("marina", "a", rgb, polys[keep], cls[keep]),
        LabelledScene("marina_flipped", "b", np.ascontiguousarray(rgb[:, ::-1]), flipped[keep], cls[keep]),
    ]


def test_rle_and_mask_boxes() -> None:
    # a 2x3 block at rows 1-2, cols 2-4 in a 5x6 image, COCO runs go down the columns
    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:5] = True
    flat = mask.T.ravel()
    runs, value, n = [], False, 0
    for v in flat:
        if v != value:
            runs.append(n)
            value, n = v, 0
        n += 1
    runs.append(n)
    np.testing.assert_array_equal(rle_decode({"counts": runs, "size": [5, 6]}, 5, 6), mask)
    corners = obb_from_mask(mask)
    assert np.allclose(sorted(corners[:, 0]), [2, 2, 5, 5]) and np.allclose(sorted(corners[:, 1]), [1, 1, 3, 3])
    with pytest.raises(UsageError, match="mask size"):
        rle_decode({"counts": runs, "size": [6, 5]}, 5, 6)


def test_builder_errors(tmp_path: Path) -> None:
    scenes = marina_scenes()
    settings = BuildSettings(chip=320, overlap=64, scale=1.0)
    with pytest.raises(UsageError, match="split is empty"):
        build_yolo_obb(scenes, tmp_path / "a", ["ship"], ["nowhere"], settings)
    empty = [LabelledScene(s.name, s.group, s.rgb, s.polygons[:0], s.classes[:0]) for s in scenes]
    with pytest.raises(UsageError, match="no labelled ship"):
        build_yolo_obb(empty, tmp_path / "b", ["ship"], ["b"], settings)


def test_build_is_deterministic_and_clips_by_rule(tmp_path: Path) -> None:
    settings = BuildSettings(chip=320, overlap=64, scale=1.0, empty_share=0.5)
    a = build_yolo_obb(marina_scenes(), tmp_path / "a", ["ship"], ["b"], settings)
    b = build_yolo_obb(marina_scenes(), tmp_path / "b", ["ship"], ["b"], settings)
    assert a["counts"] == b["counts"]
    for f in (tmp_path / "a" / "labels" / "train").glob("*.txt"):
        assert f.read_text() == (tmp_path / "b" / "labels" / "train" / f.name).read_text()
        for line in f.read_text().splitlines():
            values = np.array(line.split()[1:], float)
            assert (values >= 0).all() and (values <= 1).all()
    assert "path:" in (tmp_path / "a" / "data.yaml").read_text()
    assert json.loads((tmp_path / "a" / "split.json").read_text())["groups"] == {"train": ["a"], "val": ["b"]}


def test_train_refuses_missing_files_before_ultralytics_looks_for_them(tmp_path: Path) -> None:
    """Ultralytics would try to download a weights file it cannot find; nothing downloads at run time."""
    data = tmp_path / "data"
    build_yolo_obb(marina_scenes(), data, ["ship"], ["b"], BuildSettings(chip=320, overlap=0, scale=1.0))
    train = [sys.executable, str(REPO / "scripts" / "train.py"), "--runs", str(tmp_path / "runs")]
    for args, said in (
        (["--data", str(data / "data.yaml"), "--weights", str(tmp_path / "yolo11n-obb.pt")], "no such weights file"),
        (["--data", str(tmp_path / "none.yaml")], "no such data.yaml"),
    ):
        proc = subprocess.run(train + args, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.real_model
def test_one_epoch_of_training_writes_weights_that_load(tmp_path: Path) -> None:
    data = tmp_path / "data"
    build_yolo_obb(marina_scenes(), data, ["ship"], ["b"], BuildSettings(chip=320, overlap=0, scale=1.0, empty_share=0.0))
    cmd = [sys.executable, str(REPO / "scripts" / "train.py"), "--data", str(data / "data.yaml"), "--preset", "smoke",
           "--name", "smoke", "--runs", str(tmp_path / "runs"), "--fraction", "0.5"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    weights = tmp_path / "runs" / "smoke" / "weights"
    best = weights / "best.pt" if (weights / "best.pt").exists() else weights / "last.pt"
    assert best.exists()
    detector = YoloDetector(best, None)
    assert detector.class_names == ("ship",)
    assert len(detector(np.zeros((1, 320, 320, 3), np.uint8))) == 1
