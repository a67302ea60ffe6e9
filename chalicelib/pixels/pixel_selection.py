"""How the files of a mosaic make one pixel: one small class per method.

A method is fed each file's pixels in the mosaic's priority order, ``feed(data, valid)``
with ``data`` (bands, h, w) and ``valid`` per band (or broadcastable to it), says when it
needs no more files (``done``), and gives the mosaic's pixels (``result``: data and
per-pixel validity). The names are titiler's / rio-tiler's (``pixel_selection=``); a new
method is one class here plus its entry in :data:`METHODS`.
"""

from typing import ClassVar

import numpy as np

from ..core import budget


class PixelSelection:
    """Base class: ``name`` as in ``pixel_selection=``; the docstring says what it keeps."""

    name: ClassVar[str]
    #: The output holds the files' own values: their palette and stretch apply to it.
    keeps_values: ClassVar[bool] = True
    #: The first file alone is often all that is needed (read it before the others).
    first_alone: ClassVar[bool] = False
    #: Every file's pixels are kept until the result (else they are folded in as fed).
    holds_inputs: ClassVar[bool] = False

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
            budget.current().charge(data.nbytes + valid.size, "the mosaic's result")
            self.data, self.valid = data.copy(), valid.copy()
            return
        take = self.take(data, valid, self.data, self.valid)
        np.copyto(self.data, data, where=take)
        np.copyto(self.valid, valid, where=take)

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


class _Running(PixelSelection):
    """Methods over every file's value at a pixel (all files are read), kept as running
    sums per pixel and band, so that memory does not grow with the number of files."""

    def __init__(self) -> None:
        self.dtype: np.dtype | None = None
        self.count: np.ndarray | None = None  # valid values per pixel and band

    #: Bytes of running state per value (besides the count).
    state_bytes: ClassVar[int] = 0

    def feed(self, data: np.ndarray, valid: np.ndarray) -> None:
        valid = np.broadcast_to(valid, data.shape)
        if self.count is None:
            budget.current().charge((2 + self.state_bytes) * data.size,
                                    f"the {self.name} of the mosaic's files")
            self.dtype = data.dtype
            self.count = np.zeros(data.shape, np.uint16)
            self.start(data.shape)
        self.count += valid
        self.add(data, valid)

    def start(self, shape: tuple[int, ...]) -> None:
        """Make the running state for images of ``shape``."""

    def add(self, data: np.ndarray, valid: np.ndarray) -> None:
        """Fold one file's values in (``self.count`` already counts them)."""

    def _valid(self) -> np.ndarray:
        assert self.count is not None
        return (self.count > 0).any(axis=0)

    def _per_value(self, total: np.ndarray) -> np.ndarray:
        """``total`` divided by the count of valid values (0 where there is none)."""
        assert self.count is not None
        with np.errstate(all="ignore"):
            return np.divide(total, self.count, out=np.zeros_like(total),
                             where=self.count > 0)


class Mean(_Running):
    """The mean of the valid values."""

    name = "mean"
    state_bytes = 8

    def start(self, shape):
        self.total = np.zeros(shape, np.float64)

    def add(self, data, valid):
        np.add(self.total, data, out=self.total, where=valid)

    def result(self):
        assert self.dtype is not None
        return self._per_value(self.total).astype(self.dtype), self._valid()


class Stdev(_Running):
    """The (population) standard deviation of the valid values, by Welford's update (no
    loss of precision for large values of small spread)."""

    name = "stdev"
    state_bytes = 16

    def start(self, shape):
        self.mean = np.zeros(shape, np.float64)
        self.squares = np.zeros(shape, np.float64)  # sum of squared differences to the mean

    def add(self, data, valid):
        assert self.count is not None
        delta = np.subtract(data, self.mean, dtype=np.float64)
        np.add(self.mean, delta / np.maximum(self.count, 1), out=self.mean, where=valid)
        delta *= np.subtract(data, self.mean, dtype=np.float64)
        np.add(self.squares, delta, out=self.squares, where=valid)

    def result(self):
        # float64, as numpy.ma's of masked values
        return np.sqrt(self._per_value(self.squares)), self._valid()


class Count(_Running):
    """How many files have a valid value (one band)."""

    name = "count"
    keeps_values = False

    def result(self):
        assert self.count is not None
        counts = self.count[0]
        dtype = np.uint8 if counts.max(initial=0) < 256 else np.uint16
        return counts[None].astype(dtype), np.ones(counts.shape, bool)

    def band_names(self, names):
        return ("count",)


class Median(PixelSelection):
    """The median of the valid values (of the two middle ones, their mean). Every file's
    values are kept until the end, in one array sorted in place per pixel."""

    name = "median"
    holds_inputs = True

    def __init__(self) -> None:
        self.inputs: list[tuple[np.ndarray, np.ndarray]] = []

    def feed(self, data: np.ndarray, valid: np.ndarray) -> None:
        self.inputs.append((data, valid))

    def result(self):
        data, _ = self.inputs[0]
        dtype = data.dtype
        # the inputs move into the stack one by one: one more input's worth at most
        budget.current().charge(data.nbytes + 2 * data.size, "the median's sorted stack")
        # invalid values become the largest the type holds: sorted after every valid one
        # (a valid value equal to it is the same number), the first ``count`` are the valid
        fill = np.inf if dtype.kind == "f" else np.iinfo(dtype).max
        stack = np.empty((len(self.inputs), *data.shape), dtype)
        count = np.zeros(data.shape, np.uint16)
        for i in range(len(self.inputs)):
            values, valid = self.inputs[i]
            valid = np.broadcast_to(valid, values.shape)
            np.copyto(stack[i], values)
            stack[i][~valid] = fill
            count += valid
            self.inputs[i] = None  # type: ignore[call-overload]  # held once, in the stack
        stack.sort(axis=0)
        low = np.take_along_axis(stack, ((np.maximum(count, 1) - 1) // 2)[None], 0)[0]
        high = np.take_along_axis(stack, (count // 2).clip(0, len(stack) - 1)[None], 0)[0]
        del stack
        median = np.where(count % 2 == 1, low, (low.astype(np.float64) + high) / 2)
        median[count == 0] = 0
        return median.astype(dtype), (count > 0).any(axis=0)


#: Every method by name, in the order the API lists them.
METHODS: dict[str, type[PixelSelection]] = {m.name: m for m in (
    First, Highest, Lowest, Mean, Median, Stdev, LastBandLow, LastBandHigh, Count)}
