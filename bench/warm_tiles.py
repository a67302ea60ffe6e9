"""Warm tile time: cogtiler's engine against rio-tiler, same tiles, same files, same run.

Both sides keep their dataset open (a warm Lambda container) and produce an encoded tile:
cogtiler through ``chalicelib.tiler.tile`` (allow-list, cache, read, render, encode);
rio-tiler through ``Reader.tile`` + ``ImageData.render`` with a reader opened once per file.
uint16 data gets the same explicit ``rescale`` on both sides, a paletted file its
palette. Prints medians and p90 per
file and format, and the ratio (lower is better for cogtiler).

    make bench            # or: .venv/bin/python bench/warm_tiles.py [--tiles N]
"""

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import mercantile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

FILES = [  # name, rescale (None for uint8)
    ("RGB.byte.tif", None),
    ("cog_rgb_mask.tif", None),
    ("cog_cmap.tif", None),
    ("cog.tif", (1, 7872)),
    ("world.rgb.tif", None),
]
FORMATS = [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")]


def tiles_for(entry, reader, count):
    """Up to ``count`` tiles from minzoom to maxzoom + 1, nearest the image centre first."""
    minzoom, maxzoom = reader.zoom_range(entry)
    west, south, east, north = entry.geographic_bounds
    lon = (west + east) / 2 if west <= east else 179.9
    lat = (south + north) / 2
    chosen = []
    zooms = list(range(minzoom, maxzoom + 2))
    per_zoom = max(1, count // len(zooms))
    for zoom in zooms:
        centre = mercantile.tile(lon, lat, zoom)
        ring = sorted(
            (mercantile.Tile(centre.x + dx, centre.y + dy, zoom)
             for dx in range(-6, 7) for dy in range(-6, 7)
             if 0 <= centre.x + dx < 2 ** zoom and 0 <= centre.y + dy < 2 ** zoom),
            key=lambda t: abs(t.x - centre.x) + abs(t.y - centre.y))
        chosen += [t for t in ring if reader.tile_exists(entry, t.z, t.x, t.y)][:per_zoom]
    return chosen[:count]


def timed(fn, tiles):
    for tile in tiles[:5]:  # warm-up
        fn(tile)
    times = []
    for tile in tiles:
        start = time.perf_counter()
        fn(tile)
        times.append(time.perf_counter() - start)
    return times


def summary(times):
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=100, help="tiles per file")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"benchmark data not found at {SHARED}")
    os.environ["ALLOWED_SOURCES"] = f"{SHARED}/"
    warnings.simplefilter("ignore")
    from rio_tiler.io import Reader

    from chalicelib import reader, tiler

    print(f"{'file':18} {'fmt':5} {'tiles':>5} {'cogtiler ms p50/p90':>21} "
          f"{'rio-tiler ms p50/p90':>21} {'ratio':>6}")
    ratios = []
    for name, rescale in FILES:
        path = str(SHARED / name)
        entry = tiler.open_dataset(path)
        tiles = tiles_for(entry, reader, args.tiles)
        query = {"rescale": [f"{rescale[0]},{rescale[1]}"]} if rescale else {}
        ref = Reader(path)
        palette = ref.colormap  # a paletted file renders in its colours on both sides
        for ext, driver in FORMATS:
            def ours(t):
                tiler.tile(path, str(t.z), str(t.x), f"{t.y}.{ext}", query)

            def theirs(t):
                image = ref.tile(t.x, t.y, t.z)
                if rescale:
                    image.rescale(in_range=(rescale,))
                image.render(img_format=driver, colormap=palette)

            # interleave the two so machine noise hits both alike
            mine, other = [], []
            for _ in range(2):
                mine += timed(ours, tiles)
                other += timed(theirs, tiles)
            (m50, m90), (o50, o90) = summary(mine), summary(other)
            ratios.append(m50 / o50)
            print(f"{name:18} {ext:5} {len(tiles):5} {m50:10.2f} / {m90:7.2f} "
                  f"{o50:10.2f} / {o90:7.2f} {m50 / o50:6.2f}")
        ref.close()
    print(f"geometric mean ratio (cogtiler / rio-tiler, median warm tile): "
          f"{statistics.geometric_mean(ratios):.2f}")


if __name__ == "__main__":
    main()
