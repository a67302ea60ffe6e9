"""The JSON documents multi-file sources are described by: STAC items and MosaicJSON.

:func:`load` checks the document's URL against the allow-list (as for rasters), fetches it
from a local file, S3 or HTTP(S), parses it and keeps the result in a small LRU, so a warm
container fetches each document once (a local one again when the file changes, a remote one
after SOURCE_TTL seconds). Fetching is bounded: a size limit, GDAL_HTTP_TIMEOUT,
and no HTTP redirect is followed (a redirect could lead to a host the allow-list does not
name). :func:`href` resolves the links inside a document (asset hrefs, mosaic members)
relative to it; whatever they name is checked against the allow-list before it is opened.
"""

import json
import os
import posixpath
import re
import stat
import threading
import urllib.error
import urllib.request
import zlib
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urljoin

from ..core.errors import (
    BadRequest,
    NotARaster,
    NotFound,
    SourceNotAllowed,
    TilerError,
    UpstreamError,
    UpstreamTimeout,
)
from ..core.settings import Settings
from . import aws, datasets
from .allowlist import Source, resolve
from .datasets import http_timeout

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-_]*:")

#: Largest document read (a country-wide MosaicJSON is a few MB).
MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
CACHE_SIZE = 64
#: Most document bytes the cache holds (parsed, a document takes several times its size:
#: a 26 MB MosaicJSON about 200 MB). Entries are weighed, not counted: ``?v=1``, ``?v=2``...
#: variants of one big document must not fill the function's memory.
CACHE_BYTES = 64 * 1024 * 1024

#: key -> (parsed, bytes, when it was read: a remote one is read again after SOURCE_TTL)
_cache: "OrderedDict[tuple, tuple[object, int, float]]" = OrderedDict()
_lock = threading.Lock()
fetched = [0]  # how many documents were really fetched (tests)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx reaches the caller as an HTTPError


#: urllib without redirects (the STAC API client uses it too).
OPENER = urllib.request.build_opener(_NoRedirect)


def _too_big() -> TilerError:
    return BadRequest(f"the document is larger than {MAX_DOCUMENT_BYTES // 2**20} MB")


def _read_file(source: Source) -> bytes:
    try:
        info = os.stat(source.path)
    except OSError:
        raise NotFound("no such file: check the url") from None
    if not stat.S_ISREG(info.st_mode):
        raise NotFound("no such file: check the url (not a regular file)")
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise _too_big()
    with open(source.path, "rb") as file:
        return file.read(MAX_DOCUMENT_BYTES + 1)


def _read_s3(source: Source) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        answer = aws.client("s3").get_object(Bucket=source.host, Key=source.path[1:])
        if answer.get("ContentLength", 0) > MAX_DOCUMENT_BYTES:
            raise _too_big()
        return answer["Body"].read(MAX_DOCUMENT_BYTES + 1)
    except ClientError as exc:
        if aws.is_missing(exc):
            raise NotFound("no such file: check the url") from None
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("403", "AccessDenied", "Forbidden"):
            raise SourceNotAllowed("the storage refused access to the document (403): check "
                                   "that the tiler's role may read it") from None
        raise UpstreamError("the storage holding the document failed to answer; try again") \
            from None
    except BotoCoreError:
        raise UpstreamError("the storage holding the document failed to answer; try again") \
            from None


def _read_http(source: Source, config: Settings) -> bytes:
    url = source.gdal_path[len("/vsicurl/"):]
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*"})
    try:
        with OPENER.open(request, timeout=http_timeout(config)) as answer:
            return answer.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise BadRequest("the document's URL redirects elsewhere; give its final URL "
                             "(redirects are not followed)") from None
        if exc.code == 404:
            raise NotFound("no such file: check the url") from None
        if exc.code in (401, 403):
            raise SourceNotAllowed("the server holding the document refused access "
                                   f"({exc.code})") from None
        raise UpstreamError(f"the server holding the document answered {exc.code}; try "
                            "again") from None
    except TimeoutError:
        raise UpstreamTimeout("the server holding the document did not answer in time") \
            from None
    except (urllib.error.URLError, OSError):
        raise UpstreamError("the server holding the document failed to answer; try again") \
            from None


def fetch(source: Source, config: Settings) -> bytes:
    """The bytes of a checked source, at most :data:`MAX_DOCUMENT_BYTES`."""
    if source.scheme == "file":
        body = _read_file(source)
    elif source.scheme == "s3":
        body = _read_s3(source)
    else:
        body = _read_http(source, config)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise _too_big()
    fetched[0] += 1
    return body


def load[T](url: str | None, config: Settings, parse: Callable[[dict, Source], T],
         what: str) -> T:
    """The document at ``url`` (allow-listed), parsed by ``parse(json, source)`` and
    cached; ``what`` names it in errors ("a STAC item")."""
    source = resolve(url or "", config.allowed_sources, config.unsafe_allow_hosts)
    key: tuple = (source.gdal_path, what)
    if source.scheme == "file":
        try:
            info = os.stat(source.path)
        except OSError:
            raise NotFound("no such file: check the url") from None
        # a rewritten file is read again (also with its mtime put back: see datasets.get)
        key += (info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_size)
    with _lock:
        if key in _cache and (source.scheme == "file"
                              or datasets.clock() - _cache[key][2] < config.source_ttl):
            _cache.move_to_end(key)
            return _cache[key][0]  # type: ignore[return-value]  # cached by this parse
    read_at = datasets.clock()
    body = _gunzip(fetch(source, config))
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise NotARaster(f"the source is not {what}: it is not JSON") from None
    if not isinstance(document, dict):
        raise NotARaster(f"the source is not {what}: it is not a JSON object")
    parsed = parse(document, source)
    with _lock:
        _cache[key] = (parsed, len(body), read_at)
        _cache.move_to_end(key)
        total = sum(size for _, size, _ in _cache.values())
        while _cache and (len(_cache) > CACHE_SIZE or total > CACHE_BYTES):
            _, (_, size, _) = _cache.popitem(last=False)
            total -= size
    return parsed


def _gunzip(body: bytes) -> bytes:
    """A gzipped document (cogeo-mosaic writes ``mosaic.json.gz``) unzipped, bounded in size
    (a small zip bomb must not fill memory)."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflate.decompress(body, MAX_DOCUMENT_BYTES + 1)
    except zlib.error:
        raise NotARaster("the document is damaged gzip") from None
    if len(data) > MAX_DOCUMENT_BYTES or inflate.unconsumed_tail:
        raise _too_big()
    return data


def href(base: Source, link: str) -> str:
    """``link`` (absolute, or relative to the document at ``base``) as a source string
    for :func:`sources.resolve`. Never opened here."""
    if not isinstance(link, str) or not link.strip():
        raise NotARaster("a link in the document is empty")
    link = link.strip()
    if _SCHEME.match(link):
        return link  # absolute: checked as given
    if base.scheme == "file":
        return posixpath.normpath(posixpath.join(posixpath.dirname(base.path), link))
    if base.scheme == "s3":
        return "s3://" + base.host + posixpath.normpath(
            posixpath.join(posixpath.dirname(base.path), link))
    return urljoin(f"{base.scheme}://{base.host}{base.path}", link)


def clear() -> None:
    """Forget every cached document."""
    with _lock:
        _cache.clear()
