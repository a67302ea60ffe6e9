"""STAC items: one scene as several GeoTIFFs (often one per band), read as one source.

A small reader of the STAC item JSON (no pystac: it would bring its dependencies into the
Lambda package for a few dictionary lookups). The item's GeoTIFF assets are its files;
``assets=`` picks them and their bands are stacked in that order; an expression may name
single-band assets (``(nir-red)/(nir+red)``), band n of any asset (``visual_b2``) or the
stacked bands (``b1``...). Each asset href is resolved relative to the item and checked
against the allow-list before it is opened; the assets of one request are read
concurrently, each on the same output grid, by the single-file reader.
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np
from rasterio.warp import transform_bounds

from ..core.errors import BadRequest, NotARaster, TileOutsideBounds
from ..core.geo import WGS84, Bounds, LonLatBounds, geographic_overlap, widened
from ..core.memo import remembered
from ..core.records import ImageData, ImageSize, Selection, StatisticsOptions, TileAddress
from ..core.settings import Settings
from ..grids.footprints import TileRange, merge_limits
from ..grids.tilematrixsets import TileMatrixSet
from ..pixels import render
from ..pixels.expression import band_number
from ..pixels.statistics import image_statistics, percentile_ranges
from ..sources import documents
from ..sources.allowlist import Source
from .cog import COGReader
from .geotiff import check_overlap, sized_part
from .planning import check_expression_memory, fit_size
from .pool import read_all
from .protocol import point_values

#: Media types of assets this tiler reads (GeoTIFF in its spellings).
RASTER_TYPES = ("image/tiff; application=geotiff", "image/tiff; profile=cloud-optimized",
                "image/vnd.stac.geotiff", "image/tiff")
MAX_ASSETS = 32  # files one request may read
#: ``assets=:all:`` (titiler): every asset of the item.
ALL_ASSETS = ":all:"
_ASSET_BAND = re.compile(r"^(.+)_[bB]([0-9]{1,5})$")


@dataclass(frozen=True)
class Asset:
    """One GeoTIFF asset of an item."""

    name: str
    href: str  # as a source string: absolute, resolved against the item
    media_type: str
    title: str


@dataclass(frozen=True)
class Item:
    """The parts of a STAC item this tiler reads."""

    id: str
    bbox: LonLatBounds | None
    assets: dict  # name -> Asset, raster assets only, in the item's order
    other_assets: tuple[str, ...]  # names of assets that are not GeoTIFFs
    #: Results cached per item (stretch ranges), as for a dataset.
    memo: dict = field(default_factory=dict, compare=False)


def _is_raster(asset: dict) -> bool:
    media = str(asset.get("type") or "").lower().replace(" ", "")
    if media:
        return any(media.startswith(t.replace(" ", "")) for t in RASTER_TYPES)
    href = str(asset.get("href") or "").lower().split("?")[0]
    return href.endswith((".tif", ".tiff"))


def _bbox(item: dict) -> LonLatBounds | None:
    box = item.get("bbox")
    if isinstance(box, list) and len(box) in (4, 6) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in box):
        if len(box) == 6:
            box = [box[0], box[1], box[3], box[4]]
        west, south, east, north = box
        if -180 <= west <= 180 and -180 <= east <= 180 and -90 <= south < north <= 90:
            return LonLatBounds(float(west), float(south), float(east), float(north))
    return None


def parse_item(document: dict, source: Source) -> Item:
    """The parts of a STAC item this tiler uses; :class:`NotARaster` if it is not one."""
    assets = document.get("assets")
    if document.get("type") != "Feature" or not isinstance(assets, dict):
        raise NotARaster("the source is not a STAC item (a GeoJSON Feature with 'assets')")
    rasters, others = {}, []
    for name, asset in assets.items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            continue
        if not _is_raster(asset):
            others.append(str(name))
            continue
        rasters[str(name)] = Asset(str(name), documents.href(source, asset["href"]),
                                   str(asset.get("type") or ""), str(asset.get("title") or ""))
    if not rasters:
        raise NotARaster("the STAC item has no GeoTIFF asset this tiler can read")
    return Item(str(document.get("id") or "item"), _bbox(document), rasters, tuple(others))


@dataclass(frozen=True)
class _Plan:
    """What one request reads: (asset, bands or None for all) in stacking order, and the
    assets whose bands are stacked (those of ``assets=``)."""

    reads: tuple[tuple[str, tuple[int, ...] | None], ...]
    stacked: tuple[str, ...]
    direct: frozenset = frozenset()  # assets the expression names as one band


class STACReader:
    """A STAC item. ``focus``: the assets the request is about (for zoom levels and
    footprints); every raster asset when it names none."""

    kind = "stac"

    def __init__(self, item: Item, config: Settings, focus: Selection | None = None):
        self.item = item
        self.config = config
        self.name = item.id
        self._bounds = item.bbox
        self.focus = focus

    @classmethod
    def open(cls, url: str | None, config: Settings,
             focus: Selection | None = None) -> "STACReader":
        return cls(documents.load(url, config, parse_item, "a STAC item"), config, focus)

    # ---- the item's files -----------------------------------------------------------------

    def asset_names(self) -> list[str]:
        return list(self.item.assets)

    def _listing(self) -> str:
        names = [n if len(n) <= 60 else n[:57] + "..." for n in list(self.item.assets)[:21]]
        return ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")

    def _asset(self, name: str) -> COGReader:
        asset = self.item.assets.get(name)
        if asset is None:
            hint = f" ('{name}' is not a GeoTIFF)" if name in self.item.other_assets else ""
            raise BadRequest(f"the item has no asset '{name}'{hint}; its GeoTIFF assets: "
                             + self._listing())
        return COGReader.open(asset.href, self.config)

    def _readers(self, names) -> list[COGReader]:
        found = []
        for _, reader, error in read_all(names, self._asset):
            if error is not None:
                raise error
            found.append(reader)
        return found

    def _focus_assets(self) -> list[str]:
        """The assets a request is about (those it names, else all), at most MAX_ASSETS."""
        if self.focus is not None and self.focus.assets != (ALL_ASSETS,) and (
                self.focus.assets or self.focus.expression):
            return [name for name, _ in self._plan(self.focus).reads]
        if len(self.item.assets) > MAX_ASSETS:
            raise BadRequest(f"the item has {len(self.item.assets)} GeoTIFF assets and at most "
                             f"{MAX_ASSETS} are opened at once: choose some with assets=... "
                             "(its assets: " + self._listing() + ")")
        return list(self.item.assets)

    @property
    def geographic_bounds(self) -> LonLatBounds:
        if self._bounds is None:  # the item has no bbox: its first asset's
            self._bounds = self._readers(list(self.item.assets)[:1])[0].geographic_bounds
        return self._bounds

    def _plan(self, selection: Selection) -> _Plan:
        listed = tuple(dict.fromkeys(selection.assets or ()))
        if listed == (ALL_ASSETS,):  # titiler's ":all:"
            listed = tuple(self.item.assets)
        expression = selection.expression
        if not listed and expression is None:
            raise BadRequest("choose what to read: assets=... (repeatable) or an expression; "
                             "the item's assets: " + self._listing())
        chosen = dict(selection.asset_indexes)
        for name in chosen:
            if name not in listed and expression is None:
                raise BadRequest(f"'asset_bidx' names '{name}', which is not in 'assets'")
        named: dict[str, set] = {}  # asset -> bands the expression names as {asset}_b{n}
        direct = set()
        for name in (expression.names if expression is not None else ()):
            asset, band = self._variable(name, listed)
            if asset is not None:
                named.setdefault(asset, set()).update([band] if band else [])
                if band is None:
                    direct.add(asset)
        reads = []
        for asset in dict.fromkeys(listed + tuple(named)):
            extra = named.get(asset, set())
            if asset in chosen:
                bands = chosen[asset] + tuple(sorted(extra - set(chosen[asset])))
            elif extra and asset not in listed:
                bands = tuple(sorted(extra))
            else:
                bands = None  # all but alpha
            reads.append((asset, bands))
        if len(reads) > MAX_ASSETS:
            raise BadRequest(f"at most {MAX_ASSETS} assets may be read at once")
        for asset, _ in reads:
            if asset not in self.item.assets:
                self._asset(asset)  # raises the error that lists the item's assets
        return _Plan(tuple(reads), listed, frozenset(direct))

    def _variable(self, name: str, listed: tuple[str, ...]) -> tuple[str | None, int | None]:
        """The (asset, band) an expression name reads: band None for a single-band asset
        named directly; (None, None) for ``bK``, a band of the stacked ``assets``."""
        if name in self.item.assets:
            return name, None
        match = _ASSET_BAND.match(name)
        if match and match.group(1) in self.item.assets:
            if int(match.group(2)) < 1:
                raise BadRequest(f"'{name}': bands are numbered from 1")
            return match.group(1), int(match.group(2))
        if band_number(name) is not None and listed:
            return None, None
        raise BadRequest(f"unknown name '{name}' in expression: use an asset's name "
                         "(single-band assets), {asset}_b{n}, or b1...bN for the bands of "
                         "'assets'; the item's assets: " + self._listing())

    # ---- reading --------------------------------------------------------------------------

    def _read(self, selection: Selection, read, plan: _Plan | None = None) -> ImageData:
        """Read every asset of the plan with ``read(cog, file_selection)`` (all on the same
        grid), then stack them or evaluate the expression. An asset the request misses
        counts as masked; missing them all is :class:`TileOutsideBounds`."""
        plan = plan or self._plan(selection)

        def read_asset(planned):
            name, bands = planned
            cog = self._asset(name)
            bands = bands or cog.dataset.data_indexes
            if name in plan.direct and bands == cog.dataset.data_indexes and len(bands) != 1:
                raise BadRequest(f"the asset '{name}' has {len(bands)} bands: name one as "
                                 f"{name}_b1 ... in the expression")
            if selection.asset_as_band and name in plan.stacked and len(bands) != 1:
                raise BadRequest(f"asset_as_band needs single-band assets; '{name}' has "
                                 f"{len(bands)} bands (pick one with asset_bidx)")
            try:
                return bands, read(cog, selection.for_file(bands))
            except TileOutsideBounds:
                return bands, None

        images: dict[str, ImageData] = {}
        band_lists = {}
        for (name, _), result, error in read_all(plan.reads, read_asset):
            if error is not None:
                raise error
            band_lists[name], image = result
            if image is not None:
                images[name] = image
        if not images:
            raise TileOutsideBounds("the request does not touch the item's assets; see "
                                    "/stac/info for their bounds")
        first = next(iter(images.values()))
        for name, bands in band_lists.items():
            if name not in images:  # outside this asset: all masked
                images[name] = ImageData(
                    np.zeros((len(bands), first.height, first.width), first.data.dtype),
                    np.zeros(first.mask.shape, bool), first.bounds, first.crs,
                    tuple(f"b{i}" for i in bands))
        return self._combine(plan, images, selection, first)

    def _combine(self, plan: _Plan, images: dict, selection: Selection,
                 first: ImageData) -> ImageData:
        stack, names = [], []
        for stacked in plan.stacked:
            image = images[stacked]
            stack.extend(image.data)
            names.extend([stacked] if selection.asset_as_band else
                         [f"{stacked}_{band}" for band in image.band_names])
        expression = selection.expression
        if expression is None:
            mask = np.logical_or.reduce([images[a].mask for a in plan.stacked])
            return ImageData(_stack(stack), mask, first.bounds, first.crs, tuple(names))
        values: dict = {}
        used: set[str] = set()
        for name in expression.names:
            asset, band = self._variable(name, plan.stacked)
            if asset is None:
                number = band_number(name)
                assert number is not None  # _variable: a band of the stacked assets
                if number > len(stack):
                    raise BadRequest(f"'{name}' is not one of the {len(stack)} band(s) of "
                                     "'assets'")
                values[name] = stack[number - 1]
                used.update(plan.stacked)
                continue
            image = images[asset]
            key = image.band_names[0] if band is None else f"b{band}"
            if key not in image.band_names:
                raise BadRequest(f"the asset '{asset}' has no band {band}")
            values[name] = image.data[image.band_names.index(key)]
            used.add(asset)
        data = expression.evaluate(values)
        # as rio-tiler: a pixel is valid where every file the expression reads is valid
        mask = np.logical_and.reduce([images[a].mask for a in used])
        mask = mask & np.isfinite(data).all(axis=0)
        return ImageData(data, mask, first.bounds, first.crs, expression.output_names)

    def tile_exists(self, tms: TileMatrixSet, z: int, x: int, y: int) -> bool:
        return any(r.tile_exists(tms, z, x, y) for r in self._readers(self._focus_assets()))

    def _attach(self, image: ImageData, selection: Selection, statistics: bool) -> ImageData:
        """No palette (the bands come from several files); when asked, stretch ranges over
        the whole item for pixels that are not 8-bit (once per item and selection)."""
        if statistics and not render.shown_as_is(image.data.dtype):
            image.dataset_statistics = self.stretch_ranges(selection)
        return image

    def grid_in(self, crs):
        """The grid of the item's first GeoTIFF asset in ``crs`` (a mosaic of items reads
        a box on the first item's grid)."""
        return self._asset(next(iter(self.item.assets))).grid_in(crs)

    def palette(self) -> None:
        """An item has no palette: its bands come from several files."""
        return None

    def stretch_ranges(self, selection: Selection):
        """The stretch ranges of the whole item's pixels (once per item and selection)."""
        return remembered(self.item.memo, ("stretch", *selection.key),
                          lambda: percentile_ranges(self.preview(selection,
                                                                 ImageSize(None, 512))))

    def tile(self, address: TileAddress, selection: Selection,
             statistics: bool = False) -> ImageData:
        tms, z, x, y = address.tms, address.z, address.x, address.y
        box = tms.geographic_bounds(z, x, y)
        if box is not None and not geographic_overlap(box, self.geographic_bounds):
            raise TileOutsideBounds(f"tile {tms.id}/{z}/{x}/{y} is outside the item; see "
                                    "/stac/info for its bounds")
        check_expression_memory(selection, address.width, address.height)
        # each asset's tile (TileOutsideBounds where it misses that asset: masked)
        image = self._read(selection, lambda cog, s: cog.tile(address, s))
        return self._attach(image, selection, statistics)

    def _grid(self, plan: _Plan, crs=None):
        """A grid over the assets of ``plan``: in ``crs`` (default: the first one's CRS), the
        union of their bounds in it, the finest of their resolutions."""
        readers = self._readers([name for name, _ in plan.reads])
        crs = crs or readers[0].dataset.src.crs
        boxes = []
        for r in readers:
            src = r.dataset.src
            boxes.append(src.bounds if src.crs == crs else
                         transform_bounds(src.crs, crs, *src.bounds, densify_pts=21))
        bounds = (min(b[0] for b in boxes), min(b[1] for b in boxes),
                  max(b[2] for b in boxes), max(b[3] for b in boxes))
        return bounds, crs, min(r.native_resolution(crs) for r in readers)

    def preview(self, selection: Selection, size: ImageSize, statistics: bool = False,
                crs=None) -> ImageData:
        plan = self._plan(selection)
        bounds, crs, resolution = self._grid(plan, crs)
        box, width, height = widened(bounds, *_sized(bounds, resolution, size), size.margin)
        check_expression_memory(selection, width, height)
        image = self._read(selection, lambda cog, s: cog.part(box, crs, width, height, s),
                           plan)
        return self._attach(image, selection, statistics)

    def bbox(self, bounds: Bounds, selection: Selection, size: ImageSize,
             statistics: bool = False, crs=WGS84, align: bool = False) -> ImageData:
        check_overlap(bounds, crs, self.geographic_bounds, "the bbox", "stac")
        plan = self._plan(selection)
        readers = self._readers([name for name, _ in plan.reads])
        finest = min(readers, key=lambda r: r.native_resolution(crs))  # its grid is the image's
        box, width, height = sized_part(bounds, finest.grid_in(crs)[0], size, align)
        check_expression_memory(selection, width, height)
        image = self._read(selection, lambda cog, s: cog.part(box, crs, width, height, s),
                           plan)
        return self._attach(image, selection, statistics)

    def point_image(self, lon: float, lat: float, selection: Selection) -> ImageData:
        """The pixel at a point as a 1x1 image (a mosaic of items combines these)."""
        return self._read(selection, lambda cog, s: cog.point_image(lon, lat, s))

    def point(self, lon: float, lat: float, selection: Selection) -> dict:
        return point_values(self.point_image(lon, lat, selection), lon, lat)

    def info(self, tms: TileMatrixSet) -> dict:
        """Each asset's info (the assets of ``assets=``, else all)."""
        names = self._focus_assets()
        return {name: reader.info(tms) for name, reader in zip(names, self._readers(names))}

    def statistics(self, selection: Selection, options: StatisticsOptions) -> dict:
        return image_statistics(self.preview(selection, ImageSize(None, options.max_size)),
                                options)

    def asset_statistics(self, selection: Selection, options: StatisticsOptions) -> dict:
        """Each asset's own statistics (titiler's ``/stac/asset_statistics``): by asset
        name, its bands (those of ``assets=name|bidx=...``, else all but alpha)."""
        plan = self._plan(selection)
        return {name: self._asset(name).statistics(selection.for_file(bands), options)
                for name, bands in plan.reads}

    def zoom_range(self, tms: TileMatrixSet) -> tuple[int, int]:
        zooms = [r.zoom_range(tms) for r in self._readers(self._focus_assets())]
        return min(z[0] for z in zooms), max(z[1] for z in zooms)

    def footprint(self, tms: TileMatrixSet) -> list[Bounds]:
        return [b for r in self._readers(self._focus_assets()) for b in r.footprint(tms)]

    def tile_limits(self, tms: TileMatrixSet, z: int) -> TileRange | None:
        return merge_limits(r.tile_limits(tms, z) for r in self._readers(self._focus_assets()))


def _stack(bands: list) -> np.ndarray:
    dtype = np.result_type(*[b.dtype for b in bands])
    return np.stack([b.astype(dtype, copy=False) for b in bands])


def _sized(bounds, resolution: float, size: ImageSize) -> tuple[int, int]:
    left, bottom, right, top = bounds
    return fit_size((right - left) / resolution, (top - bottom) / resolution, size)


def reader_for(url: str | None, config: Settings,
               selection: Selection | None = None) -> STACReader:
    """The STAC item at ``url`` (allow-listed, cached); ``selection`` names the assets the
    request is about."""
    return STACReader.open(url, config, selection)
