"""Read planning: how much of a file a read takes, at which overview, within which limits.

Before any pixel is read, a part of a file (a tile, a bbox, a preview) is planned here: the
finest detail the output needs anywhere in it (:func:`read_scale`; near a pole a web
mercator pixel needs far finer data than at the equator), what that costs in decompressed
bytes (:func:`read_cost`), and the limits that refuse, with a message that says what to ask
instead, what could not finish within a request (bands x pixels, expression memory, bytes
decompressed).
"""

import math

import numpy as np
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError
from rasterio.warp import transform as transform_points
from rasterio.warp import transform_bounds

from ..core import budget
from ..core.errors import TooLarge
from ..core.records import ImageSize, Selection
from ..core.settings import MAX_IMAGE_SIZE
from ..sources.datasets import OpenDataset

#: Points per side of the grid on which a read's finest scale is measured (edges included).
SCALE_SAMPLES = 5
#: Largest virtual grid a read may span; beyond it the read resolution is coarsened.
MAX_VRT_SIDE = 1 << 28
#: Most bands read at the largest image size (MAX_IMAGE_SIZE's default) in one request.
MAX_READ_BANDS = 4
#: Most values (bands and the mask x pixels) one read may return: an RGBA image at 4096 x
#: 4096, 84 M values (336 MB as float32).
MAX_READ_VALUES = (MAX_READ_BANDS + 1) * MAX_IMAGE_SIZE * MAX_IMAGE_SIZE
#: Most bytes one request may decompress from a file (about 5-10 s of GDAL's time).
MAX_READ_BYTES = 1024 * 1024 * 1024
#: Most memory an expression's evaluation may take (Lambda has 1536 MB in all).
MAX_EXPRESSION_BYTES = 640 * 1024 * 1024
#: Largest read of every band made to serve a band subset (see :func:`part`).
MAX_ALL_BANDS_BYTES = 512 * 1024 * 1024
#: Most bands one read may take: GDAL spends about a millisecond per band and read whatever
#: the pixels (20,000 one-pixel bands took 20-30 s for a point, a preview or statistics).
MAX_BANDS = 1024
#: Most values (bands x output pixels) one warped read may make: GDAL's warper works on every
#: band of the file whichever are read (10-25 ns a value: a 4,000-band file takes 2-6 s per
#: 256 x 256 tile, even for bidx=1).
MAX_WARP_VALUES = 1 << 28


def check_band_count(count: int, chosen: bool = True) -> None:
    """Refuse a read of more than :data:`MAX_BANDS` bands (``chosen``: by the request, else
    every band of the file)."""
    if count > MAX_BANDS:
        what = f"{count} bands are asked" if chosen else f"the file has {count} bands"
        raise TooLarge(f"{what}, more than one request may read ({MAX_BANDS}): choose "
                       "bands with bidx (or an expression)")


def check_warp_size(bands: int, width: int, height: int) -> None:
    """Refuse a warped read of a file of ``bands`` bands (every one is warped) at ``width``
    x ``height`` beyond :data:`MAX_WARP_VALUES`."""
    if bands * width * height > MAX_WARP_VALUES:
        raise TooLarge(f"the file's {bands} bands, reprojected at {width}x{height} pixels, are "
                       "more than one request may warp (GDAL warps every band of a file "
                       "whichever are asked): ask for a smaller image (tilesize, @1x, "
                       "max_size, width, height), or tile a file of the bands you need")


def charge_read(dataset: OpenDataset, selection: Selection, bands: int, width: int,
                height: int) -> int:
    """Charge the request's budget (:mod:`chalicelib.core.budget`) for a read of ``bands``
    bands at ``width`` x ``height``: the bands as read, the mask, the expression's output or
    the unscaled copy; first refuse a raw answer that could not be returned. Returns the
    bytes charged."""
    src = dataset.src
    itemsize = dataset.itemsize
    pixels = width * height
    expression = selection.expression
    outputs = len(expression.output_names) if expression is not None else bands
    unscaled = selection.unscale and (any(s != 1 for s in src.scales)
                                      or any(o != 0 for o in src.offsets))
    current = budget.current()
    current.check_output(outputs, width, height,
                         4 if expression is not None or unscaled else itemsize)
    held = bands * pixels * itemsize + pixels
    if expression is not None or unscaled:
        held += outputs * pixels * 4
    current.charge(held, f"a read of {bands} band(s) of {width}x{height} pixels")
    return held


def check_read_size(bands: int, width: int, height: int) -> None:
    """Refuse a read of ``bands`` bands (and the mask) of ``width`` x ``height`` pixels
    beyond :data:`MAX_READ_VALUES`."""
    if (bands + 1) * width * height > MAX_READ_VALUES:
        raise TooLarge(f"{bands} bands of {width}x{height} pixels are more than one "
                       f"request may read ({MAX_READ_BANDS} bands of {MAX_IMAGE_SIZE}x"
                       f"{MAX_IMAGE_SIZE}, the read "
                       "limit): choose fewer bands (bidx) or a smaller size (max_size, "
                       "width, height)")


def _sample_grid(samples: int) -> tuple[np.ndarray, ...]:
    """Fractions of an area (u, v in 0-1, its edges included) for a ``samples`` x ``samples``
    grid, three times over, and the offsets (0 or 1 output pixel) that make the 2nd copy a
    step right, the 3rd a step up, of the 1st."""
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(0, 1, samples),
                                           np.linspace(0, 1, samples)))
    zero, one = np.zeros_like(u), np.ones_like(u)
    return (np.concatenate([u, u, u]), np.concatenate([v, v, v]),
            np.concatenate([zero, one, zero]), np.concatenate([zero, zero, one]))


_GRID = _sample_grid(SCALE_SAMPLES)


def _finest_scale(dataset: OpenDataset, bounds, crs, width: int, height: int) -> float | None:
    """Source pixels per output pixel where the output needs the finest source detail: how
    many source pixels one output pixel spans in its most compressed direction, the least
    over a grid of points on the data within ``bounds``. Across many degrees of latitude
    this varies a lot (a Web Mercator pixel near a pole spans a fraction of the latitude it
    spans at the equator), so the centre of the data or of the tile would choose too coarse
    an overview for the rest. None when no point of the grid falls on the data."""
    src = dataset.src
    left, bottom, right, top = bounds
    dx, dy = (right - left) / width, (top - bottom) / height  # one output pixel
    data = _bounds_in(dataset, crs)
    if data is not None:  # sample only where the data is (a small file in a large tile)
        left, bottom = max(left, data[0]), max(bottom, data[1])
        right, top = max(left, min(right, data[2])), max(bottom, min(top, data[3]))
    u, v, step_x, step_y = _GRID
    try:
        xs, ys = transform_points(crs, src.crs, left + u * max(right - left - dx, 0) + step_x * dx,
                                  bottom + v * max(top - bottom - dy, 0) + step_y * dy)
    except (RasterioError, CPLE_BaseError):  # a point outside the projection's domain
        return None
    inverse = ~src.transform
    xs, ys = np.asarray(xs), np.asarray(ys)
    with np.errstate(invalid="ignore", over="ignore"):
        cols = (inverse.a * xs + inverse.b * ys + inverse.c).reshape(3, -1)
        rows = (inverse.d * xs + inverse.e * ys + inverse.f).reshape(3, -1)
        # The Jacobian of output pixel -> source pixels; its smaller singular value is how
        # many source pixels one output pixel spans in its most compressed direction.
        a, b = cols[1] - cols[0], cols[2] - cols[0]
        c, d = rows[1] - rows[0], rows[2] - rows[0]
        total = a * a + b * b + c * c + d * d
        det = a * d - b * c
        smallest = np.sqrt(np.maximum(total - np.sqrt(np.maximum(total * total - 4 * det * det,
                                                                  0)), 0) / 2)
        on_data = ((cols[0] >= 0) & (cols[0] <= src.width) & (rows[0] >= 0)
                   & (rows[0] <= src.height) & np.isfinite(smallest))
    if not on_data.any():
        return None
    return float(smallest[on_data].min())


def _bounds_in(dataset: OpenDataset, crs):
    """The data's bounds in ``crs`` (memoised), None when they cannot be computed."""
    key = ("bounds_in", crs.to_string())
    if key not in dataset.memo:
        try:
            bounds = transform_bounds(dataset.src.crs, crs, *dataset.src.bounds, densify_pts=21)
        except (RasterioError, CPLE_BaseError):
            bounds = None
        dataset.memo[key] = bounds if bounds and all(map(math.isfinite, bounds)) else None
    return dataset.memo[key]


def _overview_factor(src, scale: float) -> int:
    """The overview GDAL reads for ``scale`` source pixels per output pixel: the coarsest
    whose factor is no larger (1: full resolution)."""
    return max([1] + [f for f in src.overviews(1) if f <= scale])


def read_cost(dataset: OpenDataset, bounds, crs, width: int, height: int,
              selection: Selection, scale: float) -> float:
    """Bytes GDAL would decompress to draw ``bounds`` (in ``crs``) at ``width`` x
    ``height`` reading at ``scale`` source pixels per output pixel: the source pixels the
    area spans (at most the file), at the overview for ``scale``, in whole internal blocks;
    with nearest resampling only the blocks that hold sampled pixels. An estimate, to refuse
    what cannot finish in time; 0 when unknown."""
    src = dataset.src
    left, bottom, right, top = bounds
    resolution = dataset.native_resolution(crs)  # memoised: no transform per tile
    cols = min((right - left) / resolution, src.width)
    rows = min((top - bottom) / resolution, src.height)
    if not (math.isfinite(cols) and math.isfinite(rows)) or cols <= 0 or rows <= 0:
        return 0.0
    factor = _overview_factor(src, scale)
    cols, rows = cols / factor, rows / factor
    block_h, block_w = src.block_shapes[0]
    blocks_x, blocks_y = math.ceil(cols / block_w) + 1, math.ceil(rows / block_h) + 1
    if selection.resampling.name == "nearest" and factor <= scale:
        # decimation skips the blocks between samples
        blocks_x, blocks_y = min(blocks_x, width), min(blocks_y, height)
    itemsize = dataset.itemsize
    return float(blocks_x * blocks_y) * block_w * block_h * src.count * itemsize


def read_scale(dataset: OpenDataset, bounds, crs, width: int, height: int,
               selection: Selection) -> float:
    """Source pixels per output pixel to read ``bounds`` at: the finest the area needs
    anywhere (:func:`_finest_scale`; the average over the area when it cannot be measured
    there, or in the source's own CRS, where it is the same everywhere). When the overview
    for it would decompress more than :data:`MAX_READ_BYTES`, the finest overview within the
    limit (pixels coarser than ideal toward the poles of a world tile rather than a
    refusal); :class:`TooLarge` when even the coarsest is over."""
    src = dataset.src
    left, bottom, right, top = bounds
    resolution = dataset.native_resolution(crs)
    average = min((right - left) / resolution / width, (top - bottom) / resolution / height)
    scale = None if dataset.own_crs(crs) else _finest_scale(dataset, bounds, crs, width, height)
    if scale is None:
        scale = average if math.isfinite(average) else 1.0
    cost = read_cost(dataset, bounds, crs, width, height, selection, scale)
    if cost <= MAX_READ_BYTES:
        return scale
    for factor in sorted(src.overviews(1)):
        if factor > scale:
            cost = read_cost(dataset, bounds, crs, width, height, selection, factor)
            if cost <= MAX_READ_BYTES:
                return float(factor)
    hint = ("the file has no overviews: make it a COG (the cogify function, or "
            "rio cogeo / gdal_translate -of COG)" if not src.overviews(1) else
            "its coarsest overview is still too fine for this area")
    raise TooLarge(f"this request would decompress about {cost / 2**30:.1f} GB of the "
                   f"file (the read limit is {MAX_READ_BYTES / 2**30:g} GB); {hint}, or "
                   "ask for a smaller area (a deeper zoom, a smaller bbox)")


def check_expression_memory(selection: Selection, width: int, height: int) -> None:
    """Refuse, before reading, an expression whose evaluation over ``width`` x ``height``
    pixels could take more than :data:`MAX_EXPRESSION_BYTES`."""
    expression = selection.expression
    if expression is None:
        return
    needed = expression.bytes_per_pixel() * width * height
    if needed > MAX_EXPRESSION_BYTES:
        raise TooLarge(f"this expression over {width}x{height} pixels would need about "
                       f"{needed / 2**20:.0f} MB (the expression memory limit is "
                       f"{MAX_EXPRESSION_BYTES // 2**20} MB): "
                       "ask for a smaller image (max_size, width, height) or a simpler "
                       "expression")


def fit_size(width: float, height: float, size: ImageSize) -> tuple[int, int]:
    """The output size for data of ``width`` x ``height`` pixels: both of ``size.width`` and
    ``size.height`` if given (exactly, as titiler); one of them, the other following the
    data's aspect ratio; neither, the data's size shrunk to ``size.max_size`` (never grown;
    None: the data's size). A side that follows the ratio is rounded up, as rio-tiler does
    (same request, same size)."""
    if size.width and size.height:
        return size.width, size.height
    if size.width:
        return size.width, max(1, math.ceil(size.width * height / width))
    if size.height:
        return max(1, math.ceil(size.height * width / height)), size.height
    width, height = max(1, round(width)), max(1, round(height))
    if size.max_size is None or max(width, height) < size.max_size:
        return width, height
    if height > width:
        return max(1, math.ceil(size.max_size * width / height)), size.max_size
    return size.max_size, max(1, math.ceil(size.max_size * height / width))
