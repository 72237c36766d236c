"""Reviewing detections: a queue, decisions kept in the store, and an export for training.

Decisions are rows in the store's ``reviews`` table, written one transaction
each, so quitting, Ctrl-C or a killed terminal lose nothing; undo marks the
reviewer's latest standing decision as undone. A detection's standing decision
is its latest one not undone; ``skipped`` ones come back at the end of the
queue.

Queue orders: ``uncertain`` (default) puts first the detections whose score is
nearest the model's threshold or whose tanker probability is nearest 0.5,
whichever is nearer (both distances scaled to [0, 1]); ``zone`` groups by zone,
``date`` by acquisition time, ``all`` keeps the store's order.
"""

from __future__ import annotations

import csv
import enum
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from detector.chips import BuildSettings, LabelledScene, build_yolo_obb, chip_bands
from detector.classify import TankerModel
from detector.errors import UsageError
from detector.export import atomic_write_text
from detector.models import RGB, registry
from detector.raster import open_named_bands, scene_pixels, stretched_over
from detector.records import Ship, obb_corners
from detector.store import SceneRow, Store
from detector.zones import Zone, zone_at

__all__ = ["Decision", "QueueOrder", "ReviewItem", "apply_decisions", "export_reviews", "review_queue", "review_stats"]


class Decision(enum.StrEnum):
    ACCEPTED = "accepted"  # a ship, class as detected
    REJECTED = "rejected"  # not a ship
    TANKER = "tanker"  # a ship, a tanker
    OTHER = "other"  # a ship, not a tanker
    SKIPPED = "skipped"


KEYS = {"a": Decision.ACCEPTED, "r": Decision.REJECTED, "t": Decision.TANKER, "o": Decision.OTHER, "s": Decision.SKIPPED}


class QueueOrder(enum.StrEnum):
    UNCERTAIN = "uncertain"
    ZONE = "zone"
    DATE = "date"
    ALL = "all"


@dataclass(frozen=True)
class ReviewItem:
    detection_id: int
    scene_id: int
    ship: Ship
    scene_path: str
    zone: str | None
    tanker_prob: float
    uncertainty: float
    stretch_window: tuple[int, int, int, int] | None = None  # the scene's, as detect stretched it


def review_queue(
    store: Store, zones: list[Zone], order: QueueOrder = QueueOrder.UNCERTAIN, threshold: float = 0.25
) -> list[ReviewItem]:
    """Detections still to review (undecided first, then skipped), in ``order``.

    Raises:
        UsageError: the store holds no detect run.
    """
    settings = store.latest_settings_hash()
    if settings is None:
        raise UsageError(f"{store.path}: the store holds no detections; run shipwatch detect first")
    decided = store.decisions()
    classifier = TankerModel()
    items = []
    rows: dict[int, SceneRow] = {}
    for did, sid, ship in store.detection_rows(settings):
        if did in decided and decided[did][0] != Decision.SKIPPED:
            continue
        zone = zone_at(zones, ship.lon, ship.lat) if ship.lon is not None and ship.lat is not None else None
        p = classifier(ship.length_m, ship.beam_m, zone.cargo if zone else None).tanker_prob
        score_gap = abs(ship.score - threshold) / max(threshold, 1 - threshold)
        uncertainty = min(score_gap, abs(p - 0.5) * 2)
        if sid not in rows:
            rows[sid] = store.scene(sid)
        row = rows[sid]
        items.append(ReviewItem(did, sid, ship, row.path, zone.name if zone else None, p, uncertainty, row.stretch_window))
    skipped = {did for did, d in decided.items() if d[0] == Decision.SKIPPED}
    keys = {
        QueueOrder.UNCERTAIN: lambda it: (it.uncertainty, it.detection_id),
        QueueOrder.ZONE: lambda it: (it.zone or "~", it.detection_id),
        QueueOrder.DATE: lambda it: (it.ship.acquired_at.isoformat() if it.ship.acquired_at else "", it.detection_id),
        QueueOrder.ALL: lambda it: (it.detection_id,),
    }
    return sorted(items, key=lambda it: (it.detection_id in skipped, *keys[order](it)))


def apply_decisions(store: Store, path: Path, reviewer: str) -> int:
    """Apply a CSV of ``detection_id, decision[, reviewer]``; return how many rows were applied.

    Raises:
        UsageError: a missing column, an unknown detection or decision, naming the line.
    """
    known = {did for did, _, _ in store.detection_rows(store.latest_settings_hash() or "")}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"detection_id", "decision"} - set(reader.fieldnames or [])
        if missing:
            raise UsageError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}; the CSV needs detection_id, decision")
        rows = []
        for n, r in enumerate(reader, 2):
            try:
                did, decision = int(r["detection_id"]), Decision(r["decision"].strip().lower())
            except ValueError:
                raise UsageError(f"{path}:{n}: bad detection_id or decision ({', '.join(d.value for d in Decision)})") from None
            if did not in known:
                raise UsageError(f"{path}:{n}: detection {did} is not in the store's latest run")
            rows.append((did, decision, (r.get("reviewer") or reviewer).strip()))
    for did, decision, who in rows:
        store.add_review(did, decision, who)
    return len(rows)


def review_stats(store: Store) -> dict[str, object]:
    """Reviewed, accepted and rejected counts, and precision by score band."""
    decided = {did: d for did, (d, _, _) in store.decisions().items() if d != Decision.SKIPPED}
    scores = {did: ship.score for did, _, ship in store.detection_rows(store.latest_settings_hash() or "") if did in decided}
    bands = [(0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)]
    precision = {}
    for low, high in bands:
        ids = [d for d, s in scores.items() if low <= s < high]
        if ids:
            precision[f"{low:.1f}-{min(high, 1.0):.1f}"] = (
                sum(decided[d] != Decision.REJECTED for d in ids) / len(ids),
                len(ids),
            )
    rejected = sum(d == Decision.REJECTED for d in decided.values())
    return {"reviewed": len(decided), "accepted": len(decided) - rejected, "rejected": rejected, "precision_by_score": precision}


def _reading(row: SceneRow, bands: tuple[str, ...] | None, scale: float | None) -> tuple[tuple[str | int, ...] | None, float]:
    """The bands and enlargement to read a scene's chips with: as the detecting model read it, unless given.

    The store records both (schema 2). For scenes stored before, a model's
    registry entry names its bands and scale (an ensemble: its first
    member's bands); a model outside the registry reads the default bands at 1x.
    """
    spec = registry().get(row.model or "")
    read: tuple[str | int, ...] | None = bands
    if read is None and row.bands is not None:
        read = row.bands
    elif read is None and spec is not None:
        model_bands = spec.members[0].bands if spec.members else spec.bands
        read = None if set(model_bands) <= set(RGB) else model_bands
    if scale is None:
        scale = row.scale if row.scale is not None else spec.scale if spec is not None else 1.0
    return read, scale


def export_reviews(
    store: Store,
    out: Path,
    model_classes: tuple[str, ...] = ("ship", "tanker"),
    scale: float | None = None,
    chip: int = 640,
    bands: tuple[str, ...] | None = None,
) -> dict[str, object]:
    """Write ``out/labels.geojson`` and a YOLO-OBB dataset ``out/dataset`` from reviewed detections.

    Accepted detections become labels (class ``tanker`` when so decided or
    accepted as a tanker and ``model_classes`` has it, else ``ship``, the
    first class); rejected ones are left unlabelled in
    their chips, so they train as negatives. The dataset is split by scene:
    the last reviewed scene (by time) is the validation split.

    Chips show what the model that found the detections read: a band folder
    detected in near infrared gives B08, B04, B03 chips, enlarged as that
    model enlarges windows (3x for the 10 m models), so the dataset trains the
    same kind of model. ``bands`` (band-folder files, e.g. B04,B03,B02) and
    ``scale`` override both; the dataset's ``data.yaml`` records the bands.

    Raises:
        UsageError: nothing reviewed, or scenes read in different bands or
            scales (export them with one ``bands`` and ``scale``).
    """
    decided = {did: d for did, (d, _, _) in store.decisions().items() if d != Decision.SKIPPED}
    rows = [(did, sid, ship) for did, sid, ship in store.detection_rows(store.latest_settings_hash() or "") if did in decided]
    if not rows:
        raise UsageError(f"{store.path}: no reviewed detections; review some first (shipwatch review --db ...)")
    features = []
    for did, _, ship in rows:
        decision = decided[did]
        cls = (
            "tanker"
            if decision == Decision.TANKER
            else "ship"
            if decision in (Decision.ACCEPTED, Decision.OTHER)
            else ship.class_name
        )
        geometry = (
            {"type": "Polygon", "coordinates": [[*map(list, ship.polygon_lonlat), list(ship.polygon_lonlat[0])]]}
            if ship.polygon_lonlat
            else None
        )
        props = {
            "detection_id": did, "scene": ship.scene, "review": "rejected" if decision == Decision.REJECTED else "accepted",
            "decision": str(decision), "class": cls, "score": ship.score, "px_cx": ship.px_cx, "px_cy": ship.px_cy,
            "px_length": ship.px_length, "px_width": ship.px_width, "px_angle_deg": ship.px_angle_deg,
        }  # fmt: skip
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "labels.geojson", json.dumps({"type": "FeatureCollection", "features": features}) + "\n")
    scenes = []
    by_scene: dict[int, list[tuple[int, Ship]]] = {}
    for did, sid, ship in rows:
        by_scene.setdefault(sid, []).append((did, ship))
    scene_rows = {sid: store.scene(sid) for sid in by_scene}
    reading = {sid: _reading(row, bands, scale) for sid, row in scene_rows.items()}
    kinds = {(chip_bands(b), s) for b, s in reading.values()}
    if len(kinds) > 1:
        seen = "; ".join(f"{scene_rows[sid].name}: {', '.join(chip_bands(b))} at {s:g}x" for sid, (b, s) in reading.items())
        raise UsageError(
            f"{store.path}: the reviewed scenes were read in different bands or scales ({seen}); "
            "export them alike with --bands and --scale, or review and export each kind from its own store"
        )
    ((composite, chip_scale),) = kinds
    tanker = model_classes.index("tanker") if "tanker" in model_classes else 0  # one class: a tanker is a ship
    order = sorted(by_scene, key=lambda sid: (scene_rows[sid].acquired_at or scene_rows[sid].name, sid))  # type: ignore[arg-type, return-value]
    for sid in order:
        row = scene_rows[sid]
        scene = open_named_bands(row.path, reading[sid][0])
        if row.stretch_window is not None:  # the chips as the model saw the scene: stretched by the AOI's surroundings
            scene = stretched_over(scene, Window(*row.stretch_window))
        rgb = scene_pixels(scene)
        kept = [(d, s) for d, s in by_scene[sid] if decided[d] != Decision.REJECTED]
        obb = np.array([[s.px_cx, s.px_cy, s.px_length, s.px_width, s.px_angle_deg] for _, s in kept]).reshape(-1, 5)
        classes = np.array([tanker if decided[d] == Decision.TANKER else 0 for d, _ in kept], np.int64)
        scenes.append(LabelledScene(f"{sid}_{Path(row.name).stem}", str(sid), rgb, obb_corners(obb), classes))
    val = [scenes[-1].group] if len(scenes) > 1 else []
    if not val:  # one scene: hold out its flipped copy, a split the builder accepts
        s = scenes[0]
        flipped = s.polygons.copy()
        flipped[..., 0] = s.rgb.shape[1] - flipped[..., 0]
        scenes.append(LabelledScene(s.name + "_flipped", "flipped", np.ascontiguousarray(s.rgb[:, ::-1]), flipped, s.classes))
        val = ["flipped"]
    summary = build_yolo_obb(
        scenes,
        out / "dataset",
        list(model_classes),
        val,
        BuildSettings(chip=chip, overlap=chip // 4, scale=chip_scale, empty_share=0.2),
        bands=composite,
    )
    return {"labels": len(features), **summary}
