"""Query parameters become typed records, or a 400 naming the parameter."""

import math

import numpy as np
import pytest

from chalicelib import params
from chalicelib.errors import BadRequest


@pytest.mark.parametrize("segment, size, fmt", [
    ("12", 256, None), ("12.png", 256, "png"), ("12@2x", 512, None),
    ("12@2x.webp", 512, "webp"), ("12.jpg", 256, "jpeg"), ("12@1x.tif", 256, "tif"),
    ("12.npy", 256, "npy"), ("12@3x.jpeg", 768, "jpeg"),
])
def test_tile_address_segments(segment, size, fmt):
    address = params.tile_address("5", "3", segment, {})
    assert (address.z, address.x, address.y, address.tilesize) == (5, 3, 12, size)
    assert (address.format.name if address.format else None) == fmt


def test_tilesize_parameter_and_scale_multiply():
    assert params.tile_address("5", "3", "12@2x", {"tilesize": ["512"]}).tilesize == 1024


@pytest.mark.parametrize("z, x, y", [
    ("-1", "0", "0"), ("a", "0", "0"), ("31", "0", "0"), ("2", "4", "0"), ("2", "0", "4"),
    ("2", "0", "1.gif"), ("2", "0", "1@5x"), ("2", "0", "1@x"), ("2", "0", "../1"),
])
def test_bad_tile_addresses(z, x, y):
    with pytest.raises(BadRequest):
        params.tile_address(z, x, y, {})


def test_selection_bidx_repeatable_and_comma_separated():
    sel = params.selection({"bidx": ["3", "1,2"]})
    assert sel.indexes == (3, 1, 2)


def test_selection_nodata_nan_and_resampling():
    sel = params.selection({"nodata": ["nan"], "resampling": ["bilinear"], "reproject": ["cubic"]})
    assert math.isnan(sel.nodata)
    assert sel.resampling.name == "bilinear" and sel.reproject.name == "cubic"


def test_rescale_one_per_band_or_one_for_all():
    assert params.style({"rescale": ["0,10", "5,20"]}).rescale == ((0, 10), (5, 20))
    assert params.style({"rescale": ["[0,1000]"]}).rescale == ((0, 1000),)


def test_custom_colormaps():
    discrete = params.style({"colormap": ['{"1": [255, 0, 0, 255], "2": "#00ff00"}']}).colormap
    assert discrete == {1.0: (255, 0, 0, 255), 2.0: (0, 255, 0, 255)}
    intervals = params.style({"colormap": ['[[[0, 10], [1, 2, 3]]]']}).colormap
    assert intervals == [((0.0, 10.0), (1, 2, 3, 255))]


def test_colormap_names_are_case_insensitive_and_reversible():
    table = params.style({"colormap_name": ["Viridis"]}).colormap
    reverse = params.style({"colormap_name": ["viridis_r"]}).colormap
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
])
def test_bad_parameters_are_bad_requests(query):
    with pytest.raises(BadRequest):
        params.selection(query)
        params.style(query)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "0,0,10,10,5", "-200,0,10,10",
                                  "0,10,10,0", "0,95,10,96"])
def test_bad_bboxes(text):
    with pytest.raises(BadRequest):
        params.bbox(text)


@pytest.mark.parametrize("text", ["1", "a,b", "181,0", "0,91", "nan,0"])
def test_bad_points(text):
    with pytest.raises(BadRequest):
        params.lonlat(text)
