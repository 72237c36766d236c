import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector.tiling import overlap_for_gsd, tile_windows, window_count, window_starts


@given(extent=st.integers(1, 5000), size=st.integers(8, 1024), frac=st.floats(0, 0.9))
def test_window_starts_cover_the_axis_and_stay_inside(extent: int, size: int, frac: float) -> None:
    overlap = min(int(size * frac), size - 1)
    starts = window_starts(extent, size, overlap)
    assert starts[0] == 0
    if extent <= size:
        assert starts == [0]
        return
    assert starts[-1] + size == extent
    assert all(0 <= s <= extent - size for s in starts)
    gaps = np.diff(starts)
    assert (gaps > 0).all()
    # neighbours share at least the requested overlap
    assert (gaps <= size - overlap).all()


@given(width=st.integers(1, 700), height=st.integers(1, 700), size=st.integers(16, 256), frac=st.floats(0, 0.6))
def test_windows_cover_every_pixel(width: int, height: int, size: int, frac: float) -> None:
    overlap = int(size * frac)
    covered = np.zeros((height, width), np.int32)
    windows = list(tile_windows(width, height, size, overlap))
    assert window_count(width, height, size, overlap) == len(windows)
    for w in windows:
        assert (w.width, w.height) == (size, size)
        assert w.col_off >= 0 and w.row_off >= 0
        if width >= size:
            assert w.col_off + size <= width
        if height >= size:
            assert w.row_off + size <= height
        covered[w.row_off : w.row_off + size, w.col_off : w.col_off + size] += 1
    assert covered.min() >= 1


def test_bad_overlap_is_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        window_starts(100, 32, 32)


def test_overlap_follows_ground_sample_distance() -> None:
    assert overlap_for_gsd(10.0, 1024) == 40  # 400 m ship at 10 m
    assert overlap_for_gsd(100.0, 1024) == 32  # floor
    assert overlap_for_gsd(0.3, 1024) == 512  # capped at half a window
    assert overlap_for_gsd(None, 1024) == 256
