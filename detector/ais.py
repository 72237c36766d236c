"""AIS positions: reading the common formats and placing vessels at given times.

Formats, detected from the file:

* Global Fishing Watch NDJSON (one message per line: ``ssvid``, ``timestamp``
  in epoch seconds, ``lon``, ``lat``, ``speed``, ``shipname``, ``shiptype``);
  messages without a position (static reports) only name the vessel.
* MarineCadastre CSV (``MMSI, BaseDateTime, LAT, LON, SOG, ..., VesselType,
  Status, Length, Width``).
* A generic CSV with at least ``mmsi, timestamp, lon, lat``.

Bad rows are errors naming the file and line: a missing column, a time that
does not parse, a coordinate out of range.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from detector.acquisition import parse_time
from detector.errors import UsageError, row_number

__all__ = ["AisTracks", "read_ais"]


@dataclass(frozen=True)
class AisTracks:
    """AIS positions as parallel arrays, sorted by (mmsi, time); ``time`` in epoch seconds."""

    mmsi: NDArray[np.int64]
    time: NDArray[np.float64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    sog: NDArray[np.float64]
    names: dict[int, str]
    types: dict[int, int]
    lengths: dict[int, float]

    def __len__(self) -> int:
        return len(self.mmsi)

    def at(
        self, when: datetime, max_gap_s: float = 6 * 3600
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """Each vessel's position at ``when``, linearly interpolated between its two nearest reports.

        A vessel is placed only when reports bracket ``when`` within ``max_gap_s``,
        or one report lies within ``max_gap_s / 4`` of it.
        """
        t = when.timestamp()
        out_m, out_lon, out_lat = [], [], []
        starts = np.flatnonzero(np.r_[True, self.mmsi[1:] != self.mmsi[:-1]])
        ends = np.r_[starts[1:], len(self.mmsi)]
        for a, b in zip(starts, ends, strict=True):
            times = self.time[a:b]
            k = int(np.searchsorted(times, t))
            if 0 < k < len(times) and times[k] - times[k - 1] <= max_gap_s:
                f = (t - times[k - 1]) / max(times[k] - times[k - 1], 1e-9)
                lon = self.lon[a + k - 1] + f * (self.lon[a + k] - self.lon[a + k - 1])
                lat = self.lat[a + k - 1] + f * (self.lat[a + k] - self.lat[a + k - 1])
            else:
                near = [i for i in (k - 1, k) if 0 <= i < len(times) and abs(times[i] - t) <= max_gap_s / 4]
                if not near:
                    continue
                i = min(near, key=lambda i: abs(times[i] - t))
                lon, lat = self.lon[a + i], self.lat[a + i]
            out_m.append(int(self.mmsi[a]))
            out_lon.append(float(lon))
            out_lat.append(float(lat))
        return np.array(out_m, np.int64), np.array(out_lon), np.array(out_lat)


def _when(value: object, where: str) -> float:
    text = str(value or "").strip()
    try:
        if text.replace(".", "", 1).isdigit():
            return float(text)
        return parse_time(text).timestamp()
    except ValueError:
        raise UsageError(f"{where}: time {text!r} does not parse; use ISO 8601 (2024-05-01T01:30:00Z) or epoch seconds") from None


def read_ais(paths: Path | list[Path]) -> AisTracks:
    """AIS positions from one or more files (or a folder of them).

    Raises:
        UsageError: unreadable or malformed input, naming file and line.
    """
    files: list[Path] = []
    for p in [paths] if isinstance(paths, Path) else paths:
        files += (
            sorted(q for q in p.iterdir() if q.suffix in (".json", ".ndjson", ".csv") and "schema" not in q.name)
            if p.is_dir()
            else [p]
        )
    rows: list[tuple[int, float, float, float, float]] = []
    names: dict[int, str] = {}
    types: dict[int, int] = {}
    lengths: dict[int, float] = {}
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                first = f.readline()
                f.seek(0)
                if first.lstrip().startswith("{"):
                    _read_gfw(path, f, rows, names, types)
                else:
                    _read_csv(path, f, rows, names, types, lengths)
        except OSError as exc:
            raise UsageError(f"{path}: cannot read AIS ({exc.strerror}); check the path") from exc
    if not rows:
        raise UsageError(f"{', '.join(map(str, files)) or paths}: no AIS positions found; check the files")
    arr = np.array(rows, dtype=np.float64)
    order = np.lexsort((arr[:, 1], arr[:, 0]))
    arr = arr[order]
    keep = np.r_[True, (np.diff(arr[:, 0]) != 0) | (np.diff(arr[:, 1]) != 0)]  # drop repeated messages
    arr = arr[keep]
    return AisTracks(arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], names, types, lengths)


def _read_gfw(path: Path, f, rows, names, types) -> None:  # type: ignore[no-untyped-def]
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            m = json.loads(line)
        except ValueError:
            raise UsageError(f"{where}: not a JSON object; GFW AIS is one message per line") from None
        if "ssvid" not in m or "timestamp" not in m:
            raise UsageError(f"{where}: missing ssvid or timestamp; is this Global Fishing Watch NDJSON?")
        mmsi = int(m["ssvid"])
        if m.get("shipname"):
            names[mmsi] = str(m["shipname"])
        if m.get("shiptype"):
            types[mmsi] = int(float(m["shiptype"]))
        if m.get("lon") is None or m.get("lat") is None:
            continue
        sog = m.get("speed")
        rows.append((
            mmsi, _when(m["timestamp"], where), row_number(m["lon"], where, "lon", -180, 180), row_number(m["lat"], where, "lat", -90, 90),
            math.nan if sog is None else float(sog),
        ))  # fmt: skip


def _read_csv(path: Path, f, rows, names, types, lengths) -> None:  # type: ignore[no-untyped-def]
    reader = csv.DictReader(f)
    fields = {k.lower(): k for k in reader.fieldnames or []}
    col = {
        "mmsi": fields.get("mmsi"),
        "time": fields.get("basedatetime") or fields.get("timestamp") or fields.get("time"),
        "lon": fields.get("lon") or fields.get("longitude"),
        "lat": fields.get("lat") or fields.get("latitude"),
    }
    missing = [k for k, v in col.items() if v is None]
    if missing:
        raise UsageError(
            f"{path}:1: missing column(s) {', '.join(missing)}; AIS CSV needs mmsi, timestamp (or BaseDateTime), lon, lat"
        )
    for n, r in enumerate(reader, 2):
        where = f"{path}:{n}"
        try:
            mmsi = int(str(r[col["mmsi"]]).strip())  # type: ignore[index]
        except ValueError:
            raise UsageError(f"{where}: mmsi {r[col['mmsi']]!r} is not a number; fix the row") from None  # type: ignore[index]
        if fields.get("vesselname") and r[fields["vesselname"]]:
            names[mmsi] = r[fields["vesselname"]]
        if fields.get("vesseltype") and r[fields["vesseltype"]]:
            types[mmsi] = int(float(r[fields["vesseltype"]]))
        if fields.get("length") and r[fields["length"]]:
            lengths[mmsi] = float(r[fields["length"]])
        sog = r.get(fields.get("sog", ""), "") if fields.get("sog") else ""
        rows.append((
            mmsi, _when(r[col["time"]], where), row_number(r[col["lon"]], where, "lon", -180, 180),  # type: ignore[index]
            row_number(r[col["lat"]], where, "lat", -90, 90), float(sog) if sog not in ("", None) else math.nan,  # type: ignore[index]
        ))  # fmt: skip
