import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from rasterio.crs import CRS
from rasterio.transform import from_origin

from detector.aoi import aoi_in_pixels, load_aoi, stretch_window
from detector.errors import GeoreferenceError, UsageError
from detector.georef import Georeferencer


def write(tmp_path: Path, geometry: dict) -> Path:
    path = tmp_path / "aoi.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": geometry}]})
    )
    return path


def test_aoi_lands_on_the_right_pixels(tmp_path: Path) -> None:
    crs, transform = CRS.from_epsg(32653), from_origin(500000.0, 4750000.0, 0.5, 0.5)
    geo = Georeferencer(crs, transform)
    lon, lat = geo.pixel_to_lonlat(np.array([100.0, 300.0, 300.0, 100.0]), np.array([50.0, 50.0, 250.0, 250.0]))
    ring = [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]
    aoi = load_aoi(write(tmp_path, {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}))
    px = aoi_in_pixels(aoi, crs, transform)
    np.testing.assert_allclose(px.bounds, (100, 50, 300, 250), atol=0.05)
    with pytest.raises(GeoreferenceError):
        aoi_in_pixels(aoi, None, None)


def test_bad_aoi_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no Polygon"):
        load_aoi(write(tmp_path, {"type": "Point", "coordinates": [135.0, 42.8]}))
    bowtie = {"type": "Polygon", "coordinates": [[[135, 42], [135.1, 42.1], [135.1, 42], [135, 42.1], [135, 42]]]}
    with pytest.raises(UsageError, match="invalid"):
        load_aoi(write(tmp_path, bowtie))
    metres = {"type": "Polygon", "coordinates": [[[500000, 4750000], [500100, 4750000], [500100, 4750100], [500000, 4750000]]]}
    with pytest.raises(UsageError, match="lon/lat"):
        load_aoi(write(tmp_path, metres))
    assert (
        shapely.area(
            load_aoi(write(tmp_path, {"type": "Polygon", "coordinates": [[[135, 42], [136, 42], [136, 43], [135, 42]]]}))
        )
        > 0
    )


@pytest.mark.parametrize(
    ("bounds", "size", "side", "window"),
    [
        ((100, 100, 300, 300), (5000, 5000), 2000, (0, 0, 2000, 2000)),  # grown about its centre, moved inside
        ((2400, 2400, 2600, 2600), (5000, 5000), 2000, (1500, 1500, 2000, 2000)),  # grown about its centre
        ((4900, 10, 4990, 50), (5000, 5000), 2000, (3000, 0, 2000, 2000)),  # moved in from the right edge
        ((0, 0, 4000, 300), (5000, 5000), 2000, (0, 0, 4000, 2000)),  # a side longer than the context is kept
        ((100, 100, 300, 300), (1000, 700), 2000, (0, 0, 1000, 700)),  # a scene smaller than the context: all of it
        ((-900, -100, -10, -5), (5000, 5000), 2000, (0, 0, 5000, 5000)),  # outside the scene: all of it
        ((-50, 4950, 60, 5100), (5000, 5000), 100, (0, 4900, 100, 100)),  # cut to the scene, then grown inside it
    ],
)
def test_the_stretch_window_is_the_aoi_grown_to_the_context_inside_the_scene(
    bounds: tuple[float, ...], size: tuple[int, int], side: float, window: tuple[int, ...]
) -> None:
    got = stretch_window(shapely.box(*bounds), *size, side)
    assert (got.col_off, got.row_off, got.width, got.height) == window
