import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from detector.acquisition import acquisition_time, parse_time
from detector.errors import UsageError


def test_sources_in_order(tmp_path: Path) -> None:
    scene = tmp_path / "port_2024-03-05.tif"
    scene.touch()
    tags = {"TIFFTAG_DATETIME": "2024:04:01 10:20:30"}
    override = datetime(2024, 1, 1, tzinfo=UTC)
    assert acquisition_time(scene, tags, override) == override
    (tmp_path / "port_2024-03-05.json").write_text(json.dumps({"properties": {"datetime": "2024-02-02T02:02:02Z"}}))
    assert acquisition_time(scene, tags) == datetime(2024, 2, 2, 2, 2, 2, tzinfo=UTC)
    (tmp_path / "port_2024-03-05.json").unlink()
    assert acquisition_time(scene, tags) == datetime(2024, 4, 1, 10, 20, 30, tzinfo=UTC)
    assert acquisition_time(scene, {}) == datetime(2024, 3, 5, tzinfo=UTC)
    assert acquisition_time(tmp_path / "P0861__1024__0___1648.tif", {}) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("2022-05-14-00_00_2022-05-14-23_59_Sentinel-2_L2A_B02_(Raw).tiff", datetime(2022, 5, 14, tzinfo=UTC)),
        ("S2A_MSIL2A_20230817T101031_N0509.tif", datetime(2023, 8, 17, 10, 10, 31, tzinfo=UTC)),
        ("vostochny_2024-06-01T01:45.tif", datetime(2024, 6, 1, 1, 45, tzinfo=UTC)),
        ("scene_99999999.tif", None),
    ],
)
def test_dates_in_names(name: str, expected: datetime | None, tmp_path: Path) -> None:
    assert acquisition_time(tmp_path / name, {}) == expected


def test_band_folder_date_comes_from_band_files(tmp_path: Path) -> None:
    folder = tmp_path / "busan"
    assert acquisition_time(folder, {}, names=["2022-05-14-00_00_B04.tiff"]) == datetime(2022, 5, 14, tzinfo=UTC)


def test_time_zones_are_converted_to_utc() -> None:
    assert parse_time("2024-05-01T10:30:00+09:00") == datetime(2024, 5, 1, 1, 30, tzinfo=UTC)


def test_broken_stac_item_is_a_clear_error(tmp_path: Path) -> None:
    scene = tmp_path / "a.tif"
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"a\.json.*--acquired"):
        acquisition_time(scene, {})
