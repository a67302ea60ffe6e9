"""What every response passes through, in one place, in order (:data:`STEPS`).

A step sees the :class:`Exchange` (the route, the request's method and headers, the settings,
what the view returned) and adjusts the response: caching headers, HEAD, CORS today;
conditional requests, Server-Timing and request logs belong here too. :func:`accept_any`
is the one step on the way in (Chalice's own middleware, before routing).
"""

from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import CaseInsensitiveMapping

from ..core.records import EncodedImage
from ..core.settings import Settings


class Exchange:
    """One request and its answer, as the middleware sees them: the request's ``method``
    and ``headers``, the ``config``, the ``response`` (a Chalice Response, adjusted in
    place) and the ``result`` the view returned (None for an error). A plain class: a
    dataclass costs a millisecond of every cold start to build."""

    __slots__ = ("method", "headers", "config", "response", "result")

    def __init__(self, method: str, headers: Mapping[str, str], config: Settings,
                 response: Any, result: object = None):
        self.method, self.headers, self.config = method, headers, config
        self.response, self.result = response, result


def accept_any(request, get_response):
    """HTTP's rule for a request without an ``Accept`` header: it accepts anything.

    With ``binary_types = ['*/*']`` (needed so that API Gateway decodes images for browsers,
    whose Accept header starts with image/avif), Chalice treats every response as binary and
    answers 400 when the request has no Accept header, even for JSON.
    """
    if request.headers.get("accept") is None:
        request.headers = CaseInsensitiveMapping({**dict(request.headers), "accept": "*/*"})
    return get_response(request)


def cache_control(exchange: Exchange) -> None:
    """``Cache-Control: public, max-age=CACHE_MAX_AGE`` on images (0: none)."""
    max_age = exchange.config.cache_max_age
    if isinstance(exchange.result, EncodedImage) and max_age > 0:
        exchange.response.headers["Cache-Control"] = f"public, max-age={max_age}"


def head(exchange: Exchange) -> None:
    """A HEAD request gets the GET's headers and no body."""
    if exchange.method == "HEAD":
        exchange.response.body = b""


def preflight_origin(origins: tuple[str, ...]) -> str | None:
    """The origin API Gateway's CORS preflight (OPTIONS) answers with: one fixed value, so
    the only allowed origin, or "*" when any or several are (each response then names the
    caller's, see :func:`cors`); None when no origin is allowed (no CORS at all)."""
    if not origins:
        return None
    return origins[0] if len(origins) == 1 and origins != ("*",) else "*"


def cors(exchange: Exchange) -> None:
    """With a list of allowed origins, a response names the caller's origin when it is on it
    (else the first, which the browser then refuses); any origin ("*") and none are left to
    Chalice's CORS headers."""
    origins = exchange.config.cors_origins
    if origins in ((), ("*",)):
        return
    origin = exchange.headers.get("origin")
    exchange.response.headers["Access-Control-Allow-Origin"] = \
        origin if origin in origins else origins[0]
    exchange.response.headers["Vary"] = "Origin"


#: The steps every response passes through, in order.
STEPS: tuple[Callable[[Exchange], None], ...] = (cache_control, head, cors)


def run(exchange: Exchange) -> Any:
    """The response after every step."""
    for step in STEPS:
        step(exchange)
    return exchange.response
