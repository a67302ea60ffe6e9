"""Rescale, colormaps and the alpha channel, on arrays whose expected colours are known."""

import matplotlib
import numpy as np
import pytest
from rasterio.crs import CRS

from chalicelib.core.errors import BadRequest
from chalicelib.core.records import ImageData, Style
from chalicelib.pixels import colormaps, render


def image(data, mask=None):
    data = np.asarray(data)
    mask = np.ones(data.shape[1:], bool) if mask is None else mask
    return ImageData(data, mask, (0, 0, 1, 1), CRS.from_epsg(3857), ())


@pytest.mark.parametrize("name", ["viridis", "magma", "terrain", "rdylgn", "spectral", "greys"])
def test_named_colormaps_match_matplotlib(name):
    by_lower = {n.lower(): n for n in matplotlib.colormaps}
    expected = matplotlib.colormaps[by_lower[name]](np.arange(256) / 255.0) * 255
    np.testing.assert_allclose(colormaps.named(name).astype(float), expected, atol=1.0)


def test_every_colormap_of_rio_tiler_and_each_reversed():
    """titiler's colormap_name values colour exactly as titiler does (its tables, from
    rio-tiler's package), and every map is reversible, also those rio-tiler ships no
    reversal of (cfastie_r)."""
    from rio_tiler.colormap import cmap
    for name in cmap.list():
        np.testing.assert_array_equal(
            colormaps.named(name), np.array([cmap.get(name)[i] for i in range(256)]), name)
    assert set(cmap.list()) <= set(colormaps.names())
    for name in ("cfastie", "rplumbo", "schwarzwald"):  # no reversal in rio-tiler
        assert name in colormaps.base_names()
        np.testing.assert_array_equal(colormaps.named(name + "_r"),
                                      colormaps.named(name)[::-1])
    assert {"tab10", "tab20", "set1", "paired", "cmrmap", "thermal"} <= set(
        colormaps.base_names())
    assert len(colormaps.base_names()) >= 107
    assert not any(n.endswith("_r_r") for n in colormaps.names())


def test_at_least_a_dozen_standard_colormaps():
    wanted = {"viridis", "magma", "inferno", "plasma", "cividis", "greys", "terrain", "rdylgn",
              "spectral", "rdbu", "blues", "jet"}
    assert wanted <= set(colormaps.names())


def test_rescale_is_a_clipped_linear_stretch():
    data = np.array([[[0.0, 50.0, 100.0, 150.0, -20.0]]], dtype="float32")
    out = render.apply_style(image(data), Style(rescale=((0.0, 100.0),))).data
    np.testing.assert_array_equal(out[0, 0], [0, 127, 255, 255, 0])  # truncated: rio-tiler


def test_uint8_without_rescale_is_shown_as_is_and_mask_becomes_alpha():
    data = np.arange(12, dtype="uint8").reshape(3, 2, 2)
    mask = np.array([[True, False], [True, True]])
    out = render.apply_style(image(data, mask), Style())
    np.testing.assert_array_equal(out.data, data)
    np.testing.assert_array_equal(out.alpha, [[255, 0], [255, 255]])


def test_non_uint8_needs_the_dataset_stretch():
    img = image(np.array([[[1000, 2000]]], dtype="uint16"))
    assert render.needs_stretch(img.data.dtype, Style())
    img.dataset_statistics = ((1000.0, 2000.0),)
    out = render.apply_style(img, Style())
    np.testing.assert_array_equal(out.data[0, 0], [0, 255])


def test_lookup_table_colours_the_band():
    table = colormaps.named("viridis")
    data = np.array([[[0, 128, 255]]], dtype="uint8")
    out = render.apply_style(image(data), Style(colormap=table))
    np.testing.assert_array_equal(np.moveaxis(out.data, 0, -1)[0], table[[0, 128, 255], :3])


def test_discrete_colormap_matches_raw_values_and_hides_the_rest():
    cmap = {1000.0: (255, 0, 0, 255), 2000.0: (0, 0, 255, 255)}
    data = np.array([[[1000, 2000, 3000]]], dtype="uint16")
    out = render.apply_style(image(data), Style(colormap=cmap))
    np.testing.assert_array_equal(out.data[:, 0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out.data[:, 0, 1], [0, 0, 255])
    np.testing.assert_array_equal(out.alpha[0], [255, 255, 0])


def test_interval_colormap():
    cmap = [((0.0, 10.0), (1, 2, 3, 255)), ((10.0, 20.0), (4, 5, 6, 255))]
    data = np.array([[[5.0, 15.0, 25.0]]], dtype="float32")
    out = render.apply_style(image(data), Style(colormap=cmap))
    np.testing.assert_array_equal(out.data[:, 0, :2].T, [[1, 2, 3], [4, 5, 6]])
    assert out.alpha[0, 2] == 0


def test_colormap_on_several_bands_is_refused():
    with pytest.raises(BadRequest, match="one band"):
        render.apply_style(image(np.zeros((3, 2, 2), "uint8")),
                      Style(colormap=colormaps.named("viridis")))


def test_rescale_count_must_fit_the_bands():
    with pytest.raises(BadRequest, match="rescale"):
        render.apply_style(image(np.zeros((3, 2, 2), "float32")),
                      Style(rescale=((0, 1), (0, 1))))


@pytest.mark.parametrize("kind", ["discrete", "intervals"])
def test_user_colormaps_match_painting_each_entry_in_order(kind):
    """The vectorised lookup against the obvious loop (overlapping intervals: the last
    one wins; NaN and values outside every entry stay transparent)."""
    from chalicelib.pixels import colormaps
    rng = np.random.default_rng(7)
    values = rng.integers(-20, 120, (64, 64)).astype("float32")
    values[0, :5] = np.nan
    colours = [tuple(int(c) for c in rng.integers(1, 256, 4)) for _ in range(60)]
    if kind == "discrete":
        cmap = {float(k): colours[i] for i, k in enumerate(rng.choice(100, 60, replace=False))}
    else:
        lows = rng.uniform(-10, 100, 60)
        cmap = [((float(lo), float(lo + w)), colours[i])
                for i, (lo, w) in enumerate(zip(lows, rng.uniform(-5, 30, 60)))]
    expected = np.zeros((4, 64, 64), dtype="uint8")
    with np.errstate(invalid="ignore"):
        if kind == "discrete":
            for value, colour in cmap.items():
                expected[:, values == value] = np.array(colour, "uint8")[:, None]
        else:
            for (low, high), colour in cmap:
                expected[:, (values >= low) & (values < high)] = np.array(colour, "uint8")[:, None]
    rgba, valid = colormaps.apply(values, cmap)
    np.testing.assert_array_equal(rgba, expected)
    np.testing.assert_array_equal(valid, expected[3] > 0)
