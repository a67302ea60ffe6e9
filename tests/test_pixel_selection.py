"""The mosaic's stack methods (mean, median, stdev, count) against numpy.ma's own, as
rio-tiler computes them, on random files with random gaps: the running sums and the sorted
stack must give the same pixels whatever the number of files, the type and the gaps."""

import numpy as np
import pytest

from chalicelib.pixels.pixel_selection import METHODS

REFERENCE = {
    "mean": lambda s: s.mean(axis=0),
    "median": lambda s: np.ma.median(s, axis=0),
    "stdev": lambda s: s.std(axis=0),
}


def files(rng, n, dtype, scale):
    shape = (3, 17, 19)
    for _ in range(n):
        if np.dtype(dtype).kind == "f":
            data = (rng.standard_normal(shape) * scale).astype(dtype)
        else:
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max, shape, endpoint=True, dtype=dtype)
        valid = rng.random(shape[1:]) < 0.7
        yield data, valid


@pytest.mark.parametrize("dtype,scale", [("uint8", 1), ("uint16", 1), ("int16", 1),
                                         ("float32", 1e3), ("float32", 1e37), ("float64", 1)])
@pytest.mark.parametrize("n", [1, 2, 3, 7])
@pytest.mark.parametrize("name", sorted(REFERENCE) + ["count"])
def test_stack_methods_agree_with_numpy_ma(name, n, dtype, scale):
    rng = np.random.default_rng(hash((name, n, dtype)) % 2**32)
    inputs = list(files(rng, n, dtype, scale))
    method = METHODS[name]()
    for data, valid in inputs:
        method.feed(data, valid[None])
    data, valid = method.result()
    stacked = np.ma.stack([np.ma.MaskedArray(d, ~np.broadcast_to(v, d.shape))
                           for d, v in inputs])
    expected_valid = ~np.ma.getmaskarray(stacked).all(axis=0).all(axis=0)
    if name == "count":
        assert data.dtype == np.uint8 and valid.all()
        assert (data[0] == stacked[:, 0].count(axis=0)).all()
        return
    assert (valid == expected_valid).all()
    with np.errstate(all="ignore"):
        reference = REFERENCE[name](stacked)
    if name != "stdev":
        reference = reference.astype(dtype)
    assert data.dtype == reference.dtype
    shown = np.broadcast_to(expected_valid, data.shape)
    np.testing.assert_allclose(data[shown].astype("float64"),
                               np.ma.getdata(reference)[shown].astype("float64"),
                               rtol=1e-5 if np.dtype(dtype).kind == "f" else 1e-9,
                               # numpy's float32 sums are float32's (ours float64); integer
                               # means are truncated alike, up to a sum's last bit
                               atol=scale * 1e-5 if np.dtype(dtype).kind == "f" else 1)
    if name == "median" and np.dtype(dtype).kind != "f":
        assert (data[shown] == np.ma.getdata(reference)[shown]).all()  # exactly numpy's


def test_median_holds_one_stack_of_the_inputs():
    """The median's memory: the inputs once (as they are fed), then one sorted stack; the
    list of inputs is emptied as the stack fills."""
    method = METHODS["median"]()
    for i in range(3):
        method.feed(np.full((1, 4, 4), i, np.uint8), np.ones((1, 4, 4), bool))
    data, _ = method.result()
    assert (data == 1).all() and all(item is None for item in method.inputs)
