"""The Ray engine: the same detect job across many GPUs and machines.

CPU tasks read windows; model actors (one GPU each where there are GPUs, CPU
actors otherwise) hold the model, loaded once per actor, and run
:func:`detector.engine.infer_batch`; the driver merges each scene with
:func:`detector.engine.finish_scene`. Reading, inference, merging and
georeferencing are the local engine's own code, and results go through the
same store and keys, so a job started on one engine resumes on the other.

Faults: a reader task whose worker dies is retried (``max_retries``); a model
actor that dies is restarted and its pending batches are retried
(``max_restarts``, ``max_task_retries``). Results are collected in window
order, so the merge sees exactly what the local engine sees, and kept batch
by batch in the store like the local engine's, so a job killed mid-scene
resumes on either engine.

Without ``address`` a local Ray instance is started for the run and shut down
after. ``pip install 'shipwatch[ray]'`` installs Ray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from detector.engine import (
    Checkpoint,
    DetectSettings,
    SceneResult,
    WindowBoxes,
    WindowKey,
    finish_scene,
    infer_batch,
    plan_scene,
)
from detector.errors import ShipwatchError, UsageError
from detector.models import ModelSpec
from detector.raster import ReadSpec, Scene, SceneReader

__all__ = ["RayConfig", "RayEngine"]


@dataclass(frozen=True)
class RayConfig:
    """Ray settings.

    Attributes:
        address: a running cluster (``ray://host:10001`` or ``auto``); None starts a local one.
        actors: model actors; 0 means one per GPU, or 2 on a machine without GPUs.
        actors_per_gpu: actors sharing one GPU (fractional GPUs).
        readers: reader tasks in flight at once (bounds memory in the object store).
        object_store_mb: object store size for a local instance (None: Ray's default).
        actor_cpus: CPUs an actor reserves (None: 1 beside a GPU, 0.1 without: a
            reservation is bookkeeping, and actors of several models in one job
            must never hold every CPU and starve the readers).
        reader_cpus: CPUs a read task reserves.
    """

    address: str | None = None
    actors: int = 0
    actors_per_gpu: int = 1
    readers: int = 8
    object_store_mb: int | None = None
    actor_cpus: float | None = None
    reader_cpus: float = 0.25


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'shipwatch[ray]' (or pip install 'ray>=2.9')") from None
    return ray


def _read(spec: ReadSpec, windows: list[tuple[int, int, int, int]]) -> list[tuple[Window, Any, Any]]:
    with SceneReader(spec) as reader:
        out = []
        for c, r, w, h in windows:
            window = Window(c, r, w, h)
            rgb, valid = reader.read(window)
            out.append((window, rgb, valid))
        return out


class _ModelActor:
    def __init__(self, factory: Callable[..., Any], weights: Path, spec: ModelSpec | None, options: Any) -> None:
        try:
            self._detector: Any = factory(weights, spec, options)
        except ShipwatchError as exc:  # weights it cannot load: raised whole by every call, not restarted in a loop
            self._detector = exc

    @property
    def detector(self) -> Any:
        if isinstance(self._detector, ShipwatchError):
            raise self._detector
        return self._detector

    def describe(self) -> tuple[int, tuple[str, ...]]:
        return self.detector.input_size, tuple(self.detector.class_names)

    def infer(
        self, batch: list[tuple[Window, Any, Any]], settings: DetectSettings, size: int
    ) -> list[tuple[WindowKey, WindowBoxes]]:
        items = [item for item in batch if item[2].any()]  # all-nodata windows are never inferred
        return infer_batch(self.detector, items, settings, size) if items else []

    def pid(self) -> int:
        import os

        return os.getpid()


class RayEngine:
    """Model actors for one weights file on a Ray cluster; use as a context manager."""

    def __init__(
        self, config: RayConfig, factory: Callable[..., Any], weights: Path, spec: ModelSpec | None, options: Any
    ) -> None:
        ray = _ray()
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if config.address:
                ray.init(address=config.address, **kwargs)
            else:
                if config.object_store_mb:
                    kwargs["object_store_memory"] = config.object_store_mb * 2**20
                ray.init(**kwargs)
            self._started = True
        gpus = int(ray.cluster_resources().get("GPU", 0))
        n = config.actors or (gpus * config.actors_per_gpu if gpus else 2)
        gpu_share = 1.0 / config.actors_per_gpu if gpus else 0
        cpus = config.actor_cpus if config.actor_cpus is not None else (1.0 if gpus else 0.1)
        actor = ray.remote(num_cpus=cpus, num_gpus=gpu_share, max_restarts=3, max_task_retries=3)(_ModelActor)
        self.actors = [actor.remote(factory, weights, spec, options) for _ in range(n)]
        self._read = ray.remote(num_cpus=config.reader_cpus, max_retries=3)(_read)
        self.config = config
        try:  # what the actors loaded, as the local engine asks its model: the windows are laid for it
            self.input_size, self.class_names = ray.get(self.actors[0].describe.remote())
        except BaseException as exc:
            self.__exit__(None, None, None)
            cause = getattr(exc, "cause", None)  # a RayTaskError carries what the actor raised
            if isinstance(cause, ShipwatchError):
                raise cause from None
            raise

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for a in self.actors:
            self.ray.kill(a)
        if self._started:
            self.ray.shutdown()

    def detect_scene(
        self,
        scene: Scene,
        settings: DetectSettings,
        on_windows: Callable[[int], None] | None = None,
        aoi: BaseGeometry | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> SceneResult:
        """The Ray twin of :func:`detector.engine.detect_scene`, checkpoint included."""
        ray = self.ray
        plan = plan_scene(scene, self.input_size, settings, aoi, checkpoint)
        todo, inferred = plan.start(on_windows)
        spec = scene.read_spec
        batches = [todo[i : i + settings.batch_size] for i in range(0, len(todo), settings.batch_size)]
        pending: list[Any] = []

        def collect() -> None:  # the oldest batch in flight: kept batch by batch, as the local engine keeps them
            count, ref = pending.pop(0)
            finished = ray.get(ref)
            if checkpoint and finished:
                checkpoint.save(finished)
            inferred.update(finished)
            if on_windows:
                on_windows(count)

        for k, batch in enumerate(batches):
            windows = [(int(w.col_off), int(w.row_off), int(w.width), int(w.height)) for w in batch]
            read = self._read.remote(spec, windows)
            pending.append((len(batch), self.actors[k % len(self.actors)].infer.remote(read, settings, plan.size)))
            while len(pending) >= self.config.readers:
                collect()
        while pending:
            collect()
        return finish_scene(scene, plan, inferred, settings, aoi)  # all-nodata windows return no boxes
