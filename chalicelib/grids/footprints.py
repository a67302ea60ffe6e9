"""Where data lies on a tile matrix set: boxes in the set's CRS that cover it, and the
ranges of tiles those boxes touch.

A footprint is a superset, never less than the data: tiles it touches may still miss the
data (the read masks them), but no tile with data is left out. In a world grid (geographic
or Mercator) the data's longitude/latitude bounds are transformed, split in two where they
cross 180 degrees. In a local projection a grid of points over the data is transformed
(edges alone miss what bulges inside, and points on the far side of the globe are invalid
there) and the box is clipped to the set's extent.
"""

import math
from collections.abc import Iterable

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import transform as transform_points
from rasterio.warp import transform_bounds

from ..core.geo import WGS84, Bounds, lon_spans
from .tilematrixsets import TileMatrixSet

#: (min_col, min_row, max_col, max_row) of a block of tiles.
TileRange = tuple[int, int, int, int]


def footprint_of(crs: CRS, bounds: tuple[float, ...], geographic_bounds: tuple[float, ...],
                 tms: TileMatrixSet) -> list[Bounds]:
    """Boxes in the set's CRS that together cover data of ``bounds`` in ``crs``
    (``geographic_bounds`` in degrees): empty when the data lies outside the set, the
    set's extent where it cannot be told."""
    if tms.is_world_grid:
        boxes = _world_footprint(geographic_bounds, tms)
    else:
        boxes = _sampled_footprint(crs, bounds, tms)
    return [tms.extent] if boxes is None else boxes


def _world_footprint(geographic_bounds: tuple[float, ...],
                     tms: TileMatrixSet) -> list[Bounds] | None:
    west, south, east, north = geographic_bounds
    limit = tms.geographic_extent[3]  # 85.05 degrees in WebMercatorQuad, 90 elsewhere
    south, north = max(south, -limit), min(north, limit)
    boxes = []
    for w, e in lon_spans(west, east):
        if tms.is_geographic:
            boxes.append(Bounds(w, south, e, north))
            continue
        try:
            box = transform_bounds(WGS84, tms.crs, w, south, e, north, densify_pts=21)
        except Exception:  # outside the projection's domain
            return None
        if not all(map(math.isfinite, box)):
            return None
        boxes.append(Bounds(*box))
    return boxes


def _sampled_footprint(crs: CRS, bounds: tuple[float, ...], tms: TileMatrixSet,
                       samples: int = 33) -> list[Bounds] | None:
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
    box = Bounds(max(tx[finite].min(), e_left), max(ty[finite].min(), e_bottom),
                 min(tx[finite].max(), e_right), min(ty[finite].max(), e_top))
    if not finite.all():  # part of the data lies where the projection is undefined
        return None
    return [box] if box[0] < box[2] and box[1] < box[3] else []  # [] : outside the set


def merge_limits(limits: Iterable[TileRange | None]) -> TileRange | None:
    """The tile range covering several; None if none is given."""
    ranges = [r for r in limits if r]
    if not ranges:
        return None
    return (min(r[0] for r in ranges), min(r[1] for r in ranges),
            max(r[2] for r in ranges), max(r[3] for r in ranges))


def tile_limits(tms: TileMatrixSet, z: int, boxes: Iterable[tuple]) -> TileRange | None:
    """The tiles of ``z`` that may touch data covered by ``boxes`` (a footprint)."""
    return merge_limits(tms.tile_range(z, box) for box in boxes)
