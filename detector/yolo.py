"""The Ultralytics YOLO oriented-box detector: the only module importing ultralytics.

Ultralytics is kept offline (``YOLO_OFFLINE=1``) and never asked to plot, so it
fetches neither weights nor fonts. Batches are (B, H, W, 3) uint8 RGB arrays;
they go to the device as uint8 and are normalised there (on CUDA by torch, on
the CPU inside the OpenVINO graph).
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from detector.errors import UsageError, WeightsError
from detector.models import ModelSpec
from detector.records import Detections, normalise_obb
from detector.runtimes import Backend, cache_dir, cpu_backend, load_runtime

__all__ = ["Detector", "Device", "Head", "YoloDetector", "export_onnx", "rotated_fast_nms"]

#: Per-window detection cap: dense marinas hold more than Ultralytics' 300.
DEFAULT_MAX_DET = 2000
_MAX_NMS = 30000


class Device(enum.StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class Head(enum.StrEnum):
    """Which YOLO26 head answers: one-to-many boxes with NMS (as ``predict``), or the NMS-free head."""

    NMS = "nms"
    END2END = "end2end"


class Detector(Protocol):
    """What the engine needs of a model."""

    @property
    def input_size(self) -> int: ...

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def __call__(self, batch: NDArray[np.uint8]) -> list[Detections]:
        """Boxes for each (H, W, 3) uint8 RGB image of ``batch``, in its pixels."""
        ...


def _torch_device(device: Device) -> Any:
    import torch

    if device is Device.AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device is Device.CUDA and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible to torch; use --device cpu")
    return torch.device(device.value)


class YoloDetector:
    """An Ultralytics OBB model behind the :class:`Detector` protocol.

    Args:
        weights: a verified weights path (see :func:`detector.models.resolve_weights`).
        spec: its registry entry, or None to take classes from the file.
        conf: score threshold.
        iou: IoU threshold of the NMS (unused by the end-to-end head).
        max_det: per-window detection cap.
        device: where to run; CUDA runs torch in fp16 and channels-last.
        backend: on the CPU, the runtime: OpenVINO or ONNX Runtime (an ONNX
            export of the same weights, cached by ``sha256``) or torch.
        head: the NMS head (default) or YOLO26's NMS-free head.
        classes: class indices kept (all when empty), applied before NMS.
        sha256: the weights' digest, naming the cached export.
    """

    def __init__(
        self,
        weights: Path,
        spec: ModelSpec | None,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = DEFAULT_MAX_DET,
        device: Device = Device.AUTO,
        backend: Backend = Backend.AUTO,
        head: Head = Head.NMS,
        classes: tuple[int, ...] = (),
        sha256: str | None = None,
    ) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        import torch
        from ultralytics import YOLO

        self._torch = torch
        self.device = _torch_device(device)
        if not Path(weights).is_file():  # Ultralytics would try to download a missing file by its name
            raise WeightsError(f"{weights}: no such weights file; check the path, or name a registry model")
        try:
            wrapper = YOLO(str(weights), task="obb")
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise WeightsError(f"{weights}: not loadable Ultralytics weights ({exc}); restore the file") from exc
        if wrapper.task != "obb":
            raise WeightsError(f"{weights}: a '{wrapper.task}' model, not oriented boxes (obb); pick an -obb model")
        loaded: Any = wrapper.model
        if head is Head.END2END and getattr(loaded.model[-1], "one2one_cv2", None) is None:
            raise UsageError(
                f"{weights}: --head end2end needs a YOLO26-style NMS-free head, which this model lacks; use --head nms"
            )
        loaded.end2end = head is Head.END2END
        model = loaded.fuse(verbose=False) if hasattr(loaded, "fuse") else loaded
        names = model.names
        self._names = tuple(names[i] for i in range(len(names)))
        if spec is not None and tuple(spec.classes) != self._names:
            raise WeightsError(f"{weights}: classes differ from registry entry {spec.name}; fix models/registry.json")
        self._size = spec.input_size if spec else int(model.args.get("imgsz", 1024))
        self.head = head
        self.half = self.device.type == "cuda"
        model = model.to(self.device).eval()
        if self.half:
            model = model.half().to(memory_format=torch.channels_last)
        if hasattr(model, "set_head_attr"):
            model.set_head_attr(max_det=max_det)
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.classes = np.asarray(classes, np.int64)
        self.backend = Backend.TORCH if self.device.type == "cuda" else cpu_backend(backend)
        if head is Head.END2END and self.backend is Backend.OPENVINO:
            # OpenVINO rejects the exported top-k gather of the NMS-free head; ONNX Runtime runs it.
            self.backend = cpu_backend(Backend.ONNXRUNTIME) if backend is Backend.AUTO else self.backend
        self._runtime = None
        if self.backend is not Backend.TORCH:
            onnx_path = export_onnx(weights, sha256 or weights.stem, self._size, head, max_det)
            self._runtime = load_runtime(self.backend, onnx_path, self._size)

    @property
    def input_size(self) -> int:
        return self._size

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._names

    def to_tensor(self, batch: NDArray[np.uint8]) -> Any:
        """Copy a uint8 batch to the device (pinned, non-blocking on CUDA), normalise there."""
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2)
        x = x.half() if self.half else x.float()
        if self.half:
            x = x.contiguous(memory_format=torch.channels_last)
        return x.div_(255.0)

    def forward(self, batch: NDArray[np.uint8]) -> Any:
        """Raw model output for a uint8 batch."""
        if self._runtime is not None:
            return self._runtime(batch)
        with self._torch.inference_mode():
            out = self.model(self.to_tensor(batch))
        return out[0] if isinstance(out, (tuple, list)) else out

    def postprocess(self, raw: Any) -> list[Detections]:
        """Boxes per image from raw model output (NMS-free rows, or one-to-many output and NMS)."""
        raw = raw.float().cpu().numpy() if hasattr(raw, "cpu") else np.asarray(raw, np.float32)
        out = []
        if self.head is Head.END2END:
            for p in raw:  # rows of x, y, w, h, conf, cls, angle
                p = p[(p[:, 4] > self.conf) & (np.isin(p[:, 5], self.classes) if len(self.classes) else True)][: self.max_det]
                out.append(_detections(p[:, :4], p[:, 6], p[:, 4], p[:, 5]))
            return out
        nc = len(self._names)
        for p in raw:  # (4 + nc + 1, anchors): x, y, w, h, class scores, angle
            scores = p[4 : 4 + nc]
            cls = scores.argmax(0)
            conf = scores[cls, np.arange(p.shape[1])]
            keep = np.flatnonzero((conf > self.conf) & (np.isin(cls, self.classes) if len(self.classes) else True))
            if len(keep) > _MAX_NMS:
                keep = keep[np.argsort(-conf[keep], kind="stable")[:_MAX_NMS]]
            xywhr = np.column_stack([p[:4, keep].T, p[-1, keep]])
            picked = rotated_fast_nms(xywhr, conf[keep], cls[keep], self.iou)[: self.max_det]
            out.append(_detections(xywhr[picked, :4], xywhr[picked, 4], conf[keep][picked], cls[keep][picked]))
        return out

    def __call__(self, batch: NDArray[np.uint8]) -> list[Detections]:
        if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
            raise ValueError(f"batch must be (B, H, W, 3) uint8, got {batch.shape} {batch.dtype}")
        return self.postprocess(self.forward(batch))


def _detections(xywh: NDArray[Any], angle_rad: NDArray[Any], conf: NDArray[Any], cls: NDArray[Any]) -> Detections:
    obb = np.column_stack([xywh, np.rad2deg(angle_rad)]) if len(xywh) else np.zeros((0, 5))
    return Detections(normalise_obb(obb), conf, np.asarray(cls, np.int64))


def _probiou(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Probabilistic IoU of OBB pairs (xywhr), as Ultralytics' ``probiou`` computes it."""
    eps = 1e-7

    def cov(box: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        va, vb = box[:, 2] ** 2 / 12, box[:, 3] ** 2 / 12
        cos, sin = np.cos(box[:, 4]), np.sin(box[:, 4])
        return va * cos**2 + vb * sin**2, va * sin**2 + vb * cos**2, (va - vb) * cos * sin

    a1, b1, c1 = cov(a)
    a2, b2, c2 = cov(b)
    dx, dy = a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]
    den = (a1 + a2) * (b1 + b2) - (c1 + c2) ** 2 + eps
    t1 = ((a1 + a2) * dy**2 + (b1 + b2) * dx**2) / den * 0.25
    t2 = ((c1 + c2) * (-dx) * dy) / den * 0.5
    root = np.sqrt(np.clip(a1 * b1 - c1**2, 0, None) * np.clip(a2 * b2 - c2**2, 0, None))
    t3 = np.log(den / (4 * root + eps) + eps) * 0.5
    bd = np.clip(t1 + t2 + t3, eps, 100.0)
    return 1.0 - np.sqrt(1.0 - np.exp(-bd) + eps)


def rotated_fast_nms(xywhr: NDArray[Any], scores: NDArray[Any], cls: NDArray[Any], iou: float) -> NDArray[np.int64]:
    """Fast-NMS over oriented boxes, class-aware; indices of kept boxes by descending score.

    A box is dropped when any higher-scored box of its class overlaps it by
    more than ``iou`` (probabilistic IoU): what Ultralytics' rotated NMS
    computes. Only pairs close enough to overlap are evaluated (k-d tree), so
    the cost grows with the number of neighbours, not with n².
    """
    n = len(scores)
    if n == 0:
        return np.zeros(0, np.int64)

    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    boxes = np.asarray(xywhr, np.float64)[order]
    c = np.asarray(cls)[order]
    # Boxes can only overlap when their centres are closer than half their
    # diagonals added. Pairs of ordinary boxes come from a k-d tree; the few
    # large ones (over twice the median diagonal) are paired with all.
    diag = np.hypot(boxes[:, 2], boxes[:, 3])
    large = diag > 2 * np.median(diag)
    small = np.flatnonzero(~large)
    parts = []
    if len(small) > 1:
        local = cKDTree(boxes[small, :2]).query_pairs(float(diag[small].max()), output_type="ndarray")
        parts.append(small[local])
    index = np.arange(n)
    for i in np.flatnonzero(large):
        others = index[(index != i) & ~(large & (index < i))]  # each large-large pair once
        parts.append(np.column_stack([np.full(len(others), i), others]))
    suppressed = np.zeros(n, bool)
    if parts:
        pairs = np.concatenate(parts)
        first, second = pairs.min(axis=1), pairs.max(axis=1)
        near = (c[first] == c[second]) & (np.hypot(*(boxes[first, :2] - boxes[second, :2]).T) < (diag[first] + diag[second]) / 2)
        first, second = first[near], second[near]
        overlap = _probiou(boxes[first], boxes[second]) > iou
        suppressed[second[overlap]] = True
    return order[~suppressed]


def export_onnx(weights: Path, sha256: str, size: int, head: Head = Head.NMS, max_det: int = DEFAULT_MAX_DET) -> Path:
    """The ONNX export of ``weights`` (dynamic batch), cached by sha256, size and head."""
    suffix = "" if head is Head.NMS else f"-e2e{max_det}"
    target = cache_dir() / f"{sha256[:16]}-{size}{suffix}.onnx"
    if target.is_file():
        return target
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    target.parent.mkdir(parents=True, exist_ok=True)
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on the head are not the user's concern
            copy = Path(tmp) / "model.pt"
            shutil.copyfile(weights, copy)
            args: dict[str, Any] = {"format": "onnx", "imgsz": size, "dynamic": True, "simplify": False, "device": "cpu"}
            if head is Head.END2END:
                args.update(nms=False, max_det=max_det)
            exported = YOLO(str(copy), task="obb").export(**args)
            os.replace(exported, target)
    except Exception as exc:  # the exporter raises many types
        raise WeightsError(f"{weights}: ONNX export failed ({exc}); pass --backend torch") from exc
    finally:
        LOGGER.setLevel(level)
    return target
