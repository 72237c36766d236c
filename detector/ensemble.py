"""Several models read as one: each sees its own bands of a window, and their boxes are fused.

An ensemble's registry entry lists its members and the bands each takes
(:class:`~detector.models.Member`); the scene is read once, with all of the
ensemble's bands, and each member gets its three. Per window, boxes of
different members that overlap (oriented-box IoU >= :data:`MATCH_IOU`, same
class) are one ship. Its score is the mean of the members' scores, a member
that saw nothing there adding 0, so a ship seen by every member outranks one
seen by only one; its box is the highest-scoring member's. Members run at a
low threshold (:data:`MEMBER_CONF`) so that a weak sighting still adds to the
mean; the ensemble's own threshold applies to the fused score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from detector.records import Detections
from detector.yolo import Detector

__all__ = ["MATCH_IOU", "MEMBER_CONF", "EnsembleDetector", "fuse_boxes"]

#: Members' own score threshold.
MEMBER_CONF = 0.05
#: Oriented-box IoU from which two members' boxes are the same ship.
MATCH_IOU = 0.3


def _iou(a: Detections, b: Detections) -> NDArray[np.float64]:
    pa, pb = shapely.polygons(a.corners()), shapely.polygons(b.corners())
    inter = shapely.area(shapely.intersection(pa[:, None], pb[None, :]))
    union = shapely.area(pa)[:, None] + shapely.area(pb)[None, :] - inter
    iou = np.asarray(inter / np.maximum(union, 1e-9), np.float64)
    iou[a.class_id[:, None] != b.class_id[None, :]] = 0.0
    return iou


def fuse_boxes(parts: Sequence[Detections], conf: float) -> Detections:
    """One set of boxes from each member's boxes of the same image (see the module's rules).

    Returns the fused boxes scoring at least ``conf``, by descending score.
    """
    n = len(parts)
    rep = parts[0]
    scores = np.zeros((len(rep), n), np.float64)
    scores[:, 0] = rep.score
    for j, part in enumerate(parts[1:], start=1):
        matched_rows = np.zeros(0, np.int64)
        matched_cols = np.zeros(0, np.int64)
        if len(rep) and len(part):
            iou = _iou(rep, part)
            rows, cols = linear_sum_assignment(-iou)
            ok = iou[rows, cols] >= MATCH_IOU
            matched_rows, matched_cols = rows[ok], cols[ok]
        scores[matched_rows, j] = part.score[matched_cols]
        # The box of the highest-scoring member stands for the ship.
        better = part.score[matched_cols] > scores[matched_rows, :j].max(axis=1)
        if better.any():
            obb, score, cls = rep.obb.copy(), rep.score.copy(), rep.class_id.copy()
            rows, cols = matched_rows[better], matched_cols[better]
            obb[rows], score[rows], cls[rows] = part.obb[cols], part.score[cols], part.class_id[cols]
            rep = Detections(obb, score, cls)
        new = np.setdiff1d(np.arange(len(part)), matched_cols)
        rep = Detections.concat([rep, part[new]])
        extra = np.zeros((len(new), n), np.float64)
        extra[:, j] = part.score[new]
        scores = np.vstack([scores, extra])
    fused = scores.mean(axis=1)
    keep = np.flatnonzero(fused >= conf)
    keep = keep[np.argsort(-fused[keep], kind="stable")]
    out = rep[keep]
    return Detections(out.obb, fused[keep], out.class_id)


class EnsembleDetector:
    """Members behind the :class:`~detector.yolo.Detector` protocol, reading (B, H, W, C) windows.

    Args:
        members: the members' detectors, each running at :data:`MEMBER_CONF`.
        channels: per member, which of the window's channels it takes, in its
            input order.
        conf: threshold on the fused score.
    """

    def __init__(self, members: Sequence[Detector], channels: Sequence[tuple[int, ...]], conf: float) -> None:
        if len(members) < 2 or len(members) != len(channels):
            raise ValueError("an ensemble needs two or more members, each with its channels")
        first = members[0]
        for m in members[1:]:
            if (m.input_size, m.class_names) != (first.input_size, first.class_names):
                raise ValueError("ensemble members differ in input size or classes")
        self.members, self.channels, self.conf = list(members), [list(c) for c in channels], conf
        self._width = max(max(c) for c in channels) + 1  # channels a window must have
        # A member taking all of a window's channels in order reads the batch as it is, not a copy.
        self._as_read = [c == list(range(self._width)) for c in self.channels]

    @property
    def input_size(self) -> int:
        return self.members[0].input_size

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.members[0].class_names

    @property
    def device(self) -> object:
        return getattr(self.members[0], "device", None)

    def __call__(self, batch: NDArray[np.uint8]) -> list[Detections]:
        if batch.ndim != 4 or batch.shape[-1] < self._width:
            raise ValueError(f"batch must be (B, H, W, {self._width}) uint8 for this ensemble, got {batch.shape}")
        whole = batch.shape[-1] == self._width
        per_member = [
            m(batch if whole and as_read else np.ascontiguousarray(batch[..., c]))
            for m, c, as_read in zip(self.members, self.channels, self._as_read, strict=True)
        ]
        return [fuse_boxes([p[i] for p in per_member], self.conf) for i in range(len(batch))]
