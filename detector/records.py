"""Records shared across the pipeline.

Bulk detections are struct-of-arrays (:class:`Detections`) so hot paths stay
vectorised; per-ship dataclasses (:class:`Ship`) are for the edges: export,
store rows and reports.

Pixel OBB convention (scene or window pixels): ``(cx, cy, length, width,
angle_deg)`` with (0, 0) at the top-left corner of the first pixel,
``length >= width`` and ``angle_deg`` the direction of the long axis from the
+col axis toward +row, in [0, 180).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

__all__ = ["Detections", "Ship", "normalise_obb", "obb_corners"]


def normalise_obb(obb: NDArray[np.floating]) -> NDArray[np.float64]:
    """Return OBBs with length >= width and the angle in [0, 180) degrees.

    ``obb`` is (N, 5): cx, cy, a, b, angle_deg where the angle belongs to side
    ``a``. Sides are swapped (angle + 90) where ``b > a``.
    """
    out = np.asarray(obb, dtype=np.float64).reshape(-1, 5).copy()
    swap = out[:, 3] > out[:, 2]
    out[swap, 2], out[swap, 3] = out[swap, 3], out[swap, 2].copy()
    out[swap, 4] += 90.0
    out[:, 4] = np.mod(out[:, 4], 180.0)
    return out


def obb_corners(obb: NDArray[np.floating]) -> NDArray[np.float64]:
    """Corners (N, 4, 2) of pixel OBBs, in (col, row), going round the box."""
    obb = np.asarray(obb, dtype=np.float64).reshape(-1, 5)
    a = np.deg2rad(obb[:, 4])
    u = np.stack([np.cos(a), np.sin(a)], axis=1) * (obb[:, 2:3] / 2)  # half long axis
    v = np.stack([-np.sin(a), np.cos(a)], axis=1) * (obb[:, 3:4] / 2)  # half short axis
    c = obb[:, None, :2]
    return np.stack([c[:, 0] + u + v, c[:, 0] + u - v, c[:, 0] - u - v, c[:, 0] - u + v], axis=1)


@dataclass(frozen=True)
class Detections:
    """Oriented boxes as parallel arrays.

    Attributes:
        obb: (N, 5) float64 pixel OBBs, see the module docstring.
        score: (N,) float32 confidences in [0, 1].
        class_id: (N,) int64 model class indices.
        window: (N, 2) int64 ``(col_off, row_off)`` of the window that produced
            each box, so every box traces back to a window.
    """

    obb: NDArray[np.float64]
    score: NDArray[np.float32]
    class_id: NDArray[np.int64]
    window: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 2), np.int64))

    def __post_init__(self) -> None:
        n = len(self.obb)
        window = self.window if len(self.window) == n else np.zeros((n, 2), np.int64)
        object.__setattr__(self, "obb", np.asarray(self.obb, np.float64).reshape(n, 5))
        object.__setattr__(self, "score", np.asarray(self.score, np.float32).reshape(n))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, np.int64).reshape(n))
        object.__setattr__(self, "window", np.asarray(window, np.int64).reshape(n, 2))
        if n and (self.obb[:, 3] > self.obb[:, 2]).any():
            raise ValueError("Detections.obb must have length >= width; use normalise_obb()")

    def __len__(self) -> int:
        return len(self.obb)

    def __getitem__(self, index: NDArray[np.bool_] | NDArray[np.integer] | slice) -> Detections:
        return Detections(self.obb[index], self.score[index], self.class_id[index], self.window[index])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 5)), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros((0, 2), np.int64))

    @classmethod
    def concat(cls, parts: Sequence[Detections]) -> Detections:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.obb for p in parts]),
            np.concatenate([p.score for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.window for p in parts]),
        )

    def shifted(self, col_off: int, row_off: int) -> Detections:
        """The same boxes moved by a window offset, tagged with that window."""
        obb = self.obb.copy()
        obb[:, 0] += col_off
        obb[:, 1] += row_off
        window = np.tile(np.array([[col_off, row_off]], np.int64), (len(self), 1))
        return Detections(obb, self.score, self.class_id, window)

    def corners(self) -> NDArray[np.float64]:
        return obb_corners(self.obb)

    def sorted(self) -> Detections:
        """A canonical order: score descending, then row, then column."""
        order = np.lexsort((self.obb[:, 0], self.obb[:, 1], -self.score.astype(np.float64)))
        return self[order]


@dataclass(frozen=True)
class Ship:
    """One reported ship, as exported (see DESIGN.md, ``shipwatch detect``)."""

    scene: str
    acquired_at: datetime | None
    class_name: str
    score: float
    px_cx: float
    px_cy: float
    px_length: float
    px_width: float
    px_angle_deg: float
    window_col: int
    window_row: int
    lon: float | None = None
    lat: float | None = None
    length_m: float | None = None
    beam_m: float | None = None
    heading_deg: float | None = None
    polygon_lonlat: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")
        if self.px_width > self.px_length:
            raise ValueError("px_length must be >= px_width")
