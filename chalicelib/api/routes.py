"""Routes declared once: method, path, summary, parameters, what they answer.

``app.py`` is a table of :meth:`RouteTable.get` and :meth:`RouteTable.post` declarations.
Registering a route gives it, with nothing more to remember: its parameters parsed from
their declarations (query, path, or the request body for POST; a 400 naming the parameter),
the error mapping (engine errors to their status and JSON shape, anything unexpected to a
logged, bare 500), the response shaping (:mod:`.responses`), the middleware every response
passes through (:mod:`.middleware`: caching headers, HEAD, CORS), and a JSON 405 for
methods the path does not take. The same declarations describe the API in
``/openapi.json`` (:mod:`.openapi`).

This module knows HTTP but not Chalice: it is handed the app object and calls its
``route`` method and ``current_request``.
"""

import logging
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core import budget, settings
from ..core.errors import BadRequest, TilerError
from ..core.settings import Settings
from . import middleware
from .params import Param, Values, check_names, parse
from .responses import error_response, shape

logger = logging.getLogger("cogtiler")

#: Methods that reach the app on every route (API Gateway answers OPTIONS for CORS). Those
#: a path does not take get a JSON 405, instead of API Gateway's 403 for a method it lacks.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
#: What a data route may answer besides 200 (see core/errors.py).
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
class Request:
    """What a view gets: the parsed parameters, the raw query, the settings, and where the
    API lives (``base_url``: scheme, host and any stage prefix; ``prefix``: that prefix)."""

    values: Values
    query: dict[str, list[str]]
    config: Settings
    base_url: str
    prefix: str
    #: The request's Accept header ("" when none).
    accept: str = ""

    def wants_json(self) -> bool:
        """Whether the client asks for JSON rather than a page (``f=json``, or an Accept
        header that names JSON before HTML), as titiler's landing routes decide."""
        f = (self.query.get("f") or [""])[0].lower()
        if f in ("json", "html"):
            return f == "json"
        accept = self.accept.lower()
        json_at, html_at = accept.find("json"), accept.find("text/html")
        return json_at >= 0 and (html_at < 0 or json_at < html_at)


@dataclass(frozen=True)
class Route:
    """One declared route: what :meth:`RouteTable.get` / :meth:`RouteTable.post` record."""

    path: str
    view: Callable[[Request], Any]
    summary: str
    params: tuple[Param, ...]
    returns: Returns
    errors: tuple[int, ...]
    description: str = ""
    tag: str = ""
    listed: bool = True  # in the OpenAPI document
    method: str = "GET"
    #: A page that keeps its state in the query (the viewer): any name is taken.
    any_query: bool = False

    @property
    def reads_sources(self) -> bool:
        """Whether the route opens a source (it takes ``url``): what an API key guards."""
        return any(p.name == "url" for p in self.params)

    @property
    def body(self) -> Param | None:
        """The parameter the request body is, for a POST route."""
        return next((p for p in self.params if p.where == "body"), None)


_PATH_PARAM = re.compile(r"\{(\w+)\+?\}")
_VARIABLE = re.compile(r"\{(\w+)(\+?)\}")


def _prefix(template: str, uri_params: dict | None, context_path: str) -> str:
    """The part of the request's path in front of the route (an API Gateway stage such as
    ``/api``, a custom domain's base path), from the route and the full path."""
    actual = _PATH_PARAM.sub(lambda m: str((uri_params or {}).get(m.group(1), "")), template)
    if actual == "/":
        return context_path.rstrip("/")
    if actual and context_path.endswith(actual):
        return context_path[: -len(actual)]
    return ""


class RouteTable:
    """The API's routes, registered on a Chalice app as they are declared: one Chalice
    route per path, which answers each method with that method's declaration."""

    def __init__(self, app, response_class, config: Settings):
        """``config``: the settings the app is loaded with (a deployed stage's), which decide
        whether routes need an API key."""
        self.app = app
        self.response_class = response_class
        self.routes: list[Route] = []
        self.api_key_required = config.api_key_required
        self._by_path: dict[str, dict[str, Route]] = {}
        #: The variable name of each resource's path-variable child, and the resource path
        #: each declared path is registered at (see :meth:`_resource`).
        self._variables: dict[str, str] = {}
        self._resources: dict[str, str] = {}
        app.middleware("http")(middleware.accept_any)

    def get(self, path: str, summary: str, **declaration):
        """Declare a GET route (HEAD comes with it); use as a decorator on its view."""
        return self._declare("GET", path, summary, **declaration)

    def post(self, path: str, summary: str, **declaration):
        """Declare a POST route; its ``where="body"`` parameter is the request body."""
        return self._declare("POST", path, summary, **declaration)

    def _declare(self, method: str, path: str, summary: str, *, params: tuple[Param, ...] = (),
                 returns: Returns, errors: tuple[int, ...] = DATA_ERRORS,
                 description: str = "", tag: str = "", listed: bool = True,
                 any_query: bool = False):
        def register(view):
            route = Route(path, view, summary, tuple(params), returns, tuple(errors),
                          description, tag, listed, method, any_query)
            if (route.body is not None) != (method == "POST"):
                raise ValueError(f"{method} {path}: a POST route takes one body parameter, "
                                 "a GET route none")
            methods = self._by_path.setdefault(path, {})
            if method in methods:
                raise ValueError(f"{method} {path} is declared twice")
            if methods and any(r.reads_sources != route.reads_sources
                               for r in methods.values()):
                raise ValueError(f"{path}: every method of a path reads sources, or none")
            methods[method] = route
            self.routes.append(route)
            if len(methods) == 1:
                self._register(path, route.reads_sources)
            return view
        return register

    def _resource(self, path: str) -> tuple[str, dict[str, str]]:
        """The resource ``path`` is registered at, and its variables' declared names by
        their names there. API Gateway allows one variable child per resource ("A sibling
        ({z}) of this resource already has a variable path part"), so a variable takes
        the name its position already has: ``/cog/tiles/{z}/{x}/{y}`` beside
        ``/cog/tiles/{tileMatrixSetId}/{z}/{x}/{y}`` is registered as
        ``/cog/tiles/{tileMatrixSetId}/{z}/{x}``, and its view still gets z, x and y."""
        parts: list[str] = []
        names: dict[str, str] = {}
        for part in path.strip("/").split("/"):
            match = _VARIABLE.fullmatch(part)
            if match is None:
                parts.append(part)
                continue
            name = self._variables.setdefault("/" + "/".join(parts), match.group(1))
            if name in names:
                raise ValueError(f"{path} would name two of its variables {{{name}}} as an API "
                                 "Gateway resource: declare the longer route first")
            names[name] = match.group(1)
            parts.append("{" + name + match.group(2) + "}")
        resource = "/" + "/".join(parts)
        if resource in self._resources.values():
            raise ValueError(f"{path} is the same API Gateway resource as another route "
                             f"({resource})")
        return resource, names

    def resource_of(self, path: str) -> str:
        """The API Gateway resource a declared path is registered at."""
        return self._resources[path]

    def _register(self, path: str, reads_sources: bool) -> None:
        resource, names = self._resource(path)
        self._resources[path] = resource
        handler = self._handler(self._by_path[path], names)
        handler.__name__ = "route" + re.sub(r"\W+", "_", path).rstrip("_")
        self.app.route(resource, methods=METHODS, content_types=["*/*"],
                       api_key_required=self.api_key_required and reads_sources)(handler)

    def _request(self, route: Route, path_params: dict, config: Settings) -> Request:
        current = self.app.current_request
        raw = current.query_params
        query = {name: raw.getlist(name) for name in raw} if raw else {}
        body = None
        if route.body is not None:
            try:
                body = (current.raw_body or b"").decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("the request body is not UTF-8 text") from None
        if not route.any_query:
            check_names(route.params, query, route.path)
        values = parse(route.params, query, path_params, config, body)
        headers = current.headers
        host = headers.get("x-forwarded-host") or headers.get("host", "localhost")
        scheme = headers.get("x-forwarded-proto", "http").split(",")[0].strip()
        prefix = _prefix(self._resources[route.path], current.uri_params,
                         (current.context or {}).get("path", ""))
        return Request(values, query, config, f"{scheme}://{host}{prefix}", prefix,
                       headers.get("accept", ""))

    def _handler(self, methods: dict[str, Route], names: dict[str, str]):
        def handler(**registered):
            path_params = {names[name]: value for name, value in registered.items()}
            current = self.app.current_request
            method = current.method
            config = settings.current()
            route = methods.get("GET" if method == "HEAD" else method)
            result = None
            if route is None:
                taken = [m for m in ("GET", "POST") if m in methods]
                allowed = ", ".join((["GET", "HEAD"] if "GET" in methods else [])
                                    + (["POST"] if "POST" in methods else []) + ["OPTIONS"])
                response = error_response(self.response_class, 405, "MethodNotAllowed",
                                          f"{method} is not supported here; use "
                                          + " or ".join(taken), {"Allow": allowed})
            else:
                try:
                    with budget.scope():  # one memory budget per request
                        request = self._request(route, path_params, config)
                        result = route.view(request)
                        response = shape(self.response_class, result,
                                         route.returns.media_types[0])
                except TilerError as exc:
                    result = None
                    response = error_response(self.response_class, exc.status, exc.code,
                                              exc.message)
                except Exception:
                    result = None
                    logger.error("unhandled error on %s %s\n%s", method, route.path,
                                 traceback.format_exc())
                    response = error_response(self.response_class, 500, "InternalError",
                                              "the tiler failed unexpectedly; the error is "
                                              "logged. Please report it with the request URL")
            return middleware.run(middleware.Exchange(method, current.headers, config,
                                                      response, result))
        return handler
