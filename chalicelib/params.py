"""Query parameters, validated once into small typed records (names as titiler's).

``query`` everywhere is a mapping of parameter name to the list of its values (a parameter
may repeat: ``bidx=1&bidx=2``). Every problem becomes a :class:`BadRequest` naming the
parameter and what it accepts.
"""

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from rasterio.enums import Resampling

from . import colormaps
from .expression import Expression, parse as parse_expression
from .errors import BadRequest

Query = Mapping[str, Sequence[str]]

#: Resampling for reading (GDAL RasterIO, including overview decimation).
READ_RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode",
                   "gauss", "rms")
#: Resampling for reprojection (GDAL warper).
WARP_RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode",
                   "max", "min", "med", "q1", "q3", "sum", "rms")


@dataclass(frozen=True)
class ImageFormat:
    name: str
    media_type: str
    extension: str


FORMATS = {
    "png": ImageFormat("png", "image/png", "png"),
    "jpeg": ImageFormat("jpeg", "image/jpeg", "jpg"),
    "webp": ImageFormat("webp", "image/webp", "webp"),
    "tif": ImageFormat("tif", "image/tiff; application=geotiff", "tif"),
    "npy": ImageFormat("npy", "application/x-binary", "npy"),
}
_FORMAT_ALIASES = {"jpg": "jpeg", "tiff": "tif", "gtiff": "tif"}


@dataclass(frozen=True)
class Selection:
    """What to read: bands or an expression, the nodata override, resampling."""

    indexes: tuple[int, ...] | None = None
    expression: Expression | None = None
    nodata: float | None = None
    resampling: Resampling = Resampling.nearest
    reproject: Resampling = Resampling.nearest

    @property
    def key(self) -> tuple:
        """What identifies the output bands (for caching statistics)."""
        nodata = "nan" if self.nodata is not None and math.isnan(self.nodata) else self.nodata
        return (self.indexes, self.expression.text if self.expression else None, nodata)


@dataclass(frozen=True)
class Style:
    """How to render: rescale ranges, colormap, whether the mask becomes alpha."""

    rescale: tuple[tuple[float, float], ...] | None = None
    colormap: object = None  # see colormaps: table, discrete dict or interval list
    return_mask: bool = True
    png_zlevel: int = 6
    quality: int | None = None  # JPEG/WEBP quality; None = encoder default


@dataclass(frozen=True)
class TileAddress:
    z: int
    x: int
    y: int
    tilesize: int
    format: ImageFormat | None  # None: PNG if any pixel is masked, JPEG otherwise


def first(query: Query, name: str, default: str | None = None) -> str | None:
    values = query.get(name) or []
    return values[0] if values else default


def integer(value: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"'{name}' must be an integer, got {str(value)[:20]!r}") from None
    if not low <= number <= high:
        raise BadRequest(f"'{name}' must be between {low} and {high}, got {number}")
    return number


def _float(value: str, name: str, allow_nan: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"'{name}' must be a number, got {str(value)[:20]!r}") from None
    if math.isinf(number) or (math.isnan(number) and not allow_nan):
        raise BadRequest(f"'{name}' must be a finite number")
    return number


def _bool(value: str | None, name: str, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"'{name}' must be true or false")


def _resampling(value: str | None, name: str, allowed: tuple[str, ...]) -> Resampling:
    if value is None:
        return Resampling.nearest
    key = value.strip().lower()
    if key not in allowed:
        raise BadRequest(f"'{name}' must be one of: {', '.join(allowed)}")
    return Resampling[key]


def image_format(name: str | None) -> ImageFormat | None:
    if name is None or name == "":
        return None
    key = _FORMAT_ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise BadRequest(f"unknown format '{name[:20]}'; use png, jpg, webp, tif or npy")
    return FORMATS[key]


def selection(query: Query) -> Selection:
    indexes = None
    raw = [part for value in query.get("bidx") or [] for part in value.split(",") if part.strip()]
    if raw:
        indexes = tuple(integer(part.strip(), "bidx", 1, 10_000) for part in raw)
    expr_text = first(query, "expression")
    parsed = parse_expression(expr_text) if expr_text is not None else None
    nodata_text = first(query, "nodata")
    nodata = None
    if nodata_text is not None and nodata_text.strip().lower() not in ("", "none"):
        nodata = _float(nodata_text, "nodata", allow_nan=True)
    return Selection(
        indexes=None if parsed else indexes,
        expression=parsed,
        nodata=nodata,
        resampling=_resampling(first(query, "resampling"), "resampling", READ_RESAMPLING),
        reproject=_resampling(first(query, "reproject"), "reproject", WARP_RESAMPLING),
    )


def style(query: Query) -> Style:
    rescale = None
    values = query.get("rescale") or []
    if values:
        ranges = []
        for value in values:
            numbers = [p for p in re.split(r"[,\s]+", value.strip().strip("[]")) if p]
            if len(numbers) % 2 or not numbers:
                raise BadRequest("'rescale' takes min,max (repeat it for each band)")
            for i in range(0, len(numbers), 2):
                low, high = _float(numbers[i], "rescale"), _float(numbers[i + 1], "rescale")
                if high == low:
                    raise BadRequest("'rescale' needs max different from min")
                ranges.append((low, high))
        rescale = tuple(ranges)
    name, custom = first(query, "colormap_name"), first(query, "colormap")
    if name and custom:
        raise BadRequest("give either 'colormap_name' or 'colormap', not both")
    cmap = colormaps.named(name) if name else colormaps.parse(custom) if custom else None
    quality = first(query, "quality")
    return Style(
        rescale=rescale,
        colormap=cmap,
        return_mask=_bool(first(query, "return_mask"), "return_mask", True),
        png_zlevel=integer(first(query, "zlevel", "6"), "zlevel", 0, 9),
        quality=integer(quality, "quality", 1, 100) if quality is not None else None,
    )


_TILE_Y = re.compile(r"^(\d+)(?:@(\d+(?:\.\d+)?)x)?(?:\.([A-Za-z]+))?$")


def tile_address(z: str, x: str, y_segment: str, query: Query) -> TileAddress:
    """Parse ``z``, ``x`` and the last segment (``12``, ``12.png``, ``12@2x``, ``12@2x.webp``)."""
    match = _TILE_Y.match(y_segment or "")
    if match is None:
        raise BadRequest("the tile address must end in y, y.fmt, y@2x or y@2x.fmt "
                         "(for example 12@2x.png)")
    zoom = integer(z, "z", 0, 30)
    limit = 2 ** zoom - 1
    column, row = integer(x, "x", 0, limit), integer(match.group(1), "y", 0, limit)
    scale = 1
    if match.group(2) is not None:
        scale_value = float(match.group(2))
        if scale_value not in (1, 2, 3, 4):
            raise BadRequest("the tile scale must be @1x, @2x, @3x or @4x")
        scale = int(scale_value)
    tilesize = integer(first(query, "tilesize", "256"), "tilesize", 64, 1024) * scale
    if tilesize > 2048:
        raise BadRequest("tilesize times scale must be at most 2048 pixels")
    return TileAddress(zoom, column, row, tilesize, image_format(match.group(3)))


def max_size(query: Query, default: int, limit: int) -> int:
    return integer(first(query, "max_size", str(default)), "max_size", 1, limit)


@dataclass(frozen=True)
class ImageRequest:
    """What a preview or bbox image asks for (an explicit size overrides ``max_size``)."""

    selection: Selection
    style: Style
    format: ImageFormat | None
    max_size: int
    width: int | None
    height: int | None


def image_request(query: Query, fmt: str | None, size_segment: str | None, default_max: int,
                  limit: int) -> ImageRequest:
    """Parse a preview/bbox request. ``size_segment`` is titiler's ``{width}x{height}[.fmt]``
    path segment; ``width=``/``height=`` may also come in the query."""
    width, height = first(query, "width"), first(query, "height")
    if size_segment is not None:
        size, _, segment_fmt = size_segment.partition(".")
        width, sep, height = size.partition("x")
        if not sep:
            raise BadRequest("the size segment is {width}x{height}[.{format}], e.g. 512x256.png")
        fmt = segment_fmt or fmt
    return ImageRequest(
        selection=selection(query),
        style=style(query),
        format=image_format(fmt),
        max_size=max_size(query, default_max, limit),
        width=integer(width, "width", 1, limit) if width else None,
        height=integer(height, "height", 1, limit) if height else None,
    )


def bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) != 4:
        raise BadRequest("the bbox is minx,miny,maxx,maxy in degrees (WGS84)")
    minx, miny, maxx, maxy = (_float(p, "bbox") for p in parts)
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny < maxy <= 90):
        raise BadRequest("the bbox must be minx,miny,maxx,maxy in degrees, with "
                         "-180 <= x <= 180 and -90 <= miny < maxy <= 90")
    if minx == maxx:
        raise BadRequest("the bbox has no width")
    return minx, miny, maxx, maxy


def lonlat(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise BadRequest("the point is lon,lat in degrees (WGS84)")
    lon, lat = _float(parts[0], "lon"), _float(parts[1], "lat")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadRequest("the point must have -180 <= lon <= 180 and -90 <= lat <= 90")
    return lon, lat


def percentiles(query: Query) -> tuple[float, ...]:
    values = [p for v in query.get("p") or [] for p in v.split(",") if p.strip()] or ["2", "98"]
    result = tuple(_float(v, "p") for v in values)
    if any(not 0 <= p <= 100 for p in result):
        raise BadRequest("percentiles 'p' must be between 0 and 100")
    return result


def histogram(query: Query) -> tuple[int, tuple[float, float] | None]:
    bins = integer(first(query, "histogram_bins", "10"), "histogram_bins", 1, 1000)
    text = first(query, "histogram_range")
    if not text:
        return bins, None
    parts = text.split(",")
    if len(parts) != 2:
        raise BadRequest("'histogram_range' is min,max")
    low, high = _float(parts[0], "histogram_range"), _float(parts[1], "histogram_range")
    if high <= low:
        raise BadRequest("'histogram_range' needs max greater than min")
    return bins, (low, high)
