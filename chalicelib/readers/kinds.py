"""The kinds of source, one entry each: a new kind is one line here plus its reader.

A kind names its route family (``/cog/...``) and how a reader is opened from a ``url``
(after the allow-list check, inside the reader). Every opener takes the request's selection,
which tells a STAC item which assets matter (for zoom levels and footprints); the others
ignore it. Readers of multi-file kinds are imported on first use, off the single-file path.
"""

from collections.abc import Callable
from importlib import import_module
from typing import NamedTuple

from ..core.errors import BadRequest
from ..core.records import Selection
from ..core.settings import Settings
from .protocol import Reader


class SourceKind(NamedTuple):
    """One kind of source."""

    name: str  # the path prefix of its routes and the ``source`` of a seed event
    what: str  # "the raster", for summaries
    module: str  # the module under chalicelib.readers whose ``opener`` opens it
    opener: str = "reader_for"

    @property
    def open(self) -> Callable[..., Reader]:
        return getattr(import_module(f"{__package__}.{self.module}"), self.opener)


KINDS: dict[str, SourceKind] = {kind.name: kind for kind in (
    SourceKind("cog", "the raster", "cog"),
    SourceKind("stac", "the STAC item", "stac"),
    SourceKind("mosaicjson", "the mosaic", "mosaicjson"),
    SourceKind("collections", "the collection's search", "catalog", "collection_for"),
    SourceKind("searches", "the registered search", "catalog", "search_for"),
)}


def open_reader(kind: str, url: str | None, config: Settings,
                selection: Selection | None = None) -> Reader:
    """The reader for ``url`` as a source of ``kind``; ``selection``: what the request reads."""
    found = KINDS.get(kind)
    if found is None:
        raise BadRequest("the source kind is one of: " + ", ".join(KINDS))
    return found.open(url, config, selection)
