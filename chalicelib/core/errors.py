"""One exception family for the engine, each class carrying its HTTP status.

``app.py`` maps :class:`TilerError` to a JSON response in exactly one place. Messages are
meant for the user: they say what to fix and never contain a server path or a traceback.
"""


class TilerError(Exception):
    """Base class. ``status`` is the HTTP status code, ``code`` a stable error name."""

    status = 500
    code = "InternalError"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(TilerError):
    """A parameter is malformed or out of range (400)."""

    status = 400
    code = "BadRequest"


class SourceNotAllowed(TilerError):
    """The source is not on the allow-list, or can never be opened (403)."""

    status = 403
    code = "SourceNotAllowed"


class NotFound(TilerError):
    """No such file (404)."""

    status = 404
    code = "NotFound"


class TileOutsideBounds(NotFound):
    """The requested tile, point or area does not touch the data (404)."""

    code = "TileOutsideBounds"


class NotARaster(TilerError):
    """The file exists but is not a georeferenced raster we can read (422)."""

    status = 422
    code = "NotARaster"


class TooLarge(TilerError):
    """The requested output would exceed the response limit (400 - the caller must ask for less)."""

    status = 400
    code = "TooLarge"


class UpstreamError(TilerError):
    """The storage behind the source failed (502)."""

    status = 502
    code = "UpstreamError"


class UpstreamTimeout(UpstreamError):
    """The storage behind the source did not answer in time (504)."""

    status = 504
    code = "UpstreamTimeout"
