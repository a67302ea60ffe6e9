"""What every source can do, whatever it is made of: one file, a STAC item, a mosaic.

:class:`Reader` is the protocol the front door (:mod:`chalicelib.tiler`), WMTS and the tile
cache use; :class:`COGReader` implements it over one open dataset (the functions of
:mod:`chalicelib.reader`), and :mod:`chalicelib.stac` and :mod:`chalicelib.mosaic` implement
it over several, reading their files concurrently (:func:`read_all`). So the HTTP layer, the
tile matrix sets and the formats work for all three alike.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

import numpy as np
from rasterio.enums import ColorInterp

from . import colormaps, reader, render
from .datasets import OpenDataset, cache, reading
from .models import ImageData, ImageSize, Selection, StatisticsOptions, Style, TileAddress
from .settings import Settings
from .sources import resolve
from .tilematrixsets import TileMatrixSet

T = TypeVar("T")
R = TypeVar("R")

#: Files of one request read at once (GDAL releases the GIL while it reads).
MAX_THREADS = 8
_pool: list = []


def read_all(items: Iterable[T], read: Callable[[T], R], threads: int = MAX_THREADS,
             first_alone: bool = False) -> Iterator[tuple[T, R | None, BaseException | None]]:
    """``read`` each item, ``threads`` at a time, yielding ``(item, result, error)`` in the
    items' order; stop consuming to stop reading (the chunk under way finishes).
    ``first_alone``: read the first item by itself (when it may be all the caller needs)."""
    items = list(items)
    if len(items) <= 1 or threads <= 1:
        for item in items:
            try:
                yield item, read(item), None
            except Exception as exc:  # handed to the caller, which decides
                yield item, None, exc
        return
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=MAX_THREADS,
                                        thread_name_prefix="cogtiler-read"))
    starts = [0, *range(1, len(items), threads)] if first_alone else \
        list(range(0, len(items), threads))
    for start, end in zip(starts, starts[1:] + [len(items)]):
        chunk = items[start:end]
        futures = [_pool[0].submit(read, item) for item in chunk]
        for item, future in zip(chunk, futures):
            error = future.exception()
            yield item, None if error else future.result(), error


class Reader(Protocol):
    """A source of pixels and metadata. ``kind`` names its route family (``/cog``...)."""

    kind: str
    name: str
    config: Settings
    #: (west, south, east, north) in degrees; west > east across 180 degrees.
    geographic_bounds: tuple[float, float, float, float]

    def tile(self, address: TileAddress, selection: Selection) -> ImageData: ...

    def tile_exists(self, tms: TileMatrixSet, z: int, x: int, y: int) -> bool: ...

    def preview(self, selection: Selection, size: ImageSize) -> ImageData: ...

    def bbox(self, bounds, selection: Selection, size: ImageSize) -> ImageData: ...

    def point(self, lon: float, lat: float, selection: Selection) -> dict: ...

    def info(self, tms: TileMatrixSet) -> dict: ...

    def statistics(self, selection: Selection, options: StatisticsOptions) -> dict: ...

    def zoom_range(self, tms: TileMatrixSet) -> tuple[int, int]: ...

    def footprint(self, tms: TileMatrixSet) -> list[tuple]: ...

    def tile_limits(self, tms: TileMatrixSet, z: int): ...

    def style_inputs(self, image: ImageData, selection: Selection, style: Style,
                     raw: bool) -> tuple: ...


def open_dataset(url: str | None, config: Settings) -> OpenDataset:
    """Allow-list check, then the (cached) open dataset."""
    source = resolve(url or "", config.allowed_sources, config.unsafe_allow_hosts)
    return cache.get(source, config)


def palette(dataset: OpenDataset):
    """The file's colour table as a colormap, if its first band is paletted (memoised)."""
    if "palette" not in dataset.memo:
        table = None
        if dataset.src.colorinterp[0] == ColorInterp.palette:
            try:
                table = colormaps.from_dataset(dataset.src.colormap(1))
            except ValueError:
                table = None
        dataset.memo["palette"] = table
    return dataset.memo["palette"]


def point_values(image: ImageData, lon: float, lat: float) -> dict:
    """A 1x1 image as the JSON of a point query."""
    valid = bool(image.mask[0, 0])
    values = [_number(v) if valid else None for v in image.data[:, 0, 0]]
    return {"coordinates": [lon, lat], "values": values, "band_names": list(image.band_names),
            "valid": valid}


def merge_limits(limits) -> tuple | None:
    """The tile range covering several (min_col, min_row, max_col, max_row); None if none."""
    ranges = [r for r in limits if r]
    if not ranges:
        return None
    return (min(r[0] for r in ranges), min(r[1] for r in ranges),
            max(r[2] for r in ranges), max(r[3] for r in ranges))


def _number(value):
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class COGReader:
    """One GeoTIFF: each call holds the dataset (:func:`datasets.reading`) while it reads."""

    kind = "cog"

    def __init__(self, dataset: OpenDataset, config: Settings):
        self.dataset = dataset
        self.config = config
        self.name = dataset.name
        self.geographic_bounds = dataset.geographic_bounds

    @classmethod
    def open(cls, url: str | None, config: Settings) -> "COGReader":
        return cls(open_dataset(url, config), config)

    def _reading(self):
        return reading(self.dataset, self.config)

    def tile(self, address: TileAddress, selection: Selection) -> ImageData:
        with self._reading() as handle:
            return reader.tile(handle, address, selection)

    def part(self, bounds, crs, width: int, height: int, selection: Selection) -> ImageData:
        with self._reading() as handle:
            return reader.part(handle, bounds, crs, width, height, selection)

    def tile_exists(self, tms: TileMatrixSet, z: int, x: int, y: int) -> bool:
        with self._reading() as handle:
            return reader.tile_exists(handle, tms, z, x, y)

    def preview(self, selection: Selection, size: ImageSize) -> ImageData:
        with self._reading() as handle:
            return reader.preview(handle, selection, size)

    def bbox(self, bounds, selection: Selection, size: ImageSize) -> ImageData:
        with self._reading() as handle:
            return reader.bbox(handle, bounds, selection, size)

    def point_image(self, lon: float, lat: float, selection: Selection) -> ImageData:
        with self._reading() as handle:
            return reader.point(handle, lon, lat, selection)

    def point(self, lon: float, lat: float, selection: Selection) -> dict:
        return point_values(self.point_image(lon, lat, selection), lon, lat)

    def info(self, tms: TileMatrixSet) -> dict:
        with self._reading() as handle:
            return reader.info(handle, tms)

    def statistics(self, selection: Selection, options: StatisticsOptions) -> dict:
        with self._reading() as handle:
            return reader.statistics(handle, selection, options)

    def zoom_range(self, tms: TileMatrixSet) -> tuple[int, int]:
        with self._reading() as handle:
            return reader.zoom_range(handle, tms)

    def footprint(self, tms: TileMatrixSet) -> list[tuple]:
        with self._reading() as handle:
            return reader.footprint(handle, tms)

    def tile_limits(self, tms: TileMatrixSet, z: int):
        with self._reading() as handle:
            return reader.tile_limits(handle, tms, z)

    def native_resolution(self, crs) -> float:
        return self.dataset.native_resolution(crs)

    def style_inputs(self, image: ImageData, selection: Selection, style: Style,
                     raw: bool) -> tuple:
        """What styling needs from the file: its palette, and the stretch ranges of data
        that must be stretched (read once per dataset and selection)."""
        with self._reading() as handle:
            table = palette(handle) if selection.expression is None else None
            stretch = None
            if render.needs_stretch(image, style, raw):
                stretch = reader.stretch_ranges(handle, selection)
        return table, stretch
