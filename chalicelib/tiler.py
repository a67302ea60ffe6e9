"""The engine's front door: one function per API operation.

Each takes the source string, the records parsed from the request (``models``) and the
settings, runs the steps sources -> datasets -> reader -> render -> encode, and returns
plain data (or an :class:`~chalicelib.models.EncodedImage`) for the HTTP layer to answer
with. Errors are :class:`~chalicelib.errors.TilerError`.
"""

from urllib.parse import urlencode

import numpy as np
from rasterio.enums import ColorInterp

from . import colormaps, formats, reader, render
from .datasets import MAX_LAT, OpenDataset, cache, reading
from .encode import Options
from .errors import BadRequest, TooLarge
from .formats import ImageFormat
from .models import (EncodedImage, ImageData, ImageSize, Selection, StatisticsOptions, Style,
                     TileAddress)
from .settings import Settings
from .sources import resolve
from .tilematrixsets import TileMatrixSet

#: Lambda returns at most 6 MB, after base64 (4/3 larger) and headers.
MAX_BODY_BYTES = 4_400_000


def open_dataset(url: str | None, config: Settings) -> OpenDataset:
    """Allow-list check, then the (cached) open dataset."""
    source = resolve(url or "", config.allowed_sources, config.unsafe_allow_hosts)
    return cache.get(source, config)


def _palette(dataset: OpenDataset):
    if "palette" not in dataset.memo:
        table = None
        if dataset.src.colorinterp[0] == ColorInterp.palette:
            try:
                table = colormaps.from_dataset(dataset.src.colormap(1))
            except ValueError:
                table = None
        dataset.memo["palette"] = table
    return dataset.memo["palette"]


def _raw(fmt: ImageFormat | None) -> bool:
    return fmt is not None and fmt.raw


def _style_inputs(dataset: OpenDataset, image: ImageData, selection: Selection, style: Style,
                  fmt: ImageFormat | None) -> tuple:
    """What styling needs from the dataset: its palette, and the stretch ranges of data
    that must be stretched (read once per dataset and selection). Call holding
    ``reading(dataset)``; styling and encoding then run without the dataset."""
    palette = _palette(dataset) if selection.expression is None else None
    stretch = None
    if render.needs_stretch(image, style, _raw(fmt)):
        stretch = reader.stretch_ranges(dataset, selection)
    return palette, stretch


def _encode(image: ImageData, style: Style, fmt: ImageFormat | None, palette,
            stretch) -> EncodedImage:
    """Style and encode ``image``."""
    styled = render.apply_style(image, style, palette, stretch, raw_format=_raw(fmt))
    if fmt is None:
        fmt = formats.automatic(styled.fully_opaque)
    if not fmt.raw and styled.data.dtype != np.uint8:
        raise BadRequest(f"{fmt.name.upper()} holds 8-bit data; add rescale=min,max or use "
                         "a raw format (tif, npy)")
    alpha = styled.alpha
    if not style.return_mask or fmt.alpha == "never" or (
            fmt.alpha == "when_masked" and styled.fully_opaque):
        alpha = None
    body = fmt.encoder(styled.data, alpha, Options(zlevel=style.png_zlevel, quality=style.quality,
                                                   transform=image.transform, crs=image.crs))
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"the image is {len(body) / 1e6:.1f} MB; responses are limited to "
                       "about 4 MB: ask for fewer pixels (max_size, width, height) or jpg/webp")
    return EncodedImage(body, fmt.media_type, fmt.extension, empty=not styled.alpha.any())


def tile(url: str | None, address: TileAddress, selection: Selection, style: Style,
         config: Settings) -> EncodedImage:
    dataset = open_dataset(url, config)
    with reading(dataset, config):
        image = reader.tile(dataset, address, selection)
        inputs = _style_inputs(dataset, image, selection, style, address.format)
    result = _encode(image, style, address.format, *inputs)
    left, bottom, right, top = image.bounds
    result.headers = {"Content-Bbox": f"{left},{bottom},{right},{top}",
                      "Content-Crs": f"<{address.tms.crs_uri}>"}
    return result


def _check_size(size: ImageSize, config: Settings) -> None:
    for name in ("width", "height", "max_size"):
        value = getattr(size, name)
        if value is not None and value > config.max_image_size:
            raise BadRequest(f"'{name}' must be at most {config.max_image_size} "
                             "(MAX_IMAGE_SIZE)")


def preview(url: str | None, size: ImageSize, selection: Selection, style: Style,
            config: Settings) -> EncodedImage:
    _check_size(size, config)
    dataset = open_dataset(url, config)
    with reading(dataset, config):
        image = reader.preview(dataset, selection, size)
        inputs = _style_inputs(dataset, image, selection, style, size.format)
    return _encode(image, style, size.format, *inputs)


def bbox(url: str | None, bounds: tuple, size: ImageSize, selection: Selection, style: Style,
         config: Settings) -> EncodedImage:
    if size.format is None:
        raise BadRequest("the bbox route is /cog/bbox/minx,miny,maxx,maxy.{format} or "
                         "/cog/bbox/minx,miny,maxx,maxy/{width}x{height}.{format}")
    _check_size(size, config)
    dataset = open_dataset(url, config)
    with reading(dataset, config):
        image = reader.bbox(dataset, bounds, selection, size)
        inputs = _style_inputs(dataset, image, selection, style, size.format)
    return _encode(image, style, size.format, *inputs)


def point(url: str | None, lonlat: tuple[float, float], selection: Selection,
          config: Settings) -> dict:
    lon, lat = lonlat
    dataset = open_dataset(url, config)
    with reading(dataset, config):
        image = reader.point(dataset, lon, lat, selection)
    valid = bool(image.mask[0, 0])
    values = [_number(v) if valid else None for v in image.data[:, 0, 0]]
    return {"coordinates": [lon, lat], "values": values, "band_names": list(image.band_names),
            "valid": valid}


def _number(value):
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def info(url: str | None, tms: TileMatrixSet, config: Settings) -> dict:
    dataset = open_dataset(url, config)
    with reading(dataset, config):
        return reader.info(dataset, tms)


def info_geojson(url: str | None, tms: TileMatrixSet, config: Settings) -> dict:
    """``info`` as a GeoJSON Feature whose geometry is the data's bounds (two boxes where
    they cross 180 degrees)."""
    properties = info(url, tms, config)
    west, south, east, north = properties["bounds"]
    boxes = [(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]
    rings = [[[[w, south], [e, south], [e, north], [w, north], [w, south]]] for w, e in boxes]
    geometry = ({"type": "Polygon", "coordinates": rings[0]} if len(rings) == 1
                else {"type": "MultiPolygon", "coordinates": rings})
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def statistics(url: str | None, selection: Selection, options: StatisticsOptions,
               config: Settings) -> dict:
    _check_size(ImageSize(None, options.max_size), config)
    dataset = open_dataset(url, config)
    with reading(dataset, config):
        return reader.statistics(dataset, selection, options)


def tile_url_template(base_url: str, tms: TileMatrixSet, scale: int,
                      fmt: ImageFormat | None, passthrough: list[tuple[str, str]],
                      placeholders=("{z}", "{x}", "{y}")) -> str:
    """The URL of every tile of ``tms``, carrying the request's render parameters."""
    z, x, y = placeholders
    suffix = ("" if scale == 1 else f"@{scale}x") + (f".{fmt.extension}" if fmt else "")
    query = urlencode(passthrough)
    return (f"{base_url}/cog/tiles/{tms.id}/{z}/{x}/{y}{suffix}"
            + (f"?{query}" if query else ""))


def zooms(dataset: OpenDataset, tms: TileMatrixSet, minzoom: int | None,
          maxzoom: int | None) -> tuple[int, int]:
    """The data's zoom range in ``tms``, with the request's overrides."""
    low, high = reader.zoom_range(dataset, tms)
    low = low if minzoom is None else max(minzoom, tms.minzoom)
    high = high if maxzoom is None else min(maxzoom, tms.deepest)
    if low > high:
        raise BadRequest(f"minzoom ({low}) is above maxzoom ({high})")
    return low, high


def tilejson(url: str | None, tms: TileMatrixSet, options, passthrough: list[tuple[str, str]],
             base_url: str, config: Settings) -> dict:
    """A TileJSON 3.0.0 document whose tile URLs carry the render parameters through.
    ``options`` holds ``tile_format``, ``tile_scale``, ``minzoom`` and ``maxzoom``."""
    dataset = open_dataset(url, config)
    with reading(dataset, config):
        minzoom, maxzoom = zooms(dataset, tms, options.minzoom, options.maxzoom)
    west, south, east, north = dataset.geographic_bounds
    if tms.is_web_mercator:
        south, north = max(south, -MAX_LAT), min(north, MAX_LAT)
    center_lon = (west + east) / 2 if west <= east else ((west + east + 360) / 2 + 180) % 360 - 180
    return {
        "tilejson": "3.0.0",
        "name": dataset.name,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tile_url_template(base_url, tms, options.tile_scale, options.tile_format,
                                    passthrough)],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [west, south, east, north],
        "center": [center_lon, (south + north) / 2, minzoom],
    }
