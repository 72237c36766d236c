import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin

from detector.georef import Georeferencer, ground_sample_distance
from detector.records import Detections

A = 6378137.0
E2 = 0.00669437999014  # WGS84 first eccentricity squared


def dets(*obbs: tuple[float, float, float, float, float]) -> Detections:
    n = len(obbs)
    return Detections(np.array(obbs, float), np.full(n, 0.9), np.ones(n, int))


def mercator_lonlat(x: float, y: float) -> tuple[float, float]:
    """EPSG:3857 inverse, in closed form (independent of PROJ)."""
    return math.degrees(x / A), math.degrees(math.atan(math.sinh(y / A)))


def mercator_y(lat: float) -> float:
    return A * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def test_point_within_one_metre_in_web_mercator() -> None:
    x0, y0 = 14_600_000.0, mercator_y(43.0)
    geo = Georeferencer(CRS.from_epsg(3857), from_origin(x0, y0, 10.0, 10.0))
    ground = geo.ground(dets((123.5, 456.25, 30, 10, 0)))
    lon, lat = mercator_lonlat(x0 + 123.5 * 10, y0 - 456.25 * 10)
    north_m = (ground.lat[0] - lat) * 111_000
    east_m = (ground.lon[0] - lon) * 111_000 * math.cos(math.radians(lat))
    assert math.hypot(north_m, east_m) < 1.0


def test_point_on_utm_central_meridian() -> None:
    # EPSG:32653 has its central meridian at 135°E and the equator at northing 0.
    geo = Georeferencer(CRS.from_epsg(32653), from_origin(499_000.0, 100.0, 1.0, 1.0))
    ground = geo.ground(dets((1000.0, 100.0, 20, 5, 0)))
    assert ground.lon[0] == pytest.approx(135.0, abs=1e-8)
    assert ground.lat[0] == pytest.approx(0.0, abs=1e-8)


def test_lengths_in_web_mercator_at_43n_are_ground_metres() -> None:
    lat = 43.0
    phi = math.radians(lat)
    w = 1 - E2 * math.sin(phi) ** 2
    along_parallel = A / math.sqrt(w) * math.cos(phi) / A  # ground metres per Mercator metre east
    along_meridian = A * (1 - E2) / w**1.5 * math.cos(phi) / A  # ... and north
    geo = Georeferencer(CRS.from_epsg(3857), from_origin(14_600_000.0, mercator_y(lat) + 500.0, 10.0, 10.0))
    # 100 px boxes centred on 43°N: one along +col (east), one along +row (south)
    ground = geo.ground(dets((200.0, 50.0, 100.0, 20.0, 0.0), (200.0, 50.0, 100.0, 20.0, 90.0)))
    assert ground.length_m[0] == pytest.approx(1000 * along_parallel, rel=0.01)
    assert ground.beam_m[0] == pytest.approx(200 * along_meridian, rel=0.01)
    assert ground.length_m[1] == pytest.approx(1000 * along_meridian, rel=0.01)
    assert ground.length_m[0] == pytest.approx(731, rel=0.01)  # not the 1000 "Mercator metres"
    assert ground_sample_distance(CRS.from_epsg(3857), geo.transform, 400, 100) == pytest.approx(
        10 * (along_parallel + along_meridian) / 2, rel=0.01
    )


def test_headings_clockwise_from_true_north() -> None:
    geo = Georeferencer(CRS.from_epsg(32653), from_origin(500_000.0, 4_750_000.0, 1.0, 1.0))
    ground = geo.ground(dets((50, 50, 40, 10, 0.0), (50, 50, 40, 10, 90.0), (50, 50, 40, 10, 45.0), (50, 50, 40, 10, 135.0)))
    np.testing.assert_allclose(ground.heading_deg, [90.0, 0.0, 135.0, 45.0], atol=0.05)
    np.testing.assert_allclose(ground.length_m, 40.0, rtol=0.002)  # UTM scale near the central meridian


def test_rotated_geotransform() -> None:
    rotated = Affine.translation(500_000.0, 4_750_000.0) @ Affine.rotation(30) @ Affine.scale(1.0, -1.0)
    ground = Georeferencer(CRS.from_epsg(32653), rotated).ground(dets((10, 10, 40, 10, 0.0)))
    assert ground.heading_deg[0] == pytest.approx(60.0, abs=0.05)
    assert ground.length_m[0] == pytest.approx(40.0, rel=0.002)


def test_ungeoreferenced_sizes_need_gsd() -> None:
    boxes = dets((10, 10, 40, 10, 0.0))
    assert np.isnan(Georeferencer(None, None).ground(boxes).length_m).all()
    ground = Georeferencer(None, None, gsd_m=0.5).ground(boxes)
    assert ground.length_m[0] == 20.0 and ground.beam_m[0] == 5.0
    assert np.isnan(ground.lon).all() and np.isnan(ground.heading_deg).all()
