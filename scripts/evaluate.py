#!/usr/bin/env python3
"""Evaluate OBB ship weights on labelled data; print a table, write JSON and a PR curve.

  # a YOLO-OBB dataset (its val split by default)
  python scripts/evaluate.py --weights W.pt --data data/s2/data.yaml --json out/eval.json
  # whole scenes: COCO labels over Sentinel-2 band folders, through the detect engine
  python scripts/evaluate.py --weights W.pt --coco ANN.json --scenes ROOT --bands B08,B04,B03 --scale 3 \\
      --ports busan,durban --json out/eval.json

Matching rules, stated:
  * precision, recall, F1 and counts at the operating threshold (--conf): a
    labelled ship is found when a predicted ship's centre lies inside its
    polygon; each prediction matches at most one label (Hungarian assignment).
  * AP50 per class and mAP50: predictions ranked by score, a true positive
    when its oriented-box IoU with an unmatched label of its class is >= 0.5;
    all-point interpolated precision-recall area (VOC 2010+).
  * count error per scene: |found - labelled| / labelled at the threshold.
  * COCO labels (--coco) are all ships: only the model's ship classes are
    predictions (a registry entry's ship classes; for a file its one class,
    or its ship classes by name, as detect keeps them), so a DOTA model's
    planes count for nothing.
  * recall by a labelled ship's length (its outline's longer side, in pixels
    of the evaluated images: scene pixels with --coco), at the threshold.
  * on whole scenes (--coco), a 95% interval of F1 from resampling the
    scenes (ports) with replacement: how much the figure rests on which
    ports happen to be labelled. Chips of one scene are not independent, so
    a data.yaml gets none.
--weights auto evaluates what `shipwatch detect` does without --weights: each
scene gets the registry model its resolution and bands pick (a band folder
lacking red and green, the near-infrared pair fed what it has), at that
model's own operating threshold; the JSON names each scene's model. mAP50 then
ranks the boxes of several models by their scores together.
--pick-threshold reports the threshold that maximises F1 on this data: pick
it on validation ports only, then evaluate unseen ports at that value. It also
writes F1 at every threshold of its grid, pooled and for each --fold, to the
JSON (f1_by_threshold) and draws them (.f1.png, beside the JSON, or beside the
--pr picture), each fold's pick on the other folds marked: a flat peak shared
by the folds is a threshold that holds; peaks apart are one that will not.
--pictures DIR draws each scene (--coco) at the operating threshold: ships
found green, missed magenta, false alarms yellow.

A labelled scene that cannot be evaluated (no folder, a band missing, an
unreadable file, a label outside it) is left out of every figure: the others
are scored and written, the JSON lists it under "skipped", the end of the
output names it with its error, and the exit status is 2.

Leave-ports-out folds pool into one figure: each fold's weights detect only
the ports it never trained on, and every metric (and the picked threshold)
is computed over all of them together. With --pick-threshold it also reports
each fold at the threshold picked on the other folds alone (no fold's labels
choose its own threshold):

  python scripts/evaluate.py --coco ANN.json --scenes ROOT --bands B04,B03,B02 --scale 3 \\
      --fold runs/s2-heldout/weights/last.pt=busan,durban --fold runs/s2-fold2/weights/last.pt=athens,genoa \\
      --pick-threshold --json out/folds.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import EXIT_BAD_INPUT, ShipwatchError, UsageError, bad_input_exit  # noqa: E402
from detector.export import atomic_path, atomic_write_text  # noqa: E402
from detector.models import ModelSpec, ship_class_ids  # noqa: E402
from detector.raster import Scene  # noqa: E402
from detector.records import Detections, obb_corners  # noqa: E402


@dataclass
class Item:
    name: str
    labels: np.ndarray  # (n, 4, 2) polygons in image px
    label_cls: np.ndarray
    found: Detections  # every prediction down to a low score
    scene: Scene | None = None  # whole scenes (--coco): what --pictures draws on
    model: str | None = None  # --weights auto: the registry model that detected the scene
    conf: float | None = None  # --weights auto: that model's threshold, in place of the run's
    lengths: np.ndarray = field(init=False)  # each label's longer side, px: by length at every threshold tried

    def __post_init__(self) -> None:
        self.lengths = label_lengths(self.labels)


def matches(labels: np.ndarray, found: Detections) -> tuple[np.ndarray, np.ndarray]:
    """Matched (label, prediction) index pairs: a prediction's centre in the label's polygon, one to one (Hungarian)."""
    if not len(labels) or not len(found):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    polys = shapely.polygons(labels)
    hits = np.array([shapely.contains_xy(p, found.obb[:, 0], found.obb[:, 1]) for p in polys], float)
    r, c = linear_sum_assignment(-hits)
    ok = hits[r, c] > 0
    return r[ok], c[ok]


def found_labels(labels: np.ndarray, found: Detections) -> np.ndarray:
    """Which labels a prediction's centre falls in, one prediction per label at most."""
    out = np.zeros(len(labels), bool)
    out[matches(labels, found)[0]] = True
    return out


#: Bins of a labelled ship's length, in pixels of the evaluated images (scene pixels with --coco).
LENGTH_BINS = ((0.0, 15.0), (15.0, 20.0), (20.0, 40.0), (40.0, float("inf")))


def label_lengths(labels: np.ndarray) -> np.ndarray:
    """Each label polygon's longer side, in px."""
    if not len(labels):
        return np.zeros(0)
    sides = np.linalg.norm(labels - np.roll(labels, -1, axis=1), axis=2)
    return np.maximum(sides[:, 0], sides[:, 1])


#: What --pictures draws, BGR: labelled ships found, labelled ships missed, predictions matching no label
#: (colours that stand out on water, land and the red of vegetation in near infrared).
FOUND_BGR, MISSED_BGR, FALSE_BGR = (0, 200, 0), (255, 0, 255), (0, 255, 255)


def draw_item(item: Item, conf: float, out: Path, zoom: int = 2) -> Path:
    """A PNG of the item's scene at ``conf``: labelled ships found in green, missed in magenta, false alarms in yellow.

    The scene shows as the model read it (its first three bands), enlarged
    ``zoom`` times, under a caption with the three counts.
    """
    from detector.quicklook import outlined, write_png

    if item.scene is None:
        raise ValueError(f"{item.name}: no scene to draw on (chips of a data.yaml have none)")
    found = item.found[item.found.score >= conf]
    hit_labels, hit_found = matches(item.labels, found)
    missed = np.setdiff1d(np.arange(len(item.labels)), hit_labels)
    false = np.setdiff1d(np.arange(len(found)), hit_found)
    picture = outlined(
        item.scene,
        [
            (item.labels[hit_labels], FOUND_BGR),
            (item.labels[missed], MISSED_BGR),
            (obb_corners(found.obb[false]), FALSE_BGR),
        ],
        zoom,
        f"{item.name} at {conf:g}:  found {len(hit_labels)}  missed {len(missed)}  false alarms {len(false)}",
    )
    return write_png(out, picture)


def average_precision(items: list[Item], cls: int, iou: float = 0.5) -> tuple[float, np.ndarray, np.ndarray]:
    scores, tps, n_labels = [], [], 0
    for it in items:
        labels = it.labels[it.label_cls == cls]
        n_labels += len(labels)
        keep = it.found.class_id == cls
        found = it.found[keep]
        order = np.argsort(-found.score)
        lp = shapely.polygons(labels) if len(labels) else np.array([])
        label_area = shapely.area(lp)
        boxes = shapely.polygons(found.corners()) if len(found) else np.array([])
        used = np.zeros(len(labels), bool)
        for i in order:
            box = boxes[i]
            best, best_iou = -1, iou
            if len(labels):
                inter = shapely.area(shapely.intersection(lp, box))
                ious = inter / (label_area + shapely.area(box) - inter)
                ious[used] = 0
                j = int(np.argmax(ious))
                if ious[j] >= best_iou:
                    best = j
            if best >= 0:
                used[best] = True
            scores.append(float(found.score[i]))
            tps.append(best >= 0)
    if not n_labels:
        return float("nan"), np.zeros(0), np.zeros(0)
    order = np.argsort(-np.array(scores))
    tp = np.array(tps, float)[order]
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / n_labels
    precision = ctp / np.maximum(ctp + cfp, 1e-9)
    mrec = np.r_[0.0, recall, 1.0]
    mpre = np.r_[1.0, precision, 0.0]
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])), recall, precision


def pooled(matched: int, found: int, labelled: int) -> dict[str, float]:
    """Precision, recall and F1 of pooled counts."""
    p = matched / found if found else 0.0
    r = matched / labelled if labelled else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def at_threshold(items: list[Item], conf: float | None) -> dict[str, object]:
    """Counts and metrics at ``conf``, or at each item's own threshold where it has one (--weights auto)."""
    tp = n_found = n_labels = 0
    per_scene: dict[str, dict[str, object]] = {}
    lengths, hit = [], []
    for it in items:
        t = it.conf if it.conf is not None else conf
        assert t is not None, "an item without a threshold of its own needs the run's"
        found = it.found[it.found.score >= t]
        matched = found_labels(it.labels, found)
        lengths.append(it.lengths)
        hit.append(matched)
        k = int(matched.sum())
        tp, n_found, n_labels = tp + k, n_found + len(found), n_labels + len(it.labels)
        per_scene[it.name] = {
            "labelled": len(it.labels), "found": len(found), "matched": k,
            "count_error": abs(len(found) - len(it.labels)) / len(it.labels) if len(it.labels) else None,
        }  # fmt: skip
        if it.model is not None:
            per_scene[it.name].update(model=it.model, conf=t)
    size, ok = np.concatenate(lengths) if lengths else np.zeros(0), np.concatenate(hit) if hit else np.zeros(0, bool)
    by_length = {}
    for low, high in LENGTH_BINS:
        inside = (size >= low) & (size < high)
        if inside.any():
            name = f"{low:g}-{high:g} px" if np.isfinite(high) else f"{low:g}+ px"
            by_length[name] = {"labelled": int(inside.sum()), "found": int(ok[inside].sum()), "recall": float(ok[inside].mean())}
    return {
        **pooled(tp, n_found, n_labels),
        "labelled": n_labels,
        "found": n_found,
        "per_scene": per_scene,
        "recall_by_length": by_length,
    }


def f1_interval(per_scene: dict[str, dict[str, int]], resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """A 95% interval of the pooled F1: the scenes resampled with replacement, ``resamples`` times."""
    counts = np.array([[s["matched"], s["found"], s["labelled"]] for s in per_scene.values()], float)
    drawn = counts[np.random.default_rng(seed).integers(0, len(counts), (resamples, len(counts)))].sum(axis=1)
    both = drawn[:, 1] + drawn[:, 2]
    f1 = np.divide(2 * drawn[:, 0], both, out=np.zeros(resamples), where=both > 0)
    low, high = np.percentile(f1, [2.5, 97.5])
    return float(low), float(high)


def items_from_yaml(data: Path, split: str, detector) -> list[Item]:  # type: ignore[no-untyped-def]
    import cv2
    import yaml

    cfg = yaml.safe_load(data.read_text())
    root = Path(cfg.get("path") or data.parent)
    if not cfg.get(split):
        raise UsageError(f"{data}: no {split} split; pass --split with one it names")
    images = sorted((root / cfg[split]).glob("*.*"))
    if not images:
        raise UsageError(f"{data}: the {split} split has no images; pass --split with another, or rebuild the dataset")
    items = []
    for img in tqdm(images, desc=split, unit="image", dynamic_ncols=True):
        bgr = cv2.imread(str(img))
        if bgr is None:
            raise UsageError(f"{img}: not an image OpenCV can read; remove it from the {split} split or rebuild the dataset")
        rgb = bgr[..., ::-1]
        h, w = rgb.shape[:2]
        txt = root / "labels" / split / f"{img.stem}.txt"
        rows = [line.split() for line in txt.read_text().splitlines() if line.strip()] if txt.exists() else []
        labels = np.array([np.array(r[1:9], float).reshape(4, 2) * [w, h] for r in rows]).reshape(-1, 4, 2)
        cls = np.array([int(r[0]) for r in rows], np.int64)
        items.append(Item(img.stem, labels, cls, detector(np.ascontiguousarray(rgb)[None])[0]))
    return items


@dataclass(frozen=True)
class Model:
    """What detects a scene: a detector reporting down to a low score, the bands it reads, and how."""

    name: str
    detector: object
    bands: tuple[str, ...] | None  # band files of a band folder; None: the scene as it opens (true colour)
    scale: float
    ships: tuple[int, ...]  # the classes kept as ships
    conf: float | None = None  # its own threshold (--weights auto), else the run's --conf applies


class AutoModels:
    """Per scene, the registry model ``shipwatch detect`` picks without --weights, each loaded once."""

    def __init__(self) -> None:
        self.loaded: dict[str, Model] = {}

    def __call__(self, path: Path) -> Model:
        from detector.job import auto_model, probe_scene

        names, _, gsd = probe_scene(path)
        spec, _ = auto_model(path, names, gsd)
        if spec.name not in self.loaded:
            paths, member_bands, _ = members_of(spec.name, None)
            detector, bands = load_detector(paths, member_bands)
            ships = ship_class_ids(detector.class_names, spec, spec.name)
            self.loaded[spec.name] = Model(spec.name, detector, bands, spec.scale, ships, spec.conf)
        return self.loaded[spec.name]


def items_from_coco(
    ann: Path, scenes: Path, ports: list[str], model_for: Callable[[Path], Model]
) -> tuple[list[Item], dict[str, str]]:
    """Whole scenes through the detect engine, each with ``model_for(its path)``; ship boxes kept as class 0, like the labels.

    Also returns the scenes that could not be evaluated (missing, lacking a
    band, unreadable, with bad labels, or no model fits), each with its error:
    the others go on.
    """
    from detector.engine import DetectSettings, detect_scene, window_side
    from detector.georef import ground_sample_distance
    from detector.tiling import overlap_for_gsd

    spec = importlib.util.spec_from_file_location("build", REPO / "datasets" / "build.py")
    build = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(build)  # type: ignore[union-attr]
    items, skipped = [], {}
    for port, image, anns in tqdm(build.coco_images(ann, ports), desc="scenes", unit="scene", dynamic_ncols=True):
        try:
            model = model_for(build.coco_scene_path(scenes, port, image))
            scene, polygons = build.coco_scene(ann, scenes, model.bands, port, image, anns)
            # the overlap shipwatch detect gives the scene: the longest ship at its true ground sample distance
            gsd = ground_sample_distance(scene.crs, scene.transform, scene.width, scene.height)
            side = window_side(model.detector.input_size, model.scale)  # type: ignore[attr-defined]
            settings = DetectSettings(overlap=overlap_for_gsd(gsd, side), classes=model.ships, scale=model.scale)
            found = detect_scene(scene, model.detector, settings).detections  # type: ignore[arg-type]
        except ShipwatchError as exc:
            skipped[port] = str(exc)
            continue
        found = Detections(found.obb, found.score, np.zeros(len(found), np.int64), found.window)
        named = model.name if model.conf is not None else None  # a model with its own threshold is named in the row
        items.append(Item(port, polygons, np.zeros(len(polygons), np.int64), found, scene, named, model.conf))
    return items, skipped


#: --weights: each scene with the model shipwatch detect picks for it.
AUTO = "auto"

THRESHOLDS = np.round(np.arange(0.05, 0.9, 0.025), 3)


def f1_curve(items: list[Item]) -> list[float]:
    """F1 over ``items`` at each threshold of :data:`THRESHOLDS`."""
    return [float(at_threshold(items, float(t))["f1"]) for t in THRESHOLDS]  # type: ignore[arg-type]


def pick_threshold(items: list[Item]) -> float:
    """The score threshold (on a 0.025 grid) that maximises F1 over ``items``."""
    return float(THRESHOLDS[int(np.argmax(f1_curve(items)))])


def f1_by_threshold(folds: list[list[Item]]) -> dict[str, object]:
    """F1 at each threshold of the grid, pooled and (with several folds) for each fold, named by its scenes.

    Shows how flat each peak is and whether the folds peak together: where
    they do not, a threshold picked on some folds misses on the others.
    """
    out: dict[str, object] = {"thresholds": THRESHOLDS.tolist(), "pooled": f1_curve([it for fold in folds for it in fold])}
    if len(folds) > 1:
        out["folds"] = {",".join(it.name for it in fold): f1_curve(fold) for fold in folds}
    return out


def draw_f1_curves(report: dict[str, object], path: Path) -> None:
    """F1 against threshold, pooled and each fold, the picked thresholds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, object] = report["f1_by_threshold"]  # type: ignore[assignment]
    t = np.array(curves["thresholds"])
    fig, ax = plt.subplots(figsize=(6, 4))
    nested = report.get("nested", {})
    for k, (name, f1) in enumerate(curves.get("folds", {}).items()):  # type: ignore[attr-defined]
        (line,) = ax.plot(t, f1, lw=1, label=name)
        if nested:
            picked = nested["thresholds"][k]  # type: ignore[index]
            ax.plot([picked], [f1[int(np.argmin(np.abs(t - picked)))]], "o", color=line.get_color())
    ax.plot(t, curves["pooled"], color="black", lw=2, label="pooled")
    ax.axvline(report["best_threshold"], color="black", ls=":", lw=1)  # type: ignore[arg-type]
    title = f"F1 by threshold; pooled best {report['best_threshold']:g}"
    if nested:
        title += ", dots: each fold's pick on the others"
    ax.set(xlabel="score threshold", ylabel="F1", ylim=(0, 1), title=title)
    ax.title.set_fontsize(9)
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def nested_thresholds(folds: list[list[Item]]) -> dict[str, object]:
    """Each fold evaluated at the threshold picked on the other folds alone, pooled.

    The honest figure for "pick the threshold on validation ports, test on
    unseen ones": no fold's own labels choose its threshold.
    """
    thresholds, tp, found, labelled, per_scene = [], 0, 0, 0, {}
    for k, fold in enumerate(folds):
        others = [it for j, other in enumerate(folds) if j != k for it in other]
        t = pick_threshold(others)
        r = at_threshold(fold, t)
        thresholds.append(t)
        tp += sum(s["matched"] for s in r["per_scene"].values())  # type: ignore[attr-defined]
        found, labelled = found + r["found"], labelled + r["labelled"]  # type: ignore[operator]
        per_scene.update(r["per_scene"])  # type: ignore[arg-type]
    return {"thresholds": thresholds, **pooled(tp, found, labelled), "per_scene": per_scene}


def parse_fold(text: str, parser: argparse.ArgumentParser) -> tuple[str, list[str]]:
    weights, sep, ports = text.rpartition("=")
    names = [x for x in ports.split(",") if x]
    if not sep or not weights or not names:
        parser.error(f"--fold {text}: write WEIGHTS=PORT,PORT (the ports these weights never trained on)")
    return weights, names


def members_of(weights: str, bands: str | None) -> tuple[list[Path], list[tuple[str, ...] | None], ModelSpec | None]:
    """Weights files and the bands each reads, from a registry name or ``A.pt+B.pt`` with ``--bands X+Y``.

    Also returns the registry entry (None for files), whose scale and
    threshold are the defaults.
    """
    from detector.models import RGB, registry, resolve_members, resolve_weights

    spec = registry().get(weights)
    if spec is not None and spec.members:
        paths = [path for _, path, _ in resolve_members(spec)]
        return paths, [m.bands for m in spec.members], spec
    if spec is not None:
        _, path, _ = resolve_weights(weights)
        return [path], [None if set(spec.bands) <= set(RGB) else spec.bands], spec
    paths = [Path(w) for w in weights.split("+")]
    per_member = bands.split("+") if bands else [""] * len(paths)
    if len(per_member) != len(paths):
        raise UsageError(
            f"{weights}: {len(paths)} weights files but --bands {bands} names {len(per_member)} band lists; "
            "give one band list per file, joined by +"
        )
    return paths, [tuple(b.split(",")) if b else None for b in per_member], None


def load_detector(paths: list[Path], member_bands: list[tuple[str, ...] | None]):  # type: ignore[no-untyped-def]
    """A detector reporting every box down to a low score, and the bands to read for it.

    Several files make an ensemble, run as ``shipwatch detect`` runs one.
    """
    from detector.ensemble import MEMBER_CONF, EnsembleDetector
    from detector.runtimes import Backend
    from detector.yolo import YoloDetector

    if len(paths) == 1:
        return YoloDetector(paths[0], None, conf=0.01, backend=Backend.TORCH), member_bands[0]
    if any(b is None for b in member_bands):
        raise UsageError("an ensemble needs each member's bands; pass them joined by +: --bands B08,B04,B03+B04,B03,B02")
    union = tuple(dict.fromkeys(b for bands in member_bands for b in bands))  # type: ignore[union-attr]
    members = [YoloDetector(w, None, conf=MEMBER_CONF, backend=Backend.TORCH) for w in paths]
    channels = [tuple(union.index(b) for b in bands) for bands in member_bands]  # type: ignore[union-attr]
    return EnsembleDetector(members, channels, conf=0.01), union


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--weights",
        help="weights to evaluate: a .pt file, a registry name, files joined by + for an ensemble, or auto: each "
        "scene with the model shipwatch detect picks (or pass --fold)",
    )
    p.add_argument(
        "--fold", action="append", default=[], metavar="WEIGHTS=PORT,PORT",
        help="weights and the ports they never saw; repeat for each fold (with --coco)",
    )  # fmt: skip
    p.add_argument("--data", type=Path, help="a YOLO-OBB data.yaml")
    p.add_argument("--split", default="val")
    p.add_argument("--coco", type=Path, help="COCO annotations (with --scenes)")
    p.add_argument("--scenes", type=Path, help="folder of band folders (one per port)")
    p.add_argument("--bands", help="band files to stack, e.g. B08,B04,B03; for an ensemble each member's, joined by +")
    p.add_argument("--scale", type=float, help="window enlargement for scene evaluation (default: the registry's, or 1)")
    p.add_argument("--ports", default="", help="evaluate only these ports (comma-separated)")
    p.add_argument("--conf", type=float, help="operating threshold (default: the registry's, or 0.25)")
    p.add_argument("--pick-threshold", action="store_true", help="report the F1-maximising threshold")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument(
        "--pr", type=Path,
        help="precision-recall PNG (default: beside the JSON); --pick-threshold's F1 picture goes beside it, as .f1.png",
    )  # fmt: skip
    p.add_argument(
        "--pictures", type=Path, metavar="DIR",
        help="with --coco: DIR/<port>.png, each scene at the operating threshold, ships found green, missed magenta, "
        "false alarms yellow",
    )  # fmt: skip
    a = p.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if a.fold and (a.weights or a.data or a.ports):
        p.error("--fold names each fold's weights and ports; leave out --weights, --data and --ports")
    folds = [parse_fold(f, p) for f in a.fold] or [(a.weights, [x for x in a.ports.split(",") if x])]
    if folds[0][0] is None:
        p.error("pass --weights, or one --fold per fold")
    if not a.data and not (a.coco and a.scenes):
        p.error("pass --data, or --coco with --scenes")
    if a.pictures and a.data:
        p.error("--pictures draws whole scenes: pass --coco with --scenes")
    if a.weights == AUTO:
        taken = [
            flag for flag, value in (("--bands", a.bands), ("--scale", a.scale), ("--conf", a.conf), ("--data", a.data)) if value
        ]
        if taken or a.pick_threshold:
            p.error(
                f"--weights auto takes each scene's model with its own bands, scale and threshold, on --coco scenes; "
                f"leave out {', '.join(taken + (['--pick-threshold'] if a.pick_threshold else []))}"
            )
    try:
        return run(a, p, folds)
    except (ShipwatchError, OSError) as exc:  # bad input: one line naming the file, the problem and the fix
        return bad_input_exit(exc)


def run(a: argparse.Namespace, p: argparse.ArgumentParser, folds: list[tuple[str, list[str]]]) -> int:
    """Detect, match, print the table and write the JSON and the PR curve."""
    fold_items: list[list[Item]] = []
    skipped: dict[str, str] = {}  # scenes that could not be evaluated: left out of every figure
    names: tuple[str, ...] = ()
    for weights, ports in folds:
        if weights == AUTO:
            names = ("ship",)
            fold, failed = items_from_coco(a.coco, a.scenes, ports, AutoModels())
            fold_items.append(fold)
            skipped.update(failed)
            continue
        paths, member_bands, spec = members_of(weights, a.bands)
        if a.data and len(paths) > 1:
            p.error(
                f"{weights}: an ensemble is evaluated on scenes (--coco with --scenes); a data.yaml's chips hold one model's bands"
            )
        detector, bands = load_detector(paths, member_bands)
        if a.conf is None:
            a.conf = spec.conf if spec else 0.25
        if a.scale is None:
            a.scale = spec.scale if spec else 1.0
        if a.data:  # one model (--fold takes --coco): its classes are the data's
            names = detector.class_names
            fold_items.append(items_from_yaml(a.data, a.split, detector))
        else:
            names = ("ship",)
            model = Model(weights, detector, bands, a.scale, ship_class_ids(detector.class_names, spec, weights))
            fold, failed = items_from_coco(a.coco, a.scenes, ports, lambda _path, model=model: model)  # type: ignore[misc]
            fold_items.append(fold)
            skipped.update(failed)
    items = [it for fold in fold_items for it in fold]
    if not items:
        first = next(iter(skipped.values()), "")
        raise UsageError(f"no scene could be evaluated ({len(skipped)} failed; the first: {first})")
    ap = {}
    curves = {}
    for k, name in enumerate(names):
        value, rec, prec = average_precision(items, k)
        if not np.isnan(value):
            ap[name] = value
            curves[name] = (rec, prec)
    report = {
        "weights": str(a.weights) if a.weights else None,
        "folds": [{"weights": str(w), "ports": ports} for w, ports in folds] if a.fold else None,
        "conf": a.conf,
        **at_threshold(items, a.conf),
        "map50": float(np.mean(list(ap.values()))) if ap else None,
        "ap50": ap,
        "skipped": skipped,
    }
    if a.pick_threshold:
        scored = [fold for fold in fold_items if fold]
        by_threshold = f1_by_threshold(scored)
        best = int(np.argmax(by_threshold["pooled"]))  # type: ignore[arg-type]  # pick_threshold's choice, from the curve drawn
        report["best_threshold"], report["best_f1"] = float(THRESHOLDS[best]), by_threshold["pooled"][best]  # type: ignore[index]
        if len(scored) > 1:
            report["nested"] = nested_thresholds(scored)
        report["f1_by_threshold"] = by_threshold
    scenes = len(report["per_scene"])  # type: ignore[arg-type]
    if a.coco and scenes >= 3:
        report["f1_interval"] = f1_interval(report["per_scene"])  # type: ignore[arg-type]
        if "nested" in report:
            report["nested"]["f1_interval"] = f1_interval(report["nested"]["per_scene"])  # type: ignore[index]
    print(f"{'scene':<24}{'labelled':>9}{'found':>7}{'matched':>9}{'count err':>11}")
    for name, r in report["per_scene"].items():  # type: ignore[union-attr]
        ce = "" if r["count_error"] is None else f"{r['count_error']:.2f}"
        model = f"  {r['model']} at {r['conf']:g}" if "model" in r else ""
        print(f"{name:<24}{r['labelled']:>9}{r['found']:>7}{r['matched']:>9}{ce:>11}{model}")
    where = f"conf {a.conf}" if a.conf is not None else "each scene's model's threshold"
    print(
        f"at {where}: precision {report['precision']:.3f}  recall {report['recall']:.3f}  F1 {report['f1']:.3f}  mAP50 {report['map50'] or 0:.3f}"
    )
    lengths = ", ".join(f"{k} {v['found']}/{v['labelled']}" for k, v in report["recall_by_length"].items())  # type: ignore[union-attr]
    print(f"  ships found by labelled length: {lengths}")

    def interval(of: dict[str, object]) -> None:
        if "f1_interval" in of:
            low, high = of["f1_interval"]  # type: ignore[misc]
            print(f"  F1 95% interval over the {scenes} scenes, resampled: {low:.3f}-{high:.3f}")

    interval(report)
    if a.pick_threshold:
        print(f"best threshold on this data: {report['best_threshold']} (F1 {report['best_f1']:.3f})")
    if "nested" in report:
        n = report["nested"]
        picked = ", ".join(f"{t:g}" for t in n["thresholds"])  # type: ignore[index]
        print(f"each fold at the threshold picked on the other folds ({picked}): precision {n['precision']:.3f}  "  # type: ignore[index]
              f"recall {n['recall']:.3f}  F1 {n['f1']:.3f}")  # type: ignore[index]  # fmt: skip
        interval(n)  # type: ignore[arg-type]
    atomic_write_text(a.json, json.dumps(report, indent=2) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (rec, prec) in curves.items():
        ax.plot(rec, prec, label=f"{name} AP50 {ap[name]:.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="precision-recall (IoU 0.5)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    with atomic_path(a.pr or a.json.with_suffix(".pr.png"), ".png") as tmp:
        fig.savefig(tmp, dpi=100)
    if a.pick_threshold:  # beside the PR picture where --pr puts it, else beside the JSON
        draw_f1_curves(report, (a.pr or a.json).with_suffix(".f1.png"))
    if a.pictures:
        for it in tqdm(items, desc="pictures", unit="scene", dynamic_ncols=True):
            draw_item(it, it.conf if it.conf is not None else a.conf, a.pictures / f"{it.name}.png")
    if skipped:
        print(f"{len(skipped)} scene(s) could not be evaluated and are left out of every figure above:", file=sys.stderr)
        for port, error in skipped.items():
            print(f"  {port}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
