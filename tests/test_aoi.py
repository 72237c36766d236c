import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from rasterio.crs import CRS
from rasterio.transform import from_origin

from detector.aoi import aoi_in_pixels, load_aoi
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
