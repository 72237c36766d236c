"""Pictures of scenes and ships: a decimated scene with boxes (and zones), and a crop around one ship.

Drawn with OpenCV primitives only (no fonts), so nothing is fetched. Images
are BGR uint8, ready for ``cv2.imwrite``.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from detector.aoi import aoi_in_pixels
from detector.export import atomic_path
from detector.raster import Scene, SceneReader, scene_pixels
from detector.records import Ship, obb_corners
from detector.zones import Zone

__all__ = ["draw_quicklook", "outlined", "scene_picture", "ship_crop", "write_png"]

_BOX_BGR = (0, 0, 255)
_ZONE_BGR = (0, 220, 255)


def _boxes(ships: Sequence[Ship], col0: float = 0.0, row0: float = 0.0) -> NDArray[np.float64]:
    obb = np.array([[s.px_cx - col0, s.px_cy - row0, s.px_length, s.px_width, s.px_angle_deg] for s in ships]).reshape(-1, 5)
    return obb_corners(obb)


def _bgr(rgb: NDArray[np.uint8], zoom: int = 1) -> NDArray[np.uint8]:
    """The first three channels (red, green, blue) as a BGR canvas, enlarged ``zoom`` times pixel by pixel."""
    bgr = np.ascontiguousarray(rgb[..., 2::-1])
    if zoom == 1:
        return bgr
    return np.ascontiguousarray(cv2.resize(bgr, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST), np.uint8)


def _outline(
    canvas: NDArray[np.uint8], polygons: Sequence[NDArray[np.float64]], colour: tuple[int, int, int], thickness: int
) -> None:
    cv2.polylines(canvas, [np.round(p * 16).astype(np.int32) for p in polygons], True, colour, thickness, cv2.LINE_AA, shift=4)


def scene_picture(scene: Scene, ships: Sequence[Ship], max_side: int = 2048, zones: Sequence[Zone] = ()) -> NDArray[np.uint8]:
    """``scene`` at most ``max_side`` px wide or high, ships' boxes in red, ``zones`` in yellow."""
    scale = min(1.0, max_side / max(scene.width, scene.height))
    shape = (max(1, round(scene.height * scale)), max(1, round(scene.width * scale)))
    with SceneReader(scene) as reader:
        rgb = reader.read(Window(0, 0, scene.width, scene.height))[0] if scale == 1.0 else reader.read_decimated(shape)
    canvas = _bgr(rgb)  # the first three bands as red, green, blue
    thickness = max(1, round(min(shape) / 600))
    if zones and scene.georeferenced:
        rings = []
        for zone in zones:
            shape_px = aoi_in_pixels(zone.polygon, scene.crs, scene.transform)
            rings += [np.asarray(p.exterior.coords) * scale for p in getattr(shape_px, "geoms", [shape_px])]
        _outline(canvas, rings, _ZONE_BGR, thickness)
    if ships:
        _outline(canvas, list(_boxes(ships) * scale), _BOX_BGR, thickness)
    return canvas


def outlined(
    scene: Scene,
    groups: Sequence[tuple[NDArray[np.float64], tuple[int, int, int]]],
    zoom: int = 1,
    caption: str = "",
) -> NDArray[np.uint8]:
    """The whole of ``scene`` as a model reads it, enlarged ``zoom`` times, with outlines and a caption.

    Each group is (n, 4, 2) polygons in scene pixels and the BGR colour to
    outline them in. The first three bands show as red, green and blue; the
    caption is drawn in a strip above the scene.
    """
    rgb = scene_pixels(scene)
    canvas = _bgr(rgb, zoom)
    for polygons, colour in groups:
        _outline(canvas, list(np.asarray(polygons, np.float64).reshape(-1, 4, 2) * zoom), colour, zoom)
    if not caption:
        return canvas
    strip = np.zeros((24, canvas.shape[1], 3), np.uint8)
    cv2.putText(strip, caption, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([strip, canvas])


def ship_crop(scene: Scene, ship: Ship, min_half: int = 24, side: int = 96) -> NDArray[np.uint8]:
    """The ship with context (1.5 lengths each way), its box in red, enlarged to about ``side`` px when small."""
    half = int(max(min_half, ship.px_length * 1.5))
    col0, row0 = max(0, int(ship.px_cx) - half), max(0, int(ship.px_cy) - half)
    with SceneReader(scene) as reader:
        rgb, _ = reader.read(Window(col0, row0, 2 * half, 2 * half))
    zoom = max(1, side // (2 * half))
    img = _bgr(rgb, zoom)
    _outline(img, list(_boxes([ship], col0, row0) * zoom), _BOX_BGR, 1)
    return img


def draw_quicklook(scene: Scene, ships: Sequence[Ship], out: Path, max_side: int = 2048) -> Path:
    """Write a PNG of ``scene`` at most ``max_side`` px wide or high, boxes in red."""
    return write_png(out, scene_picture(scene, ships, max_side))


def write_png(out: Path, image_bgr: NDArray[np.uint8]) -> Path:
    """Write a BGR image as the PNG ``out``, atomically."""
    with atomic_path(out, ".png") as tmp:
        if not cv2.imwrite(str(tmp), image_bgr):
            raise OSError(errno.EIO, "the PNG could not be written", str(out))
    return out
