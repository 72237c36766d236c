#!/usr/bin/env python3
"""Write a DOTA / YOLO-OBB image as a georeferenced GeoTIFF.

DOTA crops are not georeferenced. To test the whole chain on real ships, this
places one on a map grid: a chosen CRS, pixel size and origin, optionally
upscaled (cubic) so that window seams cut ships. Labels are not changed; scale
them by ``--upscale`` when comparing.

    python datasets/dota_geotiff.py IMAGE OUT.tif [--crs EPSG:32653] [--pixel 0.3] [--upscale 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import rasterio
from rasterio.transform import from_origin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detector.errors import ShipwatchError, UsageError, bad_input_exit
from detector.export import atomic_path


def write_geotiff(
    image: Path,
    out: Path,
    crs: str = "EPSG:32653",
    pixel_m: float = 0.3,
    origin: tuple[float, float] = (500000.0, 4750000.0),
    upscale: int = 1,
    acquired: str | None = None,
) -> Path:
    """Write ``image`` (any format OpenCV reads) as a tiled, compressed 3-band GeoTIFF.

    ``pixel_m`` is the pixel size of the output; ``acquired`` is written as
    the TIFF date tag (``YYYY:MM:DD HH:MM:SS``).
    """
    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UsageError(f"{image}: not an image OpenCV can read; pass a DOTA image (PNG or JPEG)")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    if upscale != 1:
        rgb = cv2.resize(rgb, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    profile = {
        "driver": "GTiff",
        "width": rgb.shape[1],
        "height": rgb.shape[0],
        "count": 3,
        "dtype": "uint8",
        "crs": crs,
        "transform": from_origin(origin[0], origin[1], pixel_m, pixel_m),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "jpeg",
        "photometric": "ycbcr",
        "jpeg_quality": 92,
    }
    with atomic_path(out, ".tif") as tmp, rasterio.open(tmp, "w", **profile) as ds:
        ds.write(rgb.transpose(2, 0, 1))
        if acquired:
            ds.update_tags(TIFFTAG_DATETIME=acquired)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--crs", default="EPSG:32653")
    p.add_argument("--pixel", type=float, default=0.3, help="output pixel size in CRS units")
    p.add_argument("--origin", type=float, nargs=2, default=(500000.0, 4750000.0), metavar=("X", "Y"))
    p.add_argument("--upscale", type=int, default=1)
    p.add_argument("--acquired", help="TIFF date tag, YYYY:MM:DD HH:MM:SS")
    a = p.parse_args()
    try:
        write_geotiff(a.image, a.out, a.crs, a.pixel, tuple(a.origin), a.upscale, a.acquired)
    except (ShipwatchError, OSError) as exc:
        return bad_input_exit(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
