"""One memory budget per request (chalicelib.core.budget) and bands counted in the cost.

Findings 6 and 9 of the third hardening round, each reproduced: a median mosaic tile at @2x,
tilesize 1024, over 16 four-band float32 files peaked at 7,988 MB and 27.8 s (the per-file
limits multiplied); a STAC request over 19-band assets at 2 GB; an NPY answer too large to
return was refused only after reading and encoding; a 4,000-band file took a minute for one
``bidx=1`` tile, 20,000 one-pixel bands 20-60 s for a point, a preview or statistics
(the same classes tried here on 2,000 bands, past the limits).
"""

import json

import mercantile
import numpy as np
import pytest

from chalicelib.core import budget
from chalicelib.core.errors import TooLarge
from chalicelib.jobs import mosaics
from chalicelib.readers import planning
from chalicelib.readers.pool import read_all
from chalicelib.sources import documents
from tests.support import TILE, config, fresh_process_request, write_raster

Z, X, Y = TILE.z, TILE.x, TILE.y
PNG = "rescale=0,1000&return_mask=false"


# ---- the budget itself ------------------------------------------------------------------------

def test_charges_add_up_across_the_pool_threads_and_children():
    """Reads in the reader pool's threads charge the request's budget (a context variable
    would not cross threads by itself); a child's charges count in its parent's and go
    with one release."""
    with budget.scope(limit=1000) as request:
        def read(n):
            with budget.child() as part:
                budget.current().charge(100, "a read")
                return part
        parts = [result for _, result, _ in read_all(range(8), read)]
        assert request.held == 800
        parts[0].release()
        assert request.held == 700
        outcomes = [error for _, _, error in read_all(range(8), read)]
        assert sum(isinstance(e, TooLarge) for e in outcomes) == 5  # 700 + 3 x 100 fit
        assert "more than one request may (0 MB)" in str(outcomes[-1])
    assert budget.current().held == 0  # outside a scope: a fresh budget


def test_a_request_budget_does_not_outlive_its_request(client):
    """On Lambda one thread serves request after request: each gets a new budget."""
    for _ in range(3):
        response = client.http.get(f"/cog/tiles/{Z}/{X}/{Y}@2x.png?url="
                                   "chalicelib/demo/demo.tif&tilesize=1024&rescale=0,50")
        assert response.status_code in (200, 404), response.body[:200]
    assert budget._current.get() is None


# ---- mosaics and STAC over many large files ---------------------------------------------------

@pytest.fixture(scope="module")
def sixteen(rasters):
    """16 overlapping four-band float32 files over one z10 tile, and a MosaicJSON of them."""
    folder = rasters / "budget"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(6)
    paths = [write_raster(folder / f"f{i}.tif", rng.random((4, 512, 512), "float32") * 1000)
             for i in range(16)]
    document = mosaics.build([str(p) for p in paths], config())
    path = folder / "sixteen.json"
    path.write_text(json.dumps(document))
    documents.clear()
    return path


@pytest.mark.memory
@pytest.mark.parametrize("method", ["median", "stdev"])  # held inputs; running state
def test_a_mosaic_tile_over_many_large_files_is_refused_within_memory(sixteen, method):
    """@2x at tilesize 1024 over 16 files is 16 x 68 MB of pixels: refused by the budget,
    in a process that stays under 1 GB; at tilesize 512 the same tile is drawn."""
    base = f"/mosaicjson/tiles/{Z}/{X}/{Y}@2x.png?url={sixteen}&pixel_selection={method}&{PNG}"
    refused = fresh_process_request(base + "&tilesize=1024")
    assert refused["status"] == 400, refused
    assert "TooLarge" in refused["body"] and "more than one request may" in refused["body"]
    assert refused["peak_mb"] < 1024, refused
    drawn = fresh_process_request(base + "&tilesize=512")
    assert drawn["status"] == 200, drawn
    assert drawn["peak_mb"] < 1024, drawn


def test_an_npy_answer_too_large_to_return_is_refused_before_reading(sixteen, client):
    """4 float32 bands at 2048 x 2048 are 67 MB however encoded as NPY: refused before any
    file is opened (no "mosaic file ..." in the message), for a COG and a mosaic alike."""
    from chalicelib.sources.datasets import cache
    folder = sixteen.parent
    for path in (f"/cog/tiles/{Z}/{X}/{Y}@2x.npy?url={folder}/f0.tif&tilesize=1024",
                 f"/mosaicjson/tiles/{Z}/{X}/{Y}@2x.npy?url={sixteen}&tilesize=1024"
                 "&pixel_selection=median"):
        response = client.http.get(path, headers={"Accept": "*/*"})
        assert response.status_code == 400, response.body[:300]
        message = response.json_body["Message"]
        assert "would be at least 67.1 MB" in message, message
    rendered = client.http.get(f"/cog/tiles/{Z}/{X}/{Y}@2x.npy?url={folder}/f0.tif"
                               "&tilesize=1024&rescale=0,1000", headers={"Accept": "*/*"})
    assert "at least 16.8 MB" in rendered.json_body["Message"]  # bytes once rendered
    small = client.http.get(f"/cog/tiles/{Z}/{X}/{Y}.npy?url={folder}/f0.tif",
                            headers={"Accept": "*/*"})
    assert small.status_code == 200
    assert len(cache._entries) >= 1


def test_a_stac_request_over_many_band_assets_is_bounded(rasters, client):
    """Four 19-band assets at 2048 x 2048: 4 x 156 MB; refused when the budget is spent."""
    folder = rasters / "budget"
    folder.mkdir(exist_ok=True)
    bounds = mercantile.bounds(TILE)
    assets = {}
    for i in range(4):
        write_raster(folder / f"a{i}.tif", np.ones((19, 64, 64), "uint16"))
        assets[f"a{i}"] = {"href": f"a{i}.tif", "type": "image/tiff; application=geotiff"}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "bands", "bbox": list(bounds),
            "geometry": {"type": "Polygon", "coordinates": [[
                [bounds.west, bounds.south], [bounds.east, bounds.south],
                [bounds.east, bounds.north], [bounds.west, bounds.north],
                [bounds.west, bounds.south]]]},
            "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": [], "assets": assets}
    path = folder / "item.json"
    path.write_text(json.dumps(item))
    documents.clear()
    response = client.http.get(f"/stac/tiles/{Z}/{X}/{Y}@2x.tif?url={path}"
                               "&assets=a0,a1,a2,a3&tilesize=1024", headers={"Accept": "*/*"})
    assert response.status_code == 400, response.body[:300]
    assert "19 band(s) of 2048x2048" in response.json_body["Message"]
    one = client.http.get(f"/stac/tiles/{Z}/{X}/{Y}.tif?url={path}&assets=a0,a1,a2,a3",
                          headers={"Accept": "*/*"})
    assert one.status_code == 200, one.body[:300]


# ---- bands in the cost ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def many_bands(rasters):
    """2,000 bands of 8 x 8 pixels in EPSG:4326 (reprojected for Web Mercator tiles)."""
    folder = rasters / "bands"
    folder.mkdir(exist_ok=True)
    return write_raster(folder / "b2000.tif", np.ones((2000, 8, 8), "uint8"),
                        bounds=mercantile.bounds(TILE), crs="EPSG:4326")


def test_many_band_files_are_bounded_by_their_bands(many_bands, client):
    path = many_bands
    lon, lat = (lambda b: ((b.west + b.east) / 2, (b.south + b.north) / 2))(
        mercantile.bounds(TILE))
    refused = {
        # every band of the file is warped, whichever are read
        f"/cog/tiles/{Z}/{X}/{Y}@2x.npy?url={path}&bidx=1&tilesize=512": "2001 bands",
        f"/cog/point/{lon},{lat}?url={path}": "the file has 2000 bands",
        f"/cog/statistics?url={path}": "the file has 2000 bands",
        f"/cog/preview.npy?url={path}": "the file has 2000 bands",
        f"/cog/point/{lon},{lat}?url={path}&bidx=" + ",".join(map(str, range(1, 1100))):
            "1099 bands are asked",
    }
    for url, expected in refused.items():
        response = client.http.get(url, headers={"Accept": "*/*"})
        assert response.status_code == 400, (url[:80], response.body[:200])
        assert expected in response.json_body["Message"], response.json_body
    served = (f"/cog/tiles/{Z}/{X}/{Y}.npy?url={path}&bidx=1",
              f"/cog/point/{lon},{lat}?url={path}&bidx=1,2000",
              f"/cog/info?url={path}")
    for url in served:
        response = client.http.get(url, headers={"Accept": "*/*"})
        assert response.status_code == 200, (url[:80], response.body[:200])
    assert planning.MAX_BANDS >= 426  # hyperspectral files (EnMAP, PRISMA) stay whole
