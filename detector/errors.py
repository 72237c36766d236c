"""The Shipwatch error tree.

Every error the library raises on purpose derives from :class:`ShipwatchError`.
Messages name the file, the problem and the fix, so that the CLI can print
them as one line and exit with code 2.
"""

from __future__ import annotations

import math
import sys

__all__ = [
    "EXIT_BAD_INPUT",
    "GeoreferenceError",
    "SceneReadError",
    "ShipwatchError",
    "StoreError",
    "UsageError",
    "WeightsError",
    "bad_input_exit",
    "input_problem",
    "row_number",
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


def row_number(value: object, where: str, name: str, low: float, high: float, required: bool = True) -> float:
    """A number from one cell of an input table, checked against ``[low, high]``.

    ``where`` names the file and line (``ais.csv:3``). An empty cell is NaN
    when not ``required``.

    Raises:
        UsageError: an empty required cell, text that is not a number, or a number out of range.
    """
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise UsageError(f"{where}: no {name}; fill it in or drop the row")
        return math.nan
    try:
        number = float(text)
    except ValueError:
        raise UsageError(f"{where}: {name} {text!r} is not a number; fix the row") from None
    if not low <= number <= high:
        raise UsageError(f"{where}: {name} {number} is out of range [{low}, {high}]; fix the row")
    return number


def input_problem(exc: BaseException) -> str | None:
    """The one line to print for an error that is the input's fault, None for any other (a defect: let it raise).

    The input's fault: a :class:`ShipwatchError`, or a file-system error on a
    path (one that cannot be made, read or written).
    """
    if isinstance(exc, ShipwatchError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}; check the path, its permissions and the free space"
    return None


#: The exit code of bad input or usage (DESIGN.md: exit codes).
EXIT_BAD_INPUT = 2


def bad_input_exit(exc: ShipwatchError | OSError) -> int:
    """Print ``exc`` as one line on stderr and give :data:`EXIT_BAD_INPUT`, for a command's outermost handler.

    Raises:
        OSError: ``exc`` again when it is not the input's fault (it names no path): a defect, with its traceback.
    """
    problem = input_problem(exc)
    if problem is None:
        raise exc
    print(f"error: {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT
