"""Inputs that once made a 500 (hardening round 3): each is now a clear answer."""

import json

import numpy as np
import pytest
import rasterio
from rangeserver import RangeServer
from rasterio.transform import from_origin

from chalicelib.core.records import ImageData
from chalicelib.pixels.statistics import percentile_ranges
from tests.support import ACCEPT_IMAGE


def test_an_empty_list_value_is_the_default(client, shared):
    url = f"/cog/statistics?url={shared}/cog.tif"
    default = client.http.get(url).json_body
    for empty in ("&p=,", "&p=%20,%20", "&p=,,"):
        response = client.http.get(url + empty)
        assert response.status_code == 200, response.body
        assert response.json_body == default
    assert client.http.get(url + "&categorical=true&c=,").status_code == 200


def test_paths_that_cannot_be_resolved_are_refused(client, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", "/proc/")
    response = client.http.get("/cog/info?url=/proc/1/root/tmp/x.tif")
    assert response.status_code in (403, 404), response.body


@pytest.mark.parametrize("name", ["%C3%A9.json", "x.json%3F%FF", "%E2%9C%93/item.json"])
def test_non_ascii_document_urls_are_fetched_as_urls(client, tmp_path, monkeypatch, name):
    (tmp_path / "é.json").write_text("{}")
    with RangeServer(tmp_path) as server:
        monkeypatch.setenv("ALLOWED_SOURCES", f"http://{server.host}/")
        monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", server.host)
        for kind in ("stac", "mosaicjson"):
            response = client.http.get(f"/{kind}/info?url=http://{server.host}/{name}")
            assert response.status_code < 500, response.body
        if name == "%C3%A9.json":  # found, and not an item: the file was really read
            assert response.status_code == 422
            assert any(r.path == "/%C3%A9.json" for r in server.log)


def test_a_lone_surrogate_in_an_asset_href_is_a_400(client, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"{tmp_path}/")
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "bbox": [0, 0, 1, 1],
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1],
                                                             [0, 0]]]},
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
            "assets": {"data": {"href": "\ud800.tif", "roles": ["data"]}}}
    (tmp_path / "item.json").write_text(json.dumps(item))  # JSON keeps it as "\ud800"
    response = client.http.get(f"/stac/info?url={tmp_path}/item.json&assets=data")
    assert response.status_code == 400 and "surrogate" in response.json_body["Message"]


def test_a_constant_band_of_huge_values_still_stretches(client, tmp_path, monkeypatch):
    """low + 1.0 == low above 2**53: the stretch of a constant band must still be a range."""
    values = np.full((1, 1, 4, 4), 3e38, dtype="float32")
    from rasterio.crs import CRS
    image = ImageData(values[0], np.ones((4, 4), bool), (0, 0, 1, 1), CRS.from_epsg(4326),
                      ("b1",))
    ((low, high),) = percentile_ranges(image)
    assert high > low
    path = tmp_path / "huge.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1,
                       dtype="float32", crs="EPSG:4326",
                       transform=from_origin(0, 10, 0.1, 0.1)) as dst:
        dst.write(np.full((1, 64, 64), 3e38, dtype="float32"))
    monkeypatch.setenv("ALLOWED_SOURCES", f"{tmp_path}/")
    for route in ("/cog/preview.png", "/cog/tiles/WebMercatorQuad/3/4/3.png",
                  "/cog/bbox/0,0,5,5.png", "/cog/WebMercatorQuad/tilejson.json"):
        response = client.http.get(f"{route}?url={path}", headers=ACCEPT_IMAGE)
        assert response.status_code == 200, (route, response.body[:200])


def test_an_item_with_many_assets_is_not_opened_whole(client, shared, tmp_path, monkeypatch):
    """Without assets=, /stac/info opened every asset (3,000 hrefs: 6,001 requests)."""
    monkeypatch.setenv("ALLOWED_SOURCES", f"{tmp_path}/,{shared}/")
    assets = {f"band{i:02d}": {"href": str(shared / "cog.tif"),
                                "type": "image/tiff", "roles": ["data"]}
              for i in range(40)}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "bbox": [-180, -85, 180, 85],
            "geometry": {"type": "Polygon", "coordinates": [[[-180, -85], [180, -85],
                                                             [180, 85], [-180, 85],
                                                             [-180, -85]]]},
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [], "assets": assets}
    (tmp_path / "item.json").write_text(json.dumps(item))
    from chalicelib.sources.datasets import cache
    cache.clear()
    before = cache.opened
    for route in ("/stac/info", "/stac/info.geojson"):
        response = client.http.get(f"{route}?url={tmp_path}/item.json")
        assert response.status_code == 400, response.body[:300]
        message = response.json_body["Message"]
        assert "40 GeoTIFF assets" in message and "assets=" in message and len(message) < 2000
    assert cache.opened == before  # refused before opening anything
    one = next(iter(assets))
    response = client.http.get(f"/stac/info?url={tmp_path}/item.json&assets={one}")
    assert response.status_code == 200, response.body[:300]
    assert list(response.json_body) == [one]


def test_the_document_cache_is_bounded_in_bytes(tmp_path, monkeypatch):
    """Five ?v=N variants of one 26 MB MosaicJSON took 1 GB: entries are weighed by size."""
    from chalicelib.core.settings import from_environ
    from chalicelib.sources import documents
    monkeypatch.setattr(documents, "CACHE_BYTES", 3000)
    documents.clear()
    config = from_environ({"ALLOWED_SOURCES": f"{tmp_path}/"})
    for i in range(5):
        path = tmp_path / f"doc{i}.json"
        path.write_text(json.dumps({"pad": "x" * 990, "i": i}))
        assert documents.load(str(path), config, lambda d, s: d["i"], "a test document") == i
        held = [size for _, size, _ in documents._cache.values()]
        assert sum(held) <= 3000 and len(held) == min(i + 1, 2)
    documents.clear()


def test_text_answers_over_lambda_s_limit_are_a_clear_400(client, tmp_path, monkeypatch):
    """/stac/assets of an item with 70,000 assets was 12.6 MB (Lambda returns 6)."""
    monkeypatch.setenv("ALLOWED_SOURCES", f"{tmp_path}/")
    names = {f"asset-{i:06d}-" + "n" * 90: {"href": f"a{i}.tif", "type": "image/tiff"}
             for i in range(70_000)}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "bbox": [0, 0, 1, 1],
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1],
                                                             [0, 0]]]},
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [], "assets": names}
    (tmp_path / "item.json").write_text(json.dumps(item))
    response = client.http.get(f"/stac/assets?url={tmp_path}/item.json")
    assert response.status_code == 400 and response.json_body["Code"] == "TooLarge"
    assert "MB" in response.json_body["Message"] and len(response.body) < 1000


def test_a_file_rewritten_with_its_mtime_put_back_serves_new_pixels(client, tmp_path,
                                                                    monkeypatch):
    """cp -p / touch -r restore the mtime (same size too): the old pixels were served."""
    import os
    monkeypatch.setenv("ALLOWED_SOURCES", f"{tmp_path}/")
    path = tmp_path / "scene.tif"

    def write(value):
        with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1,
                           dtype="uint8", crs="EPSG:4326",
                           transform=from_origin(0, 10, 0.1, 0.1)) as dst:
            dst.write(np.full((1, 64, 64), value, dtype="uint8"))

    def value_served():
        response = client.http.get(f"/cog/point/1,9?url={path}")
        assert response.status_code == 200, response.body
        return response.json_body["values"][0]

    write(10)
    first = os.stat(path)
    assert value_served() == 10
    write(20)
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))  # as cp -p would
    assert os.stat(path).st_size == first.st_size
    assert os.stat(path).st_mtime_ns == first.st_mtime_ns
    assert value_served() == 20
