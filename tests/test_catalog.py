"""Catalog mosaics on a real STAC API: stac-fastapi-pgstac over PostgreSQL + PostGIS + PgSTAC
(tests/conftest.py's ``stac_api``), four overlapping scenes made from cog.tif, served by a
range server. Tiles of collection searches and registered searches are checked against
rio-tiler's ``mosaic_reader`` over the same items in the same order; the search parameters
must change the answer as the STAC API says they should.
"""

import json
import warnings

import mercantile
import numpy as np
import pytest

from chalicelib.core.records import Selection, TileAddress
from chalicelib.readers import catalog as catalog_reader
from chalicelib.sources import searches, stacapi
from tests.support import config, wmq

rio_tiler_io = pytest.importorskip("rio_tiler.io", reason="rio-tiler is a dev dependency")
from rio_tiler.mosaic import mosaic_reader  # noqa: E402

pytestmark = pytest.mark.server


@pytest.fixture
def catalog(stac_api, tmp_path, monkeypatch):
    """The stage's environment pointed at the catalog; caches emptied."""
    for name, value in stac_api.env(tmp_path / "searches").items():
        monkeypatch.setenv(name, value)
    stacapi.clear()
    searches.clear()
    yield stac_api
    stacapi.clear()
    searches.clear()


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
