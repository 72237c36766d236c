"""The main job on the embedded default: simulated Vostochny, detect, visits, counts beside the truth."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detector.ais import read_ais
from detector.evidence import visits_with_evidence
from detector.export import atomic_write_text, write_visits
from detector.gpkg import visit_layers, write_gpkg
from detector.job import DetectOptions, JobReport, Progress, run_detect
from detector.render import render_acquisition
from detector.report import ReportInput, write_report
from detector.sightings import load_store
from detector.simulate import SimConfig, Simulation, ais_reports, simulate
from detector.visits import Visit
from detector.zones import DEFAULT_ZONES, load_zones

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    simulation: Simulation
    detect: JobReport
    visits: list[Visit]

    def table(self) -> list[tuple[str, str, int, int]]:
        """(zone, class, counted visits, true visits) per zone and class (tanker / other)."""

        def kind(name: str) -> str:
            return "tanker" if name == "tanker" else "other"

        counted = Counter((v.zone, kind(v.class_name)) for v in self.visits)
        truth = Counter((v.zone, kind(v.class_name)) for v in self.simulation.truth)
        return [
            (z.name, c, counted.get((z.name, c), 0), truth.get((z.name, c), 0))
            for z in self.simulation.zones
            for c in ("tanker", "other")
            if counted.get((z.name, c)) or truth.get((z.name, c))
        ]


def _write_truth(sim: Simulation, folder: Path) -> None:
    write_visits(folder, sim.truth)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["acquired_at", "vessel", "class", "lon", "lat", "length_m", "beam_m", "heading_deg", "visible"])
    for acq, ships in zip(sim.acquisitions, sim.ships, strict=True):
        for s in ships:
            w.writerow([acq.time.isoformat().replace("+00:00", "Z"), s.vessel, s.class_name, round(s.lon, 7), round(s.lat, 7),
                        round(s.length_m, 1), round(s.beam_m, 1), round(s.heading_deg, 1), int(s.visible)])  # fmt: skip
    atomic_write_text(folder / "ships.csv", buf.getvalue())


def _write_ais(sim: Simulation, path: Path) -> None:
    """The simulated AIS of the vessels that broadcast, as MarineCadastre CSV."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["MMSI", "BaseDateTime", "LAT", "LON", "SOG", "VesselType", "Length"])
    for mmsi, when, lon, lat, kind, length in ais_reports(sim):
        w.writerow([mmsi, when.strftime("%Y-%m-%dT%H:%M:%S"), round(lat, 6), round(lon, 6), 0.0, kind, length])
    atomic_write_text(path, buf.getvalue())


def run_demo(
    out: Path,
    config: SimConfig | None = None,
    progress: Progress | None = None,
    on_render: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Simulate ``config.days`` of Vostochny, write scenes and truth, detect, link visits.

    Writes ``out/scenes/<time>/`` band folders, ``out/truth/`` (visits.csv,
    visit_counts.csv, ships.csv), the simulated AIS of the vessels that
    broadcast (``out/ais.csv``), ``out/detections.*`` with the store, and
    ``out/visits/`` and ``out/report.html``.
    """
    config = config or SimConfig()
    zones = load_zones()
    sim = simulate(zones, config)
    folders = []
    for i, acq in enumerate(sim.acquisitions):
        folder = out / "scenes" / acq.time.strftime("%Y-%m-%dT%H%M")
        if not any(folder.glob("*_B08.tif")):
            render_acquisition(sim, i, folder, seed=config.seed)
        folders.append(folder)
        if on_render:
            on_render(i + 1, len(sim.acquisitions))
    _write_truth(sim, out / "truth")
    _write_ais(sim, out / "ais.csv")
    report = run_detect(folders, out, DetectOptions(aoi=DEFAULT_ZONES), progress, command="demo")
    store = load_store(out / "shipwatch.db")
    visits = visits_with_evidence(store.acquisitions, store.sightings, zones, tracks=read_ais(out / "ais.csv"))
    write_visits(out / "visits", visits)
    write_gpkg(out / "visits" / "visits.gpkg", visit_layers(visits, zones))
    write_report(ReportInput(visits, zones, store, title="Shipwatch demo: simulated Vostochny"), out)
    return DemoResult(sim, report, visits)
