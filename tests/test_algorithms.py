"""Algorithms (chalicelib/pixels/algorithms.py): the declaration on an algorithm of the
test's own, then what the real ones promise that titiler cannot check for us: tiles that
join without seams (the buffer is read from the data), terrain RGB that decodes back to the
heights, nodata_height, and the parameters refused by name over HTTP."""

import io

import mercantile
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling

from chalicelib.core.errors import BadRequest
from chalicelib.core.geo import Bounds
from chalicelib.core.records import ImageData
from chalicelib.operations.pipeline import post_process
from chalicelib.pixels.algorithms import ALGORITHMS, Algorithm, Parameter, named


class Offset(Algorithm):
    """Adds a number to one band (a neighbourhood of one pixel, for the buffer)."""

    name, title, description = "offset", "Offset", "Adds a number."
    parameters = (Parameter("by", "number", 1.0, -10, 10, "what is added"),
                  Parameter("buffer", "integer", 1, 0, 2))
    inputs = outputs = 1

    def apply(self, image):
        image.data = image.data + self.values["by"]
        return image


def image(bands=1, size=6):
    data = np.arange(bands * size * size, dtype="float32").reshape(bands, size, size)
    return ImageData(data, np.ones((size, size), bool), Bounds(0.0, 0.0, 6.0, 6.0),
                     CRS.from_epsg(3857), tuple(f"b{i + 1}" for i in range(bands)))


def test_parameters_are_checked_by_name():
    assert Offset().values == {"by": 1.0, "buffer": 1}
    assert Offset(by=2).values["by"] == 2.0 and Offset(buffer=2.0).values["buffer"] == 2
    with pytest.raises(BadRequest, match="'by' must be between -10 and 10, got 11"):
        Offset(by=11)
    with pytest.raises(BadRequest, match="'by' must be a number"):
        Offset(by=True)
    with pytest.raises(BadRequest, match="'buffer' must be an integer"):
        Offset(buffer=1.5)
    with pytest.raises(BadRequest, match="no parameter 'bye' .*its parameters: by, buffer"):
        Offset(bye=1)
    with pytest.raises(BadRequest, match="unknown algorithm 'nope'; see /algorithms"):
        named("nope")
    with pytest.raises(BadRequest, match="must be a JSON object"):
        named("hillshade", [1])  # type: ignore[arg-type]


def test_the_buffer_is_cropped_and_the_bands_checked():
    out = post_process(image(), Offset(by=0.5))
    assert out.data.shape == (1, 4, 4) and out.mask.shape == (4, 4)
    np.testing.assert_array_equal(out.data[0, 0], [7.5, 8.5, 9.5, 10.5])
    assert tuple(out.bounds) == (1.0, 1.0, 5.0, 5.0) and isinstance(out.bounds, Bounds)
    assert post_process(image(), Offset(buffer=0)).data.shape == (1, 6, 6)
    with pytest.raises(BadRequest, match="takes 1 band"):
        post_process(image(bands=3), Offset())
    same = image()
    assert post_process(same) is same  # no algorithm: the pixels as read


def test_describe_is_titilers_shape():
    assert Offset.describe() == {
        "title": "Offset", "description": "Adds a number.",
        "inputs": {"nbands": 1}, "outputs": {"nbands": 1, "dtype": None, "min": None,
                                              "max": None},
        "parameters": {
            "by": {"default": 1.0, "description": "what is added", "maximum": 10,
                   "minimum": -10, "title": "By", "type": "number"},
            "buffer": {"default": 1, "maximum": 2, "minimum": 0, "title": "Buffer",
                       "type": "integer"}}}


def test_titilers_set_of_algorithms():
    assert list(ALGORITHMS) == [
        "hillshade", "slope", "contours", "normalizedIndex", "terrarium", "terrainrgb", "cast",
        "ceil", "floor", "min", "max", "median", "mean", "std", "var", "sum", "grayscale",
        "bitonal"]


# ---- a DEM made from a real raster --------------------------------------------------------

@pytest.fixture(scope="module")
def dem(shared, rasters):
    """Heights in metres (float32, nodata -9999 where the scene has none) from cog.tif,
    smoothed, as a COG in its own UTM zone: a DEM with real relief and a real edge."""
    path = rasters / "dem.tif"
    with rasterio.open(shared / "cog.tif") as src:
        values = src.read(1, out_shape=(1024, 1024), resampling=Resampling.average)
        profile = dict(driver="GTiff", dtype="float32", count=1, width=1024, height=1024,
                       crs=src.crs, transform=src.transform @ src.transform.scale(
                           src.width / 1024, src.height / 1024),
                       nodata=-9999.0, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate")
    heights = (values.astype("float64") * 0.25 - 300.0).astype("float32")
    heights[values == 0] = -9999.0
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(heights, 1)
        dst.build_overviews([2, 4, 8], Resampling.nearest)
    return path


@pytest.fixture(scope="module")
def aligned_dem(dem, rasters):
    """The DEM warped onto Web Mercator's zoom-10 pixel grid, over 3 x 3 zoom-9 tiles: tiles
    of zoom 9 (512 pixels) and 10 are then windows of it, read without resampling."""
    from rasterio.warp import reproject
    with rasterio.open(dem) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326",
                                                                  *src.bounds)
        centre = mercantile.tile((west + east) / 2, (south + north) / 2, 9)
        left, _, _, top = mercantile.xy_bounds(centre.x - 1, centre.y - 1, 9)
        _, bottom, right, _ = mercantile.xy_bounds(centre.x + 1, centre.y + 1, 9)
        size = 3 * 512
        transform = rasterio.transform.from_bounds(left, bottom, right, top, size, size)
        heights = np.full((size, size), -9999.0, "float32")
        reproject(rasterio.band(src, 1), heights, dst_transform=transform,
                  dst_crs="EPSG:3857", dst_nodata=-9999.0, resampling=Resampling.bilinear)
    path = rasters / "dem_3857.tif"
    with rasterio.open(path, "w", driver="GTiff", dtype="float32", count=1, width=size,
                       height=size, crs="EPSG:3857", transform=transform, nodata=-9999.0,
                       tiled=True, blockxsize=256, blockysize=256) as dst:
        dst.write(heights, 1)
    return path, centre


def npy(response) -> np.ndarray:
    assert response.status_code == 200, response.body[:300]
    return np.load(io.BytesIO(response.body))


def test_hillshade_tiles_join_without_seams(client, aligned_dem):
    """Four tiles of zoom z+1 are the hillshade of the one 512-pixel tile of zoom z over
    them: each tile's buffer comes from the data around it (a blank edge would make a seam
    of wrong shading along every tile border)."""
    dem, parent = aligned_dem
    query = f"url={dem}&algorithm=hillshade&resampling=nearest"
    whole = npy(client.http.get(f"/cog/tiles/WebMercatorQuad/{parent.z}/{parent.x}/"
                                f"{parent.y}.npy?{query}&tilesize=512"))
    assert whole.shape == (2, 512, 512) and whole[1].min() > 0  # inside the data, all valid
    joined = np.zeros_like(whole)
    for child in mercantile.children(parent):
        tile = npy(client.http.get(f"/cog/tiles/WebMercatorQuad/{child.z}/{child.x}/"
                                   f"{child.y}.npy?{query}"))
        assert tile.shape == (2, 256, 256)
        row, col = (child.y - 2 * parent.y) * 256, (child.x - 2 * parent.x) * 256
        joined[:, row:row + 256, col:col + 256] = tile
    np.testing.assert_array_equal(joined, whole)
    # not by chance: a tile of the same place with the buffer cropped off its own pixels
    # (no data around it) differs along its edges
    child = mercantile.children(parent)[0]
    blank = npy(client.http.get(f"/cog/tiles/WebMercatorQuad/{child.z}/{child.x}/{child.y}"
                                f".npy?{query}&algorithm_params=" + '{"buffer": 0}'))
    assert (blank[0, :, -1] != whole[0, :256, 255]).any()


def _decode_terrarium(rgb):
    r, g, b = rgb.astype("float64")
    return r * 256 + g + b / 256 - 32768


def _decode_terrainrgb(rgb, baseval=-10000.0, interval=0.1):
    r, g, b = rgb.astype("float64")
    return baseval + (r * 65536 + g * 256 + b) * interval


@pytest.mark.parametrize(("algorithm", "decode", "step"), [
    ("terrarium", _decode_terrarium, 1 / 256), ("terrainrgb", _decode_terrainrgb, 0.05)])
def test_terrain_rgb_decodes_back_to_the_heights(client, dem, algorithm, decode, step):
    """The PNG a map client gets (MapLibre's raster-dem) decodes to the heights read as
    they are (the raw tile, npy), within the encoding's quantisation."""
    from PIL import Image
    with rasterio.open(dem) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, "EPSG:4326",
                                                                  *src.bounds)
    for lon in np.linspace(west, east, 40):  # a tile at the data's edge: some nodata
        t = mercantile.tile(lon, (south + north) / 2, 10)
        base = f"/cog/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}"
        heights = npy(client.http.get(f"{base}.npy?url={dem}"))
        if 0.1 < (heights[1] > 0).mean() < 0.9:
            break
    png = client.http.get(f"{base}.png?url={dem}&algorithm={algorithm}")
    assert png.status_code == 200
    rgba = np.asarray(Image.open(io.BytesIO(png.body)).convert("RGBA")).transpose(2, 0, 1)
    valid = heights[1] > 0
    assert valid.any() and not valid.all()
    np.testing.assert_array_equal(rgba[3] > 0, valid)  # nodata stays transparent
    error = np.abs(decode(rgba[:3]) - heights[0])[valid]
    assert error.max() <= step + 1e-9
    # nodata_height: the holes get that height, opaque
    filled = client.http.get(f"{base}.png?url={dem}&algorithm={algorithm}"
                             '&algorithm_params={"nodata_height": 0}')
    rgba = np.asarray(Image.open(io.BytesIO(filled.body)).convert("RGBA")).transpose(2, 0, 1)
    assert (rgba[3] == 255).all()
    assert np.abs(decode(rgba[:3])[~valid]).max() <= step + 1e-9


@pytest.mark.parametrize(("query", "message"), [
    ("algorithm=hillshad", "'algorithm' must be one of"),
    ("algorithm=hillshade&algorithm_params={\"azimuth\": 400}",
     "'azimuth' must be between 0 and 360, got 400"),
    ("algorithm=hillshade&algorithm_params={\"azimut\": 40}", "no parameter 'azimut'"),
    ("algorithm=hillshade&algorithm_params=[1]", "'algorithm_params' must be a JSON object"),
    ("algorithm=hillshade&algorithm_params={", "'algorithm_params' is not valid JSON"),
    ("algorithm_params={\"azimuth\": 40}", "'algorithm_params' is given without 'algorithm'"),
    ("algorithm=normalizedIndex", "takes 2 band"),
    ("algorithm=grayscale", "takes 3 bands"),
    ("algorithm=mean", None),  # float out: stretched by the input's range
    ("algorithm=std", "rescale"),  # no range to stretch by: say what to add
    ("buffer=1", "/cog/preview.png does not take 'buffer'"),  # not ignored
    ("v=3", None),  # far from any name: a client's own (a cache buster)
    ("rescal=0,1", "unknown parameter 'rescal': did you mean 'rescale'?"),
])
def test_algorithm_errors_name_what_to_change(client, dem, query, message):
    response = client.http.get(f"/cog/preview.png?url={dem}&max_size=64&{query}")
    if message is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.body[:200]
    assert message in response.json_body["Message"]


def test_buffer_and_padding_size_the_tile(client, aligned_dem):
    dem, parent = aligned_dem
    t = mercantile.children(parent)[0]
    base = f"/cog/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy?url={dem}"
    plain = npy(client.http.get(base))
    half = npy(client.http.get(base + "&buffer=0.5"))
    two = npy(client.http.get(base + "&buffer=2"))
    padded = npy(client.http.get(base + "&padding=4"))
    assert half.shape == (2, 257, 257) and two.shape == (2, 260, 260)
    np.testing.assert_array_equal(two[:, 2:-2, 2:-2], plain)  # the tile, and data around it
    np.testing.assert_array_equal(padded, plain)  # read around, cropped again
    shaded = npy(client.http.get(base + "&buffer=3&algorithm=hillshade"))
    assert shaded.shape == (2, 256, 256)  # titiler's recipe: the tile size
    assert npy(client.http.get(base + "&buffer=4&algorithm=hillshade")).shape == (2, 258, 258)
    assert "multiple of 0.5" in client.http.get(base + "&buffer=0.3").json_body["Message"]
    response = client.http.get(base + "&buffer=2")
    left, bottom, right, top = mercantile.xy_bounds(t)
    pixel = (right - left) / 256
    box = [float(v) for v in response.headers["Content-Bbox"].split(",")]
    np.testing.assert_allclose(box, [left - 2 * pixel, bottom - 2 * pixel, right + 2 * pixel,
                                     top + 2 * pixel])


def test_statistics_of_an_algorithms_output(client, dem):
    response = client.http.get(f"/cog/statistics?url={dem}&algorithm=slope&max_size=256")
    assert response.status_code == 200, response.body[:300]
    slope = response.json_body["b1"]
    assert slope["description"] == "slope"
    assert 0 <= slope["min"] <= slope["max"] <= 90


def test_the_algorithm_list_and_definitions(client):
    listed = client.http.get("/algorithms").json_body["algorithms"]
    assert [a["id"] for a in listed] == list(ALGORITHMS)
    assert listed[0]["links"][0]["href"].endswith("/algorithms/hillshade")
    hillshade = client.http.get("/algorithms/hillshade").json_body
    assert hillshade["parameters"]["azimuth"] == {"default": 45, "maximum": 360, "minimum": 0,
                                                   "title": "Azimuth", "type": "integer"}
    assert client.http.get("/algorithms/nope").status_code == 400
