"""cogtiler: the HTTP API (a plain table of routes) over the engine in chalicelib/, and the
pure Lambda functions around it (cogify, seed, render) at the end of this file.

Each view parses the request, calls one ``chalicelib`` function and shapes the response.
Errors from the engine become JSON in exactly one place (:func:`_error`).
"""

import functools
import json
import logging
import traceback

from chalice import Chalice, Response
from chalice.app import CaseInsensitiveMapping

from chalicelib import cogify, colormaps, errors, settings, tilecache, tiler

logger = logging.getLogger("cogtiler")


app = Chalice(app_name="cogtiler")
app.api.binary_types = ["*/*"]
app.api.cors = True
app.debug = False  # never send tracebacks to clients

JSON = {"Content-Type": "application/json"}
FORMAT_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "tif", "npy")
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


def _error(status: int, code: str, message: str) -> Response:
    return Response(body={"Code": code, "Message": message}, status_code=status, headers=JSON)


def handled(view):
    """Map engine errors to JSON responses; unexpected ones to a logged, bare 500."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except errors.TilerError as exc:
            return _error(exc.status, exc.code, exc.message)
        except Exception:
            logger.error("unhandled error on %s\n%s", app.current_request.path,
                         traceback.format_exc())
            return _error(500, "InternalError", "the tiler failed unexpectedly; the error is "
                                                "logged. Please report it with the request URL")

    return wrapper


def _query() -> dict[str, list[str]]:
    params = app.current_request.query_params
    return {name: params.getlist(name) for name in params} if params else {}


def _query_url() -> str | None:
    params = app.current_request.query_params
    return params.get("url") if params else None


def _image(image: tiler.Image) -> Response:
    headers = {"Content-Type": image.media_type, **image.headers}
    max_age = settings.current().cache_max_age
    if max_age > 0:
        headers["Cache-Control"] = f"public, max-age={max_age}"
    return Response(body=image.body, status_code=200, headers=headers)


def _json(body: dict) -> Response:
    return Response(body=body, status_code=200, headers=JSON)


def _base_url(route: str) -> str:
    """Scheme, host and any API Gateway stage prefix (``/api``) in front of ``route``."""
    request = app.current_request
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "localhost")
    scheme = request.headers.get("x-forwarded-proto", "http").split(",")[0].strip()
    path = (request.context or {}).get("path", "")
    prefix = path[: -len(route)] if route and path.endswith(route) else ""
    return f"{scheme}://{host}{prefix}"


@app.route("/")
@handled
def viewer():
    # "/api/" or "/api" behind an API Gateway stage, "/" locally
    prefix = (app.current_request.context or {}).get("path", "/").rstrip("/")
    page = VIEWER.replace("__API_PREFIX__", json.dumps(prefix))
    return Response(body=page.encode("utf-8"), status_code=200,
                    headers={"Content-Type": "text/html; charset=utf-8"})


@app.route("/healthz")
@handled
def healthz():
    return _json({"status": "ok"})


@app.route("/colorMaps")
@handled
def colormap_names():
    return _json({"colorMaps": colormaps.names()})


@app.route("/cog/info")
@handled
def info():
    return _json(tiler.info(_query_url()))


@app.route("/cog/statistics")
@handled
def statistics():
    return _json(tiler.statistics(_query_url(), _query()))


@app.route("/cog/point/{lonlat}")
@handled
def point(lonlat):
    return _json(tiler.point(_query_url(), lonlat, _query()))


@app.route("/cog/tiles/{z}/{x}/{y}")
@handled
def tile(z, x, y):
    return _image(tiler.tile(_query_url(), z, x, y, _query()))


@app.route("/cog/tiles/WebMercatorQuad/{z}/{x}/{y}")
@handled
def tile_wmq(z, x, y):
    return _image(tiler.tile(_query_url(), z, x, y, _query()))


@app.route("/cog/tilejson.json")
@handled
def tilejson():
    return _json(tiler.tilejson(_query_url(), _query(), _base_url("/cog/tilejson.json")))


@app.route("/cog/WebMercatorQuad/tilejson.json")
@handled
def tilejson_wmq():
    route = "/cog/WebMercatorQuad/tilejson.json"
    return _json(tiler.tilejson(_query_url(), _query(), _base_url(route)))


@app.route("/cog/preview")
@handled
def preview():
    return _image(tiler.preview(_query_url(), None, _query()))


@app.route("/cog/preview/{size}")
@handled
def preview_sized(size):
    return _image(tiler.preview(_query_url(), None, _query(), size=size))


def _preview_with_format(fmt):
    # API Gateway path parts are literal or a whole {variable}: "preview.{fmt}" is not
    # allowed, so each format gets its own literal route.
    @handled
    def view():
        return _image(tiler.preview(_query_url(), fmt, _query()))

    view.__name__ = f"preview_{fmt}"
    app.route(f"/cog/preview.{fmt}")(view)


for _fmt in FORMAT_EXTENSIONS:
    _preview_with_format(_fmt)


@app.route("/cog/bbox/{bbox}")
@handled
def bbox(bbox):
    return _image(tiler.bbox(_query_url(), bbox, _query()))


@app.route("/cog/bbox/{bbox}/{size}")
@handled
def bbox_sized(bbox, size):
    return _image(tiler.bbox(_query_url(), bbox, _query(), size=size))



# ---- pure Lambda functions ---------------------------------------------------------------
# Chalice reads the stage's environment when it loads this file to deploy it, so a function
# whose bucket or queue a stage does not name is simply not deployed for that stage.
PIPELINE = settings.current()


def _bad_event(exc: errors.TilerError) -> dict:
    """A bad event is answered, not retried: the caller gets what to fix."""
    logger.warning("bad event: %s", exc.message)
    return {"ok": False, "error": exc.message}


@app.lambda_function(name="seed")
def seed(event, context):
    """Plan a tile pyramid and queue it for `render` (event: see chalicelib/tilecache.py)."""
    try:
        return {"ok": True, **tilecache.seed(event, settings.current())}
    except errors.TilerError as exc:
        return _bad_event(exc)


if PIPELINE.upload_bucket:
    @app.on_s3_event(bucket=PIPELINE.upload_bucket, events=["s3:ObjectCreated:*"],
                     prefix=PIPELINE.upload_prefix or None, name="cogify")
    def cogify_upload(event):
        """An upload under UPLOAD_PREFIX becomes a COG under COG_PREFIX."""
        return cogify.cogify(event.bucket, event.key, settings.current()).status


if PIPELINE.tile_queue:
    @app.on_sqs_message(queue=PIPELINE.tile_queue, batch_size=1, name="render")
    def render(event):
        """Render and store one batch of tiles; a failure fails (and retries) its message."""
        for record in event:
            try:
                tilecache.render(record.body, settings.current())
            except (ValueError, KeyError, TypeError) as exc:  # not a batch: retrying won't help
                logger.error("dropping a malformed render message: %s", exc)
