"""Merging boxes across window seams, in scene pixels.

Overlapping windows see a ship near a seam twice: whole in one window and
either whole or cut by the window edge in the other. Boxes from different
windows that cover each other (intersection over the smaller box >= a
threshold) are the same ship; the one not cut by an inner window edge wins,
then the higher score. A cut box is only a fragment of its ship, so it is
matched to the whole box at a lower threshold. Boxes from the same window are left alone: the model's
own suppression already ran there, and in a dense marina neighbours touch.

Boxes cut by the edge of the scene or of valid data are a separate matter:
their extent is unknown, see :func:`touches_invalid`.
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

from detector.records import Detections

__all__ = ["DEFAULT_MERGE_IOS", "DEFAULT_MERGE_IOS_CUT", "EDGE_MARGIN_PX", "cut_by_window", "merge_seams", "touches_invalid"]

#: Intersection over the smaller box above which two boxes are one ship.
DEFAULT_MERGE_IOS = 0.5
#: The same, when one of the boxes is cut by a window edge (a fragment).
DEFAULT_MERGE_IOS_CUT = 0.25
#: A corner this close to an edge (px) counts as cut by it.
EDGE_MARGIN_PX = 2.0


def cut_by_window(
    detections: Detections, size: int, width: int, height: int, margin: float = EDGE_MARGIN_PX
) -> NDArray[np.bool_]:
    """True where a box reaches an edge of its window that lies inside the scene."""
    corners = detections.corners()
    col0 = detections.window[:, 0].astype(np.float64)
    row0 = detections.window[:, 1].astype(np.float64)
    xmin, xmax = corners[..., 0].min(axis=1), corners[..., 0].max(axis=1)
    ymin, ymax = corners[..., 1].min(axis=1), corners[..., 1].max(axis=1)
    cut = (col0 > 0) & (xmin < col0 + margin)
    cut |= (col0 + size < width) & (xmax > col0 + size - margin)
    cut |= (row0 > 0) & (ymin < row0 + margin)
    cut |= (row0 + size < height) & (ymax > row0 + size - margin)
    return cut


def touches_invalid(detections: Detections, width: int, height: int, margin: float = EDGE_MARGIN_PX) -> NDArray[np.bool_]:
    """True where the scene edge cuts a box across its length.

    Such a ship may run on outside the scene, so its length and position are
    unknown. A box that reaches the edge only along its long side (the long
    axis within 45° of the edge) is whole enough to keep.
    """
    corners = detections.corners()
    angle = np.deg2rad(detections.obb[:, 4])
    along_cols = np.abs(np.cos(angle)) >= np.sqrt(0.5)  # long axis points at the left/right edges
    at_side = (corners[..., 0].min(axis=1) < margin) | (corners[..., 0].max(axis=1) > width - margin)
    at_top_bottom = (corners[..., 1].min(axis=1) < margin) | (corners[..., 1].max(axis=1) > height - margin)
    return (at_side & along_cols) | (at_top_bottom & ~along_cols)


def merge_seams(
    detections: Detections,
    cut: NDArray[np.bool_],
    min_ios: float = DEFAULT_MERGE_IOS,
    min_ios_cut: float = DEFAULT_MERGE_IOS_CUT,
) -> Detections:
    """Keep one box per ship across windows.

    Args:
        detections: boxes in scene pixels, each tagged with its window.
        cut: per box, whether an inner window edge cuts it (:func:`cut_by_window`).
        min_ios: intersection over the smaller area above which boxes from
            different windows are the same ship.
        min_ios_cut: the same threshold when either box is cut.

    Returns:
        The kept boxes, in canonical order (:meth:`Detections.sorted`).
    """
    n = len(detections)
    if n == 0:
        return detections
    polygons = shapely.polygons(detections.corners())
    areas = shapely.area(polygons)
    left, right = shapely.STRtree(polygons).query(polygons, predicate="intersects")
    pair = left < right
    left, right = left[pair], right[pair]
    other_window = (detections.window[left] != detections.window[right]).any(axis=1)
    left, right = left[other_window], right[other_window]
    inter = shapely.area(shapely.intersection(polygons[left], polygons[right]))
    ios = inter / np.maximum(np.minimum(areas[left], areas[right]), 1e-9)
    same = ios >= np.where(cut[left] | cut[right], min_ios_cut, min_ios)
    left, right = left[same], right[same]
    # Priority: whole boxes before cut ones, then score, then a stable tie-break.
    order = np.lexsort((np.arange(n), -detections.score.astype(np.float64), cut.astype(np.int8)))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        neighbours[a].append(b)
        neighbours[b].append(a)
    suppressed = np.zeros(n, bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        for j in neighbours[i]:
            if rank[j] > rank[i]:
                suppressed[j] = True
    return detections[np.array(keep, np.int64)].sorted()
