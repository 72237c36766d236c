"""Atomic text output: whole files only, with the permissions a plain open would give."""

import os
import stat
from pathlib import Path

import pytest

from detector import export
from detector.export import atomic_write_text


def test_written_files_get_the_umask_permissions_not_the_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "detections.csv"
    atomic_write_text(path, "a,b\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~export._UMASK
    assert path.read_text() == "a,b\n"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "visits.csv"
    atomic_write_text(path, "old\n")

    def full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["visits.csv"]


def test_temporary_files_of_a_killed_write_go_with_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "detections.csv"
    (tmp_path / ".detections.csv.k1ll3d.tmp").write_text("half a fi")  # what a kill -9 before the rename leaves
    (tmp_path / ".detections.gpkg.k1ll3d.gpkg").write_text("another target's: kept")
    atomic_write_text(path, "a,b\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".detections.gpkg.k1ll3d.gpkg", "detections.csv"]
