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


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, quantiles) -> list[float]:
    """The values below which ``quantiles`` of the weight lies (rio-tiler's: no
    interpolation)."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order], dtype="float64")
    at = np.searchsorted(cumulative, np.asarray(quantiles) * cumulative[-1])
    return [float(values[order[min(i, order.size - 1)]]) for i in at]


def band_statistics(values: np.ndarray, total: int, percentiles=(2, 98),
                    bins: int | tuple[float, ...] = 10, histogram_range=None,
                    categorical: bool = False,
                    categories: tuple[float, ...] | None = None,
                    weights: np.ndarray | None = None, covered: int | None = None) -> dict:
    """Statistics of the valid ``values`` of one band (``total`` pixels in all), in
    rio-tiler's shape: ``bins`` a number of bins or their edges; ``categorical``: the
    histogram counts each value (or each of ``categories``) instead.

    ``weights`` (one per value, 0 to 1: the part of each pixel a shape covers) weight the
    mean, sum, count, std, median and percentiles, as rio-tiler's ``coverage``; min, max,
    majority, minority and the histogram count pixels. ``covered``: the pixels the shape
    touches, which ``valid_percent`` is a percentage of (default: ``total``)."""
    count = int(values.size)
    of = total if covered is None else covered
    result: dict = {"valid_pixels": count, "masked_pixels": total - count,
                    "valid_percent": round(min(100.0 * count / of, 100.0), 2) if of else 0.0}
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
        "majority": _json_number(keys[key_counts.argmax()]),
        "minority": _json_number(keys[key_counts.argmin()]),
        "unique": int(keys.size),
        "histogram": histogram,
    })
    if weights is not None and weights.sum(dtype="float64") > 0:
        weights = weights.astype("float64", copy=False)
        weight = float(weights.sum())
        mean = float((values * weights).sum() / weight)
        *quantiles, median = _weighted_quantiles(values, weights,
                                                 [p / 100 for p in percentiles] + [0.5])
        result.update(mean=_json_number(mean), sum=_json_number((values * weights).sum()),
                      count=weight, median=_json_number(median), std=_json_number(math.sqrt(
                          float((weights * (values - mean) ** 2).sum() / weight))))
    else:
        quantiles = list(np.percentile(values, percentiles))
        result.update(mean=_json_number(values.mean()), std=_json_number(values.std()),
                      median=_json_number(np.median(values)),
                      sum=_json_number(values.sum()), count=count)
    for p, value in zip(percentiles, quantiles):
        result[f"percentile_{p:g}"] = _json_number(value)
    return result


def _valid_values(image: ImageData,
                  band_masks: Iterable[np.ndarray] | None) -> Iterator[np.ndarray]:
    masks = band_masks if band_masks is not None else (image.mask for _ in image.data)
    return (band[valid] for band, valid in zip(image.data, masks))


def image_statistics(image: ImageData, options: StatisticsOptions = StatisticsOptions(),
                     band_masks: Iterable[np.ndarray] | None = None,
                     coverage: np.ndarray | None = None, covered: int | None = None) -> dict:
    """``{band name: band_statistics}`` of ``image``, each band's valid pixels those of
    ``band_masks`` (default: the image's mask); ``coverage`` (h, w), the part of each pixel
    a shape covers, weights them, and ``covered`` pixels are those the shape touches (those
    it does not touch must be masked already)."""
    total = image.mask.size
    masks = list(band_masks) if band_masks is not None else [image.mask] * len(image.data)
    result = {}
    for i, (name, band, valid) in enumerate(zip(image.band_names, image.data, masks)):
        weights = None if coverage is None else coverage[valid]
        result[_key(i, name)] = {
            **band_statistics(band[valid], total, options.percentiles, options.bins,
                              options.histogram_range, options.categorical,
                              options.categories, weights, covered),
            "description": name}
    return result


_BAND = re.compile(r"b[0-9]+")


def _key(index: int, name: str) -> str:
    """A band's key, as rio-tiler's: its name where it is a file's band (``b1``), else
    ``b{n}`` (a STAC asset's band, an expression's or an algorithm's output: the name is
    its ``description``)."""
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
        # a constant band: a unit wide range, wider where 1.0 is below the float's resolution
        # (low + 1.0 == low above 2**53)
        ranges.append((low, high if high > low else low + max(1.0, abs(low) * 2.0 ** -20)))
    return tuple(ranges)
