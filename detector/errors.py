"""The Shipwatch error tree.

Every error the library raises on purpose derives from :class:`ShipwatchError`.
Messages name the file, the problem and the fix, so that the CLI can print
them as one line and exit with code 2.
"""

from __future__ import annotations

__all__ = [
    "GeoreferenceError",
    "SceneReadError",
    "ShipwatchError",
    "StoreError",
    "UsageError",
    "WeightsError",
]


class ShipwatchError(Exception):
    """Root of every error raised on purpose by Shipwatch."""


class UsageError(ShipwatchError, ValueError):
    """An option or argument that cannot work as given."""


class SceneReadError(ShipwatchError, OSError):
    """A scene that cannot be opened or read."""


class GeoreferenceError(ShipwatchError, ValueError):
    """A scene whose georeferencing is missing or unusable."""


class WeightsError(ShipwatchError, OSError):
    """Model weights that are missing, unknown or fail their checksum."""


class StoreError(ShipwatchError, OSError):
    """A SQLite store that cannot be opened, read or written."""
