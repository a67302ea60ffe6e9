"""GeoJSON shapes on grids: features read from a request body, checked and bounded,
carried between CRSs, and drawn onto an image's grid (the pixels a shape touches, the part
of each pixel it covers).

A request body is a GeoJSON Feature or FeatureCollection (RFC 7946) whose geometries are
areas: Polygon or MultiPolygon. Everything a user can get wrong is a 400 naming the
feature (``feature 3: ...``): the shape of the document, rings that are not closed,
coordinates that are not finite numbers, degrees out of range. What one request may cost
is bounded: :data:`MAX_FEATURES` features, :data:`MAX_VERTICES` vertices in all.

A polygon that crosses the antimeridian (RFC 7946 splits it at 180 degrees into a
MultiPolygon whose parts touch +180 and -180) is joined again: its western parts move
by 360 degrees east, so that its box is the few degrees it spans, not the whole world.

>>> s = shapes_of({"type": "Feature", "properties": {"id": 1}, "geometry": {
...     "type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]]}})
>>> s.collection, s.shapes[0].bounds
(False, Bounds(left=0.0, bottom=0.0, right=2.0, top=1.0))
"""

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from ..core.errors import BadRequest, TooLarge
from ..core.geo import WGS84, Bounds, crs_name, to_bounds

#: Most features one request may hold (each is read on its own).
MAX_FEATURES = 100
#: Most vertices of all the request's geometries together (a detailed country border has
#: tens of thousands).
MAX_VERTICES = 200_000
#: Most sub-pixel samples one shape's coverage may take (the outline's pixels x cover_scale²).
MAX_COVERAGE_CELLS = 512 * 1024 ** 2
AREAS = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class Shape:
    """One feature's area: its geometry (a Polygon or MultiPolygon, as GeoJSON) in the CRS
    its coordinates are in, and its box there."""

    geometry: dict
    bounds: Bounds
    #: The feature's place in the request (0 for a lone Feature), for messages.
    index: int = 0

    def where(self) -> str:
        return f"feature {self.index}"

    def vertices(self) -> int:
        return sum(len(ring) for polygon in _polygons(self.geometry) for ring in polygon)

    def in_crs(self, src: CRS, dst: CRS) -> "Shape":
        """This shape with its coordinates carried from ``src`` into ``dst``."""
        if src == dst:
            return self
        try:
            geometry = transform_geom(src, dst, self.geometry)
        except Exception:  # PROJ refuses points outside the target's domain
            raise BadRequest(f"{self.where()}: its coordinates cannot be expressed in "
                             f"{crs_name(dst)}") from None
        return Shape(geometry, _bounds(geometry, self.where()), self.index)

    def box_in(self, src: CRS, dst: CRS) -> Bounds:
        """The shape's box (in ``src``) as a box in ``dst`` (densified edges), as rio-tiler
        bounds a feature's read."""
        try:
            return to_bounds(src, dst, self.bounds)
        except BadRequest as exc:
            raise BadRequest(f"{self.where()}: {exc.message}") from None


@dataclass(frozen=True)
class Shapes:
    """What a request body holds: its shapes, and how to answer (the features as sent,
    each with what the answer adds to its properties)."""

    shapes: tuple[Shape, ...]
    features: tuple[dict, ...]
    collection: bool
    document: dict

    def answer(self, properties: list[dict]) -> dict:
        """The request's document with ``properties[i]`` added to feature i's properties:
        a Feature for a Feature, a FeatureCollection for a collection (as titiler)."""
        features = [{**feature, "properties": {**(feature.get("properties") or {}), **extra}}
                    for feature, extra in zip(self.features, properties)]
        if not self.collection:
            return features[0]
        return {**self.document, "features": features}


def _polygons(geometry: dict) -> list:
    coordinates = geometry["coordinates"]
    return [coordinates] if geometry["type"] == "Polygon" else list(coordinates)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def _ring(ring: object, where: str) -> list[tuple[float, float]]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise BadRequest(f"{where}: a ring is a list of at least 4 positions (the first "
                         "repeated at the end)")
    points = []
    for position in ring:
        if not (isinstance(position, list) and 2 <= len(position) <= 3
                and all(map(_number, position))):
            raise BadRequest(f"{where}: a position is [x, y] (or [x, y, z]) of finite "
                             f"numbers, got {str(position)[:60]}")
        points.append((float(position[0]), float(position[1])))
    if points[0] != points[-1]:
        raise BadRequest(f"{where}: a ring must end where it starts (GeoJSON's rings are "
                         "closed)")
    return points


def _geometry(geometry: object, where: str) -> dict:
    """A checked Polygon or MultiPolygon, its positions as (x, y) tuples."""
    if not isinstance(geometry, dict) or not isinstance(geometry.get("type"), str):
        raise BadRequest(f"{where}: 'geometry' must be a GeoJSON geometry object")
    kind = geometry["type"]
    if kind not in AREAS:
        raise BadRequest(f"{where}: the geometry is a {kind[:40]}; statistics and images of "
                         "a shape need an area: a Polygon or a MultiPolygon")
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons or not all(
            isinstance(p, list) and p for p in polygons):
        raise BadRequest(f"{where}: a {kind}'s coordinates are "
                         + ("a list of rings" if kind == "Polygon"
                            else "a list of polygons, each a list of rings"))
    checked = [[_ring(ring, where) for ring in polygon] for polygon in polygons]
    return {"type": kind, "coordinates": checked[0] if kind == "Polygon" else checked}


def _bounds(geometry: dict, where: str) -> Bounds:
    xs = [x for polygon in _polygons(geometry) for ring in polygon for x, _ in ring]
    ys = [y for polygon in _polygons(geometry) for ring in polygon for _, y in ring]
    bounds = Bounds(min(xs), min(ys), max(xs), max(ys))
    if not all(map(math.isfinite, bounds)):
        raise BadRequest(f"{where}: its coordinates cannot be expressed in the output CRS")
    if not (bounds.right > bounds.left and bounds.top > bounds.bottom):
        raise BadRequest(f"{where}: the shape has no area (its box is "
                         f"{bounds.right - bounds.left:g} x {bounds.top - bounds.bottom:g})")
    return bounds


def _joined_at_antimeridian(geometry: dict) -> dict:
    """A MultiPolygon split at 180 degrees (parts touching +180 and -180), its western parts
    moved 360 degrees east; any other geometry as it is."""
    if geometry["type"] != "MultiPolygon":
        return geometry
    polygons = geometry["coordinates"]
    spans = [(min(x for x, _ in p[0]), max(x for x, _ in p[0])) for p in polygons]
    if not (any(east == 180 for _, east in spans) and any(west == -180 for west, _ in spans)):
        return geometry
    moved = [[[(x + 360, y) for x, y in ring] for ring in polygon] if east <= 0 else polygon
             for polygon, (_, east) in zip(polygons, spans)]
    return {"type": "MultiPolygon", "coordinates": moved}


def _check_degrees(geometry: dict, where: str) -> None:
    for polygon in _polygons(geometry):
        for ring in polygon:
            for x, y in ring:
                if not (-180 <= x <= 360 and -90 <= y <= 90):  # east of 180: across it
                    raise BadRequest(f"{where}: ({x:g}, {y:g}) is not a longitude and "
                                     "latitude; give coord_crs if the coordinates are in "
                                     "another CRS")


def shapes_of(document: object, crs: CRS = WGS84) -> Shapes:
    """The shapes of a request body (a Feature or a FeatureCollection), checked; their
    coordinates are in ``crs``."""
    if not isinstance(document, dict) or document.get("type") not in (
            "Feature", "FeatureCollection"):
        kind = document.get("type") if isinstance(document, dict) else type(document).__name__
        hint = (" (wrap a geometry as {\"type\": \"Feature\", \"geometry\": ..., "
                "\"properties\": {}})" if kind in AREAS else "")
        raise BadRequest("the body must be a GeoJSON Feature or FeatureCollection, got "
                         f"{str(kind)[:40]}{hint}")
    collection = document["type"] == "FeatureCollection"
    features = document.get("features") if collection else [document]
    if not isinstance(features, list) or not features:
        raise BadRequest("the FeatureCollection's 'features' must be a non-empty list")
    if len(features) > MAX_FEATURES:
        raise TooLarge(f"the FeatureCollection has {len(features)} features; one request "
                       f"takes at most {MAX_FEATURES}: send them in several requests")
    shapes, vertices = [], 0
    geographic = crs.is_geographic
    for index, feature in enumerate(features):
        where = f"feature {index}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise BadRequest(f"{where}: each item of 'features' must be a GeoJSON Feature")
        properties = feature.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise BadRequest(f"{where}: 'properties' must be an object or null")
        geometry = _geometry(feature.get("geometry"), where)
        if geographic:
            _check_degrees(geometry, where)
            geometry = _joined_at_antimeridian(geometry)
        shape = Shape(geometry, _bounds(geometry, where), index)
        vertices += shape.vertices()
        if vertices > MAX_VERTICES:
            raise TooLarge(f"the request's geometries have more than {MAX_VERTICES} vertices "
                           "(the most one request takes): simplify them or send fewer")
        shapes.append(shape)
    return Shapes(tuple(shapes), tuple(features), collection, document)


def touched(shape: Shape, transform: Affine, width: int, height: int) -> np.ndarray:
    """(height, width) True where ``shape`` (in the grid's CRS) touches the pixel (any part
    of it, as rio-tiler's feature mask)."""
    if not width or not height:
        return np.zeros((height, width), bool)
    mask: np.ndarray = rasterize([(shape.geometry, 1)], out_shape=(height, width),
                                 transform=transform, all_touched=True, fill=0,
                                 dtype="uint8").astype(bool)
    return mask


def _boundary(shape: Shape) -> dict:
    """The shape's rings as one MultiLineString (its outline)."""
    return {"type": "MultiLineString",
            "coordinates": [ring for polygon in _polygons(shape.geometry) for ring in polygon]}


def coverage(shape: Shape, transform: Affine, width: int, height: int,
             scale: int = 10, inside: np.ndarray | None = None) -> np.ndarray:
    """(height, width) float32: the part of each pixel ``shape`` covers (0 to 1), from a
    ``scale`` x ``scale`` sampling of each pixel: a sub-pixel counts where its centre is in
    the shape (so the estimate has no bias, error ~ 1/scale on edge pixels only).

    Only the pixels the outline crosses are sampled: a pixel the shape touches and its
    outline does not is wholly inside (1). So the cost follows the outline's length, not
    the shape's area. ``inside``: :func:`touched` of the same grid, if the caller has it."""
    if inside is None:
        inside = touched(shape, transform, width, height)
    result = inside.astype(np.float32)
    if not inside.any():
        return result
    edges = rasterize([(_boundary(shape), 1)], out_shape=(height, width), transform=transform,
                      all_touched=True, fill=0, dtype="uint8").astype(bool) & inside
    samples = int(edges.sum()) * scale * scale
    if samples > MAX_COVERAGE_CELLS:
        raise TooLarge(f"cover_scale={scale} over the {int(edges.sum())} pixels the outline "
                       f"crosses is {samples / 1e9:.1f} billion samples (at most "
                       f"{MAX_COVERAGE_CELLS / 1e9:.1f}): lower cover_scale, simplify the "
                       "shape or ask for fewer pixels (max_size)")
    fine = transform @ Affine.scale(1 / scale)
    # windows of outline pixels: a few rows, runs of columns joined across small gaps (one
    # rasterize call costs about as much as sampling a few thousand pixels); finer scales
    # take fewer rows and gaps, so that what is sampled stays close to the outline's pixels
    strip, gap = max(1, min(32, 320 // scale)), max(1, 1280 // scale)
    widest = max(1, _WINDOW_SAMPLES // (strip * scale * scale))
    for top in range(0, height, strip):
        rows = edges[top:top + strip]
        columns = np.flatnonzero(rows.any(axis=0))
        if not columns.size:
            continue
        n = rows.shape[0]
        breaks = np.flatnonzero(np.diff(columns) > gap)
        for first, last in zip(np.r_[columns[0], columns[breaks + 1]],
                               np.r_[columns[breaks], columns[-1]]):
            for left in range(int(first), int(last) + 1, widest):
                w = min(widest, int(last) + 1 - left)
                crossed = rows[:, left:left + w]
                if not crossed.any():
                    continue
                samples = rasterize(
                    [(shape.geometry, 1)], out_shape=(n * scale, w * scale),
                    transform=fine @ Affine.translation(left * scale, top * scale),
                    all_touched=False, fill=0, dtype="uint8")
                window = result[top:top + n, left:left + w]
                window[crossed] = (_per_pixel(samples, n, w, scale)
                                   / (scale * scale))[crossed]
    return result


#: Most sub-pixel samples one rasterize call of :func:`coverage` makes (a byte each).
_WINDOW_SAMPLES = 16 * 1024 * 1024


def _per_pixel(strip: np.ndarray, rows: int, width: int, scale: int) -> np.ndarray:
    """The sub-pixels set in each pixel of a (rows x scale, width x scale) strip: its rows of
    sub-pixels added first (contiguous, in 16 bits), then each pixel's columns (a strided
    sum over both axes at once is several times slower)."""
    lines = strip.reshape(rows, scale, width * scale).sum(axis=1, dtype=np.uint16)
    columns = lines.reshape(rows, width, scale)
    if scale > 32:
        counted: np.ndarray = columns.sum(axis=2, dtype=np.uint32)
        return counted
    total = columns[..., 0].astype(np.uint32)
    for k in range(1, scale):
        total += columns[..., k]
    return total
