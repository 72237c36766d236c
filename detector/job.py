"""A detect job: many scenes through one model into the store and exports.

:func:`run_detect` opens each scene, skips it when the store already holds
its key, runs the engine (keeping each batch of finished windows, so that a
killed job resumes mid-scene), georeferences the boxes and stores the scene in
one transaction. Bad scenes are recorded and the job goes on. The exports are
then written from the store, so a rerun gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rasterio.windows import Window
from shapely.geometry.base import BaseGeometry

from detector.aoi import STRETCH_CONTEXT_M, aoi_digest, aoi_in_pixels, load_aoi, stretch_window
from detector.distributed import RayConfig, RayEngine
from detector.engine import (
    DetectSettings,
    SceneResult,
    WindowBoxes,
    WindowKey,
    detect_scene,
    pack_boxes,
    unpack_boxes,
    window_side,
)
from detector.ensemble import MEMBER_CONF, EnsembleDetector
from detector.errors import ShipwatchError, UsageError, WeightsError
from detector.export import write_csv, write_geojson
from detector.georef import Georeferencer, ground_sample_distance
from detector.gpkg import detection_layers, write_gpkg
from detector.models import (
    RGB,
    ModelSpec,
    choose_model,
    in_gsd_range,
    registry_digest,
    resolve_members,
    resolve_weights,
    ship_class_ids,
)
from detector.quicklook import draw_quicklook
from detector.raster import (
    DEFAULT_MAX_PIXELS,
    Scene,
    band_indices,
    band_names,
    bands_read,
    open_for_viewing,
    open_named_bands,
    open_scene,
    stretched_over,
)
from detector.readers import ReaderPool
from detector.records import Ship
from detector.runtimes import Backend
from detector.store import SceneKey, SceneRow, Store
from detector.tiling import overlap_for_gsd, window_count
from detector.yolo import DEFAULT_MAX_DET, Detector, Device, Head, YoloDetector

__all__ = [
    "DetectOptions",
    "Engine",
    "JobReport",
    "SceneOutcome",
    "auto_model",
    "probe_scene",
    "run_detect",
    "scene_content_hash",
]

log = logging.getLogger("shipwatch")

#: The rules by which a scene becomes ships (reading, nodata, stretch, inference,
#: merge), as a number in every store key. Raise it with a change that alters what a
#: scene gives, so that stores redo their scenes instead of keeping results made by the
#: older rules. 2: untagged zero fill of 16- and 32-bit integer files is nodata. 3: a band
#: folder's SCL clouds are nodata; footprints keep their holes and parts. 4: with an AOI,
#: a 16-bit scene is stretched by the AOI's surroundings, not the whole scene.
RULES_VERSION = 4


class Engine(enum.StrEnum):
    LOCAL = "local"
    RAY = "ray"


@dataclass(frozen=True)
class DetectOptions:
    """Options of a detect job (the ``shipwatch detect`` flags)."""

    weights: str | None = None
    trust_weights: bool = False
    conf: float | None = None
    iou: float = 0.7
    max_det: int = DEFAULT_MAX_DET
    overlap: int | None = None
    batch_size: int = 0
    readers: int | None = None
    backend: Backend = Backend.AUTO
    head: Head = Head.NMS
    device: Device = Device.AUTO
    bands: tuple[int, ...] | tuple[str, ...] | None = None  # numbers, or Sentinel-2 names of a band folder or named file
    acquired: datetime | None = None
    allow_ungeoreferenced: bool = False
    gsd: float | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    keep_cut: bool = False
    aoi: Path | None = None
    quicklook: bool = False
    engine: Engine = Engine.LOCAL
    ray: RayConfig = field(default_factory=RayConfig)

    def result_settings(self) -> dict[str, object]:
        """The options that change results (hashed into the store key)."""
        d = asdict(self)
        for key in (
            "weights",
            "trust_weights",
            "batch_size",
            "readers",
            "backend",
            "device",
            "max_pixels",
            "quicklook",
            "engine",
            "ray",
        ):
            d.pop(key)
        d["acquired"] = self.acquired.isoformat() if self.acquired else None
        d["aoi"] = aoi_digest(load_aoi(self.aoi)) if self.aoi else None
        d["rules"] = RULES_VERSION
        d["registry"] = registry_digest()  # an entry's threshold or enlargement changed: its scenes are done again
        return d


@dataclass(frozen=True)
class SceneOutcome:
    path: Path
    ships: int = 0
    reused: bool = False
    all_nodata: bool = False
    error: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class JobReport:
    """What a job did, scene by scene."""

    outcomes: list[SceneOutcome] = field(default_factory=list)
    detections_geojson: Path | None = None
    detections_csv: Path | None = None
    detections_gpkg: Path | None = None
    store: Path | None = None
    quicklooks: list[Path] = field(default_factory=list)

    @property
    def failures(self) -> list[SceneOutcome]:
        return [o for o in self.outcomes if o.error]


def scene_content_hash(scene: Scene) -> str:
    """sha256 identifying a scene: its name, acquisition time, bands and the bytes of its files (SCL included).

    Name and time are part of it so that byte-identical copies filed under
    different names or dates stay distinct scenes.
    """
    digest = hashlib.sha256()
    acquired = scene.acquired_at.isoformat() if scene.acquired_at else ""
    digest.update(f"{scene.name}\0{acquired}\0".encode())
    seen: set[Path] = set()
    files = [(ref.path, ref.index) for ref in scene.bands]
    if scene.clouds:  # a band folder's SCL file as ever (index 0), a band of the scene's own file by its index
        files.append((scene.clouds.path, scene.clouds.index if scene.clouds.path == scene.path else 0))
    for path, index in files:  # the bands, and the cloud mask (SCL) that says which of their pixels count
        digest.update(f"{path.name}:{index};".encode())
        if path in seen:
            continue
        seen.add(path)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def _ships(scene: Scene, result: SceneResult, names: Sequence[str], geo: Georeferencer) -> list[Ship]:
    dets = result.detections
    ground = geo.ground(dets)

    def val(a: np.ndarray, i: int) -> float | None:
        return None if np.isnan(a[i]) else float(a[i])

    ships = []
    for i in range(len(dets)):
        cx, cy, length, width, angle = (float(v) for v in dets.obb[i])
        ships.append(
            Ship(
                scene=scene.name,
                acquired_at=scene.acquired_at,
                class_name=names[int(dets.class_id[i])],
                score=float(dets.score[i]),
                px_cx=cx,
                px_cy=cy,
                px_length=length,
                px_width=width,
                px_angle_deg=angle,
                window_col=int(dets.window[i, 0]),
                window_row=int(dets.window[i, 1]),
                lon=val(ground.lon, i),
                lat=val(ground.lat, i),
                length_m=val(ground.length_m, i),
                beam_m=val(ground.beam_m, i),
                heading_deg=val(ground.heading_deg, i),
                polygon_lonlat=tuple((float(x), float(y)) for x, y in ground.corners_lonlat[i]) if geo.georeferenced else None,
            )
        )
    return ships


#: Parts of a footprint, and holes in it, smaller than this many cells of the decimated valid map are dropped.
_FOOTPRINT_MIN_CELLS = 4.0


def _footprint(scene: Scene, geo: Georeferencer) -> BaseGeometry | None:
    """The lon/lat outline of the scene's valid pixels, from its decimated valid map.

    Holes and separate parts are kept (clouds, nodata), so that what a scene
    did not see is not taken as seen empty; specks smaller than
    :data:`_FOOTPRINT_MIN_CELLS` cells are dropped.
    """
    if not geo.georeferenced:
        return None
    valid = scene.valid_sample
    fy, fx = scene.height / valid.shape[0], scene.width / valid.shape[1]
    if valid.all():
        region: BaseGeometry = shapely.box(0, 0, valid.shape[1], valid.shape[0])
    else:
        from rasterio.features import shapes

        parts = []
        for g, v in shapes(valid.astype(np.uint8), mask=valid):
            polygon = shapely.geometry.shape(g)
            if v == 1 and polygon.area >= _FOOTPRINT_MIN_CELLS:
                holes = [ring for ring in polygon.interiors if shapely.Polygon(ring).area >= _FOOTPRINT_MIN_CELLS]
                parts.append(shapely.Polygon(polygon.exterior, holes).simplify(1.0))
        if not parts:
            return None
        region = shapely.union_all(parts)

    def to_lonlat(xy: np.ndarray) -> np.ndarray:
        lon, lat = geo.pixel_to_lonlat(xy[:, 0] * fx, xy[:, 1] * fy)
        return np.column_stack([lon, lat])

    return shapely.transform(region, to_lonlat)


def _yolo(weights: Path, spec: ModelSpec | None, o: DetectOptions) -> Detector:
    classes = spec.ship_class_ids if spec else ()
    conf = o.conf if o.conf is not None else spec.conf if spec else 0.25
    if spec is not None and spec.members:
        try:
            members = [
                YoloDetector(path, member, MEMBER_CONF, o.iou, o.max_det, o.device, o.backend, o.head, classes, sha)
                for member, path, sha in resolve_members(spec, o.trust_weights)
            ]
        except UsageError as exc:  # an option a member cannot take: say which model the user has to name instead
            names = ", ".join(m.model for m in spec.members)
            raise UsageError(f"{exc} (it is a member of {spec.name}: {names}; --weights runs one of them alone)") from None
        return EnsembleDetector(members, [spec.member_channels(m) for m in spec.members], conf)
    sha = spec.sha256 if spec else None
    return YoloDetector(weights, spec, conf, o.iou, o.max_det, o.device, o.backend, o.head, classes, sha)


def _grid_band(names: Sequence[str]) -> str:
    """A 10 m band of a band folder or named file (Sentinel-2's B01 and B09 are 60 m), else the first."""
    return next((b for b in ("B04", "B03", "B02", "B08") if b in names), names[0])


def probe_scene(
    path: Path, bands: tuple[int, ...] | tuple[str, ...] | None = None, **options: Any
) -> tuple[tuple[str, ...], Scene, float | None]:
    """A scene opened for its grid, before a model is chosen: what :func:`auto_model` needs.

    Returns the Sentinel-2 band names of a band folder or a file whose band
    descriptions give them (none for other files, or with ``bands``), the
    scene opened by one 10 m band of those (else with ``bands``: 1-based
    numbers, or names of a band folder's or named file's bands, each turned
    into this scene's numbers; ``options`` as :func:`~detector.raster.open_scene`
    takes them), and its true ground sample distance (None without a CRS).

    Raises:
        UsageError: ``bands`` names bands the scene lacks.
    """
    if bands and isinstance(bands[0], str):  # --bands B04,B03,B02: this scene's numbers for them
        bands = band_indices(path, [str(b) for b in bands])
    names = () if bands else band_names(path)
    indices = tuple(int(b) for b in bands) if bands else None
    scene = open_scene(path, band_indices(path, [_grid_band(names)]) if names else indices, **options)
    return names, scene, ground_sample_distance(scene.crs, scene.transform, scene.width, scene.height)


def auto_model(path: Path, names: Sequence[str], gsd: float | None) -> tuple[ModelSpec, str]:
    """The registry model ``shipwatch detect`` picks without ``--weights``, and why.

    ``names`` are the Sentinel-2 bands of a band folder or named file (none
    for other files): a file without them, or a scene holding B04, B03 and
    B02, offers true colour as well. A named file whose names fit no model
    is read as it is, as a file without names: descriptions ``B1``, ``B2``,
    ``B3`` may just number the red, green and blue of an aerial image.

    Raises:
        UsageError: no model fits the scene's resolution and bands.
    """
    have = frozenset(names) | (frozenset(RGB) if not names or {"B04", "B03", "B02"} <= set(names) else frozenset())
    try:
        return choose_model(gsd, have, str(path))
    except UsageError:
        if not names or path.is_dir() or set(RGB) <= have:
            raise
        return choose_model(gsd, frozenset(RGB), str(path))


def _stretch_note(span_m: float, gsd: float, aoi: bool) -> list[str]:
    """A note when a scene of 5 m pixels or coarser is stretched by over twice the port crops the 10 m models were measured on."""
    if gsd < 5 or span_m <= 2 * STRETCH_CONTEXT_M:
        return []
    what, fix = (
        (f"the {span_m / 1000:.0f} km that its AOI spans", "give each port a run of its own with its own --aoi")
        if aoi  # ports far apart in one AOI: all between them counts
        else (
            f"all of its {span_m / 1000:.0f} km",
            "give the port as --aoi to stretch by its surroundings",
        )  # a full product, say
    )
    return [f"stretched by {what}; the 10 m models were measured on port crops under {STRETCH_CONTEXT_M / 1000:.0f} km: {fix}"]


def auto_batch_size(detector: Detector) -> int:
    """Windows per model call: 4 on the CPU; on CUDA, what half the free memory holds (8 to 64)."""
    device = getattr(detector, "device", None)
    if device is None or getattr(device, "type", "cpu") != "cuda":
        return 4
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    per_window = 3 * detector.input_size**2 * 2 * 40  # fp16 activations of a nano model, generously
    return int(min(64, max(8, free // 2 // per_window)))


def auto_readers(detector: Detector) -> int:
    """Reader processes: on CUDA, most cores (up to 8); on the CPU none (a reader thread), the model needs the cores."""
    device = getattr(detector, "device", None)
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        return max(1, min(8, (os.cpu_count() or 2) - 1))
    return 0


class StoreCheckpoint:
    """A scene's finished windows, kept in the store (:class:`detector.engine.Checkpoint`)."""

    def __init__(self, store: Store, key: SceneKey) -> None:
        self.store, self.key = store, key

    def done(self) -> dict[WindowKey, WindowBoxes]:
        return {k: unpack_boxes(b) for k, b in self.store.windows_done(self.key).items()}

    def save(self, finished: list[tuple[WindowKey, WindowBoxes]]) -> None:
        self.store.add_windows(self.key, [(k, pack_boxes(b)) for k, b in finished])


class Progress:
    """Callbacks a job reports to; the CLI draws them as a bar."""

    def scene_started(self, path: Path, windows: int, area_km2: float) -> None: ...

    def windows_done(self, n: int) -> None: ...

    def scene_finished(self, outcome: SceneOutcome) -> None: ...


class _Job:
    """The state one detect job shares across its scenes: models, store, readers, AOI."""

    def __init__(
        self,
        options: DetectOptions,
        store: Store,
        stack: contextlib.ExitStack,
        progress: Progress,
        detector_factory: Callable[[Path, ModelSpec | None, DetectOptions], Detector] | None,
        command: str,
    ) -> None:
        self.options, self.store, self.stack, self.progress = options, store, stack, progress
        # --weights fixes the model (checked now); otherwise each scene's resolution picks one.
        self.fixed = resolve_weights(options.weights, options.trust_weights) if options.weights else None
        settings = options.result_settings()
        self.settings_hash = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
        model = "auto" if self.fixed is None else (self.fixed[0].name if self.fixed[0] else self.fixed[1].name)
        self.run_id = store.start_run(command, model, self.fixed[2] if self.fixed else "", self.settings_hash, settings)
        self.aoi = load_aoi(options.aoi) if options.aoi else None
        self._factory = detector_factory or _yolo
        self._detectors: dict[str, Detector] = {}
        self._ray: dict[str, RayEngine] = {}
        self.pool: ReaderPool | None = None
        self.batch_size = options.batch_size

    def detector(self, spec: ModelSpec | None, weights: Path, sha: str) -> Detector:
        """A model, loaded on first need (a job whose scenes are all done loads none)."""
        if sha not in self._detectors:
            detector = self._detectors[sha] = self._factory(weights, spec, self.options)
            if len(self._detectors) == 1:  # the first model sets the batch size and starts the readers
                self.batch_size = self.options.batch_size or auto_batch_size(detector)
                readers = auto_readers(detector) if self.options.readers is None else self.options.readers
                self.pool = self.stack.enter_context(ReaderPool(readers)) if readers > 0 else None
        return self._detectors[sha]

    def _model(
        self, path: Path, names: tuple[str, ...], probe: Scene, gsd: float | None
    ) -> tuple[ModelSpec | None, Path, str, str, Scene]:
        """The model for a scene, why, and the scene opened with the bands that model needs.

        ``names`` are the bands of a band folder or named file (none for
        other files, or with ``--bands``). A model taking named bands (B08 ...) reads them from a
        band folder, an RGB model its true colour; a file, or a folder with
        ``--bands``, is the RGB image ``probe`` (opened with them).
        """
        o = self.options
        if self.fixed is not None:
            spec, weights, sha = self.fixed
            reason = "--weights"
        else:
            spec, reason = auto_model(path, names, gsd)
            _, weights, sha = resolve_weights(spec.name, o.trust_weights)
        if spec is None or set(spec.bands) <= set(RGB):
            scene = open_scene(path, None, o.acquired, o.allow_ungeoreferenced, o.max_pixels) if names else probe
            return spec, weights, sha, reason, scene
        missing = [b for b in spec.bands if b not in names]
        if missing:
            raise UsageError(
                f"{path}: {spec.name} reads bands {', '.join(spec.bands)} and the scene lacks {', '.join(missing)}; "
                "pass a band folder holding them, or a file whose band descriptions name them (without --bands), or other --weights"
            )
        scene = open_named_bands(
            path, spec.bands, acquired=o.acquired, allow_ungeoreferenced=o.allow_ungeoreferenced, max_pixels=o.max_pixels
        )
        return spec, weights, sha, reason, scene

    def scene(self, path: Path) -> tuple[SceneOutcome, tuple[Scene, int] | None]:
        """Run or reuse one scene; a bad scene is recorded and reported, not raised."""
        o = self.options
        try:
            # A band folder is opened by one band for its grid; the chosen model's bands are read after.
            names, scene, gsd = probe_scene(
                path, o.bands, acquired=o.acquired, allow_ungeoreferenced=o.allow_ungeoreferenced, max_pixels=o.max_pixels
            )
            gsd = gsd or o.gsd
            spec, weights, sha, reason, scene = self._model(path, names, scene, gsd)
            key = SceneKey(scene_content_hash(scene), sha, self.settings_hash)
            existing = self.store.scene_id(key)
            if existing is not None:
                row = self.store.scene(existing)
                ships = self.store.count_ships(existing)
                return SceneOutcome(path, ships=ships, reused=True, all_nodata=row.status == "all_nodata"), (scene, existing)
            log.info("%s: model %s (%s)", path, spec.name if spec else weights.name, reason)
            return self._detect(path, scene, key, gsd, spec, weights, reason)
        except ShipwatchError as exc:
            if isinstance(exc, WeightsError) and self.fixed is not None:
                raise  # the --weights file (one with no ship class, say) would fail every scene alike
            self.store.add_failure(self.run_id, str(path), str(exc))
            return SceneOutcome(path, error=str(exc)), None

    def _runner(self, spec: ModelSpec | None, weights: Path, sha: str) -> tuple[int, tuple[str, ...]]:
        """Ready the engine for a model; return its input size and class names."""
        if self.options.engine is Engine.RAY:
            if sha not in self._ray:
                if self.batch_size == 0:
                    self.batch_size = self.options.batch_size or 4
                self._ray[sha] = self.stack.enter_context(RayEngine(self.options.ray, self._factory, weights, spec, self.options))
            return self._ray[sha].input_size, self._ray[sha].class_names  # the actors' model; none loads here
        detector = self.detector(spec, weights, sha)
        return detector.input_size, detector.class_names

    def _run(self, key: SceneKey, scene: Scene, settings: DetectSettings, aoi_px: BaseGeometry | None) -> SceneResult:
        sha, checkpoint = key.weights_sha256, StoreCheckpoint(self.store, key)
        if self.options.engine is Engine.RAY:
            return self._ray[sha].detect_scene(scene, settings, self.progress.windows_done, aoi_px, checkpoint)
        return detect_scene(scene, self._detectors[sha], settings, self.progress.windows_done, self.pool, aoi_px, checkpoint)

    def _detect(
        self, path: Path, scene: Scene, key: SceneKey, gsd: float | None, spec: ModelSpec | None, weights: Path, reason: str
    ) -> tuple[SceneOutcome, tuple[Scene, int]]:
        o = self.options
        model = spec.name if spec else "weights " + key.weights_sha256[:12]
        notes = [f"model {model}: {reason}"]
        if spec and gsd and not in_gsd_range(spec, gsd):
            notes.append(
                f"ground sample distance {gsd:.2f} m is outside {spec.name}'s {spec.gsd_m[0]:g}-{spec.gsd_m[1]:g} m; expect few ships"
            )
        input_size, class_names = self._runner(spec, weights, key.weights_sha256)
        scale = spec.scale if spec else 1.0
        side = window_side(input_size, scale)
        overlap = o.overlap if o.overlap is not None else overlap_for_gsd(gsd, side)
        classes = ship_class_ids(class_names, spec, weights)  # a file outside the registry: its ship classes only
        settings = DetectSettings(overlap, self.batch_size, classes, o.keep_cut, scale=scale)
        n_windows = window_count(scene.width, scene.height, side, overlap)
        self.progress.scene_started(path, n_windows, scene.width * scene.height * (gsd or 0.0) ** 2 / 1e6)
        aoi_px = aoi_in_pixels(self.aoi, scene.crs, scene.transform) if self.aoi is not None else None
        stretched_by = None
        if gsd and scene.stretch is not None:
            window = Window(0, 0, scene.width, scene.height)
            if aoi_px is not None:  # by the port around the AOI, as the models learnt, not by a 110 km tile
                window = stretch_window(aoi_px, scene.width, scene.height, STRETCH_CONTEXT_M / gsd)
                stretched_by = window.flatten()
                scene = stretched_over(scene, window)
            notes.extend(_stretch_note(max(window.width, window.height) * gsd, gsd, aoi_px is not None))
        result = self._run(key, scene, settings, aoi_px)
        geo = Georeferencer(scene.crs, scene.transform, gsd if not scene.georeferenced else None)
        ships = _ships(scene, result, class_names, geo)
        row = SceneRow(
            key=key,
            path=str(path),
            name=scene.name,
            acquired_at=scene.acquired_at,
            crs=scene.crs.to_string() if scene.crs else None,
            transform=tuple(scene.transform)[:6] if scene.transform else None,
            width=scene.width,
            height=scene.height,
            gsd_m=gsd,
            footprint=_footprint(scene, geo),
            status="all_nodata" if scene.all_nodata else "done",
            windows_total=result.windows_total,
            windows_inferred=result.windows_inferred,
            model=model,
            model_reason=reason,
            bands=bands_read(scene),
            scale=scale,
            stretch_window=stretched_by,
        )
        scene_id = self.store.add_scene(row, ships, self.run_id)
        if result.windows_resumed:
            notes.append(f"resumed: {result.windows_resumed} of {result.windows_inferred} windows kept from an interrupted run")
        if scene.all_nodata:
            notes.append("all pixels are nodata: 0 ships")
        return SceneOutcome(path, ships=len(ships), all_nodata=scene.all_nodata, notes=tuple(notes)), (scene, scene_id)


def run_detect(
    inputs: Sequence[Path],
    out_dir: Path,
    options: DetectOptions,
    progress: Progress | None = None,
    detector_factory: Callable[[Path, ModelSpec | None, DetectOptions], Detector] | None = None,
    command: str = "detect",
) -> JobReport:
    """Detect ships in ``inputs`` and write ``out_dir``'s store and exports.

    Raises:
        WeightsError: unverifiable weights (nothing is run), or a ``--weights``
            file with no ship class (the job stops at its first scene to run).
        StoreError: an unusable store in ``out_dir``.
    """
    progress = progress or Progress()
    db = out_dir / "shipwatch.db"
    report = JobReport(store=db)
    kept: list[tuple[Scene, int]] = []
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(Store(db))
        job = _Job(options, store, stack, progress, detector_factory, command)
        for path in inputs:
            outcome, done = job.scene(path)
            if done is not None:
                kept.append(done)
            progress.scene_finished(outcome)
            report.outcomes.append(outcome)
        rows = [store.scene(sid) for _, sid in kept]
        per_scene = [(scene, list(store.ships(sid, row))) for (scene, sid), row in zip(kept, rows, strict=True)]
    if options.quicklook:
        for (scene, ships), row in zip(per_scene, rows, strict=True):
            # A band folder or named file (its bands recorded by name) is pictured in true colour, as the report and
            # the review show it, whatever the model read.
            named = scene.path.is_dir() or any(isinstance(b, str) for b in row.bands or ())
            picture = open_for_viewing(scene.path, row.stretch_window) if named else scene
            report.quicklooks.append(draw_quicklook(picture, ships, out_dir / "quicklook" / f"{scene.name}.png"))
    ships_out = [s for _, ships in per_scene for s in ships]
    report.detections_geojson = out_dir / "detections.geojson"
    report.detections_csv = out_dir / "detections.csv"
    write_geojson(report.detections_geojson, ships_out)
    write_csv(report.detections_csv, ships_out)
    report.detections_gpkg = write_gpkg(
        out_dir / "detections.gpkg",
        detection_layers(ships_out, [(row, len(ships)) for row, (_, ships) in zip(rows, per_scene, strict=True)]),
    )
    return report
