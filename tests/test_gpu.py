"""CUDA checks, run by scripts/gpu_check.sh on a lent GPU; skipped without one."""

import cv2
import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from detector.cli.main import main
from detector.models import resolve_weights
from detector.runtimes import Backend
from detector.yolo import Device, YoloDetector
from tests.conftest import DATA

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_cuda_fp16_matches_cpu_fp32() -> None:
    rgb = cv2.imread(str(DATA / "P0861__1024__0___1648.jpg"))[..., ::-1]
    batch = np.stack([rgb] * 8)
    spec, path, sha = resolve_weights()
    gpu = YoloDetector(path, spec, device=Device.CUDA, sha256=sha)
    assert gpu.half and gpu.backend is Backend.TORCH
    a = gpu(batch)[0]
    b = YoloDetector(path, spec, device=Device.CPU, backend=Backend.TORCH, sha256=sha)(batch[:1])[0]
    assert abs(len(a) - len(b)) <= 3
    d = np.hypot(a.obb[:, None, 0] - b.obb[None, :, 0], a.obb[:, None, 1] - b.obb[None, :, 1])
    r, c = linear_sum_assignment(d)
    assert np.median(d[r, c]) < 0.5 and (d[r, c] < 2.0).mean() > 0.97


def test_detect_on_cuda(tmp_path) -> None:
    out = tmp_path / "out"
    assert main(["detect", str(DATA / "marina_0p3m.tif"), "--out", str(out), "--device", "cuda"]) == 0
    assert len((out / "detections.csv").read_text().splitlines()) > 90
