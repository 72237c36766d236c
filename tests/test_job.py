"""What a detect job records of each scene, and the review export that reads it back (a fake model: the logic around it)."""

from pathlib import Path

import cv2
import numpy as np
import pyogrio
import shapely
from pyogrio.raw import read

from detector import job
from detector.job import DetectOptions, JobReport, run_detect
from detector.raster import bands_read, open_named_bands, open_scene, scene_pixels
from detector.review import Decision, export_reviews
from detector.store import Store
from tests.fakes import BlobDetector


def band_folder(make_geotiff, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A 128 px band folder (B02, B03, B04, B08) with one hull, bright in near infrared only."""
    rng = np.random.default_rng(0)
    for band in ("B02", "B03", "B04", "B08"):
        data = rng.integers(10, 90, (1, 128, 128)).astype(np.uint8)
        if band == "B08":
            data[0, 60:66, 40:70] = 250
        make_geotiff(f"port/T52_{band}.tif", data=data)
    return tmp_path / "port"


def detect_nir(folder: Path, out: Path, weights: Path) -> JobReport:
    """Detect with weights outside the registry (read as a trusted file) and --bands 4,2,1.

    --bands on a folder index its bands sorted by name (B02, B03, B04, B08): B08, B03, B02.
    """
    if not weights.exists():
        weights.write_bytes(b"weights outside the registry")
    options = DetectOptions(weights=str(weights), trust_weights=True, bands=(4, 2, 1))
    return run_detect([folder], out, options, detector_factory=lambda *_: BlobDetector(256))


def test_the_geopackage_holds_the_ships_and_the_footprints_and_a_rerun_the_same_bytes(make_geotiff, tmp_path: Path) -> None:
    folder = band_folder(make_geotiff, tmp_path)
    report = detect_nir(folder, tmp_path / "out", tmp_path / "mine.pt")
    assert report.detections_gpkg is not None
    assert pyogrio.read_info(report.detections_gpkg, layer="detections")["features"] == 1
    _, _, footprint, (name, _, ships, *_) = read(report.detections_gpkg, layer="scenes")
    assert (name.tolist(), ships.tolist()) == (["port"], [1]) and shapely.from_wkb(footprint[0]).area > 0
    first = report.detections_gpkg.read_bytes()
    detect_nir(folder, tmp_path / "out", tmp_path / "mine.pt")
    assert report.detections_gpkg.read_bytes() == first


def test_the_export_reads_a_scene_in_the_bands_the_job_read(make_geotiff, tmp_path: Path) -> None:
    folder = band_folder(make_geotiff, tmp_path)
    detect_nir(folder, tmp_path / "out", tmp_path / "mine.pt")
    with Store(tmp_path / "out" / "shipwatch.db") as store:
        ((did, sid, _),) = store.detection_rows(store.latest_settings_hash() or "")
        row = store.scene(sid)
        assert (row.bands, row.scale) == (("B08", "B03", "B02"), 1.0)
        store.add_review(did, Decision.ACCEPTED, "tester")
        export_reviews(store, tmp_path / "export", ("ship",), chip=128)
    dataset = tmp_path / "export" / "dataset"
    assert "bands: [B08, B03, B02]" in (dataset / "data.yaml").read_text()
    want = scene_pixels(open_named_bands(folder, ("B08", "B03", "B02")))
    chips = sorted(dataset.glob("images/*/*.png"))
    assert chips and all(cv2.imread(str(c))[..., ::-1].tolist() == want.tolist() for c in chips if "flipped" not in c.name)


def test_bands_read_reopens_a_scene_alike(make_geotiff) -> None:
    file = make_geotiff("four.tif", count=4)
    scene = open_scene(file, (3, 2, 1))
    assert bands_read(scene) == (3, 2, 1)
    assert open_named_bands(file, bands_read(scene)).bands == scene.bands


def test_a_store_redoes_scenes_done_by_older_rules(make_geotiff, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = band_folder(make_geotiff, tmp_path)
    out, weights = tmp_path / "out", tmp_path / "mine.pt"
    assert not detect_nir(folder, out, weights).outcomes[0].reused
    assert detect_nir(folder, out, weights).outcomes[0].reused
    monkeypatch.setattr("detector.job.RULES_VERSION", job.RULES_VERSION + 1)
    (outcome,) = detect_nir(folder, out, weights).outcomes
    assert not outcome.reused and outcome.ships == 1
