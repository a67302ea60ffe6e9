"""The algorithm declaration (chalicelib/pixels/algorithms.py) on an algorithm of the test's
own: parameters checked by name, the band count refused with a message, the buffer the read
adds cropped off again, the pipeline's post-processing step running it, and its metadata in
titiler's shape."""

import numpy as np
import pytest
from rasterio.crs import CRS

from chalicelib.core.errors import BadRequest
from chalicelib.core.geo import Bounds
from chalicelib.core.records import ImageData
from chalicelib.operations.pipeline import post_process
from chalicelib.pixels.algorithms import Algorithm, Parameter


class Offset(Algorithm):
    """Offset
    Adds a number to one band (a neighbourhood of one pixel, for the buffer)."""

    name = "offset"
    parameters = (Parameter("by", "number", 1.0, "what is added", minimum=-10, maximum=10),)
    inputs = outputs = 1
    buffer = 1

    def apply(self, image):
        image.data = image.data + self.values["by"]
        return image


def image(bands=1, size=6):
    data = np.arange(bands * size * size, dtype="float32").reshape(bands, size, size)
    return ImageData(data, np.ones((size, size), bool), Bounds(0.0, 0.0, 6.0, 6.0),
                     CRS.from_epsg(3857), tuple(f"b{i + 1}" for i in range(bands)))


def test_parameters_are_checked_by_name():
    assert Offset().values == {"by": 1.0} and Offset(by=2).values == {"by": 2}
    with pytest.raises(BadRequest, match="'by' must be between -10 and 10, got 11"):
        Offset(by=11)
    with pytest.raises(BadRequest, match="'by' must be a number"):
        Offset(by=True)
    with pytest.raises(BadRequest, match="no parameter 'bye' .*its parameters: by"):
        Offset(bye=1)


def test_the_buffer_is_cropped_and_the_bands_checked():
    out = post_process(image(), Offset(by=0.5))
    assert out.data.shape == (1, 4, 4) and out.mask.shape == (4, 4)
    np.testing.assert_array_equal(out.data[0, 0], [7.5, 8.5, 9.5, 10.5])
    assert tuple(out.bounds) == (1.0, 1.0, 5.0, 5.0) and isinstance(out.bounds, Bounds)
    with pytest.raises(BadRequest, match="takes 1 band"):
        post_process(image(bands=3), Offset())
    same = image()
    assert post_process(same) is same  # no algorithm: the pixels as read


def test_describe_is_titilers_shape():
    assert Offset.describe() == {
        "title": "Offset",
        "description": "Adds a number to one band (a neighbourhood of one pixel, for the "
                       "buffer).",
        "inputs": {"nbands": 1}, "outputs": {"nbands": 1},
        "parameters": {"by": {"type": "number", "default": 1.0, "description": "what is added",
                              "minimum": -10, "maximum": 10}}}
