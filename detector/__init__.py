"""Shipwatch: find ships in satellite GeoTIFFs of a port and count their visits.

The public surface::

    import detector
    scene = detector.open_scene("port.tif")
    report = detector.run_detect([Path("port.tif")], Path("out"), detector.DetectOptions())

Lower-level parts (engine, merge, georef, store) live in their modules.
"""

from detector.engine import DetectSettings, SceneResult, detect_scene
from detector.errors import GeoreferenceError, SceneReadError, ShipwatchError, StoreError, UsageError, WeightsError
from detector.job import DetectOptions, JobReport, run_detect
from detector.models import ModelSpec, registry, resolve_weights
from detector.raster import Scene, SceneReader, open_scene
from detector.records import Detections, Ship
from detector.store import Store

__version__ = "0.1.0"

__all__ = [
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
    "Store",
    "StoreError",
    "UsageError",
    "WeightsError",
    "detect_scene",
    "open_scene",
    "registry",
    "resolve_weights",
    "run_detect",
]
