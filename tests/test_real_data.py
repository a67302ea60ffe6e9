"""The API on the real rasters in ../shared/data/ (see its README for what each one is)."""

import json

import mercantile
import numpy as np
import pytest
import rasterio

from tests.support import ACCEPT_IMAGE, decode, tile_path

READABLE = ["RGB.byte.tif", "RGBA.byte.tif", "shade.tif", "world.rgb.tif",
            "float_raster_with_nodata.tif", "cog.tif", "cog_nodata.tif", "cog_dateline.tif",
            "cog_cmap.tif", "cog_rgb_mask.tif", "nocog.tif"]


def centre_tile(info, zoom):
    west, south, east, north = info["bounds"]
    lon = (west + east) / 2 if west <= east else ((west + east + 360) / 2 + 180) % 360 - 180
    return mercantile.tile(lon, (south + north) / 2, zoom)


def valid_pixel(src) -> tuple[int, int, float, float]:
    """(row, col, lon, lat) of the valid pixel nearest the file's centre (from GDAL's mask),
    so a test looks where there is data, whatever the file's shape."""
    from rasterio.warp import transform
    overview = max(1, max(src.width, src.height) // 1024)
    mask = src.read_masks(1, out_shape=(src.height // overview, src.width // overview))
    rows, cols = np.nonzero(mask)
    centre = np.argmin((rows - mask.shape[0] / 2) ** 2 + (cols - mask.shape[1] / 2) ** 2)
    row, col = int(rows[centre] * overview), int(cols[centre] * overview)
    x, y = src.xy(row, col)
    (lon,), (lat,) = transform(src.crs, "EPSG:4326", [x], [y])
    return row, col, lon, lat


@pytest.mark.parametrize("name", READABLE)
def test_every_real_file_has_info_and_renders_tiles(client, shared, name):
    url = str(shared / name)
    info = client.http.get(f"/cog/info?url={url}").json_body
    with rasterio.open(url) as src:
        assert (info["width"], info["height"], info["count"]) == (src.width, src.height,
                                                                   src.count)
        _, _, lon, lat = valid_pixel(src)
    assert 0 <= info["minzoom"] <= info["maxzoom"] <= 24
    for zoom in {info["minzoom"], info["maxzoom"]}:
        response = client.http.get(tile_path(mercantile.tile(lon, lat, zoom), url=url),
                                   headers=ACCEPT_IMAGE)
        assert response.status_code == 200, response.body
        pixels = decode(response.body)
        assert pixels.shape[1:] == (256, 256)
        if pixels.shape[0] == 4:
            assert (pixels[3] > 0).any()  # the valid pixel is in this tile
        # not a black tile: something is shown with contrast where data is
        assert pixels[:3].max() > 0


@pytest.mark.parametrize("name", ["cog.tif", "RGB.byte.tif", "cog_cmap.tif"])
def test_statistics_and_preview_on_real_files(client, shared, name):
    url = str(shared / name)
    stats = client.http.get(f"/cog/statistics?url={url}&max_size=256").json_body
    with rasterio.open(url) as src:
        assert len(stats) == len([c for c in src.colorinterp if c.name != "alpha"])
        full = src.read(1, masked=True)
    b1 = stats["b1"]
    assert full.min() <= b1["min"] <= b1["percentile_2"] <= b1["percentile_98"] <= b1["max"] \
        <= full.max()
    preview = client.http.get(f"/cog/preview.png?url={url}&max_size=300", headers=ACCEPT_IMAGE)
    assert max(decode(preview.body).shape[1:]) == 300


def test_uint16_cog_is_stretched_not_black(client, shared):
    url = str(shared / "cog.tif")
    info = client.http.get(f"/cog/info?url={url}").json_body
    pixels = decode(client.http.get(tile_path(centre_tile(info, info["maxzoom"]), ".png",
                                              url=url), headers=ACCEPT_IMAGE).body)
    assert pixels[0].std() > 10


def test_nodata_file_is_masked(client, shared):
    url = str(shared / "cog_nodata.tif")
    info = client.http.get(f"/cog/info?url={url}").json_body
    assert info["nodata_type"] == "Nodata" and info["nodata_value"] == 1
    tile = centre_tile(info, info["minzoom"])
    array = np.load(__import__("io").BytesIO(client.http.get(
        tile_path(tile, ".npy", url=url), headers=ACCEPT_IMAGE).body))
    data, mask = array[:-1], array[-1]
    assert (mask == 0).any() and np.all(data[0][mask == 0] == 1)
    assert np.all(data[0][mask > 0] != 1)


def test_paletted_cog_uses_its_own_colours(client, shared):
    url = str(shared / "cog_cmap.tif")
    with rasterio.open(url) as src:
        palette = {tuple(v[:3]) for v in src.colormap(1).values()}
    info = client.http.get(f"/cog/info?url={url}").json_body
    assert "colormap" in info
    pixels = decode(client.http.get(tile_path(centre_tile(info, info["maxzoom"]), ".png",
                                              url=url), headers=ACCEPT_IMAGE).body)
    colours = {tuple(c) for c in pixels[:3].reshape(3, -1).T}
    assert colours <= palette


def test_alpha_and_mask_band_files_are_transparent_outside(client, shared):
    for name in ("RGBA.byte.tif", "cog_rgb_mask.tif"):
        url = str(shared / name)
        info = client.http.get(f"/cog/info?url={url}").json_body
        assert info["nodata_type"] == ("Alpha" if name == "RGBA.byte.tif" else "Mask")
        pixels = decode(client.http.get(tile_path(centre_tile(info, info["minzoom"]), ".png",
                                                  url=url), headers=ACCEPT_IMAGE).body)
        assert pixels.shape[0] == 4 and (pixels[3] == 0).any() and (pixels[3] == 255).any()


def test_dateline_cog_shows_on_both_sides_of_180(client, shared):
    url = str(shared / "cog_dateline.tif")
    info = client.http.get(f"/cog/info?url={url}").json_body
    assert info["crosses_antimeridian"] and info["bounds"][0] > info["bounds"][2]
    lat = (info["bounds"][1] + info["bounds"][3]) / 2
    zoom = info["minzoom"] + 1
    for lon in (179.9, -179.9):
        response = client.http.get(tile_path(mercantile.tile(lon, lat, zoom), ".png", url=url),
                                   headers=ACCEPT_IMAGE)
        assert response.status_code == 200
        assert (decode(response.body)[-1] > 0).any()  # gray + alpha


def test_whole_world_geographic_data(client, shared):
    url = str(shared / "world.rgb.tif")
    for tile in mercantile.tiles(-180, -85, 180, 85, [1]):
        response = client.http.get(tile_path(tile, ".png", url=url), headers=ACCEPT_IMAGE)
        pixels = decode(response.body)
        assert response.status_code == 200 and pixels.shape[0] == 3  # fully covered: opaque


def test_float_raster_in_unusual_crs(client, shared):
    url = str(shared / "float_raster_with_nodata.tif")
    info = client.http.get(f"/cog/info?url={url}").json_body
    assert info["dtype"] == "float32" and info["nodata_type"] == "Nodata"
    with rasterio.open(url) as src:
        row, col, lon, lat = valid_pixel(src)
        expected = float(src.read(1)[row, col])
    body = client.http.get(f"/cog/point/{lon},{lat}?url={url}").json_body
    assert body["valid"] is True
    assert body["values"][0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name, status, code", [
    ("no_geo.jpg", 422, "NotARaster"),
    ("README.md", 422, "NotARaster"),
    ("missing.tif", 404, "NotFound"),
])
def test_unreadable_real_files_give_clear_errors(client, shared, name, status, code):
    response = client.http.get(f"/cog/info?url={shared / name}")
    assert response.status_code == status
    body = json.loads(response.body)
    assert body["Code"] == code and str(shared) not in body["Message"]


def test_corrupt_cog_gives_a_clear_error_and_does_not_poison_the_cache(client, shared):
    url = str(shared / "corrupt.tif")
    info = client.http.get(f"/cog/info?url={url}").json_body  # the header is intact
    west, south, east, north = info["bounds"]
    statuses = set()
    for tile in mercantile.tiles(west, south, east, north, [info["maxzoom"]]):
        response = client.http.get(tile_path(tile, ".png", url=url), headers=ACCEPT_IMAGE)
        statuses.add(response.status_code)
        if response.status_code != 200:
            body = json.loads(response.body)
            assert response.status_code == 422 and body["Code"] == "NotARaster"
            assert "damaged" in body["Message"]
    assert statuses == {200, 422}  # damaged blocks are reported, intact ones still render
    # the server still serves after it
    assert client.http.get(f"/cog/info?url={url}").status_code == 200
