"""Statistics of read pixels: per band min, max, mean, percentiles and histogram
(``/statistics``), and the percentile ranges that stretch non-8-bit data for display.

Every source computes them here, from an :class:`~chalicelib.core.records.ImageData` and,
where a band's validity differs from the image's (a file's nodata is per band), one mask per
band.
"""

import math
from collections.abc import Iterable, Iterator

import numpy as np

from ..core.records import ImageData, Ranges, StatisticsOptions


def _json_number(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _histogram(values: np.ndarray, bins: int, histogram_range) -> tuple:
    """numpy's histogram of the finite values; one bin where their range is too narrow to
    split in float64 (all values equal and huge, as ``b1**b1`` makes)."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    try:
        return np.histogram(finite, bins=bins, range=histogram_range)
    except ValueError:
        low, high = histogram_range or ((finite.min(), finite.max()) if finite.size else (0, 0))
        inside = finite[(finite >= low) & (finite <= high)]
        return np.array([inside.size]), np.array([low, high], "float64")


def band_statistics(values: np.ndarray, total: int, percentiles=(2, 98), bins: int = 10,
                    histogram_range=None) -> dict:
    """Statistics of the valid ``values`` of one band (``total`` pixels in all)."""
    count = int(values.size)
    result: dict = {"valid_pixels": count, "masked_pixels": total - count,
                    "valid_percent": round(100.0 * count / total, 2) if total else 0.0}
    if count == 0:
        result.update({k: None for k in ("min", "max", "mean", "std", "median", "sum")})
        result.update({f"percentile_{p:g}": None for p in percentiles})
        result["histogram"] = [[], []]
        return result
    values = values.astype("float64", copy=False)
    counts, edges = _histogram(values, bins, histogram_range)
    result.update({
        "min": _json_number(values.min()), "max": _json_number(values.max()),
        "mean": _json_number(values.mean()), "std": _json_number(values.std()),
        "median": _json_number(np.median(values)), "sum": _json_number(values.sum()),
        "count": count,
        "histogram": [counts.tolist(), [_json_number(e) for e in edges]],
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
    return {name: band_statistics(values, total, options.percentiles, options.bins,
                                  options.histogram_range)
            for name, values in zip(image.band_names, _valid_values(image, band_masks))}


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
