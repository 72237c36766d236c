#!/usr/bin/env python3
"""Benchmark the visit linker: 1,000,000 detections over 2,000 acquisitions, on one core.

    python scripts/benchmark_visits.py [--detections 1000000] [--acquisitions 2000] [--json OUT]

Synthetic sightings over one anchorage-sized zone: ``detections / acquisitions``
ships per image, each a vessel that stays for a geometric number of images and
swings round its spot. It times :func:`detector.visits.link_visits`, then
compares it on 20,000 detections with a naive linker that compares every
detection with every earlier one (all pairs, O(n²)) and links greedily to the
nearest in the previous image, and prints both counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from detector.visits import Acquisition, Sightings, link_visits
from detector.zones import Zone, ZoneKind

ZONE = Zone("anchorage", ZoneKind.ANCHORAGE, shapely.box(133.0, 42.6, 133.6, 43.0))


def synthetic(n_det: int, n_acq: int, seed: int = 0) -> tuple[list[Acquisition], Sightings]:
    rng = np.random.default_rng(seed)
    per = max(1, n_det // n_acq)
    minx, miny, maxx, maxy = ZONE.polygon.bounds
    spots = np.column_stack([rng.uniform(minx, maxx, per), rng.uniform(miny, maxy, per)])
    lengths = rng.uniform(60, 300, per)
    acq, lon, lat, length = [], [], [], []
    for i in range(n_acq):
        leave = rng.random(per) < 0.2  # a new vessel takes a freed spot
        spots[leave] = np.column_stack([rng.uniform(minx, maxx, leave.sum()), rng.uniform(miny, maxy, leave.sum())])
        lengths[leave] = rng.uniform(60, 300, leave.sum())
        swing = rng.normal(0, 100 / 111_320, (per, 2))
        acq.append(np.full(per, i))
        lon.append(spots[:, 0] + swing[:, 0] / 0.73)
        lat.append(spots[:, 1] + swing[:, 1])
        length.append(lengths * rng.normal(1, 0.03, per))
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    acqs = [Acquisition(t0 + timedelta(hours=12 * i)) for i in range(n_acq)]
    n = per * n_acq
    return acqs, Sightings(
        np.concatenate(acq), np.concatenate(lon), np.concatenate(lat), np.concatenate(length), np.full(n, "ship", dtype=object)
    )


def naive(acqs: list[Acquisition], s: Sightings, gate_m: float = 1000.0) -> int:
    """The obvious linker: every detection against every earlier detection (all pairs, O(n²)),
    kept when the earlier one is from the previous image, nearest first."""
    xy = np.column_stack([s.lon * 111_320 * 0.73, s.lat * 111_320])
    visits = 0
    taken: set[int] = set()
    for j in range(len(xy)):
        earlier = np.flatnonzero(s.acq < s.acq[j])  # all pairs with earlier detections
        d = np.hypot(*(xy[earlier] - xy[j]).T)
        prev = (s.acq[earlier] == s.acq[j] - 1) & (d <= gate_m)
        best = None
        for k in earlier[prev][np.argsort(d[prev])]:
            if int(k) not in taken:
                best = int(k)
                break
        if best is None:
            visits += 1
        else:
            taken.add(best)
    return visits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detections", type=int, default=1_000_000)
    p.add_argument("--acquisitions", type=int, default=2000)
    p.add_argument("--small", type=int, default=20_000, help="detections for the comparison with the naive linker")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    acqs, s = synthetic(a.detections, a.acquisitions)
    start = time.perf_counter()
    visits = link_visits(acqs, s, [ZONE])
    big_s = time.perf_counter() - start
    small_acqs, small = synthetic(a.small, a.acquisitions, seed=1)
    start = time.perf_counter()
    ours_small = link_visits(small_acqs, small, [ZONE])
    ours_small_s = time.perf_counter() - start
    start = time.perf_counter()
    naive_count = naive(small_acqs, small)
    naive_s = time.perf_counter() - start
    report = {
        "detections": len(s.acq), "acquisitions": len(acqs), "visits": len(visits), "seconds": big_s,
        "small_detections": len(small.acq), "small_seconds": ours_small_s, "naive_seconds": naive_s,
        "ratio_vs_naive": naive_s / ours_small_s, "small_visits": len(ours_small), "naive_visits": naive_count,
    }  # fmt: skip
    print(f"{len(s.acq):,} detections, {len(acqs):,} acquisitions -> {len(visits):,} visits in {big_s:.1f} s (one core)")
    print(
        f"{len(small.acq):,} detections: linker {ours_small_s:.2f} s, naive all-pairs {naive_s:.2f} s, ratio {naive_s / ours_small_s:.1f}x"
    )
    print(f"visits counted: linker {len(ours_small):,}, naive {naive_count:,}")
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
