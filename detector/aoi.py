"""Areas of interest: where a scene is worth reading.

An AOI is a GeoJSON file (RFC 7946: lon/lat on WGS84) of Polygon or
MultiPolygon geometries, as a FeatureCollection, a Feature or a bare geometry.
Inside a scene it is used in pixel space: windows that miss it are never read,
and ships whose centre lies outside it are not reported. A scene that is
stretched to 8 bits is stretched by the AOI's surroundings
(:func:`stretch_window`), not by the whole scene.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from detector.errors import GeoreferenceError, UsageError

__all__ = ["STRETCH_CONTEXT_M", "aoi_digest", "aoi_in_pixels", "load_aoi", "stretch_window"]

#: The side of the square around an AOI whose pixels set a scene's stretch, in ground metres:
#: a little over the port crops the Sentinel-2 models learnt on (sen2ships, 6-16 km across).
#: A 110 km product is then stretched like a crop of its port, not by its whole tile, and a
#: tight AOI not by its own few pixels: stretched by squares of 100, 200, 400 and 700 px
#: around ships, the shipped ensemble's in-sample F1 on the nine dev ports fell to 0.846,
#: 0.895, 0.893 and 0.907, from 0.915, 0.927, 0.917 and 0.919 stretched by the whole crop
#: (``scripts/aoi_stretch.py``, which also measures a port inside a large tile).
STRETCH_CONTEXT_M = 20_000.0


def load_aoi(path: Path) -> BaseGeometry:
    """The union of the polygons in a GeoJSON file, in lon/lat.

    Raises:
        UsageError: unreadable file, no polygons, or invalid polygons.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the AOI as GeoJSON ({exc}); pass a GeoJSON polygon file") from exc
    if data.get("type") == "FeatureCollection":
        geometries = [f.get("geometry") for f in data.get("features", [])]
    elif data.get("type") == "Feature":
        geometries = [data.get("geometry")]
    else:
        geometries = [data]
    shapes = []
    for i, g in enumerate(geometries):
        if not g or g.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        shape = shapely.geometry.shape(g)
        if not shape.is_valid:
            raise UsageError(
                f"{path}: polygon {i} is invalid ({shapely.is_valid_reason(shape)}); fix it (e.g. shapely make_valid)"
            )
        shapes.append(shape)
    if not shapes:
        raise UsageError(f"{path}: holds no Polygon or MultiPolygon; draw the area of interest as a polygon")
    union = shapely.union_all(shapes)
    minx, miny, maxx, maxy = union.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise UsageError(f"{path}: coordinates are not lon/lat degrees; GeoJSON AOIs are WGS84 lon/lat (RFC 7946)")
    return union


def aoi_digest(aoi: BaseGeometry) -> str:
    """A stable digest of an AOI geometry, for settings hashes."""
    return hashlib.sha256(shapely.to_wkb(shapely.normalize(aoi), hex=False)).hexdigest()


def aoi_in_pixels(aoi: BaseGeometry, crs: CRS | None, transform: Affine | None) -> BaseGeometry:
    """The lon/lat AOI in a scene's pixel coordinates (col, row).

    Raises:
        GeoreferenceError: the scene is not georeferenced.
    """
    if crs is None or transform is None:
        raise GeoreferenceError("an AOI needs a georeferenced scene; georeference it or drop --aoi")
    to_crs = Transformer.from_crs("EPSG:4326", ProjCRS.from_wkt(crs.to_wkt()), always_xy=True)
    inverse = ~transform
    dense = shapely.segmentize(aoi, 0.001)  # ~100 m: edges bend when projected

    def to_pixels(coords: np.ndarray) -> np.ndarray:
        x, y = to_crs.transform(coords[:, 0], coords[:, 1])
        col = inverse.a * np.asarray(x) + inverse.b * np.asarray(y) + inverse.c
        row = inverse.d * np.asarray(x) + inverse.e * np.asarray(y) + inverse.f
        return np.column_stack([col, row])

    return shapely.transform(dense, to_pixels)


def stretch_window(aoi_px: BaseGeometry, width: int, height: int, side: float) -> Window:
    """The window whose pixels stretch a scene for an AOI: the AOI's bounds, grown to ``side`` px.

    Each axis is grown about the AOI's centre to at least ``side`` pixels, then
    moved, not cut, to lie inside the ``width`` x ``height`` scene, so a scene
    no larger than ``side`` is stretched whole, as without an AOI. An AOI
    wholly outside the scene gives the whole scene.
    """
    minx, miny, maxx, maxy = aoi_px.bounds
    if aoi_px.is_empty or maxx <= 0 or maxy <= 0 or minx >= width or miny >= height:
        return Window(0, 0, width, height)

    def span(low: float, high: float, size: int) -> tuple[int, int]:
        low, high = max(low, 0.0), min(high, float(size))
        length = min(size, max(math.ceil(high - low), math.ceil(side)))
        start = min(max(0, round((low + high - length) / 2)), size - length)
        return start, length

    col, cols = span(minx, maxx, width)
    row, rows = span(miny, maxy, height)
    return Window(col, row, cols, rows)
