#!/usr/bin/env python3
"""Fine-tune an Ultralytics OBB model on a YOLO-OBB dataset (from datasets/build.py).

  python scripts/train.py --data data/s2/data.yaml --preset cpu --name s2-tc3
  python scripts/train.py --data data/s2/data.yaml --preset gpu --name s2-tc3 --device 0

Every knob is a flag; a preset only sets defaults:

  cpu   imgsz 640, batch 8, 30 epochs, 2 workers: about 1 hour on a 2-core CPU for sen2ships
  gpu   imgsz 640, batch 64, 150 epochs, 8 workers, AMP
  smoke imgsz 320, batch 2, 1 epoch: checks the chain (used by the tests)

Runs go to RUNS/NAME (weights/best.pt, weights/last.pt, results.csv, args.yaml).
A run killed partway resumes from weights/last.pt when started again with the
same --name (pass --fresh to start over). Ultralytics stays offline and plots
nothing, so nothing is downloaded (fonts included). Training is repeatable: the
same command on the CPU gives the same weights, bit for bit (checked on the
shipped yolo26n-obb-s2-nir-sgd, 30 epochs, trained again from its card).

--no-val validates only after the last epoch, which saves about a minute an
epoch on the CPU preset. It changes the weights: a validation pass draws from
Python's random generator, which the augmentation also draws from, so from the
second epoch on a run without it augments differently, as another seed would.
The shipped models validated every epoch; the fold models of their cards say
which they did.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.export import atomic_write_text  # noqa: E402

PRESETS: dict[str, dict[str, object]] = {
    "cpu": {"imgsz": 640, "batch": 8, "epochs": 30, "workers": 2, "device": "cpu", "amp": False},
    "gpu": {"imgsz": 640, "batch": 64, "epochs": 150, "workers": 8, "device": "0", "amp": True},
    "smoke": {"imgsz": 320, "batch": 2, "epochs": 1, "workers": 0, "device": "cpu", "amp": False},
}
# Overhead imagery has no up or down: flip both ways, rotate freely.
AUGMENT: dict[str, object] = {"fliplr": 0.5, "flipud": 0.5, "degrees": 180.0, "mosaic": 1.0, "scale": 0.5, "translate": 0.1}
# Knobs passed through to Ultralytics as flags (freeze: how many leading layers keep the start's weights;
# nbs: the nominal batch, Ultralytics' 64 unless given, so batch 8 steps the optimiser every 8 batches).
INT_KNOBS = ("imgsz", "batch", "epochs", "workers", "patience", "seed", "freeze", "nbs")
FLOAT_KNOBS = ("lr0", "lrf", "weight_decay", "fliplr", "flipud", "degrees", "mosaic", "scale", "translate", "fraction",
               "hsv_h", "hsv_s", "hsv_v")  # fmt: skip


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def merge_datasets(yamls: list[Path], out: Path) -> Path:
    """One data.yaml training on several datasets (e.g. a review export and sen2ships) at once."""
    import yaml

    cfgs = [yaml.safe_load(y.read_text()) for y in yamls]
    names = [c["names"] for c in cfgs]
    if any(n != names[0] for n in names):
        fail(f"the datasets name their classes differently ({names}); merge datasets with the same classes")
    # Datasets built by datasets/build.py or the review export record the bands their chips hold.
    bands = {y: list(c["bands"]) for c, y in zip(cfgs, yamls, strict=True) if c.get("bands")}
    if len({tuple(b) for b in bands.values()}) > 1:
        listed = "; ".join(f"{y}: {', '.join(b)}" for y, b in bands.items())
        fail(f"the datasets' chips hold different bands ({listed}); build them with the same --bands")

    def split(cfg: dict, key: str, base: Path) -> list[str]:  # type: ignore[type-arg]
        root = Path(cfg.get("path") or base)
        value = cfg.get(key)
        return [str((root / v).resolve()) for v in (value if isinstance(value, list) else [value] if value else [])]

    merged = {
        "train": [p for c, y in zip(cfgs, yamls, strict=True) for p in split(c, "train", y.parent)],
        "val": [p for c, y in zip(cfgs, yamls, strict=True) for p in split(c, "val", y.parent)],
        "names": names[0],
        **({"bands": next(iter(bands.values()))} if bands else {}),
    }
    atomic_write_text(out, yaml.safe_dump(merged))  # a killed run never leaves half a data.yaml to resume from
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a YOLO-OBB data.yaml")
    p.add_argument(
        "--merge", type=Path, action="append", default=[], help="more data.yaml to train on together (same class names)"
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--weights", type=Path, default=REPO / "models" / "yolo26n-obb.pt", help="starting weights")
    p.add_argument("--name", default="shipwatch")
    p.add_argument("--runs", type=Path, default=REPO / "runs")
    p.add_argument("--fresh", action="store_true", help="start over even if a run of this name can resume")
    for key in INT_KNOBS:
        p.add_argument(f"--{key}", type=int)
    for key in FLOAT_KNOBS:
        p.add_argument(f"--{key.replace('_', '-')}", dest=key, type=float)
    p.add_argument("--device")
    p.add_argument("--optimizer", default=None)
    p.add_argument("--amp", type=lambda s: s.lower() in ("1", "true", "yes"), default=None)
    p.add_argument(
        "--no-val", dest="val", action="store_false", default=None,
        help="validate only after the last epoch: faster, and other weights (validation draws from the augmentation's generator)",
    )  # fmt: skip
    a = p.parse_args()

    os.environ.setdefault("YOLO_OFFLINE", "1")
    run = a.runs / a.name
    last = run / "weights" / "last.pt"
    resume = last.exists() and not a.fresh and not (run / "weights" / "done").exists()
    if not resume and not a.weights.is_file():  # Ultralytics would try to download a missing file by its name
        fail(f"{a.weights}: no such weights file; check --weights (the default start is models/yolo26n-obb.pt)")
    for data_yaml in (a.data, *a.merge):
        if not data_yaml.is_file():
            fail(f"{data_yaml}: no such data.yaml; build one with datasets/build.py")
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{exc.filename}: {exc.strerror}; pass --runs and --name for a folder that can be made")
    from ultralytics import YOLO

    data = merge_datasets([a.data, *a.merge], run / "data.yaml") if a.merge else a.data

    if resume:
        print(f"resuming {last}")
        YOLO(str(last)).train(resume=True)
    else:
        args: dict[str, object] = {**PRESETS[a.preset], **AUGMENT, "patience": 50, "seed": 0}
        for key in (*INT_KNOBS, *FLOAT_KNOBS, "device", "optimizer", "amp", "val"):
            if getattr(a, key) is not None:
                args[key] = getattr(a, key)
        YOLO(str(a.weights)).train(
            data=str(data.resolve()), project=str(a.runs.resolve()), name=a.name, exist_ok=True, plots=False,
            deterministic=True, verbose=False, **args,
        )  # fmt: skip
    atomic_write_text(run / "weights" / "done", json.dumps({"best": str(run / "weights" / "best.pt")}) + "\n")
    print(f"weights: {run / 'weights' / 'best.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
