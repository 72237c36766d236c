"""Who and how much: AIS cross-check, "dark" visits, watchlist candidates and cargo estimates.

* **AIS.** Tracks are interpolated to each acquisition time
  (:meth:`detector.ais.AisTracks.at`); a sighting matches the nearest AIS
  position within ``max_distance_m`` (1.5 km, the distance at which Skylight
  calls a detection dark), one to one per acquisition. A visit takes the MMSI
  most of its sightings matched; it is ``dark`` when AIS covered its
  acquisitions and none of its sightings matched.
* **Watchlist.** A CSV of ``name, imo, mmsi, length_m, beam_m, type, flag,
  sanctioned``. Candidates are ranked by agreement in length and beam (a
  Gaussian score with sigma max(10 m, 8 %) for length and max(3 m, 15 %) for
  beam), and an AIS match puts its vessel first.
* **Cargo.** A tanker's deadweight from its length, by hull proportions
  (deadweight = cargo share x block coefficient x L x B x T x 1.025 t/m3 with
  B = L / beam ratio and T = L / draught ratio), taken at both ends of the
  usual ranges for product and crude tankers: block coefficient 0.78-0.84,
  L/B 5.5-6.5, L/T 15-18, deadweight 80-85 % of displacement. Barrels: 7.3
  (crude, fuel oil) to 8.5 (gasoline) per tonne, the cargo 90-98 % of the
  deadweight. All of this is printed in the report.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Geod
from scipy.optimize import linear_sum_assignment

from detector.ais import AisTracks
from detector.classify import TankerModel
from detector.errors import UsageError, row_number
from detector.visits import Acquisition, Sightings, Visit, link_visits
from detector.zones import Zone, zone_at

__all__ = [
    "CARGO_ASSUMPTIONS",
    "CargoAssumptions",
    "WatchVessel",
    "barrels",
    "candidates",
    "match_ais",
    "read_watchlist",
    "visit_ais",
]

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class CargoAssumptions:
    """The hull proportions and densities behind a cargo estimate, each as (low end, high end)."""

    block_coefficient: tuple[float, float] = (0.78, 0.84)
    length_to_beam: tuple[float, float] = (6.5, 5.5)
    length_to_draught: tuple[float, float] = (18.0, 15.0)
    deadweight_share_of_displacement: tuple[float, float] = (0.80, 0.85)
    seawater_t_per_m3: float = 1.025
    cargo_share_of_deadweight: tuple[float, float] = (0.90, 0.98)
    barrels_per_tonne: tuple[float, float] = (7.3, 8.5)


CARGO_ASSUMPTIONS = CargoAssumptions()


def barrels(length_m: float, a: CargoAssumptions = CARGO_ASSUMPTIONS) -> tuple[float, float]:
    """Low and high estimates of a laden tanker's cargo in barrels, from its length."""
    ends = []
    for i in (0, 1):
        displacement = (
            a.block_coefficient[i]
            * length_m
            * (length_m / a.length_to_beam[i])
            * (length_m / a.length_to_draught[i])
            * a.seawater_t_per_m3
        )
        deadweight = a.deadweight_share_of_displacement[i] * displacement
        ends.append(deadweight * a.cargo_share_of_deadweight[i] * a.barrels_per_tonne[i])
    return min(ends), max(ends)


def match_ais(
    acquisitions: Sequence[Acquisition], sightings: Sightings, tracks: AisTracks, max_distance_m: float = 1500.0
) -> tuple[list[int | None], list[bool]]:
    """Per sighting, the matched MMSI (or None); per acquisition, whether AIS covered it."""
    mmsi: list[int | None] = [None] * len(sightings.acq)
    covered = []
    for i, acq in enumerate(acquisitions):
        ids, lon, lat = tracks.at(acq.time)
        covered.append(len(ids) > 0)
        here = np.flatnonzero(sightings.acq == i)
        if not len(ids) or not len(here):
            continue
        n, m = len(here), len(ids)
        _, _, d = _GEOD.inv(
            np.repeat(sightings.lon[here], m), np.repeat(sightings.lat[here], m), np.tile(lon, n), np.tile(lat, n)
        )
        dist = np.asarray(d).reshape(n, m)
        cost = np.where(dist <= max_distance_m, dist, 1e12)
        r, c = linear_sum_assignment(cost)
        for a, b in zip(r, c, strict=True):
            if cost[a, b] < 1e12:
                mmsi[int(here[a])] = int(ids[b])
    return mmsi, covered


def visit_ais(visit: Visit, sightings: Sightings, mmsi: list[int | None], covered: list[bool]) -> tuple[int | None, bool | None]:
    """A visit's MMSI (most of its sightings') and whether it was dark (None: AIS did not cover it)."""
    matched = [mmsi[i] for i in visit.sightings if mmsi[i] is not None]
    if matched:
        return Counter(matched).most_common(1)[0][0], False
    if any(covered[int(sightings.acq[i])] for i in visit.sightings):
        return None, True
    return None, None


@dataclass(frozen=True)
class WatchVessel:
    name: str
    imo: str
    mmsi: int | None
    length_m: float | None
    beam_m: float | None
    type: str
    flag: str
    sanctioned: bool


def read_watchlist(path: Path) -> list[WatchVessel]:
    """Vessels from a watchlist CSV, with errors naming the line."""
    needed = {"name", "imo", "mmsi", "length_m", "beam_m", "type", "flag", "sanctioned"}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = needed - set(reader.fieldnames or [])
            if missing:
                raise UsageError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}; see examples/watchlist.csv")
            out = []
            for n, r in enumerate(reader, 2):
                length, beam, mmsi = (
                    row_number(r[k], f"{path}:{n}", k, 0, 1e10, required=False) for k in ("length_m", "beam_m", "mmsi")
                )
                out.append(WatchVessel(r["name"].strip(), r["imo"].strip(), None if math.isnan(mmsi) else int(mmsi),
                                       None if math.isnan(length) else length, None if math.isnan(beam) else beam,
                                       r["type"].strip(), r["flag"].strip(), r["sanctioned"].strip().lower() in ("1", "true", "yes")))  # fmt: skip
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the watchlist ({exc.strerror}); check the path") from exc
    return out


def candidates(
    length_m: float | None, beam_m: float | None, mmsi: int | None, watchlist: Sequence[WatchVessel], top: int = 3
) -> list[tuple[WatchVessel, float]]:
    """Watchlist vessels ranked by agreement with the observed size (and AIS), best first."""
    scored = []
    for v in watchlist:
        if mmsi is not None and v.mmsi == mmsi:
            scored.append((v, 1.0))
            continue
        score = 1.0
        if length_m is not None and v.length_m is not None and not math.isnan(length_m):
            s = max(10.0, 0.08 * v.length_m)
            score *= math.exp(-0.5 * ((length_m - v.length_m) / s) ** 2)
        if beam_m is not None and v.beam_m is not None and not math.isnan(beam_m):
            s = max(3.0, 0.15 * v.beam_m)
            score *= math.exp(-0.5 * ((beam_m - v.beam_m) / s) ** 2)
        if length_m is None and beam_m is None:
            score = 0.0
        scored.append((v, score * 0.99))
    scored.sort(key=lambda vs: -vs[1])
    return [(v, s) for v, s in scored[:top] if s > 0.01]


def enrich(
    visits: Sequence[Visit],
    acquisitions: Sequence[Acquisition],
    sightings: Sightings,
    zones: Sequence[Zone],
    classifier: TankerModel,
    tracks: AisTracks | None = None,
    watchlist: Sequence[WatchVessel] = (),
) -> None:
    """Fill in each visit's beam, tanker probability and evidence, AIS match, candidates and cargo."""
    # The cargo of the most specific zone with one at the visit's position: a port visit
    # at an oil berth is evidence of a tanker, as the berth's own visit is.
    with_cargo = [z for z in zones if z.cargo]
    mmsi: list[int | None] = [None] * len(sightings.acq)
    covered = [False] * len(acquisitions)
    if tracks is not None:
        mmsi, covered = match_ais(acquisitions, sightings, tracks)
    for v in visits:
        beams = sightings.beam_m[v.sightings]  # type: ignore[index]
        v.beam_m = float(np.nanmedian(beams)) if not np.isnan(beams).all() else None
        if tracks is not None:
            v.mmsi, v.dark = visit_ais(v, sightings, mmsi, covered)
        ais_type = tracks.types.get(v.mmsi) if tracks is not None and v.mmsi is not None else None
        cargo_zone = zone_at(with_cargo, v.lon, v.lat)
        verdict = classifier(v.length_m, v.beam_m, cargo_zone.cargo if cargo_zone else None, ais_type=ais_type)
        v.tanker_prob, v.evidence = verdict.tanker_prob, verdict.as_json()
        v.class_name = verdict.class_name
        if watchlist:
            v.candidates = "; ".join(
                f"{w.name} ({w.imo}) {score:.2f}" for w, score in candidates(v.length_m, v.beam_m, v.mmsi, watchlist)
            )
        if v.class_name == "tanker" and v.length_m:
            v.barrels_low, v.barrels_high = barrels(v.length_m)


def visits_with_evidence(
    acquisitions: Sequence[Acquisition],
    sightings: Sightings,
    zones: Sequence[Zone],
    classifier: TankerModel | None = None,
    tracks: AisTracks | None = None,
    watchlist: Sequence[WatchVessel] = (),
) -> list[Visit]:
    """Link sightings into visits per zone and fill in their evidence: the whole of ``shipwatch visits``."""
    found = link_visits(acquisitions, sightings, zones)
    enrich(found, acquisitions, sightings, zones, classifier or TankerModel(), tracks, watchlist)
    return found
