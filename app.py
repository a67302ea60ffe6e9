"""cogtiler: the HTTP API (a table of routes) over the engine in chalicelib/, and the pure
Lambda functions around it (cogify, seed, render) at the end of this file.

Each route is declared once (path, summary, parameters, what it answers); its view calls
one ``chalicelib`` function. Parsing, errors, response shaping, HEAD and 405s come with the
declaration (chalicelib/routes.py); /openapi.json is made from the same declarations.
"""

import json
import logging
from urllib.parse import urlencode

from chalice import Chalice, Response
from chalice.app import CaseInsensitiveMapping

from chalicelib import (cogify, colormaps, formats, openapi, settings, tilecache, tiler,
                        tilematrixsets, wmts)
from chalicelib.errors import NotFound, TilerError
from chalicelib.params import (BBOX, DOCUMENT_ONLY, FORMAT, IMAGE, LONLAT, SELECTION, SIZE,
                               STATISTICS, STYLE, TILE, TILEJSON, TMS_ID, URL, WMTS)
from chalicelib.params import (image_size, selection, statistics_options, style,
                               tile_address, tile_matrix_set_of)
from chalicelib.routes import SIMPLE_ERRORS, Page, Request, Returns, RouteTable

logger = logging.getLogger("cogtiler")

app = Chalice(app_name="cogtiler")
app.api.binary_types = ["*/*"]
app.api.cors = True
app.debug = False  # never send tracebacks to clients
api = RouteTable(app, Response)

JSON = Returns(("application/json",), "JSON")
IMAGE_OUT = Returns(formats.MEDIA_TYPES, "The image", headers=("Cache-Control",))
TILE_OUT = Returns(formats.MEDIA_TYPES, "The tile",
                   headers=("Cache-Control", "Content-Bbox", "Content-Crs"))
HTML = Returns(("text/html; charset=utf-8",), "An HTML page")
XML = Returns(("application/xml",), "OGC WMTS 1.0.0 capabilities")
with open(tiler.__file__.replace("tiler.py", "viewer.html"), encoding="utf-8") as _file:
    VIEWER = _file.read().replace("__DEFAULT_URL__", json.dumps(settings.DEMO_URL))


@app.middleware("http")
def missing_accept_means_any(request, get_response):
    """HTTP's rule for a request without an ``Accept`` header: it accepts anything.

    With ``binary_types = ['*/*']`` (needed so that API Gateway decodes images for browsers,
    whose Accept header starts with image/avif), Chalice treats every response as binary and
    answers 400 when the request has no Accept header, even for JSON.
    """
    if request.headers.get("accept") is None:
        request.headers = CaseInsensitiveMapping({**dict(request.headers), "accept": "*/*"})
    return get_response(request)


def _passthrough(r: Request) -> list[tuple[str, str]]:
    """The request's parameters that tile URLs carry on (all but the document's own)."""
    return [(k, v) for k, values in r.query.items() if k not in DOCUMENT_ONLY for v in values]


# ---- pages and lists ------------------------------------------------------------------------

@api.get("/", "Map viewer", returns=HTML, errors=SIMPLE_ERRORS, tag="pages")
def viewer(r: Request):
    return Page(VIEWER.replace("__API_PREFIX__", json.dumps(r.prefix)), HTML.media_types[0])


@api.get("/docs", "API documentation (Swagger UI)", returns=HTML, errors=SIMPLE_ERRORS,
         tag="pages")
def docs(r: Request):
    return Page(openapi.swagger_page(r.prefix), HTML.media_types[0])


@api.get("/openapi.json", "This API as an OpenAPI 3 document", returns=JSON,
         errors=SIMPLE_ERRORS, tag="pages")
def openapi_document(r: Request):
    return openapi.document(api.routes, r.prefix, r.config)


@api.get("/healthz", "Liveness check", returns=JSON, errors=SIMPLE_ERRORS, tag="pages")
def healthz(r: Request):
    return {"status": "ok"}


@api.get("/colorMaps", "Names of the colormaps", returns=JSON, errors=SIMPLE_ERRORS,
         tag="lists")
def colormap_names(r: Request):
    return {"colorMaps": colormaps.names()}


@api.get("/tileMatrixSets", "The tile matrix sets tiles can be cut from", returns=JSON,
         errors=SIMPLE_ERRORS, tag="lists")
def tile_matrix_sets(r: Request):
    return {"tileMatrixSets": [tilematrixsets.get(i).summary(r.base_url)
                               for i in tilematrixsets.IDS]}


@api.get("/tileMatrixSets/{tileMatrixSetId}", "A tile matrix set (OGC TileMatrixSet 2.0)",
         params=(TMS_ID,), returns=JSON, errors=(404, 500), tag="lists")
def tile_matrix_set(r: Request):
    return r.values.tileMatrixSetId.definition


# ---- one raster -----------------------------------------------------------------------------

@api.get("/cog/info", "What the raster is: bounds, CRS, size, bands, overviews, zooms",
         params=(URL,), returns=JSON, tag="cog")
def info(r: Request):
    return tiler.info(r.values.url, tile_matrix_set_of(r.values), r.config)


@api.get("/cog/info.geojson", "The raster's footprint as a GeoJSON Feature, with its info",
         params=(URL,), returns=Returns(("application/geo+json",), "GeoJSON"), tag="cog")
def info_geojson(r: Request):
    return tiler.info_geojson(r.values.url, tile_matrix_set_of(r.values), r.config)


@api.get("/cog/statistics", "Per-band statistics: min, max, mean, percentiles, histogram",
         params=(URL, *SELECTION, *STATISTICS), returns=JSON, tag="cog")
def statistics(r: Request):
    v = r.values
    return tiler.statistics(v.url, selection(v), statistics_options(v), r.config)


@api.get("/cog/point/{lonlat}", "Each band's value at a point",
         params=(URL, LONLAT, *SELECTION[:3]), returns=JSON, tag="cog")
def point(r: Request):
    return tiler.point(r.values.url, r.values.lonlat, selection(r.values), r.config)


_TILE_PARAMS = (URL, *TILE, *SELECTION, *STYLE)


@api.get("/cog/tiles/{z}/{x}/{y}", "A WebMercatorQuad map tile", returns=TILE_OUT, tag="cog",
         params=tuple(p for p in _TILE_PARAMS if p is not TMS_ID))
@api.get("/cog/tiles/{tileMatrixSetId}/{z}/{x}/{y}", "A map tile of any tile matrix set",
         params=_TILE_PARAMS, returns=TILE_OUT, tag="cog")
def tile(r: Request):
    v = r.values
    return tiler.tile(v.url, tile_address(v), selection(v), style(v), r.config)


_TILEJSON_PARAMS = (URL, *TILEJSON, *SELECTION, *STYLE)


@api.get("/cog/tilejson.json", "TileJSON 3.0.0 (WebMercatorQuad)", params=_TILEJSON_PARAMS,
         returns=JSON, tag="cog")
@api.get("/cog/{tileMatrixSetId}/tilejson.json", "TileJSON 3.0.0 for a tile matrix set",
         params=(TMS_ID, *_TILEJSON_PARAMS), returns=JSON, tag="cog")
def tilejson(r: Request):
    return tiler.tilejson(r.values.url, tile_matrix_set_of(r.values), r.values,
                          _passthrough(r), r.base_url, r.config)


_WMTS_PARAMS = (URL, *WMTS, *SELECTION, *STYLE)


@api.get("/cog/WMTSCapabilities.xml", "OGC WMTS 1.0.0 capabilities (WebMercatorQuad)",
         params=_WMTS_PARAMS, returns=XML, tag="cog")
@api.get("/cog/{tileMatrixSetId}/WMTSCapabilities.xml", "OGC WMTS 1.0.0 capabilities",
         params=(TMS_ID, *_WMTS_PARAMS), returns=XML, tag="cog")
def wmts_capabilities(r: Request):
    tms = tile_matrix_set_of(r.values)
    self_url = f"{r.base_url}/cog/{tms.id}/WMTSCapabilities.xml?" + urlencode(
        [(k, v) for k, values in r.query.items() for v in values])
    return Page(wmts.capabilities(r.values.url, tms, r.values, _passthrough(r), r.base_url,
                                  self_url, r.config), XML.media_types[0])


def _preview(fmt=None, sized=False):
    def view(r: Request):
        v = r.values
        size = image_size(v, fmt or getattr(v, "format", None), v.size if sized else None)
        return tiler.preview(v.url, size, selection(v), style(v), r.config)
    return view


_IMAGE_PARAMS = (URL, *IMAGE, *SELECTION, *STYLE)
api.get("/cog/preview", "The whole raster as an image", params=(*_IMAGE_PARAMS, FORMAT),
        returns=IMAGE_OUT, tag="cog")(_preview())
api.get("/cog/preview/{size}", "The whole raster at {width}x{height}[.{format}]",
        params=(SIZE, *_IMAGE_PARAMS), returns=IMAGE_OUT, tag="cog")(_preview(sized=True))
# API Gateway path parts are literal or a whole {variable}: "preview.{format}" is not
# allowed, so each format gets its own literal route.
for _fmt in formats.EXTENSIONS:
    api.get(f"/cog/preview.{_fmt}", f"The whole raster as {_fmt}", params=_IMAGE_PARAMS,
            returns=IMAGE_OUT, tag="cog")(_preview(formats.get(_fmt)))


def _bbox(sized=False):
    def view(r: Request):
        v = r.values
        bounds, fmt = v.bbox
        size = image_size(v, fmt, v.size if sized else None)
        return tiler.bbox(v.url, bounds, size, selection(v), style(v), r.config)
    return view


api.get("/cog/bbox/{bbox}", "A part of the raster, as an EPSG:4326 image",
        params=(BBOX, *_IMAGE_PARAMS), returns=IMAGE_OUT, tag="cog")(_bbox())
api.get("/cog/bbox/{bbox}/{size}", "A part of the raster at {width}x{height}.{format}",
        params=(BBOX, SIZE, *_IMAGE_PARAMS), returns=IMAGE_OUT, tag="cog")(_bbox(sized=True))


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


@app.lambda_function(name="seed")
def seed(event, context):
    """Plan a tile pyramid and queue it for `render` (event: see chalicelib/tilecache.py)."""
    try:
        return {"ok": True, **tilecache.seed(event, settings.current())}
    except TilerError as exc:
        return _bad_event(exc)


if PIPELINE.upload_bucket:
    @app.on_s3_event(bucket=PIPELINE.upload_bucket, events=["s3:ObjectCreated:*"],
                     prefix=PIPELINE.upload_prefix or None, name="cogify")
    def cogify_upload(event):
        """An upload under UPLOAD_PREFIX becomes a COG under COG_PREFIX."""
        return cogify.cogify(event.bucket, event.key, settings.current()).status


if PIPELINE.tile_queue:
    @app.on_sqs_message(queue=PIPELINE.tile_queue, batch_size=1, name="render")
    def render_batch(event):
        """Render and store one batch of tiles; a failure fails (and retries) its message."""
        for record in event:
            try:
                tilecache.render_batch(record.body, settings.current())
            except (ValueError, KeyError, TypeError) as exc:  # not a batch: retrying won't help
                logger.error("dropping a malformed render message: %s", exc)
