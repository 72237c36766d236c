"""The local engine: windows of one scene through a detector, in batches.

Readers (worker processes, or a thread) read windows in block order, a
bounded number ahead (memory stays flat whatever the scene size), while the
main thread runs the detector on full batches. Windows the scene's valid map shows empty are never read;
windows read as all nodata are never inferred.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np
import shapely
from numpy.typing import NDArray
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from detector.errors import UsageError
from detector.merge import DEFAULT_MERGE_IOS, EDGE_MARGIN_PX, cut_by_window, merge_seams, touches_invalid
from detector.raster import Scene
from detector.readers import ReaderPool, WindowData, read_windows
from detector.records import Detections
from detector.tiling import tile_windows
from detector.yolo import Detector

__all__ = [
    "Checkpoint",
    "DetectSettings",
    "ScenePlan",
    "SceneResult",
    "detect_scene",
    "finish_scene",
    "infer_batch",
    "iter_window_batches",
    "pack_boxes",
    "plan_scene",
    "unpack_boxes",
    "window_key",
]


@dataclass(frozen=True)
class DetectSettings:
    """How a scene is searched. Everything here is part of the settings hash.

    Attributes:
        overlap: px shared by neighbouring windows.
        batch_size: windows per model call.
        classes: model class indices kept (ships); all when empty.
        keep_cut: keep boxes cut by the scene edge or by nodata, whose true
            extent is unknown (dropped by default).
        merge_ios: see :func:`detector.merge.merge_seams`.
        prefetch: windows read ahead of the model.
        scale: resampling of windows before the model (a model trained on
            upsampled imagery sees windows of ``input_size / scale`` scene px
            enlarged to ``input_size``); boxes come back in scene px.
    """

    overlap: int
    batch_size: int = 4
    classes: tuple[int, ...] = ()
    keep_cut: bool = False
    merge_ios: float = DEFAULT_MERGE_IOS
    prefetch: int = 8
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.overlap < 0:
            raise UsageError(f"--overlap must be >= 0 px, got {self.overlap}")
        if self.scale <= 0:
            raise UsageError(f"scale must be > 0, got {self.scale}")


@dataclass(frozen=True)
class SceneResult:
    """Detections of one scene, in scene pixels, and what the engine did."""

    detections: Detections
    windows_total: int
    windows_inferred: int
    windows_skipped: int
    windows_resumed: int = 0  # inferred by an interrupted run, kept by the checkpoint


def iter_window_batches(
    scene: Scene, windows: list[Window], batch_size: int, prefetch: int, pool: ReaderPool | None = None
) -> Iterator[tuple[list[WindowData], int]]:
    """Yield ``(batch, skipped)``: read windows with data, and how many read windows were all nodata."""
    batch: list[WindowData] = []
    skipped = 0
    for item in read_windows(scene.read_spec, windows, max(prefetch, batch_size), pool):
        if not item[2].any():
            skipped += 1
            continue
        batch.append(item)
        if len(batch) == batch_size:
            yield batch, skipped
            batch, skipped = [], 0
    if batch or skipped:
        yield batch, skipped


def _on_valid(dets: Detections, valid: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Per box (window pixels): centre on valid data; some corner inside the window on nodata."""
    h, w = valid.shape
    cx = np.clip(dets.obb[:, 0].astype(np.int64), 0, w - 1)
    cy = np.clip(dets.obb[:, 1].astype(np.int64), 0, h - 1)
    centre_ok = valid[cy, cx]
    corners = dets.corners()
    # Pull corners one pixel toward the centre so that a box drawn on the edge
    # of the data does not sample the first invalid pixel beyond it.
    inward = corners - np.sign(corners - dets.obb[:, None, :2]) * 1.0
    col, row = np.floor(inward[..., 0]).astype(np.int64), np.floor(inward[..., 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    corner_bad = np.zeros(len(dets), bool)
    if inside.any():
        bad = np.zeros(corners.shape[:2], bool)
        bad[inside] = ~valid[row[inside], col[inside]]
        corner_bad = np.asarray(bad.any(axis=1))
    return centre_ok, corner_bad


def window_side(input_size: int, scale: float) -> int:
    """Scene pixels a window spans for a model of ``input_size`` run at ``scale``."""
    return max(1, round(input_size / scale))


def _enlarge(item: WindowData, size: int) -> WindowData:
    window, rgb, valid = item
    big = np.asarray(cv2.resize(rgb, (size, size), interpolation=cv2.INTER_CUBIC), np.uint8)
    mask = np.asarray(cv2.resize(valid.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST), bool)
    return window, big, mask


def _shrink(dets: Detections, factor: float) -> Detections:
    obb = dets.obb.copy()
    obb[:, :4] *= factor
    return Detections(obb, dets.score, dets.class_id, dets.window)


def _box(window: Window) -> shapely.Polygon:
    return shapely.box(window.col_off, window.row_off, window.col_off + window.width, window.row_off + window.height)


#: Per window: its boxes in scene pixels, and which of them touch nodata.
WindowBoxes = tuple[Detections, NDArray[np.bool_]]

#: A window by its offset: ``(col_off, row_off)``.
WindowKey = tuple[int, int]


def window_key(window: Window) -> WindowKey:
    return int(window.col_off), int(window.row_off)


def pack_boxes(boxes: WindowBoxes) -> bytes:
    """A window's boxes as bytes (exact: every array keeps its dtype), for a checkpoint."""
    dets, bad = boxes
    buf = io.BytesIO()
    np.savez(buf, obb=dets.obb, score=dets.score, class_id=dets.class_id, window=dets.window, bad=bad)
    return buf.getvalue()


def unpack_boxes(data: bytes) -> WindowBoxes:
    with np.load(io.BytesIO(data)) as z:
        return Detections(z["obb"], z["score"], z["class_id"], z["window"]), z["bad"]


class Checkpoint(Protocol):
    """Where a scene's finished windows are kept while it runs, so that a killed job resumes mid-scene."""

    def done(self) -> dict[WindowKey, WindowBoxes]:
        """The windows finished by an earlier, interrupted run of this scene."""
        ...

    def save(self, finished: list[tuple[WindowKey, WindowBoxes]]) -> None:
        """Keep a batch of finished windows, all or none."""
        ...


@dataclass(frozen=True)
class ScenePlan:
    """The windows of a scene: all of them, those worth reading (data, AOI), and what a checkpoint kept of those."""

    size: int
    windows: list[Window]
    to_read: list[Window]
    kept: dict[WindowKey, WindowBoxes] = field(default_factory=dict)

    def start(self, on_windows: Callable[[int], None] | None) -> tuple[list[Window], dict[WindowKey, WindowBoxes]]:
        """The windows left to infer, and those inferred so far (what the checkpoint kept), for an engine to add to.

        Windows not to infer (no data, outside the AOI, kept) count as done at once for ``on_windows``.
        """
        todo = [w for w in self.to_read if window_key(w) not in self.kept]
        if on_windows and len(self.windows) > len(todo):
            on_windows(len(self.windows) - len(todo))
        return todo, dict(self.kept)


def plan_scene(
    scene: Scene,
    input_size: int,
    settings: DetectSettings,
    aoi: BaseGeometry | None = None,
    checkpoint: Checkpoint | None = None,
) -> ScenePlan:
    """Lay the windows of ``scene`` for a model of ``input_size`` at ``settings.scale``, with what ``checkpoint`` kept."""
    size = window_side(input_size, settings.scale)
    if settings.overlap >= size:
        raise UsageError(f"--overlap {settings.overlap} px must be below the window size {size} px")
    windows = list(tile_windows(scene.width, scene.height, size, settings.overlap))
    to_read = [w for w in windows if scene.window_may_hold_data(w) and (aoi is None or aoi.intersects(_box(w)))]
    return ScenePlan(size, windows, to_read, checkpoint.done() if checkpoint else {})


def infer_batch(
    detector: Detector, batch: list[WindowData], settings: DetectSettings, size: int
) -> list[tuple[WindowKey, WindowBoxes]]:
    """Run the model on read windows; boxes come back in scene pixels, by window key (what a checkpoint keeps).

    The one implementation of inference for every engine (local and Ray).
    """
    if settings.scale != 1:
        batch = [_enlarge(item, detector.input_size) for item in batch]
    results = detector(np.stack([rgb for _, rgb, _ in batch]))
    out = []
    for (window, _, valid), dets in zip(batch, results, strict=True):
        if settings.classes:
            dets = dets[np.isin(dets.class_id, settings.classes)]
        centre_ok, corner_bad = _on_valid(dets, valid)
        dets = dets[centre_ok]
        if settings.scale != 1:
            dets = _shrink(dets, size / detector.input_size)
        out.append((window_key(window), (dets.shifted(int(window.col_off), int(window.row_off)), corner_bad[centre_ok])))
    return out


def finish_scene(
    scene: Scene, plan: ScenePlan, inferred: dict[WindowKey, WindowBoxes], settings: DetectSettings, aoi: BaseGeometry | None
) -> SceneResult:
    """Edge policy, AOI and the seam merge over all windows' boxes: the one implementation for every engine.

    ``inferred`` holds every window inferred, by this run or (``plan.kept``)
    by an interrupted one; they are merged in window order, so a resumed
    scene ends exactly as an uninterrupted one.
    """
    boxes = [inferred[k] for k in map(window_key, plan.to_read) if k in inferred]
    found = Detections.concat([d for d, _ in boxes])
    bad = np.concatenate([b for _, b in boxes]) if boxes else np.zeros(0, bool)
    if aoi is not None and len(found):
        inside = shapely.contains_xy(aoi, found.obb[:, 0], found.obb[:, 1])
        found, bad = found[inside], bad[inside]
    if not settings.keep_cut and len(found):
        keep = ~(bad | touches_invalid(found, scene.width, scene.height, EDGE_MARGIN_PX))
        found = found[keep]
    merged = merge_seams(found, cut_by_window(found, plan.size, scene.width, scene.height), settings.merge_ios)
    resumed = sum(window_key(w) in plan.kept for w in plan.to_read)
    return SceneResult(merged, len(plan.windows), len(boxes), len(plan.windows) - len(boxes), resumed)


def detect_scene(
    scene: Scene,
    detector: Detector,
    settings: DetectSettings,
    on_windows: Callable[[int], None] | None = None,
    pool: ReaderPool | None = None,
    aoi: BaseGeometry | None = None,
    checkpoint: Checkpoint | None = None,
) -> SceneResult:
    """Detect ships in one scene.

    Args:
        scene: an opened scene.
        detector: the model, behind the :class:`~detector.yolo.Detector` protocol.
        settings: overlap, batch size, classes and edge policy.
        on_windows: called with the number of windows finished, for progress.
        pool: reader processes; None reads in a thread.
        aoi: area of interest in scene pixels: windows missing it are never
            read, ships centred outside it are dropped.
        checkpoint: keeps each batch's windows as they finish and gives back
            those an interrupted run finished, which are not read again; the
            result is the same as in one uninterrupted run.

    Returns:
        Merged detections in scene pixels, canonical order.
    """
    plan = plan_scene(scene, detector.input_size, settings, aoi, checkpoint)
    todo, inferred = plan.start(on_windows)
    for batch, skipped in iter_window_batches(scene, todo, settings.batch_size, settings.prefetch, pool):
        if batch:
            finished = infer_batch(detector, batch, settings, plan.size)
            if checkpoint:
                checkpoint.save(finished)
            inferred.update(finished)
        if on_windows:
            on_windows(len(batch) + skipped)
    return finish_scene(scene, plan, inferred, settings, aoi)
