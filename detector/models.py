"""The model registry: which weights exist, what they detect, and their sha256.

The registry is ``models/registry.json`` in the repository (or the folder
named by ``SHIPWATCH_MODELS_DIR``). Weights are pinned by sha256: a file whose
digest differs from its entry, or a file with no entry, is refused unless the
caller trusts it explicitly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

from detector.errors import UsageError, WeightsError

__all__ = [
    "GSD_SLACK",
    "RGB",
    "Member",
    "ModelSpec",
    "choose_model",
    "in_gsd_range",
    "models_dir",
    "registry",
    "registry_digest",
    "resolve_members",
    "resolve_weights",
    "sha256_file",
]

#: How far outside its GSD range a model is still used: finer imagery down to the
#: low end / 1.5 (ships only get bigger), coarser only to the high end x 1.1 (ships
#: shrink towards a few pixels, where false alarms take over).
GSD_SLACK = (1.5, 1.1)
#: The band names of an RGB image.
RGB = ("red", "green", "blue")


@dataclass(frozen=True)
class Member:
    """One model of an ensemble: its registry name and the ensemble's bands it takes, in its input order."""

    model: str
    bands: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry: one weights file, or an ensemble of entries.

    Attributes:
        name: registry name, e.g. ``yolo26n-obb-dota``.
        file: weights file name inside the models folder.
        sha256: pinned digest of the weights file.
        classes: class names by model index.
        ship_classes: the class names reported as ships.
        input_size: model input size in px (square).
        gsd_m: intended ground sample distance range in metres.
        bands: the bands the model expects, in input order: ``red, green,
            blue`` for any RGB image, or Sentinel-2 band names (``B08``...),
            which a band folder must hold.
        scale: how much windows are enlarged before the model (models trained
            on upsampled imagery).
        conf: the operating score threshold, picked on validation data.
        members: for an ensemble, its models (see :mod:`detector.ensemble`);
            it has no file of its own, and its ``sha256`` is the digest of
            its members' digests and the bands each takes, so a changed
            member, or the same members fed other bands, changes it.
    """

    name: str
    file: str
    sha256: str
    classes: tuple[str, ...]
    ship_classes: tuple[str, ...]
    input_size: int
    gsd_m: tuple[float, float]
    bands: tuple[str, ...] = ("red", "green", "blue")
    licence: str = ""
    card: str = ""
    scale: float = 1.0
    conf: float = 0.25
    members: tuple[Member, ...] = ()

    def __post_init__(self) -> None:
        if len(self.sha256) != 64:
            raise ValueError(f"{self.name}: sha256 must be 64 hex digits")
        unknown = set(self.ship_classes) - set(self.classes)
        if unknown:
            raise ValueError(f"{self.name}: ship_classes {sorted(unknown)} are not among its classes")
        if self.input_size <= 0 or not 0 < self.gsd_m[0] <= self.gsd_m[1]:
            raise ValueError(f"{self.name}: bad input_size or gsd_m")
        for m in self.members:
            if not set(m.bands) <= set(self.bands) or len(m.bands) != 3:
                raise ValueError(f"{self.name}: member {m.model} must take 3 of the ensemble's bands {list(self.bands)}")

    def member_channels(self, member: Member) -> tuple[int, ...]:
        """Where ``member``'s bands sit among the ensemble's, in its input order."""
        return tuple(self.bands.index(b) for b in member.bands)

    @property
    def ship_class_ids(self) -> tuple[int, ...]:
        return tuple(self.classes.index(c) for c in self.ship_classes)


# Class names taken for ships in a weights file outside the registry: whole words, so "shipping container" is not one.
SHIP_WORDS = re.compile(r"\b(ship|vessel|boat|tanker|barge|ferry|yacht|tug)s?\b|\b[a-z]+boats?\b", re.IGNORECASE)


def ship_class_ids(names: tuple[str, ...], spec: ModelSpec | None, source: str | Path) -> tuple[int, ...]:
    """The classes of a model that are ships: a DOTA model's planes and harbours are not.

    The registry's ship classes for a registered model. For a file outside
    it, its only class, or those whose names say ship, vessel, boat, tanker,
    barge, ferry, yacht or tug (motorboat and the like too).

    Raises:
        WeightsError: a file with several classes, none of them a ship.
    """
    if spec is not None:
        return spec.ship_class_ids
    if len(names) == 1:
        return (0,)
    ids = tuple(k for k, name in enumerate(names) if SHIP_WORDS.search(name))
    if not ids:
        raise WeightsError(
            f"{source}: none of its classes {list(names)} is a ship class; use a ship model, or add it to "
            "models/registry.json with its ship_classes"
        )
    return ids


def models_dir() -> Path:
    """The folder holding the registry and weights."""
    env = os.environ.get("SHIPWATCH_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "models"


def _entry(m: dict) -> dict:  # type: ignore[type-arg]
    """The fields every registry entry gives for itself, single model or ensemble."""
    return {
        "name": m["name"],
        "gsd_m": (float(m["gsd_m"][0]), float(m["gsd_m"][1])),
        "bands": tuple(m.get("bands", RGB)),
        "licence": m.get("licence", ""),
        "card": m.get("card", ""),
        "conf": float(m.get("conf", 0.25)),
    }


def _single(m: dict) -> ModelSpec:  # type: ignore[type-arg]
    return ModelSpec(
        file=m["file"],
        sha256=m["sha256"].lower(),
        classes=tuple(m["classes"]),
        ship_classes=tuple(m["ship_classes"]),
        input_size=int(m["input_size"]),
        scale=float(m.get("scale", 1.0)),
        **_entry(m),
    )


def _inputs(spec: ModelSpec) -> tuple[object, ...]:
    """What ensemble members must share: the classes they report and the windows they read."""
    return spec.classes, spec.ship_classes, spec.input_size, spec.scale


def _ensemble(m: dict, singles: dict[str, ModelSpec]) -> ModelSpec:  # type: ignore[type-arg]
    """An ensemble entry: its classes, input size and scale are its members', its digest theirs combined."""
    members = tuple(Member(x["model"], tuple(x["bands"])) for x in m["members"])
    unknown = [x.model for x in members if x.model not in singles]
    if len(members) < 2 or unknown:
        raise ValueError(
            f"{m['name']}: an ensemble needs two or more members that are single models of the registry"
            + (f"; not among them: {', '.join(unknown)}" if unknown else "")
        )
    parts = [singles[x.model] for x in members]
    first = parts[0]
    odd = next((p for p in parts if _inputs(p) != _inputs(first)), None)
    if odd is not None:
        raise ValueError(f"{m['name']}: members {first.name} and {odd.name} differ in classes, input size or scale")
    # Members and the bands each takes: the same files fed other bands are another ensemble.
    digest = hashlib.sha256(
        ";".join(f"{p.sha256}:{','.join(x.bands)}" for p, x in zip(parts, members, strict=True)).encode()
    ).hexdigest()
    return replace(first, file="", sha256=digest, members=members, **_entry(m))


def _refuse_shared_weights(specs: tuple[ModelSpec, ...]) -> None:
    """Two entries running the same weights (an ensemble: the same members fed the same bands) are refused.

    A store keys a scene's results by the weights' digest, not the entry's
    name, so a second entry that only changed the threshold or enlargement
    would be handed the first one's results.
    """
    seen: dict[str, str] = {}
    for spec in specs:
        other = seen.setdefault(spec.sha256, spec.name)
        if other != spec.name:
            raise ValueError(
                f"{other} and {spec.name} run the same weights (sha256 {spec.sha256[:12]}...), which a store could not "
                "tell apart; keep one entry and pass --conf for another threshold"
            )


@lru_cache(maxsize=4)
def _load_registry(folder: Path) -> tuple[str, tuple[ModelSpec, ...]]:
    path = folder / "registry.json"
    try:
        raw = json.loads(path.read_text())
        singles = {m["name"]: _single(m) for m in raw["models"] if "members" not in m}
        specs = tuple(_ensemble(m, singles) if "members" in m else singles[m["name"]] for m in raw["models"])
        _refuse_shared_weights(specs)
        return raw["default"], specs
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(
            f"{path}: model registry unreadable ({exc}); restore it from the repository or set SHIPWATCH_MODELS_DIR"
        ) from exc


def registry() -> dict[str, ModelSpec]:
    """All registered models by name."""
    _, specs = _load_registry(models_dir())
    return {s.name: s for s in specs}


def registry_digest() -> str:
    """sha256 of what the registry's entries do to a scene: weights, bands, enlargement, threshold, classes, GSD range.

    A job's store key includes it, so that a changed threshold or enlargement
    in an entry (same weights) redoes the scenes instead of keeping ships found
    under the old one. Licence and card do not count.
    """
    default, specs = _load_registry(models_dir())
    entries = [{k: v for k, v in asdict(s).items() if k not in ("licence", "card")} for s in specs]
    return hashlib.sha256(json.dumps([default, entries], sort_keys=True).encode()).hexdigest()


def default_model() -> ModelSpec:
    default, _ = _load_registry(models_dir())
    return registry()[default]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=32)
def _sha_cached(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def _digest(path: Path) -> str:
    st = path.stat()
    return _sha_cached(path.resolve(), st.st_size, st.st_mtime_ns)


def resolve_weights(weights: str | Path | None = None, trust: bool = False) -> tuple[ModelSpec | None, Path, str]:
    """Find and verify weights by registry name or path.

    Returns ``(spec, path, sha256)``. ``spec`` is None for a trusted file that
    is not in the registry; the loader then takes classes from the file. For
    an ensemble, ``path`` is the models folder and every member is verified.

    Raises:
        WeightsError: unknown name, missing file, or a digest that matches no
            registry entry (unless ``trust``).
    """
    specs = registry()
    if weights is None or str(weights) in specs:
        spec = default_model() if weights is None else specs[str(weights)]
        if spec.members:
            resolve_members(spec, trust)  # each member's file checked against its own entry
            return spec, models_dir(), spec.sha256
        path = models_dir() / spec.file
    else:
        path = Path(weights)
        spec = None
        if not path.is_file():
            raise WeightsError(
                f"{path}: no such weights file or registry name; use one of {', '.join(sorted(specs))} or a .pt path"
            )
    if not path.is_file():
        raise WeightsError(
            f"{path}: weights of {spec.name if spec else path.name} are missing; restore models/ from the repository"
        )
    digest = _digest(path)
    if spec is None:
        spec = next((s for s in specs.values() if s.sha256 == digest), None)
        if spec is None and not trust:
            raise WeightsError(
                f"{path}: sha256 {digest[:12]}… matches no registry entry; add it to models/registry.json or pass --trust-weights"
            )
        return spec, path, digest
    if digest != spec.sha256 and not trust:
        raise WeightsError(
            f"{path}: sha256 {digest[:12]}… differs from the registry's {spec.sha256[:12]}… for {spec.name}; "
            "restore the file from the repository or pass --trust-weights"
        )
    return spec, path, digest


def resolve_members(spec: ModelSpec, trust: bool = False) -> list[tuple[ModelSpec, Path, str]]:
    """The verified ``(spec, path, sha256)`` of each member of an ensemble, in its order.

    Raises:
        WeightsError: a member's file is missing or differs from its entry.
    """
    specs = registry()
    out = []
    for member in spec.members:
        _, path, digest = resolve_weights(member.model, trust)
        out.append((specs[member.model], path, digest))
    return out


def in_gsd_range(spec: ModelSpec, gsd_m: float) -> bool:
    """Whether ``spec`` suits imagery of ``gsd_m`` true ground metres (with :data:`GSD_SLACK`)."""
    return spec.gsd_m[0] / GSD_SLACK[0] <= gsd_m <= spec.gsd_m[1] * GSD_SLACK[1]


def _ranges(specs: Sequence[ModelSpec]) -> str:
    """The registry's GSD ranges, each with its models: ``0.1-2 m: a, b; 5-20 m: c``."""
    by_range: dict[tuple[float, float], list[str]] = {}
    for s in specs:
        by_range.setdefault(s.gsd_m, []).append(s.name)
    return "; ".join(f"{low:g}-{high:g} m: {', '.join(names)}" for (low, high), names in sorted(by_range.items()))


def choose_model(gsd_m: float | None, bands: frozenset[str], where: str) -> tuple[ModelSpec, str]:
    """The registry model for a scene of ``gsd_m`` true ground metres holding ``bands``.

    ``bands`` holds Sentinel-2 band names for a band folder, ``red``, ``green``
    and ``blue`` for an RGB image. Models are tried in registry order.

    Raises:
        UsageError: no model fits, saying why and what to pass instead.
    """
    specs = list(registry().values())
    if gsd_m is None:
        spec = default_model()
        return spec, f"no ground sample distance known; the default model {spec.name}"
    in_range = [s for s in specs if in_gsd_range(s, gsd_m)]
    if not in_range:
        finest = max(s.gsd_m[1] for s in specs)
        advice = (
            f"ships are a pixel or two at this resolution: use imagery of {finest:g} m or finer"
            " (Sentinel-2's 10 m bands, say), or pass --weights to run a model anyway"
            if gsd_m > finest * GSD_SLACK[1]
            else "pass --weights to choose one"
        )
        raise UsageError(f"{where}: ground sample distance {gsd_m:.2f} m fits no model ({_ranges(specs)}); {advice}")
    for spec in in_range:
        if set(spec.bands) <= bands:
            return (
                spec,
                f"ground sample distance {gsd_m:.2f} m is in {spec.name}'s {spec.gsd_m[0]:g}-{spec.gsd_m[1]:g} m range and the scene has its bands",
            )
    wanted = "; ".join(f"{s.name} needs {', '.join(s.bands)}" for s in in_range)
    raise UsageError(
        f"{where}: ground sample distance {gsd_m:.2f} m, but the scene lacks the bands ({wanted}); pass a band folder with them, or --weights"
    )
