import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import shapely

from detector.errors import StoreError
from detector.records import Ship
from detector.store import SCHEMA_VERSION, SceneKey, SceneRow, Store


def row(key: SceneKey) -> SceneRow:
    return SceneRow(
        key=key, path="/x/a.tif", name="a.tif", acquired_at=datetime(2024, 5, 1, 1, 30, tzinfo=UTC), crs="EPSG:32653",
        transform=(0.5, 0.0, 500000.0, 0.0, -0.5, 4750000.0), width=100, height=80, gsd_m=0.5,
        footprint=shapely.Polygon([(135.0, 42.9), (135.1, 42.9), (135.1, 42.8)]), status="done", windows_total=4, windows_inferred=3,
        bands=("B08", "B04", "B03"), scale=3.0, stretch_window=(10, 20, 50, 40),
    )  # fmt: skip


def ship(i: int) -> Ship:
    return Ship(
        scene="a.tif", acquired_at=datetime(2024, 5, 1, 1, 30, tzinfo=UTC), class_name="ship", score=0.5 + i / 100,
        px_cx=10.0 + i, px_cy=20.0, px_length=30.0, px_width=8.0, px_angle_deg=12.5, window_col=0, window_row=0,
        lon=135.0, lat=42.9, length_m=15.0, beam_m=4.0, heading_deg=102.5, polygon_lonlat=((135.0, 42.9), (135.1, 42.9)),
    )  # fmt: skip


def test_scene_round_trip_and_key(tmp_path: Path) -> None:
    key = SceneKey("c" * 64, "w" * 64, "s" * 64)
    with Store(tmp_path / "s.db") as store:
        assert store.scene_id(key) is None
        run = store.start_run("detect a.tif", "m", "w" * 64, "s" * 64, {"conf": 0.25})
        sid = store.add_scene(row(key), [ship(0), ship(1)], run)
        assert store.scene_id(key) == sid
        assert store.scene_id(SceneKey("c" * 64, "w" * 64, "t" * 64)) is None
        assert list(store.ships(sid)) == [ship(0), ship(1)]
        assert store.scene(sid) == row(key)
        with pytest.raises(sqlite3.IntegrityError):
            store.add_scene(row(key), [], run)
        assert list(store.ships(sid)) == [ship(0), ship(1)]  # the failed insert left nothing


def test_not_a_store_and_newer_schema(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things (x)")
    with pytest.raises(StoreError, match="not a Shipwatch store"):
        Store(other)
    newer = tmp_path / "newer.db"
    Store(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="newer than this Shipwatch"):
        Store(newer)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store(junk)


def as_schema_1(path: Path, drop: tuple[str, ...] = ("bands_json", "scale", "stretch_window_json")) -> None:
    """Turn a store into what schema 1 wrote: no record of the bands, scale and stretch read, no windows kept, footprints as rings."""
    with sqlite3.connect(path) as conn:
        ring = [list(p) for p in row(SceneKey("", "", "")).footprint.exterior.coords[:-1]]  # type: ignore[union-attr]
        conn.execute("UPDATE scenes SET footprint_json = ?", (json.dumps(ring),))
        for column in drop:
            conn.execute(f"ALTER TABLE scenes DROP COLUMN {column}")
        conn.execute("DROP TABLE windows_done")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")


def test_a_schema_1_store_is_migrated_and_keeps_its_scenes(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    old, new = SceneKey("a" * 64, "w" * 64, "s" * 64), SceneKey("b" * 64, "w" * 64, "s" * 64)
    with Store(db) as store:
        sid = store.add_scene(row(old), [ship(0)], None)
    as_schema_1(db)
    with Store(db) as store:
        kept = store.scene(sid)
        assert (kept.bands, kept.scale, kept.stretch_window) == (None, None, None)  # not recorded then: unknown
        assert kept == replace(row(old), bands=None, scale=None, stretch_window=None)
        assert list(store.ships(sid)) == [ship(0)]
        assert store.scene(store.add_scene(row(new), [], None)) == row(new)
        store.add_windows(new, [((0, 0), b"boxes")])  # schema 1 had no windows_done: created on opening
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        migrated = conn.execute("PRAGMA table_info(scenes)").fetchall()
    Store(db).close()  # opening a migrated store again changes nothing
    Store(tmp_path / "fresh.db").close()
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        assert conn.execute("PRAGMA table_info(scenes)").fetchall() == migrated  # the same columns in the same order


def test_a_failed_migration_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store(db).close()
    as_schema_1(db, drop=("bands_json",))  # a store where the migration's second step fails: scale is there already
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        Store(db)
    with sqlite3.connect(db) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(scenes)")}
        assert "bands_json" not in columns  # the first step was rolled back with the second
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)


def test_a_read_only_old_store_says_to_copy_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "s.db"
    Store(db).close()
    as_schema_1(db)
    connect = sqlite3.connect  # root writes through chmod, so open it read-only the way SQLite can
    monkeypatch.setattr(sqlite3, "connect", lambda path, timeout: connect(f"file:{path}?mode=ro", uri=True, timeout=timeout))
    with pytest.raises(StoreError, match=r"schema 1 store.*read-only; copy it somewhere writable"):
        Store(db)


def test_windows_of_an_unfinished_scene_are_kept_until_the_scene_is_stored(tmp_path: Path) -> None:
    key, other = SceneKey("c" * 64, "w" * 64, "s" * 64), SceneKey("c" * 64, "w" * 64, "t" * 64)
    with Store(tmp_path / "s.db") as store:
        store.add_windows(key, [((0, 0), b"first"), ((160, 0), b"second")])
        store.add_windows(other, [((0, 0), b"other settings")])
    with Store(tmp_path / "s.db") as store:  # a new process: what the killed one kept
        assert store.windows_done(key) == {(0, 0): b"first", (160, 0): b"second"}
        store.add_scene(row(key), [ship(0)], None)
        assert store.windows_done(key) == {}  # the scene's row replaces them
        assert store.windows_done(other) == {(0, 0): b"other settings"}
