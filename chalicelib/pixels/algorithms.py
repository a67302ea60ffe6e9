"""Algorithms: work on read pixels between reading and rendering (titiler's ``algorithm=``).

An algorithm is a small declared class, as a format is a line of ``formats``: its ``name``
(as in ``algorithm=``), its docstring (a title line, then a description), its
``parameters`` (a :class:`Parameter` each: type, default, range), the bands it takes and
gives (``inputs``, ``outputs``; None: any), and its ``buffer``: the pixels around a tile
its neighbourhood needs (a slope at a tile's edge needs the data beyond it), which the read
adds and :meth:`Algorithm.crop` takes off again, so that tiles join without seams. Calling
one (``algorithm(image)``) is the post-processing step of
:func:`chalicelib.operations.pipeline.draw`; :meth:`Algorithm.describe` is its entry in
``/algorithms``. :data:`ALGORITHMS` lists those the API offers: none yet (titiler's set,
with the parameter and the routes, comes next).
"""

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.errors import BadRequest
from ..core.records import ImageData

#: JSON types a parameter may have, and the Python types that hold them.
_KINDS: dict[str, tuple[type, ...]] = {"number": (int, float), "integer": (int,),
                                       "boolean": (bool,)}


@dataclass(frozen=True)
class Parameter:
    """One parameter of an algorithm (given in ``algorithm_params``, JSON)."""

    name: str
    kind: str  # number, integer or boolean
    default: Any
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def value(self, given: Any) -> Any:
        """``given``, checked; a :class:`BadRequest` naming the parameter otherwise."""
        kinds: tuple[type, ...] = _KINDS[self.kind]
        if isinstance(given, bool) != (self.kind == "boolean") or type(given) not in kinds:
            raise BadRequest(f"algorithm parameter '{self.name}' must be a {self.kind}")
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if not low <= float(given) <= high:
            raise BadRequest(f"algorithm parameter '{self.name}' must be between {low:g} and "
                             f"{high:g}, got {given:g}")
        return given


class Algorithm:
    """Base class: subclasses declare what the module docstring lists and ``apply``."""

    name: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    inputs: ClassVar[int | None] = None
    outputs: ClassVar[int | None] = None
    buffer: ClassVar[int] = 0

    def __init__(self, **given: Any):
        declared = {p.name: p for p in self.parameters}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            takes = ", ".join(declared) or "none"
            raise BadRequest(f"the algorithm '{self.name}' has no parameter '{unknown[0]}' "
                             f"(its parameters: {takes})")
        self.values = {name: p.value(given.get(name, p.default))
                       for name, p in declared.items()}

    def __call__(self, image: ImageData) -> ImageData:
        bands = image.data.shape[0]
        if self.inputs is not None and bands != self.inputs:
            raise BadRequest(f"the algorithm '{self.name}' takes {self.inputs} band(s), the "
                             f"data read has {bands}: choose them with bidx or an expression")
        return self.crop(self.apply(image))

    def apply(self, image: ImageData) -> ImageData:
        """The algorithm itself, on the pixels read with :attr:`buffer` more on each side."""
        raise NotImplementedError

    def crop(self, image: ImageData) -> ImageData:
        """``image`` without the :attr:`buffer` the read added around it."""
        b = self.buffer
        if not b:
            return image
        left, bottom, right, top = image.bounds
        dx, dy = (right - left) / image.width, (top - bottom) / image.height
        return ImageData(image.data[:, b:-b, b:-b], image.mask[b:-b, b:-b],
                         type(image.bounds)(left + b * dx, bottom + b * dy, right - b * dx,
                                            top - b * dy),
                         image.crs, image.band_names, image.palette, image.dataset_statistics)

    @classmethod
    def describe(cls) -> dict:
        """Its ``/algorithms/{id}`` document, in titiler's shape."""
        title, _, description = (cls.__doc__ or cls.name).strip().partition("\n")
        return {"title": title.strip(), "description": " ".join(description.split()),
                "inputs": {"nbands": cls.inputs}, "outputs": {"nbands": cls.outputs},
                "parameters": {p.name: {"type": p.kind, "default": p.default,
                                        "description": p.description,
                                        **({"minimum": p.minimum} if p.minimum is not None
                                           else {}),
                                        **({"maximum": p.maximum} if p.maximum is not None
                                           else {})}
                               for p in cls.parameters}}


#: The algorithms the API offers, by name.
ALGORITHMS: dict[str, type[Algorithm]] = {}
