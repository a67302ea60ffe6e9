"""MosaicJSON mosaics: two adjacent real rasters (the halves of cog.tif, overlapping by a
strip, written as COGs by the test), a MosaicJSON built over them by our own builder, and
tiles across the seam checked against rio-tiler's mosaic_reader for every pixel selection.
"""

import json
import warnings
from urllib.parse import quote

import mercantile
import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from chalicelib.core.records import Selection, TileAddress
from chalicelib.jobs import mosaics
from chalicelib.readers import mosaicjson
from chalicelib.sources import documents
from chalicelib.sources.datasets import cache
from tests.support import ACCEPT_IMAGE, config, decode, wmq

rio_tiler_io = pytest.importorskip("rio_tiler.io", reason="rio-tiler is a dev dependency")
from rio_tiler.mosaic import mosaic_reader  # noqa: E402
from rio_tiler.mosaic.methods import defaults as methods  # noqa: E402

METHODS = {"first": methods.FirstMethod, "highest": methods.HighestMethod,
           "lowest": methods.LowestMethod, "mean": methods.MeanMethod,
           "median": methods.MedianMethod, "stdev": methods.StdevMethod,
           "lastbandlow": methods.LastBandLowMethod, "lastbandhigh": methods.LastBandHighMethod,
           "count": methods.CountMethod}


def write_part(source, window: Window, path):
    """``window`` of ``source`` as a tiled GeoTIFF with overviews (a COG in all but layout)."""
    with rasterio.open(source) as src:
        profile = src.profile | {"driver": "GTiff", "width": int(window.width),
                                 "height": int(window.height), "tiled": True,
                                 "blockxsize": 256, "blockysize": 256, "compress": "deflate",
                                 "transform": src.window_transform(window)}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
        with rasterio.open(path, "r+") as dst:
            dst.build_overviews([2, 4, 8], Resampling.nearest)
    return path


@pytest.fixture
def halves(shared, rasters):
    """The west and east halves of cog.tif (a 200-pixel overlap), and a mosaic of them."""
    folder = rasters / "mosaic"
    folder.mkdir(exist_ok=True)
    west = write_part(shared / "cog.tif", Window(0, 0, 1430, 2667), folder / "west.tif")
    east = write_part(shared / "cog.tif", Window(1230, 0, 1428, 2667), folder / "east.tif")
    document = mosaics.build([str(west), str(east)], config())
    path = folder / "mosaics.json"
    path.write_text(json.dumps(document))
    documents.clear()
    return west, east, path


def seam_tiles(west_path, east_path):
    """Tiles that straddle the seam (they touch both halves), from minzoom to maxzoom + 1."""
    with rasterio.open(west_path) as a, rasterio.open(east_path) as b:
        from rasterio.warp import transform_bounds
        wa = transform_bounds(a.crs, "EPSG:4326", *a.bounds)
        wb = transform_bounds(b.crs, "EPSG:4326", *b.bounds)
    seam_lon = (wa[2] + wb[0]) / 2
    lat = (wa[1] + wa[3]) / 2
    return [mercantile.tile(seam_lon, lat + dy, z) for z in (9, 11, 12, 13) for dy in (0, 0.05)]


#: The last-band methods decide by a second band: read band 1 twice (the output drops it).
INDEXES = {"lastbandlow": (1, 1), "lastbandhigh": (1, 1)}


def rio_tiler_tile(paths, tile, method):
    def read(path, x, y, z):
        with rio_tiler_io.Reader(str(path)) as src:
            return src.tile(x, y, z, indexes=INDEXES.get(method))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image, _ = mosaic_reader([str(p) for p in paths], read, tile.x, tile.y, tile.z,
                                 pixel_selection=METHODS[method](), threads=0)
    return image


def ours(path, tile, method="first"):
    source = mosaicjson.reader_for(str(path), config())
    return source.tile(TileAddress(wmq(), tile.z, tile.x, tile.y, 256, 256, None),
                       Selection(indexes=INDEXES.get(method), pixel_selection=method))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_tiles_across_the_seam_agree_with_rio_tiler(halves, method):
    west, east, path = halves
    compared = 0
    for tile in seam_tiles(west, east):
        ref = rio_tiler_tile([west, east], tile, method)
        mine = ours(path, tile, method)
        ref_valid = ref.mask > 0
        assert (ref_valid == mine.mask).mean() >= 0.99, f"{method} {tile}: masks differ"
        both = ref_valid & mine.mask
        assert both.any()
        np.testing.assert_allclose(mine.data[:, both].astype("float64"),
                                   ref.data[:, both].astype("float64"), rtol=1e-5, atol=1e-3,
                                   err_msg=f"{method} {tile}")
        compared += 1
    assert compared >= 6


def test_first_stops_reading_once_the_tile_is_filled(halves):
    west, east, path = halves
    with rasterio.open(west) as src:
        from rasterio.warp import transform_bounds
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    tile = mercantile.tile(w + (e - w) * 0.25, (s + n) / 2, 13)  # inside the west half only
    source = mosaicjson.reader_for(str(path), config())
    assert len(source._files_of_tile(wmq(), tile.z, tile.x, tile.y)) == 2  # both listed
    cache.clear()
    image = ours(path, tile)
    assert image.mask.all()
    opened = {entry.name for entry in cache._entries.values()}
    assert opened == {"west.tif"}  # the east half was never opened


def test_built_document(halves):
    west, east, path = halves
    document = json.loads(path.read_text())
    assert document["mosaicjson"] == "0.0.3"
    assert document["quadkey_zoom"] == document["minzoom"] <= document["maxzoom"]
    files = {f for urls in document["tiles"].values() for f in urls}
    assert files == {str(west), str(east)}
    with pytest.raises(Exception, match="exists"):
        mosaics.write(document, str(path))  # never over an existing document
    assert json.loads(path.read_text()) == document


def test_routes(client, halves):
    west, east, path = halves
    url = quote(str(path))
    info = client.http.get(f"/mosaicjson/info?url={url}").json_body
    assert info["files"] == 2 and info["minzoom"] <= info["maxzoom"]
    tilejson = client.http.get(f"/mosaicjson/tilejson.json?url={url}&rescale=0,8000"
                               "&pixel_selection=highest").json_body
    assert "/mosaicjson/tiles/WebMercatorQuad/{z}/{x}/{y}?" in tilejson["tiles"][0]
    assert "pixel_selection=highest" in tilejson["tiles"][0]
    tile = seam_tiles(west, east)[2]
    response = client.http.get(f"/mosaicjson/tiles/{tile.z}/{tile.x}/{tile.y}.png?url={url}"
                               "&rescale=0,8000", headers=ACCEPT_IMAGE)
    assert response.status_code == 200 and decode(response.body).shape[1:] == (256, 256)
    lon, lat = mercantile.ul(tile.x, tile.y + 1, tile.z)
    point = client.http.get(f"/mosaicjson/point/{lon + 0.001},{lat + 0.001}?url={url}"
                            ).json_body
    assert point.get("valid") and point["assets"], point
    xml = client.http.get(f"/mosaicjson/WMTSCapabilities.xml?url={url}").body.decode()
    assert "/mosaicjson/tiles/WebMercatorQuad/{TileMatrix}/{TileCol}/{TileRow}.png" in xml
    other = client.http.get(f"/mosaicjson/tiles/WorldCRS84Quad/{tile.z - 1}/"
                            f"{tile.x}/{tile.y // 2}.png?url={url}&rescale=0,8000")
    assert other.status_code in (200, 404)
    assert client.http.get(f"/mosaicjson/tiles/5/0/0.png?url={url}").status_code == 404


def test_a_member_outside_the_allow_list_is_refused_unopened(client, halves):
    west, east, path = halves
    document = json.loads(path.read_text())
    document["tiles"] = {q: ["/etc/secret.tif"] + files for q, files in document["tiles"].items()}
    bad = path.parent / "bad.json"
    bad.write_text(json.dumps(document))
    tile = seam_tiles(west, east)[2]
    opened = cache.opened
    response = client.http.get(f"/mosaicjson/tiles/{tile.z}/{tile.x}/{tile.y}.png?url={bad}")
    assert response.status_code == 403 and "allow-list" in response.json_body["Message"]
    assert cache.opened == opened


def test_not_a_mosaic(client, halves, shared):
    west, east, path = halves
    assert client.http.get(f"/mosaicjson/info?url={shared / 'cog.tif'}").status_code == 422
    (path.parent / "notmosaic.json").write_text('{"type": "Feature"}')
    response = client.http.get(f"/mosaicjson/info?url={path.parent / 'notmosaic.json'}")
    assert response.status_code == 422 and "MosaicJSON" in response.json_body["Message"]


def test_the_mosaic_function_builds_from_an_s3_prefix(client, moto, halves, monkeypatch):
    """The pure function: list an allowed S3 prefix, build, write under MOSAIC_PREFIX (never
    over an existing document), and the tiler serves the result from S3."""
    from tests.conftest import PIPELINE
    bucket = PIPELINE["TILE_BUCKET"]
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=bucket)
    west, east, _ = halves
    for path in (west, east):
        s3.upload_file(str(path), bucket, f"cogs/{path.name}")
    s3.put_object(Bucket=bucket, Key="cogs/readme.txt", Body=b"not a raster")
    monkeypatch.setenv("ALLOWED_SOURCES", f"s3://{bucket}/cogs/,s3://{bucket}/mosaics/")
    event = {"name": "halves", "prefix": f"s3://{bucket}/cogs/"}
    result = client.lambda_.invoke("mosaic", event).payload
    assert result["ok"] and result["files"] == 2, result
    assert result["url"] == f"s3://{bucket}/mosaics/halves.json"
    stored = json.loads(s3.get_object(Bucket=bucket, Key="mosaics/halves.json")["Body"].read())
    assert {u for files in stored["tiles"].values() for u in files} == {
        f"s3://{bucket}/cogs/east.tif", f"s3://{bucket}/cogs/west.tif"}
    again = client.lambda_.invoke("mosaic", event).payload
    assert not again["ok"] and "exists" in again["error"]
    assert client.lambda_.invoke("mosaic", {**event, "overwrite": True}).payload["ok"]
    tile = seam_tiles(west, east)[2]
    response = client.http.get(f"/mosaicjson/tiles/{tile.z}/{tile.x}/{tile.y}.png"
                               f"?url={result['url']}&rescale=0,8000", headers=ACCEPT_IMAGE)
    assert response.status_code == 200
    refused = client.lambda_.invoke("mosaic", {"name": "x", "prefix": "s3://other/cogs/"})
    assert not refused.payload["ok"] and "allow-list" in refused.payload["error"]
    bad = client.lambda_.invoke("mosaic", {"name": "../up", "urls": [str(west)]}).payload
    assert not bad["ok"] and "'name'" in bad["error"]


def test_make_mosaic_writes_a_document_and_never_overwrites(halves, tmp_path, monkeypatch):
    """`make mosaic`'s script, from a folder of GeoTIFFs."""
    import make_mosaic
    west, east, _ = halves
    monkeypatch.chdir(tmp_path)
    assert make_mosaic.main(["both", f"{west.parent}/"]) == 0
    written = json.loads((tmp_path / "both.json").read_text())
    assert {u for files in written["tiles"].values() for u in files} == {str(west), str(east)}
    assert make_mosaic.main(["both", str(west)]) == 2  # exists: refused, unchanged
    assert json.loads((tmp_path / "both.json").read_text()) == written
    assert make_mosaic.main(["both", str(west), "--overwrite"]) == 0


def test_gzipped_documents_and_zip_bombs(client, halves):
    """cogeo-mosaic writes mosaics.json.gz: served alike; a bomb is refused, not inflated."""
    import gzip

    from chalicelib.sources.documents import MAX_DOCUMENT_BYTES
    west, east, path = halves
    zipped = path.parent / "mosaics.json.gz"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    info = client.http.get(f"/mosaicjson/info?url={zipped}")
    assert info.status_code == 200 and info.json_body["files"] == 2
    bomb = path.parent / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b" " * (MAX_DOCUMENT_BYTES + 10)))
    assert bomb.stat().st_size < 100_000
    response = client.http.get(f"/mosaicjson/info?url={bomb}")
    assert response.status_code == 400 and "larger than" in response.json_body["Message"]


def test_the_mosaic_function_bounds_its_work(client, shared, monkeypatch):
    """Each file costs a header read: more than the function can open in its timeout is a
    clear refusal, before any is opened."""
    monkeypatch.setenv("ALLOWED_SOURCES", f"{shared}/")
    urls = [f"{shared}/cog.tif?{i}" for i in range(mosaics.MAX_BUILD_FILES + 1)]
    before = cache.opened
    result = client.lambda_.invoke("mosaic", {"name": "many", "urls": urls}).payload
    assert not result["ok"] and f"at most {mosaics.MAX_BUILD_FILES}" in result["error"]
    assert cache.opened == before


def test_a_file_reaching_the_pole_builds(rasters, monkeypatch):
    """Web Mercator ends at 85.05 degrees: a file reaching 90 (or lying wholly above 85)
    is listed where it meets the grid, and the bounds stay its own."""
    from chalicelib.core.settings import from_environ
    folder = rasters / "polar"
    folder.mkdir(exist_ok=True)
    from rasterio.transform import from_origin
    for name, height in (("reaching.tif", 40), ("above.tif", 4)):
        with rasterio.open(folder / name, "w", driver="GTiff", width=360, height=height,
                           count=1, dtype="uint8", crs="EPSG:4326",
                           transform=from_origin(-180, 90, 1, 1)) as dst:
            dst.write(np.ones((1, height, 360), dtype="uint8"))
    config = from_environ({"ALLOWED_SOURCES": f"{folder}/"})
    for name, south in (("reaching.tif", 50.0), ("above.tif", 86.0)):
        for quadkey_zoom in (None, 0):
            document = mosaics.build([str(folder / name)], config, quadkey_zoom)
            assert document["bounds"] == [-180.0, south, 180.0, 90.0]
            assert document["tiles"]
