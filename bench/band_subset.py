"""7. Band subsets: a tile of one band (``bidx=1``) against the tile of every band, on
multi-band files, from zoom 0 to the native zoom (target: within 1.2x).

GDAL uses a warped VRT's overviews only when every band is read at once; a subset used to
be warped at the VRT's full resolution (57 s for a z0 tile of cog_rgb_mask.tif, 3 s for the
demo's). The engine now reads every band and keeps the asked ones.

    .venv/bin/python bench/band_subset.py
"""

import statistics

import common
import mercantile

FILES = ["chalicelib/demo/demo.tif", "RGB.byte.tif", "cog_rgb_mask.tif",
         "large_rgb_3857.tif"]


def tiles_of(url: str) -> list:
    from chalicelib.core import settings
    from chalicelib.grids import tilematrixsets
    from chalicelib.readers import cog, geotiff
    wmq = tilematrixsets.get("WebMercatorQuad")
    entry = cog.open_dataset(url, settings.current())
    minzoom, maxzoom = geotiff.zoom_range(entry, wmq)
    west, south, east, north = entry.geographic_bounds
    chosen = []
    for zoom in range(0, maxzoom + 1):
        tile = mercantile.tile((west + east) / 2, (south + north) / 2, zoom)
        chosen.append((tile.z, tile.x, tile.y))
    return chosen


def main() -> None:
    common.start(__doc__)
    rows = []
    print(f"{'file':22} {'tiles':>5} {'all bands':>10} {'bidx=1':>10} {'ratio':>6} "
          f"{'worst':>6}")
    for name in FILES:
        url = name if name.startswith("chalicelib") else str(common.path_of(name))

        def draw(query):
            return lambda t: common.engine_tile(url, t[0], t[1], f"{t[2]}.png", query)
        tiles = tiles_of(url)
        every, subset = common.alternate(draw({}), draw({"bidx": ["1"]}), tiles, rounds=3,
                                         warmup=len(tiles))
        per_tile = [s / e for s, e in zip(subset, every)]
        row = {"file": name.rsplit("/", 1)[-1], "tiles": len(tiles),
               "all_ms": statistics.median(every) * 1000,
               "subset_ms": statistics.median(subset) * 1000,
               "ratio": statistics.median(subset) / statistics.median(every),
               "worst_ratio": max(per_tile)}
        rows.append(row)
        print(f"{row['file']:22} {row['tiles']:5} {row['all_ms']:8.1f} ms {row['subset_ms']:7.1f}"
              f" ms {row['ratio']:6.2f} {row['worst_ratio']:6.2f}")
    common.save("band_subset", {"rows": rows, "target": 1.2})


if __name__ == "__main__":
    main()
