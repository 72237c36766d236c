"""A fake detector for tests of the logic around the model (tiling, merge, georef).

It "detects" bright blobs (channel 0 above 200) as ships with OpenCV's
minimum-area rectangle, clipped to the window like a real model's boxes, and,
to stand for false alarms on fill, dark holes (all channels 0) as class 1.
"""

from __future__ import annotations

import cv2
import numpy as np

from detector.records import Detections, normalise_obb


class BlobDetector:
    def __init__(self, size: int = 256) -> None:
        self._size = size
        self.calls = 0
        self.windows = 0

    @property
    def input_size(self) -> int:
        return self._size

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("ship", "hole")

    def _boxes(self, mask: np.ndarray, cls: int) -> list[tuple[float, ...]]:
        n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        out = []
        for k in range(1, n):
            ys, xs = np.nonzero(labels == k)
            if len(xs) < 6:
                continue
            pts = np.column_stack([xs, ys]).astype(np.float32)
            # pixel centres to the corner convention: each pixel spans [x, x+1)
            corners = np.concatenate([pts + d for d in ((0, 0), (1, 0), (0, 1), (1, 1))]).astype(np.float32)
            (cx, cy), (w, h), a = cv2.minAreaRect(corners)
            out.append((cx, cy, w, h, a, cls))
        return out

    def __call__(self, batch: np.ndarray) -> list[Detections]:
        self.calls += 1
        self.windows += len(batch)
        results = []
        for img in batch:
            rows = self._boxes(img[..., 0] > 200, 0) + self._boxes((img == 0).all(axis=2), 1)
            if not rows:
                results.append(Detections.empty())
                continue
            arr = np.array(rows, float)
            results.append(Detections(normalise_obb(arr[:, :5]), np.full(len(arr), 0.9), arr[:, 5].astype(int)))
        return results


def draw_ships(shape: tuple[int, int], ships: list[tuple[float, float, float, float, float]], seed: int = 0) -> np.ndarray:
    """A (3, h, w) uint8 sea (values 20..60) with bright OBB ships drawn on it."""
    rng = np.random.default_rng(seed)
    img = rng.integers(20, 60, (shape[0], shape[1]), dtype=np.uint8)
    for cx, cy, length, width, angle in ships:
        box = cv2.boxPoints(((cx, cy), (length, width), angle))
        # fillPoly treats vertices as pixel centres: shift by half a pixel
        cv2.fillPoly(img, [np.round((box - 0.5) * 16).astype(np.int32)], 240, shift=4)
    return np.stack([img, img, img])
