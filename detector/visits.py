"""Linking detections across acquisitions into vessel visits, per zone.

Satellite images are snapshots: a vessel at a berth on Monday and again on
Thursday may be one visit or two. The linker decides with three rules.

* **Coverage.** Each acquisition has a footprint of valid pixels (or observes
  everything when unknown). A visit ends only when a later acquisition
  *observed its spot* and the vessel was not there; an acquisition that did
  not see the spot neither ends nor starts anything.
* **Association by position, tolerance by zone kind.** Consecutive
  observations are matched one to one (a global assignment over candidate
  pairs from a k-d tree, so the cost grows about as n log n) within a gate
  that depends on the zone kind: a moored ship hardly moves, a ship at anchor
  swings round its anchor and is re-anchored. Lengths, where known, must
  agree within a ratio.
* **Misses.** Detectors miss ships (recall is never 1). A visit may survive
  ``max_missed`` observed absences in a row (default 0: the first observed
  absence ends it, since at a busy berth one empty image between two ships is
  far more common than a missed ship); ``departed_before`` is the first
  observed absence.

Default gates (metres), measured rather than guessed: in the Global Fishing
Watch AIS sample (``shared/data/ais/gfw-sample``), the tanker GRACE STAR at
anchor off Singapore for 3 days stayed within 464 m of its median position
(90% within 431 m) and moved at most 164 m between 12-hourly samples; moored
ships in the same sample moved under 130 m (AIS noise included). Hence
berth 100 m (a moored hull plus detection noise), terminal 300 m, anchorage
1000 m (twice the observed swing radius, short of the 3 km at which GFW
starts an anchorage visit). A port holds many berths with their own traffic:
with anonymous detections a 4 km gate (GFW's exit rule, made for identified
AIS tracks) links a ship leaving one berth to another arriving at the next,
so a port zone uses the terminal gate, 300 m.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from detector.errors import UsageError
from detector.zones import Zone, ZoneKind

__all__ = ["DEFAULT_LINKS", "Acquisition", "LinkParams", "Sightings", "Visit", "link_visits"]


@dataclass(frozen=True)
class LinkParams:
    """How observations link at one kind of zone.

    Attributes:
        gate_m: the farthest two sightings of one vessel may be apart.
        max_missed: observed absences a visit survives.
        length_tol: the most two lengths of one vessel may differ, as a share of
            the longer, when both are known. Set it from the detector's length
            error: 0.25 suits 10 m imagery (ships of 10-25 px measured to a pixel
            or two at each end); perfect measurements allow a tolerance near 0.
    """

    gate_m: float
    max_missed: int = 0
    length_tol: float = 0.15


DEFAULT_LINKS: dict[ZoneKind, LinkParams] = {
    ZoneKind.BERTH: LinkParams(100.0),
    ZoneKind.TERMINAL: LinkParams(300.0),
    ZoneKind.ANCHORAGE: LinkParams(1000.0),
    ZoneKind.PORT: LinkParams(300.0),
}


@dataclass(frozen=True)
class Acquisition:
    """One image: its time and the lon/lat footprint of its valid pixels (None: it saw everything)."""

    time: datetime
    footprint: BaseGeometry | None = None


@dataclass(frozen=True)
class Sightings:
    """Detections as parallel arrays; ``acq`` indexes the acquisitions list."""

    acq: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    length_m: NDArray[np.float64]
    class_name: NDArray[np.object_]
    beam_m: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        n = len(self.acq)
        if self.beam_m is None:
            object.__setattr__(self, "beam_m", np.full(n, np.nan))
        if not all(len(a) == n for a in (self.lon, self.lat, self.length_m, self.class_name, self.beam_m)):  # type: ignore[arg-type]
            raise UsageError("sightings arrays must all have the same length")


@dataclass
class Visit:
    visit_id: int
    zone: str
    class_name: str
    first_seen: datetime
    last_seen: datetime
    n_obs: int
    lon: float
    lat: float
    length_m: float | None
    arrived_after: datetime | None
    departed_before: datetime | None
    sightings: list[int] = field(default_factory=list)
    # Filled in by detector.evidence.enrich: who and how much.
    beam_m: float | None = None
    tanker_prob: float | None = None
    evidence: str = ""
    mmsi: int | None = None
    dark: bool | None = None
    candidates: str = ""
    barrels_low: float | None = None
    barrels_high: float | None = None


class _Track:
    __slots__ = ("classes", "first_absent", "idx", "length", "misses", "n_len", "xy")

    def __init__(self, idx: int, xy: tuple[float, float], length: float, cls: str) -> None:
        self.idx = [idx]
        self.xy = xy
        self.classes = [cls]
        self.misses = 0
        self.first_absent: int | None = None
        self.length, self.n_len = (length, 1) if length == length else (math.nan, 0)

    def add(self, idx: int, xy: tuple[float, float], length: float, cls: str) -> None:
        self.idx.append(idx)
        self.xy = xy
        self.classes.append(cls)
        self.misses, self.first_absent = 0, None
        if length == length:  # a running mean of the known lengths
            self.n_len += 1
            self.length = length if self.n_len == 1 else self.length + (length - self.length) / self.n_len


def _local_projection(zone: Zone) -> Transformer:
    c = zone.polygon.centroid
    return Transformer.from_crs("EPSG:4326", f"+proj=aeqd +lat_0={c.y} +lon_0={c.x} +datum=WGS84 +units=m", always_xy=True)


def _assign(
    tracks_xy: NDArray[np.float64],
    dets_xy: NDArray[np.float64],
    track_len: NDArray[np.float64],
    det_len: NDArray[np.float64],
    p: LinkParams,
) -> list[tuple[int, int]]:
    """One-to-one matches (track, detection) minimising total distance within the gate."""
    if not len(tracks_xy) or not len(dets_xy):
        return []
    near = cKDTree(dets_xy).query_ball_point(tracks_xy, p.gate_m)
    rows = np.repeat(np.arange(len(tracks_xy)), [len(n) for n in near])
    cols = np.fromiter((j for n in near for j in n), np.int64, len(rows))
    if not len(rows):
        return []
    longer = np.maximum(track_len[rows], det_len[cols])
    ok = ~(np.abs(track_len[rows] - det_len[cols]) > p.length_tol * longer)  # NaN (unknown length) passes
    rows, cols = rows[ok], cols[ok]
    if not len(rows):
        return []
    dist = np.hypot(*(tracks_xy[rows] - dets_xy[cols]).T)
    # Pairs alone in their row and column need no assignment; the rest are
    # solved per connected component, which stays small.
    lone = (np.bincount(rows, minlength=len(tracks_xy))[rows] == 1) & (np.bincount(cols, minlength=len(dets_xy))[cols] == 1)
    matches = list(zip(rows[lone].tolist(), cols[lone].tolist(), strict=True))
    rows, cols, dist = rows[~lone], cols[~lone], dist[~lone]
    if not len(rows):
        return matches
    nt = len(tracks_xy)
    graph = coo_matrix((np.ones(len(rows)), (rows, nt + cols)), shape=(nt + len(dets_xy),) * 2)
    _, label = connected_components(graph, directed=False)
    comp = label[rows]
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    for part in np.split(order, bounds):
        r, c, d = rows[part], cols[part], dist[part]
        ur, ri = np.unique(r, return_inverse=True)
        uc, ci = np.unique(c, return_inverse=True)
        cost = np.full((len(ur), len(uc)), 1e12)
        cost[ri, ci] = d
        a, b = linear_sum_assignment(cost)
        keep = cost[a, b] < 1e12
        matches += list(zip(ur[a[keep]].tolist(), uc[b[keep]].tolist(), strict=True))
    return matches


def link_visits(
    acquisitions: Sequence[Acquisition],
    sightings: Sightings,
    zones: Sequence[Zone],
    links: dict[ZoneKind, LinkParams] | None = None,
) -> list[Visit]:
    """Visits per zone, ordered by zone then first sighting.

    A sighting counts for every zone that contains it (a berth and its port).
    """
    links = {**DEFAULT_LINKS, **(links or {})}
    order = sorted(range(len(acquisitions)), key=lambda i: acquisitions[i].time)
    rank = np.empty(len(acquisitions), np.int64)
    rank[order] = np.arange(len(order))
    visits: list[Visit] = []
    for zone in zones:
        inside = np.flatnonzero(shapely.contains_xy(zone.polygon, sightings.lon, sightings.lat))
        observing = [i for i in order if (fp := acquisitions[i].footprint) is None or fp.intersects(zone.polygon)]
        if not observing:
            continue
        to_local = _local_projection(zone)
        x, y = to_local.transform(sightings.lon[inside], sightings.lat[inside])
        xy = np.column_stack([x, y])
        by_acq = inside[np.argsort(rank[sightings.acq[inside]], kind="stable")]
        pos = {int(s): k for k, s in enumerate(inside)}
        groups = np.split(by_acq, np.flatnonzero(np.diff(rank[sightings.acq[by_acq]])) + 1) if len(by_acq) else []
        at: dict[int, NDArray[np.int64]] = {int(sightings.acq[g[0]]): g for g in groups if len(g)}
        visits += _link_zone(zone, links[zone.kind], acquisitions, observing, at, sightings, xy, pos, len(visits))
    return visits


def _observed(acq: Acquisition, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    if acq.footprint is None:
        return np.ones(len(lon), bool)
    return shapely.contains_xy(acq.footprint, lon, lat)


def _link_zone(
    zone: Zone,
    p: LinkParams,
    acquisitions: Sequence[Acquisition],
    observing: list[int],
    at: dict[int, NDArray[np.int64]],
    s: Sightings,
    xy: NDArray[np.float64],
    pos: dict[int, int],
    first_id: int,
) -> list[Visit]:
    open_tracks: list[_Track] = []
    done: list[tuple[_Track, int | None]] = []
    for a in observing:
        dets = at.get(a, np.zeros(0, np.int64))
        dxy = xy[[pos[int(d)] for d in dets]] if len(dets) else np.zeros((0, 2))
        dlen = s.length_m[dets]
        txy = np.array([t.xy for t in open_tracks], np.float64).reshape(-1, 2)
        tlen = np.array([t.length for t in open_tracks], np.float64)
        matches = _assign(txy, dxy, tlen, dlen, p)
        matched_t = np.zeros(len(open_tracks), bool)
        matched_d = np.zeros(len(dets), bool)
        for ti, di in matches:
            open_tracks[ti].add(
                int(dets[di]), (float(dxy[di, 0]), float(dxy[di, 1])), float(dlen[di]), str(s.class_name[dets[di]])
            )
            matched_t[ti] = matched_d[di] = True
        unmatched = np.flatnonzero(~matched_t)
        if len(unmatched):
            last = [open_tracks[i].idx[-1] for i in unmatched]
            seen = _observed(acquisitions[a], s.lon[last], s.lat[last])
            for i in unmatched[seen]:
                track = open_tracks[i]
                track.misses += 1
                track.first_absent = a if track.first_absent is None else track.first_absent
        still_open = []
        for track in open_tracks:
            if track.misses > p.max_missed:
                done.append((track, track.first_absent))
            else:
                still_open.append(track)
        open_tracks = still_open
        for di in np.flatnonzero(~matched_d).tolist():
            new = int(dets[di])
            open_tracks.append(_Track(new, (float(dxy[di, 0]), float(dxy[di, 1])), float(dlen[di]), str(s.class_name[new])))
    done += [(t, t.first_absent) for t in open_tracks]
    return [
        _visit(first_id + k, zone, t, end, acquisitions, observing, s)
        for k, (t, end) in enumerate(_sorted(done, acquisitions, s))
    ]


def _sorted(
    done: list[tuple[_Track, int | None]], acquisitions: Sequence[Acquisition], s: Sightings
) -> list[tuple[_Track, int | None]]:
    return sorted(done, key=lambda te: (acquisitions[int(s.acq[te[0].idx[0]])].time, s.lon[te[0].idx[0]], s.lat[te[0].idx[0]]))


def _visit(
    vid: int, zone: Zone, t: _Track, end: int | None, acquisitions: Sequence[Acquisition], observing: list[int], s: Sightings
) -> Visit:
    first, last = int(s.acq[t.idx[0]]), int(s.acq[t.idx[-1]])
    lon, lat = float(s.lon[t.idx].mean()), float(s.lat[t.idx].mean())
    # the latest earlier observation of the first sighting's spot
    start = observing.index(first)
    arrived = None
    spot_lon, spot_lat = s.lon[t.idx[:1]], s.lat[t.idx[:1]]
    for b in reversed(observing[max(0, start - 50) : start]):
        if _observed(acquisitions[b], spot_lon, spot_lat)[0]:
            arrived = acquisitions[b].time
            break
    return Visit(
        visit_id=vid,
        zone=zone.name,
        class_name=Counter(t.classes).most_common(1)[0][0],
        first_seen=acquisitions[first].time,
        last_seen=acquisitions[last].time,
        n_obs=len(t.idx),
        lon=lon,
        lat=lat,
        length_m=None if t.n_len == 0 else t.length,
        arrived_after=arrived,
        departed_before=acquisitions[end].time if end is not None else None,
        sightings=list(t.idx),
    )
