"""Reading one GeoTIFF: tiles, parts, previews, points, info and statistics of an open
dataset.

One read path serves tiles, bbox parts and previews: a ``WarpedVRT`` over the requested
bounds in the output CRS, at the finest resolution the area needs anywhere in it (planned by
:mod:`.planning`), or the output's when zoomed in past the data, read with ``out_shape`` so
that GDAL picks the overview level from it and reads only the blocks the output needs; a
plain windowed read when the output is in the file's own north-up grid. Validity comes
from, in order: the nodata value (the user's override, else the file's), the alpha band,
else the warper's alpha (which carries the file's mask band and marks everything outside
the footprint). :func:`attach` puts on the pixels what rendering needs from the file (its
palette, its statistics when asked), so that nothing returns to the file afterwards.

Callers hold ``datasets.reading(dataset)`` around these functions (:mod:`.cog` does).
"""

import math

import numpy as np
from affine import Affine
from rasterio.dtypes import in_dtype_range
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.transform import array_bounds, rowcol
from rasterio.transform import from_bounds as transform_from_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform
from rasterio.warp import transform as transform_points
from rasterio.windows import Window, from_bounds
from rasterio.windows import bounds as windows_bounds

from ..core import budget
from ..core.errors import BadRequest, TileOutsideBounds
from ..core.geo import WGS84, Bounds, geographic_overlap, in_degrees, widened
from ..core.memo import remembered
from ..core.records import ImageData, ImageSize, Ranges, Selection, StatisticsOptions, TileAddress
from ..grids.footprints import TileRange, footprint_of
from ..grids.footprints import tile_limits as _tile_limits
from ..grids.tilematrixsets import TileMatrixSet
from ..pixels import colormaps, render
from ..pixels.expression import band_number
from ..pixels.statistics import image_statistics, percentile_ranges
from ..sources.datasets import OpenDataset
from .planning import (
    MAX_ALL_BANDS_BYTES,
    MAX_VRT_SIDE,
    charge_read,
    check_band_count,
    check_expression_memory,
    check_read_size,
    check_warp_size,
    fit_size,
    read_scale,
)


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
    check_band_count(len(indexes), bool(selection.indexes) or selection.expression is not None)
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
            indexes: tuple[int, ...], bounds, crs, nodata: float | None) -> ImageData:
    """Unscale (if asked), apply the expression (if any) and mask what is not a finite
    number; the bands as read keep their ``nodata``."""
    if selection.unscale:
        scales = np.array([dataset.src.scales[i - 1] for i in indexes])[:, None, None]
        offsets = np.array([dataset.src.offsets[i - 1] for i in indexes])[:, None, None]
        if (scales != 1).any() or (offsets != 0).any():  # float32 as rio-tiler
            data = data.astype("float32")
            np.multiply(data, scales, out=data, casting="unsafe")
            np.add(data, offsets, out=data, casting="unsafe")
            nodata = None  # the values are no longer those nodata names
    if selection.expression is not None:
        by_band = dict(zip(indexes, data))
        data = selection.expression.evaluate({name: by_band[band_number(name) or 0]
                                              for name in selection.expression.names})
        names = selection.expression.output_names
    else:
        names = tuple(f"b{i}" for i in indexes)
    if data.dtype.kind == "f":
        mask = mask & np.isfinite(data).all(axis=0)
    return ImageData(data=data, mask=mask, bounds=Bounds(*bounds), crs=crs, band_names=names,
                     nodata=None if selection.expression is not None else nodata)


def part(dataset: OpenDataset, bounds, crs, width: int, height: int,
         selection: Selection) -> ImageData:
    """Pixels covering ``bounds`` (in ``crs``) as a ``width`` x ``height`` image."""
    src = dataset.src
    indexes = band_indexes(dataset, selection)
    check_read_size(len(indexes), width, height)
    check_expression_memory(selection, width, height)
    scale = read_scale(dataset, bounds, crs, width, height, selection)
    nodata = _nodata(dataset, selection)
    if dataset.own_crs(crs) and not (src.transform.b or src.transform.d):  # rotated: warp
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
    check_warp_size(len(every), width, height)
    charge_read(dataset, selection, len(read), width, height)
    itemsize = dataset.itemsize
    spare = (len(every) - len(read)) * width * height * itemsize  # the bands read, not kept
    request = budget.current()
    with WarpedVRT(src, **options) as vrt:
        if read != every and spare <= MAX_ALL_BANDS_BYTES and request.room() >= spare:
            # GDAL reads a warped VRT through its overviews only when every band is read at
            # once: a subset is warped at the VRT's full resolution (a minute for a z0 tile
            # of a small file). Read them all and keep those asked for.
            request.charge(spare, "reading every band for a subset")
            try:
                data = vrt.read(every, out_shape=(len(every), height, width),
                                resampling=selection.resampling)[[i - 1 for i in read]]
            finally:
                request.release(spare)
        else:
            data = vrt.read(read, out_shape=(len(read), height, width),
                            resampling=selection.resampling)
    data, mask = _split_alpha(data, bool(extra), nodata)
    return _finish(dataset, selection, data, mask, indexes, bounds, crs, nodata)


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
    charge_read(dataset, selection, len(read), width, height)
    data = src.read(read, window=window, out_shape=(len(read), height, width),
                    resampling=selection.resampling)
    if extra or nodata is not None:
        data, mask = _split_alpha(data, bool(extra), nodata)
    elif _all_valid(dataset):  # (the window is inside the file)
        mask = np.ones((height, width), dtype=bool)
    else:
        mask = src.dataset_mask(window=window, out_shape=(height, width)) > 0
    return _finish(dataset, selection, data, mask, indexes, bounds, crs, nodata)


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
    if tms.is_world_grid and not dataset.own_crs(tms.crs):
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
    bounds, width, height = address.bounds()
    return part(dataset, bounds, tms.crs, width, height, selection)


def preview(dataset: OpenDataset, selection: Selection, size: ImageSize,
            crs=None) -> ImageData:
    """The whole image in its own CRS (or ``crs``), longest side at most
    ``size.max_size``."""
    src = dataset.src
    if crs is not None and not dataset.own_crs(crs):
        grid, grid_width, grid_height = remembered(
            dataset.memo, ("warped", crs.to_string()), lambda: _default_grid(dataset, crs))
        box = array_bounds(grid_height, grid_width, grid)
        bounds, width, height = widened(box, *fit_size(grid_width, grid_height, size),
                                        size.margin)
        return part(dataset, bounds, crs, width, height, selection)
    bounds, width, height = widened(src.bounds, *fit_size(src.width, src.height, size),
                                    size.margin)
    return part(dataset, bounds, src.crs, width, height, selection)


def grid_in(dataset: OpenDataset, crs) -> tuple[Affine, int, int]:
    """The dataset's pixel grid in ``crs`` (transform, width, height): its own in its own
    CRS, else the grid GDAL would warp the whole file onto (rio-tiler's, for
    ``align_bounds_with_dataset``); memoised. For data across the
    antimeridian that grid spans the world in degrees, with pixels far coarser than the
    data's: the grid of a few pixels at the image centre stands for it instead."""
    key = ("grid", crs.to_string())
    if key not in dataset.memo:
        src = dataset.src
        if dataset.own_crs(crs):
            grid = (src.transform, src.width, src.height)
        elif crs.is_geographic and dataset.geographic_bounds.west > \
                dataset.geographic_bounds.east:
            size = min(16, src.width, src.height)
            col, row = (src.width - size) // 2, (src.height - size) // 2
            grid = calculate_default_transform(src.crs, crs, size, size,
                                               *src.window_bounds(Window(col, row, size,
                                                                         size)))
        else:
            grid = _default_grid(dataset, crs)
        dataset.memo[key] = grid
    found: tuple[Affine, int, int] = dataset.memo[key]
    return found


def _default_grid(dataset: OpenDataset, crs) -> tuple[Affine, int, int]:
    """GDAL's grid for the whole file warped into ``crs``; :class:`BadRequest` where the
    file cannot be expressed there."""
    src = dataset.src
    try:
        grid: tuple[Affine, int, int] = calculate_default_transform(
            src.crs, crs, src.width, src.height, *src.bounds)
    except Exception:  # PROJ or GDAL refuse: another body, outside the projection's domain
        raise BadRequest("the data cannot be warped into the requested CRS (outside its "
                         "area of use?)") from None
    return grid


def sized_part(bounds, grid: Affine, size: ImageSize,
               align: bool = False) -> tuple[Bounds, int, int]:
    """The bounds and size of an image of ``bounds``: at the resolution of ``grid``
    (rio-tiler's ``get_vrt_transform``) unless ``size`` says otherwise, with its margin;
    with ``align``, ``bounds`` grown to whole pixels of ``grid`` first (rio-tiler's
    ``align_bounds_with_dataset``)."""
    if align:
        window = from_bounds(*bounds, transform=grid)
        (row0, row1), (col0, col1) = window.toranges()
        snapped = Window(math.floor(col0), math.floor(row0),
                         max(1, math.ceil(col1) - math.floor(col0)),
                         max(1, math.ceil(row1) - math.floor(row0)))
        bounds = windows_bounds(snapped, grid)
        natural = (float(snapped.width), float(snapped.height))
    else:
        left, bottom, right, top = bounds
        natural = ((right - left) / abs(grid.a), (top - bottom) / abs(grid.e))
    return widened(bounds, *fit_size(*natural, size), size.margin)


def check_overlap(bounds, crs, geographic: tuple, what: str, kind: str = "cog") -> None:
    """:class:`TileOutsideBounds` when ``bounds`` (in ``crs``) miss the data's
    ``geographic`` bounds (east of 180 degrees counts as across it)."""
    box = in_degrees(crs, bounds)
    if box is None:  # not expressible in degrees: the read masks what misses the data
        return
    if not geographic_overlap(box, geographic):
        raise TileOutsideBounds(f"{what} does not touch the data; see /{kind}/info for its "
                                "bounds")


def bbox(dataset: OpenDataset, bounds, selection: Selection, size: ImageSize,
         crs=WGS84, align: bool = False) -> ImageData:
    """The part of the image inside ``bounds``, as an image in ``crs`` (the bounds' CRS); at
    the data's resolution unless ``size`` says otherwise, on whole pixels of the data's
    grid if ``align``."""
    check_overlap(bounds, crs, dataset.geographic_bounds, "the bbox")
    box, width, height = sized_part(bounds, grid_in(dataset, crs)[0], size, align)
    return part(dataset, box, crs, width, height, selection)


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


def footprint(dataset: OpenDataset, tms: TileMatrixSet) -> list[Bounds]:
    """Boxes in the set's CRS that together cover the data (see
    :func:`~chalicelib.grids.footprints.footprint_of`), memoised per set."""
    key = ("footprint", tms.id)
    if key not in dataset.memo:
        if dataset.own_crs(tms.crs):
            dataset.memo[key] = [Bounds(*dataset.src.bounds)]
        else:
            dataset.memo[key] = footprint_of(dataset.src.crs, dataset.src.bounds,
                                             dataset.geographic_bounds, tms)
    return dataset.memo[key]


def tile_limits(dataset: OpenDataset, tms: TileMatrixSet, z: int) -> TileRange | None:
    """(min_col, min_row, max_col, max_row) of the tiles of ``z`` that may touch the data."""
    return _tile_limits(tms, z, footprint(dataset, tms))


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


def statistics(dataset: OpenDataset, selection: Selection,
               options: StatisticsOptions = StatisticsOptions()) -> dict:
    """Per-band statistics from an overview no larger than ``options.max_size``."""
    image = preview(dataset, selection, ImageSize(None, options.max_size))
    return image_statistics(image, options, _band_validity(dataset, selection, image))


def _band_validity(dataset: OpenDataset, selection: Selection, image: ImageData):
    """Per-band validity: a pixel is shown if any band is valid, but a band's statistics
    leave out its own nodata values (nodata is per band in GDAL)."""
    nodata = _nodata(dataset, selection)
    for band in image.data:
        if selection.expression is None and nodata is not None:
            yield image.mask & _valid(band[None], nodata)
        else:
            yield image.mask


def stretch_ranges(dataset: OpenDataset, selection: Selection) -> Ranges:
    """Dataset-wide (2nd, 98th) percentile per output band, for data without ``rescale``.

    Computed once per dataset and selection from a small overview, so that every tile of a
    layer is stretched alike.
    """
    def compute() -> Ranges:
        image = preview(dataset, selection, ImageSize(None, 512))
        return percentile_ranges(image, _band_validity(dataset, selection, image))

    ranges: Ranges = remembered(dataset.memo, ("stretch", *selection.key), compute)
    return ranges


def palette(dataset: OpenDataset) -> np.ndarray | None:
    """The file's colour table as a colormap, if its first band is paletted (memoised)."""
    if "palette" not in dataset.memo:
        table = None
        if dataset.src.colorinterp[0] == ColorInterp.palette:
            try:
                table = colormaps.from_dataset(dataset.src.colormap(1))
            except ValueError:
                table = None
        dataset.memo["palette"] = table
    return dataset.memo["palette"]


def attach(dataset: OpenDataset, image: ImageData, selection: Selection,
           statistics: bool) -> ImageData:
    """``image`` with what rendering needs from the file: its palette (when the bands are
    read as they are, not through an expression) and, when ``statistics`` is asked and the
    pixels are not display values already, the dataset's stretch ranges."""
    if selection.expression is None:
        image.palette = palette(dataset)
    if statistics and not render.shown_as_is(image.data.dtype):
        image.dataset_statistics = stretch_ranges(dataset, selection)
    return image
