"""Catalog mosaics: the items a STAC API search finds, read as one mosaic.

A search (:class:`~chalicelib.sources.stacapi.Search`: a collection's query, or a registered
search) becomes one more :class:`~.mosaic.MosaicIndex`: the files of a tile are the items
the search finds inside the tile's bounds, in the API's order (its ``sortby``), each read as
a STAC item (:class:`~.stac.STACReader`: ``assets``, ``expression`` as for ``/stac``) and
combined by the pixel selection method like any mosaic's files (``first`` stops when the
tile is full). A tile asks the API once per warm container and search (paged, bounded:
:mod:`chalicelib.sources.stacapi`); more than :data:`~.mosaic.MAX_FILES_PER_TILE` items
in one tile is a 400 ("zoom in or narrow the search") unless ``max_items`` takes the first
ones.

Routes: ``/collections/{collection_id}/...`` (titiler-stacapi's shapes: the search in the
query), ``/searches/{search_id}/...`` (titiler-pgstac's: a registered search) and
``/collections/{collection_id}/items/{item_id}/...`` (one item, as ``/stac``).
"""

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ..core.errors import BadRequest, NotARaster
from ..core.geo import MAX_LAT, LonLatBounds
from ..core.memo import Kept
from ..core.records import Selection
from ..core.settings import Settings
from ..sources import datasets, searches, stacapi
from ..sources.allowlist import parse
from ..sources.stacapi import Search, search_from
from .mosaic import MAX_FILES_PER_TILE, MosaicReader
from .stac import Item, STACReader, parse_item

#: Zooms a search serves unless its metadata (or the TileJSON's query) says otherwise, as
#: titiler-pgstac.
MINZOOM, MAXZOOM = 0, 24
WORLD = LonLatBounds(-180.0, -MAX_LAT, 180.0, MAX_LAT)
_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,256}")
ITEMS_KEPT = 4096  # parsed items a warm container keeps (for the tiles that read them)


@dataclass
class SearchIndex:
    """A STAC API search as a :class:`~.mosaic.MosaicIndex`. Its "files" are item keys
    (``collection/id``); :meth:`item` gives the parsed item."""

    search: Search
    config: Settings
    name: str
    bounds: LonLatBounds
    minzoom: int = MINZOOM
    maxzoom: int = MAXZOOM
    center: tuple | None = None
    max_items: int | None = None
    memo: dict = field(default_factory=dict)
    _items: "OrderedDict[str, Item]" = field(default_factory=OrderedDict)
    #: Requests in several threads (chalice local) share a kept index and its items.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _found(self, box: tuple | None, most: int) -> list[str]:
        found, complete = stacapi.items(self.search, box, self.config, most)
        if not complete and self.max_items is None:
            raise BadRequest(f"this area matches more than {most} items of the search: zoom "
                             "in, or narrow the search (bbox, datetime, filter), or take the "
                             "first ones with max_items")
        return self._keys(found)

    def _keys(self, found: list[dict]) -> list[str]:
        """The items' keys, each item parsed and kept for the reads that follow."""
        keys = []
        for document in found:
            collection, item_id = str(document.get("collection") or ""), document.get("id")
            key = f"{collection}/{item_id}"
            with self._lock:
                if key in self._items:  # parsed already (its memo kept)
                    self._items.move_to_end(key)
                    keys.append(key)
                    continue
            url = stacapi.item_url(collection, str(item_id), self.config)
            try:
                self._keep(key, parse_item(document, parse(url)))
            except NotARaster as exc:
                raise NotARaster(f"item {key} of the search: {exc.message}") from None
            keys.append(key)
        return keys

    def _keep(self, key: str, item: Item) -> Item:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > ITEMS_KEPT:
                self._items.popitem(last=False)
        return item

    def files_for(self, box: tuple) -> list[str]:
        return self._found(box, self.max_items or MAX_FILES_PER_TILE)

    def first_file(self) -> str | None:
        """The search's first item (its palette and stretch stand for all)."""
        if "first" not in self.memo:
            found, _ = stacapi.items(self.search, None, self.config, 1)
            self.memo["first"] = self._keys(found[:1])[0] if found else None
        return self.memo["first"]

    def item(self, key: str) -> Item:
        with self._lock:
            found = self._items.get(key)
        if found is not None:
            return found
        collection, _, item_id = key.partition("/")  # pushed out since: asked for again
        document, url = stacapi.item(collection, item_id, self.config)
        return self._keep(key, parse_item(document, parse(url)))

    def display_names(self, keys: list[str]) -> list[str]:
        return list(keys)  # collection/id

    def describe(self) -> dict:
        """The search, and the GeoTIFF assets of its first item (what ``assets=`` names)."""
        first = self.first_file()
        return {"search": self.search.body,
                "assets": list(self.item(first).assets) if first else [],
                **({"max_items": self.max_items} if self.max_items else {})}


#: The indexes of recent searches, kept per warm container for SOURCE_TTL (their parsed
#: items and memos: the first item, its palette and stretch) as documents are.
INDEXES_KEPT = 64
_indexes = Kept(INDEXES_KEPT, lambda: datasets.clock())


def _kept(key: tuple, config: Settings, make) -> SearchIndex:
    index: SearchIndex = _indexes.get((config, *key), config.source_ttl, make)
    return index  # keyed by the settings too: an index reads with those it was made with


def clear() -> None:
    """Forget the kept indexes."""
    _indexes.forget()


def _reader(index: SearchIndex, kind: str) -> MosaicReader:
    return MosaicReader(index, index.config, kind=kind,
                        member=lambda key, config: STACReader(index.item(key), config))


def _extent(collection: dict) -> LonLatBounds | None:
    """A collection's overall spatial extent (its first bbox), None when it has none."""
    try:
        box = collection["extent"]["spatial"]["bbox"][0]
        if len(box) == 6:
            box = [box[0], box[1], box[3], box[4]]
        west, south, east, north = (float(v) for v in box)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return LonLatBounds(west, max(south, -MAX_LAT), east, min(north, MAX_LAT))


def _bounds(search: Search, config: Settings, given=None) -> LonLatBounds:
    """The search's extent: ``given`` (a registered search's metadata), else the union of
    its collections' extents (as the API describes them), within its own bbox."""
    if given is not None:
        return LonLatBounds(*(float(v) for v in given))
    boxes = [_extent(stacapi.collection(c, config)) for c in search.collections]
    known = [b for b in boxes if b is not None]
    bounds = WORLD if not known or len(known) < len(boxes) else LonLatBounds(
        min(b.west for b in known), min(b.south for b in known),
        max(b.east for b in known), max(b.north for b in known))
    if search.bbox is not None:
        w, s, e, n = search.bbox
        bounds = LonLatBounds(max(bounds.west, w), max(bounds.south, s),
                              min(bounds.east, e), min(bounds.north, n))
        if bounds.west > bounds.east or bounds.south > bounds.north:
            raise BadRequest("the search's bbox is outside its collections' extent")
    return bounds


def collection_id(text: str) -> str:
    """``text`` checked as a collection id."""
    if not _NAME.fullmatch(text or ""):
        raise BadRequest("a collection id is letters, digits, '_', '-', '.', ':' (at most 256)")
    return text


def collection_reader(cid: str, fields: dict, config: Settings,
                      max_items: int | None = None) -> MosaicReader:
    """The mosaic of collection ``cid`` searched with ``fields`` (ids, bbox, datetime,
    filter...; titiler-stacapi's query)."""
    cid = collection_id(cid)
    if "collections" in fields:
        raise BadRequest("the collection is the one in the path; 'collections' is not taken")
    search = search_from({**fields, "collections": [cid]})
    index = _kept(("collection", search.text, max_items), config, lambda: SearchIndex(
        search, config, cid, _bounds(search, config), max_items=max_items))
    return _reader(index, f"collections/{cid}")


def search_reader(search_id: str, config: Settings,
                  max_items: int | None = None) -> MosaicReader:
    """The mosaic of the registered search ``search_id``."""
    search, metadata = searches.load(search_id, config)
    index = _kept(("search", search_id, max_items), config, lambda: SearchIndex(
        search, config, str(metadata.get("name") or search_id),
        _bounds(search, config, metadata.get("bounds")), int(metadata.get("minzoom", MINZOOM)),
        int(metadata.get("maxzoom", MAXZOOM)), max_items=max_items))
    return _reader(index, f"searches/{search_id}")


def item_reader(cid: str, item_id: str, config: Settings,
                selection: Selection | None = None) -> STACReader:
    """One item of a collection, read as ``/stac`` reads an item."""
    cid = collection_id(cid)
    if not _NAME.fullmatch(item_id or ""):
        raise BadRequest("an item id is letters, digits, '_', '-', '.', ':' (at most 256)")
    document, url = stacapi.item(cid, item_id, config)
    reader = STACReader(parse_item(document, parse(url)), config, selection)
    reader.kind = f"collections/{cid}/items/{item_id}"
    return reader


METADATA = ("name", "bounds", "minzoom", "maxzoom")


def register(body: dict, config: Settings) -> tuple[str, Search]:
    """``POST /searches/register``: a STAC search body, with an optional ``metadata``
    (name, bounds, minzoom, maxzoom), kept; its id."""
    if not isinstance(body, dict):
        raise BadRequest("the body is a STAC search (a JSON object)")
    fields = dict(body)
    metadata = fields.pop("metadata", None) or {}
    if not isinstance(metadata, dict):
        raise BadRequest("'metadata' is a JSON object (name, bounds, minzoom, maxzoom)")
    unknown = sorted(set(metadata) - set(METADATA))
    if unknown:
        raise BadRequest(f"unknown metadata field(s): {', '.join(unknown)} (taken: "
                         + ", ".join(METADATA) + ")")
    search = search_from(fields)
    if not search.collections:
        raise BadRequest("name the search's 'collections' (a list of collection ids)")
    kept = _metadata(metadata)
    for cid in search.collections:
        stacapi.collection(cid, config)  # 404 for a collection the catalog lacks
    return searches.register(search, kept, config), search


def _metadata(metadata: dict) -> dict:
    kept: dict = {}
    if "name" in metadata:
        if not isinstance(metadata["name"], str) or len(metadata["name"]) > 256:
            raise BadRequest("'metadata.name' is a string (at most 256 characters)")
        kept["name"] = metadata["name"]
    if "bounds" in metadata:
        kept["bounds"] = list(search_from({"bbox": metadata["bounds"]}).bbox or ())
    for name, default in (("minzoom", MINZOOM), ("maxzoom", MAXZOOM)):
        value = metadata.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 30:
            raise BadRequest(f"'metadata.{name}' is a zoom level from 0 to 30")
        if name in metadata:
            kept[name] = value
    if kept.get("minzoom", MINZOOM) > kept.get("maxzoom", MAXZOOM):
        raise BadRequest("'metadata.minzoom' is above 'metadata.maxzoom'")
    return kept


def collection_for(url: str | None, config: Settings,
                   selection: Selection | None = None) -> MosaicReader:
    """A seed event's ``collections`` source: ``url`` names the collection."""
    return collection_reader(url or "", {}, config)


def search_for(url: str | None, config: Settings,
               selection: Selection | None = None) -> MosaicReader:
    """A seed event's ``searches`` source: ``url`` is the search id."""
    return search_reader(url or "", config)
