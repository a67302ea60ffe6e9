"""Encoders: rendered pixels to PNG, JPEG, WEBP (through GDAL), GeoTIFF, NPY bytes.

Rasterio's GDAL has these drivers already, so the Lambda package needs no imaging library.
Every encoder has the same signature, ``(data, alpha, options) -> bytes``: ``data`` is
(bands, h, w), ``alpha`` (h, w) uint8 or None (opaque). :mod:`chalicelib.formats` says
which encoder serves which format and what each format can hold.
"""

import io
import warnings
from dataclasses import dataclass

import numpy as np
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

# PNG/JPEG/WEBP carry no georeferencing; rasterio warns about that on every write.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)

#: Encoder defaults (rio-tiler's profiles): PNG zlib level 6, JPEG quality 85, WEBP 75.
JPEG_QUALITY = 85
WEBP_QUALITY = 75


@dataclass(frozen=True)
class Options:
    """What an encoder may use besides the pixels."""

    zlevel: int = 6
    quality: int | None = None
    transform: object = None  # affine transform of the pixels (GeoTIFF)
    crs: object = None        # their CRS (GeoTIFF)


def _gdal(driver: str, data: np.ndarray, **options) -> bytes:
    count, height, width = data.shape
    with MemoryFile() as memfile:
        with memfile.open(driver=driver, width=width, height=height, count=count,
                          dtype=data.dtype.name, **options) as dst:
            dst.write(data)
        return memfile.read()


def _with_alpha(data: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    return data if alpha is None else np.concatenate([data, alpha[None]])


def png(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    return _gdal("PNG", _with_alpha(data, alpha), ZLEVEL=str(options.zlevel))


def jpeg(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    return _gdal("JPEG", data, QUALITY=str(options.quality or JPEG_QUALITY))


def webp(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    if data.shape[0] == 1:  # WEBP is RGB(A) only
        data = np.repeat(data, 3, axis=0)
    return _gdal("WEBP", _with_alpha(data, alpha), QUALITY=str(options.quality or WEBP_QUALITY))


def geotiff(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """A georeferenced GeoTIFF; ``alpha`` becomes its internal mask."""
    count, height, width = data.shape
    with MemoryFile() as memfile:
        with memfile.open(driver="GTiff", width=width, height=height, count=count,
                          dtype=data.dtype.name, transform=options.transform, crs=options.crs,
                          compress="deflate", tiled=width >= 256 and height >= 256) as dst:
            dst.write(data)
            if alpha is not None:
                dst.write_mask(alpha)
        return memfile.read()


def npy(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """A NumPy array file; ``alpha`` is appended as a last band (as rio-tiler does)."""
    out = data if alpha is None else np.concatenate([data, alpha[None].astype(data.dtype)])
    buffer = io.BytesIO()
    np.save(buffer, out, allow_pickle=False)
    return buffer.getvalue()
