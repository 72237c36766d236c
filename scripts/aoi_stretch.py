#!/usr/bin/env python3
"""How the region a 16-bit scene is stretched by changes what a model finds: the measurements behind `--aoi`.

  python scripts/aoi_stretch.py --coco ../shared/data/sen2ships-dev/annotations.json \\
      --scenes ../shared/data/sen2ships-dev --json out/aoi_stretch.json

Two measurements, each at the model's operating threshold, scored by
evaluate.py's rule (a labelled ship is found when a box's centre lies in its
outline, one to one):

  * tight: squares of each --sides px around --picks labelled ships per port
    (seeded), ships inside the square, stretched by the whole crop against
    stretched by the square alone;
  * tile: each port put in a tile of its own pixels mirrored out to past the
    20 km stretch context, then land --bright times as bright as the crop's
    99.9th percentile over three quarters of the tile (a stress case, not a
    real Sentinel-2 tile); the port's ships stretched as the crop, by the
    whole tile, and by the port's surroundings (what detect does with --aoi
    of the port).

The tiles are written under a temporary folder, one port at a time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import rasterio
import shapely

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.aoi import STRETCH_CONTEXT_M, stretch_window  # noqa: E402
from detector.engine import DetectSettings, detect_scene, window_side  # noqa: E402
from detector.errors import ShipwatchError, UsageError, bad_input_exit  # noqa: E402
from detector.export import atomic_write_text  # noqa: E402
from detector.georef import ground_sample_distance  # noqa: E402
from detector.raster import Scene, open_named_bands, stretched_over  # noqa: E402
from detector.records import Detections  # noqa: E402
from detector.tiling import overlap_for_gsd  # noqa: E402


def script(relpath: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(relpath).stem, REPO / relpath)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[module.__name__] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def mirrored_tile(crop: Scene, bands: tuple[str, ...], context_px: float, bright: float, folder: Path) -> Scene:
    """The crop's bands in a tile: mirrored to past ``context_px``, then bright land over the rest (3/4)."""
    land_from = math.ceil(max(context_px, crop.width, crop.height)) + 100
    side = 2 * land_from
    folder.mkdir(parents=True)
    for ref in crop.bands:
        with rasterio.open(ref.path) as ds:
            band, profile = ds.read(ref.index), ds.profile
        tile = np.pad(band, ((0, land_from - band.shape[0]), (0, land_from - band.shape[1])), mode="reflect")
        tile = np.pad(tile, ((0, side - land_from), (0, side - land_from)))
        tile[land_from:, :] = tile[:, land_from:] = min(np.iinfo(band.dtype).max, bright * np.percentile(band, 99.9))
        profile.update(count=1, width=side, height=side, tiled=True, blockxsize=512, blockysize=512, compress="deflate")
        with rasterio.open(folder / ref.path.name, "w", **profile) as out:
            out.write(tile, 1)
    return open_named_bands(folder, bands)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco", type=Path, required=True, help="COCO annotations (sen2ships)")
    p.add_argument("--scenes", type=Path, required=True, help="folder of the ports' band folders")
    p.add_argument("--weights", default="s2-ensemble", help="a registry name (default s2-ensemble)")
    p.add_argument("--ports", help="comma-separated ports (default: all in --coco)")
    p.add_argument("--sides", default="100,200,400,700", help="tight squares' sides, px (default 100,200,400,700)")
    p.add_argument("--picks", type=int, default=4, help="ships per port the squares centre on (default 4)")
    p.add_argument("--bright", type=float, default=1.5, help="the tile's land over the crop's 99.9th percentile")
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args()
    try:
        a.sides = [int(side) for side in a.sides.split(",")]
    except ValueError:
        p.error(f"--sides {a.sides}: give whole pixels joined by commas, 100,200")
    try:
        return run(a)
    except (ShipwatchError, OSError) as exc:
        return bad_input_exit(exc)


def run(a: argparse.Namespace) -> int:
    ev, build = script("scripts/evaluate.py"), script("datasets/build.py")
    paths, member_bands, spec = ev.members_of(a.weights, None)
    if spec is None or spec.conf is None:
        raise UsageError(f"--weights {a.weights}: not a registry model with a threshold; pass one (s2-ensemble, yolo26n-obb-s2)")
    detector, bands = ev.load_detector(paths, member_bands)
    conf, scale = spec.conf, spec.scale
    ports = a.ports.split(",") if a.ports else []  # none: every port of --coco
    counts: dict[str, list[int]] = {}
    rng = np.random.default_rng(0)
    done: list[str] = []

    def score(name: str, scene: Scene, settings: DetectSettings, area: shapely.Polygon, labels: np.ndarray) -> int:
        found = detect_scene(scene, detector, settings, aoi=area).detections
        keep = (found.score >= conf) & shapely.contains_xy(area, found.obb[:, 0], found.obb[:, 1])
        found = Detections(found.obb[keep], found.score[keep], found.class_id[keep], found.window[keep])
        matched = len(ev.matches(labels, found)[0])
        c = counts.setdefault(name, [0, 0, 0])
        c[0] += matched
        c[1] += len(found)
        c[2] += len(labels)
        return matched

    with tempfile.TemporaryDirectory() as tmp:
        for port, image, anns in build.coco_images(a.coco, ports):
            done.append(port)
            crop, labels = build.coco_scene(a.coco, a.scenes, bands, port, image, anns)
            gsd = ground_sample_distance(crop.crs, crop.transform, crop.width, crop.height)
            settings = DetectSettings(
                overlap=overlap_for_gsd(gsd, window_side(detector.input_size, scale)), classes=[0], scale=scale
            )
            centres = labels.mean(axis=1)
            for i in rng.choice(len(labels), size=min(a.picks, len(labels)), replace=False):
                for side in a.sides:
                    square = shapely.box(*(centres[i] - side / 2), *(centres[i] + side / 2))
                    inside = labels[shapely.contains_xy(square, centres[:, 0], centres[:, 1])]
                    window = stretch_window(square, crop.width, crop.height, 0)
                    score(f"tight {side} px, stretched by the crop", crop, settings, square, inside)
                    score(f"tight {side} px, stretched by the square", stretched_over(crop, window), settings, square, inside)
            context_px = STRETCH_CONTEXT_M / gsd
            tile = mirrored_tile(crop, bands, context_px, a.bright, Path(tmp) / port)
            port_area = shapely.box(0, 0, crop.width, crop.height)
            around = stretched_over(tile, stretch_window(port_area, tile.width, tile.height, context_px))
            per_port = {}
            for name, scene in (("tile: the crop", crop), ("tile: stretched by the tile", tile), ("tile: --aoi", around)):
                per_port[name] = score(name, scene, settings, port_area, labels)
            shutil.rmtree(Path(tmp) / port)
            print(f"{port}, of {len(labels)} ships: " + ", ".join(f"{k} {v}" for k, v in per_port.items()), flush=True)
    rows = {}
    for name, (matched, found, labelled) in counts.items():
        rows[name] = {"matched": matched, "found": found, "labelled": labelled, **ev.pooled(matched, found, labelled)}
        m = rows[name]
        print(
            f"{name:45s} matched {matched:4d} found {found:4d} labelled {labelled:4d}  "
            f"P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f}"
        )
    if a.json:
        atomic_write_text(a.json, json.dumps({"weights": a.weights, "conf": conf, "ports": done, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
