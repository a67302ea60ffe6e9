"""MosaicJSON mosaics: many GeoTIFFs indexed by Web Mercator quadkeys, read as one source.

A MosaicJSON 0.0.3 document (https://github.com/developmentseed/mosaicjson-spec) lists, for
each quadkey at ``quadkey_zoom``, the files that cover it, in priority order. A tile's
files are those of the quadkeys it overlaps (any tile matrix set: the tile's longitude and
latitude bounds select them); each is checked against the allow-list before it is opened,
read on the tile's grid (concurrently, :func:`readers.read_all`), and the pixels are combined
by ``pixel_selection``. With ``first`` (the default), reading stops as soon as every pixel is
filled.

:func:`build` makes a MosaicJSON from a list of GeoTIFFs (the ``mosaic`` Lambda function
and ``make mosaic`` around it).
"""

import json
import math
import os
import re
from dataclasses import dataclass, field

import mercantile
import numpy as np

from . import documents
from .datasets import MAX_LAT, WGS84
from .errors import BadRequest, NotARaster, NotFound, TileOutsideBounds
from .models import ImageData, Selection, StatisticsOptions, Style, TileAddress
from .reader import footprint_of
from .readers import COGReader, merge_limits, point_values, read_all
from .settings import Settings
from .sources import Source, display_name, parse, resolve
from .tilematrixsets import TileMatrixSet, geographic_overlap

#: Most files one tile may combine; a tile that needs more must be asked at a deeper zoom.
MAX_FILES_PER_TILE = 64
#: Most quadkeys one tile may look up (a low zoom over a deep index).
MAX_QUADKEYS_PER_TILE = 4096


@dataclass(frozen=True)
class Mosaic:
    name: str
    minzoom: int
    maxzoom: int
    quadkey_zoom: int
    bounds: tuple[float, float, float, float]
    center: tuple | None
    tiles: dict  # quadkey -> tuple of source strings (resolved against the document)
    memo: dict = field(default_factory=dict, compare=False)


def _zoom(document: dict, name: str, default=None) -> int:
    value = document.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 30:
        raise NotARaster(f"the MosaicJSON's '{name}' must be a zoom level from 0 to 30")
    return value


def parse_mosaic(document: dict, source: Source) -> Mosaic:
    """The parts of a MosaicJSON document this tiler uses; :class:`NotARaster` if the
    document is not one."""
    tiles = document.get("tiles")
    if "mosaicjson" not in document or not isinstance(tiles, dict):
        raise NotARaster("the source is not a MosaicJSON document ('mosaicjson' and 'tiles')")
    minzoom, maxzoom = _zoom(document, "minzoom"), _zoom(document, "maxzoom")
    quadkey_zoom = _zoom(document, "quadkey_zoom", minzoom)
    if minzoom > maxzoom:
        raise NotARaster("the MosaicJSON's minzoom is above its maxzoom")
    index = {}
    for quadkey, files in tiles.items():
        if not (isinstance(quadkey, str) and len(quadkey) == quadkey_zoom
                and set(quadkey) <= set("0123")) or not isinstance(files, list):
            raise NotARaster(f"the MosaicJSON's tiles must map quadkeys of zoom "
                             f"{quadkey_zoom} to lists of files")
        index[quadkey] = tuple(documents.href(source, f) for f in files)
    box = document.get("bounds", [-180, -90, 180, 90])
    if not (isinstance(box, list) and len(box) == 4 and all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
        raise NotARaster("the MosaicJSON's bounds must be [west, south, east, north]")
    center = document.get("center")
    name = document.get("name") or display_name(source)
    return Mosaic(str(name), minzoom, maxzoom, quadkey_zoom, tuple(float(v) for v in box),
                  tuple(center) if isinstance(center, list) else None, index)


class _Combine:
    """One pixel selection method, fed (data, per-band validity) file after file."""

    def __init__(self, method: str):
        self.method = method
        self.data = self.valid = None
        self.stack: list = []

    def feed(self, data: np.ndarray, valid: np.ndarray) -> None:
        valid = np.broadcast_to(valid, data.shape)
        if self.method in ("mean", "median", "stdev", "count"):
            self.stack.append(np.ma.MaskedArray(data, ~valid))
            return
        if self.data is None:
            self.data, self.valid = data.copy(), valid.copy()
            return
        if self.method == "first":
            take = ~self.valid & valid
        elif self.method in ("highest", "lowest"):
            better = data > self.data if self.method == "highest" else data < self.data
            take = (better & valid) | ~self.valid
        else:  # lastbandlow / lastbandhigh: the last band decides for the whole pixel
            last, mine = data[-1], self.data[-1]
            better = last < mine if self.method == "lastbandlow" else last > mine
            take = np.broadcast_to((better & valid[-1]) | ~self.valid[-1], data.shape)
        self.data = np.where(take, data, self.data)
        self.valid = np.where(take, valid, self.valid)

    @property
    def done(self) -> bool:
        return self.method == "first" and self.valid is not None and bool(self.valid.all())

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(data, per-pixel validity)."""
        if self.method in ("mean", "median", "stdev", "count"):
            stacked = np.ma.stack(self.stack)
            dtype = self.stack[0].dtype
            if self.method == "count":
                counts = stacked[:, 0].count(axis=0)
                return counts[None].astype(np.uint8 if len(self.stack) < 256 else np.uint16), \
                    np.ones(counts.shape, bool)
            with np.errstate(all="ignore"):
                if self.method == "mean":
                    out = stacked.mean(axis=0).astype(dtype)
                elif self.method == "median":
                    out = np.ma.median(stacked, axis=0).astype(dtype)
                else:
                    out = stacked.std(axis=0)
            return np.ma.getdata(out), ~np.ma.getmaskarray(out).all(axis=0)
        data, valid = self.data, self.valid.any(axis=0)
        if self.method in ("lastbandlow", "lastbandhigh"):
            data = data[:-1] if data.shape[0] > 1 else data
        return data, valid


class MosaicReader:
    kind = "mosaicjson"

    def __init__(self, mosaic: Mosaic, config: Settings):
        self.mosaic = mosaic
        self.config = config
        self.name = mosaic.name
        west, south, east, north = mosaic.bounds
        self.geographic_bounds = (west, max(south, -90.0), east, min(north, 90.0))

    @classmethod
    def open(cls, url: str | None, config: Settings) -> "MosaicReader":
        return cls(documents.load(url, config, parse_mosaic, "a MosaicJSON document"), config)

    # ---- which files ----------------------------------------------------------------------

    def files_for(self, box: tuple) -> list[str]:
        """The files of the quadkeys that overlap ``box`` (degrees), in priority order."""
        west, south, east, north = box
        south, north = max(south, -MAX_LAT), min(north, MAX_LAT)
        if south > north:
            return []
        z = self.mosaic.quadkey_zoom
        spans = [(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]
        count = 0
        for w, e in spans:
            ul, lr = mercantile.tile(w, north, z), mercantile.tile(min(e, 179.9999999), south, z)
            count += (lr.x - ul.x + 1) * (lr.y - ul.y + 1)
        if count > MAX_QUADKEYS_PER_TILE:
            raise BadRequest(f"this area covers {count} quadkeys of the mosaic: zoom in (the "
                             f"mosaic starts at zoom {self.mosaic.minzoom})")
        found: dict[str, None] = {}
        # a tile that only touches a quadkey's edge does not need it (a point does)
        epsilon = 1e-9 if north - south > 1e-6 else 0.0
        for w, e in spans:
            inset = epsilon if e - w > 1e-6 else 0.0
            for t in mercantile.tiles(w + inset, south + epsilon, e - inset,
                                      north - epsilon, [z]):
                for url in self.mosaic.tiles.get(mercantile.quadkey(t), ()):
                    found[url] = None
        return list(found)

    def _open(self, url: str) -> COGReader:
        return COGReader.open(url, self.config)

    def _files_of_tile(self, tms: TileMatrixSet, z: int, x: int, y: int) -> list[str]:
        box = tms.geographic_bounds(z, x, y) or self.geographic_bounds
        if not geographic_overlap(box, self.geographic_bounds):
            return []
        return self.files_for(box)

    # ---- reading --------------------------------------------------------------------------

    def _combine(self, urls: list[str], selection: Selection, read) -> tuple[ImageData, list]:
        """Read ``urls`` with ``read(cog, selection)`` (concurrently, in priority order) and
        combine them; TileOutsideBounds where none has data."""
        if len(urls) > MAX_FILES_PER_TILE:
            raise BadRequest(f"this tile needs {len(urls)} files of the mosaic (at most "
                             f"{MAX_FILES_PER_TILE}): zoom in")
        method = _Combine(selection.pixel_selection)
        first, used = None, []
        first_alone = selection.pixel_selection == "first"  # often the only file needed
        for url, image, error in read_all(urls, lambda u: read(self._open(u), selection),
                                          first_alone=first_alone):
            if isinstance(error, TileOutsideBounds):
                continue
            if error is not None:
                raise _member_error(url, error)
            if first is None:
                first = image
            elif image.data.shape[0] != first.data.shape[0]:
                raise BadRequest("the mosaic's files have different band counts; choose "
                                 "bands with bidx")
            method.feed(image.data, image.mask[None])
            used.append(url)
            if method.done:
                break
        if first is None:
            raise TileOutsideBounds("no file of the mosaic has data here")
        data, valid = method.result()
        names = first.band_names if data.shape[0] == first.data.shape[0] else (
            ("count",) if selection.pixel_selection == "count" else first.band_names[:-1])
        return ImageData(data, valid, first.bounds, first.crs, tuple(names)), used

    def tile_exists(self, tms: TileMatrixSet, z: int, x: int, y: int) -> bool:
        return bool(self._files_of_tile(tms, z, x, y))

    def tile(self, address: TileAddress, selection: Selection) -> ImageData:
        tms, z, x, y = address.tms, address.z, address.x, address.y
        urls = self._files_of_tile(tms, z, x, y)
        if not urls:
            raise TileOutsideBounds(f"tile {tms.id}/{z}/{x}/{y} is outside the mosaic; see "
                                    "/mosaicjson/info for its bounds")
        image, _ = self._combine(urls, selection, lambda cog, s: cog.tile(address, s))
        return image

    def preview(self, selection, size):
        raise BadRequest("a mosaic has no preview: ask for tiles or a bbox")

    def bbox(self, bounds, selection, size):
        raise BadRequest("a mosaic has no bbox image: ask for tiles")

    def statistics(self, selection: Selection, options: StatisticsOptions) -> dict:
        raise BadRequest("a mosaic has no statistics: ask for those of its files")

    def point(self, lon: float, lat: float, selection: Selection) -> dict:
        urls = self.files_for((lon, lat, lon, lat)) if -MAX_LAT < lat < MAX_LAT else []
        if not urls:
            raise TileOutsideBounds(f"the point {lon:g},{lat:g} is outside the mosaic")
        image, used = self._combine(urls, selection,
                                    lambda cog, s: cog.point_image(lon, lat, s))
        result = point_values(image, lon, lat)
        result["assets"] = [display_name(parse(u)) for u in used]
        return result

    def info(self, tms: TileMatrixSet) -> dict:
        m = self.mosaic
        minzoom, maxzoom = self.zoom_range(tms)
        west, south, east, north = self.geographic_bounds
        return {"name": m.name, "bounds": [west, south, east, north],
                "center": list(m.center) if m.center else [(west + east) / 2,
                                                           (south + north) / 2, m.minzoom],
                "minzoom": minzoom, "maxzoom": maxzoom, "quadkey_zoom": m.quadkey_zoom,
                "tilematrixset": tms.id, "quadkeys": len(m.tiles),
                "files": len({u for files in m.tiles.values() for u in files})}

    def zoom_range(self, tms: TileMatrixSet) -> tuple[int, int]:
        """The document's zooms (Web Mercator), as the same cell sizes in ``tms``."""
        m = self.mosaic
        if tms.is_web_mercator:
            return m.minzoom, m.maxzoom
        size = 2 * math.pi * 6378137 / 256  # metres per pixel at Web Mercator zoom 0
        degrees = 360 / 256  # the same in degrees at the equator
        unit = degrees if tms.is_geographic else size
        maxzoom = tms.zoom_for_cell_size(unit / 2 ** m.maxzoom)
        minzoom = min(tms.zoom_for_cell_size(unit / 2 ** m.minzoom), maxzoom)
        return max(minzoom, tms.minzoom), maxzoom

    def footprint(self, tms: TileMatrixSet) -> list[tuple]:
        key = ("footprint", tms.id)
        if key not in self.mosaic.memo:
            self.mosaic.memo[key] = footprint_of(WGS84, self.geographic_bounds,
                                                 self.geographic_bounds, tms)
        return self.mosaic.memo[key]

    def tile_limits(self, tms: TileMatrixSet, z: int):
        return merge_limits(tms.tile_range(z, box) for box in self.footprint(tms))

    def style_inputs(self, image: ImageData, selection: Selection, style: Style,
                     raw: bool) -> tuple:
        """The palette and stretch ranges of the mosaic's first file (its files are
        expected to be alike)."""
        first = next((files[0] for files in self.mosaic.tiles.values() if files), None)
        if first is None or selection.pixel_selection == "count":
            return None, None
        return self._open(first).style_inputs(image, selection, style, raw)


def _member_error(url: str, error: BaseException) -> BaseException:
    """A member file's failure, naming the file (never a server path)."""
    message = getattr(error, "message", None)
    if message is None:
        return error
    error.message = f"mosaic file {display_name(parse(url))}: {message}"
    error.args = (error.message,)
    return error


# ---- building a MosaicJSON ---------------------------------------------------------------

def build(urls: list[str], config: Settings, quadkey_zoom: int | None = None,
          name: str | None = None) -> dict:
    """A MosaicJSON 0.0.3 document over ``urls`` (each allow-listed and opened once):
    zooms from the files (minzoom: the coarsest file's, maxzoom: the finest's), each file
    listed under every quadkey its bounds touch, in the order given."""
    from .tilematrixsets import get
    if not urls:
        raise BadRequest("a mosaic needs at least one file")
    tms = get("WebMercatorQuad")
    readers = []
    for url, reader, error in read_all(urls, lambda u: COGReader.open(u, config)):
        if error is not None:
            raise _member_error(url, error)
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
        spans = [(w, e)] if w <= e else [(w, 180.0), (-180.0, e)]
        for sw, se in spans:
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


#: Most files one MosaicJSON may be built from.
MAX_BUILD_FILES = 10_000
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
    from . import aws
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
        raise BadRequest(f"at most {MAX_BUILD_FILES} files make one mosaic")
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
    from . import aws
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
