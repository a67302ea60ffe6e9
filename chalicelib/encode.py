"""Encoding rendered pixels: PNG, JPEG, WEBP (through GDAL), GeoTIFF, NPY.

Rasterio's GDAL has these drivers already, so the Lambda package needs no imaging library.
"""

import io
import warnings

import numpy as np
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from .errors import BadRequest
from .params import ImageFormat

# PNG/JPEG/WEBP carry no georeferencing; rasterio warns about that on every write.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)

#: Encoder defaults (rio-tiler's profiles): PNG zlib level 6, JPEG quality 85, WEBP 75.
JPEG_QUALITY = 85
WEBP_QUALITY = 75


def _gdal(driver: str, data: np.ndarray, **options) -> bytes:
    count, height, width = data.shape
    with MemoryFile() as memfile:
        with memfile.open(driver=driver, width=width, height=height, count=count,
                          dtype=data.dtype.name, **options) as dst:
            dst.write(data)
        return memfile.read()


def encode(data: np.ndarray, alpha: np.ndarray | None, fmt: ImageFormat, *, transform=None,
           crs=None, zlevel: int = 6, quality: int | None = None) -> bytes:
    """Encode ``data`` (bands, h, w) with an optional ``alpha`` (h, w) uint8 (None: opaque).

    PNG and WEBP carry ``alpha``; JPEG cannot. GeoTIFF stores it as an internal mask with the
    georeferencing ``transform``/``crs``; NPY appends it as a last band (as rio-tiler does).
    """
    if fmt.name == "npy":
        out = data if alpha is None else np.concatenate([data, alpha[None].astype(data.dtype)])
        buffer = io.BytesIO()
        np.save(buffer, out, allow_pickle=False)
        return buffer.getvalue()
    if fmt.name == "tif":
        count, height, width = data.shape
        with MemoryFile() as memfile:
            with memfile.open(driver="GTiff", width=width, height=height, count=count,
                              dtype=data.dtype.name, transform=transform, crs=crs,
                              compress="deflate", tiled=width >= 256 and height >= 256) as dst:
                dst.write(data)
                if alpha is not None:
                    dst.write_mask(alpha)
            return memfile.read()
    if data.dtype != np.uint8:
        raise BadRequest(f"{fmt.name.upper()} holds 8-bit data; add rescale=min,max or use "
                         "format tif or npy for the raw values")
    if fmt.name == "jpeg":
        return _gdal("JPEG", data, QUALITY=str(quality or JPEG_QUALITY))
    if fmt.name == "webp":
        if data.shape[0] == 1:
            data = np.repeat(data, 3, axis=0)
        if alpha is not None:
            data = np.concatenate([data, alpha[None]])
        return _gdal("WEBP", data, QUALITY=str(quality or WEBP_QUALITY))
    if alpha is not None:
        data = np.concatenate([data, alpha[None]])
    return _gdal("PNG", data, ZLEVEL=str(zlevel))
