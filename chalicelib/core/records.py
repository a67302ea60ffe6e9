"""The records that flow between the engine's steps.

Parsing (``api.params``) builds them; the readers, the pixel steps and the encoders take
them; none of those imports the parser. A request becomes, in order: a :class:`TileAddress`
or an :class:`ImageSize` (where and how big), a :class:`Selection` (what to read), a
:class:`Style` (how to show it), and for TileJSON and WMTS a :class:`TilesetOptions`; a
reader returns :class:`ImageData` (with what rendering needs from the source attached);
rendering and encoding return an :class:`EncodedImage`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_bounds

from .geo import Bounds, widened

if TYPE_CHECKING:  # records name these types; they never need the modules at runtime
    from affine import Affine

    from ..grids.tilematrixsets import TileMatrixSet
    from ..pixels.color_formula import Operation
    from ..pixels.expression import Expression
    from ..pixels.formats import ImageFormat


@dataclass(frozen=True)
class Selection:
    """What to read: bands or an expression, the nodata override, resampling; for a STAC
    item the assets (stacked in order) and their bands; for a mosaic how its files' pixels
    are combined."""

    indexes: tuple[int, ...] | None = None
    expression: Expression | None = None
    nodata: float | None = None
    resampling: Resampling = Resampling.nearest
    reproject: Resampling = Resampling.nearest
    assets: tuple[str, ...] | None = None
    #: (asset, bands) pairs: the bands to read of those assets (default: all but alpha).
    asset_indexes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    asset_as_band: bool = False
    pixel_selection: str = "first"
    #: Apply the bands' scales and offsets (``value * scale + offset``, float) when reading.
    unscale: bool = False

    @property
    def key(self) -> tuple:
        """What identifies the output bands (for caching statistics)."""
        nodata = "nan" if self.nodata is not None and math.isnan(self.nodata) else self.nodata
        return (self.indexes, self.expression.text if self.expression else None, nodata,
                self.assets, self.asset_indexes, self.pixel_selection, self.unscale)

    def for_file(self, indexes: tuple[int, ...] | None = None) -> Selection:
        """What to read of one file of a multi-file source: its bands, no expression."""
        return Selection(indexes=indexes, nodata=self.nodata, resampling=self.resampling,
                         reproject=self.reproject, unscale=self.unscale)


@dataclass(frozen=True)
class Style:
    """How to render: rescale ranges, colormap, whether the mask becomes alpha, encoder
    settings."""

    rescale: tuple[tuple[float, float], ...] | None = None
    colormap: object = None  # see colormaps: table, discrete dict or interval list
    return_mask: bool = True
    png_zlevel: int = 6
    quality: int | None = None  # JPEG/WEBP quality; None = the format's default
    #: Colour operations on the 8-bit values (``pixels.color_formula``), after the stretch.
    color_formula: tuple[Operation, ...] | None = None


@dataclass(frozen=True)
class TileAddress:
    """One tile of a tile matrix set, and the size and format to draw it in."""

    tms: TileMatrixSet
    z: int
    x: int
    y: int
    width: int
    height: int
    format: ImageFormat | None  # None: PNG if any pixel is masked, JPEG otherwise
    outside: str = "404"  # a tile outside the data: "404", "204" or "empty"
    #: Pixels the answer has beyond the tile on each side (titiler's ``buffer``: a tile of
    #: width + 2 x buffer; a multiple of 0.5).
    buffer: float = 0.0
    #: Pixels read beyond the tile and cropped off again (titiler's ``padding``).
    padding: int = 0
    #: Pixels the reader reads beyond the tile on each side: buffer, padding and what an
    #: algorithm's neighbourhood needs (set by the operation that reads the tile).
    margin: float = 0.0

    def bounds(self, margin: float | None = None) -> tuple[Bounds, int, int]:
        """The tile's bounds and size with ``margin`` pixels more on each side (default:
        :attr:`margin`)."""
        return widened(self.tms.xy_bounds(self.z, self.x, self.y), self.width, self.height,
                       self.margin if margin is None else margin)


@dataclass(frozen=True)
class ImageSize:
    """The size and format of a preview or bbox image: ``width`` and ``height`` both given
    are the size; one given, the other follows the data's aspect ratio; neither, the data's
    size with the longest side at most ``max_size`` (never upsampled)."""

    format: ImageFormat | None
    max_size: int | None  # None: the data's size (a feature's statistics)
    width: int | None = None
    height: int | None = None
    #: Pixels read beyond the image on each side (what an algorithm's neighbourhood needs).
    margin: int = 0


@dataclass(frozen=True)
class StatisticsOptions:
    """What ``/statistics`` computes, from an overview of at most ``max_size`` pixels."""

    max_size: int | None = 1024  # None: the data's resolution (statistics of a shape)
    percentiles: tuple[float, ...] = (2.0, 98.0)
    #: A number of equal bins, or the bins' edges (increasing).
    bins: int | tuple[float, ...] = 10
    histogram_range: tuple[float, float] | None = None
    #: Count each value (``categories``: those values) instead of binning.
    categorical: bool = False
    categories: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TilesetOptions:
    """What a TileJSON or WMTS document says of the tiles it lists: their format (None:
    chosen per tile), scale (``@Nx``), size before the scale (None: the matrix's) and the
    zoom range (None: the data's)."""

    tile_format: ImageFormat | None = None
    tile_scale: int = 1
    tilesize: int | None = None
    minzoom: int | None = None
    maxzoom: int | None = None


#: Per band (low, high): the values a linear stretch maps to 0 and 255.
Ranges = tuple[tuple[float, float], ...]


@dataclass
class ImageData:
    """Pixels read from a source: ``data`` (bands, h, w), ``mask`` (h, w) True where valid,
    and where they lie: ``bounds`` (left, bottom, right, top) in ``crs``.

    What rendering needs from the source comes attached, so that it never goes back to the
    reader: ``palette``, the source's own colour table (a (256, 4) lookup table) when its
    band is paletted; ``dataset_statistics``, each band's 2nd-98th percentile over the whole
    dataset, when the read was asked for them (see ``pixels.render.stretches``)."""

    data: np.ndarray
    mask: np.ndarray
    bounds: Bounds
    crs: CRS
    band_names: tuple[str, ...]
    palette: np.ndarray | None = None
    dataset_statistics: Ranges | None = None
    #: The nodata value the bands were read with (None: none, or not per band): a band's
    #: own pixels equal to it are not valid in that band, though ``mask`` shows the pixel
    #: when another band is valid (GDAL's nodata is per band).
    nodata: float | None = None

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def transform(self) -> Affine:
        transform: Affine = from_bounds(*self.bounds, self.width, self.height)
        return transform

    def band_validity(self) -> np.ndarray:
        """(bands, h, w) True where each band is valid: ``mask``, less each band's own
        nodata pixels."""
        valid = np.broadcast_to(self.mask, self.data.shape)
        if self.nodata is None:
            return valid
        if math.isnan(self.nodata):
            return valid & ~np.isnan(self.data)
        own: np.ndarray = self.data != np.asarray(self.nodata).astype(self.data.dtype)
        both: np.ndarray = valid & own
        return both

    def cropped(self, pixels: int) -> ImageData:
        """This image without ``pixels`` on each side (a buffer the read added), its bounds
        shrunk to match."""
        if pixels <= 0:
            return self
        if 2 * pixels >= min(self.width, self.height):
            raise ValueError(f"cannot crop {pixels} pixels off a {self.width}x{self.height} "
                             "image")
        left, bottom, right, top = self.bounds
        dx, dy = (right - left) / self.width, (top - bottom) / self.height
        p = pixels
        return ImageData(self.data[:, p:-p, p:-p], self.mask[p:-p, p:-p],
                         type(self.bounds)(left + p * dx, bottom + p * dy, right - p * dx,
                                           top - p * dy),
                         self.crs, self.band_names, self.palette, self.dataset_statistics,
                         self.nodata)


@dataclass
class EncodedImage:
    """An encoded image, ready to be a response body (or a stored tile)."""

    body: bytes
    media_type: str
    extension: str
    headers: dict = field(default_factory=dict)
    empty: bool = False  # no visible pixel (the tile cache skips these)
    status: int = 200  # 204: no content (a tile outside the data, when asked so)
