"""`chalice local` as a user runs it (`make run`), fetched over real HTTP."""

import json

import mercantile
import pytest
from chalice_local import ChaliceLocal

from tests.support import ACCEPT_IMAGE, decode, fetch

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server():
    """`chalice local --stage dev` (what `make run` starts); yields its base URL."""
    with ChaliceLocal("dev", {"ALLOWED_SOURCES": ""}) as local:
        yield local.base


def test_demo_tile_over_http(server):
    status, headers, body = fetch(f"{server}/cog/tilejson.json?url=chalicelib/demo/demo.tif")
    assert status == 200, body
    tilejson = json.loads(body)
    assert tilejson["tiles"][0].startswith(f"{server}/cog/tiles/WebMercatorQuad/")
    west, south, east, north = tilejson["bounds"]
    tile = mercantile.tile((west + east) / 2, (south + north) / 2, tilejson["maxzoom"])
    url = tilejson["tiles"][0].format(z=tile.z, x=tile.x, y=tile.y)
    for headers_sent in (ACCEPT_IMAGE, {"Accept": "*/*"}, {}):
        status, headers, body = fetch(url, headers_sent)
        assert status == 200, body[:300]
        assert headers["Content-Type"] in ("image/png", "image/jpeg")
        assert headers["Cache-Control"].startswith("public, max-age=")
        assert decode(body).shape[1:] == (256, 256)


def test_webp_and_errors_over_http(server):
    status, headers, body = fetch(
        f"{server}/cog/tiles/9/145/219@2x.webp?url=chalicelib/demo/demo.tif", ACCEPT_IMAGE)
    assert status == 200 and headers["Content-Type"] == "image/webp"
    assert decode(body).shape[1:] == (512, 512)
    status, headers, body = fetch(f"{server}/cog/info?url=/etc/passwd")
    assert status == 403 and json.loads(body)["Code"] == "SourceNotAllowed"
    assert "Cache-Control" not in headers


def test_geojson_statistics_and_images_over_http(server):
    """A GeoJSON body POSTed over real HTTP: statistics of a FeatureCollection, a feature's
    image, and a bad body's 400."""
    ring = [[-78.2, 24.2], [-77.3, 24.3], [-77.8, 25.0], [-78.2, 24.2]]
    feature = {"type": "Feature", "properties": {"id": "a"},
               "geometry": {"type": "Polygon", "coordinates": [ring]}}
    collection = {"type": "FeatureCollection", "features": [feature, feature]}
    headers = {"Content-Type": "application/geo+json"}
    status, response_headers, body = fetch(
        f"{server}/cog/statistics?url=chalicelib/demo/demo.tif", headers, "POST",
        json.dumps(collection).encode())
    assert status == 200, body[:300]
    assert response_headers["Content-Type"] == "application/geo+json"
    first, second = (f["properties"] for f in json.loads(body)["features"])
    assert first == second and first["id"] == "a" and first["statistics"]["b1"]["count"] > 0
    status, response_headers, body = fetch(
        f"{server}/cog/feature.png?url=chalicelib/demo/demo.tif&max_size=128", headers,
        "POST", json.dumps(feature).encode())
    assert status == 200 and response_headers["Content-Type"] == "image/png"
    assert max(decode(body).shape[1:]) == 128
    status, _, body = fetch(f"{server}/cog/statistics?url=chalicelib/demo/demo.tif", headers,
                            "POST", b'{"type": "Feature", "geometry": {"type": "Point"}}')
    assert status == 400 and b"feature 0" in body


def test_viewer_over_http(server):
    status, headers, body = fetch(f"{server}/", {"Accept": "text/html"})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"leaflet" in body.lower()


def test_concurrent_requests_on_one_dataset(server):
    """chalice local answers on threads; the shared dataset must give each its own tile."""
    from concurrent.futures import ThreadPoolExecutor
    tiles = [mercantile.Tile(x, y, 9) for x in (144, 145, 146) for y in (218, 219, 220)]
    url = "{server}/cog/tiles/{t.z}/{t.x}/{t.y}.npy?url=chalicelib/demo/demo.tif"
    serial = {t: fetch(url.format(server=server, t=t))[2] for t in tiles}
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda t: (t, fetch(url.format(server=server, t=t))),
                                tiles * 4))
    for tile, (status, _, body) in results:
        assert status == 200 and body == serial[tile]


def test_methods_and_unknown_paths_over_http(server):
    url = f"{server}/cog/tiles/9/145/219.png?url=chalicelib/demo/demo.tif"
    status, headers, body = fetch(url, ACCEPT_IMAGE, method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Type"] == "image/png"
    status, headers, body = fetch(url, ACCEPT_IMAGE, method="DELETE")
    assert status == 405 and json.loads(body)["Code"] == "MethodNotAllowed"
    assert headers["Allow"] == "GET, HEAD, OPTIONS"
    status, _, body = fetch(f"{server}/nothing")
    assert status == 404 and json.loads(body)["Code"] == "NotFound"
    # chalice local matches {proxy+} against one segment; deeper unknown paths get its own
    # emulation of API Gateway without a proxy route (documented in the README)
    status, _, body = fetch(f"{server}/cog/nothing/here")
    assert status == 403 and json.loads(body) == {"message": "Missing Authentication Token"}


def test_stac_and_mosaic_over_http(server):
    """The demo's STAC item and MosaicJSON over `chalice local`: the same pixels as the
    raster they describe, from their tilejson's URLs."""
    cog = fetch(f"{server}/cog/tiles/9/145/219.npy?url=chalicelib/demo/demo.tif")[2]
    for query in ("stac/tilejson.json?url=chalicelib/demo/item.json&assets=visual",
                  "mosaicjson/tilejson.json?url=chalicelib/demo/mosaic.json"):
        status, _, body = fetch(f"{server}/{query}&tile_format=npy")
        assert status == 200, body
        url = json.loads(body)["tiles"][0].format(z=9, x=145, y=219)
        status, headers, body = fetch(url)
        assert status == 200 and headers["Content-Type"] == "application/x-binary", url
        assert body == cog, query
