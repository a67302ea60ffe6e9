"""6. Mosaic tiles: a tile over 4 files against a tile of 1 file, and against rio-tiler's
mosaic_reader; HTTP requests per mosaic tile.

The synthetic 4096 px RGB COG (rgb_uint8_utm.tif) is cut into its four quadrants, each
written as a COG, and a MosaicJSON is built over them by the engine's own builder. Tiles
are taken where the four quadrants meet, so each one needs all four files. Timed warm, in
this process (files and documents cached as in a warm container), the two sides alternating:

* cogtiler, single file: ``chalicelib.operations.tiler.tile`` on the original COG (the same pixels);
* cogtiler, mosaic: the same tile from ``/mosaicjson`` (4 files read on threads);
* rio-tiler: ``mosaic_reader`` over the 4 files with ``Reader.tile`` + ``render``.

Then the same mosaic over a range-capable HTTP server: requests per warm mosaic tile.

    .venv/bin/python bench/mosaics.py [--rounds 3]
"""

import argparse
import json
import statistics
import warnings

import common
import mercantile

QUADRANTS = ((0, 0), (2048, 0), (0, 2048), (2048, 2048))  # col, row offsets


def make_quadrants() -> list:
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy
    from rasterio.windows import Window

    folder = common.DATA / "mosaic"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with rasterio.open(common.DATA / "rgb_uint8_utm.tif") as src:
        for i, (col, row) in enumerate(QUADRANTS):
            path = folder / f"quadrant{i}.tif"
            paths.append(path)
            if path.exists():
                continue
            window = Window(col, row, 2048, 2048)
            profile = src.profile | {"driver": "GTiff", "width": 2048, "height": 2048,
                                     "transform": src.window_transform(window)}
            with MemoryFile() as memfile:
                with memfile.open(**profile) as dst:
                    dst.write(src.read(window=window))
                with memfile.open() as staged:
                    copy(staged, str(path), driver="COG", BLOCKSIZE="512", COMPRESS="DEFLATE",
                         PREDICTOR="YES", OVERVIEW_RESAMPLING="AVERAGE")
    return paths


def write_mosaic(paths, relative: bool):
    from chalicelib.core import settings
    from chalicelib.jobs import mosaics
    document = mosaics.build([str(p) for p in paths], settings.current(), name="quadrants")
    if relative:  # served over HTTP: hrefs relative to the document
        document["tiles"] = {q: [u.rsplit("/", 1)[1] for u in files]
                             for q, files in document["tiles"].items()}
    path = paths[0].parent / ("quadrants-http.json" if relative else "quadrants.json")
    path.write_text(json.dumps(document))
    return path, document


def centre_tiles(document) -> list:
    """Tiles at the point where the four quadrants meet, from maxzoom - 3 to maxzoom, and
    their neighbours that still touch all four files."""
    from chalicelib.core import settings
    from chalicelib.readers import cog
    first = cog.COGReader.open(str(common.DATA / "rgb_uint8_utm.tif"), settings.current())
    west, south, east, north = first.geographic_bounds
    lon, lat = (west + east) / 2, (south + north) / 2
    tiles = []
    for z in range(document["maxzoom"] - 3, document["maxzoom"] + 1):
        tiles.append(mercantile.tile(lon + 1e-6, lat - 1e-6, z))
    return tiles


def timed(fn, items, rounds):
    import time
    seconds = {i: [] for i in range(len(items))}
    for _ in range(rounds):
        for i, item in enumerate(items):
            started = time.perf_counter()
            fn(item)
            seconds[i].append(time.perf_counter() - started)
    return [statistics.median(s) for s in seconds.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    common.make_synthetic()
    common.allow_everything_local()
    from rio_tiler.io import Reader
    from rio_tiler.mosaic import mosaic_reader

    from chalicelib.api import params
    from chalicelib.core import settings
    from chalicelib.readers import kinds

    paths = make_quadrants()
    mosaic_path, document = write_mosaic(paths, relative=False)
    tiles = centre_tiles(document)
    config = settings.current()
    single = kinds.open_reader("cog", str(common.DATA / "rgb_uint8_utm.tif"), config)
    mosaic = kinds.open_reader("mosaicjson", str(mosaic_path), config)
    assert all(len(mosaic._files_of_tile(_wmq(), t.z, t.x, t.y)) == 4 for t in tiles)

    def ours(source):
        return lambda tile: common.reader_png_tile(source, tile, params.MOSAIC_SELECTION)

    readers = {str(p): Reader(str(p)) for p in paths}

    def rio_tiler(tile):
        def read(asset, x, y, z):
            return readers[asset].tile(x, y, z)
        image, _ = mosaic_reader(list(readers), read, tile.x, tile.y, tile.z)
        image.render(img_format="PNG")

    for draw in (ours(single), ours(mosaic), rio_tiler):  # warm every cache once
        for tile in tiles:
            draw(tile)
    one = timed(ours(single), tiles, args.rounds)
    four = timed(ours(mosaic), tiles, args.rounds)
    reference = timed(rio_tiler, tiles, args.rounds)
    rows = []
    print("tile            1 file   mosaic(4)  ratio   rio-tiler mosaic  ratio")
    for tile, a, b, c in zip(tiles, one, four, reference):
        rows.append({"tile": list(tile), "single_ms": a * 1000, "mosaic_ms": b * 1000,
                     "rio_tiler_ms": c * 1000})
        print(f"{tile.z}/{tile.x}/{tile.y:<9} {a * 1000:6.1f} ms {b * 1000:7.1f} ms "
              f"{b / a:5.2f}x {c * 1000:10.1f} ms    {b / c:5.2f}x")
    geo = statistics.geometric_mean
    mosaic_over_single = geo([r["mosaic_ms"] / r["single_ms"] for r in rows])
    mosaic_over_rio = geo([r["mosaic_ms"] / r["rio_tiler_ms"] for r in rows])
    print(f"geometric mean: mosaic / single file {mosaic_over_single:.2f}x (4 files), "
          f"mosaic / rio-tiler {mosaic_over_rio:.2f}x")
    requests = http_requests(paths, tiles)
    common.save("mosaic", {"rows": rows, "files_per_tile": 4,
                           "mosaic_over_single": mosaic_over_single,
                           "mosaic_over_rio_tiler": mosaic_over_rio, **requests})


def _wmq():
    from chalicelib.grids import tilematrixsets
    return tilematrixsets.get("WebMercatorQuad")


def http_requests(paths, tiles) -> dict:
    """The mosaic over HTTP: requests for the first tile (document and 4 headers opened) and
    per warm tile after it, in this process."""
    import os

    from rangeserver import RangeServer

    from chalicelib.api import params
    from chalicelib.core import settings
    from chalicelib.readers import kinds
    from chalicelib.sources import documents
    from chalicelib.sources.datasets import cache

    write_mosaic(paths, relative=True)
    with RangeServer(paths[0].parent) as server:
        os.environ.update(ALLOWED_SOURCES=f"http://{server.host}/",
                          UNSAFE_ALLOW_HOSTS=server.host)
        cache.clear()
        documents.clear()
        config = settings.current()
        marks = []
        for tile in tiles:
            source = kinds.open_reader("mosaicjson", server.url("quadrants-http.json"), config)
            common.reader_png_tile(source, tile, params.MOSAIC_SELECTION)
            marks.append(len(server.log))
    first, warm = marks[0], (marks[-1] - marks[0]) / (len(marks) - 1)
    print(f"HTTP: first mosaic tile {first} requests (document + 4 file headers + data), "
          f"then {warm:.2f} requests per warm tile (4 files)")
    return {"http_first_tile_requests": first, "http_warm_requests_per_tile": warm}


if __name__ == "__main__":
    main()
