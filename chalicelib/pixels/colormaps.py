"""Colormaps: named 256-entry lookup tables, and user colormaps given as JSON.

A colormap is one of:

* a lookup table, ``ndarray (256, 4) uint8``: applied to uint8 values (after rescale);
* discrete, ``{value: (r, g, b, a)}``: pixels equal to a value get its colour, others are
  transparent;
* intervals, ``[((min, max), (r, g, b, a)), ...]``: ``min <= value < max``.
"""

import json
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core.errors import BadRequest

_TABLES = Path(__file__).resolve().parent / "colormaps.npz"
MAX_ENTRIES = 4096
_HEX = re.compile(r"#(?:[0-9a-fA-F]{2}){3,4}")


@lru_cache(maxsize=1)
def _tables() -> dict[str, np.ndarray]:
    with np.load(_TABLES) as data:
        return {name: data[name] for name in data.files}


@lru_cache(maxsize=1)
def _stored() -> tuple[str, ...]:
    """The archive's table names, read from its directory: the parameter declarations list
    them when the app loads, and most cold starts never need a table."""
    with np.load(_TABLES) as data:
        return tuple(sorted(data.files))


@lru_cache(maxsize=1)
def base_names() -> tuple[str, ...]:
    """The colormaps, without their reversals (each also exists as ``<name>_r``)."""
    return tuple(n for n in _stored() if not n.endswith("_r"))


@lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """Every accepted ``colormap_name``: rio-tiler's (titiler's) names, and the ``_r``
    reversal of each."""
    return tuple(sorted({*_stored(), *(n + "_r" for n in base_names())}))


def named(name: str) -> np.ndarray:
    """The (256, 4) uint8 table for ``name`` (case-insensitive, ``_r`` for reversed: the
    table rio-tiler ships for it, else the base table turned around)."""
    key = name.strip().lower()
    tables = _tables()
    table = tables.get(key)
    if table is None and key.endswith("_r") and key[:-2] in tables:
        table = tables[key[:-2]][::-1]
    if table is None:
        raise BadRequest(f"unknown colormap_name '{name[:40]}'; choose one of: "
                         + ", ".join(base_names()) + " (add _r to reverse)")
    return table


def _colour(value) -> tuple[int, int, int, int]:
    if isinstance(value, str) and _HEX.fullmatch(value):
        value = [int(value[i:i + 2], 16) for i in range(1, len(value), 2)]
    if not isinstance(value, (list, tuple)) or len(value) not in (3, 4) or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and 0 <= c <= 255
            for c in value):
        raise BadRequest("colormap colours must be [r, g, b] or [r, g, b, a] with values "
                         "0-255, or '#rrggbb'")
    r, g, b, a = [int(round(c)) for c in value] + [255] * (4 - len(value))
    return r, g, b, a


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"colormap keys must be numbers, got {str(value)[:20]!r}") from None
    if math.isnan(number):
        raise BadRequest("colormap keys must be numbers, not NaN")
    return number


def parse(text: str):
    """Parse a ``colormap=`` JSON value into a discrete dict or an interval list."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("'colormap' is not valid JSON; give {\"value\": [r, g, b, a], ...} "
                         "or [[[min, max], [r, g, b, a]], ...]") from None
    if isinstance(value, dict) and value:
        if len(value) > MAX_ENTRIES:
            raise BadRequest(f"'colormap' has more than {MAX_ENTRIES} entries")
        return {_number(k): _colour(v) for k, v in value.items()}
    if isinstance(value, list) and value:
        if len(value) > MAX_ENTRIES:
            raise BadRequest(f"'colormap' has more than {MAX_ENTRIES} entries")
        intervals = []
        for item in value:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list)
                    and len(item[0]) == 2):
                raise BadRequest("interval colormaps are [[[min, max], [r, g, b, a]], ...]")
            intervals.append(((_number(item[0][0]), _number(item[0][1])), _colour(item[1])))
        return intervals
    raise BadRequest("'colormap' must be a non-empty JSON object or list")


def from_dataset(palette: dict) -> np.ndarray:
    """A paletted file's own colormap (rasterio's ``{index: (r, g, b, a)}``) as a table."""
    table = np.zeros((256, 4), dtype="uint8")
    for index, rgba in palette.items():
        if 0 <= index < 256:
            table[index] = rgba
    return table


def apply(values: np.ndarray, cmap) -> tuple[np.ndarray, np.ndarray]:
    """Colour one band. Returns RGBA ``(4, h, w)`` uint8 and a validity mask from the alpha."""
    if isinstance(cmap, np.ndarray):
        index = values if values.dtype == np.uint8 else np.clip(values, 0, 255).astype("uint8")
        rgba = np.moveaxis(cmap[index], -1, 0)
    else:
        bounds, colours = _lookup(cmap)
        # the segment each value falls in: O(pixels x log(entries)), not pixels x entries
        segment = np.searchsorted(bounds, values, side="right") - 1
        if isinstance(cmap, dict):  # a value matches its key exactly
            found = np.clip(segment, 0, len(bounds) - 1)
            inside = (segment >= 0) & (bounds[found] == values)
        else:
            found = np.clip(segment, 0, len(colours) - 1)
            inside = (segment >= 0) & (segment < len(colours))
        rgba = np.moveaxis(np.where(inside[..., None], colours[found], 0).astype("uint8"),
                           -1, 0)
    return rgba, rgba[3] > 0


def _lookup(cmap) -> tuple[np.ndarray, np.ndarray]:
    """(bounds, colours) for a vectorised lookup. Discrete: sorted keys and their colours.
    Intervals: the sorted distinct edges and the colour of each segment between two edges,
    the last interval that covers it winning (as if painted in order)."""
    if isinstance(cmap, dict):
        keys = sorted(cmap)
        return (np.array(keys, dtype="float64"),
                np.array([cmap[k] for k in keys], dtype="uint8").reshape(-1, 4))
    edges = np.unique(np.array([edge for (low, high), _ in cmap for edge in (low, high)],
                               dtype="float64"))
    colours = np.zeros((max(len(edges) - 1, 1), 4), dtype="uint8")
    for (low, high), colour in cmap:
        start, stop = np.searchsorted(edges, [low, high])
        colours[start:stop] = colour
    return edges, colours
