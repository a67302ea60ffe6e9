"""Statistics of read pixels: per band min, max, mean, percentiles and histogram
(``/statistics``), and the percentile ranges that stretch non-8-bit data for display.

Every source computes them here, from an :class:`~chalicelib.core.records.ImageData` and,
where a band's validity differs from the image's (a file's nodata is per band), one mask per
band.
"""

import math
import re
from collections.abc import Iterable, Iterator

import numpy as np

from ..core.records import ImageData, Ranges, StatisticsOptions


def _json_number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _histogram(values: np.ndarray, bins: int | tuple[float, ...], histogram_range) -> tuple:
    """numpy's histogram of the finite values; one bin where their range is too narrow to
    split in float64 (all values equal and huge, as ``b1**b1`` makes)."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    try:
        return np.histogram(finite, bins=bins, range=histogram_range)
    except ValueError:
        low, high = histogram_range or ((finite.min(), finite.max()) if finite.size else (0, 0))
        inside = finite[(finite >= low) & (finite <= high)]
        return np.array([inside.size]), np.array([low, high], "float64")


def band_statistics(values: np.ndarray, total: int, percentiles=(2, 98),
                    bins: int | tuple[float, ...] = 10, histogram_range=None,
                    categorical: bool = False,
                    categories: tuple[float, ...] | None = None) -> dict:
    """Statistics of the valid ``values`` of one band (``total`` pixels in all), in
    rio-tiler's shape: ``bins`` a number of bins or their edges; ``categorical``: the
    histogram counts each value (or each of ``categories``) instead."""
    count = int(values.size)
    result: dict = {"valid_pixels": count, "masked_pixels": total - count,
                    "valid_percent": round(100.0 * count / total, 2) if total else 0.0}
    if count == 0:
        result.update({k: None for k in ("min", "max", "mean", "std", "median", "sum",
                                         "majority", "minority")})
        result.update({f"percentile_{p:g}": None for p in percentiles})
        result.update(count=0, unique=0, histogram=[[], []])
        return result
    keys, key_counts = np.unique(values, return_counts=True)
    values = values.astype("float64", copy=False)
    if categorical:
        wanted = np.array(categories, "float64") if categories else keys.astype("float64")
        found = dict(zip(keys.astype("float64").tolist(), key_counts.tolist()))
        histogram = [[found.get(k, 0) for k in wanted.tolist()],
                     [_json_number(k) for k in wanted]]
    else:
        counts, edges = _histogram(values, bins, histogram_range)
        histogram = [counts.tolist(), [_json_number(e) for e in edges]]
    result.update({
        "min": _json_number(values.min()), "max": _json_number(values.max()),
        "mean": _json_number(values.mean()), "std": _json_number(values.std()),
        "median": _json_number(np.median(values)), "sum": _json_number(values.sum()),
        "count": count,
        "majority": _json_number(keys[key_counts.argmax()]),
        "minority": _json_number(keys[key_counts.argmin()]),
        "unique": int(keys.size),
        "histogram": histogram,
    })
    for p, value in zip(percentiles, np.percentile(values, percentiles)):
        result[f"percentile_{p:g}"] = _json_number(value)
    return result


def _valid_values(image: ImageData,
                  band_masks: Iterable[np.ndarray] | None) -> Iterator[np.ndarray]:
    masks = band_masks if band_masks is not None else (image.mask for _ in image.data)
    return (band[valid] for band, valid in zip(image.data, masks))


def image_statistics(image: ImageData, options: StatisticsOptions = StatisticsOptions(),
                     band_masks: Iterable[np.ndarray] | None = None) -> dict:
    """``{band name: band_statistics}`` of ``image``, each band's valid pixels those of
    ``band_masks`` (default: the image's mask)."""
    total = image.mask.size
    return {_key(i, name): {**band_statistics(values, total, options.percentiles, options.bins,
                                              options.histogram_range, options.categorical,
                                              options.categories), "description": name}
            for i, (name, values) in enumerate(zip(image.band_names,
                                                   _valid_values(image, band_masks)))}


_BAND = re.compile(r"(?:[A-Za-z0-9_.\-:]+_)?b[0-9]+")


def _key(index: int, name: str) -> str:
    """A band's key, as rio-tiler's: its name where it is a band (``b1``, ``visual_b2``),
    else ``b{n}`` (an expression's or an algorithm's output; the name is its
    ``description``)."""
    return name if _BAND.fullmatch(name) else f"b{index + 1}"


def percentile_ranges(image: ImageData,
                      band_masks: Iterable[np.ndarray] | None = None) -> Ranges:
    """(2nd, 98th) percentile of each band's valid values (min-max when those are equal):
    the dataset statistics that stretch data which is not 8-bit."""
    ranges = []
    for values in _valid_values(image, band_masks):
        if values.size == 0:
            ranges.append((0.0, 1.0))
            continue
        low, high = (float(v) for v in np.percentile(values, (2, 98)))
        if not high > low:
            low, high = float(values.min()), float(values.max())
        ranges.append((low, high if high > low else low + 1.0))
    return tuple(ranges)
