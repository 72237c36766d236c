import numpy as np
import pytest
from rasterio.transform import from_origin
from scipy.optimize import linear_sum_assignment

from detector.engine import DetectSettings, detect_scene, pack_boxes, unpack_boxes
from detector.raster import open_scene
from detector.records import Detections
from tests.fakes import BlobDetector, draw_ships

SHIPS = [
    (100.0, 100.0, 60.0, 14.0, 20.0),
    (250.0, 120.0, 70.0, 16.0, 0.0),  # across the first vertical seam
    (300.0, 250.0, 50.0, 12.0, 90.0),  # across a horizontal seam
    (230.0, 235.0, 44.0, 12.0, 45.0),  # at a seam crossing
    (520.0, 400.0, 80.0, 18.0, 135.0),
    (610.0, 90.0, 40.0, 10.0, 170.0),
    (700.0, 560.0, 66.0, 15.0, 60.0),
]


def match(found, truth):
    t = np.array(truth)
    d = np.hypot(found.obb[:, None, 0] - t[None, :, 0], found.obb[:, None, 1] - t[None, :, 1])
    r, c = linear_sum_assignment(d)
    return r, c, d[r, c]


def test_ships_across_seams_are_found_once_and_whole(make_geotiff) -> None:
    path = make_geotiff("sea.tif", data=draw_ships((640, 800), SHIPS))
    detector = BlobDetector(256)
    result = detect_scene(open_scene(path), detector, DetectSettings(overlap=96, batch_size=3))
    assert len(result.detections) == len(SHIPS)
    r, c, dist = match(result.detections, SHIPS)
    assert dist.max() < 1.5
    np.testing.assert_allclose(result.detections.obb[r, 2], np.array(SHIPS)[c, 2], atol=3.0)
    np.testing.assert_allclose(result.detections.obb[r, 3], np.array(SHIPS)[c, 3], atol=3.0)
    # every box traces back to a window that holds it whole
    for (col, row), obb in zip(result.detections.window, result.detections.obb, strict=True):
        assert col <= obb[0] < col + 256 and row <= obb[1] < row + 256
    assert detector.windows == result.windows_inferred == result.windows_total


def test_batch_size_does_not_change_results(make_geotiff) -> None:
    path = make_geotiff("sea.tif", data=draw_ships((640, 800), SHIPS))
    scene = open_scene(path)
    a = detect_scene(scene, BlobDetector(256), DetectSettings(overlap=96, batch_size=1)).detections
    b = detect_scene(scene, BlobDetector(256), DetectSettings(overlap=96, batch_size=8)).detections
    np.testing.assert_array_equal(a.obb, b.obb)


def test_nodata_makes_no_ships_and_empty_windows_are_not_inferred(make_geotiff) -> None:
    data = draw_ships((640, 800), SHIPS)
    data[:, :, 400:] = 0  # right half is nodata; the fake detector sees it as a "hole"
    data[:, 300:340, 100:140] = 0  # a nodata hole inside valid data
    path = make_geotiff("half.tif", data=data, nodata=0)
    detector = BlobDetector(256)
    result = detect_scene(open_scene(path), detector, DetectSettings(overlap=96, batch_size=2))
    assert (result.detections.class_id == 0).all()  # no box from nodata
    assert (result.detections.obb[:, 0] < 400).all()
    left = [s for s in SHIPS if s[0] + s[2] / 2 < 395]
    assert len(result.detections) == len(left)
    # windows entirely inside the nodata half are never read nor inferred
    assert result.windows_inferred < result.windows_total
    assert detector.windows == result.windows_inferred


def test_ship_cut_by_scene_edge_is_dropped_unless_kept(make_geotiff) -> None:
    ships = [(10.0, 100.0, 60.0, 12.0, 0.0), (200.0, 100.0, 60.0, 12.0, 0.0)]
    path = make_geotiff("edge.tif", data=draw_ships((256, 300), ships), transform=from_origin(0, 0, 1, 1))
    scene = open_scene(path)
    assert len(detect_scene(scene, BlobDetector(256), DetectSettings(overlap=64)).detections) == 1
    assert len(detect_scene(scene, BlobDetector(256), DetectSettings(overlap=64, keep_cut=True)).detections) == 2


def test_reader_processes_give_the_same_boxes_as_the_reader_thread(make_geotiff) -> None:
    from detector.readers import ReaderPool

    scene = open_scene(make_geotiff("sea.tif", data=draw_ships((640, 800), SHIPS)))
    settings = DetectSettings(overlap=96, batch_size=2)
    threaded = detect_scene(scene, BlobDetector(256), settings).detections
    with ReaderPool(2) as pool:
        pooled = detect_scene(scene, BlobDetector(256), settings, pool=pool).detections
    np.testing.assert_array_equal(threaded.obb, pooled.obb)
    np.testing.assert_array_equal(threaded.window, pooled.window)


def test_windows_outside_the_aoi_are_never_read(make_geotiff) -> None:
    import shapely

    scene = open_scene(make_geotiff("sea.tif", data=draw_ships((640, 800), SHIPS)))
    aoi = shapely.box(0, 0, 380, 640)  # pixel space: the left part
    detector = BlobDetector(256)
    result = detect_scene(scene, detector, DetectSettings(overlap=96), aoi=aoi)
    assert detector.windows == result.windows_inferred < result.windows_total
    assert (result.detections.obb[:, 0] < 380).all()
    assert len(result.detections) == sum(1 for s in SHIPS if s[0] < 380)


def test_scaled_windows_give_boxes_in_scene_pixels(make_geotiff) -> None:
    # A model that sees windows enlarged 2x (as one trained on upsampled imagery).
    scene = open_scene(make_geotiff("sea.tif", data=draw_ships((640, 800), SHIPS)))
    plain = detect_scene(scene, BlobDetector(256), DetectSettings(overlap=96)).detections
    scaled = detect_scene(scene, BlobDetector(256), DetectSettings(overlap=48, scale=2.0)).detections
    assert len(scaled) == len(plain) == len(SHIPS)
    r, c, dist = match(scaled, [tuple(o) for o in plain.obb])
    assert dist.max() < 1.5
    np.testing.assert_allclose(scaled.obb[r, 2], plain.obb[c, 2], atol=3.0)


class Killed(Exception):
    pass


class MemoryCheckpoint:
    """Finished windows kept in a dict; ``kill_after`` batches saved, the next save dies like a killed job."""

    def __init__(self, kill_after: int | None = None) -> None:
        self.kept: dict = {}
        self.kill_after = kill_after
        self.saves = 0

    def done(self) -> dict:
        return {k: unpack_boxes(b) for k, b in self.kept.items()}

    def save(self, finished: list) -> None:
        if self.kill_after is not None and self.saves == self.kill_after:
            raise Killed
        self.saves += 1
        self.kept.update((k, pack_boxes(b)) for k, b in finished)


def test_a_scene_killed_between_batches_resumes_where_it_stopped_with_the_same_result(make_geotiff) -> None:
    path = make_geotiff("sea.tif", data=draw_ships((640, 800), SHIPS))
    scene = open_scene(path)
    settings = DetectSettings(overlap=96, batch_size=2)
    whole = detect_scene(scene, BlobDetector(256), settings)
    checkpoint = MemoryCheckpoint(kill_after=3)
    with pytest.raises(Killed):
        detect_scene(scene, BlobDetector(256), settings, checkpoint=checkpoint)
    assert len(checkpoint.kept) == 6  # three batches of two windows
    checkpoint.kill_after = None
    again = BlobDetector(256)
    resumed = detect_scene(scene, again, settings, checkpoint=checkpoint)
    assert again.windows == whole.windows_inferred - 6  # the kept windows are not read or inferred again
    assert (resumed.windows_resumed, resumed.windows_inferred) == (6, whole.windows_inferred)
    for field in ("obb", "score", "class_id", "window"):
        np.testing.assert_array_equal(getattr(resumed.detections, field), getattr(whole.detections, field))


def test_packed_boxes_round_trip_exactly() -> None:
    dets = Detections(np.array([[10.123456789, 20.5, 30.0, 8.0, 12.25]]), [0.8765432], [1], [[256, 512]])
    back, bad = unpack_boxes(pack_boxes((dets, np.array([True]))))
    assert back.obb.tobytes() == dets.obb.tobytes() and back.score.tobytes() == dets.score.tobytes()
    assert back.class_id.tolist() == [1] and back.window.tolist() == [[256, 512]] and bad.tolist() == [True]
    empty, none = unpack_boxes(pack_boxes((Detections.empty(), np.zeros(0, bool))))
    assert len(empty) == 0 and none.shape == (0,)
