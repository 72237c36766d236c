"""Quicklook pictures: a scene, decimated, with its ships' oriented boxes drawn.

Drawn with OpenCV primitives only (no fonts), so nothing is fetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from rasterio.windows import Window

from detector.raster import Scene, SceneReader
from detector.records import Ship, obb_corners

__all__ = ["draw_quicklook"]

_BOX_BGR = (0, 0, 255)


def draw_quicklook(scene: Scene, ships: Sequence[Ship], out: Path, max_side: int = 2048) -> Path:
    """Write a PNG of ``scene`` at most ``max_side`` px wide or high, boxes in red."""
    scale = min(1.0, max_side / max(scene.width, scene.height))
    shape = (max(1, round(scene.height * scale)), max(1, round(scene.width * scale)))
    with SceneReader(scene) as reader:
        if scale == 1.0:
            rgb, _ = reader.read(Window(0, 0, scene.width, scene.height))
        else:
            rgb = reader.read_decimated(shape)
    canvas = np.ascontiguousarray(rgb[..., ::-1])
    if ships:
        obb = np.array([[s.px_cx, s.px_cy, s.px_length, s.px_width, s.px_angle_deg] for s in ships])
        corners = obb_corners(obb) * scale
        thickness = max(1, round(min(shape) / 600))
        cv2.polylines(
            canvas, [np.round(c * 16).astype(np.int32) for c in corners], True, _BOX_BGR, thickness, cv2.LINE_AA, shift=4
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    cv2.imwrite(str(tmp), canvas)
    tmp.replace(out)
    return out
