"""WMTS: the capabilities document, and GDAL's WMTS driver (a client nobody here wrote) reading
the service from `chalice local`, compared with rio-tiler and with our own tiles."""

import warnings
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

import numpy as np
import pytest
import rasterio
from chalice_local import ChaliceLocal
from rasterio.windows import Window

from chalicelib.grids import tilematrixsets
from chalicelib.readers import geotiff
from tests.support import decode, fetch, open_dataset

NS = {"w": "http://www.opengis.net/wmts/1.0", "ows": "http://www.opengis.net/ows/1.1",
      "xlink": "http://www.w3.org/1999/xlink"}


def capabilities(client, path):
    response = client.http.get(path)
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "application/xml"
    return ET.fromstring(response.body)


def test_capabilities_describe_the_data_and_carry_the_render_parameters(client, shared):
    url = str(shared / "cog.tif")
    root = capabilities(client, f"/cog/WGS1984Quad/WMTSCapabilities.xml?url={url}"
                                "&rescale=1,7000&colormap_name=viridis&tile_format=webp")
    layer = root.find("w:Contents/w:Layer", NS)
    template = layer.find("w:ResourceURL", NS).get("template")
    assert "/cog/tiles/WGS1984Quad/{TileMatrix}/{TileCol}/{TileRow}.webp?" in template
    assert f"url={quote(url, safe='')}" in template and "rescale=1%2C7000" in template
    assert "colormap_name=viridis" in template and "tile_format" not in template
    assert layer.find("w:Format", NS).text == "image/webp"
    tms = tilematrixsets.get("WGS1984Quad")
    dataset = open_dataset(url)
    minzoom, maxzoom = geotiff.zoom_range(dataset, tms)
    limits = layer.findall("w:TileMatrixSetLink/w:TileMatrixSetLimits/w:TileMatrixLimits", NS)
    assert [int(lim.find("w:TileMatrix", NS).text) for lim in limits] == \
        list(range(minzoom, maxzoom + 1))
    for lim in limits:
        z = int(lim.find("w:TileMatrix", NS).text)
        expected = geotiff.tile_limits(dataset, tms, z)
        assert [int(lim.find(f"w:{n}", NS).text) for n in
                ("MinTileCol", "MinTileRow", "MaxTileCol", "MaxTileRow")] == list(expected)
    # EPSG:4326 is latitude first: corners and the bounding box in that order
    matrix = root.find("w:Contents/w:TileMatrixSet/w:TileMatrix", NS)
    assert matrix.find("w:TopLeftCorner", NS).text == "90.0 -180.0"
    lower = layer.find("ows:BoundingBox/ows:LowerCorner", NS).text.split()
    assert float(lower[0]) == pytest.approx(dataset.geographic_bounds[1], abs=0.01)
    assert root.find("w:Contents/w:TileMatrixSet/ows:SupportedCRS", NS).text == \
        "urn:ogc:def:crs:EPSG::4326"


def test_larger_tiles_keep_the_extent(client, shared):
    url = str(shared / "RGB.byte.tif")
    plain = capabilities(client, f"/cog/WMTSCapabilities.xml?url={url}")
    double = capabilities(client, f"/cog/WMTSCapabilities.xml?url={url}&tile_scale=2")
    for a, b in zip(plain.findall(".//w:TileMatrixSet/w:TileMatrix", NS),
                    double.findall(".//w:TileMatrixSet/w:TileMatrix", NS)):
        assert int(b.find("w:TileWidth", NS).text) == 2 * int(a.find("w:TileWidth", NS).text)
        assert float(b.find("w:ScaleDenominator", NS).text) == \
            pytest.approx(float(a.find("w:ScaleDenominator", NS).text) / 2)
    template = double.find(".//w:ResourceURL", NS).get("template")
    assert "{TileRow}@2x.png?" in template


@pytest.mark.parametrize("path, status", [
    ("/cog/GNOSISGlobalGrid/WMTSCapabilities.xml?url={url}", 400),  # merged tiles
    ("/cog/NoSuchGrid/WMTSCapabilities.xml?url={url}", 404),
    ("/cog/WMTSCapabilities.xml?url={url}&tile_format=gif", 400),
    ("/cog/WMTSCapabilities.xml?url=/etc/passwd", 403),
])
def test_capabilities_errors(client, shared, path, status):
    response = client.http.get(path.format(url=shared / "RGB.byte.tif"))
    assert response.status_code == status and response.json_body["Message"]


@pytest.mark.parametrize("path, message", [
    ("/cog/WMTSCapabilities.xml?url={data}/RGB.byte.tif&bidx=4", "band 4 does not exist"),
    ("/cog/WMTSCapabilities.xml?url={data}/RGB.byte.tif&algorithm=hillshade", "takes 1 band"),
    ("/cog/WMTSCapabilities.xml?url={data}/RGB.byte.tif&colormap_name=viridis",
     "a colormap colours one band"),
    ("/cog/WMTSCapabilities.xml?url={data}/cog.tif&rescale=0,1&rescale=0,2",
     "2 ranges for 1 bands"),
    ("/stac/WMTSCapabilities.xml?url=chalicelib/demo/item.json", "choose what to read"),
])
def test_a_layer_whose_tiles_would_fail_is_refused(client, shared, path, message):
    """QGIS and GDAL take a capabilities document as a valid layer and show its failing
    tiles as blank, without an error: the document itself says what is wrong."""
    response = client.http.get(path.format(data=shared))
    assert response.status_code == 400 and message in response.json_body["Message"]
    # the same tiles render once the parameter is right
    fixed = path.format(data=shared).replace("bidx=4", "bidx=1").replace(
        "colormap_name=viridis", "bidx=1&colormap_name=viridis").replace(
        "algorithm=hillshade", "algorithm=grayscale").replace("&rescale=0,2", "").replace(
        "item.json", "item.json&assets=visual")
    assert client.http.get(fixed).status_code == 200


# ---- GDAL's WMTS driver as the client ------------------------------------------------------

@pytest.fixture(scope="module")
def server(shared):
    """chalice local. This test process is also GDAL's WMTS client of it, so the engine's
    egress guard (chalicelib.sources.egress), which would refuse GDAL's requests to a
    server on 127.0.0.1 nobody allowed, as it should for a server, is off here: an empty
    GDAL_HTTP_PROXY is the operator's switch for that."""
    import os
    with ChaliceLocal("test", {"ALLOWED_SOURCES": f"{shared}/"}) as local:
        saved = os.environ.get("GDAL_HTTP_PROXY")
        os.environ["GDAL_HTTP_PROXY"] = ""
        from chalicelib.core import settings
        from chalicelib.sources import datasets
        datasets.cache._apply_environment(settings.current())
        try:
            yield local.base
        finally:
            if saved is None:
                os.environ.pop("GDAL_HTTP_PROXY", None)
            else:
                os.environ["GDAL_HTTP_PROXY"] = saved
            datasets.cache._apply_environment(settings.current())


CASES = [  # (set, raster, extra query): a world grid, latitude-first axes, a polar grid
    ("WebMercatorQuad", "RGB.byte.tif", {}),
    ("WebMercatorQuad", "RGB.byte.tif", {"tile_scale": "2"}),
    ("WGS1984Quad", "cog.tif", {"rescale": "1,7000"}),
    ("UPSArcticWGS84Quad", "cog.tif", {"rescale": "1,7000"}),
    ("WorldCRS84Quad", "cog_dateline.tif", {"rescale": "1,7000"}),
]


@pytest.mark.parametrize("tms_id, name, extra", CASES)
def test_gdal_reads_the_service_like_rio_tiler(server, shared, tms_id, name, extra):
    import morecantile
    from rio_tiler.io import Reader

    path = str(shared / name)
    query = urlencode({"url": path, "tile_format": "png", **extra})
    tms, scale = tilematrixsets.get(tms_id), int(extra.get("tile_scale", 1))
    with rasterio.open(f"WMTS:{server}/cog/{tms_id}/WMTSCapabilities.xml?{query}") as wmts:
        assert wmts.crs == tms.crs or wmts.crs.to_epsg() == tms.crs.to_epsg()
        # the finest level GDAL found is the data's maxzoom, at @Nx resolution
        z = geotiff.zoom_range(open_dataset(path), tms)[1]
        matrix = tms.matrix(z)
        size = matrix.tile_width * scale
        assert wmts.res[0] == pytest.approx(matrix.cell_size / scale)
        # a tile of the data, located in the WMTS raster
        box = geotiff.footprint(open_dataset(path), tms)[0]
        found = tms.tile_range(z, box)
        x, y = (found[0] + found[2]) // 2, (found[1] + found[3]) // 2
        col0 = round((wmts.transform.c - matrix.origin[0]) / wmts.res[0])
        row0 = round((matrix.origin[1] - wmts.transform.f) / wmts.res[0])
        window = Window(x * size - col0, y * size - row0, size, size)
        through_gdal = wmts.read(window=window, boundless=True)
    assert through_gdal.shape == (4, size, size)  # RGBA
    # exactly our own tile, as GDAL decoded it
    suffix = f"@{scale}x.png" if scale > 1 else ".png"
    status, _, body = fetch(f"{server}/cog/tiles/{tms_id}/{z}/{x}/{y}{suffix}?"
                            + urlencode({"url": path, **{k: v for k, v in extra.items()
                                                         if k != "tile_scale"}}),
                            {"Accept": "image/png"})
    ours = decode(body)
    assert status == 200
    np.testing.assert_array_equal(through_gdal[:ours.shape[0]], ours)
    # and rio-tiler's tile on the same cells
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rio-tiler warns about files without overviews
        with Reader(path, tms=morecantile.tms.get(tms_id)) as ref_reader:
            ref = ref_reader.tile(x, y, z, tilesize=size)
    if "rescale" in extra:
        ref.rescale(in_range=((1, 7000),))
    mask, alpha = ref.mask > 0, through_gdal[3] > 0
    assert (mask == alpha).mean() >= 0.97 and mask.any()
    diff = np.abs(through_gdal[:3].astype(int) - ref.data[:3].astype(int))[:, mask & alpha]
    assert np.percentile(diff, 99) <= 2


def _tms_xml(server, query: str, zero_codes: str | None) -> str:
    """A GDAL WMS file (TMS minidriver: XYZ tiles) over our WebMercatorQuad tiles, z 12."""
    template = f"{server}/cog/tiles/WebMercatorQuad/${{z}}/${{x}}/${{y}}.png?{query}"
    zero = f"<ZeroBlockHttpCodes>{zero_codes}</ZeroBlockHttpCodes>" if zero_codes else ""
    return (f'<GDAL_WMS><Service name="TMS"><ServerUrl>{template.replace("&", "&amp;")}'
            "</ServerUrl></Service><DataWindow><UpperLeftX>-20037508.34</UpperLeftX>"
            "<UpperLeftY>20037508.34</UpperLeftY><LowerRightX>20037508.34</LowerRightX>"
            "<LowerRightY>-20037508.34</LowerRightY><TileLevel>12</TileLevel>"
            "<TileCountX>1</TileCountX><TileCountY>1</TileCountY><YOrigin>top</YOrigin>"
            "</DataWindow><Projection>EPSG:3857</Projection><BlockSizeX>256</BlockSizeX>"
            f"<BlockSizeY>256</BlockSizeY><BandsCount>4</BandsCount>{zero}"
            "<Cache/><MaxConnections>1</MaxConnections></GDAL_WMS>")


@pytest.mark.parametrize("outside, zero_codes, readable", [
    (None, None, False),       # GDAL stops on our 404 for a tile outside the data...
    (None, "204,404", True),   # ...unless told to take it as empty,
    ("204", None, True),       # or the tiles answer 204, GDAL's default empty tile,
    ("empty", None, True),     # or a transparent tile.
])
def test_gdal_xyz_reads_across_the_edge_of_the_data(server, shared, tmp_path, outside,
                                                    zero_codes, readable):
    path = str(shared / "RGB.byte.tif")
    query = urlencode({"url": path, **({"outside": outside} if outside else {})})
    xml = tmp_path / "tiles.xml"
    xml.write_text(_tms_xml(server, query, zero_codes))
    tms = tilematrixsets.get("WebMercatorQuad")
    west, south, east, north = geotiff.footprint(open_dataset(path), tms)[0]
    x0, y0, x1, y1 = tms.tile_range(12, (west, south, east, north))
    inside = Window((x0 + x1) // 2 * 256, (y0 + y1) // 2 * 256, 256, 256)
    outside = Window((x1 + 3) * 256, (y0 + y1) // 2 * 256, 256, 256)  # east of the data
    with rasterio.open(xml) as dataset:
        assert dataset.read(4, window=inside).all()  # the data, opaque
        if not readable:
            with pytest.raises(rasterio.errors.RasterioIOError) as failure:
                dataset.read(window=outside)
            assert "404" in str(failure.value.__cause__ or failure.value)
            return
        assert not dataset.read(window=outside).any()  # nothing, transparent
