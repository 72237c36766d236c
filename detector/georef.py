"""Pixel boxes to the ground: map corners, lon/lat, metres and headings.

Corners go through the scene's full affine transform (rotated and sheared
grids included) to the scene CRS, then to WGS84. Lengths, beams and headings
are measured geodesically on WGS84 from those points, so they are true ground
metres whatever the projection: a Web Mercator "10 m" pixel at 43°N is about
7.3 m on the ground, and it is measured as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS as ProjCRS
from pyproj import Geod, Transformer
from pyproj.exceptions import CRSError
from rasterio.crs import CRS

from detector.errors import GeoreferenceError
from detector.records import Detections, obb_corners

__all__ = ["Georeferencer", "GroundBoxes", "ground_sample_distance"]

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class GroundBoxes:
    """Ground geometry of N boxes, as parallel arrays (NaN where unknown).

    ``corners_crs`` and ``corners_lonlat`` are (N, 4, 2); the rest are (N,).
    """

    corners_crs: NDArray[np.float64]
    corners_lonlat: NDArray[np.float64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    length_m: NDArray[np.float64]
    beam_m: NDArray[np.float64]
    heading_deg: NDArray[np.float64]


class Georeferencer:
    """Maps pixel OBBs of one scene to the ground.

    Args:
        crs, transform: the scene's georeferencing; both None for an
            ungeoreferenced scene.
        gsd_m: metres per pixel for an ungeoreferenced scene (sizes only).

    Raises:
        GeoreferenceError: a CRS that PROJ cannot use.
    """

    def __init__(self, crs: CRS | None, transform: Affine | None, gsd_m: float | None = None) -> None:
        self.transform = transform
        self.gsd_m = gsd_m
        self._to_lonlat: Transformer | None = None
        if crs is not None and transform is not None:
            try:
                self._to_lonlat = Transformer.from_crs(ProjCRS.from_wkt(crs.to_wkt()), "EPSG:4326", always_xy=True)
            except CRSError as exc:
                raise GeoreferenceError(
                    f"CRS {crs} is not usable by PROJ ({exc}); reproject the scene (gdalwarp -t_srs)"
                ) from exc

    @property
    def georeferenced(self) -> bool:
        return self._to_lonlat is not None

    def pixel_to_crs(
        self, cols: NDArray[np.float64], rows: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Scene CRS coordinates of pixel positions (col, row), corner convention."""
        if self.transform is None:
            raise GeoreferenceError("scene has no geotransform")
        t = self.transform
        return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f

    def pixel_to_lonlat(
        self, cols: NDArray[np.float64], rows: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self._to_lonlat is None:
            raise GeoreferenceError("scene has no CRS")
        x, y = self.pixel_to_crs(cols, rows)
        lon, lat = self._to_lonlat.transform(x, y)
        return np.asarray(lon, np.float64), np.asarray(lat, np.float64)

    def ground(self, detections: Detections) -> GroundBoxes:
        """Ground geometry of every box in ``detections``."""
        n = len(detections)
        obb = detections.obb
        nan = np.full(n, np.nan)
        if not self.georeferenced:
            scale = self.gsd_m if self.gsd_m else np.nan
            empty = np.full((n, 4, 2), np.nan)
            return GroundBoxes(empty, empty, nan, nan, obb[:, 2] * scale, obb[:, 3] * scale, nan.copy())
        corners = obb_corners(obb)
        a = np.deg2rad(obb[:, 4])
        ux, uy = np.cos(a) * obb[:, 2] / 2, np.sin(a) * obb[:, 2] / 2  # half long axis
        vx, vy = -np.sin(a) * obb[:, 3] / 2, np.cos(a) * obb[:, 3] / 2  # half short axis
        cx, cy = obb[:, 0], obb[:, 1]
        # centre, both ends of the long axis, both ends of the short axis
        cols = np.stack([cx, cx + ux, cx - ux, cx + vx, cx - vx], axis=1)
        rows = np.stack([cy, cy + uy, cy - uy, cy + vy, cy - vy], axis=1)
        lon, lat = self.pixel_to_lonlat(cols.ravel(), rows.ravel())
        lon, lat = lon.reshape(n, 5), lat.reshape(n, 5)
        az, _, length = _GEOD.inv(lon[:, 2], lat[:, 2], lon[:, 1], lat[:, 1])
        _, _, beam = _GEOD.inv(lon[:, 4], lat[:, 4], lon[:, 3], lat[:, 3])
        cx_crs, cy_crs = self.pixel_to_crs(corners[..., 0].ravel(), corners[..., 1].ravel())
        clon, clat = self.pixel_to_lonlat(corners[..., 0].ravel(), corners[..., 1].ravel())
        return GroundBoxes(
            corners_crs=np.stack([cx_crs, cy_crs], axis=1).reshape(n, 4, 2),
            corners_lonlat=np.stack([clon, clat], axis=1).reshape(n, 4, 2),
            lon=lon[:, 0],
            lat=lat[:, 0],
            length_m=np.asarray(length, np.float64).reshape(n),
            beam_m=np.asarray(beam, np.float64).reshape(n),
            heading_deg=np.mod(np.asarray(az, np.float64).reshape(n), 180.0),
        )


def ground_sample_distance(crs: CRS | None, transform: Affine | None, width: int, height: int) -> float | None:
    """True ground metres per pixel at the scene centre (mean of both axes)."""
    if crs is None or transform is None:
        return None
    geo = Georeferencer(crs, transform)
    c, r = width / 2.0, height / 2.0
    lon, lat = geo.pixel_to_lonlat(np.array([c, c + 1.0, c]), np.array([r, r, r + 1.0]))
    _, _, dx = _GEOD.inv(lon[0], lat[0], lon[1], lat[1])
    _, _, dy = _GEOD.inv(lon[0], lat[0], lon[2], lat[2])
    return float((dx + dy) / 2.0)
