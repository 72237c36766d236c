#!/usr/bin/env python3
"""Benchmark: Shipwatch end to end against a naive loop, SAHI and the bare model.

    python scripts/benchmark.py [--device cpu|cuda] [--size 8192] [--scene FILE] [--json OUT]
    python scripts/benchmark.py --scaling 2048,4096,8192,16384 [--json OUT]

Without ``--scene`` it builds a benchmark scene: a mosaic of the dota8 crops
(tests/data holds one; ../shared/data/dota8 holds all eight), flipped and
rotated by a fixed seed, written as a tiled GeoTIFF at 0.3 m (EPSG:32653).

Each method runs in its own process, on the same device, weights, window
size, overlap and score threshold, with the model loaded before the clock
starts:

  (a) shipwatch   run_detect: GeoTIFF file -> detections.geojson/.csv/store
  (b) naive       rasterio window read -> Ultralytics predict per window -> global rotated NMS
  (c) sahi        SAHI get_sliced_prediction on the image read into memory
  (d) model_only  the model's forward pass alone, on batches already in memory

Throughput is scene megapixels per second. ``agreement_f1`` matches (a)'s
ships to (c)'s one to one by centre distance (within half the smaller
length). Peak RSS is that of (a)'s process. ``--scaling`` runs (a) alone on
growing scenes and reports time and peak memory per size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
WINDOW = 1024
OVERLAP = 205  # 0.2 of the window, SAHI's default ratio
CONF = 0.25
SHIP = 1  # DOTA class index


def crops() -> list[Path]:
    shared = REPO.parent / "shared" / "data" / "dota8" / "images"
    found = sorted(shared.rglob("*.jpg")) if shared.is_dir() else []
    return found or [REPO / "tests" / "data" / "P0861__1024__0___1648.jpg"]


def build_scene(path: Path, size: int, seed: int = 0) -> Path:
    """A ``size`` x ``size`` mosaic of dota8 crops as a tiled, uncompressed GeoTIFF (written by blocks)."""
    import cv2
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    tiles = [cv2.imread(str(p))[..., ::-1] for p in crops()]
    tiles = [cv2.resize(t, (1024, 1024)) if t.shape[:2] != (1024, 1024) else t for t in tiles]
    rng = np.random.default_rng(seed)
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8", "crs": "EPSG:32653",
        "transform": from_origin(500000.0, 4750000.0, 0.3, 0.3), "tiled": True, "blockxsize": 512, "blockysize": 512,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as ds:
        for row in range(0, size, 1024):
            for col in range(0, size, 1024):
                tile = np.rot90(tiles[rng.integers(len(tiles))], k=int(rng.integers(4)))
                if rng.integers(2):
                    tile = tile[:, ::-1]
                h, w = min(1024, size - row), min(1024, size - col)
                ds.write(np.ascontiguousarray(tile[:h, :w].transpose(2, 0, 1)), window=Window(col, row, w, h))
    return path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gpu_alloc_mb(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def _windows(width: int, height: int) -> list[tuple[int, int]]:
    from detector.tiling import window_starts

    return [(c, r) for r in window_starts(height, WINDOW, OVERLAP) for c in window_starts(width, WINDOW, OVERLAP)]


def run_shipwatch(scene: Path, device: str, batch_size: int, readers: int | None, out: Path) -> dict[str, object]:
    from detector.job import DetectOptions, _yolo, auto_batch_size, run_detect
    from detector.models import resolve_weights
    from detector.yolo import Device

    options = DetectOptions(
        overlap=OVERLAP, conf=CONF, device=Device(device), batch_size=batch_size, readers=readers, keep_cut=True
    )
    spec, weights, _ = resolve_weights()
    detector = _yolo(weights, spec, options)
    # Warm up as (d) does: the first call at a batch shape compiles kernels.
    detector(np.zeros((batch_size or auto_batch_size(detector), WINDOW, WINDOW, 3), np.uint8))
    _cuda_sync(device)()
    start = time.perf_counter()
    run_detect([scene], out, options, detector_factory=lambda *_: detector, command="benchmark")
    _cuda_sync(device)()
    seconds = time.perf_counter() - start
    import csv

    rows = list(csv.DictReader((out / "detections.csv").open()))
    boxes = [[float(r[k]) for k in ("px_cx", "px_cy", "px_length")] for r in rows]
    return {"seconds": seconds, "boxes": boxes, "backend": str(getattr(detector, "backend", ""))}


def run_naive(scene: Path, device: str) -> dict[str, object]:
    import rasterio
    import torch
    from rasterio.windows import Window
    from ultralytics import YOLO
    from ultralytics.utils.metrics import batch_probiou
    from ultralytics.utils.nms import TorchNMS

    model = YOLO(str(REPO / "models" / "yolo26n-obb.pt"), task="obb")
    model.predict(np.zeros((WINDOW, WINDOW, 3), np.uint8), imgsz=WINDOW, device=device, verbose=False)
    start = time.perf_counter()
    boxes, scores = [], []
    with rasterio.open(scene) as ds:
        for col, row in _windows(ds.width, ds.height):
            rgb = ds.read(window=Window(col, row, WINDOW, WINDOW)).transpose(1, 2, 0)
            r = model.predict(np.ascontiguousarray(rgb[..., ::-1]), imgsz=WINDOW, conf=CONF, device=device, verbose=False)[0]
            keep = r.obb.cls == SHIP
            xywhr = r.obb.xywhr[keep].cpu().clone()
            xywhr[:, 0] += col
            xywhr[:, 1] += row
            boxes.append(xywhr)
            scores.append(r.obb.conf[keep].cpu())
    allb, alls = torch.cat(boxes), torch.cat(scores)
    keep = TorchNMS.fast_nms(allb, alls, 0.5, iou_func=batch_probiou)
    seconds = time.perf_counter() - start
    b = allb[keep].numpy()
    return {"seconds": seconds, "boxes": np.column_stack([b[:, :2], b[:, 2:4].max(1)]).tolist()}


def run_sahi(scene: Path, device: str) -> dict[str, object]:
    import rasterio
    from sahi import AutoDetectionModel
    from sahi.predict import get_sliced_prediction

    model = AutoDetectionModel.from_pretrained(
        model_type="ultralytics", model_path=str(REPO / "models" / "yolo26n-obb.pt"), confidence_threshold=CONF,
        device=device, image_size=WINDOW,
    )  # fmt: skip
    start = time.perf_counter()
    with rasterio.open(scene) as ds:
        image = ds.read().transpose(1, 2, 0)
    result = get_sliced_prediction(
        image, model, slice_height=WINDOW, slice_width=WINDOW, overlap_height_ratio=OVERLAP / WINDOW,
        overlap_width_ratio=OVERLAP / WINDOW, perform_standard_pred=False, verbose=0,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    boxes = []
    for p in result.object_prediction_list:
        if p.category.id != SHIP:
            continue
        pts = np.array(p.mask.segmentation[0] if p.mask else [], float).reshape(-1, 2) if p.mask else None
        if pts is None or not len(pts):
            x0, y0, x1, y1 = p.bbox.to_xyxy()
            boxes.append([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)])
        else:
            sides = np.hypot(*(np.roll(pts, -1, 0) - pts).T)
            boxes.append([*pts.mean(0), float(sides.max())])
    return {"seconds": seconds, "boxes": boxes}


def run_model_only(scene: Path, device: str, batch_size: int) -> dict[str, object]:
    import rasterio
    from rasterio.windows import Window

    from detector.job import DetectOptions, _yolo, auto_batch_size
    from detector.models import resolve_weights
    from detector.yolo import Device

    options = DetectOptions(conf=CONF, device=Device(device))
    spec, weights, _ = resolve_weights()
    detector = _yolo(weights, spec, options)
    batch_size = batch_size or auto_batch_size(detector)
    with rasterio.open(scene) as ds:
        tiles = [ds.read(window=Window(c, r, WINDOW, WINDOW)).transpose(1, 2, 0) for c, r in _windows(ds.width, ds.height)]
    batches = [np.ascontiguousarray(np.stack(tiles[i : i + batch_size])) for i in range(0, len(tiles), batch_size)]
    detector.forward(batches[0])
    sync = _cuda_sync(device)
    sync()
    start = time.perf_counter()
    for b in batches:
        detector.forward(b)
    sync()
    return {"seconds": time.perf_counter() - start, "boxes": []}


def run_ray_scaling(scene: Path, device: str, batch_size: int, actors: list[int]) -> dict[str, object]:
    """Engine throughput (scene to merged boxes) locally and on a local Ray cluster with 1..n actors."""
    import ray

    from detector.distributed import RayConfig, RayEngine
    from detector.engine import DetectSettings, detect_scene
    from detector.job import DetectOptions, _yolo
    from detector.models import resolve_weights
    from detector.raster import open_scene
    from detector.yolo import Device

    options = DetectOptions(device=Device(device))
    spec, weights, _ = resolve_weights()
    settings = DetectSettings(overlap=OVERLAP, batch_size=batch_size or 4, classes=spec.ship_class_ids, keep_cut=True)
    big = open_scene(scene)
    warm = open_scene(REPO / "tests" / "data" / "marina_0p3m.tif")
    rows = []
    detector = _yolo(weights, spec, options)
    detect_scene(warm, detector, settings)
    start = time.perf_counter()
    n_local = len(detect_scene(big, detector, settings).detections)
    rows.append({"engine": "local", "actors": 0, "seconds": time.perf_counter() - start, "ships": n_local})
    ray.init(include_dashboard=False, log_to_driver=False)
    for n in actors:
        with RayEngine(RayConfig(actors=n), _yolo, weights, spec, options) as engine:
            engine.detect_scene(warm, settings)  # actors load the model and warm up
            start = time.perf_counter()
            found = engine.detect_scene(big, settings).detections
            rows.append({"engine": "ray", "actors": n, "seconds": time.perf_counter() - start, "ships": len(found)})
    ray.shutdown()
    return {"seconds": rows[0]["seconds"], "boxes": [], "ray_scaling": rows}


def _cuda_sync(device: str):  # type: ignore[no-untyped-def]
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def child(args: argparse.Namespace) -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    scene = Path(args.scene)
    with tempfile.TemporaryDirectory() as tmp:
        if args.method == "shipwatch":
            result = run_shipwatch(scene, args.device, args.batch_size, args.readers, Path(tmp) / "out")
        elif args.method == "naive":
            result = run_naive(scene, args.device)
        elif args.method == "sahi":
            result = run_sahi(scene, args.device)
        elif args.method == "ray_scaling":
            result = run_ray_scaling(scene, args.device, args.batch_size, [int(n) for n in args.ray_actors.split(",")])
        else:
            result = run_model_only(scene, args.device, args.batch_size)
    result.update(peak_rss_mb=_peak_rss_mb(), gpu_max_alloc_mb=_gpu_alloc_mb(args.device))
    Path(args.result).write_text(json.dumps(result))


def measure(
    method: str, scene: Path, device: str, batch_size: int = 0, readers: int | None = None, extra: Sequence[str] = ()
) -> dict[str, object]:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [sys.executable, __file__, "--child", method, "--scene", str(scene), "--device", device, "--result", f.name]
        cmd += ["--batch-size", str(batch_size)] + (["--readers", str(readers)] if readers is not None else [])
        cmd += list(extra)
        subprocess.run(cmd, check=True)
        return json.loads(Path(f.name).read_text())


def agreement_f1(a: list[list[float]], b: list[list[float]]) -> float:
    """F1 of a one-to-one matching of ship centres, within half the smaller length."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import cKDTree

    if not a or not b:
        return float(len(a) == len(b))
    pa, pb = np.array(a), np.array(b)
    cost = np.full((len(pa), len(pb)), 1e6)
    for i, js in enumerate(cKDTree(pb[:, :2]).query_ball_point(pa[:, :2], r=50.0)):
        for j in js:
            d = float(np.hypot(*(pa[i, :2] - pb[j, :2])))
            if d <= 0.5 * min(pa[i, 2], pb[j, 2]):
                cost[i, j] = d
    r, c = linear_sum_assignment(cost)
    tp = int((cost[r, c] < 1e6).sum())
    return 2 * tp / (len(pa) + len(pb))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--scene", type=Path, help="benchmark this GeoTIFF instead of building one")
    p.add_argument("--size", type=int, default=8192, help="side of the built scene in px (>= 8192 for the headline figures)")
    p.add_argument("--batch-size", type=int, default=0, help="0: Shipwatch's automatic choice")
    p.add_argument("--readers", type=int, help="reader processes for (a); default: Shipwatch's choice")
    p.add_argument("--methods", default="shipwatch,naive,sahi,model_only")
    p.add_argument("--scaling", help="comma-separated scene sides for the scaling mode, e.g. 2048,4096,8192,16384")
    p.add_argument(
        "--engine", choices=["local", "ray"], default="local", help="ray: engine throughput with --ray-actors on a local Ray"
    )
    p.add_argument("--ray-actors", default="1,2", help="actor counts for --engine ray")
    p.add_argument("--workdir", type=Path, help="where built scenes go (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--child", dest="method", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.method:
        return child(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        if args.engine == "ray":
            report = ray_table(args, work)
        else:
            report = scaling(args, work) if args.scaling else compare(args, work)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


def compare(args: argparse.Namespace, work: Path) -> dict[str, object]:
    import rasterio

    scene = args.scene or build_scene(work / f"bench_{args.size}.tif", args.size)
    with rasterio.open(scene) as ds:
        mpx = ds.width * ds.height / 1e6
        size = f"{ds.width}x{ds.height}"
    methods = args.methods.split(",")
    results = {m: measure(m, scene, args.device, args.batch_size, args.readers if m == "shipwatch" else None) for m in methods}
    rate = {m: mpx / float(r["seconds"]) for m, r in results.items()}  # type: ignore[arg-type]

    def ratio(a: str, b: str) -> float | None:
        return rate[a] / rate[b] if a in rate and b in rate else None

    ship = results.get("shipwatch", {})
    report = {
        "device": args.device,
        "scene": size,
        "windows": len(_windows(*map(int, size.split("x")))),
        "backend": ship.get("backend"),
        "engine_mpx_s": rate.get("shipwatch"),
        "naive_mpx_s": rate.get("naive"),
        "sahi_mpx_s": rate.get("sahi"),
        "model_only_mpx_s": rate.get("model_only"),
        "ratio_vs_sahi": ratio("shipwatch", "sahi"),
        "ratio_vs_naive": ratio("shipwatch", "naive"),
        "ratio_vs_model_only": ratio("shipwatch", "model_only"),
        "agreement_f1": agreement_f1(ship.get("boxes", []), results["sahi"]["boxes"]) if "sahi" in results and ship else None,  # type: ignore[arg-type]
        "ships": {m: len(r["boxes"]) for m, r in results.items() if m != "model_only"},  # type: ignore[arg-type]
        "seconds": {m: r["seconds"] for m, r in results.items()},
        "peak_rss_mb": ship.get("peak_rss_mb"),
        "peak_rss_mb_by_method": {m: r["peak_rss_mb"] for m, r in results.items()},
        "gpu_max_alloc_mb": ship.get("gpu_max_alloc_mb"),
    }
    print(
        f"\nscene {size} ({mpx:.1f} Mpx), {report['windows']} windows of {WINDOW} px, overlap {OVERLAP} px, device {args.device}"
    )
    print(f"{'method':<12}{'seconds':>10}{'Mpx/s':>10}{'ships':>8}{'peak RSS MB':>14}")
    for m, r in results.items():
        ships = len(r["boxes"]) if m != "model_only" else ""  # type: ignore[arg-type]
        print(f"{m:<12}{float(r['seconds']):>10.2f}{rate[m]:>10.2f}{ships!s:>8}{float(r['peak_rss_mb']):>14.0f}")  # type: ignore[arg-type]
    for key in ("ratio_vs_sahi", "ratio_vs_naive", "ratio_vs_model_only", "agreement_f1"):
        if report[key] is not None:
            print(f"{key:<22}{report[key]:.3f}")
    return report


def ray_table(args: argparse.Namespace, work: Path) -> dict[str, object]:
    import rasterio

    scene = args.scene or build_scene(work / f"bench_{args.size}.tif", args.size)
    with rasterio.open(scene) as ds:
        mpx = ds.width * ds.height / 1e6
    rows = measure("ray_scaling", scene, args.device, args.batch_size, extra=["--ray-actors", args.ray_actors])["ray_scaling"]
    print(f"\nengine throughput, scene to merged boxes, {mpx:.1f} Mpx, device {args.device}")
    print(f"{'engine':<8}{'actors':>7}{'seconds':>9}{'Mpx/s':>8}{'ships':>7}")
    for r in rows:  # type: ignore[attr-defined]
        r["mpx_s"] = mpx / r["seconds"]
        print(f"{r['engine']:<8}{r['actors']:>7}{r['seconds']:>9.2f}{r['mpx_s']:>8.2f}{r['ships']:>7}")
    return {"device": args.device, "mpx": mpx, "ray_scaling": rows}


def scaling(args: argparse.Namespace, work: Path) -> dict[str, object]:
    rows = []
    print(f"{'side px':>8}{'Mpx':>8}{'seconds':>10}{'s per Mpx':>11}{'peak RSS MB':>13}")
    for side in (int(s) for s in args.scaling.split(",")):
        scene = build_scene(work / f"scale_{side}.tif", side)
        r = measure("shipwatch", scene, args.device, args.batch_size, args.readers)
        mpx = side * side / 1e6
        rows.append(
            {
                "side": side,
                "mpx": mpx,
                "seconds": r["seconds"],
                "s_per_mpx": float(r["seconds"]) / mpx,
                "peak_rss_mb": r["peak_rss_mb"],
            }
        )  # type: ignore[arg-type]
        print(
            f"{side:>8}{mpx:>8.1f}{float(r['seconds']):>10.2f}{float(r['seconds']) / mpx:>11.3f}{float(r['peak_rss_mb']):>13.0f}"
        )  # type: ignore[arg-type]
        scene.unlink()
    return {"device": args.device, "scaling": rows}


if __name__ == "__main__":
    main()
