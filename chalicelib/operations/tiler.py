"""The engine's front door: one function per API operation.

Each takes a :class:`~chalicelib.readers.protocol.Reader` (one file, a STAC item or a
mosaic: see :func:`chalicelib.readers.kinds.open_reader`) and the records parsed from the
request (``core.records``), draws images through :func:`.pipeline.draw` (read, process,
render, encode), and returns plain data (or an :class:`~chalicelib.core.records.EncodedImage`)
for the HTTP layer to answer with. Errors are :class:`~chalicelib.core.errors.TilerError`.
"""

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import numpy as np
from rasterio.crs import CRS

from ..core.errors import BadRequest, TileOutsideBounds, TilerError, TooLarge
from ..core.geo import MAX_LAT, WGS84, Bounds, lon_spans, to_bounds, to_lonlat
from ..core.records import (
    EncodedImage,
    ImageData,
    ImageSize,
    Selection,
    StatisticsOptions,
    Style,
    TileAddress,
    TilesetOptions,
)
from ..core.settings import DEMO_URL, Settings
from ..grids.tilematrixsets import TileMatrixSet
from ..pixels import formats
from ..pixels.algorithms import Algorithm
from ..pixels.encode import Options
from ..pixels.formats import ImageFormat
from ..pixels.statistics import image_statistics
from ..readers.protocol import Reader
from ..sources import allowlist
from .pipeline import draw, post_process

if TYPE_CHECKING:  # the shape routes load it; a tile request never needs it
    from ..grids.shapes import Shape, Shapes


def colormap_swatch(table: np.ndarray, fmt: ImageFormat, orientation: str = "horizontal",
                    width: int | None = None, height: int | None = None) -> EncodedImage:
    """A colormap's (256, 4) ``table`` drawn as an image, its first colour at the left (or
    the top, ``vertical``): 256 x 20 pixels by default (20 x 256), as titiler's."""
    vertical = orientation == "vertical"
    width = width or (20 if vertical else 256)
    height = height or (256 if vertical else 20)
    steps = height if vertical else width
    colours = table[np.linspace(0, len(table) - 1, steps).round().astype(int)]  # (n, 4)
    pixels = (np.broadcast_to(colours.T[:, :, None], (4, height, width)) if vertical
              else np.broadcast_to(colours.T[:, None, :], (4, height, width)))
    alpha = None if fmt.alpha == "never" else pixels[3].copy()
    body = fmt.encoder(np.ascontiguousarray(pixels[:3]), alpha, Options())
    return EncodedImage(body, fmt.media_type, fmt.extension)


def demo_url(config: Settings) -> str | None:
    """The built-in demo dataset's url, if this server's allow-list admits it."""
    try:
        allowlist.resolve(DEMO_URL, config.allowed_sources, config.unsafe_allow_hosts)
    except TilerError:
        return None
    return DEMO_URL


def _location_headers(bounds: Bounds, crs_uri: str | None) -> dict:
    """Where an image lies (titiler's Content-Bbox and Content-Crs)."""
    left, bottom, right, top = bounds
    headers = {"Content-Bbox": f"{left},{bottom},{right},{top}"}
    if crs_uri:
        headers["Content-Crs"] = f"<{crs_uri}>"
    return headers


def _tile_headers(address: TileAddress, bounds: Bounds) -> dict:
    return _location_headers(bounds, address.tms.crs_uri)


def _outside_tile(address: TileAddress, style: Style, buffer: float) -> EncodedImage:
    """A tile outside the data, for clients that take a 404 as a failure: 204 No Content,
    or a fully transparent tile (black where the format has no alpha) of the tile's size
    with ``buffer`` pixels on each side."""
    fmt = address.format or formats.PNG
    if address.outside == "204":
        return EncodedImage(b"", fmt.media_type, fmt.extension, empty=True, status=204)
    bounds, width, height = address.bounds(buffer)
    shape = (height, width)
    alpha = None if fmt.alpha == "never" or not style.return_mask else np.zeros(shape, np.uint8)
    body = fmt.encoder(np.zeros((1, *shape), np.uint8), alpha, Options(
        zlevel=style.png_zlevel, quality=style.quality, crs=address.tms.crs, bounds=bounds))
    return EncodedImage(body, fmt.media_type, fmt.extension, empty=True,
                        headers=_tile_headers(address, bounds))


def _check_zoom(z: int, config: Settings) -> None:
    if config.max_zoom is not None and z > config.max_zoom:
        raise BadRequest(f"zoom {z} is deeper than this server serves (MAX_ZOOM={config.max_zoom})")


def _margin(address: TileAddress, algorithm: Algorithm | None) -> tuple[float, float]:
    """(pixels read beyond the tile, pixels of them the answer keeps) on each side. The
    read adds what the algorithm's neighbourhood needs, and the request's buffer counts
    that need first: ``buffer=3&algorithm=hillshade`` (titiler's recipe) answers tiles of
    the tile size, as titiler does, and ``algorithm=hillshade`` alone does too (titiler's
    shrink by the buffer cropped off)."""
    need = algorithm.buffer if algorithm is not None else 0
    return max(address.buffer, need) + address.padding, max(address.buffer - need, 0.0)


def tile(source: Reader, address: TileAddress, selection: Selection, style: Style,
         algorithm: Algorithm | None = None) -> EncodedImage:
    """A map tile; outside the data, what ``address.outside`` asks (404, 204, empty)."""
    _check_zoom(address.z, source.config)
    margin, kept = _margin(address, algorithm)
    read_at = replace(address, margin=margin)
    try:
        result = draw(lambda statistics: source.tile(read_at, selection, statistics), style,
                      address.format, algorithm, crop=address.padding)
    except TileOutsideBounds:
        if address.outside == "404":
            raise
        return _outside_tile(address, style, kept)
    result.headers = _tile_headers(address, address.bounds(kept)[0])
    return result


def _check_size(size: ImageSize, config: Settings) -> None:
    for name in ("width", "height", "max_size"):
        value = getattr(size, name)
        if value is not None and value > config.max_image_size:
            raise BadRequest(f"'{name}' must be at most {config.max_image_size} "
                             "(MAX_IMAGE_SIZE)")


def _with_margin(size: ImageSize, algorithm: Algorithm | None) -> ImageSize:
    """``size`` read with what ``algorithm``'s neighbourhood needs around it."""
    return size if algorithm is None or not algorithm.buffer else replace(
        size, margin=algorithm.buffer)


def crs_uri(crs) -> str | None:
    """The OGC URI of ``crs`` (``http://www.opengis.net/def/crs/EPSG/0/4326``), if it has
    an authority code."""
    authority = crs.to_authority()
    if not authority:
        return None
    name, code = authority
    return f"http://www.opengis.net/def/crs/{name}/0/{code}"


def _drawn(read: Callable[[bool], ImageData], style: Style, fmt: ImageFormat | None,
           algorithm: Algorithm | None) -> EncodedImage:
    """:func:`.pipeline.draw`, with the headers that say where the image lies."""
    read_images: list[ImageData] = []

    def kept(statistics: bool) -> ImageData:
        read_images.append(read(statistics))
        return read_images[-1]

    result = draw(kept, style, fmt, algorithm)
    margin = int(algorithm.buffer) if algorithm is not None else 0
    where = read_images[-1].cropped(margin)
    result.headers = _location_headers(where.bounds, crs_uri(where.crs))
    return result


def preview(source: Reader, size: ImageSize, selection: Selection, style: Style,
            algorithm: Algorithm | None = None, dst_crs: CRS | None = None) -> EncodedImage:
    """The whole source as one image of ``size`` (in its CRS, or ``dst_crs``)."""
    _check_size(size, source.config)
    read_as = _with_margin(size, algorithm)
    return _drawn(lambda statistics: source.preview(selection, read_as, statistics, dst_crs),
                  style, size.format, algorithm)


def bbox(source: Reader, bounds: Bounds, size: ImageSize, selection: Selection,
         style: Style, algorithm: Algorithm | None = None, coord_crs: CRS = WGS84,
         dst_crs: CRS | None = None) -> EncodedImage:
    """The part of the source inside ``bounds`` (in ``coord_crs``, degrees by default), as
    an image in ``dst_crs`` (default: ``coord_crs``, as titiler)."""
    if size.format is None:
        k = source.kind
        raise BadRequest("the image format is missing: end the path with an extension ("
                         + ", ".join("." + e for e in formats.EXTENSIONS)
                         + f"), as in /{k}/bbox/minx,miny,maxx,maxy.png or "
                         f"/{k}/bbox/minx,miny,maxx,maxy/512x512.png")
    _check_size(size, source.config)
    dst = dst_crs or coord_crs
    box = to_bounds(coord_crs, dst, bounds)
    read_as = _with_margin(size, algorithm)
    return _drawn(lambda statistics: source.bbox(box, selection, read_as, statistics, dst),
                  style, size.format, algorithm)


def _shape_read(source: Reader, shape: "Shape", selection: Selection, size: ImageSize,
                statistics: bool, coord_crs: CRS, dst_crs: CRS | None,
                align: bool) -> tuple[ImageData, "Shape", np.ndarray]:
    """The pixels of ``shape``'s box in ``dst_crs`` (default: ``coord_crs``), those the
    shape does not touch masked; the shape in that CRS, and the pixels it touches."""
    dst = dst_crs or coord_crs
    box = shape.box_in(coord_crs, dst)
    try:
        image = source.bbox(box, selection, size, statistics, dst, align)
    except TileOutsideBounds:
        raise TileOutsideBounds(f"{shape.where()} does not touch the data; see "
                                f"/{source.kind}/info for its bounds") from None
    from ..grids import shapes
    local = shape.in_crs(coord_crs, dst)
    touched = shapes.touched(local, image.transform, image.width, image.height)
    image.mask = image.mask & touched
    return image, local, touched


def feature(source: Reader, shape: "Shape", size: ImageSize, selection: Selection,
            style: Style, algorithm: Algorithm | None = None, coord_crs: CRS = WGS84,
            dst_crs: CRS | None = None) -> EncodedImage:
    """The image of ``shape``'s box (in ``dst_crs``, default ``coord_crs``), the pixels the
    shape does not touch masked (transparent)."""
    _check_size(size, source.config)
    read_as = _with_margin(size, algorithm)
    return _drawn(lambda statistics: _shape_read(source, shape, selection, read_as,
                                                 statistics, coord_crs, dst_crs, False)[0],
                  style, size.format, algorithm)


def feature_statistics(source: Reader, found: "Shapes", selection: Selection,
                       options: StatisticsOptions, size: ImageSize,
                       algorithm: Algorithm | None = None, coord_crs: CRS = WGS84,
                       dst_crs: CRS | None = None, cover_scale: int = 10) -> dict:
    """Statistics of the pixels each shape covers (titiler's ``POST /statistics``): each
    pixel weighted by the part of it the shape covers (``cover_scale``² samples per
    pixel), on the data's own pixels in ``dst_crs`` (default ``coord_crs``). Answers the
    request's Feature or FeatureCollection, each feature's ``properties.statistics``
    added."""
    from ..grids import shapes
    _check_size(size, source.config)
    read_as = _with_margin(size, algorithm)
    answers = []
    for shape in found.shapes:
        image, local, touched = _shape_read(source, shape, selection, read_as, False,
                                            coord_crs, dst_crs, True)
        if algorithm is not None:  # its output may be another grid (its buffer cropped)
            image = post_process(image, algorithm)
            touched = shapes.touched(local, image.transform, image.width, image.height)
            image.mask = image.mask & touched
        weights = shapes.coverage(local, image.transform, image.width, image.height,
                                  cover_scale, touched)
        answers.append({"statistics": image_statistics(
            image, options, image.band_validity(), weights, int(touched.sum()))})
    return found.answer(answers)


def point(source: Reader, xy: tuple[float, float], selection: Selection,
          coord_crs: CRS = WGS84) -> dict:
    """Each band's value at ``xy`` (in ``coord_crs``: degrees by default)."""
    lon, lat = to_lonlat(coord_crs, *xy)
    result = source.point(lon, lat, selection)
    result["coordinates"] = list(xy)
    return result


def info(source: Reader, tms: TileMatrixSet) -> dict:
    """What the source is, its zoom levels in ``tms``."""
    return source.info(tms)


def info_geojson(source: Reader, tms: TileMatrixSet) -> dict:
    """``info`` as a GeoJSON Feature whose geometry is the data's bounds (two boxes where
    they cross 180 degrees)."""
    properties = info(source, tms)
    west, south, east, north = source.geographic_bounds
    rings = [[[[w, south], [e, south], [e, north], [w, north], [w, south]]]
             for w, e in lon_spans(west, east)]
    geometry = ({"type": "Polygon", "coordinates": rings[0]} if len(rings) == 1
                else {"type": "MultiPolygon", "coordinates": rings})
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def statistics(source: Reader, selection: Selection, options: StatisticsOptions,
               algorithm: Algorithm | None = None) -> dict:
    """Per-band statistics of the source (of ``algorithm``'s output, if given), from an
    overview of ``options.max_size``."""
    size = ImageSize(None, options.max_size)
    _check_size(size, source.config)
    if algorithm is None:
        return source.statistics(selection, options)
    image = algorithm(source.preview(selection, _with_margin(size, algorithm)))
    return image_statistics(image, options)


def asset_statistics(source, selection: Selection, options: StatisticsOptions) -> dict:
    """A STAC item's statistics per asset (``/stac/asset_statistics``)."""
    _check_size(ImageSize(None, options.max_size), source.config)
    return source.asset_statistics(selection, options)


def tile_url_template(base_url: str, kind: str, tms: TileMatrixSet, scale: int,
                      fmt: ImageFormat | None, passthrough: list[tuple[str, str]],
                      placeholders=("{z}", "{x}", "{y}")) -> str:
    """The URL of every tile of ``tms`` from a ``kind`` source, carrying the request's
    render parameters."""
    z, x, y = placeholders
    suffix = ("" if scale == 1 else f"@{scale}x") + (f".{fmt.extension}" if fmt else "")
    query = urlencode(passthrough)
    return (f"{base_url}/{kind}/tiles/{tms.id}/{z}/{x}/{y}{suffix}"
            + (f"?{query}" if query else ""))


def zooms(source: Reader, tms: TileMatrixSet, minzoom: int | None,
          maxzoom: int | None) -> tuple[int, int]:
    """The data's zoom range in ``tms``, with the request's overrides."""
    low, high = source.zoom_range(tms)
    low = low if minzoom is None else max(minzoom, tms.minzoom)
    high = high if maxzoom is None else min(maxzoom, tms.deepest)
    if source.config.max_zoom is not None:  # the server's limit (MAX_ZOOM)
        high, low = min(high, source.config.max_zoom), min(low, source.config.max_zoom)
    if low > high:
        raise BadRequest(f"minzoom ({low}) is above maxzoom ({high})")
    return low, high


def check_tiles_render(source: Reader, tms: TileMatrixSet, z: int, selection: Selection,
                       style: Style, fmt: ImageFormat | None,
                       algorithm: Algorithm | None = None) -> None:
    """Render one tile of the data (at ``z``, near its centre) as the document's tiles will
    be, so a parameter that does not fit this source (a band it lacks, a colormap over three
    bands, a rescale per band that miscounts) is refused now, with the message the tiles
    would give, instead of by every tile of a map. A tile at the deepest zoom is a window at
    full resolution: cheap for any file. Outside the data or too large: nothing to say."""
    found = next(filter(None, (tms.tile_range(z, box) for box in source.footprint(tms))), None)
    if found is None:
        return
    x, y = (found[0] + found[2]) // 2, (found[1] + found[3]) // 2
    matrix = tms.matrix(z)
    address = TileAddress(tms, z, x, y, matrix.tile_width, matrix.tile_height, fmt)
    try:
        tile(source, address, selection, style, algorithm)
    except (TileOutsideBounds, TooLarge):
        pass


def tilejson(source: Reader, tms: TileMatrixSet, options: TilesetOptions,
             passthrough: list[tuple[str, str]], base_url: str, selection: Selection,
             style: Style, algorithm: Algorithm | None = None) -> dict:
    """A TileJSON 3.0.0 document whose tile URLs carry the render parameters through,
    ``selection``, ``style`` and ``algorithm`` checked against the source first."""
    minzoom, maxzoom = zooms(source, tms, options.minzoom, options.maxzoom)
    check_tiles_render(source, tms, maxzoom, selection, style, options.tile_format,
                       algorithm)
    west, south, east, north = source.geographic_bounds
    if tms.is_web_mercator:
        south, north = max(south, -MAX_LAT), min(north, MAX_LAT)
    center_lon = (west + east) / 2 if west <= east else ((west + east + 360) / 2 + 180) % 360 - 180
    return {
        "tilejson": "3.0.0",
        "name": source.name,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tile_url_template(base_url, source.kind, tms, options.tile_scale,
                                    options.tile_format, passthrough)],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": [west, south, east, north],
        "center": [center_lon, (south + north) / 2, minzoom],
    }


def _tileset_links(base_url: str, kind: str, tms: TileMatrixSet, query: str) -> list[dict]:
    q = f"?{query}" if query else ""
    return [{"href": f"{base_url}/{kind}/tiles/{tms.id}{q}", "rel": "self",
             "type": "application/json", "title": f"Tileset tiled using {tms.id} TileMatrixSet"},
            {"href": f"{base_url}/{kind}/tiles/{tms.id}/{{z}}/{{x}}/{{y}}{q}", "rel": "tile",
             "templated": True, "title": "Templated link for retrieving Raster tiles"}]


def _tileset_base(source: Reader, tms: TileMatrixSet) -> dict:
    west, south, east, north = source.geographic_bounds
    return {"title": f"tileset tiled using {tms.id} TileMatrixSet", "dataType": "map",
            "crs": tms.crs_uri,
            "boundingBox": {"lowerLeft": [west, south], "upperRight": [east, north],
                            "crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
            "accessConstraints": "unclassified"}


def tilesets(source: Reader, tms_list: list[TileMatrixSet], base_url: str,
             query: str) -> dict:
    """OGC API Tiles' list of the source's tilesets, one per tile matrix set (titiler's
    ``/cog/tiles``)."""
    return {"tilesets": [{**_tileset_base(source, tms),
                          "links": _tileset_links(base_url, source.kind, tms, query)}
                         for tms in tms_list]}


def tileset(source: Reader, tms: TileMatrixSet, base_url: str, query: str) -> dict:
    """One tileset (titiler's ``/cog/tiles/{tileMatrixSetId}``): its links, and the tiles
    that hold data at each zoom (``tileMatrixSetLimits``)."""
    low, high = zooms(source, tms, None, None)
    limits = []
    for z in range(low, high + 1):
        found = source.tile_limits(tms, z)
        if found is not None:
            limits.append({"tileMatrix": str(z), "minTileRow": found[1], "maxTileRow": found[3],
                           "minTileCol": found[0], "maxTileCol": found[2]})
    q = f"?{query}" if query else ""
    links = _tileset_links(base_url, source.kind, tms, query)
    links.append({"href": f"{base_url}/{source.kind}/{tms.id}/map.html{q}", "rel": "data",
                  "type": "text/html", "title": f"Map viewer for '{tms.id}' tileMatrixSet"})
    return {**_tileset_base(source, tms), "links": links, "tileMatrixSetLimits": limits}


#: The OGC API conformance classes the API implements (``/conformance``).
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/png",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/jpeg",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tiff",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
)


def landing(base_url: str) -> dict:
    """The OGC API landing page: what the API is, and links to its parts."""
    def link(path: str, rel: str, kind: str, title: str) -> dict:
        return {"href": f"{base_url}{path}", "rel": rel, "type": kind, "title": title}
    return {"title": "cogtiler", "description": "Dynamic raster tiles from Cloud-Optimized "
            "GeoTIFFs, STAC items and mosaics", "links": [
                link("/?f=json", "self", "application/json", "This landing page"),
                link("/", "alternate", "text/html", "The map viewer"),
                link("/openapi.json", "service-desc",
                     "application/vnd.oai.openapi+json;version=3.0", "The API definition"),
                link("/docs", "service-doc", "text/html", "The API documentation"),
                link("/conformance", "conformance", "application/json",
                     "Conformance classes"),
                link("/tileMatrixSets", "data", "application/json", "Tile matrix sets"),
                link("/algorithms", "data", "application/json", "Algorithms"),
                link("/colorMaps", "data", "application/json", "Colormaps")]}
