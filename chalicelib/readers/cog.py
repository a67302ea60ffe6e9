"""One GeoTIFF as a :class:`~.protocol.Reader`: the functions of :mod:`.geotiff` over one
open dataset, each call holding the dataset once (:func:`~chalicelib.sources.datasets.reading`)
for its read and for what it attaches to the pixels."""

from collections.abc import Callable

from rasterio.crs import CRS

from ..core.geo import WGS84, Bounds, LonLatBounds
from ..core.records import ImageData, ImageSize, Selection, StatisticsOptions, TileAddress
from ..core.settings import Settings
from ..grids.footprints import TileRange
from ..grids.tilematrixsets import TileMatrixSet
from ..sources.allowlist import resolve
from ..sources.datasets import OpenDataset, cache, reading
from . import geotiff
from .protocol import point_values


def open_dataset(url: str | None, config: Settings) -> OpenDataset:
    """Allow-list check, then the (cached) open dataset."""
    source = resolve(url or "", config.allowed_sources, config.unsafe_allow_hosts)
    return cache.get(source, config)


class COGReader:
    """One GeoTIFF."""

    kind = "cog"

    def __init__(self, dataset: OpenDataset, config: Settings):
        self.dataset = dataset
        self.config = config
        self.name = dataset.name
        self.geographic_bounds: LonLatBounds = dataset.geographic_bounds

    @classmethod
    def open(cls, url: str | None, config: Settings) -> "COGReader":
        return cls(open_dataset(url, config), config)

    def _reading(self):
        return reading(self.dataset, self.config)

    def _pixels(self, read: Callable[[OpenDataset], ImageData], selection: Selection,
                statistics: bool) -> ImageData:
        """``read(handle)``, then what rendering needs attached, in one hold."""
        with self._reading() as handle:
            return geotiff.attach(handle, read(handle), selection, statistics)

    def tile(self, address: TileAddress, selection: Selection,
             statistics: bool = False) -> ImageData:
        return self._pixels(lambda h: geotiff.tile(h, address, selection), selection,
                            statistics)

    def part(self, bounds: Bounds, crs, width: int, height: int, selection: Selection,
             statistics: bool = False) -> ImageData:
        return self._pixels(lambda h: geotiff.part(h, bounds, crs, width, height, selection),
                            selection, statistics)

    def tile_exists(self, tms: TileMatrixSet, z: int, x: int, y: int) -> bool:
        with self._reading() as handle:
            return geotiff.tile_exists(handle, tms, z, x, y)

    def preview(self, selection: Selection, size: ImageSize, statistics: bool = False,
                crs: CRS | None = None) -> ImageData:
        return self._pixels(lambda h: geotiff.preview(h, selection, size, crs), selection,
                            statistics)

    def bbox(self, bounds: Bounds, selection: Selection, size: ImageSize,
             statistics: bool = False, crs: CRS = WGS84, align: bool = False) -> ImageData:
        return self._pixels(lambda h: geotiff.bbox(h, bounds, selection, size, crs, align),
                            selection, statistics)

    def grid_in(self, crs: CRS):
        """The file's pixel grid in ``crs`` (see :func:`.geotiff.grid_in`)."""
        with self._reading() as handle:
            return geotiff.grid_in(handle, crs)

    def point_image(self, lon: float, lat: float, selection: Selection) -> ImageData:
        with self._reading() as handle:
            return geotiff.point(handle, lon, lat, selection)

    def point(self, lon: float, lat: float, selection: Selection) -> dict:
        return point_values(self.point_image(lon, lat, selection), lon, lat)

    def info(self, tms: TileMatrixSet) -> dict:
        with self._reading() as handle:
            return geotiff.info(handle, tms)

    def statistics(self, selection: Selection, options: StatisticsOptions) -> dict:
        with self._reading() as handle:
            return geotiff.statistics(handle, selection, options)

    def stretch_ranges(self, selection: Selection):
        """The dataset's stretch ranges for ``selection`` (memoised per dataset)."""
        with self._reading() as handle:
            return geotiff.stretch_ranges(handle, selection)

    def palette(self):
        """The file's colour table, if it is paletted (memoised per dataset)."""
        with self._reading() as handle:
            return geotiff.palette(handle)

    def zoom_range(self, tms: TileMatrixSet) -> tuple[int, int]:
        with self._reading() as handle:
            return geotiff.zoom_range(handle, tms)

    def footprint(self, tms: TileMatrixSet) -> list[Bounds]:
        with self._reading() as handle:
            return geotiff.footprint(handle, tms)

    def tile_limits(self, tms: TileMatrixSet, z: int) -> TileRange | None:
        with self._reading() as handle:
            return geotiff.tile_limits(handle, tms, z)

    def native_resolution(self, crs) -> float:
        return self.dataset.native_resolution(crs)


def reader_for(url: str | None, config: Settings,
               selection: Selection | None = None) -> COGReader:
    """The GeoTIFF at ``url`` (allow-listed, opened once per warm container)."""
    return COGReader.open(url, config)
