"""Parameters: parsed from their declarations into typed records, or a 400 naming them."""

import math
import re

import numpy as np
import pytest

from chalicelib.api import params
from chalicelib.core.errors import BadRequest, NotFound
from chalicelib.core.settings import Settings
from chalicelib.grids import tilematrixsets

RENDER = (*params.SELECTION, *params.STYLE)


def address(segment, z="5", x="3", tms="WebMercatorQuad", **query):
    values = params.parse((*params.TILE,), {k: [v] for k, v in query.items()},
                          {"tileMatrixSetId": tms, "z": z, "x": x, "y": segment})
    return params.tile_address(values)


def render_values(query):
    values = params.parse(RENDER, query)
    return params.selection(values), params.style(values)


@pytest.mark.parametrize("segment, size, fmt", [
    ("12", 256, None), ("12.png", 256, "png"), ("12@2x", 512, None),
    ("12@2x.webp", 512, "webp"), ("12.jpg", 256, "jpeg"), ("12@1x.tif", 256, "tif"),
    ("12.npy", 256, "npy"), ("12@3x.jpeg", 768, "jpeg"), ("12.TIFF", 256, "tif"),
])
def test_tile_address_segments(segment, size, fmt):
    tile = address(segment, z="5")
    assert (tile.z, tile.x, tile.y, tile.width, tile.height) == (5, 3, 12, size, size)
    assert (tile.format.name if tile.format else None) == fmt


def test_tilesize_parameter_and_scale_multiply():
    assert address("12@2x", tilesize="512").width == 1024


def test_tile_limits_follow_the_tile_matrix_set():
    assert address("0", z="0", x="1", tms="WorldCRS84Quad").x == 1  # 2 x 1 tiles at zoom 0
    with pytest.raises(BadRequest, match="'x' must be between 0 and 0"):
        address("0", z="0", x="1")  # WebMercatorQuad has one tile at zoom 0
    assert address("0", z="-10", x="0", tms="CDB1GlobalGrid").z == -10
    with pytest.raises(BadRequest, match="between 0 and 25"):
        address("0", z="26", x="0", tms="CanadianNAD83_LCC")  # no derived levels there
    assert address("0", z="30", x="0").z == 30  # WebMercatorQuad derives 25-30


def test_unknown_tile_matrix_sets_are_not_found():
    with pytest.raises(NotFound, match="/tileMatrixSets"):
        address("0", tms="Nowhere")


@pytest.mark.parametrize("z, x, y", [
    ("-1", "0", "0"), ("a", "0", "0"), ("31", "0", "0"), ("2", "4", "0"), ("2", "0", "4"),
    ("2", "0", "1.gif"), ("2", "0", "1@5x"), ("2", "0", "1@x"), ("2", "0", "../1"),
    ("٣", "0", "0"), ("2", "١", "0"), ("2", "0", "١"), ("1" * 40, "0", "0"), ("2", "0", "1@9x"),
])
def test_bad_tile_addresses(z, x, y):
    with pytest.raises(BadRequest):
        address(y, z=z, x=x)


def test_selection_bidx_repeatable_and_comma_separated():
    selection, _ = render_values({"bidx": ["3", "1,2"]})
    assert selection.indexes == (3, 1, 2)


def test_selection_nodata_nan_and_resampling():
    selection, _ = render_values({"nodata": ["nan"], "resampling": ["Bilinear"],
                                  "reproject": ["cubic"]})
    assert math.isnan(selection.nodata)
    assert selection.resampling.name == "bilinear" and selection.reproject.name == "cubic"


def test_empty_values_count_as_not_given():
    selection, style = render_values({"bidx": [""], "zlevel": [""], "colormap_name": [""]})
    assert selection.indexes is None and style.png_zlevel == 6 and style.colormap is None


def test_rescale_one_per_band_or_one_for_all():
    assert render_values({"rescale": ["0,10", "5,20"]})[1].rescale == ((0, 10), (5, 20))
    assert render_values({"rescale": ["[0,1000]"]})[1].rescale == ((0, 1000),)


def test_custom_colormaps():
    discrete = render_values({"colormap": ['{"1": [255, 0, 0, 255], "2": "#00ff00"}']})[1]
    assert discrete.colormap == {1.0: (255, 0, 0, 255), 2.0: (0, 255, 0, 255)}
    intervals = render_values({"colormap": ['[[[0, 10], [1, 2, 3]]]']})[1]
    assert intervals.colormap == [((0.0, 10.0), (1, 2, 3, 255))]


def test_colormap_names_are_case_insensitive_and_reversible():
    table = render_values({"colormap_name": ["Viridis"]})[1].colormap
    reverse = render_values({"colormap_name": ["viridis_r"]})[1].colormap
    assert table.shape == (256, 4) and table.dtype == np.uint8
    np.testing.assert_array_equal(reverse, table[::-1])


@pytest.mark.parametrize("query", [
    {"bidx": ["0"]}, {"bidx": ["x"]}, {"nodata": ["abc"]}, {"resampling": ["bogus"]},
    {"reproject": ["gauss"]}, {"rescale": ["1"]}, {"rescale": ["5,5"]}, {"rescale": ["a,b"]},
    {"colormap_name": ["nope"]}, {"colormap": ["{not json"]}, {"colormap": ['{"a": [1,2,3]}']},
    {"colormap": ['{"1": [1,2]}']}, {"colormap": ['{"1": [1,2,300]}']}, {"colormap": ["[]"]},
    {"colormap_name": ["viridis"], "colormap": ['{"1": [1,2,3]}']},
    {"return_mask": ["maybe"]}, {"zlevel": ["12"]}, {"quality": ["0"]},
    {"expression": ["b1 +"]},
    # numbers that are not ASCII decimals, or too large for their type
    {"bidx": ["١"]}, {"bidx": ["9" * 100]}, {"zlevel": ["٣"]}, {"nodata": ["١"]},
    {"nodata": ["1e999"]}, {"rescale": ["-1.7e308,1.7e308"]}, {"rescale": ["٠,١"]},
    {"rescale": ["inf,5"]}, {"colormap": ['{"1": "#gg0000"}']},
    {"colormap": ['{"1": "#ff0000\\n"}']},
])
def test_bad_parameters_are_bad_requests(query):
    with pytest.raises(BadRequest):
        render_values(query)


@pytest.mark.parametrize("query", [
    {"histogram_range": ["-1.7e308,1.7e308"]}, {"histogram_range": ["0,5e-324"]},
    {"histogram_range": ["1,1"]}, {"histogram_range": ["a"]}, {"histogram_bins": ["0"]},
    {"max_size": ["1e20"]}, {"max_size": ["5000"]}, {"p": ["101"]}, {"p": ["١"]},
])
def test_bad_statistics_parameters(query):
    with pytest.raises(BadRequest):
        params.statistics_options(params.parse(params.STATISTICS, query, config=Settings()))


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "0,0,10,10,5", "0,10,10,0",
                                  "10,0,5,1", "١,0,1,1", "0,0,0,1"])
def test_bad_bboxes(text):
    with pytest.raises(BadRequest):
        params.bbox_value(text)


@pytest.mark.parametrize("text", ["-200,0,10,10", "0,95,10,96"])
def test_bboxes_in_degrees_unless_coord_crs_says_otherwise(text):
    declared = (params.BBOX, params.COORD_CRS)
    with pytest.raises(BadRequest, match="coord_crs"):
        params.bbox_of(params.parse(declared, path={"bbox": text + ".png"}))
    projected = params.parse(declared, {"coord_crs": ["EPSG:3857"]}, {"bbox": text + ".png"})
    assert params.bbox_of(projected)[0] == tuple(float(v) for v in text.split(","))


@pytest.mark.parametrize("text", ["1", "a,b", "nan,0", "١,0"])
def test_bad_points(text):
    with pytest.raises(BadRequest):
        params.parse((params.LONLAT,), path={"lonlat": text})


@pytest.mark.parametrize("text", ["181,0", "0,91"])
def test_points_in_degrees_unless_coord_crs_says_otherwise(text):
    declared = (params.LONLAT, params.COORD_CRS)
    with pytest.raises(BadRequest, match="coord_crs"):
        params.point_of(params.parse(declared, path={"lonlat": text}))
    assert params.point_of(params.parse(declared, {"coord_crs": ["EPSG:32618"]},
                                        {"lonlat": text})) == tuple(map(float, text.split(",")))


@pytest.mark.parametrize(("text", "code"), [
    ("EPSG:32633", 32633), ("epsg:4326", 4326),
    ("http://www.opengis.net/def/crs/EPSG/0/3857", 3857), ("urn:ogc:def:crs:EPSG::2154", 2154)])
def test_crs_by_code_uri_or_urn(text, code):
    assert params.crs_value(text).to_epsg() == code
    assert re.fullmatch(params.COORD_CRS.pattern, text)  # the OpenAPI pattern says the same


@pytest.mark.parametrize(("text", "words"), [
    ("+proj=longlat +nadgrids=@http://x/grid.tif", "by its code"),
    ('GEOGCS["x"]', "by its code"), ("EPSG:999999", "not a CRS this server knows"),
    ("urn:ogc:def:crs:EPSG::OK4bMq", "not a CRS this server knows"),
    ("IAU_2015:49900", "not a CRS of the Earth"), ("ESRI:104905", "not a CRS of the Earth"),
    ("EPSG:4978", "neither geographic nor projected"),
    ("/vsicurl/http://x", "by its code")])
def test_crs_strings_that_could_reach_out_are_refused(text, words):
    with pytest.raises(BadRequest, match=words):
        params.crs_value(text)
    assert words != "by its code" or not re.fullmatch(params.COORD_CRS.pattern, text)


def test_limits_that_depend_on_the_settings():
    small = Settings(max_image_size=100)
    assert params.parse(params.IMAGE, {"width": ["100"]}, config=small).width == 100
    with pytest.raises(BadRequest, match="between 1 and 100"):
        params.parse(params.IMAGE, {"width": ["101"]}, config=small)
    assert params.MAX_SIZE.schema(small)["maximum"] == 100


def test_every_declaration_documents_itself():
    declared = {p.name: p for group in (params.SELECTION, params.STYLE, params.TILE,
                                        params.IMAGE, params.STATISTICS, params.TILEJSON,
                                        params.WMTS, (params.URL, params.FORMAT, params.BBOX,
                                                      params.SIZE, params.LONLAT))
                for p in group}
    for param in declared.values():
        assert param.description and param.schema()["type"]
        if param.default is not None:  # the default parses
            params.parse((param,), path={param.name: param.raw_default()})
    assert set(params.TMS_ID.enum) == set(tilematrixsets.IDS)


def test_the_readme_tables_are_the_declarations():
    import subprocess
    import sys

    from tests.support import ROOT
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_builder_asking_for_an_undeclared_name_fails_loudly():
    """Builders shared by route families read names a route may not declare (None), but a
    name no parameter has is a misspelling, not a silent default."""
    values = params.parse(params.POINT_SELECTION, {"bidx": ["2"]})
    assert values.get("bidx") == (2,) and values.get("assets") is None
    with pytest.raises(KeyError, match="exprssion"):
        values.get("exprssion")
    with pytest.raises(AttributeError):
        values.assets  # noqa: B018  (not declared by this route)
