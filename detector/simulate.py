"""The Vostochny simulator: months of acquisitions over a port, with the truth.

It draws vessel stays at the zones (tankers at oil berths, bulk carriers at
coal berths, container ships at container berths, ships at anchor), then
acquisitions every 1-5 days with clouds and partial coverage, and records
what each acquisition could see. :mod:`detector.render` turns that into
GeoTIFFs; this module is the schedule and the truth only.

Distributions, all stated here and seeded:

* Arrivals at a berth: a Poisson process, mean gap ``berth_gap_days`` after the
  previous departure; stays log-normal, median 30 h, clipped to 6 h - 6 days.
* Anchorage: arrivals Poisson, mean ``anchor_gap_days``; stays log-normal,
  median 2 days, clipped to 6 h - 8 days. Each ship anchors at its own spot
  (spots at least 2.5 km apart), swings up to 150 m round it between images
  and may be re-anchored within 300 m of its spot (probability 0.2 per day):
  the GFW sample's tanker at anchor stayed within 464 m of its median position.
* Lengths by class (m): tanker 100-250, bulk 150-290, container 150-300,
  other 60-200; beam = length / 6.5.
* Acquisitions: gaps uniform in ``revisit_days``, at 01:30 UTC (a Sentinel-2
  morning pass). With ``partial_prob`` a swath edge leaves part of the area
  unobserved; with ``cloud_prob`` 1-3 clouds (ellipses of 0.5-3 km) hide parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from detector.visits import Acquisition, Visit
from detector.zones import Zone, ZoneKind

__all__ = ["SimConfig", "SimShip", "Simulation", "ais_reports", "simulate"]

_LENGTHS = {"tanker": (100, 250), "bulk": (150, 290), "container": (150, 300), "other": (60, 200)}
_CARGO_CLASS = {"oil": "tanker", "coal": "bulk", "container": "container"}
_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class SimConfig:
    start: datetime = datetime(2024, 3, 1, tzinfo=UTC)
    days: int = 60
    revisit_days: tuple[float, float] = (1.0, 5.0)
    berth_gap_days: float = 3.0
    anchor_gap_days: float = 1.5
    cloud_prob: float = 0.3
    partial_prob: float = 0.2
    seed: int = 0
    dark_oil: float = 0.7  # share of tankers at oil berths with AIS off (the 2024 reporting)
    dark_other: float = 0.1  # share of other vessels with AIS off


@dataclass(frozen=True)
class SimShip:
    """One vessel seen (or hidden) in one acquisition."""

    vessel: int
    stay: int
    class_name: str
    lon: float
    lat: float
    length_m: float
    beam_m: float
    heading_deg: float
    visible: bool


@dataclass
class Simulation:
    zones: list[Zone]
    acquisitions: list[Acquisition]
    ships: list[list[SimShip]]  # per acquisition
    truth: list[Visit] = field(default_factory=list)
    aoi: BaseGeometry | None = None
    stays: list[_Stay] = field(default_factory=list)
    clouds: list[BaseGeometry | None] = field(default_factory=list)  # per acquisition, within its swath


@dataclass
class _Stay:
    vessel: int
    zone: Zone
    class_name: str
    start: datetime
    end: datetime
    lon: float
    lat: float
    length: float
    heading: float
    ais: bool = True

    @property
    def mmsi(self) -> int:
        return 273_000_000 + self.vessel  # synthetic numbers under Russia's MID (273)


def _lognormal_hours(rng: np.random.Generator, median_h: float, low_h: float, high_h: float) -> float:
    return float(np.clip(rng.lognormal(np.log(median_h), 0.7), low_h, high_h))


def _point_in(rng: np.random.Generator, polygon: BaseGeometry, margin_deg: float = 0.0) -> tuple[float, float]:
    area = polygon.buffer(-margin_deg) if margin_deg else polygon
    area = area if not area.is_empty else polygon
    minx, miny, maxx, maxy = area.bounds
    while True:
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if area.contains(shapely.Point(x, y)):
            return float(x), float(y)


def _berth_stays(rng: np.random.Generator, zone: Zone, cfg: SimConfig, first_vessel: int) -> list[_Stay]:
    cls = _CARGO_CLASS.get(zone.cargo or "", "other")
    end_all = cfg.start + timedelta(days=cfg.days)
    t = cfg.start - timedelta(days=float(rng.uniform(0, cfg.berth_gap_days)))
    stays: list[_Stay] = []
    c = zone.polygon.centroid
    minx, miny, maxx, maxy = zone.polygon.bounds
    along = 90.0 if (maxx - minx) * np.cos(np.radians(c.y)) >= (maxy - miny) else 0.0
    while t < end_all:
        start = t
        end = start + timedelta(hours=_lognormal_hours(rng, 30, 6, 144))
        length = float(rng.uniform(*_LENGTHS[cls]))
        jitter = 5.0 / _M_PER_DEG
        stays.append(
            _Stay(
                first_vessel + len(stays),
                zone,
                cls,
                start,
                end,
                c.x + rng.normal(0, jitter),
                c.y + rng.normal(0, jitter),
                length,
                along,
            )
        )
        t = end + timedelta(days=float(rng.exponential(cfg.berth_gap_days)))
    return stays


def _anchor_stays(rng: np.random.Generator, zone: Zone, cfg: SimConfig, first_vessel: int) -> list[_Stay]:
    end_all = cfg.start + timedelta(days=cfg.days)
    minx, miny, maxx, maxy = zone.polygon.bounds
    step = 2500.0 / _M_PER_DEG
    spots = [
        (x, y)
        for x in np.arange(minx + step / 2, maxx, step / np.cos(np.radians(miny)))
        for y in np.arange(miny + step / 2, maxy, step)
    ]
    spots = [s for s in spots if zone.polygon.contains(shapely.Point(s))]
    busy_until = [cfg.start - timedelta(days=30)] * len(spots)
    stays: list[_Stay] = []
    t = cfg.start - timedelta(days=2)
    while t < end_all:
        free = [i for i, b in enumerate(busy_until) if b <= t]
        if free:
            i = int(rng.choice(free))
            end = t + timedelta(hours=_lognormal_hours(rng, 48, 6, 192))
            busy_until[i] = end + timedelta(hours=12)
            cls = str(rng.choice(["tanker", "bulk", "other"]))
            stays.append(
                _Stay(
                    first_vessel + len(stays),
                    zone,
                    cls,
                    t,
                    end,
                    spots[i][0],
                    spots[i][1],
                    float(rng.uniform(*_LENGTHS[cls])),
                    float(rng.uniform(0, 180)),
                )
            )
        t += timedelta(days=float(rng.exponential(cfg.anchor_gap_days)))
    return stays


def _coverage(rng: np.random.Generator, aoi: BaseGeometry, cfg: SimConfig) -> tuple[BaseGeometry, BaseGeometry | None]:
    """What an acquisition saw (its footprint), and the clouds within its swath (None: no cloud)."""
    minx, miny, maxx, maxy = aoi.bounds
    covered = aoi
    if rng.random() < cfg.partial_prob:  # a swath edge: keep one side of a slanted line
        x0 = rng.uniform(minx + 0.2 * (maxx - minx), maxx - 0.2 * (maxx - minx))
        slant = rng.uniform(-0.3, 0.3) * (maxy - miny)
        side = shapely.Polygon([(x0 - slant, miny - 1), (x0 + slant, maxy + 1), (maxx + 1, maxy + 1), (maxx + 1, miny - 1)])
        covered = covered.intersection(side) if rng.random() < 0.5 else covered.difference(side)
    swath, clouds = covered, None
    if rng.random() < cfg.cloud_prob:
        for _ in range(int(rng.integers(1, 4))):
            cx, cy = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            r = rng.uniform(500, 3000) / _M_PER_DEG
            cloud = shapely.affinity.scale(shapely.Point(cx, cy).buffer(r), 1 / np.cos(np.radians(cy)), rng.uniform(0.5, 1.0))
            covered = covered.difference(cloud)
            clouds = cloud if clouds is None else clouds.union(cloud)
    return shapely.make_valid(covered), None if clouds is None else shapely.make_valid(swath.intersection(clouds))


def simulate(zones: list[Zone], cfg: SimConfig = SimConfig()) -> Simulation:
    """Draw stays and acquisitions over ``zones`` and the truth visits each zone allows."""
    rng = np.random.default_rng(cfg.seed)
    stays: list[_Stay] = []
    for zone in zones:
        if zone.kind is ZoneKind.BERTH:
            stays += _berth_stays(rng, zone, cfg, len(stays))
        elif zone.kind is ZoneKind.ANCHORAGE:
            stays += _anchor_stays(rng, zone, cfg, len(stays))
    for stay in stays:
        dark = cfg.dark_oil if stay.zone.cargo == "oil" else cfg.dark_other
        stay.ais = bool(rng.random() >= dark)
    minx, miny, maxx, maxy = shapely.union_all([z.polygon for z in zones]).bounds
    pad = 0.01
    aoi = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    acquisitions: list[Acquisition] = []
    t = cfg.start.replace(hour=1, minute=30, second=0, microsecond=0)
    end_all = cfg.start + timedelta(days=cfg.days)
    clouds: list[BaseGeometry | None] = []
    while t < end_all:
        footprint, cloud = _coverage(rng, aoi, cfg)
        acquisitions.append(Acquisition(t, footprint))
        clouds.append(cloud)
        t += timedelta(days=float(np.round(rng.uniform(*cfg.revisit_days))))
    ships: list[list[SimShip]] = []
    for acq in acquisitions:
        here = []
        for k, s in enumerate(stays):
            if not s.start <= acq.time < s.end:
                continue
            lon, lat, heading = s.lon, s.lat, s.heading
            if s.zone.kind is ZoneKind.ANCHORAGE:
                # Re-anchored (probability 0.2 a day) somewhere within 300 m of its spot;
                # the offset holds until the next re-anchoring.
                days_in = int((acq.time - s.start).total_seconds() // 86400)
                day_rng = np.random.default_rng([cfg.seed, k])
                moves = day_rng.random(days_in + 1) < 0.2
                offsets = day_rng.uniform(0, 1, (days_in + 1, 2))
                if moves.any():
                    r, a = (
                        300.0 * np.sqrt(offsets[np.flatnonzero(moves)[-1]][0]),
                        2 * np.pi * offsets[np.flatnonzero(moves)[-1]][1],
                    )
                    lon += r * np.cos(a) / _M_PER_DEG / np.cos(np.radians(lat))
                    lat += r * np.sin(a) / _M_PER_DEG
                swing = rng.uniform(0, 150) / _M_PER_DEG
                angle = rng.uniform(0, 2 * np.pi)
                lon += swing * np.cos(angle) / np.cos(np.radians(lat))
                lat += swing * np.sin(angle)
                heading = float(np.degrees(angle) % 180)
            visible = acq.footprint is None or acq.footprint.contains(shapely.Point(lon, lat))
            here.append(
                SimShip(s.vessel, k, s.class_name, float(lon), float(lat), s.length, s.length / 6.5, heading, bool(visible))
            )
        ships.append(here)
    sim = Simulation(list(zones), acquisitions, ships, aoi=aoi, stays=stays, clouds=clouds)
    sim.truth = _truth(sim, stays)
    return sim


def _truth(sim: Simulation, stays: list[_Stay]) -> list[Visit]:
    """The visits each zone can know of: stays seen at least once, with the bounds coverage gives."""
    truth: list[Visit] = []
    for zone in sim.zones:
        visits = []
        for k, stay in enumerate(stays):
            seen = [
                (i, sh)
                for i, ships in enumerate(sim.ships)
                for sh in ships
                if sh.stay == k and sh.visible and zone.polygon.contains(shapely.Point(sh.lon, sh.lat))
            ]
            if not seen:
                continue
            first_i, first = seen[0]
            last_i, last = seen[-1]
            arrived = next(
                (
                    sim.acquisitions[j].time
                    for j in range(first_i - 1, -1, -1)
                    if _sees(sim.acquisitions[j], first.lon, first.lat)
                ),
                None,
            )
            departed = next(
                (
                    sim.acquisitions[j].time
                    for j in range(last_i + 1, len(sim.acquisitions))
                    if _sees(sim.acquisitions[j], last.lon, last.lat)
                ),
                None,
            )
            visits.append(
                Visit(
                    visit_id=0,
                    zone=zone.name,
                    class_name=stay.class_name,
                    first_seen=sim.acquisitions[first_i].time,
                    last_seen=sim.acquisitions[last_i].time,
                    n_obs=len(seen),
                    lon=float(np.mean([s.lon for _, s in seen])),
                    lat=float(np.mean([s.lat for _, s in seen])),
                    length_m=stay.length,
                    arrived_after=arrived,
                    departed_before=departed,
                    mmsi=stay.mmsi if stay.ais else None,
                    dark=not stay.ais,
                )
            )
        visits.sort(key=lambda v: (v.first_seen, v.lon, v.lat))
        for v in visits:
            v.visit_id = len(truth)
            truth.append(v)
    return truth


def _sees(acq: Acquisition, lon: float, lat: float) -> bool:
    """Whether ``acq`` observed the spot, as the linker judges it."""
    return acq.footprint is None or acq.footprint.contains(shapely.Point(lon, lat))


_AIS_TYPE = {"tanker": 80, "bulk": 70, "container": 71, "other": 52}


def ais_reports(sim: Simulation, every_h: float = 2.0) -> list[tuple[int, datetime, float, float, int, float]]:
    """AIS of the vessels that broadcast: ``(mmsi, time, lon, lat, ship type, length)`` every ``every_h`` hours of each stay."""
    rows = []
    for stay in sim.stays:
        if not stay.ais:
            continue
        t = stay.start
        while t <= stay.end:
            rows.append((stay.mmsi, t, stay.lon, stay.lat, _AIS_TYPE[stay.class_name], round(stay.length)))
            t += timedelta(hours=every_h)
    return sorted(rows, key=lambda r: (r[0], r[1]))
