"""Atomic output: whole files only, with the permissions a plain open would give."""

import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.export import atomic_path, atomic_write_text
from detector.quicklook import write_png


def test_written_files_get_the_umask_permissions_not_the_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "detections.csv"
    atomic_write_text(path, "a,b\n")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
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


def test_a_writer_that_names_its_format_by_extension_gets_one_and_a_failed_block_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "quicklook.png"
    image = np.zeros((4, 6, 3), np.uint8)
    image[1, 2] = (0, 0, 255)
    write_png(out, image)
    assert cv2.imread(str(out)).tolist() == image.tolist()
    with pytest.raises(RuntimeError, match="drawing failed"), atomic_path(out, ".png") as tmp:
        assert tmp.suffix == ".png" and not tmp.exists()
        cv2.imwrite(str(tmp), np.ones((2, 2, 3), np.uint8))
        raise RuntimeError("drawing failed")
    assert cv2.imread(str(out)).tolist() == image.tolist() and [p.name for p in tmp_path.iterdir()] == ["quicklook.png"]
