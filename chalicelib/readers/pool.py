"""Reading several files of one request at once (GDAL releases the GIL while it reads).

STAC items (their assets) and mosaics (their files) read through :func:`read_all`: one
thread pool per container, results in the items' order, a caller that stops consuming
stops the reading, and every read charged to the request's one memory budget
(:mod:`chalicelib.core.budget`).
"""

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core import budget

#: Files of one request read at once.
MAX_THREADS = 8
_pool: list[ThreadPoolExecutor] = []


def read_all[T](items: Iterable[T], read: Callable[[T], Any], threads: int = MAX_THREADS,
              first_alone: bool = False
              ) -> Iterator[tuple[T, Any, BaseException | None]]:
    """``read`` each item, ``threads`` at a time, yielding ``(item, result, error)`` in the
    items' order (``result`` None where ``error``); stop consuming to stop reading (the
    chunk under way finishes). ``first_alone``: read the first item by itself (when it may
    be all the caller needs)."""
    items = list(items)
    read = budget.carried(read)  # the request's budget, in the pool's threads too
    if len(items) <= 1 or threads <= 1:
        for item in items:
            try:
                yield item, read(item), None
            except Exception as exc:  # handed to the caller, which decides
                yield item, None, exc
        return
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=MAX_THREADS,
                                        thread_name_prefix="cogtiler-read"))
    starts = [0, *range(1, len(items), threads)] if first_alone else \
        list(range(0, len(items), threads))
    for start, end in zip(starts, starts[1:] + [len(items)]):
        chunk = items[start:end]
        futures = [_pool[0].submit(read, item) for item in chunk]
        for item, future in zip(chunk, futures):
            error = future.exception()
            yield item, None if error else future.result(), error
