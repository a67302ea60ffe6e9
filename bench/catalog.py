"""10. Catalog mosaics: a tile of a 4-item STAC API search against the same four files as a
MosaicJSON; requests to the STAC API and range requests per tile.

The four quadrants of bench/mosaic.py (COGs of the synthetic 4096 px RGB file) are served
over HTTP by a range server, listed once as a MosaicJSON and once as four STAC items in a
real STAC API (tools/stacapi.py: stac-fastapi-pgstac on PostgreSQL + PgSTAC, on 127.0.0.1).
Tiles where the four meet, timed warm in this process, the three alternating:

* MosaicJSON: ``/mosaicjson`` over HTTP (the document cached, as in a warm container);
* search, new tile: ``/collections/quadrants`` with the API's answers forgotten before each
  tile (what a map's next tile costs: one search);
* search, repeated tile: the same tiles again with the answers kept (SOURCE_TTL).

    .venv/bin/python bench/catalog.py [--rounds 5]
"""

import argparse
import statistics
import warnings

import common
import mosaic as mosaic_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import os

    import stacapi as tool
    from rangeserver import RangeServer
    from rasterio.warp import transform_bounds

    common.make_synthetic()
    common.allow_everything_local()
    why = tool.unavailable()
    if why:
        raise SystemExit(f"catalog benchmark: {why}")
    paths = mosaic_bench.make_quadrants()
    _, document = mosaic_bench.write_mosaic(paths, relative=True)
    tiles = mosaic_bench.centre_tiles(document)

    import rasterio

    from chalicelib.api import params
    from chalicelib.core import settings
    from chalicelib.readers import catalog, kinds
    from chalicelib.sources import documents, stacapi
    from chalicelib.sources.datasets import cache

    with RangeServer(paths[0].parent) as files, tool.StacAPI() as api:
        items, boxes = [], []
        for i, path in enumerate(paths):
            with rasterio.open(path) as src:
                box = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
            boxes.append(box)
            items.append(tool.stac_item("quadrants", path.stem, box,
                                        f"2025-06-0{i + 1}T00:00:00Z",
                                        {"data": files.url(path.name)}))
        api.load(tool.collection("quadrants", boxes), items)
        os.environ.update(ALLOWED_SOURCES=f"http://{files.host}/", UNSAFE_ALLOW_HOSTS=files.host,
                          STAC_API_URL=api.url)
        cache.clear()
        documents.clear()
        stacapi.clear()
        config = settings.current()

        def from_mosaicjson(tile):
            common.reader_png_tile(kinds.open_reader(
                "mosaicjson", files.url("quadrants-http.json"), config), tile,
                params.MOSAIC_SELECTION)

        def from_search(tile):
            common.reader_png_tile(catalog.collection_reader("quadrants", {}, config), tile,
                                   params.CATALOG_SELECTION, {"assets": ["data"]})

        def new_tile(tile):
            stacapi.clear(searches_only=True)  # a map's next tile: its search is new
            from_search(tile)

        # requests: the first search tile of a container, then per new warm tile
        marks, calls = [], []
        for tile in tiles:
            new_tile(tile)
            marks.append(len(files.log))
            calls.append(stacapi.requests_made[0])
        for tile in tiles:  # warm every cache once
            from_mosaicjson(tile)
        started = stacapi.requests_made[0]
        for tile in tiles:
            new_tile(tile)
        api_per_new_tile = (stacapi.requests_made[0] - started) / len(tiles)
        for tile in tiles:
            from_search(tile)
        started = stacapi.requests_made[0]
        for tile in tiles:
            from_search(tile)
        api_per_repeated_tile = (stacapi.requests_made[0] - started) / len(tiles)
        mosaicjson_ms = mosaic_bench.timed(from_mosaicjson, tiles, args.rounds)
        search_ms = mosaic_bench.timed(new_tile, tiles, args.rounds)
        repeated_ms = mosaic_bench.timed(from_search, tiles, args.rounds)
    rows = []
    print("tile            MosaicJSON  search(new)  ratio  search(repeated)  ratio")
    for tile, a, b, c in zip(tiles, mosaicjson_ms, search_ms, repeated_ms):
        rows.append({"tile": list(tile), "mosaicjson_ms": a * 1000, "search_ms": b * 1000,
                     "repeated_ms": c * 1000})
        print(f"{tile.z}/{tile.x}/{tile.y:<9} {a * 1000:8.1f} ms {b * 1000:9.1f} ms "
              f"{b / a:5.2f}x {c * 1000:12.1f} ms   {c / a:5.2f}x")
    geo = statistics.geometric_mean
    new_over = geo([r["search_ms"] / r["mosaicjson_ms"] for r in rows])
    repeated_over = geo([r["repeated_ms"] / r["mosaicjson_ms"] for r in rows])
    first_api, first_ranges = calls[0], marks[0]
    print(f"geometric mean: search / MosaicJSON {new_over:.2f}x (new tiles), "
          f"{repeated_over:.2f}x (repeated)")
    print(f"STAC API requests: first tile {first_api}, then {api_per_new_tile:.2f} per new "
          f"tile, {api_per_repeated_tile:.2f} per repeated tile; range requests: first tile "
          f"{first_ranges}, then {(marks[-1] - marks[0]) / (len(marks) - 1):.2f} per tile")
    common.save("catalog", {"rows": rows, "items_per_tile": 4,
                            "search_over_mosaicjson": new_over,
                            "repeated_over_mosaicjson": repeated_over,
                            "api_requests_first_tile": first_api,
                            "api_requests_per_new_tile": api_per_new_tile,
                            "api_requests_per_repeated_tile": api_per_repeated_tile,
                            "range_requests_first_tile": first_ranges,
                            "range_requests_per_tile":
                                (marks[-1] - marks[0]) / (len(marks) - 1)})


if __name__ == "__main__":
    main()
