"""Catalog mosaics on a real STAC API: stac-fastapi-pgstac over PostgreSQL + PostGIS + PgSTAC
(tests/conftest.py's ``stac_api``), four overlapping scenes made from cog.tif, served by a
range server. Tiles of collection searches and registered searches are checked against
rio-tiler's ``mosaic_reader`` over the same items in the same order; the search parameters
must change the answer as the STAC API says they should.
"""

import io
import json
import warnings
from urllib.parse import quote

import mercantile
import numpy as np
import pytest
import stacapi as tool

from chalicelib.core.records import Selection, TileAddress
from chalicelib.readers import catalog as catalog_reader
from chalicelib.sources import searches, stacapi
from tests.support import config, decode, wmq

rio_tiler_io = pytest.importorskip("rio_tiler.io", reason="rio-tiler is a dev dependency")
from rio_tiler.mosaic import mosaic_reader  # noqa: E402

pytestmark = pytest.mark.server


@pytest.fixture
def catalog(stac_api, tmp_path, monkeypatch):
    """The stage's environment pointed at the catalog; caches emptied."""
    for name, value in stac_api.env(tmp_path / "searches").items():
        monkeypatch.setenv(name, value)
    for forget in (stacapi.clear, searches.clear, catalog_reader.clear):
        forget()
    yield stac_api
    for forget in (stacapi.clear, searches.clear, catalog_reader.clear):
        forget()


def center_tile(catalog, z=10) -> mercantile.Tile:
    """A tile where all four scenes overlap."""
    boxes = [i["bbox"] for i in catalog.items]
    west, east = max(b[0] for b in boxes), min(b[2] for b in boxes)
    south, north = max(b[1] for b in boxes), min(b[3] for b in boxes)
    return mercantile.tile((west + east) / 2, (south + north) / 2, z)


def rio_tiler_tile(items: list[dict], tile, **options):
    """rio-tiler's mosaic of ``items`` (STAC dicts), in that order, asset ``data``."""
    import pystac

    def read(item, x, y, z, **kw):
        with rio_tiler_io.STACReader(None, item=pystac.Item.from_dict(item)) as src:
            return src.tile(x, y, z, assets=["data"], **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image, used = mosaic_reader(items, read, tile.x, tile.y, tile.z, threads=0, **options)
    return image, used


def api_order(catalog, tile, **search) -> list[dict]:
    """The items the STAC API itself answers for ``tile``, in its order (asked here with
    urllib, not through the tiler)."""
    from tests.support import fetch
    body = {"collections": ["scenes"], "bbox": list(mercantile.bounds(tile)), **search}
    status, _, answer = fetch(f"{catalog.url}/search", {"Content-Type": "application/json"},
                              "POST", json.dumps(body).encode())
    assert status == 200, answer[:300]
    return [catalog.item(f["id"]) for f in json.loads(answer)["features"]]


def ours(reader, tile, **selection):
    return reader.tile(TileAddress(wmq(), tile.z, tile.x, tile.y, 256, 256, None),
                       Selection(assets=("data",), **selection))


def assert_same(mine, ref):
    ref_valid = ref.mask > 0
    assert (ref_valid == mine.mask).mean() >= 0.999
    both = ref_valid & mine.mask
    assert both.any()
    np.testing.assert_array_equal(mine.data[:, both], ref.data[:, both])


def test_a_collection_tile_is_rio_tilers_mosaic_of_the_same_items(catalog):
    tile = center_tile(catalog)
    reader = catalog_reader.collection_reader("scenes", {}, config())
    mine = ours(reader, tile)
    order = api_order(catalog, tile)
    assert [i["id"] for i in order] == ["s3", "s4", "s2", "s1"]  # PgSTAC: newest first
    ref, used = rio_tiler_tile(order, tile)
    assert_same(mine, ref)
    assert int(np.median(mine.data[0][mine.mask])) >= 2000  # s3's offset


def test_sortby_and_filter_change_which_scene_is_on_top(catalog):
    tile = center_tile(catalog)
    by_cloud = catalog_reader.collection_reader(
        "scenes", {"sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}]},
        config())
    mine = ours(by_cloud, tile)
    order = api_order(catalog, tile, sortby=[{"field": "properties.eo:cloud_cover",
                                               "direction": "desc"}])
    assert [i["id"] for i in order] == ["s2", "s4", "s1", "s3"]
    ref, _ = rio_tiler_tile(order, tile)
    assert_same(mine, ref)
    clear = catalog_reader.collection_reader(
        "scenes", {"filter": "eo:cloud_cover < 10", "filter-lang": "cql2-text"}, config())
    assert set(clear.files_for(mercantile.bounds(tile))) == {"scenes/s1", "scenes/s3"}


# ---- through the API, as a map client asks ------------------------------------------------

def get(client, path: str):
    return client.http.get(path, headers={"Accept": "*/*"})


def npy(response) -> np.ndarray:
    assert response.status_code == 200, response.body[:300]
    return np.load(io.BytesIO(response.body))


def assert_npy_is(array: np.ndarray, ref) -> None:
    """An NPY tile (bands + mask) equal to rio-tiler's image where both are valid."""
    valid = array[-1] > 0
    assert (valid == (ref.mask > 0)).mean() >= 0.999
    assert valid.any()
    np.testing.assert_array_equal(array[:-1][:, valid], ref.data[:, valid])


WINDOW = "2025-06-01T00:00:00Z/2025-06-15T00:00:00Z"


def test_collection_routes_answer_the_mosaic_of_the_search(catalog, client):
    tile = center_tile(catalog)
    base = f"/collections/scenes/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}"
    array = npy(get(client, f"{base}.npy?assets=data&datetime={quote(WINDOW)}"))
    order = api_order(catalog, tile, datetime=WINDOW)
    assert [i["id"] for i in order] == ["s2", "s1"]  # June 10 then June 1
    assert_npy_is(array, rio_tiler_tile(order, tile)[0])

    png = get(client, f"{base}@2x.png?assets=data&rescale=0,9000")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert decode(png.body).shape[1:] == (512, 512)

    query = f"assets=data&datetime={quote(WINDOW)}&rescale=0,9000"
    tilejson = get(client, f"/collections/scenes/WebMercatorQuad/tilejson.json?{query}")
    assert tilejson.status_code == 200, tilejson.body[:300]
    document = tilejson.json_body
    template = document["tiles"][0]
    assert "/collections/scenes/tiles/WebMercatorQuad/{z}/{x}/{y}" in template
    assert "datetime=" in template and "assets=data" in template
    boxes = [i["bbox"] for i in catalog.items]
    assert document["bounds"] == pytest.approx(
        [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
         max(b[3] for b in boxes)], abs=1e-6)  # the collection's extent

    wmts = get(client, f"/collections/scenes/WebMercatorQuad/WMTSCapabilities.xml?{query}")
    assert wmts.status_code == 200
    assert b"/collections/scenes/tiles/WebMercatorQuad/{TileMatrix}/{TileCol}/{TileRow}" \
        in wmts.body

    info = get(client, "/collections/scenes/info?datetime=" + quote(WINDOW))
    assert info.status_code == 200, info.body[:300]
    assert info.json_body["search"]["datetime"] == WINDOW
    assert info.json_body["name"] == "scenes"


def test_a_point_is_the_first_items_value_in_the_apis_order(catalog, client):
    tile = center_tile(catalog, z=14)
    west, south, east, north = mercantile.bounds(tile)
    lon, lat = (west + east) / 2, (south + north) / 2
    answer = get(client, f"/collections/scenes/point/{lon},{lat}?assets=data")
    assert answer.status_code == 200, answer.body[:300]
    import pystac
    order = api_order(catalog, tile)
    with rio_tiler_io.STACReader(None, item=pystac.Item.from_dict(order[0])) as src:
        expected = src.point(lon, lat, assets=["data"])
    assert answer.json_body["values"] == [int(v) for v in expected.data]
    assert answer.json_body["assets"][0] == f"scenes/{order[0]['id']}"


def test_ids_bbox_and_filters_choose_the_items(catalog, client):
    tile = center_tile(catalog)
    path = f"/collections/scenes/tiles/{tile.z}/{tile.x}/{tile.y}.npy?assets=data"
    only = npy(get(client, path + "&ids=s1,s4"))
    assert_npy_is(only, rio_tiler_tile(api_order(catalog, tile, ids=["s1", "s4"]), tile)[0])
    cql2 = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]}
    as_json = npy(get(client, path + "&filter-lang=cql2-json&filter="
                      + quote(json.dumps(cql2))))
    as_text = npy(get(client, path + "&filter=" + quote("eo:cloud_cover < 10")))
    np.testing.assert_array_equal(as_json, as_text)
    clear = api_order(catalog, tile, filter=cql2, **{"filter-lang": "cql2-json"})
    assert [i["id"] for i in clear] == ["s3", "s1"]
    assert_npy_is(as_json, rio_tiler_tile(clear, tile)[0])
    box = catalog.item("s1")["bbox"]
    far = get(client, path + f"&bbox={box[0]},{box[1]},{box[0] + 0.01},{box[1] + 0.01}")
    assert far.status_code == 404  # the search's bbox leaves nothing in this tile
    bad = get(client, path + "&datetime=June")
    assert bad.status_code == 400 and "datetime" in bad.json_body["Message"]
    refused = get(client, path + "&filter=" + quote("cloud <<< 3"))
    assert refused.status_code == 400 and "catalog refused" in refused.json_body["Message"]
    for titiler_pgstac in ("scan_limit=10", "items_limit=3", "exitwhenfull=false"):
        named = get(client, path + "&" + titiler_pgstac)  # not taken: refused by name
        assert named.status_code == 400, titiler_pgstac
        assert titiler_pgstac.split("=")[0] in named.json_body["Message"]
    unknown = get(client, "/collections/nothing-here/tiles/10/1/1.png?assets=data")
    assert unknown.status_code == 404 and "collection" in unknown.json_body["Message"]


def test_registered_searches_are_kept_by_content_and_served(catalog, client, tmp_path):
    body = {"collections": ["scenes"], "sortby": [{"field": "properties.eo:cloud_cover",
                                                   "direction": "asc"}],
            "metadata": {"name": "least cloudy first", "minzoom": 8, "maxzoom": 16}}
    first = client.http.post("/searches/register", body=json.dumps(body),
                             headers={"Content-Type": "application/json"})
    assert first.status_code == 200, first.body[:300]
    search_id = first.json_body["id"]
    assert len(search_id) == 32
    assert {link["rel"] for link in first.json_body["links"]} >= {"metadata", "tilejson"}
    again = client.http.post("/searches/register", body=json.dumps(body),
                             headers={"Content-Type": "application/json"})
    assert again.json_body["id"] == search_id  # the same search, the same id
    assert [p.name for p in (tmp_path / "searches").iterdir()] == [f"{search_id}.json"]

    tile = center_tile(catalog)
    array = npy(get(client, f"/searches/{search_id}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/"
                            f"{tile.y}.npy?assets=data"))
    order = api_order(catalog, tile, sortby=body["sortby"])
    assert [i["id"] for i in order] == ["s3", "s1", "s4", "s2"]
    assert_npy_is(array, rio_tiler_tile(order, tile)[0])
    tilejson = get(client, f"/searches/{search_id}/WebMercatorQuad/tilejson.json?assets=data")
    assert (tilejson.json_body["minzoom"], tilejson.json_body["maxzoom"]) == (8, 16)
    assert f"/searches/{search_id}/tiles/WebMercatorQuad/" in tilejson.json_body["tiles"][0]
    info = get(client, f"/searches/{search_id}/info").json_body
    assert info["name"] == "least cloudy first"

    missing = get(client, "/searches/" + "0" * 32 + "/info")
    assert missing.status_code == 404 and "register" in missing.json_body["Message"]
    for wrong, said in (({"collections": ["scenes"], "intersects": {}}, "intersects"),
                        ({"collections": ["scenes"], "fields": {}}, "fields"),
                        ({"ids": ["s1"]}, "collections"),
                        ({"collections": ["nope"]}, "collection"),
                        ({"collections": ["scenes"], "metadata": {"colour": 1}}, "colour")):
        answer = client.http.post("/searches/register", body=json.dumps(wrong),
                                  headers={"Content-Type": "application/json"})
        assert answer.status_code in (400, 404), (wrong, answer.body[:200])
        assert said in answer.json_body["Message"], answer.json_body


def test_an_item_of_a_collection_reads_as_a_stac_item(catalog, client):
    import pystac
    tile = center_tile(catalog)
    base = "/collections/scenes/items/s2"
    array = npy(get(client, f"{base}/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.npy"
                            "?assets=data"))
    with rio_tiler_io.STACReader(None, item=pystac.Item.from_dict(catalog.item("s2"))) as src:
        assert_npy_is(array, src.tile(tile.x, tile.y, tile.z, assets=["data"]))
    info = get(client, f"{base}/info?assets=data")
    assert info.status_code == 200 and info.json_body["data"]["width"] == 1550
    tilejson = get(client, f"{base}/WebMercatorQuad/tilejson.json?assets=data").json_body
    assert f"{base}/tiles/WebMercatorQuad/" in tilejson["tiles"][0]
    assert get(client, "/collections/scenes/items/nope/info?assets=data").status_code == 404


# ---- bounds, failures, the allow-list ----------------------------------------------------

def tile_of(catalog, z=10) -> str:
    tile = center_tile(catalog, z)
    return f"/collections/scenes/tiles/{tile.z}/{tile.x}/{tile.y}.npy?assets=data"


def test_too_many_items_or_pages_in_a_tile_are_refused_saying_what_to_do(catalog, client,
                                                                         monkeypatch):
    path = tile_of(catalog)
    paged = npy(get(client, path + "&limit=1"))  # four pages of one item, followed
    np.testing.assert_array_equal(paged, npy(get(client, path)))
    monkeypatch.setattr(catalog_reader, "MAX_FILES_PER_TILE", 2)
    stacapi.clear()
    catalog_reader.clear()
    crowded = get(client, path)
    assert crowded.status_code == 400
    assert "more than 2 items" in crowded.json_body["Message"]
    assert "zoom in" in crowded.json_body["Message"]
    tile = center_tile(catalog)
    first_two = npy(get(client, path + "&max_items=2"))
    assert_npy_is(first_two, rio_tiler_tile(api_order(catalog, tile)[:2], tile)[0])
    monkeypatch.setattr(stacapi, "MAX_PAGES", 2)
    stacapi.clear()
    catalog_reader.clear()
    deep = get(client, path + "&limit=1&max_items=4")
    assert deep.status_code == 400 and "more than 2 pages" in deep.json_body["Message"]


def test_the_catalogs_failures_are_502_and_504_never_a_crash(catalog, client, monkeypatch):
    import socket
    path = tile_of(catalog)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("STAC_API_URL", f"http://127.0.0.1:{port}")
    down = get(client, path)
    assert down.status_code == 502 and "failed to answer" in down.json_body["Message"]
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("STAC_API_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
        slow = get(client, path)
    assert slow.status_code == 504 and "in time" in slow.json_body["Message"]
    monkeypatch.delenv("STAC_API_URL")
    unset = get(client, path)
    assert unset.status_code == 404 and "STAC_API_URL" in unset.json_body["Message"]


def test_no_hop_leaves_the_catalog_or_the_allow_list(catalog, client, monkeypatch, tmp_path):
    """A redirect of the API and a next link to another host are not followed; an item
    whose asset is off the allow-list is refused without a request to it."""
    from rangeserver import RangeServer, Trap
    with Trap("127.0.0.2") as trap:
        elsewhere = f"http://127.0.0.2:{trap.port}"
        catalog.api.load(tool.collection("elsewhere", [catalog.items[0]["bbox"]]),
                         [tool.stac_item("elsewhere", "x", catalog.items[0]["bbox"],
                                                   "2025-06-01T00:00:00Z",
                                                   {"data": f"{elsewhere}/x.tif"})])
        tile = center_tile(catalog)
        refused = get(client, f"/collections/elsewhere/tiles/{tile.z}/{tile.x}/{tile.y}.png"
                              "?assets=data")
        assert refused.status_code == 403, refused.body[:300]

        fake = tmp_path / "fake"
        (fake / "collections").mkdir(parents=True)
        (fake / "collections" / "scenes").write_text(json.dumps(
            tool.collection("scenes", [catalog.items[0]["bbox"]])))
        (fake / "search").write_text(json.dumps({"type": "FeatureCollection", "features": [
            catalog.items[0]], "links": [{"rel": "next", "href": f"{elsewhere}/search"}]}))
        with RangeServer(fake) as api:
            monkeypatch.setenv("STAC_API_URL", api.url("").rstrip("/"))
            api.redirects["/collections/scenes"] = f"{elsewhere}/collections/scenes"
            redirected = get(client, tile_of(catalog))
            assert redirected.status_code == 502
            assert "redirect" in redirected.json_body["Message"]
            del api.redirects["/collections/scenes"]
            stacapi.clear()
            catalog_reader.clear()
            off = get(client, tile_of(catalog) + "&filter=" + quote("eo:cloud_cover < 90"))
            assert off.status_code == 502, off.body[:300]
            assert "not on the catalog" in off.json_body["Message"]
        assert not trap.touched()


def test_a_warm_tile_asks_the_catalog_once_and_a_repeated_one_never(catalog, client):
    made = stacapi.requests_made
    start = made[0]
    tile = center_tile(catalog)
    npy(get(client, f"/collections/scenes/tiles/{tile.z}/{tile.x}/{tile.y}.npy?assets=data"))
    cold = made[0] - start  # the collection, the tile's search, the search's first item
    assert cold <= 3
    npy(get(client, f"/collections/scenes/tiles/{tile.z}/{tile.x}/{tile.y}.npy?assets=data"))
    assert made[0] - start == cold
    npy(get(client, f"/collections/scenes/tiles/{tile.z}/{tile.x + 1}/{tile.y}.npy"
                    "?assets=data"))
    assert made[0] - start == cold + 1


def test_the_catalogs_answers_are_asked_again_after_source_ttl(catalog, client, monkeypatch):
    """A collection changes (items added, removed): a warm container sees it within
    SOURCE_TTL (300 s), the clock moved here rather than waited for."""
    from chalicelib.sources import datasets
    now = [1_000.0]
    monkeypatch.setattr(datasets, "clock", lambda: now[0])
    made = stacapi.requests_made
    path = tile_of(catalog)
    npy(get(client, path))
    first = made[0]
    now[0] += 299
    npy(get(client, path))
    assert made[0] == first  # still trusted
    now[0] += 2
    npy(get(client, path))
    assert made[0] > first  # asked again
