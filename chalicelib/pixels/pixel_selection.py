"""How the files of a mosaic make one pixel: one small class per method.

A method is fed each file's pixels in the mosaic's priority order, ``feed(data, valid)``
with ``data`` (bands, h, w) and ``valid`` per band (or broadcastable to it), says when it
needs no more files (``done``), and gives the mosaic's pixels (``result``: data and
per-pixel validity). The names are titiler's / rio-tiler's (``pixel_selection=``); a new
method is one class here plus its entry in :data:`METHODS`.
"""

from __future__ import annotations  # np.ma in signatures: numpy.ma (10 ms) loads on use

from typing import ClassVar

import numpy as np


class PixelSelection:
    """Base class: ``name`` as in ``pixel_selection=``; the docstring says what it keeps."""

    name: ClassVar[str]
    #: The output holds the files' own values: their palette and stretch apply to it.
    keeps_values: ClassVar[bool] = True
    #: The first file alone is often all that is needed (read it before the others).
    first_alone: ClassVar[bool] = False

    def feed(self, data: np.ndarray, valid: np.ndarray) -> None:
        raise NotImplementedError

    @property
    def done(self) -> bool:
        """Whether more files could change nothing."""
        return False

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(data, per-pixel validity)."""
        raise NotImplementedError

    def band_names(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The output's band names where it has not as many bands as the files (whose
        band names are ``names``)."""
        return names


class _Replace(PixelSelection):
    """Methods that keep one file's value per pixel, replacing the ``kept`` value by the
    next file's where ``take`` says."""

    def __init__(self) -> None:
        self.data: np.ndarray | None = None
        self.valid: np.ndarray | None = None

    def take(self, data: np.ndarray, valid: np.ndarray, kept: np.ndarray,
             kept_valid: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def feed(self, data: np.ndarray, valid: np.ndarray) -> None:
        valid = np.broadcast_to(valid, data.shape)
        if self.data is None or self.valid is None:
            self.data, self.valid = data.copy(), valid.copy()
            return
        take = self.take(data, valid, self.data, self.valid)
        self.data = np.where(take, data, self.data)
        self.valid = np.where(take, valid, self.valid)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.data is not None and self.valid is not None
        return self.data, self.valid.any(axis=0)


class First(_Replace):
    """The first valid value, in the mosaic's order (reading stops once every pixel is
    filled)."""

    name = "first"
    first_alone = True

    def take(self, data, valid, kept, kept_valid):
        return ~kept_valid & valid

    @property
    def done(self) -> bool:
        return self.valid is not None and bool(self.valid.all())


class Highest(_Replace):
    """The highest value."""

    name = "highest"

    def take(self, data, valid, kept, kept_valid):
        return ((data > kept) & valid) | ~kept_valid


class Lowest(_Replace):
    """The lowest value."""

    name = "lowest"

    def take(self, data, valid, kept, kept_valid):
        return ((data < kept) & valid) | ~kept_valid


class _LastBand(_Replace):
    """The last band decides for the whole pixel, and is left out of the output."""

    def better(self, last: np.ndarray, mine: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def take(self, data, valid, kept, kept_valid):
        better = self.better(data[-1], kept[-1])
        return np.broadcast_to((better & valid[-1]) | ~kept_valid[-1], data.shape)

    def result(self):
        data, valid = super().result()
        return (data[:-1] if data.shape[0] > 1 else data), valid

    def band_names(self, names):
        return names[:-1]


class LastBandLow(_LastBand):
    """The file whose last band is lowest."""

    name = "lastbandlow"

    def better(self, last, mine):
        return last < mine


class LastBandHigh(_LastBand):
    """The file whose last band is highest."""

    name = "lastbandhigh"

    def better(self, last, mine):
        return last > mine


class _Stack(PixelSelection):
    """Methods over every file's value at a pixel (all files are read)."""

    def __init__(self) -> None:
        self.stack: list[np.ma.MaskedArray] = []

    def feed(self, data: np.ndarray, valid: np.ndarray) -> None:
        self.stack.append(np.ma.MaskedArray(data, ~np.broadcast_to(valid, data.shape)))

    def reduce(self, stacked: np.ma.MaskedArray, dtype: np.dtype) -> np.ma.MaskedArray:
        raise NotImplementedError

    def result(self):
        with np.errstate(all="ignore"):
            out = self.reduce(np.ma.stack(self.stack), self.stack[0].dtype)
        return np.ma.getdata(out), ~np.ma.getmaskarray(out).all(axis=0)


class Mean(_Stack):
    """The mean of the valid values."""

    name = "mean"

    def reduce(self, stacked, dtype):
        return stacked.mean(axis=0).astype(dtype)


class Median(_Stack):
    """The median of the valid values."""

    name = "median"

    def reduce(self, stacked, dtype):
        return np.ma.median(stacked, axis=0).astype(dtype)


class Stdev(_Stack):
    """The standard deviation of the valid values."""

    name = "stdev"

    def reduce(self, stacked, dtype):
        return stacked.std(axis=0)


class Count(_Stack):
    """How many files have a valid value (one band)."""

    name = "count"
    keeps_values = False

    def result(self):
        counts = np.ma.stack(self.stack)[:, 0].count(axis=0)
        dtype = np.uint8 if len(self.stack) < 256 else np.uint16
        return counts[None].astype(dtype), np.ones(counts.shape, bool)

    def band_names(self, names):
        return ("count",)


#: Every method by name, in the order the API lists them.
METHODS: dict[str, type[PixelSelection]] = {m.name: m for m in (
    First, Highest, Lowest, Mean, Median, Stdev, LastBandLow, LastBandHigh, Count)}
