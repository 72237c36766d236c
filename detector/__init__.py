"""Shipwatch: find ships in satellite GeoTIFFs of a port and count their visits.

The public surface::

    import detector
    scene = detector.open_scene("port.tif")
    report = detector.run_detect([Path("port.tif")], Path("out"), detector.DetectOptions())

    visits = detector.link_visits(acquisitions, sightings, detector.load_zones())

Lower-level parts (engine, merge, georef, store, review, report) live in their modules.
"""

from detector.engine import DetectSettings, SceneResult, detect_scene
from detector.errors import GeoreferenceError, SceneReadError, ShipwatchError, StoreError, UsageError, WeightsError
from detector.job import DetectOptions, JobReport, run_detect
from detector.models import ModelSpec, registry, resolve_weights
from detector.raster import Scene, SceneReader, open_scene
from detector.records import Detections, Ship
from detector.store import Store
from detector.visits import Acquisition, Sightings, Visit, link_visits
from detector.zones import Zone, ZoneKind, load_zones

__version__ = "0.1.0"

__all__ = [
    "Acquisition",
    "DetectOptions",
    "DetectSettings",
    "Detections",
    "GeoreferenceError",
    "JobReport",
    "ModelSpec",
    "Scene",
    "SceneReadError",
    "SceneReader",
    "SceneResult",
    "Ship",
    "ShipwatchError",
    "Sightings",
    "Store",
    "StoreError",
    "UsageError",
    "Visit",
    "WeightsError",
    "Zone",
    "ZoneKind",
    "detect_scene",
    "link_visits",
    "load_zones",
    "open_scene",
    "registry",
    "resolve_weights",
    "run_detect",
]
