"""Algorithms: work on read pixels between reading and rendering (titiler's ``algorithm=``).

An algorithm is a small declared class, as a format is a line of ``formats``: its ``name``
(as in ``algorithm=``), ``title`` and ``description``, its ``parameters`` (a
:class:`Parameter` each: type, default, range; given as ``algorithm_params``, JSON), the
bands it takes and gives (``inputs``, ``outputs``; None: any), the type and range of what it
gives, and its :attr:`Algorithm.buffer`: the pixels around an image its neighbourhood needs
(a slope at a tile's edge needs the data beyond it), which the read adds and the call takes
off again, so that tiles join without seams. Calling one (``algorithm(image)``) is the
post-processing step of :func:`chalicelib.operations.pipeline.draw`;
:meth:`Algorithm.describe` is its entry in ``/algorithms/{id}``, in titiler's shape.

The set and the names are titiler's (``titiler.core.algorithm``), and so is the arithmetic:
the tests compare every algorithm's pixels with titiler's on the same request. Where the
results differ, it is on purpose (see the README): the mask of what was read is kept
(titiler's hillshade and slope make nodata opaque), and the buffer is read rather than
cropped off the tile (titiler's tiles shrink by it unless ``buffer=`` asks for it too).
"""

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..core.errors import BadRequest
from ..core.records import ImageData, Ranges
from . import colormaps

#: JSON types a parameter may have, and the Python types that hold them.
_KINDS: dict[str, tuple[type, ...]] = {"number": (int, float), "integer": (int,)}


@dataclass(frozen=True)
class Parameter:
    """One parameter of an algorithm (given in ``algorithm_params``, JSON). ``nullable``:
    ``null`` (and the default None) is allowed too."""

    name: str
    kind: str  # number or integer
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""
    nullable: bool = False

    def value(self, given: Any) -> Any:
        """``given``, checked; a :class:`BadRequest` naming the parameter otherwise."""
        if given is None and self.nullable:
            return None
        if self.kind == "integer" and isinstance(given, float) and given.is_integer():
            given = int(given)  # 3.0 is an integer in JSON, as pydantic takes it
        if isinstance(given, bool) or type(given) not in _KINDS[self.kind] or (
                isinstance(given, float) and not math.isfinite(given)):
            raise BadRequest(f"algorithm parameter '{self.name}' must be a"
                             f"{'n' if self.kind == 'integer' else ''} {self.kind}"
                             + (" or null" if self.nullable else ""))
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not low <= float(given) <= high:
            raise BadRequest(f"algorithm parameter '{self.name}' must be between {low:g} and "
                             f"{high:g}, got {given:g}")
        return float(given) if self.kind == "number" else given

    def schema(self) -> dict:
        """Its JSON schema, as titiler (pydantic) writes it in ``/algorithms/{id}``."""
        limits = {k: v for k, v in (("maximum", self.maximum), ("minimum", self.minimum))
                  if v is not None}
        title = self.name.replace("_", " ").title()
        described = {"description": self.description} if self.description else {}
        if self.nullable:
            return {"anyOf": [{**limits, "type": self.kind}, {"type": "null"}],
                    "default": self.default, **described, "title": title}
        return {"default": self.default, **described, **limits, "title": title,
                "type": self.kind}


def _gradient_mask(mask: np.ndarray) -> np.ndarray:
    """Where a gradient (``numpy.gradient``: the pixels above, below, left and right) reads
    only valid pixels: those beside a masked pixel are masked too (as titiler's masked
    gradients)."""
    out = mask.copy()
    out[1:, :] &= mask[:-1, :]
    out[:-1, :] &= mask[1:, :]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def _bands(data: np.ndarray, image: ImageData, names: tuple[str, ...],
           mask: np.ndarray | None = None) -> ImageData:
    """A new image of ``data`` where ``image`` was (its mask unless ``mask`` is given)."""
    return ImageData(data, image.mask if mask is None else mask, image.bounds, image.crs,
                     names)


class Algorithm:
    """Base class: subclasses declare what the module docstring lists and :meth:`apply`."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    inputs: ClassVar[int | None] = None
    outputs: ClassVar[int | None] = None
    #: The type of what it gives (None: the input's).
    output_dtype: ClassVar[str | None] = None
    #: The range of what it gives (per band, or one for all), which renders it without
    #: ``rescale``; None: the input's if :attr:`keeps_scale`, else ``rescale`` is needed.
    output_range: ClassVar[Ranges | None] = None
    #: Whether the output is on the input's scale (a minimum, a mean of bands...).
    keeps_scale: ClassVar[bool] = False

    def __init__(self, **given: Any):
        declared = {p.name: p for p in self.parameters}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            takes = ", ".join(declared) or "none"
            raise BadRequest(f"the algorithm '{self.name}' has no parameter '{unknown[0]}' "
                             f"(its parameters: {takes})")
        self.values = {name: p.value(given.get(name, p.default))
                       for name, p in declared.items()}

    @property
    def buffer(self) -> int:
        """Pixels its neighbourhood needs around the output, on each side."""
        return int(self.values.get("buffer") or 0)

    def __call__(self, image: ImageData) -> ImageData:
        bands = image.data.shape[0]
        if self.inputs is not None and bands != self.inputs:
            raise BadRequest(f"the algorithm '{self.name}' takes {self.inputs} band(s), the "
                             f"data read has {bands}: choose them with bidx or an expression")
        out = self.apply(image).cropped(self.buffer)
        if out.data.dtype.kind == "f":
            out.mask = out.mask & np.isfinite(out.data).all(axis=0)
        out.dataset_statistics = self._output_range(image)
        return out

    def _output_range(self, image: ImageData) -> Ranges | None:
        """What the output is stretched by when no ``rescale`` is given."""
        if self.output_range is not None:
            return self.output_range
        if not self.keeps_scale:
            return None
        if image.dataset_statistics:
            return ((min(low for low, _ in image.dataset_statistics),
                     max(high for _, high in image.dataset_statistics)),)
        if image.data.dtype.kind in "iu":
            info = np.iinfo(image.data.dtype)
            return ((float(info.min), float(info.max)),)
        return None

    def apply(self, image: ImageData) -> ImageData:
        """The algorithm itself, on the pixels read with :attr:`buffer` more on each side."""
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict:
        """Its ``/algorithms/{id}`` document, in titiler's shape."""
        low: list | None = None
        high: list | None = None
        if cls.output_range is not None:
            integer = bool(cls.output_dtype) and cls.output_dtype[0] in "iu"  # type: ignore[index]
            low = [int(r[0]) if integer else r[0] for r in cls.output_range]
            high = [int(r[1]) if integer else r[1] for r in cls.output_range]
        return {"title": cls.title, "description": cls.description,
                "inputs": {"nbands": cls.inputs},
                "outputs": {"nbands": cls.outputs, "dtype": cls.output_dtype, "min": low,
                            "max": high},
                "parameters": {p.name: p.schema() for p in cls.parameters}}


# ---- terrain ------------------------------------------------------------------------------

_BUFFER = Parameter("buffer", "integer", 3, 0, 99)
_Z_EXAGGERATION = Parameter("z_exaggeration", "number", 1.0, 1e-6, 1e6)
_NODATA_HEIGHT = Parameter("nodata_height", "number", None, -99999.0, 99999.0, nullable=True)


class HillShade(Algorithm):
    """Shaded relief of a DEM, lit from ``azimuth`` at ``angle_altitude`` degrees (gradients
    per pixel, as titiler: ``z_exaggeration`` scales them)."""

    name, title, description = "hillshade", "Hillshade", "Create hillshade from DEM dataset."
    parameters = (Parameter("azimuth", "integer", 45, 0, 360),
                  Parameter("angle_altitude", "number", 45.0, -90.0, 90.0),
                  _BUFFER, _Z_EXAGGERATION)
    inputs, outputs, output_dtype = 1, 1, "uint8"

    def apply(self, image: ImageData) -> ImageData:
        v = self.values
        x, y = np.gradient(image.data[0].astype("float64"))
        x *= v["z_exaggeration"]
        y *= v["z_exaggeration"]
        slope = np.pi / 2.0 - np.arctan(np.sqrt(x * x + y * y))
        aspect = np.arctan2(-x, y)
        azimuth = np.deg2rad(360.0 - v["azimuth"])
        altitude = np.deg2rad(v["angle_altitude"])
        shaded = (np.sin(altitude) * np.sin(slope)
                  + np.cos(altitude) * np.cos(slope) * np.cos(azimuth - aspect))
        data = 255 * (shaded + 1) / 2
        data[data < 0] = 0
        return _bands(data.astype("uint8")[None], image, ("hillshade",),
                      _gradient_mask(image.mask))


class Slope(Algorithm):
    """Slope in degrees, from the gradients over the pixel size in the image's CRS units."""

    name, title = "slope", "Slope"
    description = "Calculate degrees of slope from DEM dataset."
    parameters = (Parameter("buffer", "integer", 3, 0, 99, "Buffer size for edge effects"),
                  _Z_EXAGGERATION)
    inputs, outputs, output_dtype = 1, 1, "float32"
    output_range = ((0.0, 90.0),)

    def apply(self, image: ImageData) -> ImageData:
        transform = image.transform
        x, y = np.gradient(image.data[0].astype("float64"))
        x *= self.values["z_exaggeration"]
        y *= self.values["z_exaggeration"]
        dx, dy = x / abs(transform.a), y / abs(transform.e)
        slope = np.rad2deg(np.arctan(np.sqrt(dx * dx + dy * dy)))
        return _bands(slope.astype("float32")[None], image, ("slope",),
                      _gradient_mask(image.mask))


class Contours(Algorithm):
    """The DEM coloured by the ``terrain`` colormap from ``minz`` to ``maxz``, with black
    lines every ``increment`` metres, ``thickness`` thick."""

    name, title, description = "contours", "Contours", "Create contours from DEM dataset."
    parameters = (Parameter("increment", "integer", 35, 0, 999),
                  Parameter("thickness", "integer", 1, 0, 10),
                  Parameter("minz", "integer", -12000, -99999, 99999),
                  Parameter("maxz", "integer", 8000, -99999, 99999))
    inputs, outputs, output_dtype = 1, 3, "uint8"

    def apply(self, image: ImageData) -> ImageData:
        v = self.values
        if v["increment"] == 0:
            raise BadRequest("algorithm parameter 'increment' must be above 0 for contours")
        if v["maxz"] <= v["minz"]:
            raise BadRequest("algorithm parameters: 'maxz' must be above 'minz'")
        data = image.data[0].astype("float64")
        scaled = (np.clip(data, v["minz"], v["maxz"]) - v["minz"]) / np.float64(
            v["maxz"] - v["minz"]) * 254 + 1
        table = colormaps.named("terrain")
        rgb = np.moveaxis(table[scaled.astype("uint8"), :3], -1, 0)
        rgb = np.where(data % v["increment"] < v["thickness"], np.uint8(0), rgb)
        return _bands(rgb.astype("uint8"), image, ("contours_r", "contours_g", "contours_b"))


def _fill(height: np.ndarray, image: ImageData, nodata_height: float | None,
          encoded: float | None) -> np.ndarray:
    """The mask after encoding: where ``nodata_height`` is given, masked pixels take its
    ``encoded`` value and become valid (as titiler)."""
    if nodata_height is None:
        return image.mask
    height[~image.mask] = encoded
    return np.ones_like(image.mask)


class Terrarium(Algorithm):
    """Heights as Mapzen Terrarium RGB: ``(R * 256 + G + B / 256) - 32768``."""

    name, title = "terrarium", "Terrarium"
    description = "Encode DEM into RGB (Mapzen Terrarium)."
    parameters = (_NODATA_HEIGHT,)
    inputs, outputs, output_dtype = 1, 3, "uint8"

    def apply(self, image: ImageData) -> ImageData:
        nodata_height = self.values["nodata_height"]
        data = np.clip(image.data[0].astype("float64") + 32768.0, 0.0, 65535.0)
        mask = _fill(data, image, nodata_height, None if nodata_height is None else
                     float(np.clip(nodata_height + 32768.0, 0.0, 65535.0)))
        rgb = np.stack([data / 256, data % 256, (data * 256) % 256]).astype("uint8")
        return _bands(rgb, image, ("terranium_r", "terranium_g", "terranium_b"), mask)


class TerrainRGB(Algorithm):
    """Heights as Mapbox Terrain-RGB: ``baseval + (R * 65536 + G * 256 + B) * interval``."""

    name, title = "terrainrgb", "TerrainRGB"
    description = "Encode DEM into RGB (Mapbox Terrain RGB)."
    parameters = (Parameter("interval", "number", 0.1, 0.0, 1.0),
                  Parameter("baseval", "number", -10000.0, -99999.0, 99999.0), _NODATA_HEIGHT)
    inputs, outputs, output_dtype = 1, 3, "uint8"

    def apply(self, image: ImageData) -> ImageData:
        v = self.values
        if v["interval"] == 0:
            raise BadRequest("algorithm parameter 'interval' must be above 0 for terrainrgb")
        data = np.around((image.data[0].astype("float64") - v["baseval"]) / v["interval"])
        valid = data[image.mask]
        if valid.size and valid.max() - valid.min() > 256 ** 3:
            raise BadRequest(f"the heights span {valid.max() - valid.min():.0f} steps of "
                             f"{v['interval']:g}, more than Terrain-RGB's 256**3: give a "
                             "larger 'interval' in algorithm_params")
        nodata_height = v["nodata_height"]
        mask = _fill(data, image, nodata_height, None if nodata_height is None else
                     (nodata_height - v["baseval"]) / v["interval"])
        with np.errstate(invalid="ignore"):  # masked nodata may be out of int32's range
            steps = np.where(mask, data, 0).astype("int32")
        rgb = np.stack([(steps >> 16) & 0xFF, (steps >> 8) & 0xFF, steps & 0xFF])
        return _bands(rgb.astype("uint8"), image, ("terrain_r", "terrain_g", "terrain_b"),
                      mask)


# ---- bands --------------------------------------------------------------------------------

class NormalizedIndex(Algorithm):
    """``(b2 - b1) / (b2 + b1)`` of the two bands read (NDVI from red, near infrared)."""

    name, title = "normalizedIndex", "Normalized Difference Index"
    description = "Compute normalized difference index from two bands."
    inputs, outputs, output_dtype = 2, 1, "float32"
    output_range = ((-1.0, 1.0),)

    def apply(self, image: ImageData) -> ImageData:
        b1, b2 = image.data[0].astype("float32"), image.data[1].astype("float32")
        with np.errstate(divide="ignore", invalid="ignore"):
            index = (b2 - b1) / (b2 + b1)
        first, second = image.band_names[:2]
        return _bands(index[None], image, (f"({second} - {first}) / ({second} + {first})",),
                      image.band_validity().all(axis=0))


def _luma(image: ImageData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """ITU-R 601-2 luma of the first three bands, and where all three are valid."""
    if image.data.shape[0] < 3:
        raise BadRequest(f"the algorithm '{name}' takes 3 bands (red, green, blue), the "
                         f"data read has {image.data.shape[0]}")
    red, green, blue = image.data[:3].astype("float64")
    return (red * 299 / 1000 + green * 587 / 1000 + blue * 114 / 1000,
            image.band_validity()[:3].all(axis=0))


class Grayscale(Algorithm):
    """Red, green and blue as one grey band (ITU-R 601-2 luma), in the input's type."""

    name, title = "grayscale", "Transform a RGB Image to Grayscale"
    description = "Transform a RGB Image to Grayscale using the ITU-R 601-2 luma."
    outputs, keeps_scale = 1, True

    def apply(self, image: ImageData) -> ImageData:
        luma, valid = _luma(image, self.name)
        return _bands(luma.astype(image.data.dtype)[None], image, ("grayscale",), valid)


class Bitonal(Algorithm):
    """Black and white: 255 where the band (or the luma of three) is above 127, else 0."""

    name, title = "bitonal", "Transform an Image to Bitonal"
    description = ("All values larger than 127 are set to 255 (white), all other values to "
                   "0 (black).")
    outputs, output_dtype = 1, "uint8"

    def apply(self, image: ImageData) -> ImageData:
        count = image.data.shape[0]
        if count not in (1, 3):
            raise BadRequest(f"the algorithm 'bitonal' takes 1 or 3 bands, the data read has "
                             f"{count}")
        values, valid = (image.data[0], image.mask) if count == 1 else _luma(image, self.name)
        return _bands(np.where(values > 127, 255, 0).astype("uint8")[None], image,
                      ("bitonal",), valid)


class _Reduce(Algorithm):
    """One band from all: a reduction along the bands over each pixel's valid bands (numpy's
    masked reductions, as titiler: a band's own nodata is left out)."""

    outputs, keeps_scale = 1, True
    ddof: ClassVar[int | None] = None

    def apply(self, image: ImageData) -> ImageData:
        function = getattr(np.ma, self.name)
        kwargs = {} if self.ddof is None else {"ddof": self.ddof}
        values = np.ma.masked_array(image.data, mask=~image.band_validity())
        with np.errstate(divide="ignore", invalid="ignore"):
            reduced = function(values, axis=0, keepdims=True, **kwargs)
        data = np.ma.getdata(reduced)
        if self.output_dtype:
            data = data.astype(self.output_dtype)
        return _bands(data, image, (self.name,),
                      image.mask & ~np.ma.getmaskarray(reduced)[0])


class Minimum(_Reduce):
    """The least value of the bands, per pixel."""

    name, title, description = "min", "Min", "Return Min values along the `bands` axis."


class Maximum(_Reduce):
    """The greatest value of the bands, per pixel."""

    name, title, description = "max", "Max", "Return Max values along the `bands` axis."


class Median(_Reduce):
    """The median of the bands, per pixel."""

    name, title = "median", "Median"
    description, output_dtype = "Return Median values along the `bands` axis.", "float64"


class Mean(_Reduce):
    """The mean of the bands, per pixel."""

    name, title, description, output_dtype = "mean", "Mean", "Return Mean values.", "float64"


class StandardDeviation(_Reduce):
    """The sample standard deviation of the bands (ddof 1), per pixel."""

    name, title, output_dtype, ddof = "std", "Standard deviation", "float64", 1
    description = "Return the Standard Deviation along the `bands` axis."
    keeps_scale = False


class Variance(_Reduce):
    """The sample variance of the bands (ddof 1), per pixel."""

    name, title, output_dtype, ddof = "var", "Variance", "float64", 1
    description = "Return Variance along the `bands` axis."
    keeps_scale = False


class Sum(_Reduce):
    """The sum of the bands, per pixel (numpy's type: 64-bit for integers)."""

    name, title, description = "sum", "Sum", "Return Sum values along the `bands` axis."
    keeps_scale = False


# ---- types --------------------------------------------------------------------------------

class _ToBytes(Algorithm):
    """Each band as 8-bit values, after :meth:`round` (numpy's wrap-around cast, as
    titiler: values outside 0-255 wrap)."""

    output_dtype, output_range = "uint8", ((0.0, 255.0),)

    def round(self, data: np.ndarray) -> np.ndarray:
        return data

    def apply(self, image: ImageData) -> ImageData:
        with np.errstate(invalid="ignore"):
            data = self.round(image.data).astype("uint8")
        return _bands(data, image, image.band_names)


class Cast(_ToBytes):
    """Each band cast to 8-bit integers."""

    name, title, description = "cast", "Cast data to Integer", "Cast data to Integer."


class Ceil(_ToBytes):
    """Each band rounded up, as 8-bit integers."""

    name, title = "ceil", "Round data to the smallest integer"
    description = "Round data to the smallest integer."

    def round(self, data: np.ndarray) -> np.ndarray:
        return np.ceil(data)


class Floor(_ToBytes):
    """Each band rounded down, as 8-bit integers."""

    name, title = "floor", "Round data to the largest integer"
    description = "Round data to the largest integer."

    def round(self, data: np.ndarray) -> np.ndarray:
        return np.floor(data)


#: The algorithms the API offers, by name, in titiler's order.
ALGORITHMS: dict[str, type[Algorithm]] = {a.name: a for a in (
    HillShade, Slope, Contours, NormalizedIndex, Terrarium, TerrainRGB, Cast, Ceil, Floor,
    Minimum, Maximum, Median, Mean, StandardDeviation, Variance, Sum, Grayscale, Bitonal)}


def named(name: str, params: dict | None = None) -> Algorithm:
    """The algorithm ``name`` with its ``params`` (``algorithm_params``), checked."""
    if name not in ALGORITHMS:
        raise BadRequest(f"unknown algorithm '{name[:32]}'; see /algorithms")
    if params is not None and not isinstance(params, dict):
        raise BadRequest("'algorithm_params' must be a JSON object, e.g. {\"azimuth\": 315}")
    return ALGORITHMS[name](**(params or {}))
