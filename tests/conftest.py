"""Shared fixtures: tiny real GeoTIFFs, the shared data folder, offline Ultralytics."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _offline_ultralytics(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep Ultralytics offline and its settings out of the user's home."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("ultralytics-config")))
    os.environ.setdefault("SHIPWATCH_CACHE_DIR", str(tmp_path_factory.mktemp("shipwatch-cache")))


def shared(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/data beside the checkout); absent on a fresh clone")
    return path


def load_script(relpath: str) -> ModuleType:
    """Import a script of the repository (datasets/, scripts/) by path."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shipwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``shipwatch`` CLI run in a process of its own, output captured."""
    return subprocess.run(
        [sys.executable, "-c", "from detector.cli.main import run; run()", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600,
    )  # fmt: skip


MakeTiff = Callable[..., Path]


@pytest.fixture
def make_geotiff(tmp_path: Path) -> MakeTiff:
    """Factory writing a small real GeoTIFF.

    ``make_geotiff(name, data=None, width=64, height=48, count=3, dtype="uint8",
    crs="EPSG:32653", transform=None, nodata=None, tags=None, **profile)``;
    ``data`` is (bands, rows, cols) and defaults to a seeded random image.
    """

    def make(
        name: str = "scene.tif",
        data: np.ndarray | None = None,
        width: int = 64,
        height: int = 48,
        count: int = 3,
        dtype: str = "uint8",
        crs: str | None = "EPSG:32653",
        transform: Affine | None = None,
        nodata: float | None = None,
        tags: dict[str, str] | None = None,
        **profile: object,
    ) -> Path:
        if data is None:
            rng = np.random.default_rng(len(name))
            high = 255 if dtype == "uint8" else 4000
            data = rng.integers(0, high, (count, height, width)).astype(dtype)
        count, height, width = data.shape
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(
            path,
            "w",
            driver=str(profile.pop("driver", "GTiff")),
            width=width,
            height=height,
            count=count,
            dtype=data.dtype,
            crs=crs,
            transform=transform if transform is not None else from_origin(500000.0, 4750000.0, 0.5, 0.5),
            nodata=nodata,
            **profile,
        ) as ds:
            ds.write(data)
            if tags:
                ds.update_tags(**tags)
        return path

    return make


def stack_bands(files: Sequence[Path], descriptions: Sequence[str], out: Path, **profile: object) -> Path:
    """Single-band ``files`` stacked into the GeoTIFF ``out``, band i described ``descriptions[i]``, as Earth
    Engine exports a Sentinel-2 stack; ``profile`` amends the first file's (tiling, say)."""
    with rasterio.open(files[0]) as ds:
        merged = ds.profile | {"count": len(files)} | profile
    with rasterio.open(out, "w", **merged) as stack:
        for i, (file, description) in enumerate(zip(files, descriptions, strict=True), 1):
            with rasterio.open(file) as ds:
                stack.write(ds.read(1), i)
            stack.set_band_description(i, description)
    return out


def write_safe(
    make_geotiff: MakeTiff,
    name: str,
    bands: dict[str, np.ndarray],
    crs: object = "EPSG:32652",
    level: str = "L2A",
    transform: Affine | None = None,
    under: str = ".",
) -> Path:
    """A Sentinel-2 SAFE product as ESA lays it out, ``under`` the test's folder, its images written by
    ``make_geotiff`` as JPEG 2000 (lossless).

    ``bands`` maps band names (and ``SCL``) to their arrays on the 10 m grid
    ``transform`` (UTM 52N by default); coarser bands keep every second or
    sixth pixel. L2A puts each band in ``R10m`` (B02, B03, B04, B08),
    ``R20m`` and ``R60m`` at every resolution ESA gives it, SCL in the last
    two; L1C puts every band once in ``IMG_DATA`` at its own resolution, and
    has no SCL.
    """
    tile, sensed = "T52TGN", name.split("_")[2]
    transform = transform or Affine(10, 0, 600000.0, 0, -10, 4750020.0)
    img = f"{under}/{name}/GRANULE/{level}_{tile}_A036000_{sensed}/IMG_DATA"
    native = {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B01": 60, "B09": 60, "B10": 60}
    for band, data in bands.items():
        own = native.get(band, 20)
        if level == "L2A":
            places = [(f"{img}/R{m}m", m, f"_{m}m") for m in (10, 20, 60) if m >= own and not (band == "B08" and m > 10)]
        else:
            places = [(img, own, "")]
        for folder, m, suffix in places:
            step = m // 10
            jp2 = make_geotiff(
                f"{folder}/{tile}_{sensed}_{band}{suffix}.jp2", data=data[None, ::step, ::step], crs=crs,
                transform=transform * Affine.scale(step), driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES",
            )  # fmt: skip
    product = next(p for p in jp2.parents if p.name == name)
    (product / f"MTD_MSI{level}.xml").write_text("<metadata/>")
    return product
