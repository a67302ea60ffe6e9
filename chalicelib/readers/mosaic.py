"""Mosaics: many GeoTIFFs read as one source, through an index that says which files cover
a box.

A mosaic is an index (:class:`MosaicIndex`: "which files cover this box?", in priority
order; MosaicJSON is one, :mod:`.mosaicjson`) plus a member reader (one GeoTIFF,
:class:`~.cog.COGReader`). A tile's files come from the index by the tile's longitude and
latitude bounds (any tile matrix set); each is checked against the allow-list before it is
opened, read on the tile's grid (concurrently, :func:`~.pool.read_all`; each file's pixels
charged to the request's one memory budget, :mod:`chalicelib.core.budget`, and released once
folded in), and the pixels are combined by a pixel selection method
(:mod:`chalicelib.pixels.pixel_selection`). With ``first`` (the default), reading stops as
soon as every pixel is filled. What rendering needs (the palette, the stretch ranges) comes
from the index's first file, so that every tile of a mosaic is drawn alike, and is kept with
the index.
"""

import math
from collections.abc import Callable
from typing import Protocol

from ..core import budget
from ..core.errors import BadRequest, TileOutsideBounds
from ..core.geo import (
    MAX_LAT,
    WGS84,
    Bounds,
    LonLatBounds,
    geographic_overlap,
    in_degrees,
    to_lonlat,
)
from ..core.memo import remembered
from ..core.records import ImageData, ImageSize, Selection, StatisticsOptions, TileAddress
from ..core.settings import Settings
from ..grids.footprints import TileRange, footprint_of, tile_limits
from ..grids.tilematrixsets import TileMatrixSet
from ..pixels import render
from ..pixels.pixel_selection import METHODS
from ..sources.allowlist import display_name, parse
from .cog import COGReader
from .geotiff import sized_part
from .planning import check_read_size
from .pool import read_all
from .protocol import point_values
from .stac import STACReader

#: Most files one tile may combine; a tile that needs more must be asked at a deeper zoom.
MAX_FILES_PER_TILE = 64


class MosaicIndex(Protocol):
    """Which files make a mosaic where. Zooms are Web Mercator's (as MosaicJSON's)."""

    @property
    def name(self) -> str: ...

    @property
    def minzoom(self) -> int: ...

    @property
    def maxzoom(self) -> int: ...

    @property
    def bounds(self) -> LonLatBounds: ...

    @property
    def center(self) -> tuple | None: ...

    @property
    def memo(self) -> dict:
        """Results kept with the index (the palette and stretch ranges of the mosaic)."""
        ...

    def files_for(self, box: tuple) -> list[str]:
        """The files whose data may lie in ``box`` (degrees), in priority order;
        :class:`BadRequest` when there would be too many to look up."""
        ...

    def first_file(self) -> str | None:
        """The file whose palette and statistics stand for the whole mosaic."""
        ...

    def describe(self) -> dict:
        """What ``/info`` adds about the index (its size, its own parameters)."""
        ...

    def display_names(self, files: list[str]) -> list[str]:
        """The names of ``files`` safe to show users."""
        ...


class MosaicReader:
    """A mosaic as a :class:`~.protocol.Reader`; ``member`` opens one of its files."""

    def __init__(self, index: MosaicIndex, config: Settings, kind: str,
                 member: Callable[[str, Settings], COGReader | STACReader] = COGReader.open):
        self.index = index
        self.config = config
        self.kind = kind
        self.member = member
        self.name = index.name
        west, south, east, north = index.bounds
        self.geographic_bounds = LonLatBounds(west, max(south, -90.0), east, min(north, 90.0))

    # ---- which files ----------------------------------------------------------------------

    def files_for(self, box: tuple) -> list[str]:
        return self.index.files_for(box)

    def _open(self, url: str) -> COGReader | STACReader:
        return self.member(url, self.config)

    def _files_of_tile(self, tms: TileMatrixSet, z: int, x: int, y: int) -> list[str]:
        box = tms.geographic_bounds(z, x, y) or self.geographic_bounds
        if not geographic_overlap(box, self.geographic_bounds):
            return []
        return self.index.files_for(box)

    # ---- reading --------------------------------------------------------------------------

    def _combine(self, urls: list[str], selection: Selection, read) -> tuple[ImageData, list]:
        """Read ``urls`` with ``read(cog, selection)`` (concurrently, in priority order) and
        combine them; TileOutsideBounds where none has data."""
        if len(urls) > MAX_FILES_PER_TILE:
            raise BadRequest(f"this tile needs {len(urls)} files of the mosaic (at most "
                             f"{MAX_FILES_PER_TILE}): zoom in")
        method = METHODS[selection.pixel_selection]()
        first, used = None, []

        def read_member(url: str):
            with budget.child() as charged:  # what this file's pixels hold
                return read(self._open(url), selection), charged

        for url, result, error in read_all(urls, read_member, first_alone=method.first_alone):
            if isinstance(error, TileOutsideBounds):
                continue
            if error is not None:
                raise member_error(url, error, self.index.display_names([url])[0])
            image, charged = result
            if first is None:  # what the result takes from the first file (not its pixels)
                first = (image.bounds, image.crs, tuple(image.band_names), image.data.shape[0])
            elif image.data.shape[0] != first[3]:
                raise BadRequest("the mosaic's files have different band counts; choose "
                                 "bands with bidx")
            method.feed(image.data, image.mask[None])
            if not method.holds_inputs:  # folded in (the method charged its own state)
                charged.release()
            del image, result
            used.append(url)
            if method.done:
                break
        if first is None:
            raise TileOutsideBounds("no file of the mosaic has data here")
        data, valid = method.result()
        bounds, crs, names, count = first
        if data.shape[0] != count:
            names = method.band_names(names)
        return ImageData(data, valid, bounds, crs, tuple(names)), used

    def _attach(self, image: ImageData, selection: Selection, statistics: bool) -> ImageData:
        """The palette and, when asked, the stretch ranges of the index's first file (the
        files are expected to be alike), kept with the index; none for a method whose
        output is not the files' values (count)."""
        first = self.index.first_file()
        if first is None or not METHODS[selection.pixel_selection].keeps_values:
            return image
        memo = self.index.memo
        if selection.expression is None:
            image.palette = remembered(memo, ("palette",), lambda: self._open(first).palette())
        if statistics and not render.shown_as_is(image.data.dtype):
            image.dataset_statistics = remembered(
                memo, ("stretch", *selection.key),
                lambda: self._open(first).stretch_ranges(selection))
        return image

    def tile_exists(self, tms: TileMatrixSet, z: int, x: int, y: int) -> bool:
        return bool(self._files_of_tile(tms, z, x, y))

    # ---- which files, as users see them (titiler-mosaic's /assets routes) -------------------

    def assets_for_tile(self, tms: TileMatrixSet, z: int, x: int, y: int) -> list[str]:
        """The files a tile reads, in priority order (names safe to show)."""
        return self.index.display_names(self._files_of_tile(tms, z, x, y))

    def assets_for_point(self, x: float, y: float, crs=WGS84) -> list[str]:
        lon, lat = to_lonlat(crs, x, y)
        return self.index.display_names(self.index.files_for((lon, lat, lon, lat))
                                        if -MAX_LAT < lat < MAX_LAT else [])

    def assets_for_bbox(self, bounds: Bounds, crs=WGS84) -> list[str]:
        return self.index.display_names(self.files_in(bounds, crs))

    def tile(self, address: TileAddress, selection: Selection,
             statistics: bool = False) -> ImageData:
        tms, z, x, y = address.tms, address.z, address.x, address.y
        urls = self._files_of_tile(tms, z, x, y)
        if not urls:
            raise TileOutsideBounds(f"tile {tms.id}/{z}/{x}/{y} is outside the mosaic; see "
                                    f"/{self.kind}/info for its bounds")
        image, _ = self._combine(urls, selection, lambda cog, s: cog.tile(address, s))
        return self._attach(image, selection, statistics)

    def preview(self, selection: Selection, size: ImageSize, statistics: bool = False,
                crs=None) -> ImageData:
        raise BadRequest("a mosaic has no preview: ask for tiles or a bbox")

    def files_in(self, bounds: Bounds, crs=WGS84) -> list[str]:
        """The files whose data may lie in ``bounds`` (in ``crs``), in priority order."""
        box = in_degrees(crs, bounds)
        if box is None:
            raise BadRequest("the box cannot be expressed in degrees, which the mosaic's "
                             "index is in")
        if not geographic_overlap(box, self.geographic_bounds):
            return []
        return self.index.files_for(box)

    def bbox(self, bounds: Bounds, selection: Selection, size: ImageSize,
             statistics: bool = False, crs=WGS84, align: bool = False) -> ImageData:
        """The files' pixels inside ``bounds``, on the grid of the first file the index
        lists there (its resolution; its pixels if ``align``)."""
        urls = self.files_in(bounds, crs)
        if not urls:
            raise TileOutsideBounds(f"the bbox does not touch the mosaic; see /{self.kind}"
                                    "/info for its bounds")
        first = self._open(urls[0])
        box, width, height = sized_part(bounds, first.grid_in(crs)[0], size, align)
        check_read_size(1, width, height)
        image, _ = self._combine(urls, selection,
                                 lambda cog, s: cog.part(box, crs, width, height, s))
        return self._attach(image, selection, statistics)

    def statistics(self, selection: Selection, options: StatisticsOptions) -> dict:
        raise BadRequest("a mosaic has no statistics of its whole: POST a GeoJSON feature "
                         f"to /{self.kind}/statistics, or ask for those of its files")

    def point(self, lon: float, lat: float, selection: Selection) -> dict:
        urls = self.index.files_for((lon, lat, lon, lat)) if -MAX_LAT < lat < MAX_LAT else []
        if not urls:
            raise TileOutsideBounds(f"the point {lon:g},{lat:g} is outside the mosaic")
        image, used = self._combine(urls, selection,
                                    lambda cog, s: cog.point_image(lon, lat, s))
        result = point_values(image, lon, lat)
        result["assets"] = self.index.display_names(used)
        return result

    def info(self, tms: TileMatrixSet) -> dict:
        index = self.index
        minzoom, maxzoom = self.zoom_range(tms)
        west, south, east, north = self.geographic_bounds
        return {"name": index.name, "bounds": [west, south, east, north],
                "center": list(index.center) if index.center else [(west + east) / 2,
                                                                   (south + north) / 2,
                                                                   index.minzoom],
                "minzoom": minzoom, "maxzoom": maxzoom, "tilematrixset": tms.id,
                **index.describe()}

    def zoom_range(self, tms: TileMatrixSet) -> tuple[int, int]:
        """The index's zooms (Web Mercator), as the same cell sizes in ``tms``."""
        index = self.index
        if tms.is_web_mercator:
            return index.minzoom, index.maxzoom
        size = 2 * math.pi * 6378137 / 256  # metres per pixel at Web Mercator zoom 0
        degrees = 360 / 256  # the same in degrees at the equator
        unit = degrees if tms.is_geographic else size
        maxzoom = tms.zoom_for_cell_size(unit / 2 ** index.maxzoom)
        minzoom = min(tms.zoom_for_cell_size(unit / 2 ** index.minzoom), maxzoom)
        return max(minzoom, tms.minzoom), maxzoom

    def footprint(self, tms: TileMatrixSet) -> list[Bounds]:
        key = ("footprint", tms.id)
        if key not in self.index.memo:
            self.index.memo[key] = footprint_of(WGS84, self.geographic_bounds,
                                                self.geographic_bounds, tms)
        return self.index.memo[key]

    def tile_limits(self, tms: TileMatrixSet, z: int) -> TileRange | None:
        return tile_limits(tms, z, self.footprint(tms))


def member_error(url: str, error: BaseException, shown: str | None = None) -> BaseException:
    """A member file's failure, naming the file (``shown``, else its display name: never
    a server path)."""
    message = getattr(error, "message", None)
    if message is None:
        return error
    error.message = f"mosaic file {shown or display_name(parse(url))}: {message}"  # type: ignore[attr-defined]
    error.args = (error.message,)  # type: ignore[attr-defined]
    return error
