"""A batch killed with SIGKILL partway through, then rerun, ends exactly as an uninterrupted run."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DATA, load_script

pytestmark = pytest.mark.real_model


def count(db: Path, table: str) -> int:
    """Rows of ``table`` in the store, read without waiting on the job writing it."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet, or locked mid-transaction
        return 0


def kill_9_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    """SIGKILL the job as soon as ``ready()``; fail if it ends first."""
    deadline = time.monotonic() + 300
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the job ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def detect(scenes: list[Path], out: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from detector.cli.main import run; run()", "detect", *map(str, scenes), "--out", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TQDM_DISABLE": "1"})


def test_kill_9_then_resume_gives_the_uninterrupted_outputs(tmp_path: Path) -> None:
    write = load_script("datasets/dota_geotiff.py").write_geotiff
    scenes = [
        write(DATA / "P0861__1024__0___1648.jpg", tmp_path / f"marina_2024-05-0{i}.tif", pixel_m=0.15, upscale=2, origin=(500000.0 + 400 * i, 4750000.0))
        for i in range(1, 7)
    ]  # fmt: skip
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    db = killed / "shipwatch.db"
    kill_9_when(detect(scenes, killed), lambda: count(db, "scenes") >= 2)
    partial = count(db, "scenes")
    assert 2 <= partial < len(scenes)
    assert detect(scenes, killed).wait() == 0
    assert detect(scenes, clean).wait() == 0
    for name in ("detections.csv", "detections.geojson", "detections.gpkg"):
        assert (killed / name).read_bytes() == (clean / name).read_bytes()
    with sqlite3.connect(killed / "shipwatch.db") as conn:
        assert conn.execute("SELECT count(*) FROM scenes").fetchone()[0] == len(scenes)
        # nothing duplicated: each scene's ships once
        per_scene = conn.execute("SELECT count(*) FROM detections GROUP BY scene_id").fetchall()
        assert len({n for (n,) in per_scene}) == 1


def test_kill_9_inside_a_scene_resumes_from_its_last_batch(tmp_path: Path) -> None:
    write = load_script("datasets/dota_geotiff.py").write_geotiff
    scene = write(DATA / "P0861__1024__0___1648.jpg", tmp_path / "marina_2024-05-01.tif", pixel_m=0.1, upscale=3)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    db = killed / "shipwatch.db"
    kill_9_when(detect([scene], killed), lambda: count(db, "windows_done") >= 1)
    assert count(db, "scenes") == 0 and count(db, "windows_done") >= 1
    cmd = [sys.executable, "-c", "from detector.cli.main import run; run()", "detect", str(scene), "--out", str(killed)]
    resumed = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"}, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "windows kept from an interrupted run" in resumed.stdout + resumed.stderr
    assert detect([scene], clean).wait() == 0
    for name in ("detections.csv", "detections.geojson", "detections.gpkg"):
        assert (killed / name).read_bytes() == (clean / name).read_bytes()
    assert count(db, "windows_done") == 0  # the finished scene's row replaced them
