"""Encoders: rendered pixels to PNG (our own writer over libdeflate), JPEG, WEBP (GDAL),
GeoTIFF, NPY bytes.

Rasterio's GDAL has these drivers already, so the Lambda package needs no imaging library;
PNG, the most common tile format, is written here because GDAL's writer (libpng, zlib) takes
about 5 times longer for the same bytes.
Every encoder has the same signature, ``(data, alpha, options) -> bytes``: ``data`` is
(bands, h, w), ``alpha`` (h, w) uint8 or None (opaque). :mod:`chalicelib.formats` says
which encoder serves which format and what each format can hold.
"""

import io
import struct
import warnings
import zlib
from dataclasses import dataclass

import deflate
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


#: PNG colour type by number of 8-bit channels: grey, grey+alpha, RGB, RGBA.
_PNG_COLOUR = {1: 0, 2: 4, 3: 2, 4: 6}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind))))


def png(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """An 8-bit PNG written here, not by GDAL: every row "Up"-filtered at once with numpy (a
    row minus the one above, modulo 256), compressed with libdeflate at ``zlevel``. Same
    bytes as GDAL's encoder to within 1% on the real tiles, about 5 times faster (see
    docs/performance.md). ``data`` is what rendering makes: uint8, 1 to 3 bands (the
    tiler refuses other data for PNG before it gets here)."""
    planes = _with_alpha(data, alpha)
    count, height, width = planes.shape
    rows = np.moveaxis(planes, 0, -1).reshape(height, width * count)  # interleaved
    filtered = np.empty((height, width * count + 1), np.uint8)
    filtered[:, 0] = 2  # filter type "Up" (the first row's "above" is zeros)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR[count], 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", deflate.zlib_compress(filtered.tobytes(), options.zlevel)),
                     _chunk(b"IEND", b"")))


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
