"""Places on the Earth: the one WGS84, boxes as named tuples, the antimeridian split.

Two kinds of box, both plain tuples underneath (so they unpack, compare and serialise as
tuples do): :class:`Bounds` in a CRS's own units, x first; :class:`LonLatBounds` in degrees,
whose west may be greater than its east when the box crosses the 180th meridian.
:func:`lon_spans` is the one place that splits such a box in two.

>>> lon_spans(170.0, -170.0)
((170.0, 180.0), (-180.0, -170.0))
>>> geographic_overlap(LonLatBounds(170, -10, -170, 10), LonLatBounds(-175, 0, -160, 5))
True
"""

import math
from typing import NamedTuple

from rasterio.crs import CRS
from rasterio.warp import transform_bounds

WGS84 = CRS.from_epsg(4326)
#: Web Mercator covers latitudes up to here (EPSG:3857's square world).
MAX_LAT = 85.0511287798066


class Bounds(NamedTuple):
    """(left, bottom, right, top) in a CRS's units, x (easting or longitude) first."""

    left: float
    bottom: float
    right: float
    top: float


class LonLatBounds(NamedTuple):
    """(west, south, east, north) in degrees; west > east when the box crosses 180."""

    west: float
    south: float
    east: float
    north: float


Span = tuple[float, float]


def lon_spans(west: float, east: float) -> tuple[Span, ...]:
    """A longitude span as one (west, east) range, or two where it crosses 180 degrees."""
    return ((west, east),) if west <= east else ((west, 180.0), (-180.0, east))


def geographic_overlap(a: tuple, b: tuple) -> bool:
    """Whether two (west, south, east, north) boxes overlap; west > east crosses 180."""
    if not (a[1] < b[3] and a[3] > b[1]):
        return False
    return any(a0 < b1 and a1 > b0 for a0, a1 in lon_spans(a[0], a[2])
               for b0, b1 in lon_spans(b[0], b[2]))


def widened(bounds: tuple, width: int, height: int,
            margin: float) -> tuple[Bounds, int, int]:
    """``bounds`` drawn as ``width`` x ``height`` pixels, with ``margin`` more pixels on each
    side (a half pixel allowed): the bounds and size of the larger image.

    >>> widened((0.0, 0.0, 256.0, 256.0), 256, 256, 3)
    (Bounds(left=-3.0, bottom=-3.0, right=259.0, top=259.0), 262, 262)
    """
    left, bottom, right, top = bounds
    if not margin:
        return Bounds(left, bottom, right, top), width, height
    dx, dy = (right - left) / width * margin, (top - bottom) / height * margin
    return (Bounds(left - dx, bottom - dy, right + dx, top + dy), round(width + 2 * margin),
            round(height + 2 * margin))


def to_geographic(crs: CRS, bounds: tuple) -> LonLatBounds | None:
    """``bounds`` in ``crs`` as degrees, densified so that curved edges, poles and the
    antimeridian are accounted for; None if they cannot be."""
    try:
        west, south, east, north = transform_bounds(crs, WGS84, *bounds, densify_pts=21)
    except Exception:  # GDAL refuses points outside the projection's domain
        return None
    if not all(map(math.isfinite, (west, south, east, north))):
        return None
    return LonLatBounds(west, max(south, -90.0), east, min(north, 90.0))
