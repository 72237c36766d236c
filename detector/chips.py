"""Training chips: labelled scenes to Ultralytics YOLO-OBB datasets, deterministically.

Sources (see ``datasets/build.py``): COCO boxes with RLE masks over GeoTIFF
scenes (sen2ships), DOTA ``labelTxt``, and GeoJSON polygons with a ``class``.
Each source yields :class:`LabelledScene` records: the 8-bit RGB pixels the
detector would see (read through :mod:`detector.raster`, so the stretch is
the same) and ship polygons in scene pixels.

Rules, stated once:

* Scenes are resampled by ``scale`` (cubic) before chipping, so that small
  ships reach the model's scale; labels are scaled with them.
* Chips are ``chip`` px squares laid with :func:`detector.tiling.window_starts`.
* A ship cut by a chip edge is clipped to the chip and kept when at least
  ``min_visible`` (default 0.5) of its area is inside; otherwise it is dropped
  and the chip is kept (the ship is then unlabelled there, as DOTA does).
* Chips without ships are kept in the share ``empty_share``, chosen by a
  seeded hash of the chip name, so builds are repeatable.
* Splits are by scene group (port): no group lands in two splits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import shapely
from numpy.typing import NDArray

from detector.errors import UsageError
from detector.export import atomic_write_text
from detector.models import RGB
from detector.raster import S2_TRUE_COLOUR
from detector.tiling import window_starts

__all__ = ["BuildSettings", "LabelledScene", "build_yolo_obb", "chip_bands", "obb_from_mask", "rle_decode"]


@dataclass(frozen=True)
class LabelledScene:
    """One labelled scene: pixels, ship polygons (N, 4, 2) in pixels, a group (port) and class ids."""

    name: str
    group: str
    rgb: NDArray[np.uint8]
    polygons: NDArray[np.float64]
    classes: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.rgb.ndim != 3 or self.rgb.shape[2] != 3 or self.rgb.dtype != np.uint8:
            raise UsageError(f"{self.name}: pixels must be (h, w, 3) uint8")
        if len(self.polygons) != len(self.classes):
            raise UsageError(f"{self.name}: {len(self.polygons)} polygons but {len(self.classes)} classes")


@dataclass(frozen=True)
class BuildSettings:
    chip: int = 640
    overlap: int = 160
    scale: float = 3.0
    empty_share: float = 0.1
    min_visible: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.empty_share <= 1 or not 0 < self.min_visible <= 1 or self.scale <= 0:
            raise UsageError("empty_share must be in [0, 1], min_visible in (0, 1], scale > 0")


def chip_bands(bands: Sequence[str | int] | None) -> tuple[str, ...]:
    """What chips of a scene read with ``bands`` hold, as data.yaml records it.

    ``bands`` are band-folder names, or 1-based band indices of a file (None:
    the default). True colour is ``red, green, blue`` whether it came from an
    RGB file's first three bands or from B04, B03, B02, as the model registry
    names it; other indices of a file are ``band N``.
    """
    if not bands or tuple(bands) in (S2_TRUE_COLOUR, (1, 2, 3)):
        return RGB
    return tuple(f"band {b}" if isinstance(b, int) else b for b in bands)


def rle_decode(rle: Mapping[str, object], height: int, width: int) -> NDArray[np.bool_]:
    """A COCO RLE (uncompressed counts list, or compressed string) as a (height, width) mask.

    Raises:
        UsageError: a size that differs from the image's, or counts that do not fill it.
    """
    size = list(rle.get("size", []))  # type: ignore[call-overload]
    if size != [height, width]:
        raise UsageError(f"mask size {size} differs from the image's {[height, width]}; fix the annotation")
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = _decode_compressed(counts)
    flat = np.zeros(height * width, bool)
    pos, value = 0, False
    for n in counts:  # type: ignore[attr-defined]
        if value:
            flat[pos : pos + n] = True
        pos += n
        value = not value
    if pos != height * width:
        raise UsageError(f"mask counts cover {pos} pixels, not {height * width}; fix the annotation")
    return flat.reshape(width, height).T  # COCO RLE runs down the columns


def _decode_compressed(text: str) -> list[int]:
    """COCO's compressed RLE string (pycocotools' rleFrString)."""
    counts: list[int] = []
    i = 0
    while i < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[i]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def obb_from_mask(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The minimum-area rectangle (4, 2) around a mask's pixels (corner convention)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise UsageError("an empty mask has no box; drop the annotation")
    pts = np.column_stack([xs, ys]).astype(np.float32)
    corners = np.concatenate([pts + d for d in ((0, 0), (1, 0), (0, 1), (1, 1))]).astype(np.float32)
    return cv2.boxPoints(cv2.minAreaRect(corners)).astype(np.float64)


def _keep_empty(name: str, share: float, seed: int) -> bool:
    h = int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < share


def chips_of(
    scene: LabelledScene, s: BuildSettings
) -> Iterable[tuple[str, NDArray[np.uint8], list[tuple[int, NDArray[np.float64]]]]]:
    """``(chip name, pixels, [(class, corners in chip pixels)])`` for every chip kept."""
    h, w = scene.rgb.shape[:2]
    if s.scale != 1:
        size = (round(w * s.scale), round(h * s.scale))
        rgb = cv2.resize(scene.rgb, size, interpolation=cv2.INTER_CUBIC)
    else:
        rgb = scene.rgb
    sx, sy = rgb.shape[1] / w, rgb.shape[0] / h
    polygons = scene.polygons * np.array([sx, sy])
    shapes = shapely.polygons(polygons) if len(polygons) else np.array([])
    areas = shapely.area(shapes) if len(polygons) else np.array([])
    for row in window_starts(rgb.shape[0], s.chip, min(s.overlap, s.chip - 1)):
        for col in window_starts(rgb.shape[1], s.chip, min(s.overlap, s.chip - 1)):
            name = f"{scene.name}_r{row}_c{col}"
            chip = np.zeros((s.chip, s.chip, 3), np.uint8)
            part = rgb[row : row + s.chip, col : col + s.chip]
            chip[: part.shape[0], : part.shape[1]] = part
            labels = []
            if len(polygons):
                box = shapely.box(col, row, col + min(s.chip, rgb.shape[1] - col), row + min(s.chip, rgb.shape[0] - row))
                clipped = shapely.intersection(shapes, box)
                visible = shapely.area(clipped) / np.maximum(areas, 1e-9)
                for i in np.flatnonzero(visible >= s.min_visible):
                    coords = np.asarray(shapely.get_coordinates(clipped[i]), np.float32)
                    corners = cv2.boxPoints(cv2.minAreaRect(coords)).astype(np.float64) - [col, row]
                    labels.append((int(scene.classes[i]), np.clip(corners, 0, s.chip)))
            if labels or _keep_empty(name, s.empty_share, s.seed):
                yield name, chip, labels


def build_yolo_obb(
    scenes: Iterable[LabelledScene],
    out: Path,
    names: Sequence[str],
    val_groups: Sequence[str],
    settings: BuildSettings,
    test_groups: Sequence[str] = (),
    bands: Sequence[str] = (),
) -> dict[str, object]:
    """Write ``out/images/{split}``, ``out/labels/{split}``, ``out/data.yaml`` and ``out/split.json``.

    ``bands`` names what the chips hold as red, green and blue (``red, green,
    blue`` for true colour, ``B08, B04, B03`` for near infrared); ``data.yaml``
    records it, so that ``scripts/train.py --merge`` can refuse to mix them.

    Raises:
        UsageError: no labels at all, a split left empty, or a group in two splits.
    """
    overlap = set(val_groups) & set(test_groups)
    if overlap:
        raise UsageError(f"groups {sorted(overlap)} are in both val and test; give each group one split")
    counts: dict[str, dict[str, int]] = {}
    groups: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    total_labels = 0
    for scene in scenes:
        split = "val" if scene.group in val_groups else "test" if scene.group in test_groups else "train"
        groups[split].add(scene.group)
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        c = counts.setdefault(split, {"chips": 0, "ships": 0})
        for name, chip, labels in chips_of(scene, settings):
            cv2.imwrite(str(out / "images" / split / f"{name}.png"), chip[..., ::-1])
            lines = [f"{k} " + " ".join(f"{v / settings.chip:.6f}" for v in corners.ravel()) for k, corners in labels]
            (out / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            c["chips"] += 1
            c["ships"] += len(labels)
            total_labels += len(labels)
    if total_labels == 0:
        raise UsageError(f"{out}: no labelled ship in any scene; check the annotations")
    for split in ("train", "val") + (("test",) if test_groups else ()):
        if not counts.get(split, {}).get("chips"):
            raise UsageError(f"{out}: the {split} split is empty; choose groups so that each split gets scenes")
    yaml = [f"path: {out.resolve()}", "train: images/train", "val: images/val"]
    if test_groups:
        yaml.append("test: images/test")
    if bands:
        yaml.append(f"bands: [{', '.join(bands)}]")
    yaml.append("names:")
    yaml += [f"  {i}: {n}" for i, n in enumerate(names)]
    summary = {
        "groups": {k: sorted(v) for k, v in groups.items() if v},
        "counts": counts,
        "settings": settings.__dict__,
        "bands": list(bands),
    }
    atomic_write_text(out / "split.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "data.yaml", "\n".join(yaml) + "\n")  # last: a dataset with data.yaml is whole
    return summary
