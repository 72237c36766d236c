"""``shipwatch detect INPUT... --out DIR``."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import click
from tqdm import tqdm

from detector.acquisition import parse_time
from detector.distributed import RayConfig
from detector.errors import UsageError
from detector.inputs import expand_inputs
from detector.job import DetectOptions, Engine, Progress, SceneOutcome, run_detect
from detector.raster import DEFAULT_MAX_PIXELS, described_band
from detector.runtimes import Backend
from detector.yolo import DEFAULT_MAX_DET, Device, Head


class ProgressBar(Progress):
    """Scenes done with windows/s, km²/s and the ETA; a second bar for the windows of the current scene."""

    def __init__(self, n_scenes: int) -> None:
        self.scenes = tqdm(total=n_scenes or None, unit="scene", desc="scenes", position=0, dynamic_ncols=True)
        self.windows: tqdm | None = None
        self.started = time.monotonic()
        self.done_windows = 0
        self.done_km2 = 0.0
        self.scene_km2 = 0.0

    def scene_started(self, path: Path, windows: int, area_km2: float) -> None:
        self.scene_km2 = area_km2 / max(windows, 1)
        self.windows = tqdm(total=windows, unit="win", desc=path.name[:40], position=1, leave=False, dynamic_ncols=True)

    def windows_done(self, n: int) -> None:
        self.done_windows += n
        self.done_km2 += n * self.scene_km2
        if self.windows is not None:
            self.windows.update(n)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.scenes.set_postfix_str(
            f"{self.done_windows / elapsed:.1f} win/s, {self.done_km2 / elapsed:.2f} km²/s", refresh=False
        )

    def scene_finished(self, outcome: SceneOutcome) -> None:
        if self.windows is not None:
            self.windows.close()
            self.windows = None
        self.scenes.update(1)
        for note in outcome.notes:
            tqdm.write(f"note: {outcome.path}: {note}")

    def close(self) -> None:
        self.scenes.close()


def _bands(text: str | None) -> tuple[int, ...] | tuple[str, ...] | None:
    if not text:
        return None
    items = [b.strip() for b in text.split(",")]
    named = [described_band(b) for b in items]
    bands: tuple[int, ...] | tuple[str, ...]
    if all(named):
        bands = tuple(b for b in named if b)
    else:
        try:
            bands = tuple(int(b) for b in items)
        except ValueError as exc:
            raise UsageError(
                f"--bands {text!r}: give 1-based band numbers or Sentinel-2 band names separated by commas, "
                "e.g. --bands 4,3,2 or --bands B04,B03,B02"
            ) from exc
    if len(bands) not in (1, 3):
        raise UsageError(f"--bands {text!r}: give 1 or 3 bands (red,green,blue or one grey band), e.g. --bands 4,3,2")
    return bands


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(f"--acquired {text!r}: not an ISO 8601 time; e.g. --acquired 2024-05-01T01:30:00Z") from exc


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option("--weights", help="Registry name or .pt path (default: the registry's default model).")
@click.option("--trust-weights", is_flag=True, help="Use weights whose sha256 is not in the registry.")
@click.option("--conf", type=click.FloatRange(0, 1), help="Score threshold [default: the model's operating threshold].")
@click.option("--iou", default=0.7, show_default=True, type=click.FloatRange(0, 1), help="IoU of the model's own NMS.")
@click.option("--max-det", default=DEFAULT_MAX_DET, show_default=True, type=click.IntRange(1), help="Boxes per window at most.")
@click.option("--overlap", type=click.IntRange(0), help="Window overlap in px (default: longest ship at the scene's GSD).")
@click.option("--batch-size", default=0, type=click.IntRange(0), help="Windows per model call [default: auto].")
@click.option("--readers", type=click.IntRange(0), help="Reader processes, 0 for a thread [default: auto].")
@click.option("--device", type=click.Choice([d.value for d in Device]), default="auto", show_default=True)
@click.option("--backend", type=click.Choice([b.value for b in Backend]), default="auto", show_default=True, help="CPU runtime.")
@click.option("--head", type=click.Choice([h.value for h in Head]), default="nms", show_default=True, help="YOLO26 head.")
@click.option(
    "--bands", help="Bands as red,green,blue (or one band): 1-based numbers (e.g. 4,3,2) or Sentinel-2 names (B04,B03,B02)."
)
@click.option("--acquired", help="Acquisition time (ISO 8601, UTC) for every input.")
@click.option("--allow-ungeoreferenced", is_flag=True, help="Accept scenes without CRS (geometry left empty).")
@click.option("--gsd", type=click.FloatRange(min=0, min_open=True), help="Metres per pixel for ungeoreferenced scenes.")
@click.option("--max-pixels", default=DEFAULT_MAX_PIXELS, show_default=True, type=click.IntRange(1), help="Refuse larger scenes.")
@click.option("--keep-cut", is_flag=True, help="Keep ships cut by the scene edge or nodata (their size is then partial).")
@click.option("--aoi", type=click.Path(dir_okay=False, path_type=Path), help="GeoJSON polygon(s), lon/lat: only look there.")
@click.option(
    "--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Run here, or on a Ray cluster."
)
@click.option("--address", help="Ray cluster address (default: start a local Ray for the run).")
@click.option("--ray-actors", default=0, type=click.IntRange(0), help="Model actors [default: one per GPU, 2 without GPUs].")
@click.option("--actors-per-gpu", default=1, show_default=True, type=click.IntRange(1))
@click.option("--ray-readers", default=8, show_default=True, type=click.IntRange(1), help="Read tasks in flight.")
@click.option("--object-store-mb", type=click.IntRange(64), help="Object store of a local Ray instance.")
@click.option("--quicklook", is_flag=True, help="Also draw OUT/quicklook/<scene>.png with the boxes.")
def detect(
    inputs: tuple[str, ...],
    out_dir: Path,
    weights: str | None,
    trust_weights: bool,
    conf: float | None,
    iou: float,
    max_det: int,
    overlap: int | None,
    batch_size: int,
    readers: int | None,
    device: str,
    backend: str,
    head: str,
    bands: str | None,
    acquired: str | None,
    allow_ungeoreferenced: bool,
    gsd: float | None,
    max_pixels: int,
    keep_cut: bool,
    aoi: Path | None,
    engine: str,
    address: str | None,
    ray_actors: int,
    actors_per_gpu: int,
    ray_readers: int,
    object_store_mb: int | None,
    quicklook: bool,
) -> None:
    """Find ships in INPUT scenes (files, band folders, folders, globs, @list.txt).

    Writes OUT/detections.geojson, OUT/detections.csv, OUT/detections.gpkg (ships and scene footprints)
    and the store OUT/shipwatch.db.
    A rerun with the same inputs and settings reuses the store and writes the same files.
    """
    options = DetectOptions(
        weights=weights,
        trust_weights=trust_weights,
        conf=conf,
        iou=iou,
        max_det=max_det,
        overlap=overlap,
        batch_size=batch_size,
        readers=readers,
        device=Device(device),
        backend=Backend(backend),
        head=Head(head),
        bands=_bands(bands),
        acquired=_time(acquired),
        allow_ungeoreferenced=allow_ungeoreferenced,
        gsd=gsd,
        max_pixels=max_pixels,
        keep_cut=keep_cut,
        aoi=aoi,
        quicklook=quicklook,
        engine=Engine(engine),
        ray=RayConfig(address, ray_actors, actors_per_gpu, ray_readers, object_store_mb),
    )
    paths = expand_inputs(inputs)
    out_dir.mkdir(parents=True, exist_ok=True)  # before the bar: a folder that cannot be made is one line
    bar = ProgressBar(len(paths))
    try:
        report = run_detect(paths, out_dir, options, bar, command="detect " + " ".join(inputs))
    finally:
        bar.close()
    ok = [o for o in report.outcomes if not o.error]
    total = sum(o.ships for o in ok)
    click.echo(
        f"{total} ships in {len(ok)} scenes -> {report.detections_geojson}, {report.detections_csv}, "
        f"{report.detections_gpkg}, {report.store}"
    )
    for path in report.quicklooks:
        click.echo(f"  quicklook: {path}")
    for o in ok:
        state = " (all nodata)" if o.all_nodata else (" (reused)" if o.reused else "")
        click.echo(f"  {o.path}: {o.ships} ships{state}")
    if report.failures:
        click.echo(f"{len(report.failures)} scene(s) failed:", err=True)
        for o in report.failures:
            click.echo(f"  error: {o.error}", err=True)
        raise click.exceptions.Exit(2)
