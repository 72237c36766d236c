"""The Ultralytics YOLO oriented-box detector: the only module importing ultralytics.

Ultralytics is kept offline (``YOLO_OFFLINE=1``) and never asked to plot, so it
fetches neither weights nor fonts. Batches are (B, H, W, 3) uint8 RGB arrays;
they go to the device as uint8 and are normalised there.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from detector.errors import UsageError, WeightsError
from detector.models import ModelSpec
from detector.records import Detections, normalise_obb

__all__ = ["Detector", "Device", "YoloDetector"]

#: Per-window detection cap: dense marinas hold more than Ultralytics' 300.
DEFAULT_MAX_DET = 2000


class Device(enum.StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


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
        iou: IoU threshold of the model's own NMS (ignored by end-to-end heads).
        max_det: per-window detection cap.
        device: where to run; CUDA runs in fp16 and channels-last.
    """

    def __init__(
        self,
        weights: Path,
        spec: ModelSpec | None,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = DEFAULT_MAX_DET,
        device: Device = Device.AUTO,
    ) -> None:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        import torch
        from ultralytics import YOLO

        self._torch = torch
        self.device = _torch_device(device)
        try:
            wrapper = YOLO(str(weights), task="obb")
        except Exception as exc:  # ultralytics raises many types for a bad file
            raise WeightsError(f"{weights}: not loadable Ultralytics weights ({exc}); restore the file") from exc
        if wrapper.task != "obb":
            raise WeightsError(f"{weights}: a '{wrapper.task}' model, not oriented boxes (obb); pick an -obb model")
        loaded: Any = wrapper.model
        model = loaded.fuse(verbose=False) if hasattr(loaded, "fuse") else loaded
        names = model.names
        self._names = tuple(names[i] for i in range(len(names)))
        if spec is not None and tuple(spec.classes) != self._names:
            raise WeightsError(f"{weights}: classes differ from registry entry {spec.name}; fix models/registry.json")
        self._size = spec.input_size if spec else int(model.args.get("imgsz", 1024))
        self._end2end = bool(getattr(model, "end2end", False))
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

    def forward(self, x: Any) -> Any:
        """Raw model output for a normalised batch tensor."""
        with self._torch.inference_mode():
            out = self.model(x)
        return out[0] if isinstance(out, (tuple, list)) else out

    def postprocess(self, raw: Any) -> list[Detections]:
        from ultralytics.utils import nms

        preds = nms.non_max_suppression(
            raw,
            self.conf,
            self.iou,
            max_det=self.max_det,
            nc=len(self._names),
            end2end=self._end2end,
            rotated=True,
        )
        out = []
        for p in preds:
            p = p.float().cpu().numpy()  # x, y, w, h, conf, cls, angle(rad)
            obb = np.column_stack([p[:, :4], np.rad2deg(p[:, 6])])
            out.append(Detections(normalise_obb(obb), p[:, 4], p[:, 5].astype(np.int64)))
        return out

    def __call__(self, batch: NDArray[np.uint8]) -> list[Detections]:
        if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
            raise ValueError(f"batch must be (B, H, W, 3) uint8, got {batch.shape} {batch.dtype}")
        return self.postprocess(self.forward(self.to_tensor(batch)))
