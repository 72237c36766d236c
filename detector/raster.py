"""Opening scenes and reading their windows as 8-bit images.

A scene is a GeoTIFF (or any GDAL raster, VRT included) or a folder holding one
file per band, a Sentinel-2 SAFE product's included (each band at its finest
resolution). :func:`open_scene` checks it and returns a :class:`Scene`, a
picklable description; :class:`SceneReader` holds the open datasets and reads
windows, so each worker can hold its own handles.

uint8 data is used as is. Other types are stretched to 8 bits per band with
the 2nd and 98th percentiles of valid pixels, measured on a decimated read of
the whole scene (never by dropping the low byte), or of a part of it
(:func:`stretched_over`: a detect job's AOI and its surroundings). A 16- or 32-bit integer file
with no nodata value takes 0 in every band as nodata (Sentinel-2's and
Landsat's fill).

A raster file whose band descriptions name Sentinel-2 bands (``B2`` or
``B02``, as Earth Engine and SNAP write them) is read by those names like a
band folder (:func:`named_bands`); without names, a file's bands marked red,
green and blue (their colour interpretation) are read as such, else its
first three.

A band folder may also hold Sentinel-2 L2A's scene classification (a file
named with ``SCL``, on the bands' grid or a coarser one over the same area,
or in a named file a band described ``SCL``;
:mod:`detector.clouds` places it). Its cloud classes count as nodata: they
neither set the stretch, nor give ships, nor count as seen.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from detector.acquisition import acquisition_time
from detector.clouds import SCL_CLOUD_CLASSES, check_scl, clear_of_clouds
from detector.errors import GeoreferenceError, SceneReadError, UsageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "RASTER_SUFFIXES",
    "S2_TRUE_COLOUR",
    "SCL_CLOUD_CLASSES",
    "BandRef",
    "Scene",
    "SceneReader",
    "band_indices",
    "band_names",
    "bands_read",
    "cloud_file",
    "described_band",
    "named_bands",
    "open_for_viewing",
    "open_named_bands",
    "open_scene",
    "scene_pixels",
    "stretched_over",
]

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
#: Scenes claiming more pixels than this are refused (``--max-pixels``).
DEFAULT_MAX_PIXELS = 4_000_000_000
STRETCH_PERCENTILES = (2.0, 98.0)
_SAMPLE_SIDE = 1024
#: Sentinel-2 band names stacked as red, green, blue (a band folder's default).
S2_TRUE_COLOUR = ("B04", "B03", "B02")
_BAND_NAME = re.compile(r"(?<![A-Za-z0-9])(B(?:0[1-9]|1[0-2]|8A))(?![0-9])", re.IGNORECASE)
#: A band description naming a Sentinel-2 band, zero-padded or not: ``B2``, ``B02``, ``b8a``.
_DESCRIBED_BAND = re.compile(r"\s*B0?(1[0-2]|[1-9]|8A)\s*", re.IGNORECASE)
_SCL_NAME = re.compile(r"(?<![A-Za-z0-9])SCL(?![A-Za-z0-9])", re.IGNORECASE)

# Tuned for windowed reads: no directory listing on open, a block cache that
# holds a few rows of windows, official EPSG definitions over odd GeoTIFF keys.
# rasterio passes an integer GDAL_CACHEMAX to GDAL as bytes, so it is written
# out: a bare 512 left GDAL a 512-byte cache, and every read decoded its blocks
# anew (a 4096 px uint16 scene took 27.8 s to open and 2.5 s to read, 0.15 s
# and 0.32 s with 128 MiB; 64 MiB did as well, 512 MiB no better).
_GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_CACHEMAX": 128 << 20, "GTIFF_SRS_SOURCE": "EPSG"}


@dataclass(frozen=True)
class BandRef:
    """One band of one file: ``path`` and its 1-based ``index``."""

    path: Path
    index: int


@dataclass(frozen=True)
class ReadSpec:
    """What a reader needs to read a scene's windows: small, hashable, cheap to send to a worker."""

    path: Path
    bands: tuple[BandRef, ...]
    width: int
    height: int
    nodata: float | None
    stretch: tuple[tuple[float, float], ...] | None
    internal_mask: bool
    clouds: BandRef | None = None
    transform: Affine | None = None  # places the SCL grid against the bands'


@dataclass(frozen=True)
class Scene:
    """A checked, picklable description of a scene.

    Attributes:
        path: the input as given (file, VRT or band folder).
        bands: the bands read, in the order the model takes them (red, green,
            blue for an RGB model; one band: grey).
        width, height: size in pixels.
        crs, transform: georeferencing, or None for an ungeoreferenced scene.
        nodata: the nodata value of the bands, if any.
        dtype: the source data type.
        stretch: per band ``(low, high)`` mapped to 0 and 255, None for uint8.
        acquired_at: acquisition time (UTC) or None when unknown.
        valid_sample: a decimated map of valid pixels over the whole scene,
            used to skip windows without data before reading them.
        internal_mask: the file has an internal mask or alpha band.
        clouds: the scene classification (SCL), whose cloud classes are
            nodata: a band folder's SCL file, or a named file's band described
            ``SCL``; None without one.
    """

    path: Path
    bands: tuple[BandRef, ...]
    width: int
    height: int
    crs: CRS | None
    transform: Affine | None
    nodata: float | None
    dtype: str
    stretch: tuple[tuple[float, float], ...] | None
    acquired_at: datetime | None
    valid_sample: NDArray[np.bool_]
    internal_mask: bool = False
    clouds: BandRef | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None

    @property
    def read_spec(self) -> ReadSpec:
        return ReadSpec(
            self.path, self.bands, self.width, self.height, self.nodata, self.stretch, self.internal_mask, self.clouds,
            self.transform,
        )  # fmt: skip

    @property
    def all_nodata(self) -> bool:
        return not bool(self.valid_sample.any())

    def window_may_hold_data(self, window: Window) -> bool:
        """False only when the decimated valid map shows no data in ``window``."""
        sh, sw = self.valid_sample.shape
        fy, fx = sh / self.height, sw / self.width
        r0 = max(math.floor(window.row_off * fy) - 1, 0)
        c0 = max(math.floor(window.col_off * fx) - 1, 0)
        r1 = math.ceil((window.row_off + window.height) * fy) + 1
        c1 = math.ceil((window.col_off + window.width) * fx) + 1
        return bool(self.valid_sample[r0:r1, c0:c1].any())


def _fail(path: Path, problem: str, fix: str) -> SceneReadError:
    return SceneReadError(f"{path}: {problem}; {fix}")


def _image_folders(folder: Path) -> list[Path]:
    """Where a band folder's files lie: the folder itself, or a Sentinel-2 SAFE product's image folders, finest first.

    A product (``S2A_MSIL2A_....SAFE``), one of its granules, or the
    granule's ``IMG_DATA`` gives ``IMG_DATA`` (L1C: every band at its own
    resolution) and its ``R10m``, ``R20m`` and ``R60m`` folders (L2A: each
    band at every resolution it has, so the first found is the finest).

    Raises:
        SceneReadError: a product of several granules (those of 2015-2016).
    """
    if (folder / "GRANULE").is_dir():
        granules = sorted(g for g in (folder / "GRANULE").iterdir() if (g / "IMG_DATA").is_dir())
        if len(granules) > 1:
            raise _fail(
                folder, f"a SAFE product of {len(granules)} granules", "pass one granule's folder (GRANULE/<name>) as the scene"
            )
        folder = granules[0] if granules else folder
    if (folder / "IMG_DATA").is_dir():
        folder = folder / "IMG_DATA"
    return [folder] + [folder / r for r in ("R10m", "R20m", "R60m") if (folder / r).is_dir()]


def _raster_files(folder: Path) -> list[Path]:
    """The raster files of a folder, sorted by name (of a SAFE product, its images, finest resolution first)."""
    return [c for f in _image_folders(folder) for c in sorted(f.iterdir()) if c.suffix.lower() in RASTER_SUFFIXES and c.is_file()]


def band_files(folder: Path) -> dict[str, Path]:
    """Band name (``B04``...) to file, for the raster files of a folder named with Sentinel-2 bands."""
    found: dict[str, Path] = {}
    for child in _raster_files(folder):
        match = _BAND_NAME.search(child.stem)
        if match:
            found.setdefault(match.group(1).upper(), child)
    return found


def described_band(description: str | None) -> str | None:
    """The Sentinel-2 band (``B08``) that a band description names (``B8``, ``B08``), else None."""
    match = _DESCRIBED_BAND.fullmatch(description or "")
    if match is None:
        return None
    number = match.group(1).upper()
    return "B8A" if number == "8A" else f"B{int(number):02d}"


def _described(ds: rasterio.DatasetReader) -> dict[str, int]:
    """Sentinel-2 band name to the 1-based band of ``ds`` whose description names it (the first, if several do)."""
    found: dict[str, int] = {}
    for index, description in enumerate(ds.descriptions, 1):
        name = described_band(description)
        if name is not None:
            found.setdefault(name, index)
    return found


def named_bands(path: Path) -> dict[str, BandRef]:
    """Sentinel-2 band name (``B04``...) to its band: a band folder's files, or a raster file's bands named by their descriptions.

    A file that cannot be opened names none (opening it as a scene says why).
    """
    if path.is_dir():
        return {name: BandRef(file, 1) for name, file in band_files(path).items()}
    try:
        with rasterio.Env(**_GDAL_ENV), rasterio.open(path) as ds:
            return {name: BandRef(path, index) for name, index in _described(ds).items()}
    except (RasterioError, OSError):
        return {}


def cloud_file(folder: Path) -> Path | None:
    """A band folder's scene classification (SCL) file, if it has one."""
    if not folder.is_dir():
        return None
    return next((c for c in _raster_files(folder) if _SCL_NAME.search(c.stem)), None)


def _cloud_band(path: Path, ds: rasterio.DatasetReader) -> BandRef | None:
    """The scene classification of ``path``: a band folder's SCL file, else a band of the file ``ds`` described ``SCL``."""
    if path.is_dir():
        file = cloud_file(path)
        return BandRef(file, 1) if file is not None else None
    index = next((i for i, d in enumerate(ds.descriptions, 1) if (d or "").strip().upper() == "SCL"), None)
    return BandRef(path, index) if index is not None else None


def band_names(path: Path) -> tuple[str, ...]:
    """Sentinel-2 band names of a band folder or a named file (:func:`named_bands`), sorted."""
    return tuple(sorted(named_bands(path)))


def band_indices(path: Path, wanted: Sequence[str]) -> tuple[int, ...]:
    """The ``bands`` of :func:`open_scene` that stack bands ``wanted`` (e.g. B08, B04, B03) of ``path``.

    For a band folder they index its band names sorted, for a file its bands.

    Raises:
        UsageError: ``path`` lacks some of them.
    """
    named = named_bands(path)
    missing = [b for b in wanted if b not in named]
    if missing:
        have = ", ".join(sorted(named)) or "none"
        if path.is_dir():
            raise UsageError(f"{path}: no band files for {', '.join(missing)} (it has {have}); pick bands it has")
        if not named:
            raise UsageError(
                f"{path}: one raster file whose bands carry no Sentinel-2 names, and {', '.join(missing)} are asked for; "
                "pass a band folder, name the bands (their descriptions, B2 or B02), or read the file as it is "
                "(a true-colour model)"
            )
        raise UsageError(f"{path}: no bands described as {', '.join(missing)} (it has {have}); pick bands it has")
    if path.is_dir():
        names = sorted(named)
        return tuple(names.index(b) + 1 for b in wanted)
    return tuple(named[b].index for b in wanted)


def open_named_bands(path: str | Path, bands: Sequence[str | int] | None, **options: Any) -> Scene:
    """``path`` opened with bands ``bands`` (e.g. B08, B04, B03) of a band folder or a named file stacked, as a model reads them.

    ``bands`` may also be 1-based indices, as :func:`open_scene` takes them
    (what :func:`bands_read` gives for a file); None opens the scene as
    :func:`open_scene` does. ``options`` go to :func:`open_scene`.

    Raises:
        UsageError: ``path`` lacks some of them.
    """
    path = Path(path)
    if bands and all(isinstance(b, int) for b in bands):
        return open_scene(path, tuple(int(b) for b in bands), **options)
    names = [str(b) for b in bands or ()]
    return open_scene(path, band_indices(path, names) if names else None, **options)


def bands_read(scene: Scene) -> tuple[str | int, ...]:
    """What ``scene`` reads, so that :func:`open_named_bands` opens it alike: the band names of a folder or named file, else band indices."""
    names = {ref: name for name, ref in named_bands(scene.path).items()}
    if all(ref in names for ref in scene.bands):
        return tuple(names[ref] for ref in scene.bands)
    return tuple(ref.index for ref in scene.bands)


#: What pictures show of a band folder: the first of these that it has, else its first band in grey.
_VIEW_BANDS = (S2_TRUE_COLOUR, ("B08", "B04", "B03"))


def open_for_viewing(path: str | Path, stretch_window: tuple[int, int, int, int] | None = None) -> Scene:
    """``path`` opened for pictures (quicklooks, report and review crops), whatever the model read.

    A band folder or named file shows true colour when it has B04, B03 and
    B02, else near infrared as red (B08, B04, B03); else a band folder shows
    its first band in grey, and a file opens as :func:`open_scene` opens it.
    A scene without georeferencing is accepted.
    ``stretch_window`` (``col_off, row_off, width, height``, a detect job's AOI
    surroundings as the store records them) stretches it as the model's
    pixels were stretched.
    """
    path = Path(path)
    names = band_names(path)
    bands = next((b for b in _VIEW_BANDS if set(b) <= set(names)), None)
    if bands is not None:
        scene = open_scene(path, band_indices(path, bands), allow_ungeoreferenced=True)
    else:
        scene = open_scene(path, (1,) if path.is_dir() else None, allow_ungeoreferenced=True)
    return scene if stretch_window is None else stretched_over(scene, Window(*stretch_window))


def is_band_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding Sentinel-2 style band files (a SAFE product included)."""
    try:
        return path.is_dir() and bool(band_files(path))
    except SceneReadError:
        return True  # a SAFE product it cannot read as one scene: opening it says why


def _select_bands(path: Path, ds: rasterio.DatasetReader, bands: tuple[int, ...] | None) -> tuple[int, ...]:
    """``bands``, checked; by default true colour by band names, else by colour interpretation, else the first three."""
    count = ds.count
    if bands is None:
        named = _described(ds)
        if set(S2_TRUE_COLOUR) <= set(named):
            return tuple(named[b] for b in S2_TRUE_COLOUR)
        colours = {c: i for i, c in reversed(list(enumerate(ds.colorinterp, 1)))}  # the first band of each colour
        rgb = tuple(colours.get(c, 0) for c in (ColorInterp.red, ColorInterp.green, ColorInterp.blue))
        if all(rgb):
            return rgb
        return (1, 2, 3) if count >= 3 else (1,)
    bad = [b for b in bands if not 1 <= b <= count]
    if bad:
        raise UsageError(f"{path}: --bands {bad} out of range, the scene has bands 1..{count}; pick from those")
    return bands


def _resolve_bands(path: Path, bands: tuple[int, ...] | None) -> tuple[BandRef, ...]:
    if path.is_dir():
        files = band_files(path)
        if not files:
            raise _fail(path, "folder holds no band files (names with B02, B03, B04 ...)", "pass a raster file or a band folder")
        if bands is None:
            missing = [b for b in S2_TRUE_COLOUR if b not in files]
            if missing:
                if len(files) == 1:
                    return (BandRef(next(iter(files.values())), 1),)
                raise _fail(
                    path, f"band folder lacks {', '.join(missing)} for true colour", "add those files or pick bands with --bands"
                )
            return tuple(BandRef(files[b], 1) for b in S2_TRUE_COLOUR)
        ordered = sorted(files)
        refs = []
        for b in bands:
            if not 1 <= b <= len(ordered):
                raise UsageError(f"{path}: --bands {b} out of range; the folder has {len(ordered)} bands ({', '.join(ordered)})")
            refs.append(BandRef(files[ordered[b - 1]], 1))
        return tuple(refs)
    if not path.exists():
        raise _fail(path, "no such file", "check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise _fail(path, "file is empty (0 bytes)", "re-download or re-export the scene")
    with _open(path) as ds:
        return tuple(BandRef(path, b) for b in _select_bands(path, ds, bands))


def _open(path: Path) -> rasterio.DatasetReader:
    try:
        return rasterio.open(path)
    except RasterioError as exc:
        text = str(exc)
        if path.suffix.lower() == ".zip":
            raise _fail(
                path, "a zip archive", "unzip it and pass what it holds (of a Sentinel-2 product, its .SAFE folder)"
            ) from exc
        if "not recognized" in text or "not a supported" in text.lower():
            raise _fail(path, "not a raster GDAL can read", "pass a GeoTIFF, VRT or band folder") from exc
        raise _fail(
            path, f"cannot be opened ({text.splitlines()[0][:200]})", "check that the file is complete and not corrupt"
        ) from exc


def _on_one_grid(refs: tuple[BandRef, ...], datasets: dict[Path, rasterio.DatasetReader]) -> None:
    """Put the bands on the grid of the finest of them (in ``datasets``; :func:`_close` closes a warp's file too).

    A coarser band over the same area in the same CRS (Sentinel-2's 20 m B11
    beside its 10 m bands) is read through a warp to the finest grid,
    interpolated (bilinear): sen2ships' 10 m B11, on which the models fed
    short-wave infrared were measured, is smooth, not blocks of 2x2 (Busan's
    B11 averaged to 20 m and read back so: F1 0.519 with ``s2-ensemble-swir``,
    0.417 with its pixels repeated, 0.561 for the 10 m file; Busan is a
    training port, so these compare readings, not models). Any other
    difference of grid is refused.

    Raises:
        SceneReadError: a band in another CRS, or whose edges lie more than half its own pixel from the finest band's.
    """
    finest = min(refs, key=lambda r: abs(datasets[r.path].transform.a))
    grid = datasets[finest.path]
    for ref in refs:
        ds = datasets[ref.path]
        if ds is grid or (
            (ds.width, ds.height) == (grid.width, grid.height)
            and ds.crs == grid.crs
            and ds.transform.almost_equals(grid.transform)
        ):
            continue
        step = max(abs(ds.transform.a), abs(ds.transform.e))
        if ds.crs != grid.crs or not all(abs(a - b) <= step / 2 for a, b in zip(ds.bounds, grid.bounds, strict=True)):
            raise _fail(
                ref.path,
                f"grid ({ds.width}x{ds.height}, {ds.crs}, {tuple(ds.transform)[:6]}) differs from {finest.path.name} "
                f"({grid.width}x{grid.height}, {grid.crs}, {tuple(grid.transform)[:6]}) in more than its pixel size",
                "resample the bands to one grid first (gdalwarp -tr / gdalbuildvrt -resolution)",
            )
        datasets[ref.path] = WarpedVRT(
            ds, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height, resampling=Resampling.bilinear
        )


def _close(datasets: dict[Path, rasterio.DatasetReader]) -> None:
    """Close the open files, the one under each warp of :func:`_on_one_grid` as well."""
    for ds in datasets.values():
        ds.close()
        if isinstance(ds, WarpedVRT):
            ds.src_dataset.close()
    datasets.clear()


def _georeference(path: Path, ds: rasterio.DatasetReader) -> tuple[CRS | None, Affine | None]:
    if ds.transform == Affine.identity() or ds.crs is None:
        if ds.gcps[0] or ds.rpcs:
            raise GeoreferenceError(
                f"{path}: georeferenced only by GCPs or RPCs; warp it to a map grid first (gdalwarp -t_srs EPSG:32653 in out)"
            )
        return None, None
    if ds.transform.determinant == 0:
        raise GeoreferenceError(f"{path}: degenerate geotransform {tuple(ds.transform)[:6]}; fix it (gdal_edit.py -a_ullr)")
    return ds.crs, ds.transform


#: Types whose undeclared nodata is 0: Sentinel-2 L1C/L2A and Landsat Collection 2 fill with 0, and
#: exports of them often drop the tag. Where every band is 0, the pixel is nodata.
_ZERO_IS_NODATA = frozenset({"uint16", "int16", "uint32", "int32"})


def _valid(data: NDArray[np.generic], nodata: float | None) -> NDArray[np.bool_]:
    """Valid pixels of (bands, h, w) data: not nodata in every band, not NaN."""
    if nodata is None and data.dtype.kind != "f":
        return np.ones(data.shape[1:], bool)
    invalid = np.ones(data.shape[1:], bool)
    for band in data:
        bad = np.zeros(band.shape, bool)
        if nodata is not None:
            bad |= np.isnan(band) if isinstance(nodata, float) and math.isnan(nodata) else band == nodata
        if band.dtype.kind == "f":
            bad |= ~np.isfinite(band)
        invalid &= bad
    return ~invalid


def open_scene(
    path: str | Path,
    bands: tuple[int, ...] | None = None,
    acquired: datetime | None = None,
    allow_ungeoreferenced: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Scene:
    """Open and check a scene.

    Args:
        path: a raster file, VRT, or folder of band files.
        bands: 1-based band indices in the order the model takes them (red,
            green, blue for an RGB model; one band is grey); for a band folder
            they index the band files sorted by band name.
        acquired: acquisition time overriding all other sources.
        allow_ungeoreferenced: accept a scene without CRS or transform.
        max_pixels: refuse scenes whose header claims more pixels.

    Raises:
        SceneReadError: missing, empty, unreadable, corrupt or oversized input,
            or band files on different grids.
        GeoreferenceError: no usable georeferencing (unless allowed).
        UsageError: bad ``bands``.
    """
    path = Path(path)
    refs = _resolve_bands(path, bands)
    datasets: dict[Path, rasterio.DatasetReader] = {}
    try:
        with rasterio.Env(**_GDAL_ENV):
            for ref in refs:
                if ref.path not in datasets:
                    datasets[ref.path] = _open(ref.path)
            _on_one_grid(refs, datasets)
            ds = datasets[refs[0].path]
            if ds.width * ds.height > max_pixels:
                raise _fail(
                    path,
                    f"header claims {ds.width}x{ds.height} px ({ds.width * ds.height / 1e9:.1f} Gpx), over the {max_pixels / 1e9:g} Gpx limit",
                    "crop the scene (gdal_translate -srcwin) or raise --max-pixels",
                )
            clouds = _cloud_band(path, ds)
            if clouds is not None:
                if clouds.path not in datasets:
                    datasets[clouds.path] = _open(clouds.path)
                check_scl(clouds.path, datasets[clouds.path], ds)
            crs, transform = _georeference(path, ds)
            if crs is None and not allow_ungeoreferenced:
                raise GeoreferenceError(
                    f"{path}: has no CRS or geotransform; georeference it (gdal_edit.py -a_srs EPSG:32653 -a_ullr ...) "
                    "or pass --allow-ungeoreferenced (with --gsd for sizes in metres)"
                )
            nodata = ds.nodatavals[refs[0].index - 1]
            dtype = ds.dtypes[refs[0].index - 1]
            if nodata is None and dtype in _ZERO_IS_NODATA:
                nodata = 0.0
            shape = _sample_shape(Window(0, 0, ds.width, ds.height))
            mask_sample = _dataset_mask(ds, refs[0].index, shape)
            stretch = None
            if dtype == "uint8" and nodata is None and mask_sample is None and clouds is None:
                # Nothing to learn from a sample: every pixel is valid and used as is.
                # Reading the last pixel of each file still catches a truncated tail early.
                valid = np.ones((1, 1), bool)
                for r in refs:
                    datasets[r.path].read(r.index, window=Window(ds.width - 1, ds.height - 1, 1, 1))
            else:
                whole = Window(0, 0, ds.width, ds.height)
                sample, valid = _sample(datasets, refs, whole, shape, nodata, mask_sample, clouds, ds.transform)
                if dtype != "uint8":
                    stretch = tuple(_percentiles(band[valid]) for band in sample)
            tags = ds.tags()
            width, height = ds.width, ds.height
    except RasterioError as exc:
        raise _fail(path, "read failed, the file is truncated or corrupt", "re-download or re-export it") from exc
    finally:
        _close(datasets)
    names = [r.path.name for r in refs] if path.is_dir() else []
    return Scene(
        path=path,
        bands=refs,
        width=width,
        height=height,
        crs=crs,
        transform=transform,
        nodata=nodata,
        dtype=dtype,
        stretch=stretch,
        acquired_at=acquisition_time(path, tags, acquired, names),
        valid_sample=valid,
        internal_mask=mask_sample is not None,
        clouds=clouds,
    )


def _dataset_mask(
    ds: rasterio.DatasetReader, index: int, shape: tuple[int, int], window: Window | None = None
) -> NDArray[np.bool_] | None:
    """The internal mask or alpha band over ``window`` (default all) at ``shape``, as a boolean, when the file has one."""
    flags = ds.mask_flag_enums[index - 1]
    if MaskFlags.per_dataset in flags and MaskFlags.nodata not in flags and MaskFlags.all_valid not in flags:
        return ds.read_masks(index, window=window, out_shape=shape, resampling=Resampling.nearest) > 0
    return None


def _sample_shape(window: Window) -> tuple[int, int]:
    """The decimated (rows, cols) on which a stretch is measured: at most 1024 px a side."""
    scale = min(1.0, _SAMPLE_SIDE / max(window.width, window.height))
    return max(1, round(window.height * scale)), max(1, round(window.width * scale))


def _sample(
    datasets: dict[Path, rasterio.DatasetReader],
    refs: tuple[BandRef, ...],
    window: Window,
    shape: tuple[int, int],
    nodata: float | None,
    mask: NDArray[np.bool_] | None,
    clouds: BandRef | None,
    transform: Affine | None,
) -> tuple[NDArray[np.generic], NDArray[np.bool_]]:
    """One decimated pass over ``window`` (GDAL uses overviews when the file has them): (bands, *shape) and its valid pixels.

    Valid is not nodata, inside ``mask`` (the internal mask read at ``shape``)
    and, with an SCL file, not cloud.
    """
    ds = datasets[refs[0].path]
    sample = np.stack(
        [datasets[r.path].read(r.index, window=window, out_shape=shape, resampling=Resampling.nearest) for r in refs]
    )
    valid = _valid(sample, nodata)
    if mask is not None:
        valid &= mask
    if clouds is not None:
        valid &= clear_of_clouds(datasets[clouds.path], clouds.index, window, transform, ds.width, ds.height, shape)
    return sample, valid


def stretched_over(scene: Scene, window: Window) -> Scene:
    """``scene`` with its stretch measured over ``window`` alone, as :func:`open_scene` measures the whole scene's.

    The same decimated read, nodata, mask and clouds; the map of valid pixels
    stays the whole scene's. A scene read as is (uint8), a window covering the
    whole scene (nothing to read again), or a window without one valid pixel
    gives the scene back unchanged.

    Raises:
        SceneReadError: the files cannot be read.
    """
    c0, r0 = window.col_off, window.row_off
    if scene.stretch is None or (c0 <= 0 and r0 <= 0 and c0 + window.width >= scene.width and r0 + window.height >= scene.height):
        return scene
    with SceneReader(scene) as reader:
        sample, valid = reader.sample(window)
    if not valid.any():
        return scene
    return replace(scene, stretch=tuple(_percentiles(band[valid]) for band in sample))


def _percentiles(values: NDArray[np.generic]) -> tuple[float, float]:
    if values.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(values.astype(np.float64), STRETCH_PERCENTILES)
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


class SceneReader:
    """Open handles on a scene's files, reading padded 8-bit windows, a channel per band.

    One band is grey, read as three equal channels; three are red, green and
    blue; more (a model ensemble's bands) come in the scene's band order.

    Use as a context manager; one reader per thread or process.
    """

    def __init__(self, scene: Scene | ReadSpec) -> None:
        self.scene = scene.read_spec if isinstance(scene, Scene) else scene
        self._env = rasterio.Env(**_GDAL_ENV)
        self._datasets: dict[Path, rasterio.DatasetReader] = {}

    def __enter__(self) -> SceneReader:
        self._env.__enter__()
        try:
            for file in [ref.path for ref in self.scene.bands] + ([self.scene.clouds.path] if self.scene.clouds else []):
                if file not in self._datasets:
                    self._datasets[file] = _open(file)
            _on_one_grid(self.scene.bands, self._datasets)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        _close(self._datasets)
        self._env.__exit__(None, None, None)

    def read(self, window: Window) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """Read ``window`` as (h, w, channels) uint8 and an (h, w) valid mask.

        Parts of the window outside the scene are zero and invalid; so are
        nodata pixels and clouds (the scene's SCL).

        Raises:
            SceneReadError: when the file cannot be read (truncated, corrupt).
        """
        scene = self.scene
        h, w = int(window.height), int(window.width)
        c0, r0 = int(window.col_off), int(window.row_off)
        c1, r1 = min(c0 + w, scene.width), min(r0 + h, scene.height)
        inner = Window(c0, r0, c1 - c0, r1 - r0)
        try:
            data = self._read_bands(inner)
            valid = _valid(data, scene.nodata)
            if scene.internal_mask:
                first = scene.bands[0]
                valid &= self._datasets[first.path].read_masks(first.index, window=inner) > 0
            if scene.clouds is not None:
                valid &= clear_of_clouds(
                    self._datasets[scene.clouds.path],
                    scene.clouds.index,
                    inner,
                    scene.transform,
                    scene.width,
                    scene.height,
                    valid.shape,
                )
        except RasterioError as exc:
            raise _fail(
                scene.path, f"read failed at window {inner}, the file is truncated or corrupt", "re-download or re-export it"
            ) from exc
        pixels = _to_uint8(data, scene.stretch)
        if (r1 - r0, c1 - c0) == (h, w) and len(pixels) > 1 and valid.all():
            return _interleave(pixels), valid  # the common case: one copy
        rgb = np.zeros((h, w, max(3, len(pixels))), np.uint8)
        ok = np.zeros((h, w), bool)
        ok[: r1 - r0, : c1 - c0] = valid
        # One band is grey: broadcast it to the three channels.
        rgb[: r1 - r0, : c1 - c0] = _interleave(pixels) if len(pixels) > 1 else pixels.transpose(1, 2, 0)
        if not valid.all():
            rgb[~ok] = 0
        return rgb, ok

    def sample(self, window: Window) -> tuple[NDArray[np.generic], NDArray[np.bool_]]:
        """``window`` decimated to at most 1024 px a side, raw (bands, h, w), and its valid pixels: what a stretch is measured on.

        Raises:
            SceneReadError: when the file cannot be read (truncated, corrupt).
        """
        scene, shape = self.scene, _sample_shape(window)
        first = scene.bands[0]
        try:
            mask = _dataset_mask(self._datasets[first.path], first.index, shape, window)
            return _sample(self._datasets, scene.bands, window, shape, scene.nodata, mask, scene.clouds, scene.transform)
        except RasterioError as exc:
            raise _fail(scene.path, "read failed, the file is truncated or corrupt", "re-download or re-export it") from exc

    def _read_bands(self, window: Window) -> NDArray[np.generic]:
        """(bands, h, w) in the scene's band order: one read per file (GDAL decodes each block once)."""
        bands = self.scene.bands
        if all(b.path == bands[0].path for b in bands):
            return self._datasets[bands[0].path].read([b.index for b in bands], window=window)
        return np.stack([self._datasets[b.path].read(b.index, window=window) for b in bands])

    def read_decimated(self, shape: tuple[int, int]) -> NDArray[np.uint8]:
        """The whole scene as (rows, cols, channels) uint8 at ``shape``, nodata black."""
        scene = self.scene
        try:
            data = np.stack(
                [self._datasets[r.path].read(r.index, out_shape=shape, resampling=Resampling.average) for r in scene.bands]
            )
        except RasterioError as exc:
            raise _fail(scene.path, "read failed, the file is truncated or corrupt", "re-download or re-export it") from exc
        rgb = np.empty((*shape, max(3, len(data))), np.uint8)
        rgb[:] = _to_uint8(data, scene.stretch).transpose(1, 2, 0)
        rgb[~_valid(data, scene.nodata)] = 0
        return rgb


def scene_pixels(scene: Scene) -> NDArray[np.uint8]:
    """The whole of an opened scene as the detector sees it (same band stacking and stretch), (H, W, C)."""
    with SceneReader(scene) as reader:
        pixels, _ = reader.read(Window(0, 0, scene.width, scene.height))
    return pixels


def _interleave(planes: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(c, h, w) planes as (h, w, c): OpenCV's merge is about twice as fast as numpy's transpose copy."""
    return np.asarray(cv2.merge([np.ascontiguousarray(p) for p in planes]))


def _to_uint8(data: NDArray[np.generic], stretch: tuple[tuple[float, float], ...] | None) -> NDArray[np.uint8]:
    if stretch is None:
        return data.astype(np.uint8, copy=False)
    out = np.empty(data.shape, np.uint8)
    for i, (low, high) in enumerate(stretch):
        band = (data[i].astype(np.float32) - low) * (255.0 / (high - low))
        np.clip(np.nan_to_num(band, nan=0.0), 0, 255, out=band)
        out[i] = np.rint(band).astype(np.uint8)
    return out
