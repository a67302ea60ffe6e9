"""Tile matrix sets (OGC 2D TileMatrixSet 2.0): the grids that tiles are cut from.

The definitions are data, ``chalicelib/grids/tms/<id>.json``, written from morecantile by
``scripts/make_tilematrixsets.py`` (morecantile stays a development dependency and the
tests' oracle); the tile math is here, over rasterio's CRS and ``transform_bounds``, so the
Lambda package carries no pyproj or pydantic. A set is loaded the first time it is used.

Coordinates are in the set's CRS in rasterio's order (x = easting or longitude first), also
for CRSs whose official axis order is northing first (EPSG:4326, EPSG:3035...): the OGC
documents give points in the official order, which ``x_first`` in the index resolves.

>>> wmq = get("WebMercatorQuad")
>>> [round(v) for v in wmq.xy_bounds(1, 0, 0)]
[-20037508, 0, 0, 20037508]
"""

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from rasterio.crs import CRS

from ..core.errors import BadRequest, NotFound
from ..core.geo import Bounds, LonLatBounds, to_geographic

DATA = Path(__file__).resolve().parent / "tms"
#: Zoom levels past a set's last matrix are derived, up to this one, for sets whose levels
#: all scale by the same factor (WebMercatorQuad defines 0-24; 25-30 follow from it).
MAX_ZOOM = 30
DEFAULT = "WebMercatorQuad"
EARTH_RADIUS = 6378137.0

with open(DATA / "index.json", encoding="utf-8") as _file:
    INDEX: dict[str, dict] = json.load(_file)
#: Every set's identifier, as in URLs (``/cog/tiles/{tileMatrixSetId}/...``).
IDS: tuple[str, ...] = tuple(sorted(INDEX))


@dataclass(frozen=True)
class TileMatrix:
    """One zoom level: ``origin`` is the corner tiles count from, in x-first order."""

    zoom: int
    cell_size: float
    scale_denominator: float
    origin: tuple[float, float]
    top_left: bool
    tile_width: int
    tile_height: int
    matrix_width: int
    matrix_height: int
    #: Rows whose tiles are ``factor`` columns wide: (min_row, max_row, factor).
    coalesce: tuple[tuple[int, int, int], ...] = ()

    def coalesce_factor(self, row: int) -> int:
        for low, high, factor in self.coalesce:
            if low <= row <= high:
                return factor
        return 1


def _matrix(item: dict, x_first: bool) -> TileMatrix:
    first, second = item["pointOfOrigin"]
    return TileMatrix(
        zoom=int(item["id"]), cell_size=item["cellSize"],
        scale_denominator=item["scaleDenominator"],
        origin=(first, second) if x_first else (second, first),
        top_left=item.get("cornerOfOrigin", "topLeft") == "topLeft",
        tile_width=item["tileWidth"], tile_height=item["tileHeight"],
        matrix_width=item["matrixWidth"], matrix_height=item["matrixHeight"],
        coalesce=tuple((v["minTileRow"], v["maxTileRow"], v["coalesce"])
                       for v in item.get("variableMatrixWidths", ())))


class TileMatrixSet:
    """A tile matrix set: its matrices, its CRS, and the tile math over them."""

    def __init__(self, tms_id: str, definition: dict, entry: dict):
        self.id = tms_id
        self.title: str = entry["title"]
        self.definition = definition  # the OGC document, served by /tileMatrixSets/{id}
        self.crs_uri: str = entry["uri"]
        self.crs_urn: str = entry["urn"]
        self._crs_text: str = entry["crs"]
        self.x_first: bool = entry["x_first"]  # the CRS's first axis is easting/longitude
        self.matrices = tuple(sorted((_matrix(m, entry["x_first"])
                                      for m in definition["tileMatrices"]),
                                     key=lambda m: m.zoom))
        self._by_zoom = {m.zoom: m for m in self.matrices}
        self.minzoom = self.matrices[0].zoom
        self.maxzoom = self.matrices[-1].zoom  # the last level the set defines
        ratios = {round(b.scale_denominator / a.scale_denominator, 2)
                  for a, b in zip(self.matrices, self.matrices[1:])}
        self.variable = any(m.coalesce for m in self.matrices)
        self._ratio = ratios.pop() if len(ratios) == 1 and not self.variable else None
        #: The deepest zoom a tile may ask for (derived levels included).
        self.deepest = MAX_ZOOM if self._ratio else self.maxzoom

    def __repr__(self) -> str:
        return f"<TileMatrixSet {self.id}>"

    @cached_property
    def crs(self) -> CRS:
        return CRS.from_user_input(self._crs_text)

    @cached_property
    def is_geographic(self) -> bool:
        return bool(self.crs.is_geographic)

    @cached_property
    def is_web_mercator(self) -> bool:
        return self._crs_text == "EPSG:3857"

    @cached_property
    def extent(self) -> Bounds:
        """(left, bottom, right, top) of the whole set, in its CRS."""
        m = self.matrices[0]
        first = self.xy_bounds(m.zoom, 0, 0)
        last = self.xy_bounds(m.zoom, m.matrix_width - 1, m.matrix_height - 1)
        return Bounds(min(first[0], last[0]), min(first[1], last[1]), max(first[2], last[2]),
                      max(first[3], last[3]))

    @cached_property
    def is_world_grid(self) -> bool:
        """A grid whose x is longitude or proportional to it (geographic, Mercator): data
        that crosses 180 degrees has to be split at it."""
        return self.is_geographic or self._crs_text in ("EPSG:3857", "EPSG:3395")

    @cached_property
    def geographic_extent(self) -> LonLatBounds:
        """The set's extent in longitude and latitude (the whole globe if unknown)."""
        if self.is_geographic:
            left, bottom, right, top = self.extent
            return LonLatBounds(max(left, -180.0), max(bottom, -90.0), min(right, 180.0),
                                min(top, 90.0))
        return to_geographic(self.crs, self.extent) or LonLatBounds(-180.0, -90.0, 180.0, 90.0)

    def matrix(self, zoom: int) -> TileMatrix:
        """The matrix of ``zoom``; past the last defined level, derived as morecantile does."""
        found = self._by_zoom.get(zoom)
        if found is not None:
            return found
        if self._ratio is None or not self.maxzoom < zoom <= MAX_ZOOM:
            raise BadRequest(f"zoom {zoom} is not a level of {self.id} "
                             f"({self.minzoom} to {self.deepest})")
        derived = self._by_zoom[self.maxzoom]
        factor = 1 / self._ratio
        while derived.zoom != zoom:
            matrix = derived
            derived = TileMatrix(
                zoom=matrix.zoom + 1, cell_size=matrix.cell_size / factor,
                scale_denominator=matrix.scale_denominator / factor, origin=matrix.origin,
                top_left=matrix.top_left, tile_width=matrix.tile_width,
                tile_height=matrix.tile_height,
                matrix_width=int(matrix.matrix_width * factor),
                matrix_height=int(matrix.matrix_height * factor))
            self._by_zoom.setdefault(derived.zoom, derived)  # each level derived once
        return derived

    def xy_bounds(self, z: int, x: int, y: int) -> Bounds:
        """(left, bottom, right, top) of a tile in the set's CRS. In rows of coalesced
        tiles, ``x`` names the tile that covers that column (as morecantile)."""
        m = self.matrix(z)
        factor = m.coalesce_factor(y)
        origin_x, origin_y = m.origin
        column = math.floor(x / factor)
        left = origin_x + column * m.cell_size * factor * m.tile_width
        right = origin_x + (column + 1) * m.cell_size * factor * m.tile_width
        if m.top_left:
            top = origin_y - y * m.cell_size * m.tile_height
            bottom = origin_y - (y + 1) * m.cell_size * m.tile_height
        else:
            bottom = origin_y + y * m.cell_size * m.tile_height
            top = origin_y + (y + 1) * m.cell_size * m.tile_height
        return Bounds(left, bottom, right, top)

    def geographic_bounds(self, z: int, x: int, y: int) -> LonLatBounds | None:
        """(west, south, east, north) in degrees of a tile, poles and the antimeridian
        included (west > east when it crosses 180 degrees); None where the CRS cannot be
        expressed in longitude and latitude."""
        left, bottom, right, top = self.xy_bounds(z, x, y)
        if self.is_web_mercator:
            to_lon = 180.0 / (math.pi * EARTH_RADIUS)
            return LonLatBounds(left * to_lon,
                                math.degrees(math.atan(math.sinh(bottom / EARTH_RADIUS))),
                                right * to_lon,
                                math.degrees(math.atan(math.sinh(top / EARTH_RADIUS))))
        if self.is_geographic:
            return LonLatBounds(max(left, -180.0), max(bottom, -90.0), min(right, 180.0),
                                min(top, 90.0))
        return to_geographic(self.crs, (left, bottom, right, top))

    def tile_range(self, z: int, bounds: tuple[float, ...]) -> tuple[int, int, int, int] | None:
        """(min_col, min_row, max_col, max_row) of the tiles of ``z`` that overlap
        ``bounds`` (in the set's CRS), clipped to the matrix; None when none does."""
        m = self.matrix(z)
        left, bottom, right, top = bounds
        span_x, span_y = m.cell_size * m.tile_width, m.cell_size * m.tile_height
        origin_x, origin_y = m.origin
        eps = 1e-9
        min_col = math.floor((left - origin_x) / span_x + eps)
        max_col = math.ceil((right - origin_x) / span_x - eps) - 1
        if m.top_left:
            min_row = math.floor((origin_y - top) / span_y + eps)
            max_row = math.ceil((origin_y - bottom) / span_y - eps) - 1
        else:
            min_row = math.floor((bottom - origin_y) / span_y + eps)
            max_row = math.ceil((top - origin_y) / span_y - eps) - 1
        min_col, min_row = max(min_col, 0), max(min_row, 0)
        max_col, max_row = min(max_col, m.matrix_width - 1), min(max_row, m.matrix_height - 1)
        if min_col > max_col or min_row > max_row:
            return None
        return min_col, min_row, max_col, max_row

    def tiles(self, z: int, bounds: tuple[float, ...]) -> Iterator[tuple[int, int]]:
        """(x, y) of every tile of ``z`` overlapping ``bounds`` (in the set's CRS); one per
        coalesced group of columns."""
        found = self.tile_range(z, bounds)
        if found is None:
            return
        min_col, min_row, max_col, max_row = found
        m = self.matrix(z)
        for row in range(min_row, max_row + 1):
            factor = m.coalesce_factor(row)
            for col in range(min_col // factor * factor, max_col + 1, factor):
                yield col, row

    def zoom_for_cell_size(self, cell_size: float) -> int:
        """The first zoom whose cells are no larger than ``cell_size`` (within 0.7 %,
        so that data at a level's exact resolution gets that level); ``deepest`` if none."""
        limit = cell_size * 2 ** 0.01
        for zoom in range(self.minzoom, self.deepest + 1):
            if self.matrix(zoom).cell_size <= limit:
                return zoom
        return self.deepest

    def zoom_for_extent(self, extent: float, maxzoom: int) -> int:
        """The deepest zoom (at most ``maxzoom``) whose single tile still spans ``extent``
        (CRS units): where the whole image first fits one tile."""
        best = self.minzoom
        for zoom in range(self.minzoom, maxzoom + 1):
            m = self.matrix(zoom)
            if m.cell_size * min(m.tile_width, m.tile_height) >= extent:
                best = zoom
        return best

    def summary(self, base_url: str) -> dict:
        """The set's entry in ``/tileMatrixSets`` (as titiler and OGC API Tiles list them)."""
        return {"id": self.id, "title": self.title, "crs": self.crs_uri, "links": [{
            "href": f"{base_url}/tileMatrixSets/{self.id}",
            "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
            "type": "application/json", "title": f"Definition of {self.id}"}]}


@cache
def get(tms_id: str) -> TileMatrixSet:
    """The set called ``tms_id`` (exactly as listed by ``/tileMatrixSets``)."""
    entry = INDEX.get(tms_id)
    if entry is None:
        raise NotFound(f"unknown tile matrix set '{str(tms_id)[:60]}'; see /tileMatrixSets "
                       f"for the {len(IDS)} available, e.g. {DEFAULT}")
    with open(DATA / f"{tms_id}.json", encoding="utf-8") as file:
        return TileMatrixSet(tms_id, json.load(file), entry)
