"""From read pixels to displayable ones: rescale to 8 bits, colormaps, the alpha channel.

Rules:

* uint8 data without ``rescale`` is shown as it is; anything else is stretched linearly
  from ``rescale`` (one ``min,max`` per band, or one for all) or, without it, from the
  dataset's own 2nd-98th percentiles (``ImageData.dataset_statistics``), so float or 16-bit
  data never renders as a black tile. These rules are :func:`stretches` and
  :func:`needs_stretch`; nothing else decides them.
* ``color_formula`` (gamma, sigmoidal, saturation: ``pixels.color_formula``) works on the
  8-bit values, after the stretch and before a colormap, as titiler's.
* A colormap (``colormap_name``, ``colormap`` JSON, or a paletted file's own table) colours
  a single band. Discrete and interval colormaps match raw values unless ``rescale`` is
  given; lookup tables take the 8-bit values.
* Image formats show 1 or 3 bands: two bands show the first, more than three the first three.
"""

from dataclasses import dataclass

import numpy as np

from ..core.errors import BadRequest
from ..core.records import ImageData, Style
from . import color_formula, colormaps


@dataclass
class Paletted:
    """Pixels as indices into a colour table: ``indices`` (h, w) uint8, ``table`` (256, 4)
    uint8 RGBA."""

    indices: np.ndarray
    table: np.ndarray


class Rendered:
    """Display-ready pixels: ``data`` (1 or 3 bands, or raw bands for GeoTIFF/NPY) and
    ``alpha`` (h, w) uint8, 0 where transparent (made from the image's ``mask`` only when
    asked: JPEG never needs it). A lookup-table colormap also keeps its ``paletted`` form
    (PNG writes it as is, 1 byte a pixel); ``data`` is then made from it only when a format
    asks for RGB."""

    def __init__(self, data: np.ndarray | None, alpha: np.ndarray | None = None,
                 paletted: Paletted | None = None, mask: np.ndarray | None = None):
        self._data, self._alpha, self.paletted, self._mask = data, alpha, paletted, mask

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            assert self.paletted is not None  # made from one or the other
            self._data = np.moveaxis(self.paletted.table[self.paletted.indices, :3], -1, 0)
        return self._data

    @property
    def dtype(self) -> np.dtype:
        """The pixels' type, without making RGB from a palette (whose indices are 8-bit)."""
        if self._data is None:
            assert self.paletted is not None
            return self.paletted.indices.dtype
        return self._data.dtype

    @property
    def alpha(self) -> np.ndarray:
        if self._alpha is None:
            assert self._mask is not None  # an alpha or a mask is always given
            self._alpha = np.where(self._mask, np.uint8(255), np.uint8(0))
        return self._alpha

    @property
    def fully_opaque(self) -> bool:
        if self._alpha is None and self._mask is not None:
            return bool(self._mask.all())
        return bool(self.alpha.min() == 255)

    @property
    def visible(self) -> bool:
        """Whether any pixel shows."""
        if self._alpha is None and self._mask is not None:
            return bool(self._mask.any())
        return bool(self.alpha.any())


def shown_as_is(dtype: np.dtype) -> bool:
    """Whether pixels of ``dtype`` are display values already (8-bit) when no ``rescale``
    is given; anything else is stretched."""
    return dtype == np.uint8


def _discrete(colormap) -> bool:
    """A discrete or interval colormap (matched on raw values), not a lookup table."""
    return colormap is not None and not isinstance(colormap, np.ndarray)


def stretches(style: Style, raw_format: bool = False) -> bool:
    """Whether ``style`` stretches pixels that are not 8-bit by the dataset's statistics:
    no ``rescale`` and no discrete colormap, and not a raw format with nothing to colour
    (GeoTIFF/NPY keep the raw values). A read for such a style asks for the statistics
    (``dataset_statistics``)."""
    if raw_format and style.rescale is None and style.colormap is None \
            and style.color_formula is None:
        return False
    return style.rescale is None and not _discrete(style.colormap)


def needs_stretch(dtype: np.dtype, style: Style, raw_format: bool = False) -> bool:
    """Whether pixels of ``dtype`` are stretched by the dataset's statistics."""
    return stretches(style, raw_format) and not shown_as_is(dtype)


def to_uint8(data: np.ndarray, ranges) -> np.ndarray:
    """Linear stretch of each band from its (min, max) to 0-255, truncated, in float64 (as
    rio-tiler's ``rescale``: same values, same 8-bit levels)."""
    if len(ranges) == 1:
        ranges = tuple(ranges) * data.shape[0]
    if len(ranges) != data.shape[0]:
        raise BadRequest(f"'rescale' has {len(ranges)} ranges for {data.shape[0]} bands: give "
                         "one min,max for all bands or one per band")
    out = np.empty(data.shape, dtype="uint8")
    with np.errstate(invalid="ignore", over="ignore"):  # masked nodata may be +-3.4e38
        for i, (band, (low, high)) in enumerate(zip(data, ranges)):
            scaled = np.clip(band, low, high, dtype=np.float64)
            scaled -= low
            scaled /= np.float64(high - low)
            scaled *= 255
            if band.dtype == np.float32:  # rio-tiler stores the result in the data's type
                scaled = scaled.astype(np.float32)
            np.nan_to_num(scaled, copy=False, nan=0.0)
            out[i] = scaled
    return out


def apply_style(image: ImageData, style: Style, raw_format: bool = False) -> Rendered:
    """Apply ``style`` to ``image``, with what the source attached to it: its own colour
    table (``image.palette``, used for one 8-bit band when no colormap or rescale is given)
    and its statistics (``image.dataset_statistics``, required when :func:`needs_stretch`).
    ``raw_format`` keeps the raw values when nothing asks for rendering (GeoTIFF and NPY)."""
    data, mask = image.data, image.mask
    cmap = style.colormap
    if cmap is None and image.palette is not None and style.rescale is None \
            and shown_as_is(data.dtype) and data.shape[0] == 1:
        cmap = image.palette
    if raw_format and cmap is None and style.rescale is None and style.color_formula is None:
        return Rendered(data, mask=mask)
    if cmap is not None and data.shape[0] != 1:
        raise BadRequest(f"a colormap colours one band, but the output has {data.shape[0]}: "
                         "choose one with bidx= or an expression")
    if style.rescale is not None:
        values = to_uint8(data, style.rescale)
    elif needs_stretch(data.dtype, style, raw_format):
        if image.dataset_statistics is None:  # an algorithm's output of unknown range
            raise BadRequest(f"the {data.dtype} values have no known range to show as "
                             "colours: add rescale=min,max (or use a raw format: tif, npy)")
        values = to_uint8(data, image.dataset_statistics)
    else:
        values = data  # 8-bit, or the raw values a discrete colormap matches
    if style.color_formula:
        values = color_formula.apply(values, style.color_formula)
    if cmap is None:
        if values.shape[0] == 2:
            values = values[:1]
        elif values.shape[0] > 3:
            values = values[:3]
        return Rendered(values, mask=mask)
    values = values[0]
    if isinstance(cmap, np.ndarray) and len(cmap) == 256 and values.dtype == np.uint8:
        # a lookup table: the values are its indices (PNG writes them with the table)
        return Rendered(None, np.where(mask, cmap[values, 3], np.uint8(0)),
                        Paletted(values, cmap))
    rgba, _ = colormaps.apply(values, cmap)
    return Rendered(rgba[:3], np.where(mask, rgba[3], np.uint8(0)))
