"""Opening sources, keeping them open across requests, and naming what went wrong.

A warm Lambda container serves many tiles from the same few files; reopening one costs a
header fetch (a GET on S3/HTTP) and loses GDAL's block cache. :func:`get` keeps a small LRU
of opened datasets. Each entry has its own lock: a GDAL dataset must not be read from two
threads at once (``chalice local`` serves requests on threads; Lambda uses one).

Only the GeoTIFF driver may open a source: a VRT (which reads other files), a netCDF or any
other format is "not a raster" here, whatever its name.
"""

import math
import os
import stat
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import rasterio
import rasterio.env
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import Window

from ..core.errors import (
    NotARaster,
    NotFound,
    SourceNotAllowed,
    TilerError,
    UpstreamError,
    UpstreamTimeout,
)
from ..core.geo import WGS84, LonLatBounds
from ..core.settings import Settings
from . import egress, gdalconfig
from .allowlist import Source, display_name

#: Extra handles per dataset for threads that would otherwise wait (chalice local).
MAX_SPARES = 3
#: The time source of SOURCE_TTL (seconds; a test may move it on).
clock = time.monotonic
_spare_lock = threading.Lock()


@dataclass(eq=False)
class OpenDataset:
    """An opened source plus what every request needs to know about it, computed once."""

    src: rasterio.DatasetReader
    name: str
    key: tuple
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: Index (1-based) of the alpha band, if the file has one.
    alpha: int | None = None
    #: (west, south, east, north) in degrees; west > east when the data crosses 180 degrees.
    geographic_bounds: LonLatBounds = LonLatBounds(-180, -90, 180, 90)
    #: Results cached per dataset (e.g. the statistics used to stretch non-uint8 data).
    memo: dict = field(default_factory=dict)
    #: More handles on the same file, made when threads contend for this one (see
    #: :func:`reading`); they share ``memo``.
    spares: list = field(default_factory=list)
    #: When it was opened (:func:`clock`): a remote source is reopened after SOURCE_TTL.
    opened_at: float = 0.0
    #: Bytes of one value of its widest band (what reads are sized by).
    itemsize: int = 1

    def spare(self) -> "OpenDataset | None":
        """An idle handle on the same file, its lock held by the caller; a new one while
        there are fewer than :data:`MAX_SPARES`; None when all are busy."""
        with _spare_lock:
            for other in self.spares:
                if other.lock.acquire(blocking=False):
                    return other
            if len(self.spares) >= MAX_SPARES:
                return None
            other = OpenDataset(src=rasterio.open(self.key[0], driver="GTiff"), name=self.name,
                                key=self.key, alpha=self.alpha,
                                geographic_bounds=self.geographic_bounds, memo=self.memo,
                                opened_at=self.opened_at, itemsize=self.itemsize)
            other.lock.acquire()
            self.spares.append(other)
            return other

    @property
    def data_indexes(self) -> tuple[int, ...]:
        """The bands a user means by default: all but the alpha band."""
        return tuple(i for i in self.src.indexes if i != self.alpha)

    def own_crs(self, crs: CRS) -> bool:
        """Whether ``crs`` is the file's own (memoised: rasterio compares CRSs in 6 us)."""
        key = ("own_crs", crs.to_string())
        if key not in self.memo:
            self.memo[key] = crs == self.src.crs
        return self.memo[key]

    def native_resolution(self, crs: CRS) -> float:
        """The dataset's pixel size expressed in ``crs`` units (memoised)."""
        key = ("resolution", crs.to_string())
        if key not in self.memo:
            src = self.src
            if src.crs == crs:  # the lengths of a pixel's sides (rotated grids included)
                t = src.transform
                self.memo[key] = min(math.hypot(t.a, t.d), math.hypot(t.b, t.e))
            else:
                # Measure over a few pixels at the image centre: the scale of the whole
                # extent is meaningless for data that wraps the antimeridian or reaches a pole.
                size = min(16, src.width, src.height)
                col, row = (src.width - size) // 2, (src.height - size) // 2
                window_bounds = src.window_bounds(Window(col, row, size, size))
                transform, _, _ = calculate_default_transform(src.crs, crs, size, size,
                                                              *window_bounds)
                self.memo[key] = min(abs(transform.a), abs(transform.e))
        return self.memo[key]


def classify(exc: BaseException | None, path: str = "", elapsed: float = 0.0,
             timeout: float = 0.0) -> TilerError:
    """Turn a GDAL/rasterio failure on ``path`` into the error the user should see.

    GDAL's messages quote the path, which is blanked out first: a file named
    ``timeout.tif`` must not read as a timeout. For a remote source (``/vsi...`` path), a
    short read ("got 0 bytes") is the storage failing mid-transfer, not a damaged file, and
    one that lasted the whole ``timeout`` (GDAL_HTTP_TIMEOUT) timed out: GDAL reports a
    stalled transfer only as a short read.
    """
    remote = path.startswith("/vsi")
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:  # rasterio chains GDAL's error stack
        seen.add(id(exc))
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    text = " ".join(chain)
    if path:
        text = text.replace(path, "<source>")
    text = text.lower()
    if remote and egress.refused_since(time.monotonic() - elapsed):
        # the egress guard refused a request while this one ran: a redirect off the list
        return SourceNotAllowed("the source redirected to a place that is not on the "
                                "allow-list (redirects are followed only to allowed sources); "
                                "give the final URL, on the allow-list")
    short_read = remote and ("got 0 bytes" in text or "read error at" in text)
    if any(s in text for s in ("timed out", "timeout", "http response code: 504")) or (
            short_read and timeout and elapsed >= 0.9 * timeout):
        return UpstreamTimeout("the storage holding the source did not answer in time; "
                               "try again")
    # before "does not exist": S3 says "The AWS Access Key Id ... does not exist in our records"
    if any(s in text for s in ("http response code: 403", "http response code: 401",
                               "access denied", "accessdenied", "access key id", "signature",
                               "security token", "not authorized", "forbidden")):
        return SourceNotAllowed("the storage refused access to the source (403): check that "
                                "the tiler's role may read it")
    if "http response code: 404" in text or "no such file" in text or "does not exist" in text \
            or "nosuchkey" in text or "nosuchbucket" in text:
        return NotFound("no such file: check the url")
    if short_read or any(s in text for s in (
            "curl error", "http response code", "could not resolve", "connection", "ssl",
            "http error", "internalerror", "slowdown", "serviceunavailable")):
        return UpstreamError("the storage holding the source failed to answer; try again")
    if "not recognized as" in text or "not a tiff" in text or "not supported" in text:
        return NotARaster("the source is not a GeoTIFF this tiler can read")
    return NotARaster("the source's data could not be read (the file may be damaged)")


#: Largest plausible coordinate (metres, feet or degrees) of a raster's extent; far beyond
#: any planet. GDAL spins for minutes transforming extents of 1e16 and more.
MAX_COORDINATE = 1e10
#: Largest internal block (one band's, or all bands' when pixel-interleaved) read at once.
MAX_BLOCK_BYTES = 256 * 1024 * 1024


def _check_grid(src) -> None:
    """Refuse what cannot be read within a request: nonsense extents, empty pixels, internal
    blocks too large for the function's memory."""
    t = src.transform
    numbers = (*src.bounds, t.a, t.b, t.d, t.e)
    if not all(map(math.isfinite, numbers)) or max(map(abs, src.bounds)) > MAX_COORDINATE:
        raise NotARaster("the source's extent is not plausible (coordinates beyond 1e10); "
                         "check its geotransform")
    if math.hypot(t.a, t.d) == 0 or math.hypot(t.b, t.e) == 0:
        raise NotARaster("the source's pixels have no size (its geotransform is degenerate)")
    block_h, block_w = src.block_shapes[0]
    bands = src.count if (src.interleaving and src.interleaving.name == "pixel") else 1
    size = block_h * block_w * bands * max(np.dtype(d).itemsize for d in src.dtypes)
    if size > MAX_BLOCK_BYTES:
        raise NotARaster(f"the source's internal blocks ({block_w}x{block_h} pixels, "
                         f"{size / 2**20:.0f} MB each) are too large to read within the "
                         "function's memory; rewrite it as a COG (512-pixel tiles)")


def _check_dtype(src) -> None:
    """Complex pixels (radar SLC, FFTs) have no colour or statistics of their own."""
    complex_types = [d for d in src.dtypes if d.startswith("complex")]
    if complex_types:
        raise NotARaster(f"the source holds complex numbers ({complex_types[0]}), which have no "
                         "single value to draw or measure; write the magnitude (or the phase) "
                         "as a real band first, e.g. gdal_translate -ot Float32 with "
                         "gdal_calc's abs(A)")


def _untransformable(crs: CRS) -> str:
    """Why a CRS cannot be placed on the Earth, and what would work."""
    wkt = crs.to_wkt(version="WKT2_2019")
    name = wkt.split('"')[1] if '"' in wkt else "unnamed"
    if wkt.startswith(("ENGCRS", "ENGINEERINGCRS")):
        why = ("it is a local engineering CRS (coordinates on a site or a drawing, not tied "
               "to the Earth)")
    else:
        why = ("no transformation to WGS84 exists for it (another planet or body, or an "
               "ellipsoid that is not the Earth's)")
    return (f"the source's CRS ('{name}') cannot be placed on web maps: {why}. Tiles, bounds "
            "and points need a CRS on the Earth: reproject the file (gdalwarp -t_srs "
            "EPSG:4326) or assign the CRS it really uses (gdal_edit.py -a_srs)")


def _describe(src, source: Source, key: tuple) -> OpenDataset:
    if src.crs is None or (src.transform.is_identity and not src.gcps[0]):
        raise NotARaster("the source has no georeferencing (no CRS or geotransform); "
                         "only georeferenced rasters can be tiled")
    if src.gcps[0] and src.transform.is_identity:
        raise NotARaster("the source is georeferenced by ground control points only; "
                         "warp it to a regular grid (gdalwarp) first")
    _check_dtype(src)
    _check_grid(src)
    alpha = next((i for i, ci in zip(src.indexes, src.colorinterp) if ci == ColorInterp.alpha),
                 None)
    try:
        west, south, east, north = transform_bounds(src.crs, WGS84, *src.bounds,
                                                    densify_pts=21)
    except (CPLE_BaseError, RasterioError) as error:
        raise NotARaster(_untransformable(src.crs)) from error
    south, north = max(south, -90.0), min(north, 90.0)
    if not all(map(math.isfinite, (west, south, east, north))):
        raise NotARaster("the source's bounds cannot be expressed in longitude/latitude")
    return OpenDataset(src=src, name=display_name(source), key=key, alpha=alpha,
                       geographic_bounds=LonLatBounds(west, south, east, north),
                       itemsize=max(np.dtype(d).itemsize for d in src.dtypes))


def _check_extension(source: Source, settings: Settings) -> None:
    """GDAL treats remote files outside CPL_VSIL_CURL_ALLOWED_EXTENSIONS as missing; say so."""
    allowed = dict(settings.gdal_options).get("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", "")
    extensions = tuple(e.strip().lower() for e in allowed.split(",") if e.strip())
    if extensions and not source.path.lower().endswith(extensions):
        raise NotARaster("this server reads remote GeoTIFFs whose names end in "
                         + ", ".join(sorted(set(extensions))))


class DatasetCache:
    """A bounded LRU of :class:`OpenDataset`, safe to share between threads."""

    def __init__(self):
        self._entries: OrderedDict[tuple, OpenDataset] = OrderedDict()
        self._lock = threading.Lock()
        self._gdal_options: tuple = ()
        self._guard: str | None = None  # the proxy URL GDAL is given, once it is
        self._rule: egress.Rule | None = None
        self._applied: Settings | None = None
        self.opened = 0  # how many times a source was really opened (tests, benchmarks)

    def _apply_environment(self, settings: Settings, remote: bool = False) -> None:
        """GDAL's configuration and the egress guard (see :mod:`sources.egress`), when the
        settings change (not per tile: settings.current() returns the same object while the
        environment stays the same). Set process-wide, so that every thread sees them.

        The guard's proxy process starts (without waiting) when the allow-list names a
        remote prefix, and is waited for before the first remote source opens: a server of
        local files never starts it.
        """
        if settings is not self._applied or (self._guard and not egress.alive()):
            options = dict(settings.gdal_options)
            if self._guard and "GDAL_HTTP_PROXY" not in options:
                gdalconfig.set_option("GDAL_HTTP_PROXY", None)
            self._guard = None
            self._rule = None
            self._apply_gdal_options(settings.gdal_options)
            if "GDAL_HTTP_PROXY" not in options and not settings.environment_proxy:
                # (a proxy of the operator's wins: filter there)
                self._rule = egress.Rule(
                    settings.allowed_sources, settings.unsafe_allow_hosts,
                    options.get("AWS_S3_ENDPOINT", ""),
                    options.get("AWS_HTTPS", "YES").upper() not in ("NO", "FALSE", "OFF", "0"),
                    options.get("AWS_VIRTUAL_HOSTING", "TRUE").upper()
                    not in ("NO", "FALSE", "OFF", "0"))
                for name in ("no_proxy", "NO_PROXY"):  # libcurl would go around the guard
                    os.unsetenv(name)
                if self._rule.remote():
                    egress.start(self._rule)
            self._applied = settings
        if remote and self._rule is not None and self._guard is None:
            self._guard = egress.guard(self._rule)
            gdalconfig.set_option("GDAL_HTTP_PROXY", self._guard)

    def _apply_gdal_options(self, options: tuple) -> None:
        if options == self._gdal_options:
            return
        for name in {n for n, _ in self._gdal_options} - {n for n, _ in options}:
            gdalconfig.set_option(name, None)  # gone from the environment: back to default
        for name, value in options:
            if name == "GDAL_CACHEMAX":  # rasterio sets this one as a number of bytes
                if not value.isdigit():
                    continue  # e.g. "10%": GDAL reads it from the process environment
                number = int(value)
                rasterio.env.set_gdal_config(  # GDALSetCacheMax64: process-wide
                    name, number * 1024 * 1024 if number < 100_000 else number)
                continue
            gdalconfig.set_option(name, value)
        self._gdal_options = options

    def get(self, source: Source, settings: Settings) -> OpenDataset:
        key: tuple = (source.gdal_path,)
        if source.scheme == "file":
            try:
                info = os.stat(source.path)
            except OSError:
                raise NotFound("no such file: check the url") from None
            if not stat.S_ISREG(info.st_mode):  # a FIFO would block open() forever
                raise NotFound("no such file: check the url (not a regular file)")
            # a rewritten file reopens: also one whose mtime was put back (cp -p, touch -r),
            # which changes its ctime (no call sets that), or replaced by a rename (inode)
            key = (source.gdal_path, info.st_mtime_ns, info.st_ctime_ns, info.st_ino,
                   info.st_size)
        remote = source.scheme != "file"
        with self._lock:
            self._apply_environment(settings, remote=remote)
            entry = self._entries.get(key)
            if entry is not None and remote and clock() - entry.opened_at >= settings.source_ttl:
                # trusted long enough: read it again as it is now (a COG replaced in place).
                # Dropped, not closed (a thread may be reading it); GDAL's cached ranges go.
                del self._entries[key]
                gdalconfig.forget(source.gdal_path)
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
        if remote:
            _check_extension(source, settings)
        started = time.monotonic()
        try:
            src = rasterio.open(source.gdal_path, driver="GTiff")
        except (RasterioError, CPLE_BaseError) as exc:
            raise classify(exc, source.gdal_path, time.monotonic() - started) from None
        try:
            entry = _describe(src, source, key)
        except Exception:
            src.close()
            raise
        entry.opened_at = clock()
        with self._lock:
            self.opened += 1
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > settings.dataset_cache_size:
                # Dropped, not closed: another thread may hold it between get() and its
                # read. rasterio closes the file when the last reference goes.
                self._entries.popitem(last=False)
        return entry

    def evict(self, entry: OpenDataset) -> None:
        with self._lock:
            if self._entries.get(entry.key) is entry:
                del self._entries[entry.key]

    def clear(self) -> None:
        with self._lock:
            for entry in self._entries.values():
                with entry.lock:
                    entry.src.close()
            self._entries.clear()


cache = DatasetCache()


@contextmanager
def reading(dataset: OpenDataset, config: Settings):
    """Hold the dataset for a read (yields the handle to read with); GDAL failures become
    :class:`TilerError`. A GDAL dataset must not be read by two threads at once: when
    another thread holds this one, a spare handle on the same file is used instead of
    waiting for it (a slow read must not stall every request for that file).

    A failed read evicts the dataset, so a broken connection or a file replaced underneath
    does not poison the cache of a warm container.
    """
    handle = dataset if dataset.lock.acquire(blocking=False) else None
    if handle is None:  # another thread reads it (chalice local): use another handle
        try:
            handle = dataset.spare()
        except (RasterioError, CPLE_BaseError):
            handle = None
        if handle is None:
            dataset.lock.acquire()
            handle = dataset
    started = time.monotonic()
    try:
        yield handle
    except TilerError:
        raise
    except (RasterioError, CPLE_BaseError, MemoryError) as exc:
        cache.evict(dataset)
        if isinstance(exc, MemoryError):
            raise TilerError("the request needs more memory than the server has; "
                             "ask for a smaller image") from None
        raise classify(exc, dataset.src.name, time.monotonic() - started,
                       http_timeout(config)) from None
    finally:
        handle.lock.release()


def http_timeout(config: Settings) -> float:
    """GDAL_HTTP_TIMEOUT in seconds as configured (GDAL's default: 30)."""
    value = dict(config.gdal_options).get("GDAL_HTTP_TIMEOUT", "30")
    try:
        return float(value)
    except ValueError:
        return 30.0
