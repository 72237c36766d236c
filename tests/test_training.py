"""Dataset building and a tiny training run: 1 epoch on a few chips, the weights written and loaded."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

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


def rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE of ``mask``: run lengths down the columns, starting with background."""
    runs, value, n = [], False, 0
    for v in mask.T.ravel():
        if v != value:
            runs.append(n)
            value, n = v, 0
        n += 1
    return [*runs, n]


def test_coco_builder_stacks_the_named_bands_records_them_and_picks_ports(tmp_path: Path, make_geotiff) -> None:
    """Two ports of band files (uint16, one bright ship each) and COCO masks, through datasets/build.py."""
    images, annotations = [], []
    for k, port in enumerate(("alpha", "beta"), 1):
        for band, level in (("B02", 300), ("B03", 400), ("B04", 500), ("B08", 900)):
            ramp = np.arange(128, dtype=np.uint16)  # rising to the east; B08 falling, so it shows where it lands
            data = np.full((1, 96, 128), level, np.uint16) + (ramp[::-1] if band == "B08" else ramp)
            data[0, 40:46, 30:60] = 4000  # the ship
            make_geotiff(f"s2/{port}/{port}_{band}.tif", data=data, crs="EPSG:32653")
        mask = np.zeros((96, 128), bool)
        mask[40:46, 30:60] = True
        images.append({"id": k, "file_name": f"{port}_rgb.tif", "height": 96, "width": 128})
        annotations.append(
            {"id": k, "image_id": k, "bbox": [30, 40, 30, 6], "segmentation": {"counts": rle(mask), "size": [96, 128]}}
        )
    ann = tmp_path / "s2" / "annotations.json"
    ann.write_text(json.dumps({"images": images, "annotations": annotations}))
    build = [sys.executable, str(REPO / "datasets" / "build.py"), "coco", str(ann), "--chip", "320", "--overlap", "0"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*build, *args], capture_output=True, text=True, timeout=120)

    proc = run("--out", str(tmp_path / "nir"), "--bands", "B08,B04,B03", "--val", "beta")
    assert proc.returncode == 0, proc.stderr
    assert "bands: [B08, B04, B03]" in (tmp_path / "nir" / "data.yaml").read_text()
    split = json.loads((tmp_path / "nir" / "split.json").read_text())
    # 3x: 384 x 288 px, so chips start at columns 0 and 64 (the last flush with the edge), both holding the ship
    assert split["groups"] == {"train": ["alpha"], "val": ["beta"]} and split["counts"]["train"] == {"chips": 2, "ships": 2}
    chip = cv2.imread(str(tmp_path / "nir" / "images" / "train" / "alpha_r0_c0.png"))[..., ::-1]
    assert (chip[3 * 43, 3 * 45] == 255).all()  # the ship, saturated in every band
    assert chip[30, 10, 0] > 200 > chip[30, 10, 1] and chip[30, 310, 0] < 100 < chip[30, 310, 1]  # B08 red, B04 green
    proc = run("--out", str(tmp_path / "tc"), "--val", "beta", "--ports", "beta,alpha")
    assert proc.returncode == 0 and "bands: [red, green, blue]" in (tmp_path / "tc" / "data.yaml").read_text()
    proc = run("--out", str(tmp_path / "typo"), "--val", "beta", "--ports", "beta,alfa")
    assert proc.returncode == 2 and "no images of alfa; its ports are alpha, beta" in proc.stderr
    proc = run("--out", str(tmp_path / "one"), "--val", "beta", "--ports", "beta")  # alpha left out: no training port
    assert proc.returncode == 2 and "the train split is empty" in proc.stderr
    for text, said in (("{not json", "Expecting property name"), (json.dumps({"annotations": annotations}), "no 'images'")):
        ann.write_text(text)
        proc = run("--out", str(tmp_path / "bad"), "--val", "beta")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert f"\nerror: {ann}: " in proc.stderr and said in proc.stderr and "fix the labels" in proc.stderr


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
           "--name", "smoke", "--runs", str(tmp_path / "runs"), "--fraction", "0.5", "--no-val", "--nbs", "2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    weights = tmp_path / "runs" / "smoke" / "weights"
    best = weights / "best.pt" if (weights / "best.pt").exists() else weights / "last.pt"
    assert best.exists()
    train_args = torch.load(weights / "last.pt", weights_only=False)["train_args"]
    assert train_args["val"] is False and train_args["nbs"] == 2  # --no-val and --nbs reached Ultralytics
    detector = YoloDetector(best, None)
    assert detector.class_names == ("ship",)
    assert len(detector(np.zeros((1, 320, 320, 3), np.uint8))) == 1
