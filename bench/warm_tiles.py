"""1. Warm tile, in process: cogtiler's engine against rio-tiler on the same tiles.

Both keep their dataset open (a warm Lambda container) and produce an encoded tile: cogtiler
parses its parameters and calls ``chalicelib.operations.tiler.tile`` (allow-list, cache, read,
render, encode); rio-tiler through ``Reader.tile`` + ``ImageData.render`` with one reader per file.
Non-uint8 data gets the same explicit ``rescale`` (and the DEM a colormap) on both sides, a
paletted file its palette.

    .venv/bin/python bench/warm_tiles.py [--per-zoom N]
"""

import statistics

import common

FORMATS = [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")]
#: name -> (rescale, colormap name) applied on both sides
STYLE = {"cog.tif": ((1, 7872), None), "uint16_utm.tif": ((0, 8000), None),
         "dem_float_nodata.tif": ((600, 2400), "terrain")}


def main() -> None:
    args = common.start(__doc__)
    from rio_tiler.colormap import cmap as rio_cmaps
    from rio_tiler.io import Reader

    rows = []
    print(f"{'file':22} {'fmt':4} {'tiles':>5} {'cogtiler p50/p90 ms':>20} "
          f"{'rio-tiler p50/p90 ms':>21} {'ratio':>6}")
    for name in args.files or common.REAL + common.SYNTHETIC:
        path = str(common.path_of(name))
        tiles = common.sample_tiles(path, args.per_zoom)
        rescale, cmap_name = STYLE.get(name, (None, None))
        query = {}
        if rescale:
            query["rescale"] = [f"{rescale[0]},{rescale[1]}"]
        if cmap_name:
            query["colormap_name"] = [cmap_name]
        reference = Reader(path)
        palette = rio_cmaps.get(cmap_name) if cmap_name else reference.colormap
        for ext, driver in FORMATS:
            def ours(t):
                common.engine_tile(path, t.z, t.x, f"{t.y}.{ext}", query)

            def theirs(t):
                image = reference.tile(t.x, t.y, t.z)
                if rescale:
                    image.rescale(in_range=(rescale,))
                image.render(img_format=driver, colormap=palette)

            rows.append(common.compare(name, ext, tiles, ours, theirs, "rio_tiler"))
        reference.close()
    overall = statistics.geometric_mean(r["ratio"] for r in rows)
    print(f"geometric mean of median ratios (cogtiler / rio-tiler): {overall:.2f} "
          f"over {sum(r['tiles'] for r in rows) // len(FORMATS)} tiles x {len(FORMATS)} formats")
    common.save("warm_tiles", {"rows": rows, "ratio": overall, "target": 0.8})


if __name__ == "__main__":
    main()
