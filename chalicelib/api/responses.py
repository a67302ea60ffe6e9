"""What views return, as HTTP responses: JSON (never NaN), images, pages, errors."""

import json
import math
from dataclasses import dataclass

import numpy as np

from ..core.records import EncodedImage

JSON = "application/json"
#: Largest text (JSON, XML, HTML) answer: Lambda returns at most 6 MB, headers included.
MAX_TEXT_BYTES = 6 * 1000 * 1000 - 64 * 1024
#: Longest error message (a message quoting user input must stay short).
MAX_MESSAGE = 2000


@dataclass
class Page:
    """A text body other than JSON (HTML, XML)."""

    body: str
    media_type: str


def error_response(response_class, status: int, code: str, message: str, headers=None):
    """The one error shape: ``{"Code": ..., "Message": ...}``."""
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + "..."
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


def shape(response_class, result, media_type: str):
    """The response for what a view returned: an image, a page, or JSON (as the route's
    ``media_type`` when it is a JSON type: application/geo+json...)."""
    if isinstance(result, EncodedImage):
        return response_class(body=result.body, status_code=result.status,
                              headers={"Content-Type": result.media_type, **result.headers})
    if isinstance(result, Page):
        body, kind = result.body.encode("utf-8"), result.media_type
    else:
        body, kind = to_json(result), media_type if "json" in media_type else JSON
    if len(body) > MAX_TEXT_BYTES:
        return error_response(response_class, 400, "TooLarge", (
            f"the answer would be {len(body) / 1e6:.1f} MB, over the {MAX_TEXT_BYTES / 1e6:.1f} "
            "MB a Lambda function may return: ask for less (fewer assets or bands, fewer "
            "histogram bins, a smaller zoom range or fewer tile matrix sets)"))
    return response_class(body=body, status_code=200, headers={"Content-Type": kind})
