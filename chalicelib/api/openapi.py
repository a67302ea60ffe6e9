"""The OpenAPI 3 document of the API, made from the route and parameter declarations.

Nothing here is written twice: each route's method, path, summary, parameters (with their
types, limits, enums and defaults; a POST route's body as its ``requestBody``), responses and
media types come from ``app.py``'s table and ``params``; the error shape from ``core.errors``.
``/openapi.json`` serves it, ``/docs`` shows it.
"""

import html
import json
import re

from ..core import errors
from ..core.settings import Settings
from .routes import Route

VERSION = "1.0.0"

_ERRORS = {
    400: "A parameter is malformed or out of range (`BadRequest`), or the image would "
         "exceed the response limit (`TooLarge`)",
    403: "The source is not on the allow-list or can never be opened (`SourceNotAllowed`)",
    404: "No such file, tile matrix set or route, or the tile/point/area is outside the data "
         "(`NotFound`, `TileOutsideBounds`)",
    422: "The file is not a georeferenced raster this tiler can read (`NotARaster`)",
    500: "A bug: logged with its traceback, answered without one (`InternalError`)",
    502: "The storage behind the source failed (`UpstreamError`)",
    504: "The storage behind the source did not answer in time (`UpstreamTimeout`)",
}
_JSON_SCHEMAS = {
    "Error": {
        "type": "object", "required": ["Code", "Message"], "additionalProperties": False,
        "properties": {"Code": {"type": "string", "example": errors.BadRequest.code},
                       "Message": {"type": "string",
                                   "description": "What went wrong and what to do"}}},
    "Names": {"type": "array", "items": {"type": "string"}},
}
_HEADERS = {
    "Cache-Control": "`public, max-age=N` (CACHE_MAX_AGE) on successful images",
    "Content-Bbox": "The tile's bounds in the tile matrix set's CRS: left,bottom,right,top",
    "Content-Crs": "The tile matrix set's CRS, as `<URI>`",
}


def _operation_id(method: str, path: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w]
    verb = method.lower()
    return verb + "".join(w[:1].upper() + w[1:] for w in words) if words else verb + "Root"


def _request_body(param, config: Settings) -> dict:
    media: dict = {"schema": param.schema(config)}
    if param.example is not None:
        media["example"] = param.example
    return {"required": param.required, "description": param.description,
            "content": {param.media_type: media}}


def _parameter(param, config: Settings) -> dict:
    result = {"name": param.name, "in": param.where, "required": param.required,
              "description": param.description, "schema": param.schema(config)}
    if param.repeat:
        result.update(style="form", explode=True)
    if param.example is not None:
        result["example"] = param.example
    return result


def _responses(route: Route) -> dict:
    returns = route.returns
    if len(returns.media_types) == 1 and "json" in returns.media_types[0]:
        schema = ({"$ref": f"#/components/schemas/{returns.schema}"} if returns.schema
                  else {"type": "object"})
        content = {returns.media_types[0]: {"schema": schema}}
    else:
        content = {media_type: {"schema": {"type": "string", "format": "binary"}
                                if media_type.startswith(("image/", "application/x-binary"))
                                else {"type": "object"} if "json" in media_type
                                else {"type": "string"}}
                   for media_type in returns.media_types}
    ok = {"description": returns.description, "content": content}
    if returns.headers:
        ok["headers"] = {name: {"description": _HEADERS[name], "schema": {"type": "string"}}
                         for name in returns.headers}
    responses = {"200": ok}
    if any(p.name == "outside" for p in route.params) and any(
            m.startswith("image/") for m in returns.media_types):
        responses["204"] = {"description": "The tile is outside the data, and `outside=204` "
                                           "was asked: no content"}
    for status in route.errors:
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    return responses


def _component_names(routes) -> dict[int, str]:
    """A name in components/parameters for each declared parameter (two declarations of the
    same name, such as tile_format with and without a default, get distinct names)."""
    names, taken = {}, set()
    for route in routes:
        for param in route.params:
            if param.where != "body" and id(param) not in names:
                name, n = param.name, 2
                while name in taken:
                    name, n = f"{param.name}_{n}", n + 1
                names[id(param)] = name
                taken.add(name)
    return names


def _build(routes: tuple[Route, ...], config: Settings) -> dict:
    paths: dict[str, dict] = {}
    listed = [r for r in routes if r.listed]
    names = _component_names(listed)
    components = {}
    for route in listed:
        for param in route.params:
            if param.where != "body":
                components[names[id(param)]] = _parameter(param, config)
    for route in listed:
        operation = {"operationId": _operation_id(route.method, route.path),
                     "summary": route.summary,
                     "parameters": [{"$ref": f"#/components/parameters/{names[id(p)]}"}
                                    for p in route.params if p.where != "body"],
                     "responses": _responses(route)}
        if route.body is not None:
            operation["requestBody"] = _request_body(route.body, config)
        if route.description:
            operation["description"] = route.description
        if route.tag:
            operation["tags"] = [route.tag]
        if config.api_key_required and route.reads_sources:
            operation["security"] = [{"api_key": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "cogtiler", "version": VERSION,
                 "description": "Dynamic raster tiles, metadata, statistics, previews and "
                                "point values from Cloud-Optimized GeoTIFFs. Every error is "
                                "JSON `{\"Code\": ..., \"Message\": ...}`."},
        "paths": paths,
        "components": {
            "parameters": components,
            "schemas": _JSON_SCHEMAS,
            "responses": {f"Error{status}": {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            } for status, text in _ERRORS.items()},
            **({"securitySchemes": {"api_key": {
                "type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "A key of the stage's API Gateway usage plan (API_KEY_REQUIRED)"}}}
               if config.api_key_required else {}),
        },
    }


_built: dict[tuple, str] = {}  # (routes, their count, settings) -> the document as JSON


def document(routes: list[Route], prefix: str, config: Settings) -> dict:
    """The document for ``routes``, with the server at ``prefix`` (an API Gateway stage);
    built once per warm container."""
    key = (id(routes), len(routes), config)
    if key not in _built:
        _built[key] = json.dumps(_build(tuple(routes), config))
    document = json.loads(_built[key])
    document["servers"] = [{"url": prefix or "/"}]
    return document


def swagger_page(prefix: str) -> str:
    """Swagger UI (from a CDN) on this API's document."""
    spec = json.dumps(f"{prefix}/openapi.json").replace("<", "\\u003c")
    link = html.escape(f"{prefix}/openapi.json")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cogtiler API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="swagger-ui"><p>Loading Swagger UI from cdn.jsdelivr.net; the API document
itself is at <a href="{link}">openapi.json</a>.</p></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>window.onload = () => {{ if (window.SwaggerUIBundle) SwaggerUIBundle({{url: {spec},
dom_id: "#swagger-ui"}}); }};</script></body></html>
"""
