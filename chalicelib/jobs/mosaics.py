"""Building MosaicJSON documents (the ``mosaic`` Lambda function and ``make mosaic``).

:func:`build` makes a MosaicJSON 0.0.3 document from a list of GeoTIFFs (each allow-listed
and opened once); :func:`create` is the function's event handler (files listed, or found
under an S3 prefix or a folder), :func:`write` stores a document without overwriting one.
Reading a mosaic is :mod:`chalicelib.readers.mosaic`'s.
"""

import json
import math
import os
import re

import mercantile

from ..core.errors import BadRequest, NotFound
from ..core.geo import MAX_LAT, lon_spans
from ..core.settings import Settings
from ..grids import tilematrixsets
from ..readers.cog import COGReader
from ..readers.mosaic import member_error
from ..readers.pool import read_all
from ..sources import aws
from ..sources.allowlist import resolve


def build(urls: list[str], config: Settings, quadkey_zoom: int | None = None,
          name: str | None = None) -> dict:
    """A MosaicJSON 0.0.3 document over ``urls`` (each allow-listed and opened once):
    zooms from the files (minzoom: the coarsest file's, maxzoom: the finest's), each file
    listed under every quadkey its bounds touch, in the order given."""
    if not urls:
        raise BadRequest("a mosaic needs at least one file")
    tms = tilematrixsets.get("WebMercatorQuad")
    readers = []
    for url, reader, error in read_all(urls, lambda u: COGReader.open(u, config)):
        if error is not None:
            raise member_error(url, error)
        readers.append((url, reader))
    zooms = [r.zoom_range(tms) for _, r in readers]
    minzoom, maxzoom = min(z[0] for z in zooms), max(z[1] for z in zooms)
    quadkey_zoom = minzoom if quadkey_zoom is None else quadkey_zoom
    if not 0 <= quadkey_zoom <= maxzoom:
        raise BadRequest(f"quadkey_zoom must be between 0 and the mosaic's maxzoom "
                         f"({maxzoom})")
    tiles: dict[str, list[str]] = {}
    west = south = math.inf
    east = north = -math.inf
    for url, reader in readers:
        w, s, e, n = reader.geographic_bounds
        for sw, se in lon_spans(w, e):
            west, east = min(west, sw), max(east, se)
            for t in mercantile.tiles(sw, max(s, -MAX_LAT), se, min(n, MAX_LAT),
                                      [quadkey_zoom]):
                tiles.setdefault(mercantile.quadkey(t), []).append(url)
        south, north = min(south, s), max(north, n)
    bounds = [west, south, east, north]
    return {"mosaicjson": "0.0.3", "name": name or "mosaic", "version": "1.0.0",
            "minzoom": minzoom, "maxzoom": maxzoom, "quadkey_zoom": quadkey_zoom,
            "bounds": bounds, "center": [(west + east) / 2, (south + north) / 2, minzoom],
            "tiles": dict(sorted(tiles.items()))}


#: Most files one MosaicJSON is built from: each is opened (a header read); 2,000 took 66 s
#: here, against the ``mosaic`` function's 120 s.
MAX_BUILD_FILES = 1_500
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


def list_prefix(prefix: str, config: Settings) -> list[str]:
    """The GeoTIFFs under an allowed ``s3://bucket/prefix/`` or local folder, sorted."""
    source = resolve(prefix, config.allowed_sources, config.unsafe_allow_hosts)
    if source.scheme == "file":
        if not os.path.isdir(source.path):
            raise NotFound("no such folder: check the prefix")
        names = sorted(n for n in os.listdir(source.path) if n.lower().endswith((".tif",
                                                                                ".tiff")))
        return [os.path.join(source.path, n) for n in names][:MAX_BUILD_FILES + 1]
    if source.scheme != "s3":
        raise BadRequest("a prefix is s3://bucket/prefix/ or a local folder; list https "
                         "files in 'urls'")
    pages = aws.client("s3").get_paginator("list_objects_v2").paginate(
        Bucket=source.host, Prefix=source.path[1:])
    found = []
    for page in pages:
        found += [f"s3://{source.host}/{o['Key']}" for o in page.get("Contents", [])
                  if o["Key"].lower().endswith((".tif", ".tiff"))]
        if len(found) > MAX_BUILD_FILES:
            break
    return sorted(found)


def create(event: dict, config: Settings) -> dict:
    """The ``mosaic`` function: build a MosaicJSON from ``urls`` or a ``prefix`` and write
    it as ``{MOSAIC_PREFIX}{name}.json`` (never over an existing one unless ``overwrite``).

    Event: ``{"name": "country", "urls": [...] | "prefix": "s3://bucket/cogs/",
    "quadkey_zoom": 6 (optional), "overwrite": false}``.
    """
    if not isinstance(event, dict):
        raise BadRequest("the event must be a JSON object (see the README)")
    if not config.mosaic_prefix:
        raise BadRequest("MOSAIC_PREFIX is not configured for this stage")
    name = event.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadRequest("'name' names the mosaic: letters, digits, '_', '-', '.'")
    urls, prefix = event.get("urls"), event.get("prefix")
    if (urls is None) == (prefix is None):
        raise BadRequest("give either 'urls' (a list of GeoTIFFs) or 'prefix'")
    if prefix is not None:
        if not isinstance(prefix, str):
            raise BadRequest("'prefix' is s3://bucket/prefix/ or a folder")
        urls = list_prefix(prefix, config)
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls) or not urls:
        raise BadRequest("'urls' is a non-empty list of GeoTIFF urls (or the prefix holds "
                         "none)")
    if len(urls) > MAX_BUILD_FILES:
        raise BadRequest(f"at most {MAX_BUILD_FILES} files make one mosaic in the function "
                         f"(got {len(urls)}): split the prefix into several mosaics")
    quadkey_zoom = event.get("quadkey_zoom")
    if quadkey_zoom is not None and (not isinstance(quadkey_zoom, int)
                                     or isinstance(quadkey_zoom, bool)):
        raise BadRequest("'quadkey_zoom' is an integer zoom level")
    document = build(list(dict.fromkeys(urls)), config, quadkey_zoom, name)
    destination = config.mosaic_prefix.rstrip("/") + f"/{name}.json"
    written = write(document, destination, overwrite=event.get("overwrite") is True)
    return {"url": destination if destination.startswith("s3://") else written,
            "files": len({u for files in document["tiles"].values() for u in files}),
            "quadkeys": len(document["tiles"]), "minzoom": document["minzoom"],
            "maxzoom": document["maxzoom"], "bounds": document["bounds"]}


def write(document: dict, destination: str, overwrite: bool = False) -> str:
    """Write a MosaicJSON to ``destination`` (a local path or s3://bucket/key); never over
    an existing object unless ``overwrite``. Returns where it was written."""
    body = json.dumps(document, separators=(",", ":")).encode()
    if destination.startswith("s3://"):
        bucket, _, key = destination[5:].partition("/")
        if not bucket or not key:
            raise BadRequest("the destination is s3://bucket/key.json")
        s3 = aws.client("s3")
        if not overwrite:
            try:
                s3.head_object(Bucket=bucket, Key=key)
                raise BadRequest(f"{destination} exists; pass overwrite to replace it")
            except BadRequest:
                raise
            except Exception as exc:  # botocore's ClientError: missing is what we want
                if not aws.is_missing(exc):
                    raise
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        return destination
    path = os.path.abspath(destination)
    mode = "wb" if overwrite else "xb"
    try:
        with open(path, mode) as file:
            file.write(body)
    except FileExistsError:
        raise BadRequest(f"{destination} exists; pass overwrite to replace it") from None
    return path
