#!/usr/bin/env python3
"""Copies of labelled Sentinel-2 band folders under a synthetic cloud, with or without its SCL, to measure clouds.

Nothing masks a cloud unless the folder holds Sentinel-2 L2A's scene
classification (SCL); this writes scenes to measure both cases on real ships:

    python datasets/synthetic_cloud.py ../shared/data/sen2ships-dev --out data/cloudy --cover 0.3 --brightness 2
    python datasets/synthetic_cloud.py ../shared/data/sen2ships-dev --out data/cloudy-scl --cover 0.3 --brightness 2 --scl
    python scripts/evaluate.py --weights s2-ensemble --coco data/cloudy/annotations.json --scenes data/cloudy --json out/c.json

The figures in models/sentinel2.md ("Bright cloud") are its four-fold command
(Reproduce, with the AdamW pair's fold models) with ``--coco`` and ``--scenes``
pointing at such a copy, so that each port is scored by models that never saw it.

The cloud is a smooth random field (Gaussian, sigma 40 px) thresholded to
``--cover`` of each scene, soft-edged, kept ``--clear`` px away from every
labelled ship so that the labels stay true; in every band it blends towards
``--brightness`` times the band's brightest land (its 99.9th percentile of
valid pixels). ``--scl`` adds the scene classification at 20 m: 9 (cloud high
probability) where the cloud is at least half opaque, 8 (medium) down to a
tenth, 4 (vegetation) elsewhere, as L2A marks thick cloud and misses the
thinnest edge. The same ``--seed`` gives the same clouds with and without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import rasterio
from affine import Affine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detector.chips import rle_decode
from detector.errors import ShipwatchError, UsageError, bad_input_exit
from detector.export import atomic_path, atomic_write_text


def cloud_opacity(shape: tuple[int, int], ships: np.ndarray, cover: float, clear_px: int, rng: np.random.Generator) -> np.ndarray:
    """Opacity in [0, 1] over ``cover`` of the pixels, soft-edged, 0 within ``clear_px`` of a ship."""
    if cover <= 0:
        return np.zeros(shape, np.float32)
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 40)
    edge = np.quantile(field, 1 - cover)
    alpha = np.clip((field - edge) / (field.std() * 0.3) + 0.5, 0, 1).astype(np.float32)
    side = 2 * clear_px + 1
    alpha[cv2.dilate(ships.astype(np.uint8), np.ones((side, side), np.uint8)) > 0] = 0
    return alpha


def scene_classification(alpha: np.ndarray) -> np.ndarray:
    """SCL at half the resolution: 9 where the cloud is at least half opaque, 8 down to a tenth, else 4."""
    h, w = alpha.shape
    coarse = cv2.resize(alpha, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
    return np.where(coarse >= 0.5, 9, np.where(coarse >= 0.1, 8, 4)).astype(np.uint8)


def write_cloudy(root: Path, out: Path, cover: float, brightness: float, clear_px: int, scl: bool, seed: int) -> list[str]:
    """Write ``out/annotations.json`` and a cloudy copy of each labelled port's band folder; return the ports."""
    annotations = root / "annotations.json"
    try:
        data = json.loads(annotations.read_text())
        images = data["images"]
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{annotations}: not a COCO file with images ({exc}); pass a folder like sen2ships-dev") from None
    rng = np.random.default_rng(seed)
    ports = []
    for image in sorted(images, key=lambda i: i["file_name"]):
        port = str(image["file_name"]).split("_rgb")[0]
        folder = root / port
        if not folder.is_dir():
            raise UsageError(f"{folder}: no band folder for {image['file_name']}; pass the folder that holds the ports")
        h, w = image["height"], image["width"]
        ships = np.zeros((h, w), bool)
        for a in data.get("annotations", []):
            if a["image_id"] == image["id"] and isinstance(a.get("segmentation"), dict):
                ships |= rle_decode(a["segmentation"], h, w)
        alpha = cloud_opacity((h, w), ships, cover, clear_px, rng)
        bands = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        for band in bands:
            with rasterio.open(band) as src:
                profile, pixels = src.profile, src.read(1).astype(np.float32)
            valid = pixels > 0
            top = brightness * float(np.percentile(pixels[valid], 99.9)) if valid.any() else 0.0
            cloudy = np.where(valid, (1 - alpha) * pixels + alpha * top, 0)
            with atomic_path(out / port / band.name, ".tif") as tmp, rasterio.open(tmp, "w", **profile) as dst:
                dst.write(np.clip(cloudy, 0, 65535).astype(profile["dtype"]), 1)
        if scl and bands:
            classes = scene_classification(alpha)
            with rasterio.open(bands[0]) as src:
                profile, t = src.profile, src.transform
            profile.update(
                dtype="uint8", nodata=None, width=classes.shape[1], height=classes.shape[0],
                transform=Affine(t.a * w / classes.shape[1], t.b, t.c, t.d, t.e * h / classes.shape[0], t.f),
            )  # fmt: skip
            name = f"{port}_SCL.tif"
            with atomic_path(out / port / name, ".tif") as tmp, rasterio.open(tmp, "w", **profile) as dst:
                dst.write(classes, 1)
        ports.append(f"{port}: {float((alpha >= 0.5).mean()):.0%} under cloud")
    atomic_write_text(out / "annotations.json", annotations.read_text())
    return ports


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="annotations.json and one band folder per port (sen2ships layout)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cover", type=float, default=0.3, help="share of each scene under cloud (default 0.3)")
    p.add_argument("--brightness", type=float, default=2.0, help="times each band's brightest land (default 2)")
    p.add_argument("--clear", type=int, default=30, help="px kept clear around labelled ships (default 30)")
    p.add_argument("--scl", action="store_true", help="write the scene classification (SCL) that marks the cloud")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if not 0 <= a.cover < 1 or a.brightness <= 0 or a.clear < 0:
        p.error("--cover must be in [0, 1), --brightness above 0, --clear at least 0")
    try:
        for line in write_cloudy(a.root, a.out, a.cover, a.brightness, a.clear, a.scl, a.seed):
            print(line)
    except (ShipwatchError, OSError) as exc:
        return bad_input_exit(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
