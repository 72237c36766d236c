"""The embedded SQLite store: runs, scenes, detections and failures.

Work is keyed by ``(scene content hash, weights sha256, settings hash)``: a
scene already done under the same key is not run again. A scene's row and all
its detections are written in one transaction, so a job killed at any moment
leaves either the whole scene or nothing of it.

While a scene runs, each batch of finished windows is kept in
``windows_done`` (one transaction per batch), so a job killed mid-scene
resumes from its last batch; the scene's row replaces them when it is done.

Schema versions: 1, the first; 2 adds what each scene was read as (its bands
and window enlargement, ``scenes.bands_json`` and ``scenes.scale``) and the
``windows_done`` table; 3 writes a scene's footprint as a GeoJSON geometry,
holes and parts included (cloud, nodata), where 1 and 2 wrote one outer ring
(still read). A store of an older version is migrated when opened, in one
transaction; its old scenes keep NULL there (read as unknown).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import shapely
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from detector.errors import StoreError
from detector.records import Ship

__all__ = ["SCHEMA_VERSION", "SceneKey", "SceneRow", "Store"]

SCHEMA_VERSION = 4
APPLICATION = "shipwatch"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    command TEXT NOT NULL,
    model TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    settings_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scenes (
    id INTEGER PRIMARY KEY,
    content_hash TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    acquired_at TEXT,
    crs TEXT,
    transform_json TEXT,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    gsd_m REAL,
    footprint_json TEXT,
    status TEXT NOT NULL CHECK (status IN ('done', 'all_nodata')),
    n_detections INTEGER NOT NULL,
    windows_total INTEGER NOT NULL,
    windows_inferred INTEGER NOT NULL,
    model TEXT,
    model_reason TEXT,
    run_id INTEGER REFERENCES runs(id),
    finished_at TEXT NOT NULL,
    bands_json TEXT,  -- schema 2, last as a migrated store has them
    scale REAL,
    stretch_window_json TEXT,  -- schema 4
    UNIQUE (content_hash, weights_sha256, settings_hash)
);
CREATE TABLE IF NOT EXISTS detections (
    id INTEGER PRIMARY KEY,
    scene_id INTEGER NOT NULL REFERENCES scenes(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    class TEXT NOT NULL,
    score REAL NOT NULL,
    px_cx REAL NOT NULL, px_cy REAL NOT NULL, px_length REAL NOT NULL, px_width REAL NOT NULL, px_angle_deg REAL NOT NULL,
    window_col INTEGER NOT NULL, window_row INTEGER NOT NULL,
    lon REAL, lat REAL, length_m REAL, beam_m REAL, heading_deg REAL,
    polygon_json TEXT,
    UNIQUE (scene_id, idx)
);
CREATE TABLE IF NOT EXISTS windows_done (
    content_hash TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    settings_hash TEXT NOT NULL,
    col_off INTEGER NOT NULL,
    row_off INTEGER NOT NULL,
    boxes BLOB NOT NULL,
    PRIMARY KEY (content_hash, weights_sha256, settings_hash, col_off, row_off)
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    path TEXT NOT NULL,
    error TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY,
    detection_id INTEGER NOT NULL REFERENCES detections(id) ON DELETE CASCADE,
    decision TEXT NOT NULL CHECK (decision IN ('accepted', 'rejected', 'tanker', 'other', 'skipped')),
    reviewer TEXT NOT NULL,
    at TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
"""

_DET_COLUMNS = (
    "class", "score", "px_cx", "px_cy", "px_length", "px_width", "px_angle_deg", "window_col", "window_row",
    "lon", "lat", "length_m", "beam_m", "heading_deg", "polygon_json",
)  # fmt: skip


@dataclass(frozen=True)
class SceneKey:
    """What makes a scene's detections reusable."""

    content_hash: str
    weights_sha256: str
    settings_hash: str


@dataclass(frozen=True)
class SceneRow:
    """A finished scene as stored.

    ``bands`` is what the model read: band-file names of a band folder (B08,
    B04, B03), or 1-based band indices of a file; ``scale`` the window
    enlargement. Both are None for scenes stored before schema 2.
    ``footprint`` is the lon/lat outline of the valid pixels, with holes.
    ``stretch_window`` is the ``(col_off, row_off, width, height)`` whose
    pixels set a 16-bit scene's stretch with an AOI (its surroundings; all of
    a small scene); None without an AOI (the whole scene), for 8-bit scenes,
    and for scenes stored before schema 4.
    """

    key: SceneKey
    path: str
    name: str
    acquired_at: datetime | None
    crs: str | None
    transform: tuple[float, ...] | None
    width: int
    height: int
    gsd_m: float | None
    footprint: BaseGeometry | None
    status: str
    windows_total: int
    windows_inferred: int
    model: str | None = None
    model_reason: str | None = None
    bands: tuple[str | int, ...] | None = None
    scale: float | None = None
    stretch_window: tuple[int, int, int, int] | None = None


#: Each migration takes a store from the version before it to its own, in the transaction that records it.
_MIGRATIONS = {
    2: ("ALTER TABLE scenes ADD COLUMN bands_json TEXT", "ALTER TABLE scenes ADD COLUMN scale REAL"),
    3: (),  # footprints as GeoJSON geometries: the old rings are read as they are
    4: ("ALTER TABLE scenes ADD COLUMN stretch_window_json TEXT",),
}


def _decode_footprint(stored: object) -> BaseGeometry:
    """A stored footprint: a GeoJSON geometry (schema 3), or one ring of lon/lat points (schemas 1 and 2)."""
    if isinstance(stored, list):
        return shapely.Polygon(stored)
    return shapely.geometry.shape(stored)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Store:
    """A Shipwatch SQLite store; use as a context manager.

    Raises:
        StoreError: the file is not a Shipwatch store, is from a newer schema,
            or cannot be opened.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=30.0)
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._check_or_create()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable SQLite database ({exc}); pass another --out or remove the file") from exc

    def _check_or_create(self) -> None:
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise StoreError(f"{self.path}: a SQLite database but not a Shipwatch store; pass another path")
        if "meta" in tables:
            meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("application") != APPLICATION:
                raise StoreError(f"{self.path}: a SQLite database but not a Shipwatch store; pass another path")
            version = int(meta.get("schema_version", "0"))
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: store schema {version} is newer than this Shipwatch ({SCHEMA_VERSION}); upgrade shipwatch"
                )
            if version < SCHEMA_VERSION:
                self._migrate(version)  # new columns; new tables come from the schema below
        with self._conn:
            self._conn.executescript(_SCHEMA)
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('application', ?)", (APPLICATION,))
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _migrate(self, version: int) -> None:
        """Bring a store of schema ``version`` to this one, all steps in one transaction."""
        if version < 1:
            raise StoreError(f"{self.path}: a Shipwatch store without a schema version; pass another path")
        # BEGIN by hand: the sqlite3 module opens transactions only for DML, so each ALTER TABLE would commit alone.
        level, self._conn.isolation_level = self._conn.isolation_level, None
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated it since the version was read.
                version = int(self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[step]:
                        self._conn.execute(statement)
                self._conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
            raise StoreError(
                f"{self.path}: a schema {version} store, which this Shipwatch updates to {SCHEMA_VERSION} when opening it, "
                "and the file is read-only; copy it somewhere writable and open the copy"
            ) from exc
        finally:
            self._conn.isolation_level = level

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    def start_run(self, command: str, model: str, weights_sha256: str, settings_hash: str, settings: dict[str, object]) -> int:
        with self._conn:
            cur = self._conn.execute(
                "INSERT INTO runs (started_at, command, model, weights_sha256, settings_hash, settings_json) VALUES (?, ?, ?, ?, ?, ?)",
                (_now(), command, model, weights_sha256, settings_hash, json.dumps(settings, sort_keys=True)),
            )
        return int(cur.lastrowid or 0)

    def scene_id(self, key: SceneKey) -> int | None:
        row = self._conn.execute(
            "SELECT id FROM scenes WHERE content_hash = ? AND weights_sha256 = ? AND settings_hash = ?",
            (key.content_hash, key.weights_sha256, key.settings_hash),
        ).fetchone()
        return None if row is None else int(row[0])

    def add_scene(self, row: SceneRow, ships: Sequence[Ship], run_id: int | None) -> int:
        """Store a finished scene and its ships, dropping its kept windows, in one transaction; return its id."""
        with self._conn:
            cur = self._conn.execute(
                "INSERT INTO scenes (content_hash, weights_sha256, settings_hash, path, name, acquired_at, crs, transform_json,"
                " width, height, gsd_m, footprint_json, status, n_detections, windows_total, windows_inferred, model, model_reason,"
                " run_id, finished_at, bands_json, scale, stretch_window_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.key.content_hash, row.key.weights_sha256, row.key.settings_hash, row.path, row.name,
                    _iso(row.acquired_at), row.crs, json.dumps(row.transform) if row.transform else None,
                    row.width, row.height, row.gsd_m,
                    json.dumps(shapely.geometry.mapping(row.footprint)) if row.footprint is not None else None,
                    row.status, len(ships), row.windows_total, row.windows_inferred, row.model, row.model_reason, run_id, _now(),
                    json.dumps(list(row.bands)) if row.bands is not None else None, row.scale,
                    json.dumps(list(row.stretch_window)) if row.stretch_window is not None else None,
                ),
            )  # fmt: skip
            scene_id = int(cur.lastrowid or 0)
            self._conn.execute(
                "DELETE FROM windows_done WHERE content_hash = ? AND weights_sha256 = ? AND settings_hash = ?",
                (row.key.content_hash, row.key.weights_sha256, row.key.settings_hash),
            )
            self._conn.executemany(
                f"INSERT INTO detections (scene_id, idx, {', '.join(_DET_COLUMNS)}) VALUES ({', '.join('?' * (len(_DET_COLUMNS) + 2))})",
                [
                    (
                        scene_id, i, s.class_name, s.score, s.px_cx, s.px_cy, s.px_length, s.px_width, s.px_angle_deg,
                        s.window_col, s.window_row, s.lon, s.lat, s.length_m, s.beam_m, s.heading_deg,
                        json.dumps(s.polygon_lonlat) if s.polygon_lonlat else None,
                    )
                    for i, s in enumerate(ships)
                ],
            )  # fmt: skip
        return scene_id

    def windows_done(self, key: SceneKey) -> dict[tuple[int, int], bytes]:
        """The windows of an unfinished scene kept so far: ``{(col_off, row_off): boxes}``."""
        rows = self._conn.execute(
            "SELECT col_off, row_off, boxes FROM windows_done WHERE content_hash = ? AND weights_sha256 = ? AND settings_hash = ?",
            (key.content_hash, key.weights_sha256, key.settings_hash),
        )
        return {(int(c), int(r)): bytes(b) for c, r, b in rows}

    def add_windows(self, key: SceneKey, windows: Sequence[tuple[tuple[int, int], bytes]]) -> None:
        """Keep a batch of a scene's finished windows, in one transaction."""
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO windows_done VALUES (?, ?, ?, ?, ?, ?)",
                [(key.content_hash, key.weights_sha256, key.settings_hash, c, r, b) for (c, r), b in windows],
            )

    def add_failure(self, run_id: int | None, path: str, error: str) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT INTO failures (run_id, path, error, at) VALUES (?, ?, ?, ?)", (run_id, path, error, _now())
            )

    def scene(self, scene_id: int) -> SceneRow:
        r = self._conn.execute(
            "SELECT content_hash, weights_sha256, settings_hash, path, name, acquired_at, crs, transform_json, width, height,"
            " gsd_m, footprint_json, status, windows_total, windows_inferred, model, model_reason, bands_json, scale,"
            " stretch_window_json FROM scenes WHERE id = ?",
            (scene_id,),
        ).fetchone()
        if r is None:
            raise StoreError(f"{self.path}: no scene with id {scene_id}")
        return SceneRow(
            key=SceneKey(r[0], r[1], r[2]),
            path=r[3],
            name=r[4],
            acquired_at=datetime.fromisoformat(r[5].replace("Z", "+00:00")) if r[5] else None,
            crs=r[6],
            transform=tuple(json.loads(r[7])) if r[7] else None,
            width=r[8],
            height=r[9],
            gsd_m=r[10],
            footprint=_decode_footprint(json.loads(r[11])) if r[11] else None,
            status=r[12],
            windows_total=r[13],
            windows_inferred=r[14],
            model=r[15],
            model_reason=r[16],
            bands=tuple(json.loads(r[17])) if r[17] is not None else None,
            scale=r[18],
            stretch_window=tuple(json.loads(r[19])) if r[19] is not None else None,  # type: ignore[arg-type]
        )

    def latest_settings_hash(self) -> str | None:
        """The settings hash of the most recent detect run, None when there is none."""
        row = self._conn.execute("SELECT settings_hash FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def scene_ids(self, settings_hash: str) -> list[int]:
        """Scenes done under ``settings_hash``, by acquisition time."""
        rows = self._conn.execute("SELECT id FROM scenes WHERE settings_hash = ? ORDER BY acquired_at, id", (settings_hash,))
        return [int(r[0]) for r in rows]

    def detection_rows(self, settings_hash: str) -> list[tuple[int, int, Ship]]:
        """``(detection id, scene id, ship)`` of every detection under ``settings_hash``."""
        out = []
        for sid in self.scene_ids(settings_hash):
            ids = [int(r[0]) for r in self._conn.execute("SELECT id FROM detections WHERE scene_id = ? ORDER BY idx", (sid,))]
            out += [(did, sid, ship) for did, ship in zip(ids, self.ships(sid), strict=True)]
        return out

    def add_review(self, detection_id: int, decision: str, reviewer: str) -> None:
        """Record a decision, committed at once."""
        with self._conn:
            self._conn.execute(
                "INSERT INTO reviews (detection_id, decision, reviewer, at) VALUES (?, ?, ?, ?)",
                (detection_id, decision, reviewer, _now()),
            )

    def undo_review(self, reviewer: str) -> int | None:
        """Take back ``reviewer``'s latest standing decision; return its detection id."""
        with self._conn:
            row = self._conn.execute(
                "SELECT id, detection_id FROM reviews WHERE reviewer = ? AND undone = 0 ORDER BY id DESC LIMIT 1", (reviewer,)
            ).fetchone()
            if row is None:
                return None
            self._conn.execute("UPDATE reviews SET undone = 1 WHERE id = ?", (row[0],))
        return int(row[1])

    def decisions(self) -> dict[int, tuple[str, str, str]]:
        """Each reviewed detection's standing decision: ``{detection id: (decision, reviewer, at)}``."""
        rows = self._conn.execute("SELECT detection_id, decision, reviewer, at FROM reviews WHERE undone = 0 ORDER BY id")
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}

    def count_ships(self, scene_id: int) -> int:
        return int(self._conn.execute("SELECT count(*) FROM detections WHERE scene_id = ?", (scene_id,)).fetchone()[0])

    def ships(self, scene_id: int, scene: SceneRow | None = None) -> Iterator[Ship]:
        """The ships of a scene, in stored order; ``scene`` is its row, when the caller has read it already."""
        scene = scene or self.scene(scene_id)
        cur = self._conn.execute(f"SELECT {', '.join(_DET_COLUMNS)} FROM detections WHERE scene_id = ? ORDER BY idx", (scene_id,))
        for r in cur:
            yield Ship(
                scene=scene.name, acquired_at=scene.acquired_at, class_name=r[0], score=r[1],
                px_cx=r[2], px_cy=r[3], px_length=r[4], px_width=r[5], px_angle_deg=r[6],
                window_col=r[7], window_row=r[8], lon=r[9], lat=r[10], length_m=r[11], beam_m=r[12], heading_deg=r[13],
                polygon_lonlat=tuple(tuple(p) for p in json.loads(r[14])) if r[14] else None,
            )  # fmt: skip
