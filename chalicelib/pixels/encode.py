"""Encoders: rendered pixels to PNG (our own writer over libdeflate), JPEG, WEBP (GDAL),
GeoTIFF, NPY bytes.

Rasterio's GDAL has these drivers already, so the Lambda package needs no imaging library;
PNG, the most common tile format, is written here because GDAL's writer (libpng, zlib) takes
about 5 times longer for the same bytes.
Every encoder has the same signature, ``(data, alpha, options) -> bytes``: ``data`` is
(bands, h, w), ``alpha`` (h, w) uint8 or None (opaque). :mod:`chalicelib.pixels.formats` says
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
from rasterio.transform import from_bounds

from ..core.errors import BadRequest

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
    bounds: tuple | None = None  # (left, bottom, right, top) of the pixels (GeoTIFF)
    palette: np.ndarray | None = None  # (256, 4) RGBA: ``data`` holds its indices (PNG)
    crs: object = None           # their CRS (GeoTIFF)


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


def _chunk(kind: bytes, body: bytes | bytearray) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind))))


def _png(planes: np.ndarray, colour_type: int, zlevel: int, filtered_rows: bool = True,
         extra: tuple[bytes, ...] = ()) -> bytes:
    count, height, width = planes.shape
    depth = 8 * planes.dtype.itemsize  # 8, or 16 (big-endian samples: filtered as bytes)
    rows = np.moveaxis(planes, 0, -1)  # interleaved
    if depth == 16:
        rows = np.ascontiguousarray(rows, dtype=">u2").view(np.uint8)
    rows = rows.reshape(height, width * count * planes.dtype.itemsize)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    if filtered_rows:
        filtered[:, 0] = 2  # filter type "Up" (the first row's "above" is zeros)
        filtered[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    else:  # filter type "None": palette indices are not quantities
        filtered[:, 0] = 0
        filtered[:, 1:] = rows
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), *extra,
                     _chunk(b"IDAT", deflate.zlib_compress(filtered.tobytes(), zlevel)),
                     _chunk(b"IEND", b"")))


def png(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """An 8-bit PNG written here, not by GDAL: every row "Up"-filtered at once with numpy (a
    row minus the one above, modulo 256), compressed with libdeflate at ``zlevel``. Same
    bytes as GDAL's encoder to within 1% on the real tiles, about 5 times faster (see
    docs/performance.md). ``data`` is what rendering makes: uint8, 1 to 3 bands (the
    tiler refuses other data for PNG before it gets here), or with ``options.palette`` one
    band of indices into it (see :func:`_paletted_png`)."""
    if options.palette is not None:
        return _paletted_png(data[0], alpha, options)
    if data.dtype == np.uint16 and alpha is not None:  # pngraw: 16-bit alpha
        alpha = alpha.astype(np.uint16) * np.uint16(257)
    channels = data.shape[0] + (alpha is not None)
    if channels not in _PNG_COLOUR:
        raise BadRequest(f"PNG holds at most 4 channels (RGBA); this image has {channels} "
                         "with its alpha: choose bands with bidx, or use tif or npy")
    return _png(_with_alpha(data, alpha), _PNG_COLOUR[channels], options.zlevel)


def _paletted_png(indices: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """A paletted PNG (colour type 3: PLTE, and tRNS for transparent entries): one byte a
    pixel instead of three or four, so smaller and faster to compress. Pixels made
    transparent by the mask point to an entry no visible pixel uses, made transparent; when
    all 256 are used, RGBA instead."""
    table = options.palette
    assert table is not None  # png() sends paletted pixels here only
    if alpha is not None:
        hidden = (alpha == 0) & (table[indices, 3] != 0)  # masked, though its entry is not
        if hidden.any():
            unused = np.flatnonzero(np.bincount(indices[~hidden], minlength=256) == 0)
            if not len(unused):
                rgba = np.moveaxis(table[indices], -1, 0)
                return _png(np.concatenate([rgba[:3], alpha[None]]), 6, options.zlevel)
            table = table.copy()
            table[unused[0]] = 0
            indices = np.where(hidden, np.uint8(unused[0]), indices)
    used = int(indices.max()) + 1  # entries beyond the largest index are not written
    chunks = [_chunk(b"PLTE", table[:used, :3].tobytes())]
    transparent = np.flatnonzero(table[:used, 3] != 255) if alpha is not None else \
        np.empty(0, np.intp)
    if len(transparent):  # alphas up to the last transparent entry (none: opaque)
        chunks.append(_chunk(b"tRNS", table[:transparent[-1] + 1, 3].tobytes()))
    return _png(indices[None], 3, options.zlevel, filtered_rows=False, extra=tuple(chunks))


def jpeg(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """A JPEG (GDAL's driver); JPEG has no alpha."""
    return _gdal("JPEG", data, QUALITY=str(options.quality or JPEG_QUALITY))


def jp2(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """A JPEG 2000 (GDAL's OpenJPEG driver, its default quality), the alpha as a band of
    the data's type (as rio-tiler)."""
    if alpha is not None and data.dtype != np.uint8:
        alpha = np.where(alpha > 0, np.iinfo(data.dtype).max, 0).astype(data.dtype)
    return _gdal("JP2OpenJPEG", _with_alpha(data, alpha))


def webp(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """A WEBP (GDAL's driver), RGB or RGBA."""
    if data.shape[0] == 1:  # WEBP is RGB(A) only
        data = np.repeat(data, 3, axis=0)
    return _gdal("WEBP", _with_alpha(data, alpha), QUALITY=str(options.quality or WEBP_QUALITY))


def geotiff(data: np.ndarray, alpha: np.ndarray | None, options: Options) -> bytes:
    """A georeferenced GeoTIFF; ``alpha`` becomes its internal mask."""
    count, height, width = data.shape
    transform = from_bounds(*options.bounds, width, height) if options.bounds else None
    with MemoryFile() as memfile:
        with memfile.open(driver="GTiff", width=width, height=height, count=count,
                          dtype=data.dtype.name, transform=transform, crs=options.crs,
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
