"""From read pixels to displayable ones: rescale to 8 bits, colormaps, the alpha channel.

Rules:

* uint8 data without ``rescale`` is shown as it is; anything else is stretched linearly
  from ``rescale`` (one ``min,max`` per band, or one for all) or, without it, from the
  dataset's own 2nd-98th percentiles (``stretch``), so float or 16-bit data never renders
  as a black tile.
* A colormap (``colormap_name``, ``colormap`` JSON, or a paletted file's own table) colours
  a single band. Discrete and interval colormaps match raw values unless ``rescale`` is
  given; lookup tables take the 8-bit values.
* Image formats show 1 or 3 bands: two bands show the first, more than three the first three.
"""

from dataclasses import dataclass

import numpy as np

from . import colormaps
from .errors import BadRequest
from .models import ImageData, Style


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
            self._data = np.moveaxis(self.paletted.table[self.paletted.indices, :3], -1, 0)
        return self._data

    @property
    def dtype(self) -> np.dtype:
        """The pixels' type, without making RGB from a palette (whose indices are 8-bit)."""
        return self.paletted.indices.dtype if self._data is None else self._data.dtype

    @property
    def alpha(self) -> np.ndarray:
        if self._alpha is None:
            self._alpha = np.where(self._mask, np.uint8(255), np.uint8(0))
        return self._alpha

    @property
    def fully_opaque(self) -> bool:
        return bool(self._mask.all() if self._alpha is None else self.alpha.min() == 255)

    @property
    def visible(self) -> bool:
        """Whether any pixel shows."""
        return bool(self._mask.any() if self._alpha is None else self.alpha.any())


def needs_stretch(image: ImageData, style: Style, raw_format: bool = False) -> bool:
    """Whether :func:`apply_style` will need the dataset's stretch ranges for this image."""
    if raw_format and style.rescale is None and style.colormap is None:
        return False  # GeoTIFF/NPY keep the raw values
    if style.rescale is not None or image.data.dtype == np.uint8:
        return False
    discrete = style.colormap is not None and not isinstance(style.colormap, np.ndarray)
    return not discrete


def to_uint8(data: np.ndarray, ranges) -> np.ndarray:
    """Linear stretch of each band from its (min, max) to 0-255."""
    if len(ranges) == 1:
        ranges = tuple(ranges) * data.shape[0]
    if len(ranges) != data.shape[0]:
        raise BadRequest(f"'rescale' has {len(ranges)} ranges for {data.shape[0]} bands: give "
                         "one min,max for all bands or one per band")
    out = np.empty(data.shape, dtype="uint8")
    with np.errstate(invalid="ignore", over="ignore"):  # masked nodata may be +-3.4e38
        for i, (band, (low, high)) in enumerate(zip(data, ranges)):
            scaled = (band.astype("float32") - np.float32(low)) * np.float32(255.0 / (high - low))
            np.clip(scaled, 0, 255, out=scaled)
            out[i] = np.nan_to_num(scaled + 0.5, nan=0.0)
    return out


def apply_style(image: ImageData, style: Style, palette=None, stretch=None,
                raw_format: bool = False) -> Rendered:
    """Apply ``style`` to ``image``. ``palette`` is the file's own colormap table (if paletted);
    ``stretch`` the dataset ranges (required when :func:`needs_stretch`); ``raw_format``
    keeps the raw values when nothing asks for rendering (GeoTIFF and NPY output)."""
    data, mask = image.data, image.mask
    cmap = style.colormap
    if cmap is None and palette is not None and style.rescale is None \
            and data.dtype == np.uint8 and data.shape[0] == 1:
        cmap = palette
    if raw_format and cmap is None and style.rescale is None:
        return Rendered(data, mask=mask)
    if cmap is not None and data.shape[0] != 1:
        raise BadRequest(f"a colormap colours one band, but the output has {data.shape[0]}: "
                         "choose one with bidx= or an expression")
    discrete = cmap is not None and not isinstance(cmap, np.ndarray)
    if discrete and style.rescale is None:
        values = data[0]
    else:
        if data.dtype == np.uint8 and style.rescale is None:
            values = data
        else:
            ranges = style.rescale or stretch
            if ranges is None:
                raise ValueError("stretch ranges are required for non-uint8 data")
            values = to_uint8(data, ranges)
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
