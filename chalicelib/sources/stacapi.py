"""A STAC API (https://github.com/radiantearth/stac-api-spec) as a source of items.

The API is the one ``STAC_API_URL`` names: the operator's, never one a request names. A
search (:class:`Search`: collections, ids, bbox, datetime, a CQL2 filter, sortby) is sent as
``POST {api}/search``; its pages are followed through their ``next`` links (POST with the
body the link carries, or GET), which must stay on the API's own origin and path; no
redirect is followed. Every search is bounded: at most :data:`MAX_PAGES` pages and
:data:`SEARCH_SECONDS` seconds in all (504 past it, saying to narrow the search). What the
API answers is kept per warm container for ``SOURCE_TTL`` seconds. The API's own errors
reach the user: its 400 as a 400 with its message, 404 as 404, anything else as 502.

Items come back as the API's JSON; their asset hrefs are checked against the allow-list
when they are opened (:mod:`chalicelib.readers.stac`), like every other source.
"""

import json
import math
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from ..core.errors import BadRequest, NotFound, UpstreamError, UpstreamTimeout
from ..core.memo import Kept
from ..core.settings import Settings
from . import datasets
from .datasets import http_timeout
from .documents import MAX_DOCUMENT_BYTES, OPENER

#: Most pages one search follows, and most seconds it may take, all pages included.
MAX_PAGES = 10
SEARCH_SECONDS = 20.0
#: Items asked per page (an API may answer fewer).
PAGE_SIZE = 100
CACHE_SIZE = 256
#: The fields of a STAC search a :class:`Search` carries (the body of ``POST /search``).
FIELDS = ("collections", "ids", "bbox", "datetime", "filter", "filter-lang", "sortby",
          "query", "limit")
FILTER_LANGS = ("cql2-text", "cql2-json")
_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,256}")
_FIELD = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_DATE = r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2}))?"
_DATETIME = re.compile(rf"(?:{_DATE}|\.\.)?(?:/(?:{_DATE}|\.\.)?)?")

requests_made = [0]  # requests really sent to the API (tests, benchmarks)
_answers = Kept(CACHE_SIZE, lambda: datasets.clock())


@dataclass(frozen=True)
class Search:
    """A STAC search, checked: ``text`` is its body as canonical JSON (what identifies it),
    ``bbox`` its own box (tiles search inside it)."""

    text: str
    bbox: tuple[float, float, float, float] | None = None

    @property
    def body(self) -> dict:
        body: dict = json.loads(self.text)
        return body

    @property
    def collections(self) -> tuple[str, ...]:
        return tuple(self.body.get("collections", ()))


def search_from(fields: dict) -> Search:
    """A :class:`Search` from the fields of a STAC search body (``POST /search``'s, or the
    query of a collection's routes turned into one); :class:`BadRequest` naming what is
    wrong, or what this tiler does not take."""
    if not isinstance(fields, dict):
        raise BadRequest("a search is a JSON object (a STAC API search body)")
    unknown = sorted(set(fields) - set(FIELDS))
    if "intersects" in unknown:
        raise BadRequest("'intersects' is not taken: give a 'bbox', or a CQL2 filter with "
                         "s_intersects (its geometry is searched by the API)")
    if unknown:
        raise BadRequest(f"unknown search field(s): {', '.join(unknown)} (a search takes "
                         + ", ".join(FIELDS) + ")")
    body: dict = {name: check(name, fields[name]) for name, check in _CHECKS.items()
                  if fields.get(name) is not None}
    body.update(_filter(fields))
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    if len(text) > 64 * 1024:
        raise BadRequest("the search is larger than 64 KB")
    bbox = body.get("bbox")
    return Search(text, (bbox[0], bbox[1], bbox[2], bbox[3]) if bbox else None)


def _names(name: str, values) -> list:
    if not (isinstance(values, list) and values and len(values) <= 1000
            and all(isinstance(v, str) and _NAME.fullmatch(v) for v in values)):
        raise BadRequest(f"'{name}' is a list of names (letters, digits, '_', '-', '.', "
                         "':'), at most 1000")
    return list(dict.fromkeys(values))


def _bbox(name: str, bbox) -> list:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in bbox)):
        raise BadRequest(f"'{name}' is [west, south, east, north] in degrees")
    west, south, east, north = (float(v) for v in bbox)
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south < north <= 90):
        raise BadRequest(f"'{name}' is west,south,east,north in degrees: longitudes from "
                         "-180 to 180, south below north")
    return [west, south, east, north]


def _datetime(name: str, when) -> str:
    if not (isinstance(when, str) and when not in ("", "/") and _DATETIME.fullmatch(when)):
        raise BadRequest("'datetime' is an RFC 3339 instant or an interval "
                         "(2025-06-01T00:00:00Z, 2025-06-01T00:00:00Z/2025-07-01T00:00:00Z, "
                         "../2025-07-01T00:00:00Z)")
    return when


def _sortby(name: str, sortby) -> list:
    if not (isinstance(sortby, list) and 0 < len(sortby) <= 16 and all(
            isinstance(s, dict) and set(s) <= {"field", "direction"}
            and isinstance(s.get("field"), str) and _FIELD.fullmatch(s["field"])
            and s.get("direction", "asc") in ("asc", "desc") for s in sortby)):
        raise BadRequest("'sortby' is a list of {\"field\": name, \"direction\": "
                         "\"asc\"|\"desc\"} (in a query: sortby=-properties.eo:cloud_cover,"
                         "datetime)")
    return [{"field": s["field"], "direction": s.get("direction", "asc")} for s in sortby]


def _query(name: str, query) -> dict:
    if not isinstance(query, dict):
        raise BadRequest("'query' (the STAC query extension) is a JSON object")
    return query


def _limit(name: str, limit) -> int:
    if not (isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= 1000):
        raise BadRequest("'limit' (items per page of the search) is from 1 to 1000")
    return limit


_CHECKS = {"collections": _names, "ids": _names, "bbox": _bbox, "datetime": _datetime,
           "sortby": _sortby, "query": _query, "limit": _limit}


def _filter(fields: dict) -> dict:
    found, lang = fields.get("filter"), fields.get("filter-lang")
    if lang is not None and lang not in FILTER_LANGS:
        raise BadRequest("'filter-lang' is cql2-text or cql2-json")
    if found is None:
        if lang is not None:
            raise BadRequest("'filter-lang' without a 'filter'")
        return {}
    if isinstance(found, str):
        if lang == "cql2-json":
            raise BadRequest("a cql2-json 'filter' is a JSON object")
        if not found.strip() or len(found) > 16 * 1024:
            raise BadRequest("'filter' (CQL2 text) is empty or longer than 16 KB")
        return {"filter": found, "filter-lang": "cql2-text"}
    if isinstance(found, dict):
        if lang == "cql2-text":
            raise BadRequest("a cql2-text 'filter' is a string")
        return {"filter": found, "filter-lang": "cql2-json"}
    raise BadRequest("'filter' is CQL2 text (a string) or CQL2 JSON (an object)")


# ---- talking to the API -------------------------------------------------------------------

def api_url(config: Settings) -> str:
    """The STAC API's URL; 404 where the stage names none."""
    url = config.stac_api_url
    if not url:
        raise NotFound("this server has no STAC API: the operator names one with STAC_API_URL")
    if urlsplit(url).scheme not in ("http", "https"):
        raise BadRequest("STAC_API_URL must be an http(s) URL")
    return url


def _on_api(url: str, api: str) -> bool:
    """Whether ``url`` (a next link) is on the API itself: same origin, under its path."""
    link, base = urlsplit(url), urlsplit(api)
    return (link.scheme, link.netloc) == (base.scheme, base.netloc) and (
        link.path == base.path or link.path.startswith(base.path.rstrip("/") + "/"))


def _call(url: str, config: Settings, body: dict | None, deadline: float) -> dict:
    """One request to the API (POST ``body`` as JSON, else GET); its JSON object."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise UpstreamTimeout(f"the catalog's search took more than {SEARCH_SECONDS:g} s: "
                              "narrow the search (a smaller bbox, a shorter datetime, a filter)")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Accept": "application/geo+json, application/json",
                                              "Content-Type": "application/json"})
    requests_made[0] += 1
    try:
        with OPENER.open(request, timeout=min(http_timeout(config), left)) as answer:
            raw = answer.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise _api_error(exc) from None
    except (urllib.error.URLError, OSError) as exc:
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None),
                                                       TimeoutError):
            raise UpstreamTimeout("the catalog (STAC API) did not answer in time; try again, "
                                  "or narrow the search") from None
        raise UpstreamError("the catalog (STAC API) failed to answer; try again") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise UpstreamError("the catalog answered more than 32 MB for one page: ask for "
                            "fewer items per page (limit)")
    try:
        found = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        found = None
    if not isinstance(found, dict):
        raise UpstreamError("the catalog (STAC API) answered something that is not JSON")
    return found


def _api_error(exc: urllib.error.HTTPError):
    detail = ""
    try:
        answer = json.loads(exc.read(64 * 1024))
        if isinstance(answer, dict):
            detail = str(answer.get("description") or answer.get("detail") or "")
    except (ValueError, OSError, UnicodeDecodeError, RecursionError):
        pass
    detail = re.sub(r"\s+", " ", detail)[:300]
    said = f": {detail}" if detail else ""
    if 300 <= exc.code < 400:
        return UpstreamError("the catalog (STAC API) redirected; redirects are not followed "
                             "(check STAC_API_URL)")
    if exc.code == 404:
        return NotFound(f"the catalog has no such collection or item{said}")
    if exc.code in (400, 422):
        return BadRequest(f"the catalog refused the search{said}")
    return UpstreamError(f"the catalog (STAC API) answered {exc.code}{said}; try again")


def _cached(key: tuple, config: Settings, fetch):
    return _answers.get(key, config.source_ttl, fetch)


def items(search: Search, box: tuple | None, config: Settings,
          most: int) -> tuple[list[dict], bool]:
    """The items of ``search`` inside ``box`` (degrees; across 180 degrees when west > east)
    in the API's order, at most ``most``; and whether that is all of them."""
    api = api_url(config)
    boxes = [search.bbox] if box is None else _inside(box, search.bbox)
    if not boxes:
        return [], True
    found: list[dict] = []
    seen: set = set()
    complete = True
    for part in boxes:
        body = {**search.body, "bbox": list(part)} if part is not None else search.body
        body.setdefault("limit", min(PAGE_SIZE, most + 1))
        key = ("search", api, json.dumps(body, sort_keys=True), most)
        page_items, whole = _cached(key, config, lambda b=body: _search(api, b, config, most))
        complete = complete and whole
        for item in page_items:  # an item across 180 degrees comes in both halves
            marker = (item.get("collection"), item.get("id"))
            if marker not in seen:
                seen.add(marker)
                found.append(item)
    return found[:most], complete and len(found) <= most


def _search(api: str, body: dict, config: Settings, most: int) -> tuple[list[dict], bool]:
    """``body`` searched page after page until ``most`` items are passed, or the last."""
    deadline = time.monotonic() + SEARCH_SECONDS
    url, sent = f"{api}/search", body
    found: list[dict] = []
    following: dict | None = body
    if body.get("filter-lang") == "cql2-text":  # POST /search takes cql2-json only: GET
        url, following = f"{url}?{as_query(body)}", None
    for _ in range(MAX_PAGES):
        page = _call(url, config, following, deadline)
        features = page.get("features")
        if not isinstance(features, list):
            raise UpstreamError("the catalog's search answer has no 'features' list")
        found.extend(f for f in features if isinstance(f, dict))
        if len(found) > most:
            return found, False
        link = next((link for link in page.get("links") or () if isinstance(link, dict)
                     and link.get("rel") == "next" and isinstance(link.get("href"), str)),
                    None)
        if link is None or not features:
            return found, True
        if not _on_api(link["href"], api):
            raise UpstreamError("the catalog's next page is not on the catalog itself; not "
                                "followed")
        url = link["href"]
        if str(link.get("method", "GET")).upper() == "POST":
            given = link.get("body")
            given = given if isinstance(given, dict) else {}
            following = {**sent, **given} if link.get("merge") or not given else given
        else:
            following = None
    raise BadRequest(f"the search has more than {MAX_PAGES} pages of items here: zoom in or "
                     "narrow the search (a bbox, a datetime, a filter)")


def as_query(body: dict) -> str:
    """A search body as the query of ``GET /search`` (the STAC API's GET encoding)."""
    query = {}
    for name, value in body.items():
        if name in ("collections", "ids", "bbox"):
            query[name] = ",".join(str(v) for v in value)
        elif name == "sortby":
            query[name] = ",".join(("-" if s["direction"] == "desc" else "") + s["field"]
                                   for s in value)
        elif isinstance(value, (dict, list)):
            query[name] = json.dumps(value, separators=(",", ":"))
        else:
            query[name] = str(value)
    return urlencode(query)


def _inside(box: tuple, limit: tuple | None) -> list[tuple]:
    """``box`` (split at 180 degrees) clipped to ``limit``: the boxes to search."""
    west, south, east, north = box
    halves = [(west, south, east, north)] if west <= east else [
        (west, south, 180.0, north), (-180.0, south, east, north)]
    if limit is None:
        return halves
    result = []
    for lw, ls, le, ln in ([limit] if limit[0] <= limit[2] else
                           [(limit[0], limit[1], 180.0, limit[3]),
                            (-180.0, limit[1], limit[2], limit[3])]):
        for w, s, e, n in halves:
            clipped = (max(w, lw), max(s, ls), min(e, le), min(n, ln))
            if clipped[0] <= clipped[2] and clipped[1] <= clipped[3]:
                result.append(clipped)
    return result


def collection(collection_id: str, config: Settings) -> dict:
    """The collection's JSON (cached like searches)."""
    api = api_url(config)
    url = f"{api}/collections/{quote(collection_id, safe='')}"
    return _cached(("get", url), config,
                   lambda: _call(url, config, None, time.monotonic() + SEARCH_SECONDS))


def item_url(collection_id: str, item_id: str, config: Settings) -> str:
    """Where the API serves an item (what its relative asset hrefs resolve against)."""
    return (f"{api_url(config)}/collections/{quote(collection_id, safe='')}/items/"
            f"{quote(item_id, safe='')}")


def item(collection_id: str, item_id: str, config: Settings) -> tuple[dict, str]:
    """One item's JSON and its URL."""
    url = item_url(collection_id, item_id, config)
    return _cached(("get", url), config,
                   lambda: _call(url, config, None, time.monotonic() + SEARCH_SECONDS)), url


def clear(searches_only: bool = False) -> None:
    """Forget the API's answers (``searches_only``: its searches, not its collections and
    items)."""
    _answers.forget(lambda key: not searches_only or key[0] == "search")
