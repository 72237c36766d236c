"""The GeoPackage export: layers, field kinds, UTC times, null geometry, same bytes for the same data, atomic."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from pyogrio.raw import read

from detector.gpkg import INTEGER, REAL, TEXT, TIME, Layer, write_gpkg


def layers(n: int = 3) -> list[Layer]:
    boxes = [shapely.box(135 + i / 100, 42.9, 135.005 + i / 100, 42.901) for i in range(n)]
    seen = datetime(2024, 5, 1, 10, 30, tzinfo=timezone(timedelta(hours=10)))  # 00:30 UTC
    ships = Layer(
        "detections",
        "Polygon",
        [*boxes[:-1], None],  # the last ship has no georeferencing
        {
            "scene": (TEXT, [f"s{i}" for i in range(n)]),
            "acquired_at": (TIME, [seen] * (n - 1) + [None]),
            "score": (REAL, [0.5 + i / 10 for i in range(n - 1)] + [None]),
        },
    )
    points = Layer("visits", "Point", [shapely.Point(135, 42.9)], {"n_obs": (INTEGER, [4])})
    return [ships, points]


def test_layers_fields_and_times_read_back(tmp_path: Path) -> None:
    path = write_gpkg(tmp_path / "out.gpkg", layers())
    assert [tuple(row) for row in pyogrio.list_layers(path)] == [("detections", "Polygon"), ("visits", "Point")]
    meta, _, geometry, (scene, when, score) = read(path, layer="detections")
    assert meta["crs"] == "EPSG:4326" and meta["ogr_types"] == ["OFTString", "OFTDateTime", "OFTReal"]
    assert list(scene) == ["s0", "s1", "s2"]
    assert when[0] == np.datetime64("2024-05-01T00:30") and np.isnat(when[2])
    assert score[:2].tolist() == pytest.approx([0.5, 0.6]) and np.isnan(score[2])
    assert shapely.from_wkb(geometry[0]).equals(shapely.box(135, 42.9, 135.005, 42.901)) and geometry[2] is None
    assert read(path, layer="visits", read_geometry=False)[3][0].tolist() == [4]
    import sqlite3

    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT acquired_at FROM detections WHERE fid = 1").fetchone()[0]
        stamps = {r[0] for r in conn.execute("SELECT last_change FROM gpkg_contents")}
    assert stored.endswith("Z")  # UTC, as the GeoPackage standard writes it
    assert stamps == {"2024-05-01T00:30:00.000Z"}  # the newest time in the data, not the clock


def test_the_same_data_gives_the_same_bytes_and_an_empty_layer_keeps_its_fields(tmp_path: Path) -> None:
    a, b = write_gpkg(tmp_path / "a.gpkg", layers()), write_gpkg(tmp_path / "b.gpkg", layers())
    assert a.read_bytes() == b.read_bytes()
    empty = Layer("detections", "Polygon", [], {"scene": (TEXT, []), "acquired_at": (TIME, []), "score": (REAL, [])})
    path = write_gpkg(tmp_path / "empty.gpkg", [empty])
    info = pyogrio.read_info(path, layer="detections")
    assert info["features"] == 0 and list(info["fields"]) == ["scene", "acquired_at", "score"]


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_gpkg(tmp_path / "out.gpkg", layers())
    before = path.read_bytes()
    calls = []

    def second_layer_fails(*args: object, **kwargs: object) -> None:
        calls.append(kwargs["layer"])
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real(*args, **kwargs)

    real = pyogrio.raw.write
    monkeypatch.setattr(pyogrio.raw, "write", second_layer_fails)
    with pytest.raises(RuntimeError, match="disk full"):
        write_gpkg(path, layers(5))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["out.gpkg"]
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None  # the stamp does not leak to other writes
