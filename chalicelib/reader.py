"""Reading pixels from an open dataset: tiles, parts, previews, points, info and statistics.

One read path serves tiles, bbox parts and previews: a ``WarpedVRT`` over the requested
bounds in the output CRS, at the finest resolution the area needs anywhere in it (measured
on a grid of points: near a pole a web mercator pixel needs far finer data than at the
equator), or the output's when zoomed in past the data, read with ``out_shape`` so that GDAL
picks the overview level from it and reads only the blocks the output needs. Validity comes
from, in order: the nodata value (the user's override, else the file's), the alpha band,
else the warper's alpha (which carries the file's mask band and marks everything outside
the footprint).

Callers hold ``datasets.reading(dataset)`` around these functions.
"""

import math

import numpy as np
from rasterio._err import CPLE_BaseError
from rasterio.dtypes import in_dtype_range
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rasterio.transform import from_bounds as transform_from_bounds
from rasterio.transform import rowcol
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform as transform_points
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from .datasets import WGS84, OpenDataset
from .expression import band_number
from .errors import BadRequest, TileOutsideBounds, TooLarge
from .models import ImageData, ImageSize, Selection, StatisticsOptions, TileAddress
from .settings import MAX_IMAGE_SIZE
from .tilematrixsets import TileMatrixSet, geographic_overlap

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


def band_indexes(dataset: OpenDataset, selection: Selection) -> tuple[int, ...]:
    """The file bands to read for ``selection`` (validated against the file)."""
    if selection.expression is not None:
        indexes = selection.expression.bands
    else:
        indexes = selection.indexes or dataset.data_indexes or dataset.src.indexes
    count = dataset.src.count
    for index in indexes:
        if index > count:
            raise BadRequest(f"band {index} does not exist: this file has {count} band(s)")
    return tuple(indexes)


def _nodata(dataset: OpenDataset, selection: Selection) -> float | None:
    nodata = selection.nodata if selection.nodata is not None else dataset.src.nodata
    if nodata is None:
        return None
    dtype = dataset.src.dtypes[0]
    if math.isnan(nodata):
        return nodata if np.dtype(dtype).kind == "f" else None
    if not in_dtype_range(nodata, dtype):
        if selection.nodata is not None:
            raise BadRequest(f"nodata={selection.nodata:g} is outside the range of this "
                             f"file's data type ({dtype})")
        return None
    return nodata


def _valid(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """Per-pixel validity (any band valid) from a nodata value, NaN-aware."""
    if nodata is None:
        return np.ones(data.shape[1:], dtype=bool)
    if math.isnan(nodata):
        return (~np.isnan(data)).any(axis=0)
    return (data != np.asarray(nodata).astype(data.dtype)).any(axis=0)


def _finish(dataset: OpenDataset, selection: Selection, data: np.ndarray, mask: np.ndarray,
            indexes: tuple[int, ...], bounds, crs) -> ImageData:
    """Apply the expression (if any) and mask what is not a finite number."""
    if selection.expression is not None:
        by_band = dict(zip(indexes, data))
        data = selection.expression.evaluate({name: by_band[band_number(name)]
                                              for name in selection.expression.names})
        names = selection.expression.output_names
    else:
        names = tuple(f"b{i}" for i in indexes)
    if data.dtype.kind == "f":
        mask = mask & np.isfinite(data).all(axis=0)
    return ImageData(data=data, mask=mask, bounds=tuple(bounds), crs=crs, band_names=names)


def part(dataset: OpenDataset, bounds, crs, width: int, height: int,
         selection: Selection) -> ImageData:
    """Pixels covering ``bounds`` (in ``crs``) as a ``width`` x ``height`` image."""
    src = dataset.src
    indexes = band_indexes(dataset, selection)
    if (len(indexes) + 1) * width * height > MAX_READ_VALUES:
        raise TooLarge(f"{len(indexes)} bands of {width}x{height} pixels are more than one "
                       f"request may read ({MAX_READ_BANDS} bands of {MAX_IMAGE_SIZE}x"
                       f"{MAX_IMAGE_SIZE}, the read "
                       "limit): choose fewer bands (bidx) or a smaller size (max_size, "
                       "width, height)")
    check_expression_memory(selection, width, height)
    scale = read_scale(dataset, bounds, crs, width, height, selection)
    nodata = _nodata(dataset, selection)
    if _own_crs(dataset, crs) and not (src.transform.b or src.transform.d):  # rotated: warp
        t = src.transform
        if t.a > 0 > t.e:  # north up: the window directly, not by rasterio's general solver
            window = Window((bounds[0] - t.c) / t.a, (bounds[3] - t.f) / t.e,
                            (bounds[2] - bounds[0]) / t.a, (bounds[1] - bounds[3]) / t.e)
        else:
            window = from_bounds(*bounds, transform=t)
        if _inside(window, src):  # already in the output CRS: a plain windowed read
            return _read_window(dataset, selection, window, width, height, indexes, nodata,
                                bounds, crs)
    left, bottom, right, top = bounds
    # A VRT at the finest resolution the area needs: GDAL reads the source overview whose
    # factor is the largest within vrt / output size.
    scale = min(max(scale, 1.0), MAX_VRT_SIDE / max(width, height))  # 1: zoomed in past the data
    vrt_width, vrt_height = round(width * scale), round(height * scale)
    options = dict(crs=crs, transform=transform_from_bounds(left, bottom, right, top, vrt_width,
                                                           vrt_height),
                   width=vrt_width, height=vrt_height, resampling=selection.reproject)
    extra: list[int] = []
    if nodata is not None:
        options.update(src_nodata=nodata, nodata=nodata)
    elif dataset.alpha is not None:
        extra = [dataset.alpha]
    else:
        options["add_alpha"] = True
        extra = [src.count + 1]
    read = list(indexes) + extra
    every = list(range(1, src.count + (2 if options.get("add_alpha") else 1)))
    with WarpedVRT(src, **options) as vrt:
        itemsize = max(np.dtype(d).itemsize for d in src.dtypes)
        if read != every and len(every) * width * height * itemsize <= MAX_ALL_BANDS_BYTES:
            # GDAL reads a warped VRT through its overviews only when every band is read at
            # once: a subset is warped at the VRT's full resolution (a minute for a z0 tile
            # of a small file). Read them all and keep those asked for.
            data = vrt.read(every, out_shape=(len(every), height, width),
                            resampling=selection.resampling)[[i - 1 for i in read]]
        else:
            data = vrt.read(read, out_shape=(len(read), height, width),
                            resampling=selection.resampling)
    data, mask = _split_alpha(data, bool(extra), nodata)
    return _finish(dataset, selection, data, mask, indexes, bounds, crs)


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
    itemsize = max(np.dtype(d).itemsize for d in src.dtypes)
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
    scale = None if _own_crs(dataset, crs) else _finest_scale(dataset, bounds, crs, width, height)
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


def _split_alpha(data: np.ndarray, has_alpha: bool, nodata: float | None):
    """(data, mask): the last band is an alpha band when ``has_alpha``; otherwise validity
    comes from ``nodata`` (None: all valid)."""
    if has_alpha:
        return data[:-1], data[-1] > 0
    return data, _valid(data, nodata)


def _inside(window, src, tolerance: float = 1e-6) -> bool:
    """Whether ``window`` lies within the dataset (so no pixel is outside the data)."""
    if src.transform.b or src.transform.d:  # rotated grids go through the warper
        return False
    return (window.col_off >= -tolerance and window.row_off >= -tolerance
            and window.col_off + window.width <= src.width + tolerance
            and window.row_off + window.height <= src.height + tolerance)


def _read_window(dataset: OpenDataset, selection: Selection, window, width: int, height: int,
                 indexes, nodata, bounds, crs) -> ImageData:
    """Read ``window`` of the dataset (float offsets allowed) at ``width`` x ``height``; GDAL
    picks the overview. Validity as in :func:`part`: nodata, else alpha, else the mask band."""
    src = dataset.src
    extra = [dataset.alpha] if nodata is None and dataset.alpha is not None else []
    read = list(indexes) + extra
    data = src.read(read, window=window, out_shape=(len(read), height, width),
                    resampling=selection.resampling)
    if extra or nodata is not None:
        data, mask = _split_alpha(data, bool(extra), nodata)
    elif _all_valid(dataset):  # (the window is inside the file)
        mask = np.ones((height, width), dtype=bool)
    else:
        mask = src.dataset_mask(window=window, out_shape=(height, width)) > 0
    return _finish(dataset, selection, data, mask, indexes, bounds, crs)


def _own_crs(dataset: OpenDataset, crs) -> bool:
    """Whether ``crs`` is the file's own (memoised: rasterio compares CRSs in 6 us)."""
    key = ("own_crs", crs.to_string())
    if key not in dataset.memo:
        dataset.memo[key] = crs == dataset.src.crs
    return dataset.memo[key]


def _all_valid(dataset: OpenDataset) -> bool:
    """Whether the file has neither nodata nor a mask nor alpha: every pixel valid."""
    if "all_valid" not in dataset.memo:
        dataset.memo["all_valid"] = all(MaskFlags.all_valid in flags
                                        for flags in dataset.src.mask_flag_enums)
    return dataset.memo["all_valid"]


def tile_exists(dataset: OpenDataset, tms: TileMatrixSet, z: int, x: int, y: int) -> bool:
    """Whether the tile touches the data. In a world grid the tile and the data are compared
    in longitude and latitude (antimeridian and poles included), elsewhere in the set's CRS
    against the data's :func:`footprint`. Where it cannot be told, the tile counts as
    touching and the read masks what lies outside the data."""
    if tms.is_world_grid and not _own_crs(dataset, tms.crs):
        box = tms.geographic_bounds(z, x, y)
        return True if box is None else geographic_overlap(box, dataset.geographic_bounds)
    left, bottom, right, top = tms.xy_bounds(z, x, y)
    return any(left < b[2] and right > b[0] and bottom < b[3] and top > b[1]
               for b in footprint(dataset, tms))


def tile(dataset: OpenDataset, address: TileAddress, selection: Selection) -> ImageData:
    """A tile of any tile matrix set; :class:`TileOutsideBounds` when it misses the data."""
    tms, z, x, y = address.tms, address.z, address.x, address.y
    if not tile_exists(dataset, tms, z, x, y):
        raise TileOutsideBounds(f"tile {tms.id}/{z}/{x}/{y} is outside the data; "
                                "see /cog/info for its bounds and zoom levels")
    return part(dataset, tms.xy_bounds(z, x, y), tms.crs, address.width, address.height,
                selection)


def fit_size(width: float, height: float, size: ImageSize) -> tuple[int, int]:
    """The output size for data of ``width`` x ``height`` pixels: both of ``size.width`` and
    ``size.height`` if given (exactly, as titiler); one of them, the other following the
    data's aspect ratio; neither, the data's size shrunk to ``size.max_size`` (never grown)."""
    if size.width and size.height:
        return size.width, size.height
    if size.width:
        return size.width, max(1, round(size.width * height / width))
    if size.height:
        return max(1, round(size.height * width / height)), size.height
    scale = min(1.0, size.max_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def preview(dataset: OpenDataset, selection: Selection, size: ImageSize) -> ImageData:
    """The whole image in its own CRS, longest side at most ``size.max_size``."""
    src = dataset.src
    width, height = fit_size(src.width, src.height, size)
    return part(dataset, src.bounds, src.crs, width, height, selection)


def bbox(dataset: OpenDataset, bounds, selection: Selection, size: ImageSize) -> ImageData:
    """The part of the image inside WGS84 ``bounds``, as an EPSG:4326 image."""
    west, south, east, north = bounds
    if not geographic_overlap(bounds, dataset.geographic_bounds):
        raise TileOutsideBounds("the bbox does not touch the data; see /cog/info for its bounds")
    resolution = dataset.native_resolution(WGS84)
    width, height = fit_size((east - west) / resolution, (north - south) / resolution, size)
    return part(dataset, bounds, WGS84, width, height, selection)


def point(dataset: OpenDataset, lon: float, lat: float, selection: Selection) -> ImageData:
    """The pixel under ``lon, lat`` as a 1x1 image (masked where it is nodata)."""
    src = dataset.src
    indexes = band_indexes(dataset, selection)
    xs, ys = transform_points(WGS84, src.crs, [lon], [lat])
    row, col = rowcol(src.transform, xs[0], ys[0])
    if not (0 <= row < src.height and 0 <= col < src.width):
        raise TileOutsideBounds(f"the point {lon:g},{lat:g} is outside the data")
    x0, y0 = src.xy(row, col, offset="ul")
    x1, y1 = src.xy(row, col, offset="lr")
    return _read_window(dataset, selection, Window(col, row, 1, 1), 1, 1, indexes,
                        _nodata(dataset, selection), (x0, y1, x1, y0), src.crs)


def zoom_range(dataset: OpenDataset, tms: TileMatrixSet) -> tuple[int, int]:
    """(minzoom, maxzoom) in ``tms``: from where the whole image fits one tile to the
    first level at full resolution."""
    src = dataset.src
    key = ("zooms", tms.id)
    if key not in dataset.memo:
        resolution = dataset.native_resolution(tms.crs)
        maxzoom = tms.zoom_for_cell_size(resolution)
        minzoom = tms.zoom_for_extent(resolution * max(src.width, src.height), maxzoom)
        dataset.memo[key] = (minzoom, maxzoom)
    return dataset.memo[key]


def footprint(dataset: OpenDataset, tms: TileMatrixSet) -> list[tuple]:
    """Boxes in the set's CRS that together cover the data (a superset, never less; empty
    when the data lies outside the set; the set's extent where it cannot be told).

    In a world grid (geographic or Mercator) the data's longitude/latitude bounds are
    transformed, split in two where they cross 180 degrees. In a local projection a grid of
    points over the data is transformed (edges alone miss what bulges inside, and points on
    the far side of the globe are invalid there) and the box clipped to the set's extent.
    """
    key = ("footprint", tms.id)
    if key not in dataset.memo:
        if _own_crs(dataset, tms.crs):
            dataset.memo[key] = [tuple(dataset.src.bounds)]
        else:
            dataset.memo[key] = footprint_of(dataset.src.crs, dataset.src.bounds,
                                             dataset.geographic_bounds, tms)
    return dataset.memo[key]


def footprint_of(crs, bounds, geographic_bounds, tms: TileMatrixSet) -> list[tuple]:
    """:func:`footprint` of data covering ``bounds`` in ``crs`` (``geographic_bounds`` in
    degrees)."""
    if tms.is_world_grid:
        boxes = _world_footprint(geographic_bounds, tms)
    else:
        boxes = _sampled_footprint(crs, bounds, tms)
    return [tms.extent] if boxes is None else boxes


def _world_footprint(geographic_bounds, tms: TileMatrixSet) -> list[tuple] | None:
    west, south, east, north = geographic_bounds
    limit = tms.geographic_extent[3]  # 85.05 degrees in WebMercatorQuad, 90 elsewhere
    south, north = max(south, -limit), min(north, limit)
    boxes = []
    for w, e in ([(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]):
        if tms.is_geographic:
            boxes.append((w, south, e, north))
            continue
        try:
            box = transform_bounds(WGS84, tms.crs, w, south, e, north, densify_pts=21)
        except Exception:  # outside the projection's domain
            return None
        if not all(map(math.isfinite, box)):
            return None
        boxes.append(tuple(box))
    return boxes


def _sampled_footprint(crs, bounds, tms: TileMatrixSet, samples: int = 33) -> list | None:
    left, bottom, right, top = bounds
    if left > right:  # degrees across 180: sample the whole band of latitudes
        left, right = -180.0, 180.0
    xs, ys = np.meshgrid(np.linspace(left, right, samples), np.linspace(bottom, top, samples))
    try:
        with np.errstate(all="ignore"):
            tx, ty = transform_points(crs, tms.crs, xs.ravel(), ys.ravel())
    except Exception:  # the CRSs have no transformation between them
        return None
    tx, ty = np.asarray(tx), np.asarray(ty)
    finite = np.isfinite(tx) & np.isfinite(ty)
    if not finite.any():
        return None
    e_left, e_bottom, e_right, e_top = tms.extent
    box = (max(tx[finite].min(), e_left), max(ty[finite].min(), e_bottom),
           min(tx[finite].max(), e_right), min(ty[finite].max(), e_top))
    if not finite.all():  # part of the data lies where the projection is undefined
        return None
    return [box] if box[0] < box[2] and box[1] < box[3] else []  # [] : outside the set


def tile_limits(dataset: OpenDataset, tms: TileMatrixSet, z: int):
    """(min_col, min_row, max_col, max_row) of the tiles of ``z`` that may touch the data."""
    ranges = [r for r in (tms.tile_range(z, box) for box in footprint(dataset, tms)) if r]
    if not ranges:
        return None
    return (min(r[0] for r in ranges), min(r[1] for r in ranges),
            max(r[2] for r in ranges), max(r[3] for r in ranges))


def _crs_name(crs) -> str:
    epsg = crs.to_epsg(confidence_threshold=70)
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def info(dataset: OpenDataset, tms: TileMatrixSet) -> dict:
    """What the file is: bounds, CRS, size, bands, nodata, overviews, zoom levels (in
    ``tms``)."""
    src = dataset.src
    minzoom, maxzoom = zoom_range(dataset, tms)
    if src.nodata is not None:
        nodata_type = "Nodata"
    elif dataset.alpha is not None:
        nodata_type = "Alpha"
    elif any(flag.name == "per_dataset" for flag in src.mask_flag_enums[0]):
        nodata_type = "Mask"
    else:
        nodata_type = "None"
    colormap = None
    try:
        colormap = {str(k): list(v) for k, v in src.colormap(1).items()}
    except ValueError:
        pass
    west, south, east, north = dataset.geographic_bounds
    nodata = src.nodata
    result = {
        "name": dataset.name,
        "bounds": [west, south, east, north],
        "crosses_antimeridian": west > east,
        "crs": _crs_name(src.crs),
        "native_bounds": list(src.bounds),
        "width": src.width,
        "height": src.height,
        "count": src.count,
        "dtype": src.dtypes[0],
        "dtypes": list(src.dtypes),
        "nodata_type": nodata_type,
        "nodata_value": None if nodata is None or math.isnan(nodata) else nodata,
        "nodata_is_nan": nodata is not None and math.isnan(nodata),
        "colorinterp": [ci.name for ci in src.colorinterp],
        "band_descriptions": [[f"b{i}", d or ""] for i, d in zip(src.indexes, src.descriptions)],
        "band_metadata": [[f"b{i}", src.tags(i)] for i in src.indexes],
        "scales": list(src.scales),
        "offsets": list(src.offsets),
        "overviews": src.overviews(1),
        "is_tiled": src.block_shapes[0][1] != src.width or src.width <= 512,
        "blocksize": list(src.block_shapes[0]),
        "compression": src.compression.value if src.compression else None,
        "driver": src.driver,
        "minzoom": minzoom,
        "maxzoom": maxzoom,
    }
    if colormap:
        result["colormap"] = colormap
    return result


def _json_number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _histogram(values: np.ndarray, bins: int, histogram_range) -> tuple:
    """numpy's histogram of the finite values; one bin where their range is too narrow to
    split in float64 (all values equal and huge, as ``b1**b1`` makes)."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    try:
        return np.histogram(finite, bins=bins, range=histogram_range)
    except ValueError:
        low, high = histogram_range or ((finite.min(), finite.max()) if finite.size else (0, 0))
        inside = finite[(finite >= low) & (finite <= high)]
        return np.array([inside.size]), np.array([low, high], "float64")


def band_statistics(values: np.ndarray, total: int, percentiles=(2, 98), bins: int = 10,
                    histogram_range=None) -> dict:
    """Statistics of the valid ``values`` of one band (``total`` pixels in all)."""
    count = int(values.size)
    result = {"valid_pixels": count, "masked_pixels": total - count,
              "valid_percent": round(100.0 * count / total, 2) if total else 0.0}
    if count == 0:
        result.update({k: None for k in ("min", "max", "mean", "std", "median", "sum")})
        result.update({f"percentile_{p:g}": None for p in percentiles})
        result["histogram"] = [[], []]
        return result
    values = values.astype("float64", copy=False)
    counts, edges = _histogram(values, bins, histogram_range)
    result.update({
        "min": _json_number(values.min()), "max": _json_number(values.max()),
        "mean": _json_number(values.mean()), "std": _json_number(values.std()),
        "median": _json_number(np.median(values)), "sum": _json_number(values.sum()),
        "count": count,
        "histogram": [counts.tolist(), [_json_number(e) for e in edges]],
    })
    for p, value in zip(percentiles, np.percentile(values, percentiles)):
        result[f"percentile_{p:g}"] = _json_number(value)
    return result


def statistics(dataset: OpenDataset, selection: Selection,
               options: StatisticsOptions = StatisticsOptions()) -> dict:
    """Per-band statistics from an overview no larger than ``options.max_size``."""
    image = preview(dataset, selection, ImageSize(None, options.max_size))
    return {name: band_statistics(band[valid], valid.size, options.percentiles, options.bins,
                                  options.histogram_range)
            for name, band, valid in zip(image.band_names, image.data,
                                         _band_validity(dataset, selection, image))}


def _band_validity(dataset: OpenDataset, selection: Selection, image: ImageData):
    """Per-band validity: a pixel is shown if any band is valid, but a band's statistics
    leave out its own nodata values (nodata is per band in GDAL)."""
    nodata = _nodata(dataset, selection)
    for band in image.data:
        if selection.expression is None and nodata is not None:
            yield image.mask & _valid(band[None], nodata)
        else:
            yield image.mask


def stretch_ranges(dataset: OpenDataset, selection: Selection) -> tuple[tuple[float, float], ...]:
    """Dataset-wide (2nd, 98th) percentile per output band, for data without ``rescale``.

    Computed once per dataset and selection from a small overview, so that every tile of a
    layer is stretched alike.
    """
    key = ("stretch",) + selection.key
    if key not in dataset.memo:
        image = preview(dataset, selection, ImageSize(None, 512))
        bound_memo(dataset.memo, "stretch")
        dataset.memo[key] = percentile_ranges(
            band[valid] for band, valid in zip(image.data,
                                               _band_validity(dataset, selection, image)))
    return dataset.memo[key]


#: Most stretch ranges kept per dataset (they are keyed by what users ask: expressions...).
MAX_STRETCH_MEMO = 64


def bound_memo(memo: dict, kind: str, limit: int = MAX_STRETCH_MEMO) -> None:
    """Make room for one more ``kind`` entry in ``memo``: drop the oldest beyond ``limit``."""
    keys = [k for k in memo if isinstance(k, tuple) and k and k[0] == kind]
    for old in keys[:max(0, len(keys) - limit + 1)]:
        del memo[old]


def percentile_ranges(bands) -> tuple[tuple[float, float], ...]:
    """(2nd, 98th) percentile of each band's valid values (min-max when those are equal)."""
    ranges = []
    for values in bands:
        if values.size == 0:
            ranges.append((0.0, 1.0))
            continue
        low, high = (float(v) for v in np.percentile(values, (2, 98)))
        if not high > low:
            low, high = float(values.min()), float(values.max())
        ranges.append((low, high if high > low else low + 1.0))
    return tuple(ranges)
