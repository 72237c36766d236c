"""Detections as inputs to the visit linker: from the store, a CSV or a GeoJSON.

A CSV or GeoJSON needs ``acquired_at``, ``lon`` and ``lat`` (optional
``length_m``, ``heading_deg``, ``class``, ``score``, ``scene``); GeoJSON points
or polygons may give the position instead of ``lon``/``lat``. Without
footprints every distinct ``acquired_at`` is taken to have observed every zone.
From a store, each scene's footprint of valid pixels says what it observed.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import shapely

from detector.acquisition import parse_time
from detector.errors import UsageError, row_number
from detector.records import Ship
from detector.store import SceneRow
from detector.visits import Acquisition, Sightings

__all__ = ["StoreSightings", "load_sightings", "load_store"]

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def _time(text: object, where: str, formats: set[str]) -> datetime:
    value = str(text or "").strip()
    if not value:
        raise UsageError(f"{where}: no acquired_at; every detection needs its acquisition time (ISO 8601, UTC)")
    if not _ISO.match(value):
        raise UsageError(f"{where}: acquired_at {value!r} is not ISO 8601 (e.g. 2024-05-01T01:30:00Z); convert the column")
    formats.add(
        "date" if len(value) == 10 else "zoned" if value.endswith("Z") or re.search(r"[+-]\d{2}:?\d{2}$", value) else "naive"
    )
    if len(formats) > 1 and "zoned" in formats and "naive" in formats:
        raise UsageError(f"{where}: acquired_at {value!r} mixes times with and without a zone; write all in UTC with Z")
    return parse_time(value)


def _rows_from_csv(path: Path) -> list[tuple[str, dict[str, object]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"acquired_at", "lon", "lat"} - set(reader.fieldnames or [])
        if missing:
            raise UsageError(f"{path}: missing column(s) {', '.join(sorted(missing))}; the CSV needs acquired_at, lon, lat")
        return [(f"{path}:{n}", dict(row)) for n, row in enumerate(reader, start=2)]


def _rows_from_geojson(path: Path) -> list[tuple[str, dict[str, object]]]:
    data = json.loads(path.read_text())
    crs = (data.get("crs") or {}).get("properties", {}).get("name", "")
    if crs and not re.search(r"CRS84|EPSG::?4326$", crs):
        raise UsageError(f"{path}: CRS {crs!r} is not lon/lat; GeoJSON must be WGS84 lon/lat (RFC 7946): reproject it")
    rows = []
    for i, f in enumerate(data.get("features", [])):
        props = dict(f.get("properties") or {})
        if (props.get("lon") in (None, "") or props.get("lat") in (None, "")) and f.get("geometry"):
            c = shapely.geometry.shape(f["geometry"]).centroid
            props["lon"], props["lat"] = c.x, c.y
        rows.append((f"{path}: feature {i}", props))
    return rows


def _from_table(path: Path) -> tuple[list[Acquisition], Sightings]:
    try:
        rows = _rows_from_geojson(path) if path.suffix.lower() in (".geojson", ".json") else _rows_from_csv(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read detections ({exc}); pass a CSV or GeoJSON") from exc
    formats: set[str] = set()
    times, lon, lat, length, cls, beam = [], [], [], [], [], []
    for where, r in rows:
        times.append(_time(r.get("acquired_at"), where, formats))
        lon.append(row_number(r.get("lon"), where, "lon", -180, 180))
        lat.append(row_number(r.get("lat"), where, "lat", -90, 90))
        length.append(row_number(r.get("length_m"), where, "length_m", 0, 1000, False))
        beam.append(row_number(r.get("beam_m"), where, "beam_m", 0, 200, False))
        cls.append(str(r.get("class") or "ship"))
    unique = sorted(set(times))
    index = {t: i for i, t in enumerate(unique)}
    acqs = [Acquisition(t) for t in unique]
    return acqs, _sightings([index[t] for t in times], lon, lat, length, cls, beam)


def _sightings(
    acq: list[int], lon: list[float], lat: list[float], length: list[float], cls: list[str], beam: list[float]
) -> Sightings:
    return Sightings(
        np.asarray(acq, np.int64), np.asarray(lon, np.float64), np.asarray(lat, np.float64),
        np.asarray(length, np.float64), np.asarray(cls, dtype=object), np.asarray(beam, np.float64),
    )  # fmt: skip


@dataclass(frozen=True)
class StoreSightings:
    """A store's latest detect run as linker input, keeping each sighting's ship and each acquisition's scene."""

    acquisitions: list[Acquisition]
    sightings: Sightings
    ships: list[Ship]
    scenes: list[SceneRow]


def load_store(path: Path) -> StoreSightings:
    """The scenes of the store's latest detect settings, with their footprints and ships."""
    if not path.is_file():
        raise UsageError(f"{path}: no such store; run shipwatch detect first or check --db")
    from detector.store import Store

    acqs: list[Acquisition] = []
    scenes: list[SceneRow] = []
    ships: list[Ship] = []
    index: list[int] = []
    with Store(path) as store:
        settings = store.latest_settings_hash()
        if settings is None:
            raise UsageError(f"{path}: the store holds no detect run; run shipwatch detect first")
        for sid in store.scene_ids(settings):
            row = store.scene(sid)
            if row.acquired_at is None:
                raise UsageError(
                    f"{path}: scene {row.name} has no acquisition time; rerun detect with --acquired or a dated name"
                )
            footprint = shapely.make_valid(row.footprint) if row.footprint is not None else None
            acqs.append(Acquisition(row.acquired_at, footprint))
            scenes.append(row)
            for ship in store.ships(sid):
                if ship.lon is not None and ship.lat is not None:
                    index.append(len(acqs) - 1)
                    ships.append(ship)
    sightings = _sightings(
        index, [s.lon for s in ships], [s.lat for s in ships],  # type: ignore[misc]
        [math.nan if s.length_m is None else s.length_m for s in ships], [s.class_name for s in ships],
        [math.nan if s.beam_m is None else s.beam_m for s in ships],
    )  # fmt: skip
    return StoreSightings(acqs, sightings, ships, scenes)


def load_sightings(db: Path | None = None, detections: Path | None = None) -> tuple[list[Acquisition], Sightings]:
    """Acquisitions and sightings from a store (``db``) or a detections file.

    Raises:
        UsageError: a row without time or position, times in mixed formats,
            a non-lon/lat CRS, or a missing column, naming the row.
    """
    if (db is None) == (detections is None):
        raise UsageError("pass exactly one of --db and --detections")
    if db is not None:
        loaded = load_store(db)
        return loaded.acquisitions, loaded.sightings
    return _from_table(detections)  # type: ignore[arg-type]
