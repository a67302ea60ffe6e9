"""Request parameters, each declared once (names as titiler's).

A :class:`Param` says what a parameter is called, its type and limits, its default, what it
means and an example. From that one declaration come:

* parsing and validation (:func:`parse`): a :class:`~chalicelib.core.errors.BadRequest` naming
  the parameter and what it accepts, never a crash;
* the OpenAPI document (:mod:`chalicelib.api.openapi`, from :meth:`Param.schema`);
* the README's parameter tables (:func:`markdown`; a test keeps them in step).

Routes take named groups of parameters (``SELECTION``, ``STYLE``...); the builders at the
end (:func:`selection`, :func:`style`, :func:`tile_address`, :func:`tileset_options`...) turn
parsed :class:`Values` into the records of :mod:`chalicelib.core.records`, which the engine
takes. A value given twice counts once (the first), except for repeatable parameters; an
empty value counts as not given. A parameter is in the query, the path, or the request's
body (``where="body"``, for POST routes: the body is its one raw value).
"""

import difflib
import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError

from ..core.errors import BadRequest
from ..core.geo import WGS84
from ..core.records import (
    ImageSize,
    Selection,
    StatisticsOptions,
    Style,
    TileAddress,
    TilesetOptions,
)
from ..core.settings import Settings
from ..grids import tilematrixsets
from ..pixels import algorithms, color_formula, colormaps, formats
from ..pixels.expression import parse as parse_expression
from ..pixels.pixel_selection import METHODS

Query = Mapping[str, Sequence[str]]

#: Resampling for reading (GDAL RasterIO, including overview decimation).
READ_RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode",
                   "gauss", "rms")
#: Resampling for reprojection (GDAL warper).
WARP_RESAMPLING = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode",
                   "max", "min", "med", "q1", "q3", "sum", "rms")
#: Largest tile side in pixels (tilesize times @Nx).
MAX_TILE_SIZE = 2048

_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,12}\s*")
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\s*")
_NUMBER_RE = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?"
_FORMAT_RE = "|".join(re.escape(n) for n in formats.NAMES)
#: Where a parameter's raw value comes from.
WHERE = ("query", "path", "body")
#: Every parameter name declared anywhere: a builder asking for another is a misspelling.
DECLARED: set[str] = set()
#: The query parameters of titiler 2 (titiler.core's COG and STAC factories, titiler.mosaic,
#: the WMTS extension): a route that does not take one refuses it by name, never ignores it.
TITILER_NAMES = frozenset((
    "algorithm", "algorithm_params", "asset_as_band", "asset_bidx", "asset_expression",
    "assets", "bbox", "bidx", "buffer", "c", "categorical", "color_formula", "colormap",
    "colormap_name", "coord_crs", "cover_scale", "crs", "datetime", "dst_crs", "exitwhenfull",
    "expression", "f", "format", "height", "histogram_bins", "histogram_range",
    "items_limit", "max_size", "maxzoom", "minzoom", "nodata", "p", "padding",
    "pixel_selection", "reproject", "resampling", "rescale", "return_mask", "scan_limit",
    "skipcovered", "tile_format", "tile_scale", "tilesize", "time_limit", "unscale", "url",
    "use_epsg", "width", "zooms"))


@dataclass(frozen=True)
class Param:
    """One parameter. ``convert`` turns one raw string into its value (raising
    :class:`BadRequest`); a ``repeat`` parameter may be given several times and its
    ``convert`` returns a tuple of items, all of which are collected. ``default`` is the
    value as a user would write it in JSON (shown in the OpenAPI document); ``maximum`` may
    depend on the settings (a callable)."""

    name: str
    description: str
    kind: str  # JSON-schema type of one item: integer, number, boolean, string or object
    convert: Callable[[str, "Param", Settings | None], Any]
    default: Any = None
    repeat: bool = False
    required: bool = False
    where: str = "query"
    example: Any = None
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: Any = None
    pattern: str | None = None
    max_length: int | None = None
    #: A body parameter's media type (``where="body"``).
    media_type: str = "application/json"
    #: A body parameter's JSON schema, where ``kind`` alone says too little.
    json_schema: dict | None = None

    def __post_init__(self) -> None:
        if self.where not in WHERE:
            raise ValueError(f"parameter {self.name}: 'where' is one of {WHERE}")
        DECLARED.add(self.name)

    def limit(self, config: Settings | None) -> float | None:
        return self.maximum(config or Settings()) if callable(self.maximum) else self.maximum

    def schema(self, config: Settings | None = None) -> dict:
        """The JSON schema of this parameter's value (OpenAPI 3.0 dialect)."""
        if self.json_schema is not None:
            return self.json_schema
        item: dict = {"type": self.kind}
        for key, value in (("enum", list(self.enum) if self.enum else None),
                           ("minimum", self.minimum), ("maximum", self.limit(config)),
                           ("pattern", self.pattern), ("maxLength", self.max_length)):
            if value is not None:
                item[key] = value
        schema = {"type": "array", "items": item} if self.repeat else item
        if self.default is not None:
            schema["default"] = self.default
        return schema

    def raw_default(self) -> str | None:
        value = self.default
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        return str(value)


# ---- converters: one raw string -> a value, or BadRequest -----------------------------

def _short(text: str) -> str:
    return repr(str(text)[:24])


def _check_range(number: float, param: Param, config) -> None:
    low, high = param.minimum, param.limit(config)
    if (low is not None and number < low) or (high is not None and number > high):
        raise BadRequest(f"'{param.name}' must be between {low:g} and {high:g}, got {number:g}")


def _integer(text: str, param: Param, config) -> int:
    if not _INTEGER.fullmatch(text):
        raise BadRequest(f"'{param.name}' must be an integer, got {_short(text)}")
    number = int(text)
    _check_range(number, param, config)
    return number


def number_value(text: str, name: str, allow_nan: bool = False) -> float:
    """A finite decimal number written in ASCII digits (``nan`` only if ``allow_nan``)."""
    if allow_nan and text.strip().lower() == "nan":
        return math.nan
    if not _NUMBER.fullmatch(text):
        raise BadRequest(f"'{name}' must be a number, got {_short(text)}")
    number = float(text)
    if not math.isfinite(number):
        raise BadRequest(f"'{name}' must be a finite number, got {_short(text)}")
    return number


def _number(text: str, param: Param, config) -> float:
    number = number_value(text, param.name)
    _check_range(number, param, config)
    return number


def _boolean(text: str, param: Param, config) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"'{param.name}' must be true or false")


def _choice(text: str, param: Param, config) -> str:
    key = text.strip().lower()
    assert param.enum is not None  # a choice is declared with its values
    for value in param.enum:
        if value.lower() == key:
            return value
    shown = ", ".join(param.enum[:16]) + (", ..." if len(param.enum) > 16 else "")
    raise BadRequest(f"'{param.name}' must be one of: {shown}; got {_short(text)}")


def _each(convert: Callable) -> Callable:
    """For a repeatable parameter: split one value at commas, convert each part."""
    def converter(text: str, param: Param, config) -> tuple:
        return tuple(convert(part, param, config) for part in text.split(",") if part.strip())
    return converter


def _text(text: str, param: Param, config) -> str:
    if param.max_length and len(text) > param.max_length:
        raise BadRequest(f"'{param.name}' is longer than {param.max_length} characters")
    return text


def _nodata(text: str, param: Param, config) -> float | None:
    if text.strip().lower() == "none":
        return None
    return number_value(text, "nodata", allow_nan=True)


def _expression(text: str, param: Param, config):
    return parse_expression(text)


def _named_expression(text: str, param: Param, config):
    return parse_expression(text, named=True)


_ASSET = re.compile(r"[A-Za-z0-9_.\-:]{1,128}")


def _asset(text: str, param: Param, config) -> str:
    name = text.strip()
    if not _ASSET.fullmatch(name):
        raise BadRequest(f"'{param.name}' takes asset names (letters, digits, _ - . :), "
                         f"got {_short(text)}")
    return name


def _assets(text: str, param: Param, config) -> tuple:
    """Asset names (comma-separated), or one asset with titiler 2's options after ``|``:
    ``visual|bidx=3,2,1`` is an (asset, bands) pair."""
    if "|" not in text:
        return _each(_asset)(text, param, config)
    name, _, options = text.partition("|")
    bands: tuple[int, ...] | None = None
    for option in options.split("|"):
        key, equals, value = option.partition("=")
        if key == "bidx" and equals:
            bands = tuple(_integer(b, BIDX, config) for b in value.split(",") if b.strip())
        elif key in ("expression", "bands"):
            raise BadRequest(f"the asset option '{key}' is not supported: use expression= "
                             "over the assets ({asset}_b{n}) or bidx= in the asset's options")
        else:
            raise BadRequest(f"unknown asset option {option[:24]!r}: the options are "
                             "bidx=1,2,3 (e.g. assets=visual|bidx=3,2,1)")
    if not bands:
        raise BadRequest("'assets' options name no band: e.g. visual|bidx=3,2,1")
    return ((_asset(name, param, config), bands),)


def _asset_bands(text: str, param: Param, config) -> tuple:
    """``visual|1,2,3``: an asset and the bands to read of it (one item)."""
    name, sep, bands = text.partition("|")
    if not sep:
        raise BadRequest("'asset_bidx' is asset|band,band..., e.g. visual|1,2,3")
    indexes = tuple(_integer(b, BIDX, config) for b in bands.split(",") if b.strip())
    if not indexes:
        raise BadRequest("'asset_bidx' names no band: e.g. visual|1,2,3")
    return ((_asset(name, param, config), indexes),)


def _rescale(text: str, param: Param, config) -> tuple[tuple[float, float], ...]:
    numbers = [p for p in re.split(r"[,\s]+", text.strip().strip("[]")) if p]
    if len(numbers) % 2 or not numbers:
        raise BadRequest("'rescale' takes min,max (repeat it for each band)")
    ranges = []
    for i in range(0, len(numbers), 2):
        low, high = number_value(numbers[i], "rescale"), number_value(numbers[i + 1], "rescale")
        if high == low:
            raise BadRequest("'rescale' needs max different from min")
        if not math.isfinite(high - low):
            raise BadRequest("'rescale' range is too wide to compute with")
        ranges.append((low, high))
    return tuple(ranges)


#: Largest JSON body a POST route reads (a detailed country border is a few MB).
MAX_BODY_CHARS = 8 * 1024 * 1024


def json_body(text: str, param: Param, config) -> Any:
    """A request body as JSON (a POST route's ``where="body"`` parameter)."""
    if len(text) > MAX_BODY_CHARS:
        raise BadRequest(f"the request body is larger than {MAX_BODY_CHARS // 2**20} MB")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("the request body is not valid JSON") from None


def _json_object(text: str, param: Param, config) -> dict:
    _text(text, param, config)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest(f"'{param.name}' is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(f"'{param.name}' must be a JSON object, e.g. {param.example}")
    return value


def _half_pixels(text: str, param: Param, config) -> float:
    number = _number(text, param, config)
    if number * 2 != int(number * 2):
        raise BadRequest(f"'{param.name}' must be a multiple of 0.5, got {number:g}")
    return number


def _bins(text: str, param: Param, config) -> int | tuple[float, ...]:
    """A number of bins (1 to 1000), or increasing edges ``a,b,c``."""
    if "," not in text:
        return _integer(text, _BIN_COUNT, config)
    edges = tuple(number_value(part, param.name) for part in text.split(","))
    if len(edges) > 1001:
        raise BadRequest("'histogram_bins' takes at most 1001 edges")
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise BadRequest("'histogram_bins' edges must increase: e.g. 0,10,100")
    return edges


def _colormap_name(text: str, param: Param, config):
    return colormaps.named(text)


def _colormap(text: str, param: Param, config):
    if len(text) > 65536:
        raise BadRequest("'colormap' is longer than 65536 characters")
    return colormaps.parse(text)


def _color_formula(text: str, param: Param, config):
    _text(text, param, config)
    return color_formula.parse(text)


def _format(text: str, param: Param, config):
    return formats.get(text)


def _tms(text: str, param: Param, config):
    return tilematrixsets.get(text)


_TILE_Y = re.compile(r"([0-9]{1,10})(?:@([0-9])x)?(?:\.([A-Za-z0-9]{1,8}))?")


def _tile_y(text: str, param: Param, config) -> tuple:
    """The last segment of a tile URL: ``12``, ``12.png``, ``12@2x``, ``12@2x.webp``."""
    match = _TILE_Y.fullmatch(text or "")
    if match is None:
        raise BadRequest("the tile address must end in y, y.fmt, y@2x or y@2x.fmt "
                         "(for example 12@2x.png)")
    scale = int(match.group(2) or 1)
    if not 1 <= scale <= 4:
        raise BadRequest("the tile scale must be @1x, @2x, @3x or @4x")
    return int(match.group(1)), scale, formats.get(match.group(3))


def _lonlat(text: str, param: Param, config) -> tuple[float, float]:
    """``x,y``: degrees (checked by :func:`point_of`) unless ``coord_crs`` says otherwise."""
    parts = text.split(",")
    if len(parts) != 2:
        raise BadRequest("the point is lon,lat in degrees (or x,y in coord_crs)")
    return number_value(parts[0], "lon"), number_value(parts[1], "lat")


def bbox_value(text: str) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` (degrees unless ``coord_crs`` says otherwise: checked by
    :func:`bbox_of`); minx > maxx is refused (split at 180 degrees)."""
    parts = text.split(",")
    if len(parts) != 4:
        raise BadRequest("the bbox is minx,miny,maxx,maxy in degrees (or in coord_crs)")
    minx, miny, maxx, maxy = (number_value(p, "bbox") for p in parts)
    if minx == maxx or miny == maxy:
        raise BadRequest("the bbox has no width or no height")
    if miny > maxy:
        raise BadRequest("bbox miny must be less than maxy")
    if minx > maxx:
        raise BadRequest("bbox minx must be less than maxx (split a bbox that crosses 180 "
                         "degrees into two requests)")
    return minx, miny, maxx, maxy


#: CRSs a request may name: an authority code, or its OGC URI or URN (no PROJ strings or
#: WKT: they could name grid files).
_AUTHORITY = "EPSG|ESRI|OGC|IAU_2015|epsg|esri|ogc|iau_2015"
_CRS_RE = (rf"(?:(?P<auth>{_AUTHORITY}):(?P<code>[0-9A-Za-z]{{1,12}})"
           r"|https?://www\.opengis\.net/def/crs/(?P<uauth>EPSG|OGC)/[0-9.]{1,8}/"
           r"(?P<ucode>[0-9A-Za-z]{1,12})"
           r"|urn:ogc:def:crs:(?P<nauth>EPSG|OGC):[0-9.]{0,8}:(?P<ncode>[0-9A-Za-z]{1,12}))")
_CRS = re.compile(_CRS_RE)


@functools.lru_cache(maxsize=256)
def crs_value(text: str, name: str = "crs") -> CRS:
    """A CRS named by its code (``EPSG:32633``), OGC URI or URN."""
    match = _CRS.fullmatch(text.strip())
    if match is None:
        raise BadRequest(f"'{name}' names a CRS by its code, as EPSG:32633 or "
                         "http://www.opengis.net/def/crs/EPSG/0/32633; got "
                         f"{_short(text)}")
    authority = (match.group("auth") or match.group("uauth") or match.group("nauth")).upper()
    code = (match.group("code") or match.group("ucode") or match.group("ncode")).upper()
    try:
        crs = CRS.from_user_input(f"{authority}:{code}")
    except (CRSError, ValueError):  # rasterio: ValueError for EPSG:<not a number>
        raise BadRequest(f"'{name}': {authority}:{code} is not a CRS this server "
                         "knows") from None
    if not (crs.is_geographic or crs.is_projected):
        raise BadRequest(f"'{name}': {authority}:{code} is neither geographic nor projected")
    radius = _semi_major_axis(crs.to_dict(projjson=True))
    if radius is not None and not 6.3e6 < radius < 6.4e6:
        raise BadRequest(f"'{name}': {authority}:{code} is not a CRS of the Earth")
    return crs


def _semi_major_axis(projjson) -> float | None:
    """The ellipsoid's semi-major axis (or radius) in metres in a PROJJSON document, if it
    says one in metres."""
    if isinstance(projjson, dict):
        ellipsoid = projjson.get("ellipsoid")
        if isinstance(ellipsoid, dict):
            axis = ellipsoid.get("semi_major_axis", ellipsoid.get("radius"))
            return float(axis) if isinstance(axis, (int, float)) else None
        items = list(projjson.values())
    elif isinstance(projjson, list):
        items = projjson
    else:
        return None
    for item in items:
        found = _semi_major_axis(item)
        if found is not None:
            return found
    return None


def _crs(text: str, param: Param, config) -> CRS:
    return crs_value(text, param.name)


def _bbox(text: str, param: Param, config) -> tuple:
    """``minx,miny,maxx,maxy.fmt`` (the format is required unless a size segment follows:
    the builder checks)."""
    coords, dot, fmt = text.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,7}", fmt):
        return bbox_value(text), None
    return bbox_value(coords), formats.get(fmt)


def _size(text: str, param: Param, config) -> tuple:
    """``{width}x{height}[.{format}]``."""
    size, _, fmt = text.partition(".")
    width, sep, height = size.partition("x")
    if not sep:
        raise BadRequest("the size segment is {width}x{height}[.{format}], e.g. 512x256.png")
    limit = Settings() if config is None else config
    return (_integer(width, WIDTH, limit), _integer(height, HEIGHT, limit), formats.get(fmt))


# ---- the declarations ------------------------------------------------------------------

def integer(name, description, low, high, default=None, **kw) -> Param:
    """An integer parameter from ``low`` to ``high`` (a callable: from the settings)."""
    return Param(name, description, "integer", _integer, default=default, minimum=low,
                 maximum=high, **kw)


def _max_image(config: Settings) -> int:
    return config.max_image_size


URL = Param("url", "The raster: `s3://bucket/key`, `https://host/path` or a local path "
            "(absolute, or relative to the project); it must be on the server's allow-list "
            "(`ALLOWED_SOURCES`)", "string", _text, required=True,
            example="chalicelib/demo/demo.tif", max_length=2048)

STAC_URL = Param("url", "The STAC item (JSON): `s3://bucket/key`, `https://host/path` or a "
                 "local path, on the allow-list; its assets' hrefs (absolute or relative to "
                 "the item) must be on it too", "string", _text, required=True,
                 example="chalicelib/demo/item.json", max_length=2048)
MOSAIC_URL = Param("url", "The MosaicJSON document: `s3://bucket/key`, `https://host/path` or "
                   "a local path, on the allow-list; the files it lists must be on it too",
                   "string", _text, required=True, example="chalicelib/demo/mosaic.json",
                   max_length=2048)

BIDX = Param("bidx", "Bands to read, 1-based, repeatable or comma-separated: `bidx=3&bidx=2"
             "&bidx=1` or `bidx=3,2,1` (default: every band but alpha)", "integer",
             _each(_integer), repeat=True, minimum=1, maximum=65535, example=[1])
EXPRESSION = Param("expression", "Band math over `b1`...`bN`: `+ - * / ** %`, comparisons, "
                   "`&` `|`, numbers, `sqrt log log10 exp abs where minimum maximum clip sin "
                   "cos`...; `;` separates output bands. Parsed over a whitelist, never `eval`"
                   "; overrides `bidx`", "string", _expression, max_length=1000,
                   example="(b3-b1)/(b3+b1)")
NODATA = Param("nodata", "Override the file's nodata value: a number, or `nan`", "string",
               _nodata, pattern=rf"^(?:nan|{_NUMBER_RE})$", example="0")
RESAMPLING = Param("resampling", "Resampling for reading and choosing overviews", "string",
                   _choice, default="nearest", enum=READ_RESAMPLING)
REPROJECT = Param("reproject", "Resampling for warping to the output CRS", "string", _choice,
                  default="nearest", enum=WARP_RESAMPLING)
UNSCALE = Param("unscale", "Apply each band's scale and offset (from the file's metadata) "
                "to the values read: `value * scale + offset`, as float", "boolean", _boolean,
                default=False)
SELECTION = (BIDX, EXPRESSION, NODATA, UNSCALE, RESAMPLING, REPROJECT)
#: What a point query reads (one pixel as it is: resampling and reproject change nothing,
#: and are taken as titiler takes them).
POINT_SELECTION = (BIDX, EXPRESSION, NODATA, UNSCALE, RESAMPLING, REPROJECT)

ASSETS = Param("assets", "Assets of the STAC item to read, repeatable or comma-separated; "
               "their bands are stacked in this order (see `/stac/assets`). `:all:` reads "
               "every asset; titiler 2's options follow a name: `visual|bidx=3,2,1`", "string",
               _assets, repeat=True,
               pattern=r"^[A-Za-z0-9_.\-:,]{1,128}(\|bidx=[0-9]{1,5}(,[0-9]{1,5})*)?$",
               example=["visual"])
ASSET_EXPRESSION = Param(
    "expression", "Band math over the item's assets: a single-band asset by its name "
    "(`(nir-red)/(nir+red)`), band n of any asset as `{asset}_b{n}`, or `b1`...`bN` for the "
    "stacked bands of `assets`; functions and `;` as for `/cog`. Assets it names need not be "
    "listed in `assets`", "string", _named_expression, max_length=1000,
    example="(visual_b2-visual_b1)/(visual_b2+visual_b1)")
ASSET_BIDX = Param("asset_bidx", "Bands to read of an asset: `asset|1,2,3`, repeatable "
                   "(default: every band but alpha)", "string", _asset_bands, repeat=True,
                   pattern=r"^[A-Za-z0-9_.\-:]{1,128}\|[0-9]{1,5}(,[0-9]{1,5})*$",
                   example=["visual|3,2,1"])
ASSET_AS_BAND = Param("asset_as_band", "Name each single-band asset's band by the asset "
                      "(as titiler); expressions may name assets either way", "boolean",
                      _boolean, default=False)
STAC_SELECTION = (ASSETS, ASSET_EXPRESSION, ASSET_BIDX, ASSET_AS_BAND, NODATA, UNSCALE,
                  RESAMPLING, REPROJECT)
STAC_POINT_SELECTION = (ASSETS, ASSET_EXPRESSION, ASSET_BIDX, ASSET_AS_BAND, NODATA, UNSCALE,
                        RESAMPLING, REPROJECT)
#: What /stac/asset_statistics reads (each asset's own bands; no expression).
STAC_ASSET_SELECTION = (ASSETS, NODATA, UNSCALE, RESAMPLING, REPROJECT)
#: Which assets an item's info describes.
STAC_INFO = (ASSETS,)

PIXEL_SELECTIONS = tuple(METHODS)
PIXEL_SELECTION = Param("pixel_selection", "How the files of a mosaic make one pixel: the "
                        "first valid one (in the mosaic's order; reading stops once every "
                        "pixel is filled), the highest or lowest, mean, median, stdev, the one "
                        "whose last band is lowest/highest, or the count of valid files",
                        "string", _choice, default="first", enum=PIXEL_SELECTIONS)
MOSAIC_SELECTION = (*SELECTION, PIXEL_SELECTION)
MOSAIC_POINT_SELECTION = (*POINT_SELECTION, PIXEL_SELECTION)

# ---- catalog searches (a STAC API: /collections/..., /searches/...) ------------------------

COLLECTION_ID = Param("collection_id", "A collection of the server's STAC API "
                      "(`STAC_API_URL`)", "string", _text, where="path", required=True,
                      pattern=r"^[A-Za-z0-9_.:\-]{1,256}$", example="demo", max_length=256)
ITEM_ID = Param("item_id", "An item of the collection", "string", _text, where="path",
                required=True, pattern=r"^[A-Za-z0-9_.:\-]{1,256}$", example="demo",
                max_length=256)
SEARCH_ID = Param("search_id", "A registered search (`POST /searches/register` answers it)",
                  "string", _text, where="path", required=True, pattern=r"^[0-9a-f]{32}$",
                  example="0123456789abcdef0123456789abcdef", max_length=32)
IDS = Param("ids", "Only these items, repeatable or comma-separated", "string", _each(_text),
            repeat=True, pattern=r"^[A-Za-z0-9_.:\-,]{1,256}$")
SEARCH_BBOX = Param("bbox", "Only items that intersect `west,south,east,north` (degrees)",
                    "string", _text, max_length=200, example="-61.3,15.1,-60.9,15.6")
DATETIME = Param("datetime", "Only items of an RFC 3339 instant or interval "
                 "(`2025-06-01T00:00:00Z/2025-07-01T00:00:00Z`, `../2025-07-01T00:00:00Z`)",
                 "string", _text, max_length=100)
FILTER = Param("filter", "A CQL2 filter (text, or JSON with `filter-lang=cql2-json`), sent to "
               "the STAC API: `eo:cloud_cover < 10`; a longer one: register the search (POST "
               "/searches/register)", "string", _text, max_length=2048)
FILTER_LANG = Param("filter-lang", "The filter's language", "string", _choice,
                    enum=("cql2-text", "cql2-json"))
SORTBY = Param("sortby", "The items' order, most important first: fields with `-` for "
               "descending (`-properties.eo:cloud_cover,datetime`); the mosaic's priority",
               "string", _text, max_length=1000)
LIMIT = integer("limit", "Items per page of the STAC API's answers", 1, 1000)
MAX_ITEMS = integer("max_items", "Read at most the first N items a tile's search finds "
                    "(without it, more than 64 in one tile is refused: zoom in)", 1, 64)
SEARCH_BODY = Param("search", "A STAC API search: `collections`, and optionally `ids`, `bbox`, "
                    "`datetime`, `filter` + `filter-lang`, `sortby`, `query`, `limit`; "
                    "`metadata` (name, bounds, minzoom, maxzoom) describes the mosaic",
                    "object", json_body, required=True, where="body",
                    json_schema={"type": "object", "properties": {
                        "collections": {"type": "array", "items": {"type": "string"}},
                        "ids": {"type": "array", "items": {"type": "string"}},
                        "bbox": {"type": "array", "items": {"type": "number"}},
                        "datetime": {"type": "string"}, "filter-lang": {"type": "string"},
                        "sortby": {"type": "array", "items": {"type": "object"}},
                        "metadata": {"type": "object"}}},
                    example={"collections": ["scenes"], "sortby": [
                        {"field": "properties.eo:cloud_cover", "direction": "asc"}]})
#: A collection's search, in the query (titiler-stacapi's names).
SEARCH_QUERY = (IDS, SEARCH_BBOX, DATETIME, FILTER, FILTER_LANG, SORTBY, LIMIT, MAX_ITEMS)
CATALOG_SELECTION = (*STAC_SELECTION, PIXEL_SELECTION)
CATALOG_POINT_SELECTION = (*STAC_POINT_SELECTION, PIXEL_SELECTION)


def search_fields(v: "Values") -> dict:
    """A collection route's search query as the fields of a STAC search body."""
    fields: dict = {}
    if v.get("ids"):
        fields["ids"] = list(v.ids)
    if v.get("bbox") is not None:
        fields["bbox"] = list(bbox_value(v.bbox))
    if v.get("datetime") is not None:
        fields["datetime"] = v.datetime
    if v.get("filter") is not None:
        lang = v.get("filter-lang") or "cql2-text"
        fields["filter-lang"] = lang
        if lang == "cql2-json":
            try:
                fields["filter"] = json.loads(v.filter)
            except ValueError:
                raise BadRequest("'filter' with filter-lang=cql2-json must be JSON") from None
        else:
            fields["filter"] = v.filter
    elif v.get("filter-lang") is not None:
        raise BadRequest("'filter-lang' without a 'filter'")
    if v.get("sortby") is not None:
        fields["sortby"] = [
            {"field": part.strip().lstrip("+-"),
             "direction": "desc" if part.strip().startswith("-") else "asc"}
            for part in v.sortby.split(",") if part.strip()]
    if v.get("limit") is not None:
        fields["limit"] = v.limit
    return fields


RESCALE = Param("rescale", "`min,max` stretched to 0-255: one for all bands, or one per band "
                "(repeat it)", "string", _rescale, repeat=True,
                pattern=rf"^{_NUMBER_RE},{_NUMBER_RE}$", example=["0,255"])
COLORMAP_NAME = Param("colormap_name", "A named colormap for one band (add `_r` to reverse); "
                      "see `/colorMaps`", "string", _colormap_name,
                      enum=colormaps.names(),
                      example="viridis")
COLORMAP_ID = Param("colorMapId", "A colormap; see `/colorMaps`", "string", _colormap_name,
                    where="path", required=True, enum=COLORMAP_NAME.enum, example="viridis")
COLORMAP_FORMAT = Param("format", "An image format: the colormap as a swatch (default: the "
                        "JSON table)", "string", _format, enum=formats.NAMES)
COLORMAP_F = Param("f", "As `format` (titiler's name), or `json`", "string", _choice,
                   enum=("json", *formats.NAMES))
COLORMAP_IMAGE = (COLORMAP_FORMAT, COLORMAP_F,
                  Param("orientation", "The swatch's direction (first colour at the left or "
                        "top)", "string", _choice, default="horizontal",
                        enum=("horizontal", "vertical")),
                  integer("width", "Swatch width in pixels (default 256, or 20 vertical)", 1,
                          1024),
                  integer("height", "Swatch height in pixels (default 20, or 256 vertical)", 1,
                          1024))
COLORMAP = Param("colormap", "A colormap as JSON: discrete `{\"1\": [r,g,b,a], \"2\": "
                 "\"#00ff00\"}` or intervals `[[[min,max],[r,g,b,a]], ...]`; values matched "
                 "raw unless `rescale` is given", "string", _colormap,
                 example='{"1": [255, 0, 0, 255]}')
RETURN_MASK = Param("return_mask", "Add the mask as an alpha channel (`false`: opaque)",
                    "boolean", _boolean, default=True)
ZLEVEL = integer("zlevel", "PNG zlib compression level", 0, 9, default=6)
QUALITY = integer("quality", "JPEG/WEBP quality (default 85 for JPEG, 75 for WEBP)", 1, 100)
COLOR_FORMULA = Param("color_formula", "Colour operations on the 8-bit values, after "
                      "`rescale` (rio-color's language, as titiler): `gamma BANDS g`, "
                      "`sigmoidal BANDS contrast bias`, `saturation proportion`, chained; "
                      "bands as `rgb` or `123`", "string", _color_formula, max_length=512,
                      example="gamma rgb 1.3 sigmoidal rgb 10 0.35 saturation 1.2")
STYLE = (RESCALE, COLOR_FORMULA, COLORMAP_NAME, COLORMAP, RETURN_MASK, ZLEVEL, QUALITY)

ALGORITHM = Param("algorithm", "Post-processing of the pixels read, before rendering: terrain "
                  "(hillshade, slope, contours, terrarium, terrainrgb), band maths "
                  "(normalizedIndex, min, max, mean, median, std, var, sum), grayscale, "
                  "bitonal, cast, floor, ceil; see `/algorithms`", "string", _choice,
                  enum=tuple(algorithms.ALGORITHMS), example="hillshade")
ALGORITHM_PARAMS = Param("algorithm_params", "The algorithm's parameters as a JSON object, "
                         "e.g. `{\"azimuth\": 315}`; see `/algorithms/{algorithmId}`",
                         "string", _json_object, max_length=4096,
                         example='{"azimuth": 315}')
LANDING_FORMAT = Param("f", "The response's type (as titiler: JSON here)", "string", _choice,
                       enum=("json",))
ALGORITHM_ID = Param("algorithmId", "An algorithm; see `/algorithms`", "string", _choice,
                     where="path", required=True, enum=ALGORITHM.enum, example="hillshade")
#: Post-processing: an algorithm between reading and rendering.
POST_PROCESS = (ALGORITHM, ALGORITHM_PARAMS)

TMS_ID = Param("tileMatrixSetId", "A tile matrix set; see `/tileMatrixSets`", "string", _tms,
               where="path", required=True, enum=tilematrixsets.IDS,
               example=tilematrixsets.DEFAULT)
Z = integer("z", "Zoom level (the tile matrix identifier)", -10, tilematrixsets.MAX_ZOOM,
            where="path", required=True, example=9)
X = integer("x", "Column of the tile", 0, 2 ** 30, where="path", required=True, example=145)
Y = Param("y", "Row of the tile, then optionally `@2x` (`@1x`...`@4x`: larger tiles) and "
          "`.png` (the format; default: PNG where pixels are masked, else JPEG)", "string",
          _tile_y, where="path", required=True,
          pattern=rf"^[0-9]{{1,10}}(@[1-4]x)?(\.({_FORMAT_RE}))?$", example="219@2x.png")
ROW = integer("y", "Row of the tile", 0, 2 ** 30, where="path", required=True, example=219)
#: A tile without a size or format: which files it reads (mosaics).
TILE_POSITION = (TMS_ID, Z, X, ROW)
TILESIZE = integer("tilesize", "Tile size in pixels before `@Nx` (default: the tile matrix's, "
                   "256)", 64, 1024)
OUTSIDE = Param("outside", "What a tile outside the data answers: `404` (a JSON error), `204` "
                "(No Content: GDAL's WMTS/TMS readers take it as an empty tile) or `empty` (a "
                "transparent tile; black in JPEG)", "string", _choice,
                default="404", enum=("404", "204", "empty"))
BUFFER = Param("buffer", "Pixels added on each side of the tile, read from the data (a "
               "multiple of 0.5): tiles of tilesize + 2 x buffer, as titiler. An algorithm's "
               "own buffer (hillshade's 3) is read without it and counted in it",
               "number", _half_pixels, minimum=0, maximum=64, example=1)
PADDING = integer("padding", "Pixels read beyond each edge of the tile and dropped again "
                  "(fewer resampling artefacts at the edges)", 0, 64)
TILE_QUERY_FORMAT = Param("format", "The tile's format, where the path has no extension "
                          "(as titiler's `?format=`)", "string", _format, enum=formats.NAMES)
TILE = (TMS_ID, Z, X, Y, TILESIZE, OUTSIDE, BUFFER, PADDING, TILE_QUERY_FORMAT)

LONLAT = Param("lonlat", "`lon,lat` in degrees (WGS84), or `x,y` in `coord_crs`", "string",
               _lonlat, where="path",
               required=True, pattern=rf"^{_NUMBER_RE},{_NUMBER_RE}$", example="-77.7,24.5")
BBOX = Param("bbox", "`minx,miny,maxx,maxy` in degrees (WGS84) or in `coord_crs`, then "
             "`.{format}` unless a size segment follows", "string", _bbox, where="path",
             required=True,
             pattern=rf"^{_NUMBER_RE},{_NUMBER_RE},{_NUMBER_RE},{_NUMBER_RE}"
                     rf"(\.({_FORMAT_RE}))?$", example="-78.0,24.0,-77.5,24.5.png")
SIZE = Param("size", "`{width}x{height}` in pixels, then optionally `.{format}`", "string",
             _size, where="path", required=True,
             pattern=rf"^[0-9]{{1,5}}x[0-9]{{1,5}}(\.({_FORMAT_RE}))?$", example="512x256.png")

MAX_SIZE = integer("max_size", "Longest side of the image read, in pixels (never upsampled "
                   "past the data)", 1, _max_image, default=1024)
WIDTH = integer("width", "Output width in pixels (overrides max_size)", 1, _max_image)
HEIGHT = integer("height", "Output height in pixels (overrides max_size)", 1, _max_image)
FORMAT = Param("format", "Output format (default: PNG where pixels are masked, else JPEG)",
               "string", _format, enum=formats.NAMES)
IMAGE = (MAX_SIZE, WIDTH, HEIGHT)
PART_MAX_SIZE = integer("max_size", "Longest side of the image, in pixels (default: the "
                        "data's resolution over the shape's box)", 1, _max_image)
#: A shape's image: at the data's resolution unless a size is asked (titiler's).
FEATURE_IMAGE = (PART_MAX_SIZE, WIDTH, HEIGHT)

_CRS_PATTERN = "^" + re.sub(r"\?P<\w+>", "", _CRS_RE) + "$"  # JSON schema: no names
COORD_CRS = Param("coord_crs", "The CRS of the request's coordinates (bbox, point, GeoJSON): "
                  "`EPSG:32633` or its OGC URI; default WGS84 degrees", "string", _crs,
                  pattern=_CRS_PATTERN, example="EPSG:4326")
DST_CRS = Param("dst_crs", "The output image's CRS: `EPSG:3857` or its OGC URI; default the "
                "coordinates' CRS (bbox, feature) or the data's (preview)", "string", _crs,
                pattern=_CRS_PATTERN, example="EPSG:3857")
COVER_SCALE = integer("cover_scale", "Samples per pixel side that measure how much of each "
                      "pixel the shape covers (statistics weigh pixels by it)", 1, 1000,
                      default=10)
_POSITION = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3}
_RING = {"type": "array", "items": _POSITION, "minItems": 4}
_GEOJSON_FEATURE = {
    "type": "object", "required": ["type", "geometry"], "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "properties": {"type": "object", "nullable": True},
        "geometry": {"type": "object", "required": ["type", "coordinates"], "properties": {
            "type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
            "coordinates": {"type": "array", "minItems": 1, "items": {
                "type": "array", "items": {"oneOf": [_POSITION, _RING]}}}}}}}
_GEOJSON_COLLECTION = {
    "type": "object", "required": ["type", "features"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "minItems": 1, "maxItems": 100,
                     "items": _GEOJSON_FEATURE}}}
#: A field over the built-in demo (the documentation's example body).
_EXAMPLE_FEATURE = {"type": "Feature", "properties": {"name": "field"}, "geometry": {
    "type": "Polygon", "coordinates": [[[-78.2, 24.2], [-77.3, 24.3], [-77.8, 25.0],
                                        [-78.2, 24.2]]]}}
FEATURE = Param("feature", "A GeoJSON Feature whose geometry is a Polygon or MultiPolygon "
                "(coordinates in `coord_crs`)", "object", json_body, required=True,
                where="body", media_type="application/geo+json",
                json_schema=_GEOJSON_FEATURE, example=_EXAMPLE_FEATURE)
FEATURES = Param("geojson", "A GeoJSON Feature or FeatureCollection of Polygons or "
                 "MultiPolygons (coordinates in `coord_crs`)", "object", json_body,
                 required=True, where="body", media_type="application/geo+json",
                 json_schema={"oneOf": [_GEOJSON_FEATURE, _GEOJSON_COLLECTION]},
                 example={"type": "FeatureCollection", "features": [_EXAMPLE_FEATURE]})

PERCENTILES = Param("p", "Percentiles to compute, repeatable or comma-separated", "number",
                    _each(_number), repeat=True, minimum=0, maximum=100, default=[2, 98])
_BIN_COUNT = integer("histogram_bins", "A number of bins", 1, 1000)  # its limits, for _bins
HISTOGRAM_BINS = Param("histogram_bins", "Number of equal histogram bins (1 to 1000), or "
                       "the bins' edges, increasing and comma-separated (`0,10,100,1000`)",
                       "string", _bins, default="10",
                       pattern=rf"^([0-9]{{1,4}}|{_NUMBER_RE}(,{_NUMBER_RE}){{1,1000}})$",
                       example="10")
CATEGORICAL = Param("categorical", "Count each value (classes, land cover) instead of "
                    "binning: the histogram is [counts, values]", "boolean", _boolean,
                    default=False)
CATEGORIES = Param("c", "With `categorical`: the values to count (repeatable or "
                   "comma-separated; default: every value present)", "number",
                   _each(_number), repeat=True, example=[1, 2])
HISTOGRAM_RANGE = Param("histogram_range", "`min,max` of the histogram (default: the data's)",
                        "string", _text, pattern=rf"^{_NUMBER_RE},{_NUMBER_RE}$",
                        example="0,1000")
#: Statistics hold several float64 copies of what they read: bounded tighter than images.
STATISTICS_MAX_SIZE = integer("max_size", "Longest side of the overview the statistics are "
                              "computed from, in pixels", 1, 2048, default=1024)
STATISTICS = (STATISTICS_MAX_SIZE, CATEGORICAL, CATEGORIES, PERCENTILES, HISTOGRAM_BINS,
              HISTOGRAM_RANGE)
#: POST statistics of GeoJSON shapes: on the data's pixels unless a size is asked.
SHAPE_STATISTICS = (*FEATURE_IMAGE, CATEGORICAL, CATEGORIES, PERCENTILES, HISTOGRAM_BINS,
                    HISTOGRAM_RANGE, COVER_SCALE)

TILE_FORMAT = Param("tile_format", "Format of the tiles the document points to (default: PNG "
                    "where pixels are masked, else JPEG)", "string", _format,
                    enum=formats.NAMES)
TILE_SCALE = integer("tile_scale", "Tiles of N times the tile size (`@Nx`)", 1, 4, default=1)
MINZOOM = integer("minzoom", "Override the data's minimum zoom", -10, tilematrixsets.MAX_ZOOM)
MAXZOOM = integer("maxzoom", "Override the data's maximum zoom", -10, tilematrixsets.MAX_ZOOM)
TILEJSON = (TILE_FORMAT, TILE_SCALE, MINZOOM, MAXZOOM, TILESIZE, OUTSIDE, BUFFER, PADDING)
WMTS_FORMAT = Param("tile_format", "Format of the tiles the service offers", "string",
                    _format, default="png", enum=formats.NAMES)
WMTS = (WMTS_FORMAT, TILE_SCALE, MINZOOM, MAXZOOM, TILESIZE, OUTSIDE, BUFFER, PADDING)

#: Parameters that configure a TileJSON or WMTS document itself; the others are carried
#: into the tile URLs it lists.
DOCUMENT_ONLY = ("tile_format", "tile_scale", "minzoom", "maxzoom")


# ---- parsing ---------------------------------------------------------------------------

class Values(SimpleNamespace):
    """A route's parsed parameters, by name (``values.bidx``). A name the route does not
    declare is an AttributeError; :meth:`get` gives None for it, for builders shared by
    routes that declare different groups, but refuses a name no parameter has (a
    misspelling must not silently become a default)."""

    def get(self, name: str) -> Any:
        if name not in DECLARED:
            raise KeyError(f"no parameter is declared as {name!r}")
        return getattr(self, name, None)


def check_names(declared: Sequence[Param], query: Query, where: str) -> None:
    """Refuse, by name, a query parameter ``declared`` does not hold that this API or
    titiler knows (it would be silently ignored: an image that looks right and is not), or
    that is one letter from a declared one (a typo). Other names pass: clients add their
    own (cache busters, access tokens)."""
    names = {p.name for p in declared if p.where == "query"}
    for name in query:
        if name in names:
            continue
        if name in DECLARED or name in TITILER_NAMES:
            raise BadRequest(f"{where} does not take '{name[:40]}'; see /openapi.json for "
                             "the parameters of each route")
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.85)
        if close:
            raise BadRequest(f"unknown parameter '{name[:40]}': did you mean '{close[0]}'?")


def parse(declared: Sequence[Param], query: Query | None = None,
          path: Mapping[str, str] | None = None, config: Settings | None = None,
          body: str | None = None) -> Values:
    """Parse ``declared`` parameters from the ``query`` (name -> list of values), the
    ``path`` parameters and the request ``body``; returns their values by name (defaults
    where not given, None for optional parameters without one)."""
    query, path = query or {}, path or {}
    values = {}
    for param in declared:
        if param.where == "path":
            raw = [path[param.name]] if path.get(param.name) is not None else []
        elif param.where == "body":
            raw = [body] if body is not None and body.strip() else []
        else:
            # empty values (also "p=," for a list) are absent: the default holds
            raw = [v for v in query.get(param.name) or () if isinstance(v, str) and (
                v.replace(",", "").strip() if param.repeat else v.strip())]
        if not raw and param.default is not None:
            value = param.convert(str(param.raw_default()), param, None)
            limit = param.limit(config)
            if limit is not None and not param.repeat and value > limit:
                value = limit  # a default above what this server allows (MAX_IMAGE_SIZE)
            values[param.name] = value
        elif not raw:
            if param.required:
                raise BadRequest(f"missing '{param.name}': {param.description}")
            values[param.name] = None
        elif param.repeat:
            items = []
            for text in raw:
                items.extend(param.convert(text, param, config))
            values[param.name] = tuple(items) or None
        else:
            values[param.name] = param.convert(raw[0], param, config)
    return Values(**values)


# ---- builders: parsed values -> records ------------------------------------------------

def selection(v: Values) -> Selection:
    """What to read, from any route's selection group (``SELECTION``, ``STAC_SELECTION``,
    ``MOSAIC_SELECTION`` or a point's)."""
    expression = v.get("expression")
    listed = v.get("assets")
    assets = None if listed is None else tuple(
        item if isinstance(item, str) else item[0] for item in listed)
    asset_indexes = (*(item for item in listed or () if not isinstance(item, str)),
                     *(v.get("asset_bidx") or ()))
    if len({name for name, _ in asset_indexes}) < len(asset_indexes):
        raise BadRequest("the bands of an asset are given twice ('assets' options or "
                         "'asset_bidx')")
    return Selection(
        indexes=None if expression else v.get("bidx"),
        expression=expression,
        nodata=v.get("nodata"),
        resampling=Resampling[v.get("resampling") or "nearest"],
        reproject=Resampling[v.get("reproject") or "nearest"],
        assets=assets,
        asset_indexes=tuple(asset_indexes),
        asset_as_band=bool(v.get("asset_as_band")),
        pixel_selection=v.get("pixel_selection") or "first",
        unscale=bool(v.get("unscale")),
    )


def style(v: Values) -> Style:
    """How to render, from the ``STYLE`` group."""
    name, custom = v.colormap_name, v.colormap
    if name is not None and custom is not None:
        raise BadRequest("give either 'colormap_name' or 'colormap', not both")
    return Style(rescale=v.rescale, colormap=name if name is not None else custom,
                 return_mask=v.return_mask, png_zlevel=v.zlevel, quality=v.quality,
                 color_formula=v.color_formula)


def tile_matrix_set_of(v: Values) -> tilematrixsets.TileMatrixSet:
    """The tile matrix set named in the path; WebMercatorQuad for routes without one."""
    return v.get("tileMatrixSetId") or tilematrixsets.get(tilematrixsets.DEFAULT)


def tileset_options(v: Values) -> TilesetOptions:
    """What a TileJSON or WMTS document says of its tiles (``TILEJSON``, ``WMTS``)."""
    return TilesetOptions(tile_format=v.tile_format, tile_scale=v.tile_scale,
                          tilesize=v.tilesize, minzoom=v.minzoom, maxzoom=v.maxzoom)


def tile_position(v: Values) -> tuple[tilematrixsets.TileMatrixSet, int, int, int]:
    """(tms, z, x, y) of the path's tile, checked against its tile matrix set."""
    tms, z = tile_matrix_set_of(v), v.z
    row = v.y if isinstance(v.y, int) else v.y[0]
    if not tms.minzoom <= z <= tms.deepest:
        raise BadRequest(f"'z' must be between {tms.minzoom} and {tms.deepest} in {tms.id}, "
                         f"got {z}")
    matrix = tms.matrix(z)
    if v.x >= matrix.matrix_width:
        raise BadRequest(f"'x' must be between 0 and {matrix.matrix_width - 1} at zoom {z} "
                         f"of {tms.id}, got {v.x}")
    if row >= matrix.matrix_height:
        raise BadRequest(f"'y' must be between 0 and {matrix.matrix_height - 1} at zoom {z} "
                         f"of {tms.id}, got {row}")
    return tms, z, v.x, row


def tile_address(v: Values) -> TileAddress:
    """The tile, checked against its tile matrix set; its size from the matrix (or
    ``tilesize``) times ``@Nx``."""
    tms, z, x, row = tile_position(v)
    _, scale, fmt = v.y
    asked = v.get("format")
    if asked is not None and fmt is not None and asked is not fmt:
        raise BadRequest(f"the tile's extension says {fmt.name}, 'format' says {asked.name}: "
                         "give one")
    fmt = fmt or asked
    matrix = tms.matrix(z)
    width = (v.tilesize or matrix.tile_width) * scale
    height = (v.tilesize or matrix.tile_height) * scale
    buffer, padding = v.get("buffer") or 0.0, v.get("padding") or 0
    if max(width, height) + 2 * (buffer + padding) > MAX_TILE_SIZE:
        raise BadRequest(f"tilesize times scale, with buffer and padding, must be at most "
                         f"{MAX_TILE_SIZE} pixels")
    return TileAddress(tms, z, x, row, width, height, fmt, v.outside, buffer, padding)


def algorithm(v: Values) -> algorithms.Algorithm | None:
    """The post-processing step, from the ``POST_PROCESS`` group."""
    name, params = v.get("algorithm"), v.get("algorithm_params")
    if name is None:
        if params is not None:
            raise BadRequest("'algorithm_params' is given without 'algorithm'")
        return None
    return algorithms.named(name, params)


def image_size(v: Values, fmt=None, size: tuple | None = None) -> ImageSize:
    """A preview/bbox image's size: the ``{w}x{h}[.fmt]`` segment (``size``), else
    ``width``/``height``, else ``max_size``."""
    width, height = v.width, v.height
    if size is not None:
        width, height, segment_fmt = size
        fmt = segment_fmt or fmt
    return ImageSize(format=fmt, max_size=v.max_size, width=width, height=height)


def coord_crs(v: Values) -> CRS:
    """The CRS of the request's coordinates (``coord_crs``; default WGS84)."""
    crs: CRS = v.get("coord_crs") or WGS84
    return crs


def _check_degrees(xs, ys, what: str) -> None:
    if not all(-180 <= x <= 180 for x in xs) or not all(-90 <= y <= 90 for y in ys):
        raise BadRequest(f"the {what} must have -180 <= lon <= 180 and -90 <= lat <= 90 "
                         "(degrees); give coord_crs for coordinates in another CRS")


def point_of(v: Values) -> tuple[float, float]:
    """The path's point, checked as degrees where ``coord_crs`` is WGS84."""
    x, y = v.lonlat
    if coord_crs(v).is_geographic:
        _check_degrees([x], [y], "point")
    return x, y


def bbox_of(v: Values) -> tuple[tuple[float, float, float, float], Any]:
    """The path's bbox and its format, the bbox checked as degrees where ``coord_crs`` is
    geographic."""
    bounds, fmt = v.bbox
    if coord_crs(v).is_geographic:
        _check_degrees(bounds[::2], bounds[1::2], "bbox")
    return bounds, fmt


def statistics_options(v: Values) -> StatisticsOptions:
    """What ``/statistics`` computes, from the ``STATISTICS`` group."""
    histogram_range = None
    if v.histogram_range:
        parts = v.histogram_range.split(",")
        if len(parts) != 2:
            raise BadRequest("'histogram_range' is min,max")
        low, high = (number_value(p, "histogram_range") for p in parts)
        if not high > low:
            raise BadRequest("'histogram_range' needs max greater than min")
        if isinstance(v.histogram_bins, int):
            with np.errstate(all="ignore"):  # numpy's own test for usable bins
                edges = np.linspace(low, high, v.histogram_bins + 1)
            if not (np.isfinite(edges).all() and (np.diff(edges) > 0).all()):
                raise BadRequest("'histogram_range' is too wide or too narrow for "
                                 f"{v.histogram_bins} bins")
        histogram_range = (low, high)
    if v.c and not v.categorical:
        raise BadRequest("'c' (categories) is given without categorical=true")
    return StatisticsOptions(max_size=v.get("max_size"), percentiles=v.p, bins=v.histogram_bins,
                             histogram_range=histogram_range, categorical=v.categorical,
                             categories=v.c)


# ---- documentation -----------------------------------------------------------------------

def _values_text(param: Param) -> str:
    if param.enum and len(param.enum) <= 16:
        return ", ".join(f"`{e}`" for e in param.enum)
    if param.enum:
        return f"one of {len(param.enum)} names"
    kind = {"integer": "integer", "number": "number", "boolean": "`true`/`false`",
            "string": "text"}[param.kind]
    if param.minimum is not None and param.maximum is not None:
        high = "MAX_IMAGE_SIZE" if callable(param.maximum) else f"{param.maximum:g}"
        kind += f" {param.minimum:g} to {high}"
    return kind + (", repeatable" if param.repeat else "")


def markdown(declared: Sequence[Param]) -> str:
    """A Markdown table of ``declared`` query parameters (for the README)."""
    lines = ["| parameter | values | default | meaning |", "|---|---|---|---|"]
    for param in declared:
        if param.where != "query":
            continue
        default = f"`{param.raw_default()}`" if param.default is not None else ""
        lines.append(f"| `{param.name}` | {_values_text(param)} | {default} | "
                     f"{param.description.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)
