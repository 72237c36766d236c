#!/usr/bin/env python3
"""Build an Ultralytics YOLO-OBB dataset from labelled scenes (rules in detector/chips.py).

  # sen2ships: COCO RLE masks over Sentinel-2 band folders, leave-ports-out
  python datasets/build.py coco ../shared/data/sen2ships-dev/annotations.json --out data/s2 \\
      --bands B04,B03,B02 --scale 3 --val busan,durban

  # DOTA labelTxt (or Ultralytics' normalised OBB txt) beside images
  python datasets/build.py dota IMAGES_DIR LABELS_DIR --out data/dota --val P1470 --scale 1

  # GeoJSON polygons with a "class" property over GeoTIFFs (the review export)
  python datasets/build.py geojson labels.geojson SCENE.tif [SCENE.tif ...] --out data/reviewed --val SCENE

Groups are ports for COCO (the file name before "_rgb"), image stems for DOTA,
scene stems for GeoJSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Collection, Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from detector.chips import BuildSettings, LabelledScene, build_yolo_obb, chip_bands, obb_from_mask, rle_decode
from detector.errors import EXIT_BAD_INPUT, ShipwatchError, UsageError, bad_input_exit
from detector.raster import Scene, open_named_bands, scene_pixels


def coco_images(annotations: Path, ports: Collection[str] = ()) -> list[tuple[str, dict, list[dict]]]:  # type: ignore[type-arg]
    """Each labelled image's port, the image's COCO entry and its annotations, sorted by file name.

    All images, or only those of ``ports``.

    Raises:
        UsageError: no annotations, or a port in ``ports`` with no image.
    """
    data = json.loads(annotations.read_text())
    by_image: dict[int, list[dict]] = {}  # type: ignore[type-arg]
    for a in data.get("annotations", []):
        by_image.setdefault(a["image_id"], []).append(a)
    if not by_image:
        raise UsageError(f"{annotations}: no annotations; label some ships first")

    def port_of(image: dict) -> str:  # type: ignore[type-arg]
        return str(image["file_name"]).split("_rgb")[0].rsplit(".", 1)[0]

    unknown = sorted(set(ports) - {port_of(i) for i in data["images"]})
    if unknown:
        known = ", ".join(sorted(port_of(i) for i in data["images"]))
        raise UsageError(f"{annotations}: no images of {', '.join(unknown)}; its ports are {known}")
    return [
        (port_of(image), image, by_image.get(image["id"], []))
        for image in sorted(data["images"], key=lambda i: i["file_name"])
        if not ports or port_of(image) in ports
    ]


def coco_scene_path(root: Path, port: str, image: dict) -> Path:  # type: ignore[type-arg]
    """Where a labelled image's scene lies: the band folder ``root/port``, else ``root/rgb/<file_name>``."""
    folder = root / port
    return folder if folder.is_dir() else root / "rgb" / image["file_name"]


def coco_scene(
    annotations: Path,
    root: Path,
    bands: tuple[str, ...] | None,
    port: str,
    image: dict,  # type: ignore[type-arg]
    anns: list[dict],  # type: ignore[type-arg]
) -> tuple[Scene, np.ndarray]:
    """One labelled image's scene, opened with ``bands`` (not read), and its (n, 4, 2) ship polygons.

    The scene is the band folder ``root/port``, else ``root/rgb/<file_name>``.

    Raises:
        UsageError: no scene, a size other than the image's, or a label outside it or with a bad mask.
        ShipwatchError: a scene that cannot be opened with ``bands``.
    """
    path = coco_scene_path(root, port, image)
    if not path.exists():
        raise UsageError(f"{annotations}: scene for {image['file_name']} not found at {root / port} or {path}")
    scene = open_named_bands(path, bands)
    h, w = scene.height, scene.width
    if (h, w) != (image["height"], image["width"]):
        raise UsageError(f"{path}: {w}x{h} px but the annotations say {image['width']}x{image['height']}")
    polygons = []
    for a in anns:
        x, y, bw, bh = a["bbox"]
        if x < 0 or y < 0 or x + bw > w + 1 or y + bh > h + 1:
            raise UsageError(f"{annotations}: annotation {a['id']} lies outside {image['file_name']} ({w}x{h}); fix it")
        seg = a.get("segmentation")
        if isinstance(seg, dict):
            try:
                polygons.append(obb_from_mask(rle_decode(seg, h, w)))
            except UsageError as exc:
                raise UsageError(f"{annotations}: annotation {a['id']} of {image['file_name']}: {exc}") from exc
        else:  # no mask: the axis-aligned box
            polygons.append(np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]], float))
    return scene, np.array(polygons).reshape(-1, 4, 2)


def coco_labels(
    annotations: Path, root: Path, bands: tuple[str, ...] | None, ports: Collection[str] = ()
) -> Iterator[tuple[str, Scene, np.ndarray]]:
    """Each labelled scene's port, the scene opened with ``bands`` (not read), and its (n, 4, 2) ship polygons.

    All scenes, or only ``ports``: the others are not opened. The first bad scene raises.
    """
    for port, image, anns in coco_images(annotations, ports):
        scene, polygons = coco_scene(annotations, root, bands, port, image, anns)
        yield port, scene, polygons


def coco_scenes(
    annotations: Path, root: Path, bands: tuple[str, ...] | None, ports: Collection[str] = ()
) -> Iterator[LabelledScene]:
    """Each labelled scene, read (all of them, or only ``ports``)."""
    for port, scene, polygons in coco_labels(annotations, root, bands, ports):
        yield LabelledScene(port, port, scene_pixels(scene), polygons, np.zeros(len(polygons), np.int64))


def dota_scenes(images: Path, labels: Path, names: list[str]) -> Iterator[LabelledScene]:
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".png", ".tif", ".bmp"))
    if not files:
        raise UsageError(f"{images}: no images")
    for img in files:
        bgr = cv2.imread(str(img))
        if bgr is None:
            raise UsageError(f"{img}: not an image OpenCV can read")
        h, w = bgr.shape[:2]
        polys, classes = [], []
        txt = labels / f"{img.stem}.txt"
        for n, line in enumerate(txt.read_text().splitlines() if txt.exists() else [], 1):
            parts = line.split()
            if len(parts) < 9 or parts[0] in ("imagesource:", "gsd:"):
                continue
            if parts[0].lstrip("-").isdigit():  # Ultralytics: class x1 y1 ... normalised
                k, xy = int(parts[0]), np.array(parts[1:9], float).reshape(4, 2) * [w, h]
            else:  # DOTA: x1 y1 ... x4 y4 class difficult
                xy, name = np.array(parts[:8], float).reshape(4, 2), parts[8]
                if name not in names:
                    continue
                k = names.index(name)
            if (xy < -1).any() or (xy[:, 0] > w + 1).any() or (xy[:, 1] > h + 1).any():
                raise UsageError(f"{txt}:{n}: label outside the {w}x{h} image; fix it")
            polys.append(xy)
            classes.append(k)
        yield LabelledScene(
            img.stem,
            img.stem,
            np.ascontiguousarray(bgr[..., ::-1]),
            np.array(polys).reshape(-1, 4, 2),
            np.array(classes, np.int64),
        )


def geojson_scenes(
    labels: Path, scenes: list[Path], names: list[str], bands: tuple[str, ...] | None = None
) -> Iterator[LabelledScene]:
    from detector.aoi import aoi_in_pixels

    data = json.loads(labels.read_text())
    features = data.get("features", [])
    if not features:
        raise UsageError(f"{labels}: no features; export some reviewed detections first")
    for path in scenes:
        scene = open_named_bands(path, bands)
        rgb = scene_pixels(scene)
        polys, classes = [], []
        for i, f in enumerate(features):
            props = f.get("properties") or {}
            if props.get("scene") not in (None, path.name) or not f.get("geometry"):
                continue
            if props.get("review") == "rejected":
                continue  # a rejected detection stays unlabelled: a negative
            name = props.get("class", "ship")
            k = names.index(name) if name in names else 0
            import shapely.geometry

            px = aoi_in_pixels(shapely.geometry.shape(f["geometry"]), scene.crs, scene.transform)  # type: ignore[attr-defined]
            xy = np.asarray(px.exterior.coords)[:4]
            if (xy < -1).any() or (xy[:, 0] > rgb.shape[1] + 1).any() or (xy[:, 1] > rgb.shape[0] + 1).any():
                raise UsageError(f"{labels}: feature {i} lies outside {path.name}; fix it or drop it")
            polys.append(xy)
            classes.append(k)
        yield LabelledScene(path.stem, path.stem, rgb, np.array(polys).reshape(-1, 4, 2), np.array(classes, np.int64))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", choices=["coco", "dota", "geojson"])
    p.add_argument("inputs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--bands", help="band files to stack as R,G,B for band folders (coco, geojson), e.g. B08,B04,B03 (default true colour)"
    )
    p.add_argument("--names", default="ship", help="class names, comma-separated (DOTA: all 15 names to keep them)")
    p.add_argument("--val", required=True, help="groups (ports / stems) for validation, comma-separated")
    p.add_argument("--test", default="", help="groups held out for a final test")
    p.add_argument("--ports", default="", help="coco: only these ports (val and test included), e.g. for a learning curve")
    p.add_argument("--chip", type=int, default=640)
    p.add_argument("--overlap", type=int, default=160)
    p.add_argument("--scale", type=float, default=3.0, help="resampling factor before chipping")
    p.add_argument("--empty-share", type=float, default=0.1)
    p.add_argument("--min-visible", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if a.source == "dota" and a.bands:
        p.error("--bands picks band files of Sentinel-2 band folders (coco, geojson); DOTA images are read as they are")
    if a.ports and a.source != "coco":
        p.error("--ports picks ports of COCO labels; for dota and geojson pass only the images or scenes to use")
    names = a.names.split(",")
    bands = tuple(a.bands.split(",")) if a.bands else None
    try:
        if a.source == "coco":
            root = a.inputs[1] if len(a.inputs) > 1 else a.inputs[0].parent
            scenes = coco_scenes(a.inputs[0], root, bands, [x for x in a.ports.split(",") if x])
        elif a.source == "dota":
            scenes = dota_scenes(a.inputs[0], a.inputs[1], names)
        else:
            scenes = geojson_scenes(a.inputs[0], a.inputs[1:], names, bands)
        settings = BuildSettings(a.chip, a.overlap, a.scale, a.empty_share, a.min_visible, a.seed)
        test = [t for t in a.test.split(",") if t]
        with tqdm(scenes, desc="scenes", unit="scene", dynamic_ncols=True) as bar:
            summary = build_yolo_obb(bar, a.out, names, a.val.split(","), settings, test, chip_bands(bands))
    except (ShipwatchError, OSError) as exc:
        return bad_input_exit(exc)
    except (KeyError, ValueError) as exc:  # labels that are not JSON, or records without a field the format has
        problem = f"a record has no {exc}" if isinstance(exc, KeyError) else str(exc)
        print(f"error: {a.inputs[0]}: {problem}; fix the labels ({a.source} format)", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(summary["counts"]), "->", a.out / "data.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
