"""The detector's runtimes and heads, against Ultralytics' own torch path."""

import cv2
import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from ultralytics.utils import nms

from detector.models import resolve_weights
from detector.records import Detections
from detector.runtimes import Backend
from detector.yolo import Head, YoloDetector
from tests.conftest import DATA

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    rgb = cv2.imread(str(DATA / "P0861__1024__0___1648.jpg"))[..., ::-1]
    return np.stack([rgb, rgb[::-1], rgb[:, ::-1]])


@pytest.fixture(scope="module")
def torch_boxes(batch: np.ndarray) -> list[Detections]:
    spec, path, sha = resolve_weights()
    return YoloDetector(path, spec, backend=Backend.TORCH, sha256=sha)(batch)


@pytest.mark.parametrize("backend", [Backend.OPENVINO, Backend.ONNXRUNTIME])
def test_cpu_runtimes_give_torch_boxes_within_tolerance(
    backend: Backend, batch: np.ndarray, torch_boxes: list[Detections]
) -> None:
    spec, path, sha = resolve_weights()
    found = YoloDetector(path, spec, backend=backend, sha256=sha)(batch)
    for a, b in zip(found, torch_boxes, strict=True):
        assert len(a) == len(b) > 100
        d = np.hypot(a.obb[:, None, 0] - b.obb[None, :, 0], a.obb[:, None, 1] - b.obb[None, :, 1])
        r, c = linear_sum_assignment(d)
        assert d[r, c].max() < 0.5  # px
        assert np.abs(a.obb[r, 2:4] - b.obb[c, 2:4]).max() < 0.5  # px
        angle = np.abs(a.obb[r, 4] - b.obb[c, 4])
        assert np.minimum(angle, 180 - angle).max() < 0.5  # degrees
        assert np.abs(a.score[r] - b.score[c]).max() < 0.01
        assert (a.class_id[r] == b.class_id[c]).all()


def test_our_nms_is_ultralytics_rotated_nms(batch: np.ndarray) -> None:
    spec, path, sha = resolve_weights()
    detector = YoloDetector(path, spec, backend=Backend.TORCH, sha256=sha)
    raw = detector.forward(batch)
    ours = detector.postprocess(raw)
    theirs = nms.non_max_suppression(torch.as_tensor(raw), 0.25, 0.7, max_det=2000, nc=len(spec.classes), rotated=True)
    for a, b in zip(ours, theirs, strict=True):
        b = b.numpy()
        assert len(a) == len(b)
        np.testing.assert_allclose(np.sort(a.score), np.sort(b[:, 4]), rtol=1e-6)
        np.testing.assert_allclose(np.sort(a.obb[:, 0]), np.sort(b[:, 0]), atol=1e-3)


def test_end_to_end_head_without_nms(batch: np.ndarray) -> None:
    spec, path, sha = resolve_weights()
    found = YoloDetector(path, spec, head=Head.END2END, classes=spec.ship_class_ids, sha256=sha)(batch[:1])[0]
    assert (found.class_id == 1).all() and 110 <= len(found) <= 160
