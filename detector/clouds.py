"""Clouds from Sentinel-2 L2A's scene classification (SCL), as a mask over a scene's pixels.

A band folder may hold the SCL file beside its bands (:func:`detector.raster.cloud_file`
finds it), on the bands' grid or a coarser one (20 m) over the same area; a
multi-band file may hold it as a band described ``SCL``, as Earth Engine exports it.
:func:`check_scl` refuses one over another area; :func:`clear_of_clouds` maps it
onto any window of the scene. Its cloud classes (:data:`SCL_CLOUD_CLASSES`) then
count as nodata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.windows import Window

from detector.errors import SceneReadError

__all__ = ["SCL_CLOUD_CLASSES", "check_scl", "clear_of_clouds"]

#: Scene classification (SCL) values masked as clouds: cloud medium probability, cloud high probability,
#: thin cirrus. Cloud shadows (3) are kept: SCL often calls dark water shadow, and ships show in shadow.
SCL_CLOUD_CLASSES = (8, 9, 10)


def check_scl(path: Path, ds: rasterio.DatasetReader, grid: rasterio.DatasetReader) -> None:
    """Check that the SCL dataset ``ds`` (file ``path``) covers the area of the bands' ``grid``, in their CRS.

    Raises:
        SceneReadError: another CRS, or bounds more than one SCL pixel apart.
    """
    ok = (
        ds.count >= 1
        and ds.crs == grid.crs
        and all(abs(a - b) <= max(abs(ds.res[0]), abs(ds.res[1])) for a, b in zip(ds.bounds, grid.bounds, strict=True))
    )
    if not ok:
        raise SceneReadError(
            f"{path}: scene classification grid ({ds.width}x{ds.height}, {ds.crs}, "
            f"bounds {tuple(round(b, 1) for b in ds.bounds)}) does not cover the bands' ({grid.width}x{grid.height}, "
            f"{grid.crs}, bounds {tuple(round(b, 1) for b in grid.bounds)}); export SCL over the same area and CRS "
            "as the bands, or remove it to read the scene without a cloud mask"
        )


def clear_of_clouds(
    ds: rasterio.DatasetReader,
    band: int,
    window: Window,
    transform: Affine | None,
    width: int,
    height: int,
    shape: tuple[int, int],
) -> NDArray[np.bool_]:
    """Pixels not cloud by band ``band`` (SCL) of ``ds``, over ``window`` of a ``width`` x ``height`` scene, at ``shape``.

    Each output pixel takes the SCL pixel under its centre, placed by the two
    geotransforms (an SCL grid offset from the bands' is mapped where it lies);
    grids without one are taken to span the same area. SCL pixels beyond the
    file are clear.
    """
    to_scl = ~ds.transform * transform if transform is not None and ds.transform != Affine.identity() else None
    if to_scl is None or max(abs(to_scl.b), abs(to_scl.d)) > 1e-9:  # no map grid, or one turned against the other: by size
        to_scl = Affine.scale(ds.width / width, ds.height / height)
    h, w = shape
    x = window.col_off + (np.arange(w) + 0.5) * window.width / w
    y = window.row_off + (np.arange(h) + 0.5) * window.height / h
    cols = np.floor(to_scl.a * x + to_scl.c).astype(np.int64)
    rows = np.floor(to_scl.e * y + to_scl.f).astype(np.int64)
    inside_c, inside_r = (cols >= 0) & (cols < ds.width), (rows >= 0) & (rows < ds.height)
    clear = np.ones(shape, bool)
    if not inside_c.any() or not inside_r.any():
        return clear
    c0, c1 = int(cols[inside_c].min()), int(cols[inside_c].max())
    r0, r1 = int(rows[inside_r].min()), int(rows[inside_r].max())
    scl = ds.read(band, window=Window(c0, r0, c1 - c0 + 1, r1 - r0 + 1))
    picked = scl[np.ix_(rows[inside_r] - r0, cols[inside_c] - c0)]
    clear[np.ix_(inside_r, inside_c)] = ~np.isin(picked, SCL_CLOUD_CLASSES)
    return clear
