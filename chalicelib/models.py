"""The data that flows between engine steps."""

from dataclasses import dataclass

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import from_bounds


@dataclass
class ImageData:
    """Pixels read from a source: ``data`` (bands, h, w), ``mask`` (h, w) True where valid,
    and where they lie: ``bounds`` (left, bottom, right, top) in ``crs``."""

    data: np.ndarray
    mask: np.ndarray
    bounds: tuple[float, float, float, float]
    crs: CRS
    band_names: tuple[str, ...]

    @property
    def height(self) -> int:
        return self.data.shape[1]

    @property
    def width(self) -> int:
        return self.data.shape[2]

    @property
    def transform(self):
        return from_bounds(*self.bounds, self.width, self.height)
