"""The real YOLO weights on real imagery: the DOTA marina crop and Sentinel-2 scenes."""

import csv
import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.windows import Window
from scipy.optimize import linear_sum_assignment

from detector.aoi import STRETCH_CONTEXT_M
from detector.cli.main import main
from detector.georef import ground_sample_distance
from detector.merge import cut_by_window
from detector.models import resolve_weights
from detector.quicklook import scene_picture
from detector.raster import SceneReader, band_indices, open_named_bands, open_scene
from detector.records import Detections, obb_corners
from detector.yolo import YoloDetector
from tests.conftest import DATA, load_script, shared, shipwatch, stack_bands, write_safe

pytestmark = pytest.mark.real_model
IMAGE = DATA / "P0861__1024__0___1648.jpg"
LABELS = DATA / "P0861__1024__0___1648.txt"


def ship_polygons(scale: float) -> list[shapely.Polygon]:
    rows = np.loadtxt(LABELS)
    return [shapely.Polygon(r[1:].reshape(4, 2) * 1024 * scale) for r in rows if int(r[0]) == 1]


def recall_precision(csv_path: Path, scale: float) -> tuple[float, float, np.ndarray]:
    """A labelled ship is found when a detection's centre lies in its polygon; one-to-one."""
    rows = list(csv.DictReader(csv_path.open()))
    centres = shapely.points([(float(r["px_cx"]), float(r["px_cy"])) for r in rows])
    polygons = ship_polygons(scale)
    hits = np.array([shapely.contains(p, centres) for p in polygons], float)
    r, c = linear_sum_assignment(-hits)
    tp = hits[r, c].sum()
    return tp / len(polygons), tp / len(rows), hits


@pytest.mark.parametrize("weights", [None, "yolov8n-obb-dota"])
@pytest.mark.parametrize("upscale", [1, 2])
def test_marina_recall_precision_and_no_seam_duplicates(tmp_path: Path, upscale: int, weights: str | None) -> None:
    # The dota8 crop P0861 (105 ships) as a GeoTIFF, EPSG:32653, 0.3 m; upscaled 2x, seams cut ships.
    # The model detect picks (yolo26n-obb-dota), and the other DOTA model by --weights.
    write = load_script("datasets/dota_geotiff.py").write_geotiff
    tif = write(IMAGE, tmp_path / "marina.tif", pixel_m=0.3 / upscale, upscale=upscale)
    out = tmp_path / "out"
    assert main(["detect", str(tif), "--out", str(out), *(["--weights", weights] if weights else [])]) == 0
    recall, precision, hits = recall_precision(out / "detections.csv", upscale)
    print(f"{weights or 'default model'}, upscale {upscale}: recall {recall:.3f} precision {precision:.3f}")
    assert recall >= 0.85 and precision >= 0.85
    assert (hits.sum(axis=1) <= 1).all(), "a labelled ship was reported twice"
    rows = list(csv.DictReader((out / "detections.csv").open()))
    obb = np.array([[float(r[k]) for k in ("px_cx", "px_cy", "px_length", "px_width", "px_angle_deg")] for r in rows])
    polys = shapely.polygons(obb_corners(obb))
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    a, b = a[a < b], b[a < b]
    ios = shapely.area(shapely.intersection(polys[a], polys[b])) / np.minimum(shapely.area(polys[a]), shapely.area(polys[b]))
    assert (ios < 0.5).all(), "two reported boxes cover the same ship"
    lengths = np.array([float(r["length_m"]) for r in rows])
    assert np.median(lengths) == pytest.approx(14, abs=6)  # marina boats, 8-20 m


def test_dense_windows_are_not_capped_at_300() -> None:
    # Four copies of the marina, halved, in one 1024 px window: ~500 boats.
    rgb = cv2.imread(str(IMAGE))[..., ::-1]
    half = cv2.resize(rgb, (512, 512), interpolation=cv2.INTER_AREA)
    mosaic = np.vstack([np.hstack([half, half]), np.hstack([half, half])])
    spec, path, _ = resolve_weights()
    found: Detections = YoloDetector(path, spec)(mosaic[None])[0]
    assert (found.class_id == 1).sum() > 350


def scene_columns(out: Path, columns: str) -> tuple:  # type: ignore[type-arg]
    """Columns of the one scene row of the store a detect run wrote to ``out``."""
    with sqlite3.connect(out / "shipwatch.db") as conn:
        return conn.execute(f"SELECT {columns} FROM scenes").fetchone()


def test_sentinel2_band_folder_runs_and_writes_valid_outputs(tmp_path: Path) -> None:
    folder = shared("sen2ships-dev", "busan")
    out = tmp_path / "out"
    assert main(["detect", str(folder), "--out", str(out)]) == 0
    collection = json.loads((out / "detections.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    columns = "name, acquired_at, gsd_m, status, model, model_reason, n_detections"
    name, acquired, gsd, status, model, reason, n = scene_columns(out, columns)
    assert (name, acquired, status) == ("busan", "2022-05-14T00:00:00Z", "done")
    assert gsd == pytest.approx(8.2, abs=0.3)  # 10 m Web Mercator pixels at 35°N are ~8.2 m on the ground
    assert model == "s2-ensemble" and "8.18 m" in reason  # chosen by resolution and bands, no --weights
    assert 20 <= n <= 90  # 54 labelled ships
    lengths = [f["properties"]["length_m"] for f in collection["features"]]
    assert 40 < sorted(lengths)[len(lengths) // 2] < 250  # ships, in true ground metres


def test_reviewed_sentinel2_detections_export_as_the_model_read_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Chips of a band folder the ensemble detected hold B08, B04, B03 at 3x, as its training data does.

    Its quicklook shows true colour, as the report and the review do: pictures are for people.
    """
    folder = shared("sen2ships-dev", "busan")
    db = tmp_path / "out" / "shipwatch.db"
    assert main(["detect", str(folder), "--out", str(db.parent), "--quicklook"]) == 0
    quicklook = cv2.imread(str(db.parent / "quicklook" / "busan.png"))
    same = {  # share of pixels as a picture of these bands without boxes
        bands: (quicklook == scene_picture(open_scene(folder, bands=band_indices(folder, bands)), [])).all(axis=2).mean()
        for bands in (("B04", "B03", "B02"), ("B08", "B04", "B03"))
    }
    assert same[("B04", "B03", "B02")] > 0.9 and same[("B08", "B04", "B03")] < 0.1, same
    with sqlite3.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM detections ORDER BY score DESC LIMIT 4")]
    decisions = tmp_path / "decisions.csv"
    rows = [f"{ids[0]},tanker", f"{ids[1]},accepted", f"{ids[2]},accepted", f"{ids[3]},rejected"]
    decisions.write_text("detection_id,decision\n" + "\n".join(rows) + "\n")
    assert main(["review", "--db", str(db), "--decisions", str(decisions)]) == 0

    def exported(name: str, *args: str) -> tuple[str, Path]:
        capsys.readouterr()
        assert main(["review", "export", "--db", str(db), "--out", str(tmp_path / name), *args]) == 0
        return capsys.readouterr().out, tmp_path / name / "dataset"

    def enlarged(bands: tuple[str, ...]) -> np.ndarray:
        scene = open_scene(folder, bands=band_indices(folder, bands))
        with SceneReader(scene) as reader:
            pixels, _ = reader.read(Window(0, 0, scene.width, scene.height))
        return cv2.resize(pixels, (scene.width * 3, scene.height * 3), interpolation=cv2.INTER_CUBIC)

    def classes(dataset: Path) -> set[str]:
        return {line.split()[0] for f in dataset.glob("labels/*/*.txt") for line in f.read_text().splitlines()}

    said, nir = exported("nir", "--classes", "ship")  # one class, like sen2ships: the tanker is a ship
    assert "chips of B08, B04, B03 at 3x" in said and "bands: [B08, B04, B03]" in (nir / "data.yaml").read_text()
    assert classes(nir) == {"0"} and "tanker" not in (nir / "data.yaml").read_text()
    chip = sorted((nir / "images" / "train").glob("*.png"))[0]
    row, col = (int(part[1:]) for part in chip.stem.split("_")[-2:])
    pixels = cv2.imread(str(chip))[..., ::-1]
    want = enlarged(("B08", "B04", "B03"))[row : row + 640, col : col + 640]
    assert pixels[: want.shape[0], : want.shape[1]].tolist() == want.tolist()
    said, tc = exported("tc", "--bands", "B04,B03,B02", "--scale", "2")
    assert "chips of red, green, blue at 2x" in said and "bands: [red, green, blue]" in (tc / "data.yaml").read_text()
    assert classes(tc) == {"0", "1"}  # ship, tanker
    # A 0.3 m RGB scene in the same store, read by the DOTA model: one dataset cannot hold both kinds of chips.
    assert main(["detect", str(DATA / "marina_0p3m.tif"), "--out", str(db.parent)]) == 0
    with sqlite3.connect(db) as conn:
        (marina,) = conn.execute(
            "SELECT d.id FROM detections d JOIN scenes s ON s.id = d.scene_id WHERE s.name LIKE 'marina%' LIMIT 1"
        ).fetchone()
    decisions.write_text(f"detection_id,decision\n{marina},accepted\n")
    assert main(["review", "--db", str(db), "--decisions", str(decisions)]) == 0
    capsys.readouterr()
    assert main(["review", "export", "--db", str(db), "--out", str(tmp_path / "mixed")]) == 2
    err = capsys.readouterr().err
    assert "read in different bands or scales" in err and "B08, B04, B03 at 3x" in err and "red, green, blue at 1x" in err


def test_sentinel2_rgb_file_falls_back_to_the_true_colour_model(tmp_path: Path) -> None:
    """The same Busan scene as one 3-band file: no B08, so the true-colour 10 m model."""
    out = tmp_path / "out"
    assert main(["detect", str(shared("sen2ships-dev", "rgb", "busan_rgb.tiff")), "--out", str(out)]) == 0
    model, reason, n = scene_columns(out, "model, model_reason, n_detections")
    assert model == "yolo26n-obb-s2" and "has its bands" in reason
    assert 15 <= n <= 90  # 54 labelled ships


def test_near_infrared_models_without_b02_or_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder with B08 but no B02 gets the ensemble; --weights naming a model reads that model's bands."""
    busan = shared("sen2ships-dev", "busan")
    folder = tmp_path / "no_b02" / "busan"
    folder.mkdir(parents=True)
    for band in busan.iterdir():
        if any(b in band.name for b in ("B08", "B04", "B03")):
            (folder / band.name).symlink_to(band)
    assert main(["detect", str(folder), "--out", str(tmp_path / "auto")]) == 0
    model, n, content = scene_columns(tmp_path / "auto", "model, n_detections, content_hash")
    assert model == "s2-ensemble" and 20 <= n <= 90
    # The full folder with --weights: the scene digest covers the band files read, so the same three.
    assert main(["detect", str(busan), "--out", str(tmp_path / "named"), "--weights", "yolo26n-obb-s2-nir"]) == 0
    named, n_named, content_named = scene_columns(tmp_path / "named", "model, n_detections, content_hash")
    assert (named, content_named) == ("yolo26n-obb-s2-nir", content) and 20 <= n_named <= 90
    rgb = shared("sen2ships-dev", "rgb", "busan_rgb.tiff")
    code = main(["detect", str(rgb), "--out", str(tmp_path / "rgb"), "--weights", "yolo26n-obb-s2-nir"])
    assert code == 2 and "reads bands B08, B04, B03 and the scene lacks B08" in capsys.readouterr().err


def test_a_sentinel2_safe_product_gives_the_ships_of_its_band_folder(make_geotiff, tmp_path: Path) -> None:
    """Busan's bands written as an L2A SAFE product (lossless JPEG 2000, B11 at 20 m, a clear SCL): detect picks
    s2-ensemble for it by itself and finds what it finds in the band folder, ship for ship; the time is the product's."""
    busan = shared("sen2ships-dev", "busan")
    bands = {}
    for band in ("B02", "B03", "B04", "B08", "B11"):
        with rasterio.open(next(busan.glob(f"*_{band}_*"))) as ds:
            bands[band], crs, transform = ds.read(1), ds.crs, ds.transform
    bands["SCL"] = np.full(bands["B08"].shape, 6, np.uint8)  # water: nothing masked
    name = "S2B_MSIL2A_20220514T021559_N0400_R003_T52SDE_20220514T043527.SAFE"
    safe = write_safe(make_geotiff, name, bands, crs=crs, transform=transform)
    out = tmp_path / "out"
    proc = shipwatch("detect", str(busan), str(safe), "--out", str(out))  # in a process of its own, as above
    assert proc.returncode == 0, proc.stderr[-800:]
    with sqlite3.connect(out / "shipwatch.db") as conn:
        scenes = conn.execute("SELECT id, name, acquired_at, model, bands_json, n_detections FROM scenes ORDER BY id").fetchall()
        ships = [
            conn.execute("SELECT px_cx, px_cy, score FROM detections WHERE scene_id = ? ORDER BY idx", (sid,)).fetchall()
            for sid, *_ in scenes
        ]
    assert [s[1:5] for s in scenes] == [
        ("busan", "2022-05-14T00:00:00Z", "s2-ensemble", '["B08", "B04", "B03"]'),
        (name, "2022-05-14T02:15:59Z", "s2-ensemble", '["B08", "B04", "B03"]'),
    ]
    assert 20 <= scenes[0][5] <= 90 and ships[1] == ships[0]


def test_a_multiband_file_naming_its_sentinel2_bands_gives_the_ships_of_its_band_folder(tmp_path: Path) -> None:
    """Busan's five bands stacked in one GeoTIFF as Earth Engine exports them (blue first, described B2 ... B11):
    detect reads B08, B04, B03 by those names and picks s2-ensemble, ship for ship as in the folder. Read as
    its first three bands, it went to the true-colour model with red and blue swapped: 22 ships, not 61."""
    busan = shared("sen2ships-dev", "busan")
    order = ("B02", "B03", "B04", "B08", "B11")
    files = [next(busan.glob(f"*_{band}_*")) for band in order]
    described = [band.replace("B0", "B") for band in order]
    stack = stack_bands(files, described, tmp_path / "busan_stack.tif", tiled=True, blockxsize=256, blockysize=256)
    out_dir = tmp_path / "out"
    assert main(["detect", str(busan), str(stack), "--out", str(out_dir)]) == 0
    with sqlite3.connect(out_dir / "shipwatch.db") as conn:
        scenes = conn.execute("SELECT id, model, bands_json, n_detections FROM scenes ORDER BY id").fetchall()
        ships = [
            conn.execute("SELECT px_cx, px_cy, score FROM detections WHERE scene_id = ? ORDER BY idx", (sid,)).fetchall()
            for sid, *_ in scenes
        ]
    assert [s[1:3] for s in scenes] == [("s2-ensemble", '["B08", "B04", "B03"]')] * 2  # by name, the file too
    assert 20 <= scenes[0][3] <= 90 and ships[1] == ships[0]


def test_folders_lacking_red_and_green_get_the_near_infrared_pair_fed_what_they_have(tmp_path: Path) -> None:
    """Band folders as some of sen2ships' own ports come: B08 and B11 only, or B02, B03 and B11 only.

    One job, three scenes, three ensembles of the same two files: each scene
    reads its own bands, and none borrows another's model.
    """
    busan = shared("sen2ships-dev", "busan")
    scenes = []
    for name, bands in (("nir_swir", ("B08", "B11")), ("no_red", ("B02", "B03", "B11"))):
        folder = tmp_path / name / "busan"
        folder.mkdir(parents=True)
        for band in busan.iterdir():
            if any(f"_{b}_" in band.name for b in bands):
                (folder / band.name).symlink_to(band)
        scenes.append(folder)
    out = tmp_path / "out"
    # In a process of its own: six OpenVINO models loaded in pytest's own process make the review tests'
    # pseudo-terminal children (forked from it) crash before they start.
    proc = shipwatch("detect", str(busan), *map(str, scenes), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-800:]
    with sqlite3.connect(out / "shipwatch.db") as conn:
        rows = conn.execute("SELECT path, model, bands_json, weights_sha256, n_detections FROM scenes ORDER BY id").fetchall()
    assert [(Path(r[0]).parent.name, r[1], json.loads(r[2])) for r in rows] == [
        ("sen2ships-dev", "s2-ensemble", ["B08", "B04", "B03"]),
        ("nir_swir", "s2-ensemble-b08", ["B08"]),
        ("no_red", "s2-ensemble-swir", ["B11", "B03", "B02"]),
    ]
    assert len({r[3] for r in rows}) == 3  # the same files fed other bands are another model in the store
    assert all(20 <= r[4] <= 90 for r in rows), rows  # 54 labelled ships


def test_dota8_images_as_geotiffs(tmp_path: Path) -> None:
    """Every dota8 image runs through detect; ship-less crops give few ships."""
    images = sorted(shared("dota8", "images").rglob("*.jpg"))
    write = load_script("datasets/dota_geotiff.py").write_geotiff
    tifs = [write(img, tmp_path / f"{img.stem}.tif") for img in images]
    out = tmp_path / "out"
    assert main(["detect", *map(str, tifs), "--out", str(out)]) == 0
    counts: dict[str, int] = {t.name: 0 for t in tifs}
    for r in csv.DictReader((out / "detections.csv").open()):
        counts[r["scene"]] += 1
    assert counts["P0861__1024__0___1648.tif"] >= 90
    labelled = {
        p.stem: sum(1 for line in p.read_text().splitlines() if line.startswith("1 "))
        for p in shared("dota8", "labels").rglob("*.txt")
    }
    for stem, n in labelled.items():
        if n == 0:
            assert counts[f"{stem}.tif"] <= 3, stem


def test_cut_by_window_flags_only_inner_edges() -> None:
    d = Detections(np.array([[5.0, 50, 20, 5, 0], [1020.0, 50, 20, 5, 0]]), np.ones(2), np.ones(2, int), np.zeros((2, 2), int))
    assert cut_by_window(d, 1024, 1024, 1024).tolist() == [False, False]


def test_a_large_tile_with_an_aoi_is_stretched_like_its_port_crop(tmp_path: Path) -> None:
    """Busan in scripts/aoi_stretch.py's stress tile, 42 km: its own pixels mirrored around it out past the
    20 km context, and beyond that land brighter than any in the crop (each band at 1.5 times its crop's
    99.9th percentile) over three quarters of the tile, where it sets the whole tile's stretch. With --aoi
    of the port, detect stretches the tile by the 20 km around the port and finds the ships it finds in
    the crop."""
    busan = shared("sen2ships-dev", "busan")
    bands = ("B08", "B04", "B03")
    crop_scene = open_named_bands(busan, bands)
    crs, transform, h, w = crop_scene.crs, crop_scene.transform, crop_scene.height, crop_scene.width
    gsd = ground_sample_distance(crs, transform, w, h)
    tile = tmp_path / "tile"
    tile_scene = load_script("scripts/aoi_stretch.py").mirrored_tile(crop_scene, bands, STRETCH_CONTEXT_M / gsd, 1.5, tile)
    corners = [transform * (c, r) for c, r in ((0, 0), (w, 0), (w, h), (0, h))]  # type: ignore[operator]
    lon, lat = Transformer.from_crs(crs.to_string(), "EPSG:4326", always_xy=True).transform(*zip(*corners, strict=True))  # type: ignore[union-attr]
    aoi = tmp_path / "busan.geojson"
    ring = [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]
    aoi.write_text(json.dumps({"type": "Polygon", "coordinates": [[*ring, ring[0]]]}))
    ships = {}
    for name, scene in (("crop", busan), ("tile", tile)):
        out = tmp_path / name
        assert main(["detect", str(scene), "--out", str(out), "--aoi", str(aoi)]) == 0
        with sqlite3.connect(out / "shipwatch.db") as conn:
            ships[name] = np.array(conn.execute("SELECT px_cx, px_cy FROM detections").fetchall())
    assert tile_scene.stretch[0][1] > 1.4 * crop_scene.stretch[0][1]  # type: ignore[index]  # the land sets the tile's top
    distance = np.linalg.norm(ships["crop"][:, None] - ships["tile"][None], axis=2)
    rows, cols = linear_sum_assignment(distance)
    same = int((distance[rows, cols] <= 3).sum())
    assert len(ships["crop"]) >= 40 and same >= 0.9 * len(ships["crop"]) and same >= 0.9 * len(ships["tile"]), (same, ships)
