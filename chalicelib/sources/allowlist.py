"""Which sources may be opened, and the GDAL path for each.

A source is what the user puts in ``url=``: ``s3://bucket/key``, ``https://host/path``,
or a local path (absolute, or relative to the project directory). :func:`resolve` turns it
into the string GDAL opens, or raises :class:`~chalicelib.core.errors.SourceNotAllowed`.

Rules, in order:

1. Never opened, whatever the allow-list says: ``/vsi...`` strings, GDAL driver prefixes
   (``GTIFF_DIR:``, ``NETCDF:``...), ``file://`` and any other scheme, control characters,
   URLs with credentials, and http(s) hosts that are or resolve to loopback, link-local,
   private, multicast or reserved addresses (cloud metadata endpoints live there).
2. The source must fall under one ``ALLOWED_SOURCES`` prefix. Matching is by parts, not by
   string: same scheme, same host and port, and the path equal to the prefix's path or under
   it as a directory (``https://a.com/cogs`` allows ``/cogs/x.tif``, not ``/cogs-private/``).
   Local paths are resolved (``..`` and symlinks) before they are compared.

What the dataset layer adds: only the GeoTIFF driver may open a source, so a file that is
really a VRT (which can read other files) is refused as not a raster.
"""

import functools
import ipaddress
import os
import posixpath
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from ..core.errors import BadRequest, NotFound, SourceNotAllowed, TilerError
from ..core.settings import PROJECT_DIR

REMOTE_SCHEMES = ("s3", "https", "http")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-_]*):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_SOURCE_LENGTH = 2048
#: What stays as it is in a URL's path and query (RFC 3986's reserved characters and "%").
_URL_SAFE = "/:@!$&'()*+,;=?%~-._"


@dataclass(frozen=True)
class Source:
    """A checked source: ``scheme`` is s3/https/http/file, ``gdal_path`` what GDAL opens."""

    scheme: str
    host: str  # bucket for s3, host[:port] for http(s), "" for local files
    path: str  # key path (always starting with "/") or absolute local path
    gdal_path: str


def parse(url: str, project_dir=PROJECT_DIR, prefix: bool = False) -> Source:
    """Parse and normalise a source string, refusing what can never be opened.

    ``prefix``: parse an allow-list entry, which may name a whole bucket (``s3://bucket/``).

    >>> parse("s3://bucket/a/b.tif").gdal_path
    '/vsis3/bucket/a/b.tif'
    """
    if not url or not url.strip():
        raise BadRequest("missing 'url': give the source as s3://bucket/key, https://... "
                         "or an allowed local path")
    url = url.strip()
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in a JSON document)
        raise BadRequest("the source is not valid text (it holds a lone UTF-16 surrogate)") \
            from None
    if len(url) > MAX_SOURCE_LENGTH:
        raise BadRequest(f"'url' is longer than {MAX_SOURCE_LENGTH} characters")
    if _CONTROL.search(url):
        raise SourceNotAllowed("the source contains control characters")
    if url.lower().startswith("/vsi") or "/vsi" in url.lower().split("?")[0]:
        raise SourceNotAllowed("GDAL virtual file system paths (/vsi...) are not accepted; "
                               "use s3://, https:// or a plain path")
    match = _SCHEME.match(url)
    if match is None:
        return _local(url, project_dir)
    scheme = match.group(1).lower()
    if scheme not in REMOTE_SCHEMES:
        raise SourceNotAllowed(f"sources of the form '{scheme}:...' are not accepted; "
                               "use s3://bucket/key, https://host/path or a plain path")
    return _remote(url, scheme, prefix)


def _local(url: str, project_dir) -> Source:
    if "\\" in url:
        raise SourceNotAllowed("backslashes are not accepted in local paths")
    path = url if url.startswith("/") else os.path.join(str(project_dir), url)
    try:
        real = os.path.realpath(path)
    except OSError:  # a directory on the way may not be searched (/proc/1/root)
        raise SourceNotAllowed("this path cannot be resolved here (permission denied on "
                               "the way)") from None
    return Source(scheme="file", host="", path=real, gdal_path=real)


def _remote(url: str, scheme: str, prefix: bool = False) -> Source:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise BadRequest("'url' is not a valid URL") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise SourceNotAllowed("URLs with credentials (user@host) are not accepted")
    host = (parts.hostname or "").lower()
    if not host:
        raise BadRequest(f"'url' names no {'bucket' if scheme == 's3' else 'host'}")
    if parts.fragment:
        raise BadRequest("'url' must not contain a #fragment")
    raw_path = parts.path or "/"
    decoded = unquote(raw_path)
    if "\\" in decoded or any(seg in ("..", ".") for seg in decoded.split("/")):
        raise SourceNotAllowed("'.' and '..' path segments are not accepted in URLs")
    if _CONTROL.search(decoded):
        raise SourceNotAllowed("the source contains control characters")
    if scheme == "s3":
        if parts.query:
            raise BadRequest("s3:// sources take no query string")
        key = raw_path.lstrip("/")
        if not key and not prefix:
            raise BadRequest("an s3:// source needs a key: s3://bucket/path/to/file.tif")
        return Source("s3", host, "/" + key, f"/vsis3/{host}/{key}")
    bracketed = f"[{host}]" if ":" in host else host  # IPv6 literals keep their brackets
    netloc = bracketed if port is None else f"{bracketed}:{port}"
    # characters outside ASCII percent-encoded (as a browser sends them; existing escapes
    # kept): the URL GDAL and the document fetcher send is then plain ASCII
    raw_path = quote(raw_path, safe=_URL_SAFE)
    query = quote(parts.query, safe=_URL_SAFE)
    rebuilt = f"{scheme}://{netloc}{raw_path}" + (f"?{query}" if query else "")
    return Source(scheme, netloc, raw_path, f"/vsicurl/{rebuilt}")


def _under(path: str, prefix_path: str) -> bool:
    if prefix_path in ("", "/"):
        return True
    if prefix_path.endswith("/"):
        return path.startswith(prefix_path)
    return path == prefix_path or path.startswith(prefix_path + "/")


@functools.lru_cache(maxsize=256)
def _prefix(entry: str, project_dir) -> Source | None:
    """Parse one ALLOWED_SOURCES entry (same grammar as a source); None if malformed."""
    try:
        return parse(entry, project_dir, prefix=True)
    except TilerError:
        return None


def is_allowed(src: Source, allowed: tuple[str, ...], project_dir=PROJECT_DIR) -> bool:
    """Whether ``src`` lies under one of the ``allowed`` prefixes (same scheme and host)."""
    for entry in allowed:
        prefix = _prefix(entry, project_dir)
        if prefix is not None and (prefix.scheme, prefix.host) == (src.scheme, src.host) \
                and _under(src.path, prefix.path):
            return True
    return False


def _blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


_HOST_TTL = 300.0
_host_checked: dict[str, float] = {}


def check_host(host: str, unsafe_allow_hosts: tuple[str, ...] = ()) -> None:
    """Refuse http(s) hosts that are, or resolve to, non-public addresses.

    A host found public is remembered for a few minutes, so warm tiles pay no DNS lookup.
    """
    if host in unsafe_allow_hosts:
        return
    now = time.monotonic()
    if _host_checked.get(host, 0.0) > now:
        return
    name = urlsplit("//" + host).hostname or ""
    try:
        addresses = [ipaddress.ip_address(name)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError, OSError):
            raise NotFound(f"the host '{name}' cannot be resolved") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if any(_blocked_ip(ip) for ip in addresses):
        raise SourceNotAllowed(f"the host '{name}' is a private, loopback or link-local "
                               "address; such sources are never opened")
    if len(_host_checked) > 1024:
        _host_checked.clear()
    _host_checked[host] = now + _HOST_TTL


def resolve(url: str, allowed: tuple[str, ...], unsafe_allow_hosts: tuple[str, ...] = (),
            project_dir=PROJECT_DIR) -> Source:
    """Check ``url`` against the rules above and return it as a :class:`Source`."""
    src = parse(url, project_dir)
    if not is_allowed(src, allowed, project_dir):
        raise SourceNotAllowed("this source is not on the server's allow-list "
                               "(ALLOWED_SOURCES); ask the operator to add its prefix")
    if src.scheme in ("http", "https"):
        check_host(src.host, unsafe_allow_hosts)
    return src


def display_name(src: Source) -> str:
    """A name safe to show users: the URL for remote sources, the file name for local ones."""
    if src.scheme == "file":
        return posixpath.basename(src.path)
    if src.scheme == "s3":
        return f"s3://{src.host}{src.path}"
    return f"{src.scheme}://{src.host}{src.path}"
