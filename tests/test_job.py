"""What a detect job records of each scene, and the review export that reads it back (a fake model: the logic around it)."""

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pyogrio
import pytest
import shapely
from pyogrio.raw import read
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.windows import Window

from detector import job
from detector.errors import UsageError, WeightsError
from detector.georef import Georeferencer
from detector.job import DetectOptions, JobReport, run_detect
from detector.models import models_dir
from detector.raster import SceneReader, bands_read, open_for_viewing, open_named_bands, open_scene, scene_pixels
from detector.records import Ship
from detector.review import Decision, export_reviews, review_queue
from detector.store import SceneRow, Store
from tests.conftest import stack_bands
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


def band_stack(folder: Path) -> Path:
    """``band_folder``'s bands in one file, described B2, B3, B4, B8 as Earth Engine exports them."""
    files = sorted(folder.glob("T52_B0*.tif"))
    return stack_bands(files, [f.stem.split("_")[1].replace("B0", "B") for f in files], folder.parent / "stack.tif")


@pytest.mark.parametrize("as_file", [False, True], ids=["band folder", "named file"])
def test_the_export_reads_a_scene_in_the_bands_the_job_read(make_geotiff, tmp_path: Path, as_file: bool) -> None:
    folder = band_folder(make_geotiff, tmp_path)
    if as_file:  # --bands 4,2,1 are then the file's own bands: B8, B3, B2 as well
        folder = band_stack(folder)
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


def test_weights_outside_the_registry_keep_only_their_ship_classes(make_geotiff, tmp_path: Path) -> None:
    """The fake model finds the hull (class ship) and the black fill beside it (class hole): only the ship is kept."""
    rng = np.random.default_rng(0)
    data = rng.integers(10, 90, (3, 128, 128)).astype(np.uint8)
    data[:, 60:66, 40:70] = 250
    data[:, 10:20, 10:20] = 0
    scene = make_geotiff("port.tif", data=data)
    weights = tmp_path / "mine.pt"
    weights.write_bytes(b"weights outside the registry")
    options = DetectOptions(weights=str(weights), trust_weights=True)
    report = run_detect([scene], tmp_path / "out", options, detector_factory=lambda *_: BlobDetector(128))
    assert report.outcomes[0].ships == 1
    with Store(tmp_path / "out" / "shipwatch.db") as store:
        ((_, _, ship),) = store.detection_rows(store.latest_settings_hash() or "")
        assert ship.class_name == "ship" and 40 <= ship.px_cx <= 70


def test_bands_by_name_read_the_same_bands_of_a_folder_and_a_named_file(make_geotiff, tmp_path: Path) -> None:
    """--bands B08,B03,B02 is 4,2,1 of the folder (its names sorted) and 4,3,2 of the stack: the same three."""
    folder = band_folder(make_geotiff, tmp_path)
    weights = tmp_path / "mine.pt"
    weights.write_bytes(b"weights outside the registry")
    for bands, ok in ((("B08", "B03", "B02"), True), (("B11", "B03", "B02"), False)):
        options = DetectOptions(weights=str(weights), trust_weights=True, bands=bands)
        out = tmp_path / "-".join(bands)
        report = run_detect([folder, band_stack(folder)], out, options, detector_factory=lambda *_: BlobDetector(256))
        if not ok:  # each scene says what it lacks
            errors = [o.error or "" for o in report.outcomes]
            assert "no band files for B11" in errors[0] and "no bands described as B11" in errors[1]
            continue
        assert [o.ships for o in report.outcomes] == [1, 1]
        with Store(out / "shipwatch.db") as store:
            assert [store.scene(i).bands for i in (1, 2)] == [("B08", "B03", "B02")] * 2


def test_bands_read_reopens_a_scene_alike(make_geotiff) -> None:
    file = make_geotiff("four.tif", count=4)
    scene = open_scene(file, (3, 2, 1))
    assert bands_read(scene) == (3, 2, 1)
    assert open_named_bands(file, bands_read(scene)).bands == scene.bands


def test_a_file_is_given_a_model_by_the_sentinel2_names_of_its_bands_else_read_as_it_is(make_geotiff) -> None:
    import rasterio

    def described(name: str, descriptions: tuple[str, ...], gsd: float) -> Path:
        path = make_geotiff(name, count=len(descriptions), transform=from_origin(500000.0, 4750000.0, gsd, gsd))
        with rasterio.open(path, "r+") as ds:
            for i, d in enumerate(descriptions, 1):
                ds.set_band_description(i, d)
        return path

    def picked(path: Path) -> str:
        names, _, gsd = job.probe_scene(path)
        return job.auto_model(path, names, gsd)[0].name

    assert picked(described("gee.tif", ("B2", "B3", "B4", "B8"), 10.0)) == "s2-ensemble"
    assert picked(described("nir_swir.tif", ("B8", "B11"), 10.0)) == "s2-ensemble-b08"
    assert picked(described("true_colour.tif", ("B4", "B3", "B2"), 10.0)) == "yolo26n-obb-s2"
    # Aerial bands numbered B1-B3 name no Sentinel-2 model's bands at 0.5 m: the file is read as it is.
    assert picked(described("aerial.tif", ("B1", "B2", "B3"), 0.5)) == "yolo26n-obb-dota"
    with pytest.raises(UsageError, match="fits no model"):
        picked(described("coarse.tif", ("B1", "B2", "B3"), 60.0))


def test_a_store_redoes_scenes_done_by_older_rules(make_geotiff, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = band_folder(make_geotiff, tmp_path)
    out, weights = tmp_path / "out", tmp_path / "mine.pt"
    assert not detect_nir(folder, out, weights).outcomes[0].reused
    assert detect_nir(folder, out, weights).outcomes[0].reused
    monkeypatch.setattr("detector.job.RULES_VERSION", job.RULES_VERSION + 1)
    (outcome,) = detect_nir(folder, out, weights).outcomes
    assert not outcome.reused and outcome.ships == 1


def test_clouds_of_a_scene_classification_hide_ships_and_leave_a_hole_in_the_footprint(make_geotiff, tmp_path: Path) -> None:
    import rasterio
    from affine import Affine

    folder = band_folder(make_geotiff, tmp_path)
    with rasterio.open(folder / "T52_B08.tif", "r+") as ds:  # a second hull, at the top right
        data = ds.read()
        data[0, 20:26, 80:110] = 250
        ds.write(data)

    def detected(out: Path) -> tuple[SceneRow, list[Ship]]:
        detect_nir(folder, out, tmp_path / "mine.pt")
        with Store(out / "shipwatch.db") as store:
            (sid,) = store.scene_ids(store.latest_settings_hash() or "")
            return store.scene(sid), list(store.ships(sid))

    row, ships = detected(tmp_path / "clear")
    assert len(ships) == 2 and not row.footprint.interiors  # type: ignore[union-attr]
    top_right = next(shapely.Point(s.lon, s.lat) for s in ships if s.px_cy < 30)
    # Then a cloud over the second hull: Sentinel-2's scene classification at half the resolution, 9 = cloud.
    classes = np.full((1, 64, 64), 6, np.uint8)
    classes[0, 5:20, 35:60] = 9  # scene rows 10-40, columns 70-120
    make_geotiff("port/T52_SCL.tif", data=classes, transform=Affine(1.0, 0, 500000.0, 0, -1.0, 4750000.0))
    row, ships = detected(tmp_path / "cloudy")  # a scene of other content: not the clear run's result again
    assert [(round(s.px_cx), round(s.px_cy)) for s in ships] == [(55, 63)]  # the hull under the cloud is no ship
    footprint = row.footprint
    assert isinstance(footprint, shapely.Polygon) and len(footprint.interiors) == 1
    # what the cloud hid counts as not seen (visits do not take the spot as seen empty), the rest as seen
    assert not footprint.contains(top_right) and shapely.Polygon(footprint.interiors[0]).contains(top_right)
    assert footprint.contains(shapely.Point(ships[0].lon, ships[0].lat))


def test_a_registry_entry_given_another_threshold_redoes_its_scenes(make_geotiff, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Same weights, same scene, same flags: a store made under the old threshold is not reused; a new card is."""
    scene = make_geotiff("scene.tif", data=np.full((3, 64, 64), 40, np.uint8))
    raw = json.loads((models_dir() / "registry.json").read_text())
    entry = next(m for m in raw["models"] if m["name"] == raw["default"])
    weights = models_dir() / entry["file"]

    def run(**change: object) -> bool:
        """Detect with the registry changed so (a release's new registry: a folder of its own)."""
        entry.update(change)
        models = tmp_path / f"models{len(list(tmp_path.glob('models*')))}"
        models.mkdir()
        (models / entry["file"]).symlink_to(weights)
        (models / "registry.json").write_text(json.dumps(raw))
        monkeypatch.setenv("SHIPWATCH_MODELS_DIR", str(models))
        options = DetectOptions(weights=entry["name"], allow_ungeoreferenced=True)
        report = run_detect([scene], tmp_path / "out", options, detector_factory=lambda *_: BlobDetector(256))
        (outcome,) = report.outcomes
        assert outcome.error is None, outcome.error
        return outcome.reused

    assert not run()
    assert run(card="another card")
    assert not run(conf=0.4)
    assert not run(scale=2.0)
    assert run()


class CarDetector(BlobDetector):
    @property
    def class_names(self) -> tuple[str, ...]:
        return ("plane", "car")


def test_a_weights_file_with_no_ship_class_stops_the_job_at_its_first_scene(make_geotiff, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Not one failure per scene: every scene would fail alike, so the job stops with the one error (exit 2 in the CLI)."""
    scenes = [make_geotiff(f"s{k}.tif", data=np.full((3, 64, 64), 40, np.uint8)) for k in range(3)]
    weights = tmp_path / "cars.pt"
    weights.write_bytes(b"weights outside the registry")
    made: list[CarDetector] = []

    def factory(*_: object) -> CarDetector:
        made.append(CarDetector(256))
        return made[-1]

    options = DetectOptions(weights=str(weights), trust_weights=True, allow_ungeoreferenced=True)
    with pytest.raises(WeightsError, match=r"cars.pt: none of its classes \['plane', 'car'\] is a ship class"):
        run_detect(scenes, tmp_path / "out", options, detector_factory=factory)
    assert len(made) == 1 and made[0].calls == 0


def test_with_an_aoi_a_16_bit_scene_is_stretched_by_the_aoi_surroundings_not_the_whole_scene(
    make_geotiff, tmp_path: Path
) -> None:
    # 60 km at 10 m: water (100) with a hull (5000) near the left edge, and bright land (30000) from 30 km on,
    # which sets the whole scene's top: stretched by it, the hull is 42 of 255, below the fake model's 200.
    data = np.full((1, 1000, 6000), 100, np.uint16)
    data[0, 500:506, 200:230] = 5000
    data[0, :, 3000:] = 30000
    transform = from_origin(500000.0, 4750000.0, 10.0, 10.0)
    scene = make_geotiff("tile.tif", data=data, transform=transform, tiled=True, blockxsize=256, blockysize=256)
    assert open_scene(scene).stretch[0][1] == 30000  # type: ignore[index]
    lon, lat = Georeferencer(CRS.from_epsg(32653), transform).pixel_to_lonlat(
        np.array([100.0, 400.0, 400.0, 100.0]), np.array([400.0, 400.0, 600.0, 600.0])
    )
    ring = [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]
    aoi = tmp_path / "port.geojson"
    aoi.write_text(json.dumps({"type": "Polygon", "coordinates": [[*ring, ring[0]]]}))
    options = DetectOptions(weights=str(tmp_path / "mine.pt"), trust_weights=True, aoi=aoi)
    (tmp_path / "mine.pt").write_bytes(b"weights outside the registry")
    report = run_detect([scene], tmp_path / "out", options, detector_factory=lambda *_: BlobDetector(256))
    assert not any("--aoi" in note for note in report.outcomes[0].notes)
    # stretched by the 20 km around the AOI (water and the hull), the hull is found where it lies
    ships = json.loads(report.detections_geojson.read_text())["features"]  # type: ignore[union-attr]
    assert len(ships) == 1
    (lon,), (lat,) = Georeferencer(CRS.from_epsg(32653), transform).pixel_to_lonlat(np.array([215.0]), np.array([503.0]))
    assert ships[0]["properties"]["length_m"] == pytest.approx(300, abs=20)
    assert (ships[0]["properties"]["lon"], ships[0]["properties"]["lat"]) == pytest.approx((lon, lat), abs=1e-4)  # ~10 m
    # the store records the window that set the stretch, and review crops are stretched by it, as the model saw them
    with Store(report.store) as store:  # type: ignore[arg-type]
        ((_, sid, _),) = store.detection_rows(store.latest_settings_hash() or "")
        assert store.scene(sid).stretch_window == (0, 0, 2000, 1000)  # the AOI at 100-400 grown to 20 km, moved inside
    (item,) = review_queue(Store(report.store), [])  # type: ignore[arg-type]
    hull = Window(200, 500, 30, 6)
    with SceneReader(open_for_viewing(scene, item.stretch_window)) as reader:
        assert (reader.read(hull)[0] == 255).all()
    with SceneReader(open_for_viewing(scene)) as reader:
        assert (reader.read(hull)[0] == 42).all()  # stretched by the whole scene's land, as before
    with Store(report.store) as store:  # type: ignore[arg-type]
        store.add_review(item.detection_id, Decision.ACCEPTED, "tester")
        export_reviews(store, tmp_path / "export", ("ship",), chip=128)
    labelled = [p for p in (tmp_path / "export" / "dataset").glob("labels/*/*.txt") if p.read_text().strip()]
    images = [next(p.parent.parent.parent.glob(f"images/*/{p.stem}.png")) for p in labelled]
    assert images and all(cv2.imread(str(i)).max() == 255 for i in images)  # training chips as the model saw the hull


def test_a_16_bit_scene_far_larger_than_a_port_without_an_aoi_is_told_to_give_one(make_geotiff, tmp_path: Path) -> None:
    transform = from_origin(500000.0, 4750000.0, 10.0, 10.0)
    (tmp_path / "mine.pt").write_bytes(b"weights outside the registry")
    options = DetectOptions(weights=str(tmp_path / "mine.pt"), trust_weights=True)
    notes = {}
    for name, cols in (("tile", 4100), ("port", 1500)):  # 41 km and 15 km at 10 m
        data = np.full((1, 64, cols), 100, np.uint16)
        data[0, :, cols // 2 :] = 3000
        scene = make_geotiff(f"{name}.tif", data=data, transform=transform)
        report = run_detect([scene], tmp_path / name, options, detector_factory=lambda *_: BlobDetector(256))
        notes[name] = [n for n in report.outcomes[0].notes if "--aoi" in n]
    assert len(notes["tile"]) == 1 and "all of its 41 km" in notes["tile"][0] and notes["port"] == []
    # With an AOI of two ports 49 km apart in a 60 km tile, the stretch spans them both: told to split it.
    data = np.full((1, 64, 6000), 100, np.uint16)
    data[0, :, 3000:] = 3000
    tile = make_geotiff("wide.tif", data=data, transform=transform)
    georef = Georeferencer(CRS.from_epsg(32653), transform)
    for name, cols in (("apart", (100, 4950)), ("near", (100, 600))):
        ports = []
        for c in cols:  # 500 m squares on the tile's 64 rows
            lon, lat = georef.pixel_to_lonlat(np.array([c, c + 50.0]), np.array([60.0, 10.0]))
            ports.append(shapely.box(lon[0], lat[0], lon[1], lat[1]))
        aoi = tmp_path / f"{name}.geojson"
        aoi.write_text(json.dumps(shapely.geometry.mapping(shapely.union_all(ports))))
        report = run_detect(
            [tile], tmp_path / f"aoi_{name}", replace(options, aoi=aoi), detector_factory=lambda *_: BlobDetector(256)
        )
        notes[name] = [n for n in report.outcomes[0].notes if "--aoi" in n]
    assert len(notes["apart"]) == 1 and "the 49 km that its AOI spans" in notes["apart"][0] and notes["near"] == []
