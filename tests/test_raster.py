import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from detector.errors import GeoreferenceError, SceneReadError, UsageError
from detector.inputs import expand_inputs
from detector.raster import (
    BandRef,
    SceneReader,
    band_indices,
    band_names,
    open_for_viewing,
    open_named_bands,
    open_scene,
    stretched_over,
)
from tests.conftest import write_safe


def read(scene, window=None):
    with SceneReader(scene) as reader:
        return reader.read(window or Window(0, 0, scene.width, scene.height))


def test_multiband_uint8_reads_as_is(make_geotiff) -> None:
    path = make_geotiff("a.tif", width=40, height=30)
    scene = open_scene(path)
    rgb, valid = read(scene)
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(rgb, ds.read().transpose(1, 2, 0))
    assert valid.all() and scene.stretch is None


def test_edge_windows_are_padded_and_marked_invalid(make_geotiff) -> None:
    scene = open_scene(make_geotiff("a.tif", width=40, height=30))
    rgb, valid = read(scene, Window(20, 10, 32, 32))
    assert rgb.shape == (32, 32, 3)
    assert valid[:20, :20].all() and not valid[20:, :].any() and not valid[:, 20:].any()
    assert (rgb[~valid] == 0).all()


def test_bands_pick_and_grey(make_geotiff) -> None:
    data = np.stack([np.full((8, 8), v, np.uint8) for v in (10, 20, 30, 40)])
    path = make_geotiff("four.tif", data=data)
    rgb, _ = read(open_scene(path, bands=(4, 3, 2)))
    assert tuple(rgb[0, 0]) == (40, 30, 20)
    grey, _ = read(open_scene(path, bands=(2,)))
    assert tuple(grey[0, 0]) == (20, 20, 20)
    with pytest.raises(UsageError, match="out of range"):
        open_scene(path, bands=(5, 1, 1))
    one = make_geotiff("one.tif", data=data[:1])
    assert tuple(read(open_scene(one))[0][3, 3]) == (10, 10, 10)


def test_an_ensemble_reads_a_channel_per_band_and_pictures_show_the_first_three(make_geotiff) -> None:
    from detector.quicklook import scene_picture

    data = np.stack([np.full((30, 40), v, np.uint8) for v in (10, 20, 30, 40)])
    scene = open_scene(make_geotiff("four.tif", data=data), bands=(4, 3, 2, 1))
    pixels, _ = read(scene, Window(30, 20, 16, 16))  # padded past the edge
    assert pixels.shape == (16, 16, 4) and tuple(pixels[0, 0]) == (40, 30, 20, 10) and not pixels[15, 15].any()
    with SceneReader(scene) as reader:
        assert reader.read_decimated((3, 4)).shape == (3, 4, 4)
    picture = scene_picture(scene, [])  # BGR of the first three bands
    assert picture.shape == (30, 40, 3) and tuple(picture[0, 0]) == (20, 30, 40)


def test_pictures_show_a_band_folder_in_true_colour_else_near_infrared_else_grey(make_geotiff) -> None:
    # uint8 band files without georeferencing, so pixels are the values: B02 20, B03 30, B04 40, B08 80, B11 110
    files = {
        band: make_geotiff(f"port/x_{band}.tif", data=np.full((1, 8, 8), value, np.uint8), crs=None)
        for band, value in (("B02", 20), ("B03", 30), ("B04", 40), ("B08", 80), ("B11", 110))
    }
    folder = files["B02"].parent
    model_view = open_scene(folder, bands=band_indices(folder, ("B08", "B04", "B03")), allow_ungeoreferenced=True)
    assert tuple(read(model_view)[0][0, 0]) == (80, 40, 30)
    assert tuple(read(open_for_viewing(folder))[0][0, 0]) == (40, 30, 20)  # true colour
    files["B02"].unlink()
    assert tuple(read(open_for_viewing(folder))[0][0, 0]) == (80, 40, 30)  # near infrared as red
    files["B08"].unlink()
    assert tuple(read(open_for_viewing(folder))[0][0, 0]) == (30, 30, 30)  # the first band (B03), grey
    with pytest.raises(UsageError, match="no band files for B08 \\(it has B03, B04, B11\\)"):
        band_indices(folder, ("B08", "B04", "B03"))


@pytest.mark.parametrize(
    ("description", "band"),
    [("B2", "B02"), ("b08", "B08"), ("B8A", "B8A"), ("b8a", "B8A"), (" B11 ", "B11"), ("B12", "B12")]
    + [(d, None) for d in ("B13", "B0", "B8B", "QA60", "SCL", "nir", "", None)],
)
def test_band_descriptions_name_sentinel2_bands_padded_or_not(description: str | None, band: str | None) -> None:
    from detector.raster import described_band

    assert described_band(description) == band


def describe(path: Path, descriptions: tuple[str, ...]) -> Path:
    with rasterio.open(path, "r+") as ds:
        for i, description in enumerate(descriptions, 1):
            ds.set_band_description(i, description)
    return path


def test_a_file_whose_band_descriptions_name_sentinel2_bands_is_read_by_them(make_geotiff) -> None:
    # As Earth Engine exports a stack: blue first, names unpadded, a mask band among them.
    data = np.stack([np.full((8, 8), v, np.uint8) for v in (20, 30, 40, 80, 7)])
    path = describe(make_geotiff("stack.tif", data=data), ("B2", "B3", "B4", "B8", "QA60"))
    assert band_names(path) == ("B02", "B03", "B04", "B08")
    assert band_indices(path, ("B08", "B04", "B03")) == (4, 3, 2)  # the file's own bands, not sorted names
    assert tuple(read(open_scene(path))[0][0, 0]) == (40, 30, 20)  # true colour by name, not bands 1-3
    assert tuple(read(open_named_bands(path, ("B08", "B04", "B03")))[0][0, 0]) == (80, 40, 30)
    assert tuple(read(open_for_viewing(path))[0][0, 0]) == (40, 30, 20)
    with pytest.raises(UsageError, match=r"no bands described as B11 \(it has B02, B03, B04, B08\)"):
        open_named_bands(path, ("B11",))
    no_blue = describe(make_geotiff("no_blue.tif", data=data[1:4]), ("B3", "B4", "B8"))
    assert tuple(read(open_for_viewing(no_blue))[0][0, 0]) == (80, 40, 30)  # near infrared as red
    plain = make_geotiff("plain.tif", data=data[:3])
    assert band_names(plain) == () and tuple(read(open_scene(plain))[0][0, 0]) == (20, 30, 40)
    with pytest.raises(UsageError, match=r"carry no Sentinel-2 names.*name the bands"):
        open_named_bands(plain, ("B08", "B04", "B03"))
    assert band_names(path.parent / "missing.tif") == ()  # opening it says why


def test_bands_marked_red_green_and_blue_are_read_as_such(make_geotiff) -> None:
    from rasterio.enums import ColorInterp

    data = np.stack([np.full((8, 8), v, np.uint8) for v in (20, 30, 40, 80)])
    path = make_geotiff("bgrn.tif", data=data)
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined]
    assert tuple(read(open_scene(path))[0][0, 0]) == (40, 30, 20)
    assert tuple(read(open_scene(path, bands=(1, 2, 3)))[0][0, 0]) == (20, 30, 40)  # --bands still rules


def test_uint16_is_stretched_not_truncated(make_geotiff) -> None:
    # Values 1000..3000: dropping the low byte would give noise; a stretch gives a ramp.
    ramp = np.tile(np.linspace(1000, 3000, 100).astype(np.uint16), (3, 10, 1))
    scene = open_scene(make_geotiff("ramp.tif", data=ramp))
    rgb, _ = read(scene)
    row = rgb[0, :, 0].astype(int)
    assert (np.diff(row) >= 0).all()
    assert row[0] == 0 and row[-1] == 255
    assert scene.stretch is not None and scene.stretch[0][0] == pytest.approx(1040, abs=5)


def test_float_with_nan_nodata(make_geotiff) -> None:
    data = np.tile(np.linspace(0.0, 1.0, 50, dtype=np.float32), (3, 20, 1))
    data[:, :, :10] = np.nan
    scene = open_scene(make_geotiff("f.tif", data=data, nodata=float("nan")))
    rgb, valid = read(scene)
    assert not valid[:, :10].any() and valid[:, 10:].all()
    assert rgb[:, 10:, 0].max() == 255


def test_nodata_windows_are_known_before_reading(make_geotiff) -> None:
    data = np.zeros((3, 600, 600), np.uint16)
    data[:, 500:, 500:] = 1500
    scene = open_scene(make_geotiff("nd.tif", data=data, nodata=0))
    assert not scene.window_may_hold_data(Window(0, 0, 256, 256))
    assert scene.window_may_hold_data(Window(344, 344, 256, 256))
    assert not scene.all_nodata


def test_untagged_zero_fill_of_16_bit_bands_is_nodata(make_geotiff) -> None:
    # A Sentinel-2 export with no nodata tag: zeros in every band beyond the swath edge.
    data = np.random.default_rng(0).integers(500, 3000, (3, 40, 60)).astype(np.uint16)
    data[0, 3, 3] = 0  # near infrared over dark water can be 0 in L2A: the other bands make it data
    filled = np.zeros((3, 40, 100), np.uint16)
    filled[:, :, :60] = data
    plain, edge = open_scene(make_geotiff("plain.tif", data=data)), open_scene(make_geotiff("edge.tif", data=filled))
    assert edge.stretch == plain.stretch
    _, valid = read(edge)
    assert valid[:, :60].all() and not valid[:, 60:].any()
    # 8-bit black is a colour, not a fill: still valid
    _, valid8 = read(open_scene(make_geotiff("black.tif", data=np.zeros((3, 8, 8), np.uint8))))
    assert valid8.all()


def test_all_nodata_scene(make_geotiff) -> None:
    scene = open_scene(make_geotiff("empty.tif", data=np.zeros((3, 50, 50), np.uint16), nodata=0))
    assert scene.all_nodata


def test_vrt_and_band_folder(make_geotiff, tmp_path: Path) -> None:
    values = {"B02": 30, "B03": 20, "B04": 10, "B08": 99}
    for band, v in values.items():
        make_geotiff(f"s2/T53_20240501T013000_{band}.tif", data=np.full((1, 16, 16), v * 100, np.uint16))
    scene = open_scene(tmp_path / "s2")
    assert [r.path.name.split("_")[-1] for r in scene.bands] == ["B04.tif", "B03.tif", "B02.tif"]
    assert scene.acquired_at == datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
    # --bands on a folder indexes bands sorted by name: B02, B03, B04, B08
    nir = open_scene(tmp_path / "s2", bands=(4, 3, 2))
    assert nir.bands[0].path.name.endswith("B08.tif")
    # A VRT over the multiband file reads the same pixels.
    src = make_geotiff("m.tif", width=20, height=10)
    vrt = tmp_path / "m.vrt"
    with rasterio.open(src) as ds:
        bands = "".join(
            f'<VRTRasterBand dataType="Byte" band="{b}"><SimpleSource><SourceFilename relativeToVRT="1">m.tif</SourceFilename>'
            f"<SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
            for b in (1, 2, 3)
        )
        vrt.write_text(
            f'<VRTDataset rasterXSize="20" rasterYSize="10"><SRS>{ds.crs.to_wkt()}</SRS>'
            f"<GeoTransform>{', '.join(str(v) for v in ds.transform.to_gdal())}</GeoTransform>{bands}</VRTDataset>"
        )
    np.testing.assert_array_equal(read(open_scene(vrt))[0], read(open_scene(src))[0])


def test_band_folder_with_different_grids(make_geotiff, tmp_path: Path) -> None:
    make_geotiff("s2/x_B02.tif", data=np.ones((1, 16, 16), np.uint16))
    make_geotiff("s2/x_B03.tif", data=np.ones((1, 16, 16), np.uint16))
    make_geotiff("s2/x_B04.tif", data=np.ones((1, 20, 16), np.uint16))
    with pytest.raises(SceneReadError, match=r"differs from .*gdalwarp"):
        open_scene(tmp_path / "s2")


def test_a_coarser_band_over_the_same_area_is_read_on_the_finest_grid(make_geotiff, tmp_path: Path) -> None:
    """A 20 m B11 beside 10 m B02 and B03 (as Sentinel-2 delivers them) is read on their grid, whichever band comes
    first, interpolated (bilinear) as sen2ships' own 10 m B11 is; a band on another area is still refused."""
    fine = Affine(10, 0, 600000.0, 0, -10, 4750000.0)
    rng = np.random.default_rng(0)
    for band in ("B02", "B03"):
        make_geotiff(f"s2/x_{band}.tif", data=rng.integers(1, 4000, (1, 40, 60)).astype(np.uint16), transform=fine)
    b11 = np.full((1, 20, 30), 1000, np.uint16)
    b11[0, :, 15:] = 3000  # dark west, bright east, the edge at 300 m
    make_geotiff("s2/x_B11.tif", data=b11, transform=Affine(20, 0, 600000.0, 0, -20, 4750000.0))
    folder = tmp_path / "s2"
    scene = open_named_bands(folder, ("B11", "B03", "B02"))
    assert (scene.width, scene.height, scene.transform) == (60, 40, fine)
    rgb, valid = read(scene, Window(0, 0, 60, 40))
    red = rgb[..., 0].astype(int)  # B11, stretched
    assert valid.all() and (red == red[:1]).all()  # the same in every row
    assert (red[0, :29] == red[0, 0]).all() and (red[0, 31:] == red[0, -1]).all() and red[0, 0] < red[0, -1]
    assert red[0, 0] < red[0, 29] < red[0, 30] < red[0, -1]  # the edge blended over the two 10 m columns beside it
    make_geotiff("s2/x_B11.tif", data=b11, transform=Affine(20, 0, 600100.0, 0, -20, 4750000.0))  # 100 m east
    with pytest.raises(SceneReadError, match=r"x_B11.tif: grid .* differs from x_B03.tif .* in more than its pixel size"):
        open_named_bands(folder, ("B11", "B03", "B02"))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        (b"", r"empty \(0 bytes\)"),
        (b"just some text\n" * 50, "not a raster"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "x.tif"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SceneReadError, match=match) as info:
        open_scene(path)
    assert str(path) in str(info.value)


def test_truncated_tiff(make_geotiff, tmp_path: Path) -> None:
    good = make_geotiff("g.tif", width=300, height=300)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(SceneReadError, match="truncated or corrupt"):
        open_scene(cut)


def test_oversized_header(tmp_path: Path) -> None:
    path = tmp_path / "huge.tif"
    with rasterio.open(
        path, "w", driver="GTiff", width=100000, height=100000, count=1, dtype="uint8",
        crs="EPSG:32653", transform=Affine(1, 0, 0, 0, -1, 0), tiled=True, sparse_ok=True,
    ):  # fmt: skip
        pass
    with pytest.raises(SceneReadError, match=r"10\.0 Gpx.*--max-pixels"):
        open_scene(path)


def test_ungeoreferenced(make_geotiff) -> None:
    path = make_geotiff("plain.tif", crs=None, transform=Affine.identity())
    with pytest.raises(GeoreferenceError, match="--allow-ungeoreferenced"):
        open_scene(path)
    assert not open_scene(path, allow_ungeoreferenced=True).georeferenced


def test_rotated_geotransform_is_kept(make_geotiff) -> None:
    rotated = Affine.translation(500000, 4750000) @ Affine.rotation(30) @ Affine.scale(0.5, -0.5)
    scene = open_scene(make_geotiff("rot.tif", transform=rotated))
    assert scene.transform is not None and scene.transform.almost_equals(rotated)


def cloudy_folder(make_geotiff, tmp_path: Path, scl: bool = True, scl_x: float = 500000.0) -> Path:  # type: ignore[no-untyped-def]
    """A 16-bit band folder (B03, B04, B08), 80 x 60 px at 0.5 m, a bright cloud over its top right and, when
    ``scl``, Sentinel-2's scene classification at half the resolution marking it (9, cloud high probability),
    its grid starting at easting ``scl_x`` (the bands' start at 500000)."""
    rng = np.random.default_rng(1)
    cloud = np.zeros((60, 80), bool)
    cloud[:30, 40:] = True
    for band in ("B03", "B04", "B08"):
        data = rng.integers(500, 3000, (1, 60, 80)).astype(np.uint16)
        data[0][cloud] = 60000
        make_geotiff(f"port/T52_{band}.tif", data=data)
    if scl:
        classes = np.full((1, 30, 40), 6, np.uint8)  # water
        classes[0, :15, 20:] = 9
        make_geotiff("port/T52_SCL_20m.tif", data=classes, transform=Affine(1.0, 0, scl_x, 0, -1.0, 4750000.0))
    return tmp_path / "port"


def test_scl_clouds_are_nodata_for_the_stretch_and_the_windows(make_geotiff, tmp_path: Path) -> None:
    folder = cloudy_folder(make_geotiff, tmp_path)
    scene = open_scene(folder, band_indices(folder, ("B08", "B04", "B03")))
    assert scene.clouds == BandRef(folder / "T52_SCL_20m.tif", 1)
    clear = np.ones((60, 80), bool)
    clear[:30, 40:] = False
    assert (scene.valid_sample == clear).all()
    # the stretch is measured on the clear pixels alone: the cloud's 60000 would have set its top
    with rasterio.open(folder / "T52_B08.tif") as ds:
        b08 = ds.read(1)
    assert scene.stretch[0] == pytest.approx(tuple(np.percentile(b08[clear].astype(float), (2, 98))))  # type: ignore[index]
    rgb, valid = read(scene, Window(30, 20, 32, 32))  # half a window under the cloud, mapped from the 1 m SCL grid
    assert (valid == clear[20:52, 30:62]).all()
    assert (rgb[~valid] == 0).all() and rgb[valid].any()


def test_an_scl_band_of_a_named_file_masks_its_clouds_as_a_folder_scl_file_does(make_geotiff, tmp_path: Path) -> None:
    """cloudy_folder's bands and SCL stacked in one file, as Earth Engine exports them (SCL on the 10 m grid)."""
    folder = cloudy_folder(make_geotiff, tmp_path)
    in_folder = open_scene(folder, band_indices(folder, ("B08", "B04", "B03")))
    planes = []
    for band in ("B03", "B04", "B08"):
        with rasterio.open(folder / f"T52_{band}.tif") as ds:
            planes.append(ds.read(1))
    with rasterio.open(folder / "T52_SCL_20m.tif") as ds:
        planes.append(np.kron(ds.read(1), np.ones((2, 2), np.uint8)).astype(np.uint16))  # onto the bands' grid
    stack = describe(make_geotiff("stack.tif", data=np.stack(planes)), ("B3", "B4", "B8", "SCL"))
    scene = open_named_bands(stack, ("B08", "B04", "B03"))
    assert scene.clouds == BandRef(stack, 4)
    assert (scene.valid_sample == in_folder.valid_sample).all() and scene.stretch == in_folder.stretch
    window = Window(30, 20, 32, 32)
    assert all((a == b).all() for a, b in zip(read(scene, window), read(in_folder, window), strict=True))
    assert open_named_bands(describe(stack, ("B3", "B4", "B8", "QA60")), ("B08", "B04", "B03")).clouds is None


def test_a_stretch_measured_over_a_window_uses_its_clear_pixels_alone(make_geotiff, tmp_path: Path) -> None:
    folder = cloudy_folder(make_geotiff, tmp_path)
    scene = open_scene(folder, band_indices(folder, ("B08", "B04", "B03")))
    window = Window(20, 10, 40, 40)  # the left half clear, the right half's top under the cloud
    over = stretched_over(scene, window)
    with rasterio.open(folder / "T52_B08.tif") as ds:
        b08 = ds.read(1, window=window).astype(float)
    clear = np.ones((40, 40), bool)
    clear[:20, 20:] = False
    assert over.stretch[0] == pytest.approx(tuple(np.percentile(b08[clear], (2, 98))))  # type: ignore[index]
    assert over.stretch != scene.stretch and (over.valid_sample == scene.valid_sample).all()
    assert stretched_over(scene, Window(60, 0, 20, 20)) is scene  # all cloud: nothing to measure, the scene's stretch stays
    assert stretched_over(scene, Window(-5, -5, 100, 100)) is scene  # the whole scene: measured already
    grey = open_scene(make_geotiff("byte.tif"))
    assert stretched_over(grey, Window(0, 0, 8, 8)) is grey  # 8-bit scenes are read as they are


def test_an_scl_grid_offset_from_the_bands_masks_where_it_lies(make_geotiff, tmp_path: Path) -> None:
    """SCL starting one of its pixels (two band pixels) east of the bands: its cloud, from its column 20, lies over
    band columns 42 on, not 40 on as matching the grids by size alone would put it."""
    folder = cloudy_folder(make_geotiff, tmp_path, scl_x=500001.0)
    scene = open_scene(folder, band_indices(folder, ("B08", "B04", "B03")))
    clear = np.ones((60, 80), bool)
    clear[:30, 42:] = False
    assert (scene.valid_sample == clear).all()
    _, valid = read(scene, Window(30, 20, 32, 32))
    assert (valid == clear[20:52, 30:62]).all()


def test_a_scene_classification_on_another_area_is_refused(make_geotiff, tmp_path: Path) -> None:
    folder = cloudy_folder(make_geotiff, tmp_path, scl=False)
    make_geotiff(
        "port/T52_SCL.tif", data=np.full((1, 30, 40), 9, np.uint8), transform=Affine(1.0, 0, 600000.0, 0, -1.0, 4750000.0)
    )
    with pytest.raises(SceneReadError, match=r"T52_SCL.tif: scene classification grid .* does not cover the bands'") as exc:
        open_scene(folder, band_indices(folder, ("B08", "B04", "B03")))
    assert "export SCL over the same area and CRS as the bands, or remove it" in str(exc.value)


def test_synthetic_cloud_copies_keep_ships_clear_and_their_scl_masks_the_cloud(make_geotiff, tmp_path: Path) -> None:
    """datasets/synthetic_cloud.py on a one-port sen2ships layout: what it writes, and open_scene reading its SCL."""
    import json

    from tests.conftest import load_script
    from tests.test_training import rle

    for band in ("B03", "B04", "B08"):
        data = np.full((1, 120, 160), 800, np.uint16)
        data[0, 40:46, 30:60] = 4000  # the ship
        make_geotiff(f"s2/port/port_{band}.tif", data=data)
    mask = np.zeros((120, 160), bool)
    mask[40:46, 30:60] = True
    image = {"id": 1, "file_name": "port_rgb.tif", "height": 120, "width": 160}
    ship = {"id": 1, "image_id": 1, "bbox": [30, 40, 30, 6], "segmentation": {"counts": rle(mask), "size": [120, 160]}}
    (tmp_path / "s2" / "annotations.json").write_text(json.dumps({"images": [image], "annotations": [ship]}))
    cloud = load_script("datasets/synthetic_cloud.py")
    out = tmp_path / "cloudy"
    cloud.write_cloudy(tmp_path / "s2", out, cover=0.3, brightness=2.0, clear_px=10, scl=True, seed=0)
    with rasterio.open(out / "port" / "port_B08.tif") as ds:
        b08 = ds.read(1)
    assert (b08[mask] == 4000).all() and (b08[30:56, 20:70] == np.where(mask[30:56, 20:70], 4000, 800)).all()
    assert 0.2 < (b08 > 4000).mean() < 0.4  # the cloud, brighter than the brightest land (here the ship)
    scene = open_scene(out / "port", band_indices(out / "port", ("B08", "B04", "B03")))
    assert scene.clouds == BandRef(out / "port" / "port_SCL.tif", 1)
    thick = b08 >= 800 + (8000 - 800) * 0.6  # over 60% opaque: 9 on the 20 m SCL, bar a coarse cell at its edge
    assert (~scene.valid_sample[thick]).mean() > 0.95 and scene.valid_sample[mask].all()
    (out / "port" / "port_SCL.tif").unlink()  # without it, the cloud's 8000 is the stretch's top
    unmasked = open_scene(out / "port", band_indices(out / "port", ("B08", "B04", "B03")))
    assert unmasked.stretch[0][1] == 8000 and scene.stretch[0][1] < 1600  # type: ignore[index]  # water and thin edges


def test_a_band_folder_in_sen2ships_own_layout_reads_its_band_files_alone(make_geotiff, tmp_path: Path) -> None:
    """Upstream sen2ships port folders also hold composites (NDWI, SWIR, true colour), labels, pictures and mask folders."""
    stem = "2023-04-26-00_00_2023-04-26-23_59_Sentinel-2_L2A"
    for k, band in enumerate(("B02", "B03", "B04", "B08", "B11")):
        make_geotiff(f"root/port/{stem}_{band}_(Raw).tiff", data=np.full((1, 16, 16), 100 * (k + 1), np.uint16))
    make_geotiff(f"root/port/{stem}_NDWI.tiff", data=np.zeros((1, 16, 16), np.float32))
    make_geotiff(f"root/port/{stem}_SWIR.tiff", width=16, height=16)
    make_geotiff("root/port/port_rgb.tiff", width=16, height=16, dtype="uint16")
    folder = tmp_path / "root" / "port"
    (folder / "port_coco.json").write_text("{}")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / f"{stem}_True_color.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / "port_binary_masks" / "SegmentationClass").mkdir(parents=True)
    (folder / "port_binary_masks" / "SegmentationClass" / "port_rgb.png").write_bytes(b"\x89PNG")
    assert band_names(folder) == ("B02", "B03", "B04", "B08", "B11")
    assert expand_inputs([str(tmp_path / "root")]) == [folder] and expand_inputs([str(folder)]) == [folder]
    nir = open_named_bands(folder, ("B08", "B04", "B03"))
    assert [r.path.name.split("_")[-2] for r in nir.bands] == ["B08", "B04", "B03"]
    assert nir.acquired_at == datetime(2023, 4, 26, tzinfo=UTC)


def test_a_safe_product_reads_as_a_band_folder_each_band_at_its_finest(make_geotiff, tmp_path: Path) -> None:
    """L2A: bands from R10m before R20m and R60m, SCL from R20m, the time from the product's name; and L1C alike."""
    rng = np.random.default_rng(0)
    bands = {b: rng.integers(1000, 3000, (60, 80)).astype(np.uint16) for b in ("B02", "B03", "B04", "B08", "B11", "B01")}
    scl = np.full((60, 80), 6, np.uint8)  # water
    scl[:30, 40:] = 9  # cloud, high probability
    name = "S2B_MSIL2A_20240501T015659_N0510_R060_T52TGN_20240501T043512.SAFE"
    safe = write_safe(make_geotiff, name, {**bands, "SCL": scl}, under="products")
    assert band_names(safe) == ("B01", "B02", "B03", "B04", "B08", "B11")
    scene = open_named_bands(safe, ("B08", "B04", "B03"))
    assert [(r.path.parent.name, r.path.name[-11:]) for r in scene.bands] == [
        ("R10m", "B08_10m.jp2"), ("R10m", "B04_10m.jp2"), ("R10m", "B03_10m.jp2"),
    ]  # fmt: skip
    assert scene.clouds is not None and scene.clouds.path.name.endswith("SCL_20m.jp2")
    assert (scene.width, scene.height, scene.acquired_at) == (80, 60, datetime(2024, 5, 1, 1, 56, 59, tzinfo=UTC))
    clear = np.ones((60, 80), bool)
    clear[:30, 40:] = False
    assert (scene.valid_sample == clear).all()  # the 20 m SCL's cloud masks the 10 m bands
    with rasterio.open(scene.bands[0].path) as ds:
        assert (ds.read(1) == bands["B08"]).all()  # what the product holds, losslessly
    # the granule, or its IMG_DATA folder, is the same scene; a folder of products is one scene each
    granule = next((safe / "GRANULE").iterdir())
    for inner in (granule, granule / "IMG_DATA"):
        assert open_named_bands(inner, ("B08", "B04", "B03")).bands == scene.bands
    other = write_safe(make_geotiff, name.replace("20240501T015659", "20240511T015659"), bands, under="products")
    assert expand_inputs([str(tmp_path / "products")]) == [safe, other]
    # L1C: every band once in IMG_DATA, at its own resolution
    l1c = write_safe(make_geotiff, name.replace("MSIL2A", "MSIL1C"), bands, level="L1C")
    assert band_names(l1c) == ("B01", "B02", "B03", "B04", "B08", "B11")
    assert open_named_bands(l1c, ("B08", "B04", "B03")).clouds is None


def test_a_zipped_safe_product_says_to_unzip_it(make_geotiff, tmp_path: Path) -> None:
    safe = write_safe(
        make_geotiff, "S2B_MSIL2A_20240501T015659_N0510_R060_T52TGN_20240501T043512.SAFE", {"B04": np.ones((8, 8), np.uint16)}
    )
    archive = Path(shutil.make_archive(str(safe), "zip", tmp_path, safe.name))
    with pytest.raises(SceneReadError, match=r"SAFE.zip: a zip archive; unzip it and pass .* its .SAFE folder"):
        open_scene(archive)


def test_a_safe_product_of_several_granules_names_the_fix(make_geotiff, tmp_path: Path) -> None:
    name = "S2A_MSIL1C_20160105T020342_N0201_R060_T52TGN_20160105T020342.SAFE"
    safe = write_safe(make_geotiff, name, {"B04": np.full((20, 20), 900, np.uint16)}, level="L1C")
    granule = next((safe / "GRANULE").iterdir())
    (granule.parent / "S2A_OPER_MSI_L1C_TL_SGS__20160105T0_A002000_T52TGP").mkdir()
    (granule.parent / "S2A_OPER_MSI_L1C_TL_SGS__20160105T0_A002000_T52TGP" / "IMG_DATA").mkdir()
    with pytest.raises(SceneReadError, match=r"\.SAFE: a SAFE product of 2 granules; pass one granule's folder"):
        open_scene(safe)
    assert expand_inputs([str(tmp_path)]) == [safe]  # still one scene, reported as it fails
    assert band_names(granule) == ("B04",)


def test_the_gdal_block_cache_is_mebibytes_not_bytes() -> None:
    """rasterio hands an integer GDAL_CACHEMAX to GDAL in bytes; the readers' environment says 128 MiB."""
    from rasterio._env import get_gdal_config

    from detector.raster import _GDAL_ENV

    with rasterio.Env(**_GDAL_ENV):
        assert int(get_gdal_config("GDAL_CACHEMAX")) == 128 * 1024 * 1024
