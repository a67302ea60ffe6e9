"""Routes declared once: path, summary, parameters, what they answer.

``app.py`` is a table of :meth:`RouteTable.get` declarations. Registering a route gives it,
with nothing more to remember: its parameters parsed from their declarations (a 400 naming
the parameter), the error mapping (engine errors to their status and JSON shape, anything
unexpected to a logged, bare 500), the response shaping (JSON, images with their cache
header, pages), HEAD, and a JSON 405 for other methods. The same declarations describe the
API in ``/openapi.json`` (:mod:`chalicelib.openapi`).

This module knows HTTP but not Chalice: it is handed the app object and calls its
``route`` method and ``current_request``.
"""

import json
import logging
import math
import re
import traceback
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from . import settings
from .errors import TilerError
from .models import EncodedImage
from .params import Param, parse
from .settings import Settings

logger = logging.getLogger("cogtiler")

JSON = "application/json"
#: Methods that reach the app on every route (API Gateway answers OPTIONS for CORS). All
#: but GET and HEAD get a JSON 405, instead of API Gateway's 403 for a method it lacks.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
ALLOWED = "GET, HEAD, OPTIONS"
#: What a data route may answer besides 200 (see errors.py).
DATA_ERRORS = (400, 403, 404, 422, 500, 502, 504)
SIMPLE_ERRORS = (500,)


@dataclass(frozen=True)
class Returns:
    """What a route answers with: a media type, or several (images), and for JSON the name
    of a schema in the OpenAPI document."""

    media_types: tuple[str, ...]
    description: str
    schema: str | None = None
    headers: tuple[str, ...] = ()


@dataclass
class Page:
    """A text body other than JSON (HTML, XML)."""

    body: str
    media_type: str


@dataclass
class Request:
    """What a view gets: the parsed parameters, the raw query, the settings, and where the
    API lives (``base_url``: scheme, host and any stage prefix; ``prefix``: that prefix)."""

    values: SimpleNamespace
    query: dict[str, list[str]]
    config: Settings
    base_url: str
    prefix: str


@dataclass(frozen=True)
class Route:
    path: str
    view: Callable[[Request], Any]
    summary: str
    params: tuple[Param, ...]
    returns: Returns
    errors: tuple[int, ...]
    description: str = ""
    tag: str = ""
    listed: bool = True  # in the OpenAPI document

    @property
    def reads_sources(self) -> bool:
        """Whether the route opens a source (it takes ``url``): what an API key guards."""
        return any(p.name == "url" for p in self.params)


def error_response(response_class, status: int, code: str, message: str, headers=None):
    return response_class(body=json.dumps({"Code": code, "Message": message}).encode(),
                          status_code=status, headers={"Content-Type": JSON, **(headers or {})})


def _jsonable(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def _finite(value):
    """``value`` with every non-finite float (not JSON) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(body) -> bytes:
    """JSON bytes; NaN and infinities are never sent (they are not JSON): numpy's become
    null on the way, Python's (a file's nodata of -inf...) in a second pass."""
    try:
        text = json.dumps(body, default=_jsonable, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(body), default=_jsonable, allow_nan=False,
                          separators=(",", ":"))
    return text.encode()


_PATH_PARAM = re.compile(r"\{(\w+)\+?\}")


def _prefix(template: str, uri_params: dict | None, context_path: str) -> str:
    """The part of the request's path in front of the route (an API Gateway stage such as
    ``/api``, a custom domain's base path), from the route and the full path."""
    actual = _PATH_PARAM.sub(lambda m: str((uri_params or {}).get(m.group(1), "")), template)
    if actual == "/":
        return context_path.rstrip("/")
    if actual and context_path.endswith(actual):
        return context_path[: -len(actual)]
    return ""


def preflight_origin(origins: tuple[str, ...]) -> str | None:
    """The origin API Gateway's CORS preflight (OPTIONS) answers with: one fixed value, so
    the only allowed origin, or "*" when any or several are (each response then names the
    caller's, see :func:`_cors`); None when no origin is allowed (no CORS at all)."""
    if not origins:
        return None
    return origins[0] if len(origins) == 1 and origins != ("*",) else "*"


def _cors(response, origin: str | None, origins: tuple[str, ...]) -> None:
    """With a list of allowed origins, a response names the caller's origin when it is on it
    (else the first, which the browser then refuses); any origin ("*") and none are left to
    Chalice's CORS headers."""
    if origins in ((), ("*",)):
        return
    response.headers["Access-Control-Allow-Origin"] = origin if origin in origins else origins[0]
    response.headers["Vary"] = "Origin"


class RouteTable:
    """The API's routes, registered on a Chalice app as they are declared."""

    def __init__(self, app, response_class, config: Settings):
        """``config``: the settings the app is loaded with (a deployed stage's), which decide
        whether routes need an API key and which origins CORS admits."""
        self.app = app
        self.response_class = response_class
        self.routes: list[Route] = []
        self.api_key_required = config.api_key_required

    def get(self, path: str, summary: str, *, params: tuple[Param, ...] = (),
            returns: Returns, errors: tuple[int, ...] = DATA_ERRORS, description: str = "",
            tag: str = "", listed: bool = True):
        """Declare a GET route (HEAD comes with it); use as a decorator on its view."""
        def register(view):
            route = Route(path, view, summary, tuple(params), returns, tuple(errors),
                          description, tag, listed)
            self.routes.append(route)
            handler = self._handler(route)
            handler.__name__ = "route" + re.sub(r"\W+", "_", path).rstrip("_")
            self.app.route(path, methods=METHODS, content_types=["*/*"],
                           api_key_required=self.api_key_required and route.reads_sources)(
                handler)
            return view
        return register

    def _request(self, route: Route, path_params: dict, config: Settings) -> Request:
        current = self.app.current_request
        raw = current.query_params
        query = {name: raw.getlist(name) for name in raw} if raw else {}
        values = parse(route.params, query, path_params, config)
        headers = current.headers
        host = headers.get("x-forwarded-host") or headers.get("host", "localhost")
        scheme = headers.get("x-forwarded-proto", "http").split(",")[0].strip()
        prefix = _prefix(route.path, current.uri_params, (current.context or {}).get(
            "path", ""))
        return Request(values, query, config, f"{scheme}://{host}{prefix}", prefix)

    def _handler(self, route: Route):
        def handler(**path_params):
            method = self.app.current_request.method
            if method not in ("GET", "HEAD"):
                return error_response(self.response_class, 405, "MethodNotAllowed",
                                      f"{method} is not supported here; use GET",
                                      {"Allow": ALLOWED})
            config = settings.current()
            try:
                request = self._request(route, path_params, config)
                response = self._shape(route.view(request), route, request.config)
            except TilerError as exc:
                response = error_response(self.response_class, exc.status, exc.code,
                                          exc.message)
            except Exception:
                logger.error("unhandled error on %s\n%s", route.path, traceback.format_exc())
                response = error_response(self.response_class, 500, "InternalError",
                                          "the tiler failed unexpectedly; the error is logged. "
                                          "Please report it with the request URL")
            if method == "HEAD":
                response.body = b""
            _cors(response, self.app.current_request.headers.get("origin"), config.cors_origins)
            return response
        return handler

    def _shape(self, result, route: Route, config: Settings):
        if isinstance(result, EncodedImage):
            headers = {"Content-Type": result.media_type, **result.headers}
            if config.cache_max_age > 0:
                headers["Cache-Control"] = f"public, max-age={config.cache_max_age}"
            return self.response_class(body=result.body, status_code=result.status,
                                       headers=headers)
        if isinstance(result, Page):
            return self.response_class(body=result.body.encode("utf-8"), status_code=200,
                                       headers={"Content-Type": result.media_type})
        media_type = route.returns.media_types[0]  # application/json, application/geo+json...
        return self.response_class(body=to_json(result), status_code=200,
                                   headers={"Content-Type": media_type if "json" in media_type
                                            else JSON})
