"""Writing detections as GeoJSON (RFC 7946) and CSV, atomically.

Each file is written to a temporary file in the same folder and renamed over
the target, so a reader never sees half a file and a killed job leaves the
previous complete file in place.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import os
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector.acquisition import parse_time
from detector.errors import UsageError
from detector.records import Ship
from detector.visits import Visit, expected_vessels

__all__ = [
    "PROPERTIES",
    "VISIT_COLUMNS",
    "atomic_path",
    "atomic_write_text",
    "period_of",
    "ship_properties",
    "write_csv",
    "write_geojson",
    "write_visits",
]

#: Exported properties, in column order (DESIGN.md, ``shipwatch detect``).
PROPERTIES = (
    "scene", "acquired_at", "class", "score", "length_m", "beam_m", "heading_deg", "lon", "lat",
    "px_cx", "px_cy", "px_length", "px_width", "px_angle_deg",
)  # fmt: skip


@contextlib.contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A name beside ``path`` to write instead of it; renamed onto ``path`` when the block ends.

    No file is there: the writer (a plain ``open``, GDAL, OpenCV, matplotlib)
    creates it, so it gets the permissions the writer would give ``path``.
    ``suffix`` keeps the extension by which such writers pick their format.
    When the block ends the file is flushed to disk and renamed over
    ``path``, so a reader never sees half a file; when it raises, the file
    is removed and ``path`` keeps what it held. Temporary files that earlier
    writes of ``path`` left when killed before their rename are removed
    first, so a resumed job leaves only its outputs.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")  # the writer makes it
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


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


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


VISIT_COLUMNS = (
    "visit_id", "zone", "class", "first_seen", "last_seen", "n_obs", "lon", "lat", "length_m", "arrived_after", "departed_before",
    "beam_m", "tanker_prob", "mmsi", "dark", "candidates", "barrels_low", "barrels_high", "evidence",
    "n_looks", "extra_vessels", "expected",
)  # fmt: skip


def visit_row(v: Visit, recall: float = 1.0, precision: float = 1.0) -> dict[str, object]:
    return {
        "visit_id": v.visit_id,
        "zone": v.zone,
        "class": v.class_name,
        "first_seen": _iso(v.first_seen),
        "last_seen": _iso(v.last_seen),
        "n_obs": v.n_obs,
        "lon": round(v.lon, 7),
        "lat": round(v.lat, 7),
        "length_m": "" if v.length_m is None else round(v.length_m, 1),
        "arrived_after": _iso(v.arrived_after),
        "departed_before": _iso(v.departed_before),
        "beam_m": "" if v.beam_m is None else round(v.beam_m, 1),
        "tanker_prob": "" if v.tanker_prob is None else round(v.tanker_prob, 3),
        "mmsi": "" if v.mmsi is None else v.mmsi,
        "dark": "" if v.dark is None else str(v.dark).lower(),
        "candidates": v.candidates,
        "barrels_low": "" if v.barrels_low is None else round(v.barrels_low),
        "barrels_high": "" if v.barrels_high is None else round(v.barrels_high),
        "evidence": v.evidence,
        "n_looks": v.n_looks,
        "extra_vessels": round(v.extra_vessels, 3),
        "expected": round(expected_vessels(v, recall, precision), 3),
    }


def _csv_text(columns: Sequence[str], rows: Iterable[dict[str, object]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_visits(
    out_dir: Path, visits: Sequence[Visit], period: str = "week", recall: float = 1.0, precision: float = 1.0
) -> tuple[Path, Path, Path]:
    """Write ``visits.csv``, ``visit_counts.csv`` (by ``week`` or ``month`` of first_seen) and ``visits.geojson``.

    ``visit_counts.csv`` has the visits linked and the number estimated from
    them, given the detector's ``recall`` and ``precision``
    (:func:`detector.visits.expected_vessels`).
    """
    rows = [visit_row(v, recall, precision) for v in visits]
    atomic_write_text(out_dir / "visits.csv", _csv_text(VISIT_COLUMNS, rows))
    linked: Counter[tuple[str, str, str]] = Counter()
    estimated: dict[tuple[str, str, str], float] = defaultdict(float)
    for v in visits:
        key = (v.zone, period_of(v.first_seen, period), v.class_name)
        linked[key] += 1
        estimated[key] += expected_vessels(v, recall, precision)
    count_rows = [
        {"zone": z, "period": p, "class": c, "visits": n, "estimated": round(estimated[z, p, c], 2)}
        for (z, p, c), n in sorted(linked.items())
    ]
    atomic_write_text(out_dir / "visit_counts.csv", _csv_text(("zone", "period", "class", "visits", "estimated"), count_rows))
    features = [
        json.dumps(
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]}, "properties": r},
            separators=(",", ":"),
        )
        for r in rows
    ]
    atomic_write_text(out_dir / "visits.geojson", '{"type":"FeatureCollection","features":[\n' + ",\n".join(features) + "\n]}\n")
    return out_dir / "visits.csv", out_dir / "visit_counts.csv", out_dir / "visits.geojson"


def period_of(when: datetime, period: str) -> str:
    """``2024-W05`` (ISO week) or ``2024-05`` (month) of a UTC time."""
    when = when.astimezone(UTC)
    if period == "week":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{when.year}-{when.month:02d}"
    raise ValueError(f"period must be week or month, got {period!r}")


def read_visits(path: Path) -> list[Visit]:
    """Visits back from a ``visits.csv`` (sightings are not kept there)."""

    def when(text: str) -> datetime | None:
        return parse_time(text) if text else None

    def num(text: str) -> float | None:
        return float(text) if text else None

    with open(path, newline="", encoding="utf-8") as f:
        out = []
        for n, r in enumerate(csv.DictReader(f), 2):
            first, last = when(r["first_seen"]), when(r["last_seen"])
            if first is None or last is None:
                raise UsageError(
                    f"{path}:{n}: a visit without first_seen or last_seen; pass a visits.csv written by shipwatch visits"
                )
            out.append(
                Visit(
                    visit_id=int(r["visit_id"]),
                    zone=r["zone"],
                    class_name=r["class"],
                    first_seen=first,
                    last_seen=last,
                    n_obs=int(r["n_obs"]),
                    lon=float(r["lon"]),
                    lat=float(r["lat"]),
                    length_m=num(r.get("length_m", "")),
                    arrived_after=when(r.get("arrived_after", "")),
                    departed_before=when(r.get("departed_before", "")),
                    beam_m=num(r.get("beam_m", "")),
                    tanker_prob=num(r.get("tanker_prob", "")),
                    evidence=r.get("evidence", ""),
                    mmsi=int(r["mmsi"]) if r.get("mmsi") else None,
                    dark={"true": True, "false": False}.get(r.get("dark", "")),
                    candidates=r.get("candidates", ""),
                    barrels_low=num(r.get("barrels_low", "")),
                    barrels_high=num(r.get("barrels_high", "")),
                    n_looks=int(r.get("n_looks") or r["n_obs"]),
                    extra_vessels=num(r.get("extra_vessels", "")) or 0.0,
                )
            )
    return out
