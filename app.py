"""cogtiler: the HTTP API (a table of routes) over the engine in chalicelib/, and the pure
Lambda functions around it (cogify, seed, render) at the end of this file.

Each route is declared once (method, path, summary, parameters, what it answers); its view
calls one ``chalicelib`` function. Parsing, errors, response shaping, the middleware, HEAD
and 405s come with the declaration (chalicelib/api/routes.py); /openapi.json is made from
the same declarations. Where things go: docs/architecture.md.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from chalice import Chalice, CORSConfig, Response

import chalicelib.api
from chalicelib.api.middleware import preflight_origin
from chalicelib.api.params import (
    ALGORITHM_ID,
    BBOX,
    CATALOG_POINT_SELECTION,
    CATALOG_SELECTION,
    COLLECTION_ID,
    COLORMAP_ID,
    COLORMAP_IMAGE,
    COORD_CRS,
    DOCUMENT_ONLY,
    DST_CRS,
    FEATURE,
    FEATURE_IMAGE,
    FEATURES,
    FORMAT,
    IMAGE,
    ITEM_ID,
    LANDING_FORMAT,
    LONLAT,
    MAX_ITEMS,
    MOSAIC_POINT_SELECTION,
    MOSAIC_SELECTION,
    MOSAIC_URL,
    POINT_SELECTION,
    POST_PROCESS,
    READ_RESAMPLING,
    SEARCH_BODY,
    SEARCH_ID,
    SEARCH_QUERY,
    SELECTION,
    SHAPE_STATISTICS,
    SIZE,
    STAC_ASSET_SELECTION,
    STAC_INFO,
    STAC_POINT_SELECTION,
    STAC_SELECTION,
    STAC_URL,
    STATISTICS,
    STYLE,
    TILE,
    TILE_POSITION,
    TILEJSON,
    TMS_ID,
    URL,
    WMTS,
    Param,
    algorithm,
    bbox_of,
    coord_crs,
    image_size,
    point_of,
    search_fields,
    selection,
    statistics_options,
    style,
    tile_address,
    tile_matrix_set_of,
    tile_position,
    tileset_options,
)
from chalicelib.api.responses import Page
from chalicelib.api.routes import SIMPLE_ERRORS, Request, Returns, RouteTable
from chalicelib.core import settings
from chalicelib.core.errors import BadRequest, NotFound, TilerError
from chalicelib.core.records import Selection
from chalicelib.grids import tilematrixsets
from chalicelib.jobs import cogify, tilecache
from chalicelib.operations import tiler, wmts
from chalicelib.pixels import algorithms, colormaps, formats
from chalicelib.readers.kinds import KINDS, open_reader

logger = logging.getLogger("cogtiler")

app = Chalice(app_name="cogtiler")
app.api.binary_types = ["*/*"]
app.debug = False  # never send tracebacks to clients
# Loaded with the stage's environment (chalice deploy/package/local too): API keys and CORS
# origins are decided per stage, here.
_loaded_with = settings.current()
_origin = preflight_origin(_loaded_with.cors_origins)
app.api.cors = CORSConfig(allow_origin=_origin, max_age=600) if _origin else False
api = RouteTable(app, Response, _loaded_with)

JSON = Returns(("application/json",), "JSON")
IMAGE_OUT = Returns(formats.MEDIA_TYPES, "The image",
                    headers=("Cache-Control", "Content-Bbox", "Content-Crs"))
TILE_OUT = Returns(formats.MEDIA_TYPES, "The tile",
                   headers=("Cache-Control", "Content-Bbox", "Content-Crs"))
HTML = Returns(("text/html; charset=utf-8",), "An HTML page")
XML = Returns(("application/xml",), "OGC WMTS 1.0.0 capabilities")
# beside the api package, wherever it is installed (a layer on Lambda: not beside app.py)
VIEWER = (Path(chalicelib.api.__file__).parent / "viewer.html").read_text(
    encoding="utf-8").replace("__RESAMPLING__", json.dumps(list(READ_RESAMPLING)))


def _passthrough(r: Request) -> list[tuple[str, str]]:
    """The request's parameters that tile URLs carry on (all but the document's own)."""
    return [(k, v) for k, values in r.query.items() if k not in DOCUMENT_ONLY for v in values]


# ---- pages and lists ------------------------------------------------------------------------

def _viewer_page(r: Request) -> Page:
    demo = tiler.demo_url(r.config)  # None where the stage does not allow it (prod)
    return Page(VIEWER.replace("__API_PREFIX__", json.dumps(r.prefix))
                .replace("__DEFAULT_URL__", json.dumps(demo)), HTML.media_types[0])


@api.get("/", "Map viewer; with `Accept: application/json` (or `f=json`) the OGC API landing "
         "page (links)", returns=Returns(("text/html; charset=utf-8", "application/json"),
                                          "The viewer, or the landing page's links"),
         errors=SIMPLE_ERRORS, tag="pages", any_query=True)
def viewer(r: Request):
    if r.wants_json():
        return tiler.landing(r.base_url)
    return _viewer_page(r)


@api.get("/conformance", "The OGC API conformance classes this API implements",
         returns=JSON, errors=(400, 500), tag="pages", params=(LANDING_FORMAT,))
def conformance(r: Request):
    return {"conformsTo": list(tiler.CONFORMANCE)}


@api.get("/docs", "API documentation (Swagger UI)", returns=HTML, errors=SIMPLE_ERRORS,
         tag="pages", any_query=True)
def docs(r: Request):
    from chalicelib.api import openapi  # only these two routes need it: not on the tile path
    return Page(openapi.swagger_page(r.prefix), HTML.media_types[0])


@api.get("/openapi.json", "This API as an OpenAPI 3 document", returns=JSON,
         errors=SIMPLE_ERRORS, tag="pages", any_query=True)
def openapi_document(r: Request):
    from chalicelib.api import openapi
    return openapi.document(api.routes, r.prefix, r.config)


@api.get("/healthz", "Liveness check", returns=JSON, errors=SIMPLE_ERRORS, tag="pages",
         any_query=True)
def healthz(r: Request):
    return {"status": "ok"}


@api.get("/colorMaps", "Names of the colormaps", returns=JSON, errors=(400, 500),
         tag="lists", params=(LANDING_FORMAT,))
def colormap_names(r: Request):
    return {"colorMaps": colormaps.base_names(),  # each also reversed, as <name>_r
            "colormaps": [  # titiler's shape: every name, with its link
                {"id": name, "links": [{"href": f"{r.base_url}/colorMaps/{name}",
                                        "rel": "item", "type": "application/json",
                                        "title": f"Definition of {name} ColorMap"}]}
                for name in colormaps.names()]}


@api.get("/colorMaps/{colorMapId}", "A colormap's 256 colours, {\"0\": [r, g, b, a], ...}, "
         "or its swatch as an image (format=png, or titiler's f=png)",
         params=(COLORMAP_ID, *COLORMAP_IMAGE),
         returns=Returns(("application/json", *formats.MEDIA_TYPES), "The colormap"),
         errors=(400, 500), tag="lists")
def colormap_table(r: Request):
    v = r.values
    fmt = v.format or (formats.get(v.f) if v.f not in (None, "json") else None)
    if fmt is not None:
        return tiler.colormap_swatch(v.colorMapId, fmt, v.orientation, v.width, v.height)
    return {str(i): colour.tolist() for i, colour in enumerate(v.colorMapId)}


@api.get("/algorithms", "The algorithms that post-process pixels (`algorithm=`)",
         returns=JSON, errors=(400, 500), tag="lists", params=(LANDING_FORMAT,))
def algorithm_list(r: Request):
    return {"algorithms": [
        {"id": name, "title": cls.title,
         "links": [{"href": f"{r.base_url}/algorithms/{name}", "rel": "item",
                    "type": "application/json", "title": f"Definition of {name} Algorithm"}]}
        for name, cls in algorithms.ALGORITHMS.items()]}


@api.get("/algorithms/{algorithmId}", "An algorithm: title, description, inputs, outputs "
         "and parameters (titiler's shape)", params=(ALGORITHM_ID, LANDING_FORMAT),
         returns=JSON,
         errors=(400, 500), tag="lists")
def algorithm_definition(r: Request):
    return algorithms.ALGORITHMS[r.values.algorithmId].describe()


@api.get("/tileMatrixSets", "The tile matrix sets tiles can be cut from", returns=JSON,
         errors=(400, 500), tag="lists", params=(LANDING_FORMAT,))
def tile_matrix_sets(r: Request):
    return {"tileMatrixSets": [tilematrixsets.get(i).summary(r.base_url)
                               for i in tilematrixsets.IDS]}


@api.get("/tileMatrixSets/{tileMatrixSetId}", "A tile matrix set (OGC TileMatrixSet 2.0)",
         params=(TMS_ID, LANDING_FORMAT), returns=JSON, errors=(400, 404, 500), tag="lists")
def tile_matrix_set(r: Request):
    return r.values.tileMatrixSetId.definition


# ---- sources: one raster (/cog), a STAC item (/stac), a MosaicJSON mosaic (/mosaicjson) ----
# Each family is the same table of routes over a different kind of source (chalicelib.readers):
# the parameters that say what to read differ, everything else is shared.

@dataclass(frozen=True)
class Family:
    kind: str  # the reader (chalicelib.readers.kinds) and, by default, the path prefix
    source: tuple[Param, ...]  # what names the source: its url, or a collection and a search
    selection: tuple[Param, ...]  # what to read
    point: tuple[Param, ...]  # what to read at a point
    info: tuple[Param, ...] = ()  # what info describes (a STAC item's assets)
    whole: bool = True  # previews and statistics of the whole source
    parts: bool = True  # bbox, feature and shape statistics
    prefix: str = ""  # the routes' path prefix, when not /{kind}
    tag: str = ""  # the OpenAPI tag, when not the kind
    #: opens the reader from the request (default: the kind's reader of ``url``)
    opener: Callable[[Request, Selection | None], Any] | None = None

    @property
    def what(self) -> str:  # "the raster", for summaries
        return KINDS[self.kind].what

    @property
    def path(self) -> str:
        return self.prefix or f"/{self.kind}"


# catalog readers are imported on first use: off the single-file path (cold start)
def _collection(r: Request, select: Selection | None):
    from chalicelib.readers import catalog
    v = r.values
    return catalog.collection_reader(v.collection_id, search_fields(v), r.config, v.max_items)


def _search(r: Request, select: Selection | None):
    from chalicelib.readers import catalog
    return catalog.search_reader(r.values.search_id, r.config, r.values.max_items)


def _item(r: Request, select: Selection | None):
    from chalicelib.readers import catalog
    return catalog.item_reader(r.values.collection_id, r.values.item_id, r.config, select)


FAMILIES = (
    Family("cog", (URL,), SELECTION, POINT_SELECTION),
    Family("stac", (STAC_URL,), STAC_SELECTION, STAC_POINT_SELECTION, info=STAC_INFO),
    Family("mosaicjson", (MOSAIC_URL,), MOSAIC_SELECTION, MOSAIC_POINT_SELECTION, whole=False),
    # a STAC API's collections and registered searches (STAC_API_URL), as mosaics of items
    Family("collections", (COLLECTION_ID, *SEARCH_QUERY), CATALOG_SELECTION,
           CATALOG_POINT_SELECTION, whole=False, parts=False,
           prefix="/collections/{collection_id}", tag="catalog", opener=_collection),
    Family("searches", (SEARCH_ID, MAX_ITEMS), CATALOG_SELECTION, CATALOG_POINT_SELECTION,
           whole=False, parts=False, prefix="/searches/{search_id}", tag="catalog",
           opener=_search),
    Family("stac", (COLLECTION_ID, ITEM_ID), STAC_SELECTION, STAC_POINT_SELECTION,
           info=STAC_INFO, prefix="/collections/{collection_id}/items/{item_id}",
           tag="catalog", opener=_item),
)


def _source(family: Family, r: Request, select: Selection | None = None):
    """The reader of the request's source; the request's selection (``select``, else
    parsed here) tells a STAC item which assets matter."""
    select = select or selection(r.values)
    if family.opener is not None:
        return family.opener(r, select)
    return open_reader(family.kind, r.values.url, r.config, select)


def _preview(f: Family, fmt=None, sized=False):
    def view(r: Request):
        v = r.values
        size = image_size(v, fmt or v.get("format"), v.size if sized else None)
        select = selection(v)
        return tiler.preview(_source(f, r, select), size, select, style(v), algorithm(v),
                             v.dst_crs)
    return view


def _bbox(f: Family, sized=False):
    def view(r: Request):
        v = r.values
        bounds, fmt = bbox_of(v)
        size = image_size(v, fmt, v.size if sized else None)
        select = selection(v)
        return tiler.bbox(_source(f, r, select), bounds, size, select, style(v),
                          algorithm(v), coord_crs(v), v.dst_crs)
    return view


def _feature(f: Family, fmt=None, sized=False):
    def view(r: Request):
        v = r.values
        size = image_size(v, fmt or v.get("format"), v.size if sized else None)
        select = selection(v)
        from chalicelib.grids.shapes import shapes_of  # not on the tile path
        found = shapes_of(v.feature, coord_crs(v))
        if found.collection:
            raise BadRequest("an image is of one Feature; POST a FeatureCollection to "
                             f"/{f.kind}/statistics")
        return tiler.feature(_source(f, r, select), found.shapes[0], size, select, style(v),
                             algorithm(v), coord_crs(v), v.dst_crs)
    return view


def declare_family(f: Family) -> None:
    k, tag = f.path, f.tag or f.kind
    select, style_params = f.selection, (*POST_PROCESS, *STYLE)

    @api.get(f"{k}/info", f"What {f.what} is: bounds, CRS, size, bands, overviews, zooms"
             + (" (per asset)" if f.info else ""), params=(*f.source, *f.info), returns=JSON,
             tag=tag)
    def info(r: Request):
        return tiler.info(_source(f, r), tile_matrix_set_of(r.values))

    @api.get(f"{k}/info.geojson", f"The footprint of {f.what} as a GeoJSON Feature, with its "
             "info", params=(*f.source, *f.info),
             returns=Returns(("application/geo+json",), "GeoJSON"), tag=tag)
    def info_geojson(r: Request):
        return tiler.info_geojson(_source(f, r), tile_matrix_set_of(r.values))

    @api.get(f"{k}/point/{{lonlat}}", "Each band's value at a point",
             params=(*f.source, LONLAT, *f.point, COORD_CRS), returns=JSON, tag=tag)
    def point(r: Request):
        select = selection(r.values)
        return tiler.point(_source(f, r, select), point_of(r.values), select,
                           coord_crs(r.values))

    @api.get(f"{k}/tiles", f"The tilesets of {f.what}, one per tile matrix set (OGC API "
             "Tiles)", params=(*f.source, *f.info), returns=JSON, tag=tag)
    def tileset_list(r: Request):
        return tiler.tilesets(_source(f, r), [tilematrixsets.get(i) for i in tilematrixsets.IDS],
                              r.base_url, urlencode(r.query, doseq=True))

    @api.get(f"{k}/tiles/{{tileMatrixSetId}}", f"One tileset of {f.what}: links and the tiles "
             "that hold data at each zoom (OGC API Tiles)", params=(TMS_ID, *f.source, *f.info),
             returns=JSON, tag=tag)
    def tileset_description(r: Request):
        return tiler.tileset(_source(f, r), r.values.tileMatrixSetId, r.base_url,
                             urlencode(r.query, doseq=True))

    @api.get(f"{k}/{{tileMatrixSetId}}/map.html", f"The map viewer on {f.what} (titiler's "
             "map.html; WebMercatorQuad)", params=(TMS_ID, *f.source), returns=HTML, tag=tag,
             any_query=True)
    def map_page(r: Request):
        if not r.values.tileMatrixSetId.is_web_mercator:
            raise BadRequest("the map viewer shows WebMercatorQuad; for other tile matrix sets "
                             f"use {k}/{{tileMatrixSetId}}/tilejson.json or WMTS in a GIS")
        return _viewer_page(r)

    tile_params = (*f.source, *TILE, *select, *style_params)

    @api.get(f"{k}/tiles/{{z}}/{{x}}/{{y}}", "A WebMercatorQuad map tile", returns=TILE_OUT,
             tag=tag, params=tuple(p for p in tile_params if p is not TMS_ID))
    @api.get(f"{k}/tiles/{{tileMatrixSetId}}/{{z}}/{{x}}/{{y}}",
             "A map tile of any tile matrix set", params=tile_params, returns=TILE_OUT, tag=tag)
    def tile(r: Request):
        v, select = r.values, selection(r.values)
        return tiler.tile(_source(f, r, select), tile_address(v), select, style(v),
                          algorithm(v))

    tilejson_params = (*f.source, *TILEJSON, *select, *style_params)

    @api.get(f"{k}/tilejson.json", "TileJSON 3.0.0 (WebMercatorQuad)",
             params=tilejson_params, returns=JSON, tag=tag)
    @api.get(f"{k}/{{tileMatrixSetId}}/tilejson.json", "TileJSON 3.0.0 for a tile matrix set",
             params=(TMS_ID, *tilejson_params), returns=JSON, tag=tag)
    def tilejson(r: Request):
        v = r.values
        select = selection(v)
        return tiler.tilejson(_source(f, r, select), tile_matrix_set_of(v), tileset_options(v),
                              _passthrough(r), r.base_url, select, style(v), algorithm(v))

    wmts_params = (*f.source, *WMTS, *select, *style_params)

    @api.get(f"{k}/WMTSCapabilities.xml", "OGC WMTS 1.0.0 capabilities (WebMercatorQuad)",
             params=wmts_params, returns=XML, tag=tag)
    @api.get(f"{k}/{{tileMatrixSetId}}/WMTSCapabilities.xml", "OGC WMTS 1.0.0 capabilities",
             params=(TMS_ID, *wmts_params), returns=XML, tag=tag)
    def wmts_capabilities(r: Request):
        v = r.values
        tms, select = tile_matrix_set_of(v), selection(v)
        self_url = f"{r.base_url}{k}/{tms.id}/WMTSCapabilities.xml?" + urlencode(
            [(name, value) for name, values in r.query.items() for value in values])
        return Page(wmts.capabilities(_source(f, r, select), tms, tileset_options(v),
                                      _passthrough(r), r.base_url, self_url, select, style(v),
                                      algorithm(v)),
                    XML.media_types[0])

    if f.parts:
        declare_parts(f)
    if f.whole:
        declare_whole(f)


def declare_parts(f: Family) -> None:
    """A family's routes of a part of the source: a box, a GeoJSON shape, its
    statistics."""
    k, tag, select = f.path, f.tag or f.kind, f.selection
    style_params = (*POST_PROCESS, *STYLE)
    image_params = (*f.source, *IMAGE, *select, *style_params)
    api.get(f"{k}/bbox/{{bbox}}", f"A part of {f.what} as an image (in degrees, or in "
            "coord_crs; the image in dst_crs)", params=(BBOX, *image_params, COORD_CRS,
                                                        DST_CRS),
            returns=IMAGE_OUT, tag=tag)(_bbox(f))
    api.get(f"{k}/bbox/{{bbox}}/{{size}}", f"A part of {f.what} at {{width}}x{{height}}"
            ".{format}", params=(BBOX, SIZE, *image_params, COORD_CRS, DST_CRS),
            returns=IMAGE_OUT, tag=tag)(_bbox(f, sized=True))

    shape_image = (*f.source, *FEATURE_IMAGE, *select, *style_params, COORD_CRS, DST_CRS, FEATURE)
    api.post(f"{k}/feature", f"The image of a GeoJSON Feature over {f.what}: its box, the "
             "pixels outside the shape masked", params=(*shape_image, FORMAT),
             returns=IMAGE_OUT, tag=tag)(_feature(f))
    api.post(f"{k}/feature/{{size}}", "The image of a GeoJSON Feature at {width}x{height}"
             "[.{format}]", params=(SIZE, *shape_image), returns=IMAGE_OUT,
             tag=tag)(_feature(f, sized=True))
    for fmt in formats.NAMES:
        api.post(f"{k}/feature.{fmt}", f"The image of a GeoJSON Feature as {fmt}",
                 params=shape_image, returns=IMAGE_OUT, tag=tag)(_feature(f, formats.get(fmt)))

    @api.post(f"{k}/statistics", "Statistics of the pixels each shape of a GeoJSON Feature "
              "or FeatureCollection covers, partial pixels weighted by their coverage",
              params=(*f.source, *select, *POST_PROCESS, *SHAPE_STATISTICS, COORD_CRS, DST_CRS,
                      FEATURES), returns=Returns(("application/geo+json",), "The GeoJSON, "
                                                 "each feature with its statistics"), tag=tag)
    def shape_statistics(r: Request):
        v = r.values
        select = selection(v)
        from chalicelib.grids.shapes import shapes_of
        found = shapes_of(v.geojson, coord_crs(v))
        return tiler.feature_statistics(
            _source(f, r, select), found, select, statistics_options(v),
            image_size(v), algorithm(v), coord_crs(v), v.dst_crs, v.cover_scale)



def declare_whole(f: Family) -> None:
    """A family's routes of the whole source: its statistics and previews."""
    k, tag, select = f.path, f.tag or f.kind, f.selection
    image_params = (*f.source, *IMAGE, *select, *POST_PROCESS, *STYLE)

    @api.get(f"{k}/statistics", "Per-band statistics: min, max, mean, percentiles, histogram",
             params=(*f.source, *select, *POST_PROCESS, *STATISTICS), returns=JSON, tag=tag)
    def statistics(r: Request):
        v = r.values
        select = selection(v)
        return tiler.statistics(_source(f, r, select), select, statistics_options(v),
                                algorithm(v))

    api.get(f"{k}/preview", f"The whole of {f.what} as an image (in its CRS, or dst_crs)",
            params=(*image_params, FORMAT, DST_CRS), returns=IMAGE_OUT, tag=tag)(_preview(f))
    api.get(f"{k}/preview/{{size}}", f"The whole of {f.what} at {{width}}x{{height}}"
            "[.{format}]", params=(SIZE, *image_params, DST_CRS), returns=IMAGE_OUT,
            tag=tag)(_preview(f, sized=True))
    # API Gateway path parts are literal or a whole {variable}: "preview.{format}" is not
    # allowed, so each format gets its own literal route.
    for fmt in formats.NAMES:  # every spelling: preview.jpg and preview.jpeg, as titiler
        api.get(f"{k}/preview.{fmt}", f"The whole of {f.what} as {fmt}",
                params=(*image_params, DST_CRS), returns=IMAGE_OUT,
                tag=tag)(_preview(f, formats.get(fmt)))


for _family in FAMILIES:
    declare_family(_family)

# ---- which files of a mosaic a request reads (titiler-mosaic's /assets routes) ------------
ASSET_NAMES = Returns(("application/json",), "The files, in the order they are read",
                      schema="Names")


@api.get("/mosaicjson/tiles/{tileMatrixSetId}/{z}/{x}/{y}/assets", "The files of the mosaic "
         "a tile reads", params=(MOSAIC_URL, *TILE_POSITION), returns=ASSET_NAMES,
         tag="mosaicjson")
def mosaic_tile_assets(r: Request):
    return open_reader("mosaicjson", r.values.url, r.config).assets_for_tile(
        *tile_position(r.values))


@api.get("/mosaicjson/point/{lonlat}/assets", "The files of the mosaic a point reads",
         params=(MOSAIC_URL, LONLAT, COORD_CRS), returns=ASSET_NAMES, tag="mosaicjson")
def mosaic_point_assets(r: Request):
    return open_reader("mosaicjson", r.values.url, r.config).assets_for_point(
        *point_of(r.values), coord_crs(r.values))


@api.get("/mosaicjson/bbox/{bbox}/assets", "The files of the mosaic a box reads (in degrees, "
         "or in coord_crs)", params=(MOSAIC_URL, BBOX, COORD_CRS), returns=ASSET_NAMES,
         tag="mosaicjson")
def mosaic_bbox_assets(r: Request):
    bounds, fmt = bbox_of(r.values)
    if fmt is not None:
        raise BadRequest("the assets of a box are a list of files: drop the extension "
                         f"(.{fmt.extension})")
    return open_reader("mosaicjson", r.values.url, r.config).assets_for_bbox(
        bounds, coord_crs(r.values))


@api.get("/stac/assets", "The GeoTIFF assets of the STAC item", params=(STAC_URL,),
         returns=Returns(("application/json",), "Asset names", schema="Names"), tag="stac")
def stac_assets(r: Request):
    return open_reader("stac", r.values.url, r.config).asset_names()


@api.get("/stac/asset_statistics", "Each asset's own statistics, by asset (as titiler)",
         params=(STAC_URL, *STAC_ASSET_SELECTION, *STATISTICS), returns=JSON, tag="stac")
def stac_asset_statistics(r: Request):
    v = r.values
    select = selection(v)
    source = open_reader("stac", v.url, r.config, select)
    return tiler.asset_statistics(source, select, statistics_options(v))


@api.post("/searches/register", "Keep a STAC search (a STAC API search body, with optional "
          "`metadata`: name, bounds, minzoom, maxzoom) and answer its id and links "
          "(titiler-pgstac's shape); the same search always gets the same id",
          params=(SEARCH_BODY,), returns=JSON, errors=(400, 404, 500, 502, 504), tag="catalog")
def register_search(r: Request):
    from chalicelib.readers import catalog
    search_id, _ = catalog.register(r.values.search, r.config)
    base = f"{r.base_url}/searches/{search_id}"
    return {"id": search_id, "links": [
        {"rel": "metadata", "type": "application/json", "href": f"{base}/info",
         "title": "The mosaic's info"},
        {"rel": "tilejson", "type": "application/json",
         "href": f"{base}/WebMercatorQuad/tilejson.json", "title": "TileJSON (WebMercatorQuad)"},
        {"rel": "wmts", "type": "application/xml",
         "href": f"{base}/WebMercatorQuad/WMTSCapabilities.xml", "title": "WMTS capabilities"},
        {"rel": "map", "type": "text/html", "href": f"{base}/WebMercatorQuad/map.html",
         "title": "The map viewer"}]}


@api.get("/{proxy+}", "Any other path: a JSON 404", returns=JSON, errors=(404,),
         listed=False)
def unknown_path(r: Request):
    raise NotFound("no such route; see /openapi.json (or /docs) for the API")


# ---- pure Lambda functions ---------------------------------------------------------------
# Chalice reads the stage's environment when it loads this file to deploy it, so a function
# whose bucket or queue a stage does not name is simply not deployed for that stage.
PIPELINE = settings.current()


def _bad_event(exc: TilerError) -> dict:
    """A bad event is answered, not retried: the caller gets what to fix."""
    logger.warning("bad event: %s", exc.message)
    return {"ok": False, "error": exc.message}


def _answer(function, event) -> dict:
    """``{"ok": true, ...}`` with what ``function(event, settings)`` returns, or the bad
    event's error."""
    try:
        return {"ok": True, **function(event, settings.current())}
    except TilerError as exc:
        return _bad_event(exc)


@app.lambda_function(name="seed")
def seed(event, context):
    """Plan a tile pyramid and queue it for `render` (event: chalicelib/jobs/tilecache.py)."""
    return _answer(tilecache.seed, event)


if PIPELINE.mosaic_prefix:
    @app.lambda_function(name="mosaic")
    def mosaic_builder(event, context):
        """Build a MosaicJSON from a list of GeoTIFFs or a prefix (chalicelib/jobs/mosaics.py)."""
        from chalicelib.jobs import mosaics
        return _answer(mosaics.create, event)


if PIPELINE.upload_bucket:
    @app.on_s3_event(bucket=PIPELINE.upload_bucket, events=["s3:ObjectCreated:*"],
                     prefix=PIPELINE.upload_prefix or None, name="cogify")
    def cogify_upload(event):
        """An upload under UPLOAD_PREFIX becomes a COG under COG_PREFIX."""
        return cogify.cogify(event.bucket, event.key, settings.current()).status


if PIPELINE.tile_queue:
    @app.on_sqs_message(queue=PIPELINE.tile_queue, batch_size=1, name="render")
    def render_batch(event):
        """Render and store each message's tiles; failures that may pass fail (and retry)
        the batch, the others are logged and dropped (chalicelib/jobs/tilecache.py)."""
        tilecache.render_messages([record.body for record in event], settings.current())
