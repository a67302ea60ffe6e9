"""The engine's front door: one function per API operation.

Each takes the source string and the request's query (``{name: [values]}``), runs the steps
params -> sources -> datasets -> reader -> render -> encode, and returns plain data for
``app.py`` to put into a response. Errors are :class:`~chalicelib.errors.TilerError`.
"""

from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np
from rasterio.enums import ColorInterp

from . import colormaps, params, reader, render, settings
from .datasets import MAX_LAT, OpenDataset, cache, reading
from .encode import encode
from .errors import BadRequest, TooLarge
from .models import ImageData
from .params import Query
from .sources import resolve

#: Lambda returns at most 6 MB, after base64 (4/3 larger) and headers.
MAX_BODY_BYTES = 4_400_000
DEFAULT_PREVIEW_SIZE = 1024


@dataclass
class Image:
    body: bytes
    media_type: str
    headers: dict
    extension: str = ""
    empty: bool = False  # no visible pixel (the tile cache skips these)


def open_dataset(url: str | None) -> OpenDataset:
    """Allow-list check, then the (cached) open dataset."""
    config = settings.current()
    source = resolve(url or "", config.allowed_sources, config.unsafe_allow_hosts)
    return cache.get(source, config)


def _palette(entry: OpenDataset):
    if "palette" not in entry.memo:
        table = None
        if entry.src.colorinterp[0] == ColorInterp.palette:
            try:
                table = colormaps.from_dataset(entry.src.colormap(1))
            except ValueError:
                table = None
        entry.memo["palette"] = table
    return entry.memo["palette"]


def _raw(fmt: params.ImageFormat | None) -> bool:
    return fmt is not None and fmt.name in ("tif", "npy")


def _render_inputs(entry: OpenDataset, image: ImageData, selection: params.Selection,
                   style: params.Style, fmt: params.ImageFormat | None) -> tuple:
    """What rendering needs from the dataset: its palette, and the stretch ranges of data
    that must be stretched (read once per dataset and selection). Call holding
    ``reading(entry)``; rendering and encoding then run without the dataset."""
    palette = _palette(entry) if selection.expression is None else None
    stretch = None
    if render.needs_stretch(image, style, _raw(fmt)):
        stretch = reader.stretch_ranges(entry, selection)
    return palette, stretch


def _render(image: ImageData, style: params.Style, fmt: params.ImageFormat | None, palette,
            stretch) -> Image:
    """Render and encode ``image``."""
    rendered = render.render(image, style, palette, stretch, raw_format=_raw(fmt))
    if fmt is None:
        fmt = params.FORMATS["jpeg" if rendered.fully_opaque else "png"]
    alpha = rendered.alpha
    if not style.return_mask or fmt.name == "jpeg" or (fmt.name in ("png", "webp")
                                                       and rendered.fully_opaque):
        alpha = None
    body = encode(rendered.data, alpha, fmt, transform=image.transform, crs=image.crs,
                  zlevel=style.png_zlevel, quality=style.quality)
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"the image is {len(body) / 1e6:.1f} MB; responses are limited to "
                       "about 4 MB: ask for fewer pixels (max_size, width, height) or jpg/webp")
    return Image(body, fmt.media_type, {}, fmt.extension, not rendered.alpha.any())


def tile(url: str | None, z: str, x: str, y_segment: str, query: Query) -> Image:
    address = params.tile_address(z, x, y_segment, query)
    selection, style = params.selection(query), params.style(query)
    entry = open_dataset(url)
    with reading(entry):
        image = reader.tile(entry, address.z, address.x, address.y, address.tilesize, selection)
        inputs = _render_inputs(entry, image, selection, style, address.format)
    result = _render(image, style, address.format, *inputs)
    left, bottom, right, top = image.bounds
    result.headers = {"Content-Bbox": f"{left},{bottom},{right},{top}",
                      "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/3857>"}
    return result


def preview(url: str | None, fmt: str | None, query: Query, size: str | None = None) -> Image:
    request = params.image_request(query, fmt or params.first(query, "format"), size,
                                   DEFAULT_PREVIEW_SIZE, settings.current().max_image_size)
    entry = open_dataset(url)
    with reading(entry):
        image = reader.preview(entry, request.selection, request.max_size, request.width,
                               request.height)
        inputs = _render_inputs(entry, image, request.selection, request.style, request.format)
    return _render(image, request.style, request.format, *inputs)


def bbox(url: str | None, segment: str, query: Query, size: str | None = None) -> Image:
    coords, _, fmt = segment.rpartition(".") if size is None else (segment, "", None)
    if not coords:
        raise BadRequest("the bbox route is /cog/bbox/minx,miny,maxx,maxy.{format}")
    bounds = params.bbox(coords)
    if bounds[0] > bounds[2]:
        raise BadRequest("bbox minx must be less than maxx (split a bbox that crosses 180 "
                         "degrees into two requests)")
    request = params.image_request(query, fmt, size, DEFAULT_PREVIEW_SIZE,
                                   settings.current().max_image_size)
    entry = open_dataset(url)
    with reading(entry):
        image = reader.bbox(entry, bounds, request.selection, request.max_size, request.width,
                            request.height)
        inputs = _render_inputs(entry, image, request.selection, request.style, request.format)
    return _render(image, request.style, request.format, *inputs)


def point(url: str | None, lonlat: str, query: Query) -> dict:
    lon, lat = params.lonlat(lonlat)
    selection = params.selection(query)
    entry = open_dataset(url)
    with reading(entry):
        image = reader.point(entry, lon, lat, selection)
    valid = bool(image.mask[0, 0])
    values = [_number(v) if valid else None for v in image.data[:, 0, 0]]
    return {"coordinates": [lon, lat], "values": values, "band_names": list(image.band_names),
            "valid": valid}


def _number(value):
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def info(url: str | None) -> dict:
    entry = open_dataset(url)
    with reading(entry):
        return reader.info(entry)


def statistics(url: str | None, query: Query) -> dict:
    config = settings.current()
    selection = params.selection(query)
    max_size = params.max_size(query, DEFAULT_PREVIEW_SIZE, config.max_image_size)
    percentiles = params.percentiles(query)
    bins, histogram_range = params.histogram(query)
    entry = open_dataset(url)
    with reading(entry):
        return reader.statistics(entry, selection, max_size, percentiles, bins, histogram_range)


#: Query parameters that configure the TileJSON document itself, not the tiles.
TILEJSON_ONLY = ("tile_format", "tile_scale", "minzoom", "maxzoom")


def tilejson(url: str | None, query: Query, base_url: str) -> dict:
    """A TileJSON 3.0.0 document whose tile URLs carry the render parameters through."""
    params.selection(query), params.style(query)  # a bad parameter fails here, not per tile
    tile_format = params.image_format(params.first(query, "tile_format"))
    scale = params.first(query, "tile_scale", "1")
    if scale not in ("1", "2", "3", "4"):
        raise BadRequest("'tile_scale' must be 1, 2, 3 or 4")
    entry = open_dataset(url)
    with reading(entry):
        minzoom, maxzoom = reader.zoom_range(entry)
    for name in ("minzoom", "maxzoom"):
        value = params.first(query, name)
        if value is not None:
            number = params.integer(value, name, 0, 30)
            minzoom, maxzoom = (number, maxzoom) if name == "minzoom" else (minzoom, number)
    passthrough = [(k, v) for k, values in query.items() if k not in TILEJSON_ONLY
                   for v in values]
    suffix = ("" if scale == "1" else f"@{scale}x") + (f".{tile_format.extension}"
                                                      if tile_format else "")
    west, south, east, north = entry.geographic_bounds
    center_lon = (west + east) / 2 if west <= east else ((west + east + 360) / 2 + 180) % 360 - 180
    return {
        "tilejson": "3.0.0",
        "name": entry.name,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [f"{base_url}/cog/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}{suffix}?"
                  + urlencode(passthrough)],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [west, max(south, -MAX_LAT), east, min(north, MAX_LAT)],
        "center": [center_lon, (south + north) / 2, minzoom],
    }
