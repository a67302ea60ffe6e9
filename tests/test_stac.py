"""STAC items: assets read as one source, checked against rio-tiler's STACReader, and the
allow-list holding for every asset href.

The item is written by the test: two single-band real rasters of the same scene (cog.tif
as "nir", cog_nodata.tif as "red"), a 3-band one ("visual"), a thumbnail that is not a
GeoTIFF, and assets whose hrefs point outside the allow-list.
"""

import json
import shutil
import warnings
import xml.etree.ElementTree as ET
from urllib.parse import quote

import mercantile
import numpy as np
import pytest
from rangeserver import RangeServer

from chalicelib.core.records import Selection, TileAddress
from chalicelib.pixels.expression import parse as parse_expression
from chalicelib.readers import stac
from chalicelib.sources import documents
from chalicelib.sources.datasets import cache
from tests.support import ACCEPT_IMAGE, config, decode, wmq

rio_tiler_stac = pytest.importorskip("rio_tiler.io.stac", reason="rio-tiler is a dev dependency")

COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def item_document(assets: dict, bbox=None) -> dict:
    """A minimal valid STAC 1.0 item (pystac, used by rio-tiler, reads it too)."""
    west, south, east, north = bbox or (-61.0, 73.0, -56.0, 75.0)
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": "test-scene",
        "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south],
                                                         [east, north], [west, north],
                                                         [west, south]]]},
        "bbox": [west, south, east, north], "properties": {"datetime": "2024-01-01T00:00:00Z"},
        "links": [], "assets": assets,
    }


@pytest.fixture
def item(shared, rasters):
    """An item beside symlinks to the real rasters, its hrefs relative to it."""
    folder = rasters / "stac"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name, target in (("nir.tif", "cog.tif"), ("red.tif", "cog_nodata.tif")):
        (folder / name).symlink_to(shared / target)
    from chalicelib.readers import cog
    bounds = cog.COGReader.open(str(shared / "cog.tif"), config()).geographic_bounds
    document = item_document({
        "nir": {"href": "nir.tif", "type": COG, "roles": ["data"]},
        "red": {"href": "./red.tif", "type": COG, "roles": ["data"]},
        "visual": {"href": str(shared / "RGB.byte.tif"), "type": COG, "roles": ["visual"]},
        "thumbnail": {"href": "thumb.png", "type": "image/png", "roles": ["thumbnail"]},
        "outside": {"href": "/etc/secret.tif", "type": COG},
        "escape": {"href": "../../../../../outside.tif", "type": COG},
    }, bounds)
    path = folder / "item.json"
    path.write_text(json.dumps(document))
    documents.clear()
    return path


def reader_of(path) -> stac.STACReader:
    return stac.STACReader.open(str(path), config())


def sample_tiles(path, count=6):
    """Tiles around the scene's centre from maxzoom - 1 to maxzoom + 1."""
    source = reader_of(path)
    west, south, east, north = source.geographic_bounds
    minzoom, maxzoom = source._readers(["nir"])[0].zoom_range(wmq())
    tiles = []
    for zoom in range(maxzoom - 1, maxzoom + 2):
        centre = mercantile.tile((west + east) / 2, (south + north) / 2, zoom)
        tiles += [mercantile.Tile(centre.x + dx, centre.y, zoom) for dx in (0, 1)]
    return tiles[:count]


def ours(path, tile, **selection):
    return reader_of(path).tile(TileAddress(wmq(), tile.z, tile.x, tile.y, 256, 256, None),
                                Selection(**selection))


def assert_agree(ref, mine, what):
    ref_mask = ref.mask > 0
    agreement = (ref_mask == mine.mask).mean()
    assert agreement >= 0.99, f"{what}: masks agree on {agreement:.1%}"
    both = ref_mask & mine.mask
    assert both.any(), what
    np.testing.assert_allclose(mine.data[:, both], ref.data[:, both].astype(mine.data.dtype),
                               rtol=1e-5, atol=1e-6, err_msg=what)


def test_stacked_assets_and_ndvi_agree_with_rio_tiler(item):
    ndvi = parse_expression("(nir-red)/(nir+red)", named=True)
    with warnings.catch_warnings(), rio_tiler_stac.STACReader(str(item)) as ref_reader:
        warnings.simplefilter("ignore")
        for tile in sample_tiles(item):
            ref = ref_reader.tile(tile.x, tile.y, tile.z, assets=["nir", "red"])
            assert_agree(ref, ours(item, tile, assets=("nir", "red")), f"stack {tile}")
            ref = ref_reader.tile(tile.x, tile.y, tile.z, assets=["nir", "red"],
                                  expression="(b1-b2)/(b1+b2)")
            # assets named in an expression need not be listed
            assert_agree(ref, ours(item, tile, expression=ndvi), f"ndvi {tile}")


def test_expression_names_stacked_bands_and_asset_bands(item):
    tile = sample_tiles(item)[0]
    by_name = ours(item, tile, expression=parse_expression("nir_b1-red", named=True))
    by_band = ours(item, tile, assets=("nir", "red"),
                   expression=parse_expression("b1-b2", named=True))
    np.testing.assert_array_equal(by_name.data, by_band.data)
    np.testing.assert_array_equal(by_name.mask, by_band.mask)


def test_asset_bidx_reads_those_bands_like_the_cog_route(client, item, shared):
    bounds = client.http.get(f"/cog/info?url={shared / 'RGB.byte.tif'}").json_body["bounds"]
    west, south, east, north = bounds
    item = item.parent / "visual.json"
    item.write_text(json.dumps(item_document(
        {"visual": {"href": str(shared / "RGB.byte.tif"), "type": COG}}, bounds)))
    tile = mercantile.tile((west + east) / 2, (south + north) / 2, 12)
    path = f"/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    single = client.http.get(f"/cog{path}?url={shared / 'RGB.byte.tif'}&bidx=3,2,1",
                             headers=ACCEPT_IMAGE)
    multi = client.http.get(f"/stac{path}?url={item}&assets=visual&asset_bidx=visual|3,2,1",
                            headers=ACCEPT_IMAGE)
    assert single.status_code == multi.status_code == 200
    np.testing.assert_array_equal(decode(single.body), decode(multi.body))


def test_routes(client, item):
    url = quote(str(item))
    assert client.http.get(f"/stac/assets?url={url}").json_body == ["nir", "red", "visual",
                                                                     "outside", "escape"]
    info = client.http.get(f"/stac/info?url={url}&assets=nir&assets=red").json_body
    assert set(info) == {"nir", "red"} and info["red"]["nodata_value"] == 1
    tilejson = client.http.get(f"/stac/WebMercatorQuad/tilejson.json?url={url}"
                               "&expression=(nir-red)/(nir%2Bred)&rescale=-1,1").json_body
    assert "/stac/tiles/WebMercatorQuad/{z}/{x}/{y}" in tilejson["tiles"][0]
    assert tilejson["maxzoom"] == info["nir"]["maxzoom"]
    tile = sample_tiles(item)[1]
    response = client.http.get(f"/stac/tiles/{tile.z}/{tile.x}/{tile.y}.png?url={url}"
                               "&assets=nir&rescale=0,8000&colormap_name=viridis",
                               headers=ACCEPT_IMAGE)
    assert response.status_code == 200 and decode(response.body).shape[1:] == (256, 256)
    west, south, east, north = tilejson["bounds"]
    lon, lat = (west + east) / 2, (south + north) / 2
    point = client.http.get(f"/stac/point/{lon},{lat}?url={url}&assets=nir,red").json_body
    assert point["band_names"] == ["nir_b1", "red_b1"] and len(point["values"]) == 2
    single = client.http.get(f"/cog/point/{lon},{lat}?url={item.parent / 'nir.tif'}").json_body
    assert point["values"][0] == single["values"][0]
    named = client.http.get(f"/stac/point/{lon},{lat}?url={url}&assets=nir"
                            "&asset_as_band=true").json_body
    assert named["band_names"] == ["nir"]
    preview = client.http.get(f"/stac/preview.png?url={url}&assets=nir&rescale=0,8000"
                              "&max_size=128", headers=ACCEPT_IMAGE)
    assert preview.status_code == 200 and max(decode(preview.body).shape[1:]) == 128
    box = f"{west + 0.5},{south + 0.2},{east - 0.5},{north - 0.2}"
    part = client.http.get(f"/stac/bbox/{box}/100x80.png?url={url}&assets=red"
                           "&rescale=0,8000", headers=ACCEPT_IMAGE)
    assert part.status_code == 200 and decode(part.body).shape[1:] == (80, 100)
    stats = client.http.get(f"/stac/statistics?url={url}&assets=nir,red").json_body
    # titiler's keys: b1, b2... in the order of the stacked bands, each asset's band named
    # in its description
    assert {k: v["description"] for k, v in stats.items()} == {"b1": "nir_b1", "b2": "red_b1"}
    assert stats["b2"]["valid_pixels"] <= stats["b1"]["valid_pixels"]
    xml = client.http.get(f"/stac/WMTSCapabilities.xml?url={url}&assets=nir"
                          "&rescale=0,8000").body
    ns = {"w": "http://www.opengis.net/wmts/1.0"}
    template = ET.fromstring(xml).find(".//w:ResourceURL", ns).get("template")
    assert "/stac/tiles/WebMercatorQuad/{TileMatrix}/{TileCol}/{TileRow}.png?" in template
    assert "assets=nir" in template


@pytest.mark.parametrize("query, status, words", [
    ("assets=nope", 400, "nir, red, visual"),
    ("assets=thumbnail", 400, "not a GeoTIFF"),
    ("expression=nir%2Bfoo", 400, "unknown name 'foo'"),
    ("expression=visual*2", 400, "visual_b1"),
    ("", 400, "assets="),
    ("assets=nir&asset_bidx=red|1", 400, "not in 'assets'"),
    ("assets=visual&asset_as_band=true", 400, "single-band"),
    ("assets=outside", 403, "allow-list"),
    ("assets=escape", 403, "allow-list"),
    ("expression=nir%2Boutside", 403, "allow-list"),
])
def test_bad_requests_say_what_to_do(client, item, query, status, words):
    tile = sample_tiles(item)[0]
    opened = cache.opened
    response = client.http.get(f"/stac/tiles/{tile.z}/{tile.x}/{tile.y}.png?url={item}&{query}")
    assert response.status_code == status, response.body
    assert words in response.json_body["Message"]
    if status == 403:  # refused before anything was opened
        assert cache.opened == opened


def test_not_an_item_and_not_allowed(client, item, shared):
    assert client.http.get(f"/stac/info?url={shared / 'cog.tif'}").status_code == 422
    assert client.http.get("/stac/info?url=/etc/passwd").status_code == 403
    (item.parent / "list.json").write_text("[1, 2]")
    assert client.http.get(f"/stac/info?url={item.parent / 'list.json'}").status_code == 422


def test_an_item_is_fetched_once_per_container(client, item):
    documents.clear()
    before = documents.fetched[0]
    for _ in range(3):
        assert client.http.get(f"/stac/info?url={item}&assets=nir").status_code == 200
    assert documents.fetched[0] == before + 1


def test_over_http_no_request_leaves_the_allow_list(client, shared, rasters, monkeypatch):
    """An allowed item over HTTP whose asset is on another (not allowed) server: 403, and
    that server sees no request."""
    folder = rasters / "stac-http"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    shutil.copy(shared / "cog.tif", folder / "nir.tif")
    with RangeServer(folder) as server, RangeServer(folder) as other:
        (folder / "item.json").write_text(json.dumps(item_document({
            "nir": {"href": "nir.tif", "type": COG},
            "elsewhere": {"href": other.url("nir.tif"), "type": COG}})))
        monkeypatch.setenv("ALLOWED_SOURCES", f"http://{server.host}/")
        monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", f"{server.host},{other.host}")
        documents.clear()
        url = server.url("item.json")
        info = client.http.get(f"/stac/info?url={url}&assets=nir")
        assert info.status_code == 200 and info.json_body["nir"]["width"] == 2658
        refused = client.http.get(f"/stac/info?url={url}&assets=elsewhere")
        assert refused.status_code == 403
        assert other.log == []
        # a redirect is not followed (it could lead anywhere)
        assert client.http.get(f"/stac/info?url={server.url('missing.json')}"
                               ).status_code == 404


def test_other_tile_matrix_sets_agree_with_rio_tiler(item):
    """A tile of WorldCRS84Quad and one of WGS1984Quad over the stacked assets."""
    import morecantile

    from chalicelib.grids import tilematrixsets
    source = reader_of(item)
    west, south, east, north = source.geographic_bounds
    for tms_id in ("WorldCRS84Quad", "WGS1984Quad"):
        ref_tms = morecantile.tms.get(tms_id)
        tms = tilematrixsets.get(tms_id)
        zoom = source._readers(["nir"])[0].zoom_range(tms)[1]
        tile = ref_tms.tile((west + east) / 2, (south + north) / 2, zoom)
        with warnings.catch_warnings(), rio_tiler_stac.STACReader(str(item), tms=ref_tms) as ref:
            warnings.simplefilter("ignore")
            expected = ref.tile(tile.x, tile.y, tile.z, assets=["nir", "red"])
        mine = source.tile(TileAddress(tms, tile.z, tile.x, tile.y, 256, 256, None),
                           Selection(assets=("nir", "red")))
        assert_agree(expected, mine, f"{tms_id} {tile}")


@pytest.mark.parametrize("base, link, expected", [
    ("s3://bucket/items/a/item.json", "B04.tif", "s3://bucket/items/a/B04.tif"),
    ("s3://bucket/items/a/item.json", "../cogs/B04.tif", "s3://bucket/items/cogs/B04.tif"),
    ("https://host.org/stac/item.json", "./B04.tif", "https://host.org/stac/B04.tif"),
    ("https://host.org/stac/item.json", "/other/B04.tif", "https://host.org/other/B04.tif"),
    ("https://host.org/stac/item.json", "s3://other/B04.tif", "s3://other/B04.tif"),
    ("/data/items/item.json", "../../etc/x.tif", "/etc/x.tif"),
])
def test_hrefs_resolve_relative_to_the_document(base, link, expected):
    """Resolution only; whatever comes out is checked against the allow-list before use
    (``/vsi...`` and ``../`` escapes are refused there)."""
    from chalicelib.sources.allowlist import parse
    assert documents.href(parse(base), link) == expected


def test_vsi_and_escaping_hrefs_are_refused(item):
    from chalicelib.core.errors import SourceNotAllowed
    from chalicelib.sources.allowlist import parse, resolve
    for link in ("/vsicurl/http://169.254.169.254/x.tif", "../../../../../../etc/x.tif",
                 "file:///etc/x.tif", "http://169.254.169.254/latest/x.tif"):
        with pytest.raises(SourceNotAllowed):
            resolve(documents.href(parse(str(item)), link), config().allowed_sources)
