"""``color_formula``: rio-color's language of colour operations, in numpy.

A formula is a chain of operations, each a name, the bands it works on (not for saturation)
and its numbers, as in ``Gamma RGB 1.5 Sigmoidal RG 10 0.35 Saturation 1.2`` (commas are
optional; names and bands in any case; bands as letters ``r g b`` or digits ``1 2 3``):

* ``gamma BANDS g``: ``v ** (1 / g)``, g > 0;
* ``sigmoidal BANDS contrast bias``: sigmoidal contrast around ``bias`` (0 to 1);
* ``saturation proportion``: the chroma of the first three bands times ``proportion``, in
  the CIE LCh colour space.

Each operation works on values 0 to 1 (8-bit values / 255) and its result is scaled back
to 8 bits, truncated, as titiler's (``color-operations``, whose arithmetic this follows);
the formula comes after ``rescale`` and before a colormap. Saturation is vectorised here
(the package loops per pixel in compiled code): no new compiled dependency.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.errors import BadRequest

_EPSILON = float(np.finfo(np.float64).eps)
_BANDS = {"r": 1, "g": 2, "b": 3}
#: Each operation's numbers, by name.
_ARGUMENTS = {"gamma": ("g",), "sigmoidal": ("contrast", "bias"), "saturation": ("proportion",)}
MAX_OPERATIONS = 16


@dataclass(frozen=True)
class Operation:
    """One step of a formula: ``name``, the 1-based ``bands`` it works on, its numbers."""

    name: str
    bands: tuple[int, ...]
    numbers: tuple[float, ...]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """``values`` (bands, h, w) floats 0 to 1, with this step applied."""
        out = values.copy()
        if self.name == "saturation":
            if values.shape[0] < 3:
                raise BadRequest("color_formula: saturation works on red, green and blue, "
                                 f"the image has {values.shape[0]} band(s)")
            out[:3] = _saturation(values[:3], self.numbers[0])
            return out
        function: Callable = _gamma if self.name == "gamma" else _sigmoidal
        for band in self.bands:
            if band > values.shape[0]:
                raise BadRequest(f"color_formula: {self.name} names band {band}, the image "
                                 f"has {values.shape[0]}")
            out[band - 1] = function(values[band - 1], *self.numbers)
        return out


def parse(text: str) -> tuple[Operation, ...]:
    """The operations of ``text``; a :class:`BadRequest` saying what is wrong otherwise."""
    tokens = text.replace(",", " ").lower().split()
    groups: list[list[str]] = []
    for token in tokens:
        if token in _ARGUMENTS:
            groups.append([token])
        elif not groups:
            raise BadRequest(f"color_formula must start with an operation (gamma, sigmoidal, "
                             f"saturation), got {token[:20]!r}")
        else:
            groups[-1].append(token)
    if not groups:
        raise BadRequest("color_formula is empty: e.g. 'gamma rgb 1.5 saturation 1.2'")
    if len(groups) > MAX_OPERATIONS:
        raise BadRequest(f"color_formula has more than {MAX_OPERATIONS} operations")
    return tuple(_operation(group) for group in groups)


def _operation(group: list[str]) -> Operation:
    name, rest = group[0], group[1:]
    bands: tuple[int, ...] = (1, 2, 3)
    if name != "saturation":
        if not rest:
            raise BadRequest(f"color_formula: {name} needs bands (e.g. rgb) and numbers")
        bands = tuple(sorted({_band(c, name) for c in rest[0]}))
        rest = rest[1:]
    wanted = _ARGUMENTS[name]
    if len(rest) != len(wanted):
        raise BadRequest(f"color_formula: {name} takes {len(wanted)} number(s) "
                         f"({', '.join(wanted)}), got {len(rest)}")
    numbers = []
    for word in rest:
        try:
            number = float(word)
        except ValueError:
            raise BadRequest(f"color_formula: {name} takes numbers, got {word[:20]!r}") from None
        if not math.isfinite(number):
            raise BadRequest(f"color_formula: {name} takes finite numbers")
        numbers.append(number)
    if name == "gamma" and numbers[0] <= 0:
        raise BadRequest("color_formula: gamma must be greater than 0")
    if name == "sigmoidal" and not -_EPSILON <= numbers[1] <= 1 + _EPSILON:
        raise BadRequest("color_formula: the sigmoidal bias must be between 0 and 1")
    return Operation(name, bands, tuple(numbers))


def _band(character: str, name: str) -> int:
    band = _BANDS.get(character) or (int(character) if character.isdigit() else 0)
    if not 1 <= band <= 3:
        raise BadRequest(f"color_formula: {name} bands are r, g, b (or 1, 2, 3), got "
                         f"{character!r}")
    return band


def apply(values: np.ndarray, operations: tuple[Operation, ...]) -> np.ndarray:
    """``values`` (bands, h, w; integers) through ``operations``, as 8-bit values."""
    if values.dtype.kind not in "ui":
        raise BadRequest("color_formula works on integer values: add rescale=min,max for "
                         f"{values.dtype} data")
    out = np.clip(values, 0, None)
    for operation in operations:
        scaled = out.astype(np.float64) / np.iinfo(out.dtype).max
        with np.errstate(all="ignore"):
            out = (operation(scaled) * 255).astype(np.uint8)
    return out


# ---- the operations, as color-operations computes them ------------------------------------

def _gamma(values: np.ndarray, g: float) -> np.ndarray:
    return values ** (1.0 / g)


def _sigmoidal(values: np.ndarray, contrast: float, bias: float) -> np.ndarray:
    alpha, beta = (bias or _EPSILON), contrast
    if beta == 0:
        return values
    if beta > 0:
        low = 1 / (1 + np.exp(beta * alpha))
        numerator = 1 / (1 + np.exp(beta * (alpha - values))) - low
        denominator = 1 / (1 + np.exp(beta * (alpha - 1))) - low
        return numerator / denominator
    inner = (values / (1 + np.exp(beta * alpha - beta)) - values / (1 + np.exp(beta * alpha))
             + 1 / (1 + np.exp(beta * alpha)))
    return (beta * alpha - np.log(1 / inner - 1)) / beta


# CIE constants as color-operations uses them (D65 white, sRGB companding)
_DELTA = 6.0 / 29
_T0 = _DELTA ** 3
_ALPHA = (_DELTA ** -2) / 3
_INTERCEPT = 4.0 / 29
_XN, _ZN = 0.95047, 1.08883


def _saturation(rgb: np.ndarray, proportion: float) -> np.ndarray:
    """RGB -> XYZ -> Lab -> LCh, chroma times ``proportion``, and back, clipped to 0-1."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    r, g, b = linear
    x = (r * 0.4124564 + g * 0.3575761 + b * 0.1804375) / _XN
    y = r * 0.2126729 + g * 0.7151522 + b * 0.0721750
    z = (r * 0.0193339 + g * 0.1191920 + b * 0.9503041) / _ZN
    fx, fy, fz = (np.where(t > _T0, np.abs(t) ** (1.0 / 3), _ALPHA * t + _INTERCEPT)
                  for t in (x, y, z))
    lightness = 116 * fy - 16
    a, b_ = 500 * (fx - fy), 200 * (fy - fz)
    chroma, hue = (a * a + b_ * b_) ** 0.5 * proportion, np.arctan2(b_, a)
    a, b_ = chroma * np.cos(hue), chroma * np.sin(hue)
    ty = (lightness + 16) / 116.0
    tx, tz = ty + a / 500.0, ty - b_ / 200.0
    x, y, z = (np.where(t > _DELTA, t ** 3, 3 * _DELTA * _DELTA * (t - _INTERCEPT))
               for t in (tx, ty, tz))
    x, z = x * _XN, z * _ZN
    linear = np.stack([x * 3.2404542 + y * -1.5371385 + z * -0.4985314,
                       x * -0.9692660 + y * 1.8760108 + z * 0.0415560,
                       x * 0.0556434 + y * -0.2040259 + z * 1.0572252])
    with np.errstate(invalid="ignore"):
        out = np.where(linear <= 0.0031308, 12.92 * linear,
                       1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(out, 0.0, 1.0)

