"""Reading several files of one request at once (GDAL releases the GIL while it reads).

STAC items (their assets) and mosaics (their files) read through :func:`read_all`: one
thread pool per container, results in the items' order, a caller that stops consuming
stops the reading, and every read charged to the request's one memory budget
(:mod:`chalicelib.core.budget`). A read that itself reads several files (a mosaic of STAC
items, each with its assets) uses a second pool: waiting on the first pool from inside it
could take every thread and wait for ever. A third level reads one file at a time.
"""

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Lock, current_thread
from typing import Any

from ..core import budget

#: Files of one request read at once.
MAX_THREADS = 8
#: The pools' thread names, outer first.
LEVELS = ("cogtiler-read", "cogtiler-part")
_pools: dict[str, ThreadPoolExecutor] = {}
_lock = Lock()


def _pool_for_this_thread() -> ThreadPoolExecutor | None:
    """The pool a read started in this thread may use: the next level's (None: read here)."""
    name = current_thread().name
    level = next((i + 1 for i, prefix in enumerate(LEVELS) if name.startswith(prefix)), 0)
    if level >= len(LEVELS):
        return None
    prefix = LEVELS[level]
    with _lock:
        if prefix not in _pools:
            _pools[prefix] = ThreadPoolExecutor(max_workers=MAX_THREADS,
                                                thread_name_prefix=prefix)
        return _pools[prefix]


def read_all[T](items: Iterable[T], read: Callable[[T], Any], threads: int = MAX_THREADS,
              first_alone: bool = False
              ) -> Iterator[tuple[T, Any, BaseException | None]]:
    """``read`` each item, ``threads`` at a time, yielding ``(item, result, error)`` in the
    items' order (``result`` None where ``error``); stop consuming to stop reading (the
    chunk under way finishes). ``first_alone``: read the first item by itself (when it may
    be all the caller needs)."""
    items = list(items)
    read = budget.carried(read)  # the request's budget, in the pool's threads too
    pool = _pool_for_this_thread() if len(items) > 1 and threads > 1 else None
    if pool is None:
        for item in items:
            try:
                yield item, read(item), None
            except Exception as exc:  # handed to the caller, which decides
                yield item, None, exc
        return
    starts = [0, *range(1, len(items), threads)] if first_alone else \
        list(range(0, len(items), threads))
    for start, end in zip(starts, starts[1:] + [len(items)]):
        chunk = items[start:end]
        futures = [pool.submit(read, item) for item in chunk]
        for item, future in zip(chunk, futures):
            error = future.exception()
            yield item, None if error else future.result(), error
