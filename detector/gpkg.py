"""GeoPackage export (OGC GeoPackage, written by GDAL through pyogrio), atomically and byte for byte reproducibly.

A GeoPackage is one file a GIS opens whole: ``detections.gpkg`` holds the
ships (lon/lat polygons) and the scenes' footprints, ``visits.gpkg`` the
visits (points) and the zones with their counts. Times are UTC ``DATETIME``
fields, so a GIS can filter and animate by them. The file is written beside
the target and renamed over it; GDAL's "last change" stamp is set to the
newest time in the data, so the same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from detector.export import PROPERTIES, VISIT_COLUMNS, atomic_path, ship_properties, visit_row
from detector.records import Ship
from detector.store import SceneRow
from detector.visits import Visit, zone_totals
from detector.zones import Zone

__all__ = ["INTEGER", "REAL", "TEXT", "TIME", "Layer", "detection_layers", "visit_layers", "write_gpkg"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


#: Field kinds: 64-bit float (None is null), integer (no nulls), text, and UTC date-time.
REAL, INTEGER, TEXT, TIME = "real", "integer", "text", "time"


@dataclass
class Layer:
    """One layer: a name, a geometry type, each feature's geometry (None: none) and typed fields.

    ``fields`` maps a field name to its kind (:data:`REAL`, :data:`INTEGER`,
    :data:`TEXT` or :data:`TIME`) and one value per feature.
    """

    name: str
    geometry_type: str
    geometry: list[shapely.Geometry | None]
    fields: dict[str, tuple[str, list[object]]] = field(default_factory=dict)


def _column(kind: str, values: list[object]) -> NDArray[np.generic]:
    if kind == TIME:
        return np.array([_utc(v) if isinstance(v, datetime) else np.datetime64("NaT", "ms") for v in values], "datetime64[ms]")
    if kind == REAL:
        return np.array([np.nan if v is None else float(v) for v in values], np.float64)  # type: ignore[arg-type]
    if kind == INTEGER:
        return np.array(values, np.int64)
    return np.array([None if v is None else str(v) for v in values], dtype=object)


def _utc(value: datetime) -> np.datetime64:
    return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "ms")


def _newest(layers: Sequence[Layer]) -> datetime:
    times = [v for layer in layers for kind, col in layer.fields.values() if kind == TIME for v in col if isinstance(v, datetime)]
    return max((t.astimezone(UTC) for t in times), default=_EPOCH)


def write_gpkg(path: Path, layers: Sequence[Layer]) -> Path:
    """Write ``layers`` (lon/lat, EPSG:4326) to the GeoPackage ``path``, replacing it whole."""
    import pyogrio
    from pyogrio.raw import write

    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": _newest(layers).strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    try:
        with atomic_path(path, ".gpkg") as tmp:
            for i, layer in enumerate(layers):
                n = len(layer.geometry)
                geometry = np.empty(n, dtype=object)
                geometry[:] = [None if g is None else shapely.to_wkb(g) for g in layer.geometry]
                times = [name for name, (kind, _) in layer.fields.items() if kind == TIME]
                write(
                    tmp,
                    geometry,
                    [_column(kind, values) for kind, values in layer.fields.values()],
                    list(layer.fields),
                    layer=layer.name,
                    driver="GPKG",
                    geometry_type=layer.geometry_type,
                    crs="EPSG:4326",
                    append=i > 0,
                    gdal_tz_offsets={name: np.full(n, 100, np.int32) for name in times},  # 100: GDAL's flag for UTC
                )
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})
    return path


#: Kinds of the detection properties (``export.PROPERTIES``).
_SHIP_KINDS = {"scene": TEXT, "acquired_at": TIME, "class": TEXT}


def _multi(geometry: BaseGeometry | None) -> BaseGeometry | None:
    """A footprint as one MultiPolygon, so that the layer has a single geometry type."""
    if geometry is None or isinstance(geometry, shapely.MultiPolygon):
        return geometry
    return shapely.MultiPolygon([geometry]) if isinstance(geometry, shapely.Polygon) else None


def detection_layers(ships: Sequence[Ship], scenes: Sequence[tuple[SceneRow, int]]) -> list[Layer]:
    """``detections`` (each ship's outline with the properties of DESIGN.md) and ``scenes`` (footprints, ship counts)."""
    props = [ship_properties(s) for s in ships]
    fields: dict[str, tuple[str, list[object]]] = {
        key: (_SHIP_KINDS.get(key, REAL), [s.acquired_at for s in ships] if key == "acquired_at" else [p[key] for p in props])
        for key in PROPERTIES
    }
    detections = Layer(
        "detections", "Polygon", [shapely.Polygon(s.polygon_lonlat) if s.polygon_lonlat else None for s in ships], fields
    )
    rows = [r for r, _ in scenes]
    footprints = Layer(
        "scenes",
        "MultiPolygon",
        [_multi(r.footprint) for r in rows],
        {
            "scene": (TEXT, [r.name for r in rows]),
            "acquired_at": (TIME, [r.acquired_at for r in rows]),
            "ships": (INTEGER, [n for _, n in scenes]),
            "model": (TEXT, [r.model for r in rows]),
            "gsd_m": (REAL, [None if r.gsd_m is None else round(r.gsd_m, 3) for r in rows]),
            "status": (TEXT, [r.status for r in rows]),
            "path": (TEXT, [r.path for r in rows]),
        },
    )
    return [detections, footprints]


#: Kinds of the visit columns (``export.VISIT_COLUMNS``); MMSI is an identifier, kept as text.
_VISIT_KINDS = {
    "visit_id": INTEGER, "zone": TEXT, "class": TEXT, "first_seen": TIME, "last_seen": TIME, "n_obs": INTEGER,
    "arrived_after": TIME, "departed_before": TIME, "mmsi": TEXT, "dark": TEXT, "candidates": TEXT, "evidence": TEXT,
    "n_looks": INTEGER,
}  # fmt: skip


def visit_layers(visits: Sequence[Visit], zones: Sequence[Zone], recall: float = 1.0, precision: float = 1.0) -> list[Layer]:
    """``visits`` (a point each, the columns of ``visits.csv``) and ``zones`` (their outlines with visits linked and estimated)."""
    rows = [visit_row(v, recall, precision) for v in visits]
    fields: dict[str, tuple[str, list[object]]] = {}
    for key in VISIT_COLUMNS:
        if _VISIT_KINDS.get(key) == TIME:  # the datetimes themselves, not the CSV's text
            values: list[object] = [getattr(v, key) for v in visits]
        else:
            values = [None if r[key] == "" else r[key] for r in rows]
        fields[key] = (_VISIT_KINDS.get(key, REAL), values)
    points = Layer("visits", "Point", [shapely.Point(v.lon, v.lat) for v in visits], fields)
    totals = zone_totals(visits, recall, precision)
    counts = [totals.get(z.name, (0, 0.0)) for z in zones]
    outlines = Layer(
        "zones",
        "MultiPolygon",
        [shapely.MultiPolygon([z.polygon]) if z.polygon.geom_type == "Polygon" else z.polygon for z in zones],
        {
            "name": (TEXT, [z.name for z in zones]),
            "kind": (TEXT, [z.kind.value for z in zones]),
            "cargo": (TEXT, [z.cargo for z in zones]),
            "visits": (INTEGER, [linked for linked, _ in counts]),
            "estimated": (REAL, [round(estimated, 2) for _, estimated in counts]),
        },
    )
    return [points, outlines]
