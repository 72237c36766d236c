"""The visit linker against the simulator's truth."""

from collections import Counter
from datetime import datetime

import numpy as np
import pytest
import shapely

from detector.errors import UsageError
from detector.simulate import SimConfig, Simulation, simulate
from detector.visits import DEFAULT_LINKS, LinkParams, Sightings, Visit, expected_vessels, link_visits
from detector.zones import load_zones


def detections(sim: Simulation, recall: float = 1.0, false_share: float = 0.0, noise_m: float = 0.0, seed: int = 1) -> Sightings:
    """What a detector with this recall, share of false alarms and position noise would report."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, ships in enumerate(sim.ships):
        for s in ships:
            if s.visible and rng.random() < recall:
                dx, dy = rng.normal(0, noise_m, 2) / 111_320
                length = s.length_m * (rng.normal(1, 0.05) if noise_m else 1.0)
                rows.append((i, s.lon + dx / np.cos(np.radians(s.lat)), s.lat + dy, length, s.class_name))
    minx, miny, maxx, maxy = sim.aoi.bounds  # type: ignore[union-attr]
    wanted = round(false_share * len(rows) / (1 - false_share))
    while wanted:
        i = int(rng.integers(len(sim.acquisitions)))
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        fp = sim.acquisitions[i].footprint
        if fp is None or fp.contains(shapely.Point(x, y)):
            rows.append((i, x, y, rng.uniform(20, 150), "other"))
            wanted -= 1
    cols = list(zip(*rows, strict=True))
    return Sightings(
        np.array(cols[0]),
        np.array(cols[1], float),
        np.array(cols[2], float),
        np.array(cols[3], float),
        np.array(cols[4], dtype=object),
    )


def key(v: Visit) -> tuple:
    return (v.zone, v.first_seen, v.last_seen, v.n_obs, v.arrived_after, v.departed_before)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perfect_detections_recover_every_visit_exactly(seed: int) -> None:
    sim = simulate(load_zones(), SimConfig(days=240, seed=seed))
    # Perfect detections measure lengths exactly: the tolerance can be as tight.
    exact = {kind: LinkParams(p.gate_m, p.max_missed, length_tol=1e-6) for kind, p in DEFAULT_LINKS.items()}
    found = link_visits(sim.acquisitions, detections(sim), sim.zones, exact)
    assert len(sim.truth) > 250
    assert Counter(map(key, found)) == Counter(map(key, sim.truth))


def test_realistic_detection_errors() -> None:
    """Recall 0.9, 5% false alarms, 10 m noise: the estimated count within 5% of the truth.

    No linker can count what the detector never saw: with recall 0.9 a vessel
    seen in one image is lost one time in ten, and most berth stays here are
    seen once. So the linked count falls short (even with perfect identities
    it would, by 6-8% on these seeds), and the count to trust is the
    estimate, which weighs each visit by the detector's stated recall and
    precision (:func:`expected_vessels`).
    """
    linked, estimated = [], []
    for seed in range(4):
        sim = simulate(load_zones(), SimConfig(days=240, seed=seed))
        found = link_visits(sim.acquisitions, detections(sim, 0.9, 0.05, 10.0, seed), sim.zones)
        linked.append(len(found) / len(sim.truth) - 1)
        estimated.append(sum(expected_vessels(v, recall=0.9, precision=0.95) for v in found) / len(sim.truth) - 1)
    print(
        f"recall 0.9, 5% false alarms, 10 m noise: linked {np.round(linked, 3).tolist()}, estimated {np.round(estimated, 3).tolist()}"
    )
    assert max(abs(e) for e in estimated) <= 0.05
    assert all(e < 0 for e in linked)  # the misses the estimate makes up for


def test_estimate_needs_a_rate() -> None:
    v = Visit(0, "z", "ship", datetime(2024, 1, 1), datetime(2024, 1, 1), 1, 0.0, 0.0, None, None, None, n_looks=2)
    assert expected_vessels(v) == 1.0
    assert expected_vessels(v, recall=0.5, precision=0.9) == pytest.approx(0.9 / 0.75)
    with pytest.raises(UsageError, match="recall and precision"):
        expected_vessels(v, recall=0.0)
