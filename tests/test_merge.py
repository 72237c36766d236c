import numpy as np

from detector.merge import cut_by_window, merge_seams, touches_invalid
from detector.records import Detections


def boxes(rows: list[tuple[float, ...]]) -> Detections:
    arr = np.array(rows, float)
    return Detections(arr[:, :5], arr[:, 5], np.ones(len(arr), int), arr[:, 6:8].astype(int))


def test_whole_box_beats_fragment_from_other_window() -> None:
    # ship 60 px long across the seam x=256 of window (0,0); whole in window (160,0)
    d = boxes([
        (236.0, 100.0, 40.0, 12.0, 0.0, 0.95, 0, 0),  # fragment, cut at x=256, higher score
        (256.0, 100.0, 60.0, 12.0, 0.0, 0.80, 160, 0),  # whole
    ])  # fmt: skip
    cut = cut_by_window(d, 256, 1000, 1000)
    assert cut.tolist() == [True, False]
    kept = merge_seams(d, cut)
    assert len(kept) == 1 and kept.obb[0, 2] == 60.0


def test_same_ship_whole_in_two_windows_is_reported_once() -> None:
    d = boxes([(200.0, 100.0, 30.0, 10.0, 10.0, 0.8, 0, 0), (200.5, 100.2, 30.0, 10.0, 10.5, 0.9, 160, 0)])
    kept = merge_seams(d, cut_by_window(d, 256, 1000, 1000))
    assert len(kept) == 1 and kept.score[0] == np.float32(0.9)


def test_neighbours_are_kept() -> None:
    # Two boats side by side, each seen by a different window, and touching boats in one window.
    d = boxes([
        (200.0, 100.0, 30.0, 10.0, 0.0, 0.8, 0, 0),
        (200.0, 111.0, 30.0, 10.0, 0.0, 0.8, 160, 0),
        (50.0, 50.0, 30.0, 10.0, 0.0, 0.8, 0, 0),
        (50.0, 55.0, 30.0, 10.0, 0.0, 0.7, 0, 0),  # overlapping heavily, same window: the model's call
    ])  # fmt: skip
    assert len(merge_seams(d, cut_by_window(d, 256, 1000, 1000))) == 4


def test_scene_edge_cuts_across_the_length_only() -> None:
    d = boxes([
        (5.0, 100.0, 20.0, 6.0, 0.0, 0.9, 0, 0),  # long axis into the left edge: cut
        (50.0, 3.0, 40.0, 6.0, 2.0, 0.9, 0, 0),  # along the top edge: kept
        (50.0, 50.0, 40.0, 6.0, 0.0, 0.9, 0, 0),  # inside
        (99.0, 50.0, 30.0, 8.0, 80.0, 0.9, 0, 0),  # long axis vertical at the bottom edge (height 100)
    ])  # fmt: skip
    assert touches_invalid(d, 200, 100).tolist() == [True, False, False, False]
    d2 = boxes([(50.0, 95.0, 30.0, 8.0, 80.0, 0.9, 0, 0)])
    assert touches_invalid(d2, 200, 100).tolist() == [True]
