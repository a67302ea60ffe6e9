"""What the benchmarks share: their data, tile sampling, statistics and result files."""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import mercantile
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
SHARED = ROOT.parent / "shared" / "data"
DATA = ROOT / "build" / "bench-data"
RESULTS = ROOT / "bench" / "results"

#: Real COGs (../shared/data) and synthetic ones (generated into build/bench-data).
REAL = ["RGB.byte.tif", "cog.tif", "cog_cmap.tif", "cog_rgb_mask.tif", "world.rgb.tif"]
SYNTHETIC = ["rgb_uint8_utm.tif", "uint16_utm.tif", "dem_float_nodata.tif", "large_rgb_3857.tif"]


def _texture(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth structure plus noise, so that compression behaves like real imagery."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype("float32")
    field = (np.sin(rows / 97.0 + seed) + np.cos(cols / 53.0) + np.sin((rows + cols) / 211.0))
    return field + rng.normal(0, 0.35, (height, width)).astype("float32")


def make_synthetic() -> None:
    """Write the synthetic COGs once (about 20 s)."""
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy
    from rasterio.transform import from_bounds

    DATA.mkdir(parents=True, exist_ok=True)

    def write(name, data, crs, bounds, nodata=None, **cog):
        target = DATA / name
        if target.exists():
            return
        count, height, width = data.shape
        profile = dict(driver="GTiff", width=width, height=height, count=count,
                       dtype=data.dtype.name, crs=crs, nodata=nodata,
                       transform=from_bounds(*bounds, width, height))
        with MemoryFile() as memfile:
            with memfile.open(**profile) as dst:
                dst.write(data)
            with memfile.open() as src:
                copy(src, str(target), driver="COG", BLOCKSIZE="512",
                     OVERVIEW_RESAMPLING="AVERAGE", **cog)
        with rasterio.open(target) as check:
            assert check.overviews(1), name

    t = _texture(4096, 4096, 1)
    rgb = np.stack([np.clip(t * 40 + 120 + 20 * i, 0, 255) for i in range(3)]).astype("uint8")
    write("rgb_uint8_utm.tif", rgb, "EPSG:32633", (400000, 5000000, 400000 + 4096 * 10,
                                                   5000000 + 4096 * 10), COMPRESS="DEFLATE",
          PREDICTOR="YES")
    u16 = (np.clip(t * 900 + 3000, 0, 65535)).astype("uint16")[None]
    write("uint16_utm.tif", u16, "EPSG:32618", (300000, 2600000, 300000 + 4096 * 30,
                                                2600000 + 4096 * 30), COMPRESS="DEFLATE",
          PREDICTOR="YES")
    dem = (_texture(3600, 3600, 2) * 300 + 1500).astype("float32")
    dem[:, :200] = -9999.0  # a nodata border and a hole
    dem[1500:1800, 1500:2100] = -9999.0
    write("dem_float_nodata.tif", dem[None], "EPSG:4326", (10.0, 45.0, 13.0, 48.0),
          nodata=-9999.0, COMPRESS="DEFLATE", PREDICTOR="YES")
    big = _texture(8192, 8192, 3)
    large = np.stack([np.clip(big * 35 + 110 + 25 * i, 0, 255) for i in range(3)]).astype("uint8")
    x0, y0 = mercantile.xy(5.0, 45.0)
    write("large_rgb_3857.tif", large, "EPSG:3857", (x0, y0, x0 + 8192 * 4.0, y0 + 8192 * 4.0),
          COMPRESS="JPEG", QUALITY="85")


def path_of(name: str) -> Path:
    return (SHARED if name in REAL else DATA) / name


def sample_tiles(url: str, per_zoom: int = 30, extra_zoom: int = 1):
    """Tiles from minzoom to maxzoom + ``extra_zoom`` nearest the data's centre, that touch it."""
    from chalicelib.core import settings
    from chalicelib.grids import tilematrixsets
    from chalicelib.readers import cog, geotiff

    wmq = tilematrixsets.get("WebMercatorQuad")
    entry = cog.open_dataset(url, settings.current())
    minzoom, maxzoom = geotiff.zoom_range(entry, wmq)
    west, south, east, north = entry.geographic_bounds
    lon = (west + east) / 2 if west <= east else 179.9
    lat = (south + north) / 2
    chosen = []
    for zoom in range(max(minzoom, maxzoom - 4), maxzoom + extra_zoom + 1):
        centre = mercantile.tile(lon, lat, zoom)
        ring = sorted(
            (mercantile.Tile(centre.x + dx, centre.y + dy, zoom)
             for dx in range(-8, 9) for dy in range(-8, 9)
             if 0 <= centre.x + dx < 2 ** zoom and 0 <= centre.y + dy < 2 ** zoom),
            key=lambda t: (abs(t.x - centre.x) + abs(t.y - centre.y), t.x, t.y))
        chosen += [t for t in ring if geotiff.tile_exists(entry, wmq, t.z, t.x, t.y)][:per_zoom]
    return chosen


def reader_png_tile(source, tile, selection: tuple, query: dict | None = None):
    """A WebMercatorQuad PNG ``tile`` of any reader, its parameters (``selection``: a
    params group, e.g. ``MOSAIC_SELECTION``) parsed from their declarations as the HTTP
    layer parses them."""
    from chalicelib.api import params
    from chalicelib.core import settings
    from chalicelib.operations import tiler
    values = params.parse((*params.TILE, *selection, *params.STYLE), query or {},
                          {"tileMatrixSetId": "WebMercatorQuad", "z": str(tile.z),
                           "x": str(tile.x), "y": f"{tile.y}.png"}, settings.current())
    return tiler.tile(source, params.tile_address(values), params.selection(values),
                      params.style(values))


def engine_tile(url: str, z, x, y_segment: str, query: dict, tms: str = "WebMercatorQuad"):
    """A tile through the engine as the HTTP layer calls it: parameters parsed from their
    declarations, settings read, then ``chalicelib.operations.tiler.tile``."""
    from chalicelib.api import params
    from chalicelib.core import settings
    from chalicelib.operations import tiler
    from chalicelib.readers import kinds

    config = settings.current()
    values = params.parse((*params.TILE, *params.SELECTION, *params.STYLE), query,
                          {"tileMatrixSetId": tms, "z": str(z), "x": str(x), "y": y_segment},
                          config)
    return tiler.tile(kinds.open_reader("cog", url, config), params.tile_address(values),
                      params.selection(values), params.style(values))


def summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"n": len(ordered), "median_ms": statistics.median(ordered) * 1000,
            "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1000}


def alternate(first, second, items, rounds: int = 2, warmup: int = 5):
    """Time ``first(item)`` and ``second(item)`` over ``items``, alternating per round, so
    machine noise falls on both alike. Returns the two lists of seconds."""
    for item in items[:warmup]:
        first(item)
        second(item)
    a, b = [], []
    for _ in range(rounds):
        for fn, out in ((first, a), (second, b)):
            for item in items:
                start = time.perf_counter()
                fn(item)
                out.append(time.perf_counter() - start)
    return a, b


def compare(name: str, fmt: str, tiles, ours, theirs, reference: str, end: str = "\n") -> dict:
    """Time ``ours`` against ``theirs`` on ``tiles``, print a table row, return it (the
    reference side under the key ``reference``)."""
    mine, other = alternate(ours, theirs, tiles)
    a, b = summary(mine), summary(other)
    ratio = a["median_ms"] / b["median_ms"]
    print(f"{name:22} {fmt:4} {len(tiles):5} {a['median_ms']:9.2f} / {a['p90_ms']:7.2f} "
          f"{b['median_ms']:10.2f} / {b['p90_ms']:7.2f} {ratio:6.2f}", end=end)
    return {"file": name, "format": fmt, "tiles": len(tiles), "cogtiler": a, reference: b,
            "ratio": ratio}


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "python": sys.version.split()[0], "cpus": os.cpu_count(),
               **payload}
    path.write_text(json.dumps(payload, indent=2))
    return path


def start(doc: str):
    """Parse ``--per-zoom``, silence warnings, make the synthetic data, allow the local files."""
    import argparse
    import warnings

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--per-zoom", type=int, default=25, help="tiles per zoom level and file")
    parser.add_argument("--files", nargs="*", help="only these files (a quick look; the "
                        "results file then holds only them)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    make_synthetic()
    allow_everything_local()
    return args


def allow_everything_local() -> None:
    os.environ["ALLOWED_SOURCES"] = f"{SHARED}/,{DATA}/,chalicelib/demo/"
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for name, value in config["environment_variables"].items():  # the stages' GDAL tuning
        os.environ.setdefault(name, value)
