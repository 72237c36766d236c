#!/usr/bin/env python3
"""Cut the simulator's library of real Sentinel-2 ship, water and land chips from sen2ships.

    python datasets/s2_chips.py ../shared/data/sen2ships-dev detector/data/s2_chips.npz

Ships: up to 8 per port, each labelled ship 6-45 px long whose surroundings are dark in B08 (on
water), cropped with a margin, with its mask; bands B02, B03, B04, B08 as
uint16 L2A digital numbers. Water and land: up to 3 each per port, 48 px patches without ships, dark
(water) or bright (land) in B08. Deterministic. The chips are modified
Copernicus Sentinel data from sen2ships (MIT); see detector/data/README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from detector.chips import rle_decode
from detector.raster import band_files

BANDS = ("B02", "B03", "B04", "B08")
PATCH = 48


def main() -> None:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    data = json.loads((root / "annotations.json").read_text())
    arrays: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    n_ship = n_water = n_land = 0
    for image in sorted(data["images"], key=lambda i: i["file_name"]):
        port = image["file_name"].split("_rgb")[0]
        files = band_files(root / port)
        if not all(b in files for b in BANDS):
            continue
        stack = np.stack([rasterio.open(files[b]).read(1) for b in BANDS])
        h, w = stack.shape[1:]
        ships = np.zeros((h, w), bool)
        anns = [a for a in data["annotations"] if a["image_id"] == image["id"]]
        masks = [rle_decode(a["segmentation"], h, w) for a in anns]
        for m in masks:
            ships |= m
        nir = stack[3].astype(float)
        water_level = np.percentile(nir, 30)
        port_ships = 0
        for m in masks:
            if port_ships == 8:
                break
            ys, xs = np.nonzero(m)
            (_, _), (a, b), _ = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
            if not 6 <= max(a, b) <= 45:
                continue
            y0, y1, x0, x1 = max(ys.min() - 6, 0), min(ys.max() + 7, h), max(xs.min() - 6, 0), min(xs.max() + 7, w)
            ring = ~m[y0:y1, x0:x1] & ~ships[y0:y1, x0:x1]
            if np.median(nir[y0:y1, x0:x1][ring]) > 1.5 * water_level:
                continue  # not on open water
            arrays[f"ship_{n_ship}"] = stack[:, y0:y1, x0:x1]
            arrays[f"mask_{n_ship}"] = m[y0:y1, x0:x1]
            n_ship += 1
            port_ships += 1
        free = cv2.dilate(ships.astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
        port_water = port_land = 0
        for _ in range(400):
            y, x = int(rng.integers(0, h - PATCH)), int(rng.integers(0, w - PATCH))
            if not free[y : y + PATCH, x : x + PATCH].all():
                continue
            level = np.median(nir[y : y + PATCH, x : x + PATCH])
            if level < water_level and port_water < 3:
                arrays[f"water_{n_water}"] = stack[:, y : y + PATCH, x : x + PATCH]
                n_water += 1
                port_water += 1
            elif level > 3 * water_level and port_land < 3:
                arrays[f"land_{n_land}"] = stack[:, y : y + PATCH, x : x + PATCH]
                n_land += 1
                port_land += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"{n_ship} ships, {n_water} water and {n_land} land patches -> {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
