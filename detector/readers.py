"""Reading windows ahead of the model: in a thread, or in worker processes.

Either way windows come back in the order asked (block order), at most
``prefetch`` ahead of the consumer, so memory stays flat whatever the scene
size. Worker processes each hold their own rasterio handles (one
:class:`~detector.raster.SceneReader` per scene, kept while the scene lasts);
they are started once per job with ``spawn``, so they never inherit the
model's threads.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from detector.raster import ReadSpec, SceneReader

__all__ = ["ReaderPool", "WindowData", "read_windows"]

#: A window, its (h, w, 3) uint8 RGB pixels and (h, w) valid mask.
WindowData = tuple[Window, NDArray[np.uint8], NDArray[np.bool_]]

_worker_readers: dict[ReadSpec, SceneReader] = {}


def _read_in_worker(spec: ReadSpec, window: Window) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    reader = _worker_readers.get(spec)
    if reader is None:
        for old in _worker_readers.values():
            old.close()
        _worker_readers.clear()
        reader = _worker_readers[spec] = SceneReader(spec).__enter__()
    return reader.read(window)


class ReaderPool:
    """Worker processes reading windows; use as a context manager, one per job."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a ReaderPool needs at least one worker")
        self.workers = workers
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def __enter__(self) -> ReaderPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def read(self, spec: ReadSpec, windows: Sequence[Window], prefetch: int) -> Iterator[WindowData]:
        pending: deque[tuple[Window, Future[tuple[NDArray[np.uint8], NDArray[np.bool_]]]]] = deque()
        todo = iter(windows)
        try:
            for window in todo:
                pending.append((window, self._executor.submit(_read_in_worker, spec, window)))
                if len(pending) >= prefetch:
                    break
            while pending:
                window, future = pending.popleft()
                rgb, valid = future.result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append((nxt, self._executor.submit(_read_in_worker, spec, nxt)))
                yield window, rgb, valid
        finally:
            for _, future in pending:
                future.cancel()


def _read_ahead(spec: ReadSpec, windows: Sequence[Window], out: queue.Queue[object], stop: threading.Event) -> None:
    try:
        with SceneReader(spec) as reader:
            for window in windows:
                if stop.is_set():
                    return
                rgb, valid = reader.read(window)
                out.put((window, rgb, valid))
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)
    finally:
        out.put(None)


def _read_in_thread(spec: ReadSpec, windows: Sequence[Window], prefetch: int) -> Iterator[WindowData]:
    q: queue.Queue[object] = queue.Queue(maxsize=max(prefetch, 1))
    stop = threading.Event()
    thread = threading.Thread(target=_read_ahead, args=(spec, windows, q, stop), daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def read_windows(
    spec: ReadSpec, windows: Sequence[Window], prefetch: int, pool: ReaderPool | None = None
) -> Iterator[WindowData]:
    """Windows of a scene in order, read ahead by ``pool``'s processes or by one thread."""
    if pool is not None:
        return pool.read(spec, windows, prefetch)
    return _read_in_thread(spec, windows, prefetch)
