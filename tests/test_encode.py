"""The PNG writer (chalicelib/encode.py): decoders nobody here wrote (Pillow, GDAL) read back
exactly the pixels, for every channel count, with and without alpha, odd sizes, @2x tiles and
every zlevel; its bytes stay within 5% of GDAL's own PNG encoder on real tiles."""

import io

import numpy as np
import pytest
import rasterio
from PIL import Image

from chalicelib import encode
from tests.support import ACCEPT_IMAGE, decode, pattern, tile_path


def pixels(count, height, width, seed=0):
    """Noise over a smooth part: both what compresses and what does not."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (count, height, width), dtype=np.uint8)
    rows, cols = np.mgrid[0:height, 0:width]
    data[:, height // 2:] = ((rows + 3 * cols) % 256)[height // 2:]
    return data


@pytest.mark.parametrize("count, with_alpha", [(1, False), (1, True), (3, False), (3, True),
                                               (2, False), (4, False)])
@pytest.mark.parametrize("height, width", [(256, 256), (512, 512), (7, 13), (1, 1), (300, 17)])
def test_png_reads_back_exactly_in_pillow_and_gdal(count, with_alpha, height, width):
    data = pixels(count, height, width)
    alpha = pixels(1, height, width, seed=1)[0] if with_alpha else None
    expected = data if alpha is None else np.concatenate([data, alpha[None]])
    for zlevel in (0, 1, 6, 9):
        body = encode.png(data, alpha, encode.Options(zlevel=zlevel))
        np.testing.assert_array_equal(decode(body), expected)  # Pillow
        with rasterio.MemoryFile(body) as memfile, memfile.open() as dataset:  # GDAL
            assert dataset.driver == "PNG"
            np.testing.assert_array_equal(dataset.read(), expected)
        Image.open(io.BytesIO(body)).verify()  # chunk CRCs and structure


def test_zlevel_still_trades_size_for_time():
    data = pattern(256, 256, bands=3)  # compressible
    sizes = [len(encode.png(data, None, encode.Options(zlevel=z))) for z in (0, 1, 9)]
    assert sizes[0] > sizes[1] >= sizes[2]
    assert sizes[0] > data.nbytes  # level 0 stores


def test_png_bytes_are_within_5_percent_of_gdals_on_real_tiles(client, shared):
    ours = gdal = 0
    for name, query in [("RGB.byte.tif", {}), ("cog.tif", {"rescale": "1,7000"}),
                        ("cog.tif", {"rescale": "1,7000", "colormap_name": "viridis"}),
                        ("RGBA.byte.tif", {}), ("cog_cmap.tif", {})]:
        url = str(shared / name)
        info = client.http.get(f"/cog/info?url={url}").json_body
        import mercantile
        west, south, east, north = info["bounds"]
        tile = mercantile.tile((west + east) / 2, (south + north) / 2, info["maxzoom"])
        body = client.http.get(tile_path(tile, ".png", url=url, **query),
                               headers=ACCEPT_IMAGE).body
        image = decode(body)
        ours += len(body)
        gdal += len(encode._gdal("PNG", image, ZLEVEL="6"))
    assert ours <= 1.05 * gdal, (ours, gdal)
