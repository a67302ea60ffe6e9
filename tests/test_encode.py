"""The PNG writer (chalicelib/pixels/encode.py): decoders nobody here wrote (Pillow, GDAL) read back
exactly the pixels, for every channel count, with and without alpha, odd sizes, @2x tiles and
every zlevel, and the colours of paletted PNGs (lookup-table colormaps); its bytes stay within
5% of GDAL's own PNG encoder on real tiles."""

import io

import numpy as np
import pytest
import rasterio
from PIL import Image

from chalicelib.pixels import encode
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


def _table(seed=2, transparent=()):
    table = np.random.default_rng(seed).integers(0, 256, (256, 4), dtype=np.uint8)
    table[:, 3] = 255
    for entry in transparent:
        table[entry, 3] = 0 if entry % 2 else 128  # a fully and a half transparent entry
    return table


def _gdal_colours(body):
    """GDAL's reading of a paletted PNG, expanded through the colour table it reports."""
    with rasterio.MemoryFile(body) as memfile, memfile.open() as dataset:
        assert dataset.count == 1 and dataset.colorinterp[0].name == "palette"
        colormap = dataset.colormap(1)
        lookup = np.array([colormap.get(i, (0, 0, 0, 255)) for i in range(256)], np.uint8)
        return np.moveaxis(lookup[dataset.read(1)], -1, 0)


@pytest.mark.parametrize("height, width", [(256, 256), (512, 512), (7, 13), (1, 1)])
@pytest.mark.parametrize("masked", [False, True])
def test_paletted_png_shows_the_tables_colours_in_pillow_and_gdal(height, width, masked):
    """Indices and a (256, 4) table (as a lookup-table colormap renders) give the colours
    table[index]; masked pixels are transparent, the table's own alpha is kept."""
    indices = pixels(1, height, width)[0] % 200  # entries left for the masked pixels
    table = _table(transparent=(3, 4))
    expected = np.moveaxis(table[indices], -1, 0).copy()
    alpha = table[indices, 3]  # what rendering passes: the table's alpha, and the mask's
    if masked:
        alpha = np.where(pixels(1, height, width, seed=5)[0] > 60, alpha, 0).astype(np.uint8)
        expected[3] = alpha
    for zlevel in (1, 6):
        body = encode.png(indices[None], alpha, encode.Options(zlevel=zlevel, palette=table))
        assert Image.open(io.BytesIO(body)).mode == "P"
        for seen in (decode(body), _gdal_colours(body)):
            if len(seen) == 3:  # no transparent entry in use: no tRNS chunk
                seen = np.concatenate([seen, np.full((1, height, width), 255, np.uint8)])
            visible = seen[3] > 0
            np.testing.assert_array_equal(seen[3], expected[3])
            np.testing.assert_array_equal(seen[:3, visible], expected[:3, visible])
        Image.open(io.BytesIO(body)).verify()


def test_paletted_png_without_alpha_is_opaque():
    indices = pixels(1, 64, 64)[0]
    table = _table(transparent=(3,))
    body = encode.png(indices[None], None, encode.Options(palette=table))
    seen = decode(body)
    assert seen.shape[0] == 3  # no transparency chunk
    np.testing.assert_array_equal(seen, np.moveaxis(table[indices, :3], -1, 0))


def test_a_mask_over_a_table_with_every_entry_used_falls_back_to_rgba():
    indices = (np.arange(32 * 32) % 256).astype(np.uint8).reshape(32, 32)  # each entry 4 times
    alpha = np.full(indices.shape, 255, np.uint8)
    alpha[0, :2] = 0  # no entry is left free to be the transparent one
    table = _table()
    body = encode.png(indices[None], alpha, encode.Options(palette=table))
    assert Image.open(io.BytesIO(body)).mode == "RGBA"
    seen = decode(body)
    np.testing.assert_array_equal(seen[3], alpha)
    visible = alpha > 0
    np.testing.assert_array_equal(seen[:3, visible],
                                  np.moveaxis(table[indices, :3], -1, 0)[:, visible])


def test_colormapped_tiles_are_paletted_and_smaller(client, shared):
    """A tile coloured by a named colormap arrives paletted: the colours of the table at the
    rescaled values, masked pixels transparent, in fewer bytes than the same RGBA PNG."""
    import mercantile

    from chalicelib.pixels import colormaps
    url = str(shared / "cog.tif")
    info = client.http.get(f"/cog/info?url={url}").json_body
    west, south, east, north = info["bounds"]
    tile = mercantile.tile(west + 0.01, north - 0.01, info["maxzoom"] - 1)  # data and nodata
    query = {"url": url, "rescale": "1,7000", "colormap_name": "viridis"}
    body = client.http.get(tile_path(tile, ".png", **query), headers=ACCEPT_IMAGE).body
    assert Image.open(io.BytesIO(body)).mode == "P"
    raw = np.load(io.BytesIO(client.http.get(tile_path(tile, ".npy", url=url)).body))
    values, valid = raw[0].astype("float64"), raw[-1] > 0
    assert valid.any() and not valid.all()
    scaled = (np.clip((values - 1) * 255 / 6999, 0, 255) + 0.5).astype(np.uint8)
    expected = colormaps.named("viridis")[scaled]
    seen = decode(body)
    np.testing.assert_array_equal(seen[3] > 0, valid)
    np.testing.assert_array_equal(seen[:3, valid], np.moveaxis(expected, -1, 0)[:3, valid])
    rgba = encode.png(seen[:3], seen[3], encode.Options())
    assert len(body) < 0.8 * len(rgba), (len(body), len(rgba))
