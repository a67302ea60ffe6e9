"""MosaicJSON as a mosaic index: many GeoTIFFs listed under Web Mercator quadkeys.

A MosaicJSON 0.0.3 document (https://github.com/developmentseed/mosaicjson-spec) lists, for
each quadkey at ``quadkey_zoom``, the files that cover it, in priority order. The files of a
box (a tile of any tile matrix set, by its longitude and latitude bounds, or a point) are
those of the quadkeys it overlaps. :class:`MosaicJSON` is one
:class:`~.mosaic.MosaicIndex`; :mod:`chalicelib.jobs.mosaics` builds such documents.
"""

import math
from dataclasses import dataclass, field

import mercantile

from ..core.errors import BadRequest, NotARaster
from ..core.geo import MAX_LAT, LonLatBounds, lon_spans
from ..core.records import Selection
from ..core.settings import Settings
from ..sources import documents
from ..sources.allowlist import Source, display_name, parse
from .mosaic import MosaicReader

#: Most quadkeys one tile may look up (a low zoom over a deep index).
MAX_QUADKEYS_PER_TILE = 4096


@dataclass(frozen=True)
class MosaicJSON:
    """A parsed MosaicJSON document, as a :class:`~.mosaic.MosaicIndex`."""

    name: str
    minzoom: int
    maxzoom: int
    quadkey_zoom: int
    bounds: LonLatBounds
    center: tuple | None
    tiles: dict  # quadkey -> tuple of source strings (resolved against the document)
    memo: dict = field(default_factory=dict, compare=False)

    def files_for(self, box: tuple) -> list[str]:
        """The files of the quadkeys that overlap ``box`` (degrees), in priority order."""
        west, south, east, north = box
        south, north = max(south, -MAX_LAT), min(north, MAX_LAT)
        if south > north:
            return []
        z = self.quadkey_zoom
        spans = lon_spans(west, east)
        count = 0
        for w, e in spans:
            ul, lr = mercantile.tile(w, north, z), mercantile.tile(min(e, 179.9999999), south, z)
            count += (lr.x - ul.x + 1) * (lr.y - ul.y + 1)
        if count > MAX_QUADKEYS_PER_TILE:
            raise BadRequest(f"this area covers {count} quadkeys of the mosaic: zoom in (the "
                             f"mosaic starts at zoom {self.minzoom})")
        found: dict[str, None] = {}
        # a tile that only touches a quadkey's edge does not need it (a point does)
        epsilon = 1e-9 if north - south > 1e-6 else 0.0
        for w, e in spans:
            inset = epsilon if e - w > 1e-6 else 0.0
            for t in mercantile.tiles(w + inset, south + epsilon, e - inset,
                                      north - epsilon, [z]):
                for url in self.tiles.get(mercantile.quadkey(t), ()):
                    found[url] = None
        return list(found)

    def first_file(self) -> str | None:
        return next((files[0] for files in self.tiles.values() if files), None)

    def display_names(self, files: list[str]) -> list[str]:
        return [display_name(parse(u)) for u in files]

    def describe(self) -> dict:
        return {"quadkey_zoom": self.quadkey_zoom, "quadkeys": len(self.tiles),
                "files": len({u for files in self.tiles.values() for u in files})}


def _zoom(document: dict, name: str, default=None) -> int:
    value = document.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 30:
        raise NotARaster(f"the MosaicJSON's '{name}' must be a zoom level from 0 to 30")
    return value


def parse_mosaic(document: dict, source: Source) -> MosaicJSON:
    """The parts of a MosaicJSON document this tiler uses; :class:`NotARaster` if the
    document is not one."""
    tiles = document.get("tiles")
    if "mosaicjson" not in document or not isinstance(tiles, dict):
        raise NotARaster("the source is not a MosaicJSON document ('mosaicjson' and 'tiles')")
    minzoom, maxzoom = _zoom(document, "minzoom"), _zoom(document, "maxzoom")
    quadkey_zoom = _zoom(document, "quadkey_zoom", minzoom)
    if minzoom > maxzoom:
        raise NotARaster("the MosaicJSON's minzoom is above its maxzoom")
    index = {}
    for quadkey, files in tiles.items():
        if not (isinstance(quadkey, str) and len(quadkey) == quadkey_zoom
                and set(quadkey) <= set("0123")) or not isinstance(files, list):
            raise NotARaster(f"the MosaicJSON's tiles must map quadkeys of zoom "
                             f"{quadkey_zoom} to lists of files")
        index[quadkey] = tuple(documents.href(source, f) for f in files)
    box = document.get("bounds", [-180, -90, 180, 90])
    if not (isinstance(box, list) and len(box) == 4 and all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
        raise NotARaster("the MosaicJSON's bounds must be [west, south, east, north]")
    center = document.get("center")
    name = document.get("name") or display_name(source)
    return MosaicJSON(str(name), minzoom, maxzoom, quadkey_zoom,
                      LonLatBounds(*(float(v) for v in box)),
                      tuple(center) if isinstance(center, list) else None, index)


def reader_for(url: str | None, config: Settings,
               selection: Selection | None = None) -> MosaicReader:
    """The mosaic of the MosaicJSON document at ``url`` (allow-listed, cached)."""
    return MosaicReader(documents.load(url, config, parse_mosaic, "a MosaicJSON document"),
                        config, kind="mosaicjson")
