"""What every source can do, whatever it is made of: one file, a STAC item, a mosaic.

:class:`Reader` is the protocol the operations (:mod:`chalicelib.operations`), WMTS and the
tile cache use. Readers return pixels (:class:`~chalicelib.core.records.ImageData`) with
what rendering needs from the source attached; they know nothing of styles. A read asked
for ``statistics`` attaches the dataset's stretch ranges to pixels that are not 8-bit
(``pixels.render.stretches`` says when a style needs them). Implementations:
:class:`~.cog.COGReader` (one GeoTIFF), :class:`~.stac.STACReader` (a STAC item's assets)
and :class:`~.mosaic.MosaicReader` (an index of files, such as a MosaicJSON).
"""

from typing import Protocol

import numpy as np
from rasterio.crs import CRS

from ..core.geo import WGS84, Bounds, LonLatBounds
from ..core.records import ImageData, ImageSize, Selection, StatisticsOptions, TileAddress
from ..core.settings import Settings
from ..grids.footprints import TileRange
from ..grids.tilematrixsets import TileMatrixSet


class Reader(Protocol):
    """A source of pixels and metadata. ``kind`` names its route family (``/cog``...)."""

    kind: str
    name: str
    config: Settings

    @property
    def geographic_bounds(self) -> LonLatBounds:
        """(west, south, east, north) in degrees; west > east across 180 degrees."""
        ...

    def tile(self, address: TileAddress, selection: Selection,
             statistics: bool = False) -> ImageData: ...

    def tile_exists(self, tms: TileMatrixSet, z: int, x: int, y: int) -> bool: ...

    def preview(self, selection: Selection, size: ImageSize, statistics: bool = False,
                crs: CRS | None = None) -> ImageData:
        """The whole source, in its own CRS or ``crs``."""
        ...

    def bbox(self, bounds: Bounds, selection: Selection, size: ImageSize,
             statistics: bool = False, crs: CRS = WGS84, align: bool = False) -> ImageData:
        """The part inside ``bounds`` as an image in ``crs`` (the bounds' CRS); on whole
        pixels of the data's grid if ``align``."""
        ...

    def point(self, lon: float, lat: float, selection: Selection) -> dict: ...

    def info(self, tms: TileMatrixSet) -> dict: ...

    def statistics(self, selection: Selection, options: StatisticsOptions) -> dict: ...

    def zoom_range(self, tms: TileMatrixSet) -> tuple[int, int]: ...

    def footprint(self, tms: TileMatrixSet) -> list[Bounds]: ...

    def tile_limits(self, tms: TileMatrixSet, z: int) -> TileRange | None: ...


def point_values(image: ImageData, lon: float, lat: float) -> dict:
    """A 1x1 image as the JSON of a point query."""
    valid = bool(image.mask[0, 0])
    values = [_number(v) if valid else None for v in image.data[:, 0, 0]]
    return {"coordinates": [lon, lat], "values": values, "band_names": list(image.band_names),
            "valid": valid}


def _number(value):
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
