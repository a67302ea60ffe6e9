"""Same tiles, same files: the engine against rio-tiler (a dev-only reference).

Masks must agree and values must match within a small tolerance wherever both call a
pixel valid. Both use nearest resampling by default, so where they read the same overview
the pixels are identical; values are compared from one zoom below the file's native zoom
up, where both read the same overview level.

Known, explained difference (not tested for values): for data crossing the antimeridian
rio-tiler sizes its warp from the full reprojected extent, which wraps the world, and so
reads a coarser overview at low zooms than the output needs; we measure the resolution at
the image centre. Masks still agree there.
"""

import warnings

import mercantile
import numpy as np
import pytest

from chalicelib.core.records import Selection
from chalicelib.readers import geotiff
from tests.support import open_dataset, read_tile, wmq

rio_tiler_io = pytest.importorskip("rio_tiler.io", reason="rio-tiler is a dev dependency")

FILES = ["cog.tif", "cog_nodata.tif", "cog_dateline.tif", "cog_cmap.tif", "cog_rgb_mask.tif",
         "RGB.byte.tif", "RGBA.byte.tif", "shade.tif", "world.rgb.tif", "nocog.tif"]


def sample_tiles(entry):
    """Tiles at every zoom from minzoom to maxzoom + 1 near the centre, and a neighbour."""
    minzoom, maxzoom = geotiff.zoom_range(entry, wmq())
    west, south, east, north = entry.geographic_bounds
    lon = (west + east) / 2 if west <= east else 179.9
    lat = (south + north) / 2
    for zoom in range(minzoom, maxzoom + 2):
        centre = mercantile.tile(lon, lat, zoom)
        for dx in (0, 1):
            x = centre.x + dx
            if x < 2 ** zoom and geotiff.tile_exists(entry, wmq(), zoom, x, centre.y):
                yield mercantile.Tile(x, centre.y, zoom), zoom >= maxzoom - 1


@pytest.mark.parametrize("name", FILES)
def test_tiles_match_rio_tiler(shared, name):
    path = str(shared / name)
    entry = open_dataset(path)
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rio-tiler warns about files without overviews
        ref_reader = rio_tiler_io.Reader(path)
        for tile, compare_values in sample_tiles(entry):
            ref = ref_reader.tile(tile.x, tile.y, tile.z)
            ours = read_tile(entry, tile.z, tile.x, tile.y, 256, Selection())
            ref_mask = ref.mask > 0
            agreement = (ref_mask == ours.mask).mean()
            assert agreement >= 0.97, f"{name} {tile}: masks agree on {agreement:.1%}"
            both = ref_mask & ours.mask
            if compare_values and both.any():
                diff = np.abs(ref.data.astype("float64") - ours.data.astype("float64"))[:, both]
                span = float(np.ptp(ref.data[:, both])) or 1.0
                assert np.percentile(diff, 99) <= 0.01 * span, f"{name} {tile}: values differ"
            compared += 1
        ref_reader.close()
    assert compared >= 3
