"""Rendering simulated acquisitions as Sentinel-2-like band folders.

Each acquisition becomes a folder of GeoTIFFs (``B02``, ``B03``, ``B04``,
``B08``; uint16 L2A digital numbers; nodata 0) on a UTM zone 53N grid. The
pixels are real: water, land and ships are chips cut from real Sentinel-2
scenes (``detector/data/s2_chips.npz``, see ``datasets/s2_chips.py``), placed
by the simulation; each ship is the chip of a real ship of about its length,
rotated to its heading and scaled to its exact length.
Pixels beyond the swath edge are nodata. Clouds are white, twice as bright as
the brightest land, and the folder holds the scene classification an L2A
product has (``..._SCL.tif``, on the bands' grid: 9, cloud high probability,
over them), so that the detect chain masks them as it masks real ones.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import rasterio
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.crs import CRS as RasterCRS
from rasterio.features import rasterize
from rasterio.transform import from_origin

from detector.aoi import aoi_in_pixels
from detector.export import atomic_path
from detector.simulate import SimShip, Simulation
from detector.zones import ZoneKind

__all__ = ["BANDS", "Grid", "grid_for", "render_acquisition"]

BANDS = ("B02", "B03", "B04", "B08")
CRS = "EPSG:32653"


@lru_cache(maxsize=1)
def _chips() -> dict[str, list[NDArray[np.generic]]]:
    with resources.files("detector").joinpath("data/s2_chips.npz").open("rb") as f:
        data = np.load(f)
        out: dict[str, list[NDArray[np.generic]]] = {"ship": [], "mask": [], "water": [], "land": []}
        for kind in out:
            i = 0
            while f"{kind}_{i}" in data:
                out[kind].append(data[f"{kind}_{i}"])
                i += 1
    return out


class Grid:
    """The UTM pixel grid of a simulation's area of interest."""

    def __init__(self, sim: Simulation, gsd_m: float) -> None:
        to_utm = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
        minx, miny, maxx, maxy = sim.aoi.bounds  # type: ignore[union-attr]
        xs, ys = to_utm.transform([minx, maxx, minx, maxx], [miny, miny, maxy, maxy])
        self.x0, self.y1 = float(np.floor(min(xs) / gsd_m) * gsd_m), float(np.ceil(max(ys) / gsd_m) * gsd_m)
        self.width = int(np.ceil((max(xs) - self.x0) / gsd_m))
        self.height = int(np.ceil((self.y1 - min(ys)) / gsd_m))
        self.gsd = gsd_m
        self.transform = from_origin(self.x0, self.y1, gsd_m, gsd_m)
        self._to_utm = to_utm

    def pixels(self, geom: shapely.Geometry) -> shapely.Geometry:
        """A lon/lat geometry in this grid's pixels."""
        return aoi_in_pixels(geom, RasterCRS.from_string(CRS), self.transform)

    def to_pixels(
        self, lon: NDArray[np.float64] | float, lat: NDArray[np.float64] | float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        x, y = self._to_utm.transform(lon, lat)
        return (np.asarray(x) - self.x0) / self.gsd, (self.y1 - np.asarray(y)) / self.gsd


def grid_for(sim: Simulation, gsd_m: float = 10.0) -> Grid:
    return Grid(sim, gsd_m)


def _tile(patches: list[NDArray[np.generic]], shape: tuple[int, int], rng: np.random.Generator) -> NDArray[np.float32]:
    """Cover ``shape`` with real texture at one brightness.

    Patches come from different ports and days, so each is reduced to its
    texture (pixels over the patch's median, per band), smoothly blended at
    the seams and multiplied by the median spectrum of all patches.
    """
    stack = np.stack([q.astype(np.float32) for q in patches])
    level = np.median(stack, axis=(0, 2, 3))
    textures = [np.clip(q / np.maximum(np.median(q, axis=(1, 2), keepdims=True), 1.0), 0.6, 1.6) for q in stack]
    calm = [t for t in textures if t[-1].std() < 0.15] or textures
    p = stack.shape[-1]
    step = p - 12
    out = np.zeros((len(BANDS), *shape), np.float32)
    weight = np.zeros(shape, np.float32)
    ramp = np.minimum(np.minimum(np.arange(p), np.arange(p)[::-1]) + 1, 12).astype(np.float32)
    w2 = np.outer(ramp, ramp)
    for y in range(0, shape[0], step):
        for x in range(0, shape[1], step):
            t = calm[int(rng.integers(len(calm)))]
            if rng.random() < 0.5:
                t = t[:, ::-1]
            if rng.random() < 0.5:
                t = t[:, :, ::-1]
            h, w = min(p, shape[0] - y), min(p, shape[1] - x)
            out[:, y : y + h, x : x + w] += t[:, :h, :w] * w2[:h, :w]
            weight[y : y + h, x : x + w] += w2[:h, :w]
    return np.asarray(out / np.maximum(weight, 1e-6) * level[:, None, None], np.float32)


def _water(patches: list[NDArray[np.generic]], shape: tuple[int, int], rng: np.random.Generator) -> NDArray[np.float32]:
    """Open water: the median spectrum of the real water patches, with slow swell and sensor noise.

    Texture tiled from harbour patches carries their small boats and wakes,
    which detectors rightly report; open water at 10 m is nearly uniform.
    """
    level = np.median(np.stack([q.astype(np.float32) for q in patches]), axis=(0, 2, 3))
    small = rng.normal(0.0, 1.0, (max(2, shape[0] // 64), max(2, shape[1] // 64))).astype(np.float32)
    swell = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC) * 0.03
    return np.asarray(level[:, None, None] * (1.0 + swell[None]), np.float32)


@lru_cache(maxsize=1)
def _chip_rects() -> NDArray[np.float64]:
    """(centre col, centre row, length px, beam px, angle of the length) of each ship chip.

    From the minimum-area rectangle of the chip's mask.
    """
    rects = []
    for mask in _chips()["mask"]:
        ys, xs = np.nonzero(mask)
        (cx, cy), (a, b), ang = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
        rects.append((cx, cy, a, b, ang) if a >= b else (cx, cy, b, a, ang + 90.0))
    return np.array(rects, np.float64)


def _chip_sizes() -> NDArray[np.float64]:
    """(length px, length / beam) of each real ship chip."""
    rects = _chip_rects()
    return np.column_stack([rects[:, 2], rects[:, 2] / np.maximum(rects[:, 3], 1.0)])


def _ship_chip(vessel: int, length_px: float) -> int:
    """A real chip of about this length (within 30%, hull-shaped first), the same for a vessel in every image.

    Scaling a 70 m boat up to a 250 m tanker would paste a blob no satellite
    shows; a chip of a real ship of about the size keeps the hull's look.
    """
    sizes = _chip_sizes()
    ratio = sizes[:, 0] / max(length_px, 1.0)
    near = np.flatnonzero((ratio > 1 / 1.3) & (ratio < 1.3))
    shaped = near[sizes[near, 1] >= 2.0]
    pool = shaped if len(shaped) else near if len(near) else np.argsort(np.abs(np.log(ratio)))[:3]
    return int(pool[vessel % len(pool)])


def _paste_ship(img: NDArray[np.float32], ship: SimShip, grid: Grid) -> None:
    chips = _chips()
    k = _ship_chip(ship.vessel, ship.length_m / grid.gsd)
    chip, mask = chips["ship"][k].astype(np.float32), chips["mask"][k].astype(np.uint8)
    cx0, cy0, length0, _, angle0 = (float(v) for v in _chip_rects()[k])
    col, row = grid.to_pixels(ship.lon, ship.lat)
    target_angle = (ship.heading_deg - 90.0) % 180.0  # heading clockwise from north -> +col toward +row
    scale = (ship.length_m / grid.gsd) / max(length0, 1.0)
    m = np.asarray(cv2.getRotationMatrix2D((float(cx0), float(cy0)), -(target_angle - angle0), scale), np.float64)
    m[:, 2] += np.array([float(col) - cx0, float(row) - cy0])
    size = (img.shape[2], img.shape[1])
    alpha = cv2.warpAffine(mask.astype(np.float32), m, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0.6)
    hit = alpha > 0.01
    if not hit.any():
        return
    for band in range(img.shape[0]):
        warped = cv2.warpAffine(chip[band], m, size, flags=cv2.INTER_LINEAR)
        img[band][hit] = img[band][hit] * (1 - alpha[hit]) + warped[hit] * alpha[hit]


def render_acquisition(sim: Simulation, index: int, folder: Path, gsd_m: float = 10.0, seed: int = 0) -> Path:
    """Write acquisition ``index`` of ``sim`` as a band folder; return the folder."""
    grid = grid_for(sim, gsd_m)
    rng = np.random.default_rng([seed, index])
    shape = (grid.height, grid.width)
    chips = _chips()
    img = _water(chips["water"], shape, rng)
    land = _land(sim)
    land_mask = rasterize([grid.pixels(land)], out_shape=shape, transform=rasterio.Affine.identity()).astype(bool)
    if land_mask.any():
        img[:, land_mask] = _tile(chips["land"], shape, rng)[:, land_mask]
    for ship in sim.ships[index]:
        _paste_ship(img, ship, grid)
    img *= rng.normal(1.0, 0.01, img.shape).astype(np.float32)  # sensor noise
    acq = sim.acquisitions[index]
    data = np.clip(img, 1, 65535).astype(np.uint16)
    classes = np.full(shape, 7, np.uint8)  # SCL 7: unclassified (neither cloud nor anything claimed)

    def mask(geometry: shapely.Geometry | None) -> NDArray[np.bool_]:
        if geometry is None or geometry.is_empty:
            return np.zeros(shape, bool)
        return rasterize([grid.pixels(geometry)], out_shape=shape, transform=rasterio.Affine.identity()).astype(bool)

    if acq.footprint is not None:
        cloud = mask(sim.clouds[index] if index < len(sim.clouds) else None)
        white = (2 * np.percentile(data, 99.9, axis=(1, 2))).clip(1, 65535).astype(np.uint16)
        data[:, cloud] = white[:, None]
        classes[cloud] = 9  # cloud high probability
        gone = ~mask(acq.footprint) & ~cloud  # beyond the swath edge
        data[:, gone], classes[gone] = 0, 0
    stamp = acq.time.strftime("%Y-%m-%dT%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "uint16", "crs": CRS,
        "transform": grid.transform, "nodata": 0, "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
    }  # fmt: skip
    # The scene classification first, the bands after: a folder with B08 (written last) is complete.
    scl = folder / f"vostochny_{stamp}_SCL.tif"
    with atomic_path(scl, ".tif") as tmp, rasterio.open(tmp, "w", **{**profile, "dtype": "uint8", "nodata": None}) as ds:
        ds.write(classes, 1)
    for b, name in enumerate(BANDS):
        with atomic_path(folder / f"vostochny_{stamp}_{name}.tif", ".tif") as tmp, rasterio.open(tmp, "w", **profile) as ds:
            ds.write(data[b], 1)
    return folder


def _land(sim: Simulation) -> shapely.Geometry:
    """Land north of the berths: the shore runs along the berths' landward edges."""
    minx, _, maxx, maxy = sim.aoi.bounds  # type: ignore[union-attr]
    berths = [z.polygon for z in sim.zones if z.kind is ZoneKind.BERTH]
    if not berths:
        return shapely.Polygon()
    shore = max(b.bounds[3] for b in berths) + 0.0015
    parts = [shapely.box(minx, shore, maxx, maxy)]
    for b in berths:
        bx0, _, bx1, by1 = b.bounds
        parts.append(shapely.box(bx0 - 0.001, by1 + 0.0002, bx1 + 0.001, maxy))
    return shapely.union_all(parts)
