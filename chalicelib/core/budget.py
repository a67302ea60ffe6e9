"""One memory budget per request: the pixels it holds, over every file it reads.

The read planner (``readers.planning``) bounds one read; a request reading many files (a
mosaic tile over 16 of them, a STAC request over 19-band assets) would multiply those bounds.
So every read *charges* the bytes it will hold to the request's :class:`Budget` before it
reads, and a request whose charges would pass :data:`MAX_REQUEST_BYTES` is refused
(:class:`~.errors.TooLarge`) before the read that would pass it starts. What a caller drops
(a mosaic member folded into the result) it releases.

A request opens its budget with :func:`scope` (the route handler, each message of the
``render`` function); the reader pool carries it into its threads (:func:`carried`). Code
run outside any scope (a library call, a test) gets a fresh budget per call: each read is
still bounded, the sum is not. A read made for one part of a request (a mosaic member) may
run under a :func:`child` budget, whose charges count in its parent's and which releases
them all at once.

The budget also knows, when the answer is an uncompressed raw image (NPY), how many bytes
the response may hold (:meth:`Budget.limit_output`), so that an image too large to return
is refused before its pixels are read rather than after they are encoded.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import TooLarge

#: Most bytes of pixel arrays one request may hold at once (Lambda has 1536 MB in all; the
#: runtime, GDAL's caches and the arrays a read makes on the way take the rest).
MAX_REQUEST_BYTES = 384 * 2**20


class Budget:
    """Bytes held by one request (or one part of it, with a ``parent``) against ``limit``."""

    __slots__ = ("limit", "held", "parent", "output_cap", "keeps_dtype", "_lock")

    def __init__(self, limit: int = MAX_REQUEST_BYTES, parent: "Budget | None" = None):
        self.limit, self.held, self.parent = limit, 0, parent
        self.output_cap: int | None = None if parent is None else parent.output_cap
        self.keeps_dtype: bool = True if parent is None else parent.keeps_dtype
        self._lock = threading.Lock()

    def charge(self, nbytes: int, what: str) -> None:
        """Count ``nbytes`` more as held (``what``: the read, for the message), or refuse."""
        if self.parent is not None:
            self.parent.charge(nbytes, what)
            with self._lock:
                self.held += nbytes
            return
        with self._lock:
            if self.held + nbytes > self.limit:
                already = (f" on top of the {self.held / 2**20:.0f} MB its other reads hold"
                           if self.held else "")
                raise TooLarge(
                    f"{what} would hold about {nbytes / 2**20:.0f} MB of pixels{already}, "
                    f"more than one request may ({self.limit // 2**20} MB): ask for a "
                    "smaller image (tilesize, @1x, max_size, width, height), fewer bands "
                    "or assets, or fewer files at once (a deeper zoom, "
                    "pixel_selection=first)")
            self.held += nbytes

    def release(self, nbytes: int | None = None) -> None:
        """Count ``nbytes`` (None: all this budget holds) as no longer held."""
        with self._lock:
            nbytes = self.held if nbytes is None else min(nbytes, self.held)
            self.held -= nbytes
        if self.parent is not None:
            self.parent.release(nbytes)

    def room(self) -> int:
        """Bytes the request may still charge."""
        root = self
        while root.parent is not None:
            root = root.parent
        return root.limit - root.held

    def limit_output(self, cap: int | None, keeps_dtype: bool = True) -> None:
        """The answer is raw (NPY): at most ``cap`` bytes; its values keep the data's type
        (``keeps_dtype``) or become bytes (a style renders them)."""
        self.output_cap, self.keeps_dtype = cap, keeps_dtype

    def check_output(self, bands: int, width: int, height: int, itemsize: int) -> None:
        """Refuse, before reading, a raw answer of ``bands`` x ``width`` x ``height`` values
        of ``itemsize`` bytes over the output cap (if any)."""
        if self.output_cap is None:
            return
        size = bands * width * height * (itemsize if self.keeps_dtype else 1)
        if size > self.output_cap:
            raise TooLarge(f"the image would be at least {size / 1e6:.1f} MB, above the "
                           f"response limit ({self.output_cap / 1e6:.1f} MB: Lambda's 6 MB "
                           "once base64-encoded): ask for fewer pixels (tilesize, max_size, "
                           "width, height), fewer bands, or a compressed format (tif)")


_current: ContextVar[Budget | None] = ContextVar("cogtiler_budget", default=None)


def current() -> Budget:
    """The running request's budget (outside any :func:`scope`: a fresh one)."""
    return _current.get() or Budget()


@contextmanager
def scope(limit: int = MAX_REQUEST_BYTES) -> Iterator[Budget]:
    """A new budget for one request, for the code run inside."""
    token = _current.set(Budget(limit))
    try:
        yield _current.get()  # type: ignore[misc]
    finally:
        _current.reset(token)


@contextmanager
def child() -> Iterator[Budget]:
    """A budget for one part of the request, counted in the request's."""
    part = Budget(parent=current())
    token = _current.set(part)
    try:
        yield part
    finally:
        _current.reset(token)


def carried[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """``function`` run, in whichever thread, under the caller's budget."""
    budget = current()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _current.set(budget)
        try:
            return function(*args, **kwargs)
        finally:
            _current.reset(token)
    return run
