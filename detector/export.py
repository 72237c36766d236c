"""Writing detections as GeoJSON (RFC 7946) and CSV, atomically.

Each file is written to a temporary file in the same folder and renamed over
the target, so a reader never sees half a file and a killed job leaves the
previous complete file in place.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from detector.records import Ship

__all__ = ["PROPERTIES", "atomic_write_text", "ship_properties", "write_csv", "write_geojson"]

#: Exported properties, in column order (DESIGN.md, ``shipwatch detect``).
PROPERTIES = (
    "scene", "acquired_at", "class", "score", "length_m", "beam_m", "heading_deg", "lon", "lat",
    "px_cx", "px_cy", "px_length", "px_width", "px_angle_deg",
)  # fmt: skip


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def ship_properties(ship: Ship) -> dict[str, Any]:
    """The exported properties of one ship, rounded for output."""
    return {
        "scene": ship.scene,
        "acquired_at": ship.acquired_at.astimezone(UTC).isoformat().replace("+00:00", "Z") if ship.acquired_at else None,
        "class": ship.class_name,
        "score": _r(ship.score, 4),
        "length_m": _r(ship.length_m, 2),
        "beam_m": _r(ship.beam_m, 2),
        "heading_deg": _r(ship.heading_deg, 1),
        "lon": _r(ship.lon, 7),
        "lat": _r(ship.lat, 7),
        "px_cx": _r(ship.px_cx, 2),
        "px_cy": _r(ship.px_cy, 2),
        "px_length": _r(ship.px_length, 2),
        "px_width": _r(ship.px_width, 2),
        "px_angle_deg": _r(ship.px_angle_deg, 2),
    }


def _ring(polygon: Sequence[tuple[float, float]]) -> list[list[float]]:
    """A closed, counter-clockwise ring (RFC 7946 right-hand rule)."""
    pts = [[round(x, 7), round(y, 7)] for x, y in polygon]
    area2 = sum(pts[i][0] * pts[(i + 1) % len(pts)][1] - pts[(i + 1) % len(pts)][0] * pts[i][1] for i in range(len(pts)))
    if area2 < 0:
        pts.reverse()
    return [*pts, pts[0]]


def write_geojson(path: Path, ships: Iterable[Ship]) -> int:
    """Write a FeatureCollection, one Feature per ship; return the count."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [_ring(s.polygon_lonlat)]} if s.polygon_lonlat else None,
            "properties": ship_properties(s),
        }
        for s in ships
    ]
    # One feature per line: readable, diffable, and fast to write.
    body = ",\n".join(json.dumps(f, separators=(",", ":")) for f in features)
    atomic_write_text(path, '{"type":"FeatureCollection","features":[\n' + body + "\n]}\n")
    return len(features)


def write_csv(path: Path, ships: Iterable[Ship]) -> int:
    """Write one CSV row per ship with :data:`PROPERTIES`; return the count."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=PROPERTIES, lineterminator="\n")
    writer.writeheader()
    n = 0
    for s in ships:
        writer.writerow({k: "" if v is None else v for k, v in ship_properties(s).items()})
        n += 1
    atomic_write_text(path, buf.getvalue())
    return n
