"""Window math: where the model looks in a scene.

Windows are squares of the model's input size laid on a regular grid with a
given overlap. The last window of a row or column is moved back so that it
ends at the scene edge (as SAHI does), so every window is full of scene data
unless the scene is smaller than a window; then the window extends past the
scene and the reader pads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from rasterio.windows import Window

__all__ = ["overlap_for_gsd", "tile_windows", "window_count", "window_starts"]

#: Longest ship the default overlap is sized for, in metres (a VLCC is ~330 m).
MAX_SHIP_LENGTH_M = 400.0


def window_starts(extent: int, size: int, overlap: int) -> list[int]:
    """Offsets of windows of ``size`` px along an axis of ``extent`` px.

    Neighbouring windows share at least ``overlap`` px; the first starts at 0
    and the last ends at ``extent`` (or starts at 0 if ``extent <= size``).

    Raises:
        ValueError: if ``size <= 0``, ``extent <= 0`` or ``overlap`` is not in
            ``[0, size)``.
    """
    if size <= 0 or extent <= 0:
        raise ValueError(f"size and extent must be positive, got size={size}, extent={extent}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be in [0, {size}), got {overlap}")
    if extent <= size:
        return [0]
    stride = size - overlap
    n = math.ceil((extent - size) / stride) + 1
    return [min(i * stride, extent - size) for i in range(n)]


def tile_windows(width: int, height: int, size: int, overlap: int) -> Iterator[Window]:
    """Windows covering a ``width`` x ``height`` scene, row by row (block order)."""
    cols = window_starts(width, size, overlap)
    for row in window_starts(height, size, overlap):
        for col in cols:
            yield Window(col, row, size, size)


def window_count(width: int, height: int, size: int, overlap: int) -> int:
    """How many windows :func:`tile_windows` lays, without laying them."""
    return len(window_starts(width, size, overlap)) * len(window_starts(height, size, overlap))


def overlap_for_gsd(gsd_m: float | None, size: int, max_ship_m: float = MAX_SHIP_LENGTH_M) -> int:
    """Default overlap in px: the longest expected ship, within [32, size // 2].

    Without a ground sample distance, a quarter of the window is used.
    """
    if gsd_m is None or gsd_m <= 0:
        return size // 4
    return int(min(max(math.ceil(max_ship_m / gsd_m), 32), size // 2))
