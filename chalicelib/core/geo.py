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
from rasterio.warp import transform, transform_bounds

from .errors import BadRequest

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


def wrapped(west: float, south: float, east: float, north: float) -> LonLatBounds:
    """A box whose east is past 180 degrees (a shape joined across the antimeridian) as
    the usual (west, south, east, north), west > east where it crosses.

    >>> wrapped(170.0, 0.0, 190.0, 1.0)
    LonLatBounds(west=170.0, south=0.0, east=-170.0, north=1.0)
    """
    if east > 180:
        west, east = (west - 360, east - 360) if west >= 180 else (west, east - 360)
    return LonLatBounds(west, south, east, north)


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


def _transformed(src: CRS, dst: CRS, bounds: tuple) -> tuple | None:
    """``bounds`` in ``src`` as a box in ``dst``, densified so that curved edges, poles and
    the antimeridian are accounted for; None if they cannot be expressed there."""
    try:
        box = transform_bounds(src, dst, *bounds, densify_pts=21)
    except Exception:  # GDAL refuses points outside the projection's domain
        return None
    return box if all(map(math.isfinite, box)) else None


def to_geographic(crs: CRS, bounds: tuple) -> LonLatBounds | None:
    """``bounds`` in ``crs`` as degrees; None if they cannot be."""
    box = _transformed(crs, WGS84, bounds)
    if box is None:
        return None
    west, south, east, north = box
    return LonLatBounds(west, max(south, -90.0), east, min(north, 90.0))


def in_degrees(crs: CRS, bounds: tuple) -> LonLatBounds | None:
    """``bounds`` in ``crs`` as (west, south, east, north) degrees, a box past 180 degrees
    :func:`wrapped`; None if they cannot be expressed in degrees."""
    box = tuple(bounds) if crs == WGS84 else to_geographic(crs, bounds)
    return None if box is None else wrapped(*box)


def crs_name(crs: CRS) -> str:
    """``EPSG:n`` where the CRS has an EPSG code, else its authority code or a short
    description (for messages)."""
    code = crs.to_epsg()
    if code:
        return f"EPSG:{code}"
    authority = crs.to_authority()
    return ":".join(authority) if authority else "the requested CRS"


def to_bounds(src: CRS, dst: CRS, bounds: tuple) -> Bounds:
    """``bounds`` in ``src`` as a box in ``dst`` (densified edges); :class:`BadRequest`
    when they cannot be expressed there."""
    if src == dst:
        return Bounds(*bounds)
    box = _transformed(src, dst, bounds)
    if box is None:
        raise BadRequest(f"the box {', '.join(f'{v:g}' for v in bounds)} cannot be "
                         f"expressed in {crs_name(dst)}")
    return Bounds(*box)


def to_lonlat(crs: CRS, x: float, y: float) -> tuple[float, float]:
    """The point (x, y) in ``crs`` as (lon, lat); :class:`BadRequest` when it has none."""
    if crs == WGS84:
        return x, y
    try:
        (lon,), (lat,) = transform(crs, WGS84, [x], [y])
    except Exception:
        lon = lat = math.nan
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise BadRequest(f"the point {x:g},{y:g} has no longitude and latitude in "
                         f"{crs_name(crs)}")
    return lon, lat
