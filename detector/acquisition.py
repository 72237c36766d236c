"""When a scene was acquired.

Sources, in order: an explicit value, a STAC item beside the scene
(``properties.datetime``), TIFF tags (``TIFFTAG_DATETIME``,
``ACQUISITIONDATETIME``), then a date in the file or folder name
(``YYYY-MM-DD`` or ``YYYYMMDD``, with an optional ``HH:MM[:SS]`` time whose
separators may be ``:``, ``_`` or nothing). Times are UTC; a time without a
zone is taken as UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from detector.errors import UsageError

__all__ = ["acquisition_time", "parse_time"]

_NAME_DATE = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})-?(?P<m>[01]\d)-?(?P<d>[0-3]\d)"
    r"(?:[T_ -]?(?P<H>[0-2]\d)[:_]?(?P<M>[0-5]\d)(?:[:_]?(?P<S>[0-5]\d))?)?(?!\d)"
)


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 or TIFF (``YYYY:MM:DD HH:MM:SS``) time to aware UTC.

    Raises:
        ValueError: if the text is not such a time.
    """
    text = text.strip()
    tiff = re.fullmatch(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})", text)
    if tiff:
        y, mo, d, h, mi, sec = (int(g) for g in tiff.groups())
        value = datetime(y, mo, d, h, mi, sec)
    else:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _from_name(name: str) -> datetime | None:
    for match in _NAME_DATE.finditer(name):
        parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        try:
            return datetime(
                parts["y"], parts["m"], parts["d"], parts.get("H", 0), parts.get("M", 0), parts.get("S", 0), tzinfo=UTC
            )
        except ValueError:
            continue
    return None


def _stac_candidates(path: Path) -> list[Path]:
    return [path.with_suffix(".json"), path.with_name(path.name + ".json")]


def _from_stac(path: Path) -> datetime | None:
    for item in _stac_candidates(path):
        if item == path or not item.is_file():
            continue
        try:
            value = json.loads(item.read_text())["properties"]["datetime"]
            return parse_time(str(value))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{item}: STAC item has no readable properties.datetime ({exc}); fix it or pass --acquired") from exc
    return None


def acquisition_time(
    path: Path,
    tags: Mapping[str, str],
    override: datetime | None = None,
    names: Iterable[str] = (),
) -> datetime | None:
    """The acquisition time of the scene at ``path``, or None when unknown.

    ``tags`` are the raster's dataset tags; ``names`` are further file names
    (band files of a folder scene) searched for a date after the scene name.
    """
    if override is not None:
        return override if override.tzinfo else override.replace(tzinfo=UTC)
    stac = _from_stac(path)
    if stac is not None:
        return stac
    for key in ("TIFFTAG_DATETIME", "ACQUISITIONDATETIME"):
        if tags.get(key):
            try:
                return parse_time(tags[key])
            except ValueError:
                continue
    for name in (path.name, *names, path.parent.name):
        found = _from_name(name)
        if found is not None:
            return found
    return None
