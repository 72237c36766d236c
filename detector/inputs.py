"""Turning command-line inputs into scene paths.

An input is a raster file, a band folder (a folder holding files named with
Sentinel-2 bands, read as one scene), a folder of rasters (each one a scene,
sorted by name), a glob pattern, or ``@list.txt`` (one input per line, ``#``
comments, relative paths taken from the list's folder).
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from detector.errors import UsageError
from detector.raster import RASTER_SUFFIXES, is_band_folder

__all__ = ["expand_inputs"]


def _expand_one(text: str, base: Path | None, depth: int) -> list[Path]:
    if text.startswith("@"):
        if depth > 3:
            raise UsageError(f"{text}: list files nest deeper than 3 levels; flatten them")
        listing = Path(text[1:]) if base is None else base / text[1:]
        try:
            lines = listing.read_text().splitlines()
        except OSError as exc:
            raise UsageError(f"{listing}: cannot read input list ({exc.strerror}); check the path after @") from exc
        out: list[Path] = []
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line:
                out.extend(_expand_one(line, listing.parent, depth + 1))
        return out
    path = Path(text) if base is None or Path(text).is_absolute() else base / text
    if any(ch in text for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        if not matches:
            raise UsageError(f"{text}: the pattern matches no file; check it (quote it so the shell leaves it to shipwatch)")
        return matches
    if path.is_dir() and not is_band_folder(path):
        rasters = sorted(p for p in path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES and p.is_file())
        sub = sorted(p for p in path.iterdir() if p.is_dir() and is_band_folder(p))
        # An empty folder passes through, to be reported as a bad scene.
        return sorted(rasters + sub) or [path]
    # Missing files pass through: reading them reports the problem per scene.
    return [path]


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Scene paths for ``inputs``, in order, without repeats."""
    seen: dict[Path, None] = {}
    for text in inputs:
        for path in _expand_one(text, None, 0):
            seen.setdefault(path, None)
    return list(seen)
