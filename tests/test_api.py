"""The HTTP API through Chalice's real test client: status, headers, decoded images, errors."""

import io
import json
import os

import mercantile
import numpy as np
import pytest
import rasterio

from chalicelib.pixels import colormaps
from tests.support import (
    ACCEPT_IMAGE,
    ROOT,
    TILE,
    decode,
    fresh_process_request,
    pattern,
    tile_path,
    write_raster,
)


@pytest.fixture
def rgb(rasters):
    data = pattern(bands=3)
    return data, str(write_raster(rasters / "api_rgb.tif", data))


@pytest.fixture
def half_masked(rasters):
    data = pattern(bands=3)
    mask = np.full((256, 256), 255, "uint8")
    mask[128:] = 0
    return data, str(write_raster(rasters / "api_half.tif", data, mask=mask))


def assert_error(response, status, code=None):
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == "application/json"
    body = json.loads(response.body)
    assert set(body) == {"Code", "Message"} and body["Message"]
    if code:
        assert body["Code"] == code
    assert "Cache-Control" not in response.headers  # errors are never cached
    assert str(ROOT) not in body["Message"] and "Traceback" not in body["Message"]
    assert response.headers.get("Access-Control-Allow-Origin") == "*"
    return body


@pytest.mark.parametrize("suffix, media_type, pil_format", [
    (".png", "image/png", "PNG"), (".jpg", "image/jpeg", "JPEG"), (".jpeg", "image/jpeg", "JPEG"),
    (".webp", "image/webp", "WEBP"),
])
def test_tile_formats(client, rasters, suffix, media_type, pil_format):
    rows, cols = np.mgrid[0:256, 0:256]
    data = np.stack([rows // 2, cols // 2, (rows + cols) // 4]).astype("uint8")  # smooth
    url = str(write_raster(rasters / "api_smooth.tif", data))
    response = client.http.get(tile_path(suffix=suffix, url=url), headers=ACCEPT_IMAGE)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == media_type
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    from PIL import Image
    assert Image.open(io.BytesIO(response.body)).format == pil_format
    pixels = decode(response.body)
    assert pixels.shape[1:] == (256, 256)
    if pil_format == "PNG":
        np.testing.assert_array_equal(pixels, data)
    else:  # lossy: close, not equal
        assert np.abs(pixels.astype(int) - data).mean() < 3


def test_lossless_png_round_trip_with_alpha(client, half_masked):
    data, url = half_masked
    response = client.http.get(tile_path(suffix=".png", url=url), headers=ACCEPT_IMAGE)
    pixels = decode(response.body)
    assert pixels.shape == (4, 256, 256)
    np.testing.assert_array_equal(pixels[:3, :128], data[:, :128])
    assert np.all(pixels[3, :128] == 255) and np.all(pixels[3, 128:] == 0)


def test_no_format_gives_jpeg_when_opaque_and_png_when_masked(client, rgb, half_masked):
    opaque = client.http.get(tile_path(url=rgb[1]), headers=ACCEPT_IMAGE)
    assert opaque.headers["Content-Type"] == "image/jpeg"
    masked = client.http.get(tile_path(url=half_masked[1]), headers=ACCEPT_IMAGE)
    assert masked.headers["Content-Type"] == "image/png"
    assert decode(masked.body).shape[0] == 4


def test_webp_keeps_the_mask(client, half_masked):
    response = client.http.get(tile_path(suffix=".webp", url=half_masked[1]),
                               headers=ACCEPT_IMAGE)
    pixels = decode(response.body)
    assert pixels.shape[0] == 4 and pixels[3, 200, 10] == 0 and pixels[3, 10, 10] == 255


def test_return_mask_false_drops_alpha(client, half_masked):
    response = client.http.get(tile_path(suffix=".png", url=half_masked[1], return_mask="false"),
                               headers=ACCEPT_IMAGE)
    assert decode(response.body).shape[0] == 3


@pytest.mark.parametrize("path_suffix, query, size", [
    ("@2x.png", {}, 512), (".png", {"tilesize": 512}, 512), ("@2x.png", {"tilesize": 128}, 256),
])
def test_retina_and_tilesize(client, rgb, path_suffix, query, size):
    response = client.http.get(tile_path(suffix=path_suffix, url=rgb[1], **query),
                               headers=ACCEPT_IMAGE)
    assert decode(response.body).shape[1:] == (size, size)


def test_webmercatorquad_route_is_the_same_tile(client, rgb):
    plain = client.http.get(tile_path(suffix=".png", url=rgb[1]), headers=ACCEPT_IMAGE)
    wmq = client.http.get(tile_path(suffix=".png", url=rgb[1]).replace(
        "/cog/tiles/", "/cog/tiles/WebMercatorQuad/"), headers=ACCEPT_IMAGE)
    assert wmq.status_code == 200 and wmq.body == plain.body


def test_geotiff_tile_is_georeferenced(client, rgb):
    data, url = rgb
    response = client.http.get(tile_path(suffix=".tif", url=url), headers=ACCEPT_IMAGE)
    assert response.headers["Content-Type"].startswith("image/tiff")
    with rasterio.MemoryFile(response.body) as memfile, memfile.open() as dst:
        assert dst.crs.to_epsg() == 3857
        assert tuple(dst.bounds) == pytest.approx(tuple(mercantile.xy_bounds(TILE)), abs=1e-3)
        np.testing.assert_array_equal(dst.read(), data)


def test_npy_tile_has_raw_values_and_the_mask(client, rasters):
    data = pattern(dtype="uint16") * 100
    url = str(write_raster(rasters / "api_u16.tif", data))
    response = client.http.get(tile_path(suffix=".npy", url=url), headers=ACCEPT_IMAGE)
    array = np.load(io.BytesIO(response.body))
    assert array.shape == (2, 256, 256) and array.dtype == np.uint16
    np.testing.assert_array_equal(array[0], data[0])
    assert np.all(array[1] == 255)


def test_non_uint8_without_rescale_is_not_a_black_tile(client, rasters):
    data = (pattern(dtype="float32") * 37 + 5000)
    url = str(write_raster(rasters / "api_float.tif", data))
    pixels = decode(client.http.get(tile_path(suffix=".png", url=url), headers=ACCEPT_IMAGE).body)
    assert pixels[0].min() <= 5 and pixels[0].max() >= 250


def test_rescale_and_colormap(client, rasters):
    data = np.full((1, 256, 256), 1500, "uint16")
    url = str(write_raster(rasters / "api_cmap.tif", data))
    response = client.http.get(tile_path(suffix=".png", url=url, rescale="1000,2000",
                                         colormap_name="viridis"), headers=ACCEPT_IMAGE)
    pixels = decode(response.body)
    # (1500-1000)/1000*255 = 127.5 -> 127: truncated, as rio-tiler's rescale
    expected = colormaps.named("viridis")[127, :3]
    assert np.all(pixels[:3, 0, 0] == expected)


def test_custom_colormap_json(client, rasters):
    data = np.ones((1, 256, 256), "uint8")
    data[0, :, 128:] = 2
    url = str(write_raster(rasters / "api_classes.tif", data))
    cmap = json.dumps({"1": [255, 0, 0, 255], "2": [0, 0, 255, 255]})
    pixels = decode(client.http.get(tile_path(suffix=".png", url=url, colormap=cmap),
                                    headers=ACCEPT_IMAGE).body)
    assert list(pixels[:, 0, 0]) == [255, 0, 0] and list(pixels[:, 0, 255]) == [0, 0, 255]


def test_paletted_file_renders_with_its_own_colormap(client, rasters):
    data = np.zeros((1, 256, 256), "uint8")
    data[0, :, 128:] = 1
    url = str(write_raster(rasters / "api_palette.tif", data,
                           colormap={0: (10, 20, 30, 255), 1: (200, 100, 50, 255)}))
    pixels = decode(client.http.get(tile_path(suffix=".png", url=url), headers=ACCEPT_IMAGE).body)
    assert list(pixels[:3, 5, 5]) == [10, 20, 30] and list(pixels[:3, 5, 200]) == [200, 100, 50]


def test_expression_tile(client, rasters):
    data = np.stack([np.full((256, 256), 10, "uint8"), np.full((256, 256), 30, "uint8")])
    url = str(write_raster(rasters / "api_two.tif", data))
    response = client.http.get(tile_path(suffix=".npy", url=url,
                                         expression="(b2-b1)/(b2+b1)"), headers=ACCEPT_IMAGE)
    array = np.load(io.BytesIO(response.body))
    np.testing.assert_allclose(array[0], 0.5)
    response = client.http.get(tile_path(suffix=".png", url=url, expression="(b2-b1)/(b2+b1)",
                                         rescale="0,1"), headers=ACCEPT_IMAGE)
    assert np.all(decode(response.body)[0] == 127)  # 127.5, truncated as rio-tiler


def test_requests_without_accept_header_are_answered(client, rgb):
    assert client.http.get(tile_path(suffix=".png", url=rgb[1])).status_code == 200
    assert client.http.get(f"/cog/info?url={rgb[1]}").status_code == 200


def test_info(client, rgb):
    response = client.http.get(f"/cog/info?url={rgb[1]}")
    info = response.json_body
    assert info["count"] == 3 and info["width"] == 256 and info["crs"] == "EPSG:3857"
    assert info["minzoom"] == info["maxzoom"] == TILE.z
    assert info["name"] == "api_rgb.tif"


def test_info_as_geojson(client, rgb, shared):
    response = client.http.get(f"/cog/info.geojson?url={rgb[1]}")
    assert response.headers["Content-Type"] == "application/geo+json"
    feature = response.json_body
    west, south, east, north = mercantile.bounds(TILE)
    assert feature["geometry"]["coordinates"][0][2] == pytest.approx([east, north])
    assert feature["properties"]["count"] == 3
    crossing = client.http.get(f"/cog/info.geojson?url={shared}/cog_dateline.tif").json_body
    assert crossing["geometry"]["type"] == "MultiPolygon"  # split at 180 degrees


def test_statistics(client, rgb):
    data, url = rgb
    stats = client.http.get(f"/cog/statistics?url={url}&p=50&histogram_bins=4").json_body
    assert set(stats) == {"b1", "b2", "b3"}
    assert stats["b1"]["max"] == data[0].max() and stats["b1"]["percentile_50"] == \
        pytest.approx(np.percentile(data[0], 50))
    assert len(stats["b1"]["histogram"][0]) == 4


def test_point(client, rgb):
    data, url = rgb
    left, bottom, right, top = mercantile.xy_bounds(TILE)
    res = (right - left) / 256
    lon, lat = mercantile.lnglat(left + res * 10.5, top - res * 20.5)
    body = client.http.get(f"/cog/point/{lon},{lat}?url={url}").json_body
    assert body["values"] == data[:, 20, 10].tolist() and body["band_names"] == ["b1", "b2", "b3"]
    body = client.http.get(f"/cog/point/{lon},{lat}?url={url}&expression=b1%2Bb2").json_body
    assert body["values"] == [float(int(data[0, 20, 10]) + int(data[1, 20, 10]))]


def test_preview_and_sizes(client, rasters):
    url = str(write_raster(rasters / "api_wide.tif", pattern(200, 400), blocksize=16))
    response = client.http.get(f"/cog/preview.png?url={url}&max_size=100", headers=ACCEPT_IMAGE)
    assert response.status_code == 200 and decode(response.body).shape[1:] == (50, 100)
    default = client.http.get(f"/cog/preview?url={url}", headers=ACCEPT_IMAGE)
    assert decode(default.body).shape[1:] == (200, 400)  # never upsampled past native size
    sized = client.http.get(f"/cog/preview/64x32.webp?url={url}", headers=ACCEPT_IMAGE)
    assert sized.headers["Content-Type"] == "image/webp" and \
        decode(sized.body).shape[1:] == (32, 64)


def test_bbox(client, rgb):
    data, url = rgb
    west, south, east, north = mercantile.bounds(TILE)
    inner = f"{west + (east - west) / 4},{south + (north - south) / 4},{east},{north}"
    response = client.http.get(f"/cog/bbox/{inner}.png?url={url}", headers=ACCEPT_IMAGE)
    assert response.status_code == 200
    pixels = decode(response.body)
    assert pixels.shape[0] in (3, 4) and 150 < pixels.shape[2] < 250
    sized = client.http.get(f"/cog/bbox/{inner}/100x80.jpg?url={url}", headers=ACCEPT_IMAGE)
    assert decode(sized.body).shape[1:] == (80, 100)
    with rasterio.MemoryFile(client.http.get(f"/cog/bbox/{inner}.tif?url={url}",
                                             headers=ACCEPT_IMAGE).body) as m, m.open() as dst:
        assert dst.crs.to_epsg() == 4326
        assert dst.bounds.left == pytest.approx(west + (east - west) / 4)


def test_tilejson_carries_parameters_and_stage_prefix(client, rgb):
    url = rgb[1]
    body = client.http.get(f"/cog/tilejson.json?url={url}&rescale=0,100&bidx=1&tile_format=webp"
                           "&tile_scale=2", headers={"Host": "tiles.example.com",
                                                     "X-Forwarded-Proto": "https"}).json_body
    assert body["tilejson"] == "3.0.0"
    tiles = body["tiles"][0]
    assert tiles.startswith("https://tiles.example.com/cog/tiles/WebMercatorQuad/{z}/{x}/{y}"
                            "@2x.webp?")
    assert "rescale=0%2C100" in tiles and "bidx=1" in tiles and "tile_format" not in tiles
    assert body["minzoom"] == body["maxzoom"] == TILE.z
    assert body["bounds"] == pytest.approx(list(mercantile.bounds(TILE)), abs=1e-6)
    # the same route under the titiler path
    assert client.http.get(f"/cog/WebMercatorQuad/tilejson.json?url={url}").status_code == 200


def test_tilejson_under_an_api_gateway_stage():
    from app import app
    event = {
        "resource": "/cog/tilejson.json", "path": "/cog/tilejson.json", "httpMethod": "GET",
        "headers": {"Host": "abc.execute-api.us-east-1.amazonaws.com",
                    "X-Forwarded-Proto": "https", "Accept": "*/*"},
        "multiValueHeaders": {}, "pathParameters": None, "stageVariables": None, "body": None,
        "queryStringParameters": {"url": "chalicelib/demo/demo.tif"},
        "multiValueQueryStringParameters": {"url": ["chalicelib/demo/demo.tif"]},
        "requestContext": {"resourcePath": "/cog/tilejson.json", "httpMethod": "GET",
                           "path": "/api/cog/tilejson.json", "stage": "api"},
        "isBase64Encoded": False,
    }
    response = app(event, None)
    assert response["statusCode"] == 200
    import base64
    body = response["body"]
    body = json.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body)
    assert body["tiles"][0].startswith(
        "https://abc.execute-api.us-east-1.amazonaws.com/api/cog/tiles/WebMercatorQuad/")


@pytest.mark.parametrize("accept", [  # what clients send for an image
    ACCEPT_IMAGE,  # Chrome's <img>
    {"Accept": "image/avif,image/webp,*/*"},  # Firefox's
    {"Accept": "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"},
    {"Accept": "*/*"},  # curl, GDAL
    {},  # no Accept at all
])
def test_lambda_proxy_tile_is_base64_for_api_gateway(rgb, accept):
    from app import app
    # the resource API Gateway has for /cog/tiles/{z}/{x}/{y}: its variables take the names
    # of /cog/tiles/{tileMatrixSetId}/{z}/{x}/{y}'s (one variable child per resource)
    resource = "/cog/tiles/{tileMatrixSetId}/{z}/{x}"
    event = {
        "resource": resource, "path": "/cog/tiles/10/300/380.webp",
        "httpMethod": "GET", "headers": accept, "multiValueHeaders": {},
        "pathParameters": {"tileMatrixSetId": "10", "z": "300", "x": "380.webp"},
        "stageVariables": None,
        "multiValueQueryStringParameters": {"url": [rgb[1]]}, "body": None,
        "queryStringParameters": {"url": rgb[1]},
        "requestContext": {"resourcePath": resource, "httpMethod": "GET",
                           "path": "/api/cog/tiles/10/300/380.webp"},
        "isBase64Encoded": False,
    }
    response = app(event, None)
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is True
    assert response["headers"]["Content-Type"] == "image/webp"
    import base64
    assert decode(base64.b64decode(response["body"])).shape[1:] == (256, 256)


def test_viewer_page(client):
    response = client.http.get("/", headers={"Accept": "text/html,*/*"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.body.decode()
    assert "leaflet" in page.lower() and '"chalicelib/demo/demo.tif"' in page
    assert 'const API_PREFIX = "";' in page and "tilejson.json" in page
    assert '"nearest", "bilinear"' in page  # the resampling choices, from the declarations


def test_the_viewer_opens_empty_where_the_demo_is_not_allowed(monkeypatch):
    from chalice.test import Client

    from app import app
    with Client(app, stage_name="prod", project_dir=str(ROOT)) as prod:
        page = prod.http.get("/", headers={"Accept": "text/html"}).body.decode()
    assert "const DEFAULT_URL = null;" in page


def test_colormaps_as_tables_and_swatches(client):
    table = client.http.get("/colorMaps/viridis").json_body
    assert len(table) == 256 and table["0"] == colormaps.named("viridis")[0].tolist()
    swatch = client.http.get("/colorMaps/viridis_r?format=png&width=64&height=4",
                             headers=ACCEPT_IMAGE)
    assert swatch.headers["Content-Type"] == "image/png"
    pixels = decode(swatch.body)
    assert pixels.shape == (4, 4, 64)  # RGBA
    np.testing.assert_array_equal(pixels[:, 0, 0], colormaps.named("viridis")[255])
    np.testing.assert_array_equal(pixels[:, 3, 63], colormaps.named("viridis")[0])
    assert_error(client.http.get("/colorMaps/nope"), 400)


@pytest.mark.parametrize("query, words", [
    ("bidx=9", "band 9 does not exist"),
    ("expression=b4", "band 4 does not exist"),
    ("colormap_name=viridis", "a colormap colours one band"),
    ("rescale=0,1&rescale=0,2", "'rescale' has 2 ranges for 3 bands"),
])
def test_tilejson_refuses_what_the_tiles_would(client, rgb, query, words):
    body = assert_error(client.http.get(f"/cog/tilejson.json?url={rgb[1]}&{query}"), 400)
    assert words in body["Message"]
    tile = client.http.get(tile_path(suffix=".png", url=rgb[1]) + "&" + query)
    assert tile.status_code == 400 and tile.json_body["Message"] == body["Message"]


def test_viewer_behind_an_api_gateway_stage_without_trailing_slash():
    from app import app
    event = {
        "resource": "/", "path": "/", "httpMethod": "GET", "headers": {"Accept": "text/html"},
        "multiValueHeaders": {}, "pathParameters": None, "stageVariables": None, "body": None,
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "requestContext": {"resourcePath": "/", "httpMethod": "GET", "path": "/api",
                           "stage": "api"},
        "isBase64Encoded": False,
    }
    response = app(event, None)
    import base64
    page = base64.b64decode(response["body"]).decode()
    assert 'const API_PREFIX = "/api";' in page


# ---- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/cog/tiles/10/300/380.gif?url={url}",
    "/cog/tiles/10/99999/380.png?url={url}",
    "/cog/tiles/x/300/380.png?url={url}",
    "/cog/tiles/10/300/380.png?url={url}&bidx=0",
    "/cog/tiles/10/300/380.png?url={url}&rescale=1",
    "/cog/tiles/10/300/380.png?url={url}&colormap_name=nope",
    "/cog/tiles/10/300/380.png?url={url}&colormap=%7Bbad",
    "/cog/tiles/10/300/380.png?url={url}&expression=__import__(%22os%22)",
    "/cog/tiles/10/300/380.png?url={url}&resampling=magic",
    "/cog/tiles/10/300/380.png?url={url}&tilesize=5000",
    "/cog/tiles/10/300/380.png?url={url}&bidx=9",
    "/cog/tiles/10/300/380.png?url={url}&colormap_name=viridis",
    "/cog/tiles/10/300/380.png",
    "/cog/point/abc?url={url}",
    "/cog/point/200,0?url={url}",
    "/cog/bbox/1,2,3.png?url={url}",
    "/cog/bbox/0,0,1,1.gif?url={url}",
    "/cog/preview.png?url={url}&max_size=0",
    "/cog/preview.png?url={url}&max_size=100000",
    "/cog/preview/axb.png?url={url}",
    "/cog/preview/100000x100000.png?url={url}",
    "/cog/preview.png?url={url}&width=100000",
    "/cog/bbox/0,0,1,1/100000x10.png?url={url}",
    "/cog/statistics?url={url}&histogram_bins=0",
    "/cog/tilejson.json?url={url}&tile_format=gif",
])
def test_malformed_parameters_are_400(client, rgb, path):
    assert_error(client.http.get(path.format(url=rgb[1]), headers=ACCEPT_IMAGE), 400)


@pytest.mark.parametrize("url", [
    "/etc/passwd", "file:///etc/passwd", "/vsicurl/http://169.254.169.254/latest",
    "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:22/x.tif",
    "s3://somebody-elses-bucket/x.tif", "chalicelib/demo/../../app.py",
])
def test_sources_not_allowed_are_403(client, url):
    from urllib.parse import quote
    body = assert_error(client.http.get(f"/cog/info?url={quote(url, safe='')}"), 403)
    assert body["Code"] == "SourceNotAllowed"


def test_missing_file_is_404_without_the_path(client, rasters):
    body = assert_error(client.http.get(f"/cog/info?url={rasters}/missing.tif"), 404)
    assert str(rasters) not in body["Message"] and "/work" not in body["Message"]


def test_tile_outside_the_data_is_404(client, rgb):
    body = assert_error(client.http.get(tile_path(mercantile.Tile(0, 0, 10), ".png",
                                                  url=rgb[1]), headers=ACCEPT_IMAGE), 404)
    assert body["Code"] == "TileOutsideBounds"


@pytest.mark.parametrize("suffix", [".png", ".webp", ".jpg", ".tif", ".npy", ""])
def test_tiles_outside_the_data_on_request_are_empty_or_no_content(client, rgb, suffix):
    outside = mercantile.Tile(0, 0, 10)
    empty = client.http.get(tile_path(outside, suffix, url=rgb[1], outside="empty"),
                            headers=ACCEPT_IMAGE)
    assert empty.status_code == 200 and empty.headers["Content-Bbox"]
    if suffix == ".npy":
        pixels = np.load(io.BytesIO(empty.body))
    elif suffix == ".tif":
        with rasterio.MemoryFile(empty.body) as m, m.open() as dst:
            pixels = np.concatenate([dst.read(), dst.read_masks(1)[None]])
            assert dst.bounds == pytest.approx(mercantile.xy_bounds(outside))
    else:
        pixels = decode(empty.body)
    assert pixels.shape[1:] == (256, 256) and pixels.max() <= 2  # black (lossy WEBP: ~0)
    if suffix != ".jpg":  # JPEG has no alpha: black
        assert pixels.shape[0] in (2, 4) and not pixels[-1].any()  # transparent
    none = client.http.get(tile_path(outside, suffix, url=rgb[1], outside="204"),
                           headers=ACCEPT_IMAGE)
    assert none.status_code == 204 and not none.body
    inside = client.http.get(tile_path(TILE, suffix, url=rgb[1], outside="204"),
                             headers=ACCEPT_IMAGE)
    assert inside.status_code == 200 and decode_any(inside.body, suffix).any()


def decode_any(body: bytes, suffix: str) -> np.ndarray:
    if suffix == ".npy":
        return np.load(io.BytesIO(body))
    if suffix == ".tif":
        with rasterio.MemoryFile(body) as m, m.open() as dst:
            return dst.read()
    return decode(body)


def test_not_a_raster_is_422(client, rasters):
    path = rasters / "text.tif"
    path.write_text("hello, not a tiff")
    assert_error(client.http.get(f"/cog/info?url={path}"), 422, "NotARaster")


def test_oversized_images_are_refused_not_crashed(client, rasters):
    # 1400 x 1400 RGB noise: an incompressible 5.9 MB PNG, beyond Lambda's 6 MB after base64
    noise = np.random.default_rng(1).integers(0, 255, (3, 1400, 1400), "uint8")
    url = str(write_raster(rasters / "api_big.tif", noise))
    response = client.http.get(f"/cog/preview.png?url={url}&max_size=1400", headers=ACCEPT_IMAGE)
    assert_error(response, 400, "TooLarge")


def test_unexpected_errors_are_a_bare_500(client, rgb, monkeypatch):
    from chalicelib.operations import tiler

    def broken(*args, **kwargs):
        raise RuntimeError("/secret/server/path exploded")

    monkeypatch.setattr(tiler, "info", broken)
    body = assert_error(client.http.get(f"/cog/info?url={rgb[1]}"), 500)
    assert "secret" not in body["Message"]


def test_a_result_that_cannot_be_serialised_is_still_a_json_500(client, rgb, monkeypatch):
    """Serialising the response is inside the error mapping: nothing escapes the handler
    (on Lambda an escaped exception is API Gateway's bare 502)."""
    from chalicelib.operations import tiler
    monkeypatch.setattr(tiler, "point", lambda *args: {"values": [complex(1, 2)]})
    body = assert_error(client.http.get(f"/cog/point/-77.7,24.5?url={rgb[1]}"), 500)
    assert body["Code"] == "InternalError"


def test_cache_max_age_is_configurable(client, rgb, monkeypatch):
    monkeypatch.setenv("CACHE_MAX_AGE", "60")
    response = client.http.get(tile_path(suffix=".png", url=rgb[1]), headers=ACCEPT_IMAGE)
    assert response.headers["Cache-Control"] == "public, max-age=60"
    monkeypatch.setenv("CACHE_MAX_AGE", "0")
    response = client.http.get(tile_path(suffix=".png", url=rgb[1]), headers=ACCEPT_IMAGE)
    assert "Cache-Control" not in response.headers


def test_demo_dataset_is_allowed_in_dev():
    from chalice.test import Client

    from app import app
    with Client(app, stage_name="dev", project_dir=str(ROOT)) as dev:
        info = dev.http.get("/cog/info?url=chalicelib/demo/demo.tif").json_body
        assert info["count"] == 3
        t = mercantile.tile(-77.7, 24.5, info["maxzoom"])
        response = dev.http.get(tile_path(t, ".png", url="chalicelib/demo/demo.tif"),
                                headers=ACCEPT_IMAGE)
        assert response.status_code == 200 and decode(response.body)[:3].any()


def test_prod_allows_nothing_by_default():
    from chalice.test import Client

    from app import app
    with Client(app, stage_name="prod", project_dir=str(ROOT)) as prod:
        response = prod.http.get("/cog/info?url=chalicelib/demo/demo.tif")
        assert response.status_code == 403


# ---- methods and unknown paths ---------------------------------------------------------------

def test_head_answers_like_get_without_a_body(client, rgb):
    get = client.http.get(tile_path(suffix=".png", url=rgb[1]), headers=ACCEPT_IMAGE)
    head = client.http.request("HEAD", tile_path(suffix=".png", url=rgb[1]),
                               headers=ACCEPT_IMAGE)
    assert head.status_code == 200 and head.body == b""
    for name in ("Content-Type", "Cache-Control", "Content-Bbox", "Content-Crs"):
        assert head.headers[name] == get.headers[name]
    missing = client.http.request("HEAD", "/cog/info?url=/etc/passwd")
    assert missing.status_code == 403 and missing.body == b""


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_other_methods_are_a_json_405(client, rgb, method):
    response = client.http.request(method, f"/cog/info?url={rgb[1]}",
                                   headers={"Content-Type": "text/plain"}, body=b"x")
    body = assert_error(response, 405, "MethodNotAllowed")
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS" and method in body["Message"]


def _proxy_event(path, method="GET"):
    """What API Gateway sends for a path no other resource matches: the /{proxy+} route."""
    return {
        "resource": "/{proxy+}", "path": path, "httpMethod": method,
        "headers": {"Accept": "*/*", "Host": "abc.execute-api.us-east-1.amazonaws.com"},
        "multiValueHeaders": {}, "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None, "body": None, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "isBase64Encoded": False,
        "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method,
                           "path": f"/api{path}", "stage": "api"},
    }


@pytest.mark.parametrize("path, method, status", [
    ("/nothing", "GET", 404), ("/cog/tiles/1/2/3/4/5", "GET", 404), ("/cog", "DELETE", 405),
    ("/api/v1/cog/info", "GET", 404),
])
def test_unknown_paths_answer_the_json_error_shape(path, method, status):
    import base64

    from app import app
    response = app(_proxy_event(path, method), None)
    assert response["statusCode"] == status
    body = response["body"]
    body = json.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body)
    assert set(body) == {"Code", "Message"}
    if status == 404:
        assert body["Code"] == "NotFound" and "/openapi.json" in body["Message"]
    else:
        assert body["Code"] == "MethodNotAllowed" and response["headers"]["Allow"]


def test_unknown_single_segment_paths_through_the_test_client(client):
    # Chalice's local router matches {proxy+} against one path segment only (API Gateway
    # matches any depth): /nothing is ours, deeper unknown paths get Chalice's own 403
    assert_error(client.http.get("/nothing"), 404, "NotFound")


def test_eviction_never_closes_a_dataset_another_thread_reads(shared, monkeypatch):
    """chalice local serves on threads; with a one-entry dataset cache, every request for
    another file evicts the one a neighbour is reading. None may fail for it."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support import engine_tile
    monkeypatch.setenv("DATASET_CACHE_SIZE", "1")
    import mercantile

    from tests.support import open_dataset
    files = [shared / "cog.tif", shared / "cog_nodata.tif", shared / "RGB.byte.tif"]
    tiles = {}
    for path in files:
        west, south, east, north = open_dataset(path).geographic_bounds
        tiles[path.name] = mercantile.tile((west + east) / 2, (south + north) / 2, 11)

    def draw(i):
        path = files[i % len(files)]
        z, x, y = tiles[path.name].z, tiles[path.name].x, tiles[path.name].y
        return engine_tile(path, z, x, f"{y}.npy", {"rescale": ["0,8000"]}).body

    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(draw, range(240)))
    assert all(bodies)


# ---- files and requests that must be refused or answered, never crash or hang ----------

def _write(path, width, height, transform, crs="EPSG:3857", **profile):
    import rasterio
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1,
                       dtype=profile.pop("dtype", "uint8"), crs=crs, transform=transform,
                       **profile) as dst:
        if not profile.get("sparse_ok"):
            dst.write(np.arange(width * height, dtype="uint8").reshape(1, height, width))
    return path


def test_a_rotated_grid_is_served(client, rasters):
    """A 90-degree rotated geotransform (a = e = 0) used to divide by zero."""
    from affine import Affine
    path = _write(rasters / "rotated.tif", 64, 48, Affine(0, 100, 1000000, 100, 0, 5000000))
    for route in ("info", "statistics", "tilejson.json", "preview.png"):
        response = client.http.get(f"/cog/{route}?url={path}", headers={"Accept": "*/*"})
        assert response.status_code == 200, (route, response.body[:200])


def test_infinite_nodata_is_valid_json(client, rasters):
    from affine import Affine
    path = _write(rasters / "inf.tif", 32, 32, Affine(10, 0, 0, 0, -10, 0), dtype="float32",
                  nodata=float("-inf"))
    response = client.http.get(f"/cog/info?url={path}")
    assert response.status_code == 200
    assert response.json_body["nodata_value"] is None  # strict JSON has no -Infinity
    assert b"Infinity" not in response.body


def test_absurd_extents_and_huge_blocks_are_refused_at_once(client, rasters):
    from affine import Affine
    absurd = _write(rasters / "absurd.tif", 16, 16, Affine(1e30, 0, 0, 0, -1e30, 0))
    sparse = _write(rasters / "bigblocks.tif", 40000, 40000, Affine(1, 0, 0, 0, -1, 0),
                    tiled=True, blockxsize=32768, blockysize=32768, sparse_ok=True)
    assert sparse.stat().st_size < 100_000  # nothing was written: a sparse file
    for path, words in ((absurd, "extent"), (sparse, "blocks")):
        response = client.http.get(f"/cog/info?url={path}")
        assert response.status_code == 422 and words in response.json_body["Message"]


def test_a_fifo_is_not_opened(client, rasters):
    import os
    fifo = rasters / "pipe.tif"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    response = client.http.get(f"/cog/info?url={fifo}")
    assert response.status_code == 404 and "regular file" in response.json_body["Message"]


def test_statistics_size_is_bounded(client):
    response = client.http.get("/cog/statistics?url=chalicelib/demo/demo.tif&max_size=4096")
    assert response.status_code == 400 and "max_size" in response.json_body["Message"]


def test_stretch_ranges_per_dataset_are_bounded(shared):
    from chalicelib.core import memo
    from chalicelib.core.records import Selection
    from chalicelib.pixels.expression import parse
    from chalicelib.readers import geotiff
    from tests.support import open_dataset
    dataset = open_dataset(shared / "cog.tif")
    for i in range(memo.MAX_STRETCH_MEMO + 20):
        geotiff.stretch_ranges(dataset, Selection(expression=parse(f"b1+{i}")))
    kept = [k for k in dataset.memo if k[0] == "stretch"]
    assert len(kept) == memo.MAX_STRETCH_MEMO


def test_expressions_are_budgeted_before_anything_is_read(client):
    """A 48-level nested expression on a 4096-pixel preview peaked at 6.5 GB; now refused
    up front, while the same over a tile, and a plain ratio over the preview, are served."""
    nested = "b1"
    for _ in range(48):
        nested = f"sqrt({nested}+1)"
    from urllib.parse import quote
    base = "/cog/preview.png?url=chalicelib/demo/demo.tif&rescale=0,50&width=4096&height=4096"
    refused = client.http.get(f"{base}&expression={quote(nested)}")
    assert refused.status_code == 400 and "MB" in refused.json_body["Message"]
    tile = client.http.get(f"/cog/tiles/9/145/219.png?url=chalicelib/demo/demo.tif"
                           f"&rescale=0,50&expression={quote(nested)}")
    assert tile.status_code == 200
    ratio = client.http.get(base.replace("4096", "2048").replace("0,50", "-1,1")
                            + "&expression=" + quote("(b2-b1)/(b2+b1)"))
    assert ratio.status_code == 200, ratio.body[:200]


@pytest.mark.memory
@pytest.mark.parametrize("path", [
    "/cog/preview.jpg?url=chalicelib/demo/demo.tif&width=3900&height=3900",
    "/cog/preview.png?url=chalicelib/demo/demo.tif&width=2048&height=2048&rescale=-1,1"
    "&expression=%28b2-b1%29%2F%28b2%2Bb1%29",
    "/cog/statistics?url={shared}/cog.tif&max_size=2048",
    "/cog/tiles/9/145/219@2x.png?url=chalicelib/demo/demo.tif&tilesize=1024&rescale=0,9"
    "&expression=" + "sqrt%28" * 8 + "b1" + "%2B1%29" * 8,  # just within the budget
    "/stac/preview.png?url=chalicelib/demo/item.json&assets=visual&max_size=4096",
])
def test_peak_memory_per_request_class_stays_within_budget(shared, path):
    """One fresh process per class, as a Lambda container, each request at the largest its
    limits allow: the peak RSS (imports included) must stay under 1 GB of Lambda's 1536 MB.
    (Answers may be 400 when the encoded image exceeds the response limit: the work was
    still done.)"""
    env = {**os.environ, "ALLOWED_SOURCES": f"chalicelib/demo/,{shared}/"}
    probe = fresh_process_request(path.format(shared=shared), env=env, timeout=120)
    assert probe["status"] in (200, 400), probe
    assert probe["peak_mb"] < 1024, probe


def test_reads_too_big_to_finish_are_refused_before_reading(client, rasters):
    """A large file without overviews (sparse: it costs no disk): a preview or a low-zoom
    tile would decompress gigabytes (the average-resampled preview of such a file ran for
    minutes); refused at once, saying to make a COG, while a tile at full resolution is read."""
    import mercantile
    from affine import Affine
    path = _write(rasters / "huge_sparse.tif", 200_000, 200_000,
                  Affine(1, 0, 500_000, 0, -1, 5_000_000), crs="EPSG:32633", tiled=True,
                  blockxsize=512, blockysize=512, sparse_ok=True, BIGTIFF="YES")
    assert path.stat().st_size < 10_000_000
    for route in ("preview.png?resampling=average&", "preview.png?", "statistics?"):
        response = client.http.get(f"/cog/{route}url={path}", headers={"Accept": "*/*"})
        assert response.status_code == 400, (route, response.body[:200])
        assert "COG" in response.json_body["Message"]
    info = client.http.get(f"/cog/info?url={path}").json_body
    west, south, east, north = info["bounds"]
    tile = mercantile.tile((west + east) / 2, (south + north) / 2, info["maxzoom"])
    response = client.http.get(f"/cog/tiles/{tile.z}/{tile.x}/{tile.y}.npy?url={path}")
    assert response.status_code == 200


def test_a_slow_read_does_not_stall_other_requests_for_the_file(shared):
    """chalice local answers on threads; while one request holds a dataset (a slow read,
    here held open until the other finishes), another request for the same file is served
    on a spare handle instead of waiting for it."""
    import threading

    from chalicelib.sources.datasets import reading
    from tests.support import config, engine_tile, open_dataset
    path = shared / "cog.tif"
    dataset = open_dataset(path)
    holding, release = threading.Event(), threading.Event()

    def slow_request():
        with reading(dataset, config()):
            holding.set()
            release.wait(timeout=60)

    slow = threading.Thread(target=slow_request)
    slow.start()
    try:
        assert holding.wait(timeout=30)
        done = []
        other = threading.Thread(target=lambda: done.append(
            engine_tile(path, 5, 10, "6.npy", {"rescale": ["0,8000"]})))
        other.start()
        other.join(timeout=30)  # a bound, not a synchronisation: it must not be waiting
        assert done and done[0].body, "the second request waited for the first"
    finally:
        release.set()
        slow.join(timeout=30)
    assert len(dataset.spares) == 1
