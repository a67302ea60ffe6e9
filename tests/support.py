"""Test helpers: synthetic rasters with known pixels, image decoding, request paths."""

import io
from pathlib import Path
from urllib.parse import urlencode

import mercantile
import numpy as np
import rasterio
from PIL import Image
from rasterio.enums import Resampling
from rasterio.transform import from_bounds

ROOT = Path(__file__).resolve().parent.parent
SHARED = (ROOT.parent / "shared" / "data").resolve()
BUILD = ROOT / "build" / "test-rasters"

#: A z10 WebMercatorQuad tile; synthetic rasters cover exactly this tile at 256x256.
TILE = mercantile.Tile(x=300, y=380, z=10)

#: What Chrome sends for an <img>: the first type is not one API Gateway knows as binary.
ACCEPT_IMAGE = {"Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"}


def write_raster(path: Path, data: np.ndarray, bounds=None, crs="EPSG:3857", nodata=None,
                 mask=None, overviews=(), colormap=None, blocksize=256,
                 **profile):
    """Write ``data`` (bands, h, w) as a tiled GeoTIFF covering ``bounds`` (default: TILE)."""
    count, height, width = data.shape
    bounds = bounds or mercantile.xy_bounds(TILE)
    tiled = width >= blocksize and height >= blocksize
    options = dict(driver="GTiff", width=width, height=height, count=count,
                   dtype=data.dtype.name, crs=crs, transform=from_bounds(*bounds, width, height),
                   nodata=nodata, tiled=tiled, compress="deflate", **profile)
    if tiled:
        options.update(blockxsize=blocksize, blockysize=blocksize)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **options) as dst:
            dst.write(data)
            if mask is not None:
                dst.write_mask(mask)
            if colormap is not None:
                dst.write_colormap(1, colormap)
        if overviews:
            with rasterio.open(path, "r+") as dst:
                dst.build_overviews(list(overviews), Resampling.average)
    return path


def pattern(height=256, width=256, bands=1, dtype="uint8") -> np.ndarray:
    """Distinct, position-dependent values: band b, row r, col c -> (7r + 13c + 50b) % 250 + 1."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([((7 * rows + 13 * cols + 50 * b) % 250 + 1) for b in range(bands)]) \
        .astype(dtype)


def decode(body: bytes) -> np.ndarray:
    """Decode an image response into (bands, h, w) with Pillow (independent of GDAL); a
    paletted PNG into the colours it shows (RGBA when it has transparent entries)."""
    image = Image.open(io.BytesIO(body))
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    array = np.asarray(image)
    return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def tile_path(tile=TILE, suffix="", **query) -> str:
    return f"/cog/tiles/{tile.z}/{tile.x}/{tile.y}{suffix}?{urlencode(query, doseq=True)}"


ACCEPT_IMAGE = {"Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"}


# ---- the engine as the HTTP layer calls it -------------------------------------------------

def config():
    from chalicelib.core import settings
    return settings.current()


def wmq():
    from chalicelib.grids import tilematrixsets
    return tilematrixsets.get("WebMercatorQuad")


def open_dataset(url):
    from chalicelib.readers import cog
    return cog.open_dataset(str(url), config())


def read_tile(dataset, z, x, y, size=256, selection=None, tms=None):
    """geotiff.tile for tile z/x/y of ``tms`` (WebMercatorQuad) at ``size`` pixels."""
    from chalicelib.core.records import Selection, TileAddress
    from chalicelib.readers import geotiff
    return geotiff.tile(dataset, TileAddress(tms or wmq(), z, x, y, size, size, None),
                       selection or Selection())


def parsed(query, declared=None, path=None):
    """Parse ``query`` ({name: [values]}) as a route declaring ``declared`` would."""
    from chalicelib.api import params
    declared = declared or (*params.SELECTION, *params.STYLE)
    return params.parse(declared, query, path, config())


def engine_tile(url, z, x, y_segment, query=None, tms="WebMercatorQuad"):
    """chalicelib.operations.tiler.tile as /cog/tiles/{tms}/{z}/{x}/{y} calls it."""
    from chalicelib.api import params
    from chalicelib.operations import tiler
    from chalicelib.readers import kinds
    values = parsed(query or {}, (*params.TILE, *params.SELECTION, *params.STYLE),
                    {"tileMatrixSetId": tms, "z": str(z), "x": str(x), "y": y_segment})
    return tiler.tile(kinds.open_reader("cog", str(url), config()),
                      params.tile_address(values), params.selection(values),
                      params.style(values))


# ---- HTTP, as a client sees it -------------------------------------------------------------

def fetch(url, headers=None, method="GET", body: bytes | None = None):
    """(status, headers, body) of an HTTP request, errors included."""
    import urllib.error
    import urllib.request
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# ---- a request in a fresh process (a cold Lambda container) --------------------------------

_PROBE = """
import json, sys
sys.path.insert(0, {root!r})
from chalice.test import Client
from app import app
with Client(app, stage_name="test", project_dir={root!r}) as client:
    response = client.http.get(sys.argv[1], headers={{"Accept": "*/*"}})
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({{"status": response.status_code, "body": response.body[:600].decode("latin-1"),
                  "peak_mb": peak / 1024}}))
"""


def fresh_process_request(path: str, env: dict | None = None, timeout=180) -> dict:
    """``path`` asked in a new process: its status, the start of its body and the process's
    peak RSS in MB. The peak is the new process's own (VmHWM): ``getrusage``'s ru_maxrss
    keeps the parent's high-water mark across exec on Linux, so a child of a big test
    process reported the parent's peak (1.6 GB in CI)."""
    import json
    import os
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-c", _PROBE.format(root=str(ROOT)), path],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                            env=env or os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
