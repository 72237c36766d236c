"""Linking detections across acquisitions into vessel visits, per zone.

Satellite images are snapshots: a vessel at a berth on Monday and again on
Thursday may be one visit or two. The linker decides by these rules.

* **Coverage.** Each acquisition has a footprint of valid pixels (or observes
  everything when unknown). A visit ends only when a later acquisition
  *observed its spot* and the vessel was not there; an acquisition that did
  not see the spot neither ends nor starts anything.
* **Association by evidence, within gates by zone kind.** Consecutive
  observations are matched one to one (a global assignment over candidate
  pairs from a k-d tree, so the cost grows about as n log n) within a gate
  that depends on the zone kind: a moored ship hardly moves, a ship at anchor
  swings round its anchor and is re-anchored. Lengths, where known, must
  agree within a ratio. Inside the gates a pair links only when one vessel is
  likelier than two, weighing (``_Evidence``) how long vessels stay in this
  zone (fitted to the zone's own images: how often a spot seen occupied is
  occupied in the next image that saw it, given the gap), how busy the spot
  is, how well the lengths agree, and at anchorages how far apart the two
  sightings lie. At a berth the hard case is a turnover between two images:
  one ship leaves, another of similar length moors at the same spot.
* **Misses.** Detectors miss ships (recall is never 1). A visit may survive
  ``max_missed`` observed absences in a row (default 0: the first observed
  absence ends it, since at a busy berth one empty image between two ships is
  far more common than a missed ship); ``departed_before`` is the first
  observed absence.
* **Counting.** The linked visits are what was seen; a vessel the detector
  missed in every image it was in is in no list. :func:`expected_vessels`
  turns each visit into the number of real visits it stands for, from the
  detector's recall and precision and the doubt of its links, and their sum
  is the estimated count (``visit_counts.csv``'s ``estimated``).

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
from scipy.signal import fftconvolve
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.special import ndtr
from shapely.geometry.base import BaseGeometry

from detector.errors import UsageError
from detector.zones import Zone, ZoneKind

__all__ = [
    "DEFAULT_LINKS",
    "Acquisition",
    "LinkParams",
    "Sightings",
    "Visit",
    "expected_vessels",
    "link_visits",
    "outside_every_zone",
    "zone_totals",
]


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
            Within it, length agreement is weighed as a half-normal of spread
            ``length_tol / 2.5`` against how the zone's lengths differ.
        spread_m: how far one vessel's two sightings are apart, per axis (a
            normal's sigma): detection noise, swinging round an anchor,
            re-anchoring. None: position says nothing of identity here, since
            every ship at a berth lies at the same spot.
        stay_median_h, stay_sigma: the prior on how long a vessel stays, as a
            lognormal (median in hours, sigma of the log). Weighed against the
            chance that one vessel left and another came between two images.
    """

    gate_m: float
    max_missed: int = 0
    length_tol: float = 0.15
    spread_m: float | None = None
    stay_median_h: float = 30.0
    stay_sigma: float = 1.0


# Stays: UNCTAD's port-call statistics put the median port call of tankers
# near one day, of dry bulk carriers near two; waiting at anchor varies more.
DEFAULT_LINKS: dict[ZoneKind, LinkParams] = {
    ZoneKind.BERTH: LinkParams(100.0),
    ZoneKind.TERMINAL: LinkParams(300.0),
    ZoneKind.ANCHORAGE: LinkParams(1000.0, spread_m=250.0, stay_median_h=48.0, stay_sigma=1.2),
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
    # Counting: images that saw the spot from first to last sighting, and the
    # expected number of further vessels merged into this visit (the chance,
    # summed over its links, that each joined two vessels).
    n_looks: int = 1
    extra_vessels: float = 0.0
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
    __slots__ = ("classes", "doubt", "first_absent", "idx", "length", "misses", "n_len", "xy")

    def __init__(self, idx: int, xy: tuple[float, float], length: float, cls: str) -> None:
        self.idx = [idx]
        self.xy = xy
        self.classes = [cls]
        self.misses = 0
        self.first_absent: int | None = None
        self.doubt = 0.0  # the chance, summed over its links, that each joined two vessels
        self.length, self.n_len = (length, 1) if length == length else (math.nan, 0)

    def add(self, idx: int, xy: tuple[float, float], length: float, cls: str) -> None:
        self.idx.append(idx)
        self.xy = xy
        self.classes.append(cls)
        self.misses, self.first_absent = 0, None
        if length == length:  # a running mean of the known lengths
            self.n_len += 1
            self.length = length if self.n_len == 1 else self.length + (length - self.length) / self.n_len


@dataclass
class _ZoneImages:
    """One zone's sightings, image by image, with the evidence model fitted to them."""

    zone: Zone
    ev: _Evidence
    acquisitions: Sequence[Acquisition]
    observing: list[int]  # the images that saw some of the zone, in time order
    at: dict[int, NDArray[np.int64]]  # image -> its sightings in the zone
    s: Sightings
    xy: NDArray[np.float64]  # local metres of the zone's sightings
    pos: dict[int, int]  # sighting -> its row in xy

    def where(self, dets: NDArray[np.int64]) -> NDArray[np.float64]:
        return self.xy[[self.pos[int(d)] for d in dets]] if len(dets) else np.zeros((0, 2))


def _local_projection(zone: Zone) -> Transformer:
    c = zone.polygon.centroid
    return Transformer.from_crs("EPSG:4326", f"+proj=aeqd +lat_0={c.y} +lon_0={c.x} +datum=WGS84 +units=m", always_xy=True)


class _Evidence:
    """Log likelihood ratios, same vessel against another, for pairs of sightings in one zone.

    Three pieces of evidence, multiplied as if independent:

    * time: the vessel stayed for the gap (the residual of a lognormal stay,
      sampled at a random moment of it) against it left and another came, as
      often as the spot is busy (vessels seen within the gate per image);
    * position (where ``spread_m`` is set): a normal of that spread around the
      last sighting against another vessel anywhere within the gate;
    * length: a half-normal of log lengths of spread ``length_tol / 2.5``
      against the spread of the zone's own lengths (two different vessels).
    """

    def __init__(self, p: LinkParams, xy: NDArray[np.float64], lengths: NDArray[np.float64], n_acq: int) -> None:
        self.p = p
        self.mu, self.sigma = math.log(p.stay_median_h), p.stay_sigma
        # how many vessels lie near each spot per image: sightings counted on a
        # grid of quarter-gate cells, summed over a disc of the gate's radius
        self.cell = p.gate_m / 4
        self.origin = (xy.min(0) if len(xy) else np.zeros(2)) - 5 * self.cell
        cells = ((xy - self.origin) // self.cell).astype(np.int64)
        counts = np.zeros(tuple(cells.max(0) + 6) if len(cells) else (1, 1))
        np.add.at(counts, (cells[:, 0], cells[:, 1]), 1.0)
        i, j = np.mgrid[-4:5, -4:5]
        self.near = fftconvolve(counts, (np.hypot(i, j) <= 4).astype(float), mode="same") if len(cells) else counts
        self.n_acq = max(n_acq, 1)
        self.len_sigma = max(p.length_tol / 2.5, 1e-9)
        logs = np.log(lengths[np.isfinite(lengths) & (lengths > 0)])
        # how two different vessels' log lengths differ: sqrt(2) times the zone's
        # spread (robust), shrunk toward the merchant fleet's (0.3, ships of 100-
        # 300 m) by ten sightings' weight: a few sightings of one ship say little
        zone_sigma = 1.4826 * float(np.median(np.abs(logs - np.median(logs)))) if len(logs) else 0.3
        spread = math.sqrt((len(logs) * zone_sigma**2 + 10 * 0.3**2) / (len(logs) + 10))
        self.diff_sigma = math.sqrt(2) * max(spread, 0.05)

    def busy(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        """Vessels seen within the gate of each spot per image: the chance another is there."""
        c = np.clip(((xy - self.origin) // self.cell).astype(np.int64), 0, np.array(self.near.shape) - 1)
        return np.clip(self.near[c[:, 0], c[:, 1]] / self.n_acq, 1e-6, 1.0)

    def log_lr(
        self,
        dist_m: NDArray[np.float64],
        len_a: NDArray[np.float64],
        len_b: NDArray[np.float64],
        dt_h: NDArray[np.float64],
        busy: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        stay = _stays(dt_h, self.mu, self.sigma)
        out = np.log(stay) - np.log((1 - stay) * busy)
        if self.p.spread_m is not None:  # another vessel would lie anywhere in the gate
            sig = self.p.spread_m
            out += -(dist_m**2) / (2 * sig**2) + math.log(self.p.gate_m**2 / (2 * sig**2))
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.abs(np.log(len_a) - np.log(len_b))
        known = np.isfinite(d)
        out[known] += (
            math.log(self.diff_sigma / self.len_sigma)
            - d[known] ** 2 / (2 * self.len_sigma**2)
            + d[known] ** 2 / (2 * self.diff_sigma**2)
        )
        return np.asarray(out)


def _assign(
    tracks_xy: NDArray[np.float64],
    dets_xy: NDArray[np.float64],
    track_len: NDArray[np.float64],
    det_len: NDArray[np.float64],
    track_dt_h: NDArray[np.float64],
    ev: _Evidence,
) -> list[tuple[int, int, float]]:
    """One-to-one matches (track, detection, log likelihood ratio) within the gates, of the most likely pairing.

    A pair links only when it is likelier one vessel than two; among those the
    assignment maximises the summed log likelihood ratio.
    """
    p = ev.p
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
    score = ev.log_lr(dist, track_len[rows], det_len[cols], track_dt_h[rows], ev.busy(tracks_xy)[rows])
    ok = score > 0
    rows, cols, score = rows[ok], cols[ok], score[ok]
    if not len(rows):
        return []
    # Pairs alone in their row and column need no assignment; the rest are
    # solved per connected component, which stays small.
    lone = (np.bincount(rows, minlength=len(tracks_xy))[rows] == 1) & (np.bincount(cols, minlength=len(dets_xy))[cols] == 1)
    matches = list(zip(rows[lone].tolist(), cols[lone].tolist(), score[lone].tolist(), strict=True))
    rows, cols, score = rows[~lone], cols[~lone], score[~lone]
    if not len(rows):
        return matches
    nt = len(tracks_xy)
    graph = coo_matrix((np.ones(len(rows)), (rows, nt + cols)), shape=(nt + len(dets_xy),) * 2)
    _, label = connected_components(graph, directed=False)
    comp = label[rows]
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    for part in np.split(order, bounds):
        r, c, w = rows[part], cols[part], score[part]
        ur, ri = np.unique(r, return_inverse=True)
        uc, ci = np.unique(c, return_inverse=True)
        cost = np.zeros((len(ur), len(uc)))  # zero: left apart
        cost[ri, ci] = -w
        a, b = linear_sum_assignment(cost)
        keep = cost[a, b] < 0
        matches += list(zip(ur[a[keep]].tolist(), uc[b[keep]].tolist(), (-cost[a, b][keep]).tolist(), strict=True))
    return matches


def outside_every_zone(acquisitions: Sequence[Acquisition], sightings: Sightings, zones: Sequence[Zone]) -> bool:
    """True when the images and their detections all lie outside ``zones``: most likely another port's zones.

    Judged by the images' footprints where they have them, and by the
    detections; False when neither says anything (no footprint, no detection).
    """
    if not zones or not acquisitions:
        return False
    area = shapely.union_all([z.polygon for z in zones])
    footprints = [a.footprint for a in acquisitions if a.footprint is not None]
    if any(fp.intersects(area) for fp in footprints):
        return False
    if shapely.contains_xy(area, sightings.lon, sightings.lat).any():
        return False
    return bool(footprints) or len(sightings.acq) > 0


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
    prepared: list[tuple[_ZoneImages, tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]]] = []
    for zone in zones:
        inside = np.flatnonzero(shapely.contains_xy(zone.polygon, sightings.lon, sightings.lat))
        observing = [i for i in order if (fp := acquisitions[i].footprint) is None or fp.intersects(zone.polygon)]
        if not observing:
            continue
        to_local = _local_projection(zone)
        x, y = to_local.transform(sightings.lon[inside], sightings.lat[inside])
        xy = np.column_stack([x, y])
        by_acq = inside[np.argsort(rank[sightings.acq[inside]], kind="stable")]
        groups = np.split(by_acq, np.flatnonzero(np.diff(rank[sightings.acq[by_acq]])) + 1) if len(by_acq) else []
        z = _ZoneImages(
            zone,
            _Evidence(links[zone.kind], xy, sightings.length_m[inside], len(observing)),
            acquisitions,
            observing,
            {int(sightings.acq[g[0]]): g for g in groups if len(g)},
            sightings,
            xy,
            {int(s): k for k, s in enumerate(inside)},
        )
        prepared.append((z, _transitions(z)))
    # Zones that share a stay prior (the berths of a port and the port itself)
    # share one fitted stay: a berth alone rarely has the images to fit one.
    pools: dict[tuple[float, float], list[int]] = {}
    for k, (z, _) in enumerate(prepared):
        pools.setdefault((z.ev.p.stay_median_h, z.ev.p.stay_sigma), []).append(k)
    for (median_h, sigma), members in pools.items():
        dt_h, occupied, busy = (np.concatenate([prepared[k][1][j] for k in members]) for j in range(3))
        fitted = _fit_stays(math.log(median_h), sigma, dt_h, occupied.astype(bool), busy)
        for k in members:
            prepared[k][0].ev.mu, prepared[k][0].ev.sigma = fitted
    visits: list[Visit] = []
    for z, _ in prepared:
        visits += _link_zone(z, len(visits))
    return visits


def _stays(dt_h: NDArray[np.float64], mu: float, sigma: float) -> NDArray[np.float64]:
    """P(still there after dt | there at a random moment of its stay), for a lognormal stay."""
    x = np.maximum(dt_h, 1e-3)
    d1 = (mu + sigma**2 - np.log(x)) / sigma
    d2 = (mu - np.log(x)) / sigma
    return np.asarray(np.clip(ndtr(d1) - x * ndtr(d2) / math.exp(mu + sigma**2 / 2), 1e-9, 1 - 1e-9))


def _fit_stays(
    mu0: float, sigma0: float, dt_h: NDArray[np.float64], occupied: NDArray[np.bool_], busy: NDArray[np.float64]
) -> tuple[float, float]:
    """The stay (log median, sigma) from the images, the prior ``mu0, sigma0`` weighing in.

    Each sighting, and the next image that saw its spot: still occupied with
    probability stays(dt) + (1 - stays(dt)) * busy. A grid search of the
    penalised likelihood over medians of 2 h to 60 days and sigmas 0.3-2; the
    prior is a normal of 0.25 on the log median and on log sigma: it outweighs
    a few dozen images, which leave the fit loose.
    """
    if len(dt_h) < 10:
        return mu0, sigma0
    if len(dt_h) > 5000:  # plenty for two parameters
        keep = np.random.default_rng(0).choice(len(dt_h), 5000, replace=False)
        dt_h, occupied, busy = dt_h[keep], occupied[keep], busy[keep]
    best = (-math.inf, mu0, sigma0)
    for sigma in np.geomspace(0.3, 2.0, 13):
        for mu in np.log(np.geomspace(2.0, 24 * 60.0, 49)):
            stay = _stays(dt_h, float(mu), float(sigma))
            p_occ = np.clip(stay + (1 - stay) * busy, 1e-9, 1 - 1e-9)
            ll = float(np.sum(np.where(occupied, np.log(p_occ), np.log1p(-p_occ))))
            ll -= ((mu - mu0) ** 2 + math.log(sigma / sigma0) ** 2) / (2 * 0.25**2)
            if ll > best[0]:
                best = (ll, float(mu), float(sigma))
    return best[1], best[2]


def _transitions(z: _ZoneImages) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    """For each sighting, the next image that saw its spot: the gap, whether a vessel was there, how busy the spot is."""
    dts: list[float] = []
    occupied: list[bool] = []
    spots: list[NDArray[np.float64]] = []
    acquisitions, s = z.acquisitions, z.s
    for k, a in enumerate(z.observing):
        dets = z.at.get(a)
        if dets is None:
            continue
        here = z.where(dets)
        waiting = np.ones(len(dets), bool)
        for b in z.observing[k + 1 : k + 11]:
            seen = waiting & _observed(acquisitions[b], s.lon[dets], s.lat[dets])
            if seen.any():
                later = z.at.get(b)
                there = np.zeros(len(dets), bool)
                if later is not None:
                    near = cKDTree(z.where(later)).query(here[seen], distance_upper_bound=z.ev.p.gate_m)[0]
                    there[seen] = np.isfinite(near)
                dts += [(acquisitions[b].time - acquisitions[a].time).total_seconds() / 3600] * int(seen.sum())
                occupied += there[seen].tolist()
                spots.append(here[seen])
                waiting &= ~seen
            if not waiting.any():
                break
    where = np.concatenate(spots) if spots else np.zeros((0, 2))
    return np.array(dts), np.array(occupied, bool), z.ev.busy(where)


def _observed(acq: Acquisition, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    if acq.footprint is None:
        return np.ones(len(lon), bool)
    return shapely.contains_xy(acq.footprint, lon, lat)


def _link_zone(z: _ZoneImages, first_id: int) -> list[Visit]:
    zone, ev, acquisitions, observing, at, s = z.zone, z.ev, z.acquisitions, z.observing, z.at, z.s
    p = ev.p
    open_tracks: list[_Track] = []
    done: list[tuple[_Track, int | None]] = []
    for a in observing:
        dets = at.get(a, np.zeros(0, np.int64))
        dxy = z.where(dets)
        dlen = s.length_m[dets]
        txy = np.array([t.xy for t in open_tracks], np.float64).reshape(-1, 2)
        tlen = np.array([t.length for t in open_tracks], np.float64)
        now = acquisitions[a].time
        dt_h = np.array([(now - acquisitions[int(s.acq[t.idx[-1]])].time).total_seconds() / 3600 for t in open_tracks])
        matches = _assign(txy, dxy, tlen, dlen, dt_h, ev)
        matched_t = np.zeros(len(open_tracks), bool)
        matched_d = np.zeros(len(dets), bool)
        for ti, di, score in matches:
            open_tracks[ti].doubt += 1 / (1 + math.exp(min(score, 700)))
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
    order = {a: k for k, a in enumerate(observing)}
    return [
        _visit(first_id + k, zone, t, end, acquisitions, observing, order, s)
        for k, (t, end) in enumerate(_sorted(done, acquisitions, s))
    ]


def _sorted(
    done: list[tuple[_Track, int | None]], acquisitions: Sequence[Acquisition], s: Sightings
) -> list[tuple[_Track, int | None]]:
    return sorted(done, key=lambda te: (acquisitions[int(s.acq[te[0].idx[0]])].time, s.lon[te[0].idx[0]], s.lat[te[0].idx[0]]))


def _visit(
    vid: int,
    zone: Zone,
    t: _Track,
    end: int | None,
    acquisitions: Sequence[Acquisition],
    observing: list[int],
    order: dict[int, int],
    s: Sightings,
) -> Visit:
    first, last = int(s.acq[t.idx[0]]), int(s.acq[t.idx[-1]])
    lon, lat = float(s.lon[t.idx].mean()), float(s.lat[t.idx].mean())
    # the latest earlier observation of the first sighting's spot
    start = order[first]
    arrived = None
    spot_lon, spot_lat = s.lon[t.idx[:1]], s.lat[t.idx[:1]]
    looks = sum(bool(_observed(acquisitions[b], spot_lon, spot_lat)[0]) for b in observing[start : order[last] + 1])
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
        n_looks=max(looks, len(t.idx)),
        extra_vessels=t.doubt,
    )


def expected_vessels(visit: Visit, recall: float = 1.0, precision: float = 1.0) -> float:
    """How many real visits this one stands for, on average.

    A visit of ``n_looks`` images is found when the detector finds the vessel in
    at least one, with probability ``1 - (1 - recall) ** n_looks``; so each found
    one stands for the inverse of that (Horvitz-Thompson), times the chance it
    is a vessel at all (``precision``), times the vessels it may hold
    (``1 + extra_vessels``). Take recall and precision from the model card of
    the detector at its operating threshold, for imagery like yours.
    """
    if not (0 < recall <= 1 and 0 < precision <= 1):
        raise UsageError(f"recall and precision must lie in (0, 1], got {recall} and {precision}")
    return precision * (1 + visit.extra_vessels) / (1 - (1 - recall) ** max(visit.n_looks, 1))


def zone_totals(visits: Sequence[Visit], recall: float = 1.0, precision: float = 1.0) -> dict[str, tuple[int, float]]:
    """Per zone with visits: how many were linked, and how many real visits they stand for (:func:`expected_vessels`)."""
    totals: dict[str, tuple[int, float]] = {}
    for v in visits:
        linked, estimated = totals.get(v.zone, (0, 0.0))
        totals[v.zone] = (linked + 1, estimated + expected_vessels(v, recall, precision))
    return totals
