"""Zones: berths, terminals, anchorages and ports, as GeoJSON polygons.

A zone file is a FeatureCollection of Polygon / MultiPolygon features in
WGS84 lon/lat with properties ``name`` (unique), ``kind`` (``berth``,
``terminal``, ``anchorage``, ``port``) and optional ``cargo`` (``oil``,
``coal``, ``container``...). The default for Vostochny ships with the package
(``detector/data/vostochny_zones.geojson``); its coordinates are approximate.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import shapely
from shapely.geometry.base import BaseGeometry

from detector.errors import UsageError

__all__ = ["DEFAULT_ZONES", "Zone", "ZoneKind", "load_zones", "zone_at"]


class ZoneKind(enum.StrEnum):
    BERTH = "berth"
    TERMINAL = "terminal"
    ANCHORAGE = "anchorage"
    PORT = "port"


@dataclass(frozen=True)
class Zone:
    name: str
    kind: ZoneKind
    polygon: BaseGeometry  # lon/lat
    cargo: str | None = None


def zone_at(zones: Sequence[Zone], lon: float, lat: float) -> Zone | None:
    """The most specific zone holding a point (the smallest: a berth before its port)."""
    point = shapely.Point(lon, lat)
    inside = [z for z in zones if z.polygon.contains(point)]
    return min(inside, key=lambda z: z.polygon.area) if inside else None


def _default_path() -> Path:
    return Path(str(resources.files("detector") / "data" / "vostochny_zones.geojson"))


DEFAULT_ZONES = _default_path()


def load_zones(path: Path | None = None) -> list[Zone]:
    """Zones from a GeoJSON file (default: Vostochny).

    Raises:
        UsageError: unreadable file, a missing or duplicate name, an unknown
            kind, or an invalid (e.g. self-intersecting) polygon, naming the zone.
    """
    path = path or DEFAULT_ZONES
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read zones as GeoJSON ({exc}); pass a GeoJSON FeatureCollection") from exc
    features = data.get("features") if isinstance(data, dict) else None
    if not features:
        raise UsageError(f"{path}: no features; a zone file is a FeatureCollection of polygons")
    zones: list[Zone] = []
    seen: set[str] = set()
    for i, f in enumerate(features):
        props = f.get("properties") or {}
        name = str(props.get("name") or "").strip()
        where = f"{path}: zone {name!r}" if name else f"{path}: feature {i}"
        if not name:
            raise UsageError(f"{where} has no name; give every zone a unique 'name' property")
        if name in seen:
            raise UsageError(f"{where} is named twice; zone names must be unique")
        seen.add(name)
        try:
            kind = ZoneKind(str(props.get("kind", "")).lower())
        except ValueError:
            raise UsageError(
                f"{where} has kind {props.get('kind')!r}; use one of {', '.join(k.value for k in ZoneKind)}"
            ) from None
        geometry = f.get("geometry") or {}
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise UsageError(f"{where} is a {geometry.get('type')}, not a Polygon; draw zones as polygons")
        try:
            polygon = shapely.geometry.shape(geometry)
        except (ValueError, TypeError, IndexError) as exc:
            raise UsageError(f"{where} has malformed coordinates ({exc}); fix the polygon") from exc
        if not polygon.is_valid or polygon.is_empty:
            reason = shapely.is_valid_reason(polygon)
            raise UsageError(f"{where} is an invalid polygon ({reason}); fix it, e.g. remove the self-intersection")
        minx, miny, maxx, maxy = polygon.bounds
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise UsageError(f"{where} is not in lon/lat degrees; zone files are WGS84 lon/lat (RFC 7946)")
        zones.append(Zone(name, kind, polygon, props.get("cargo")))
    return zones
