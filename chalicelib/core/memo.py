"""Results kept per source (a dataset, a STAC item, a mosaic) in a warm container.

Each source holds a ``memo`` dict; keys are tuples whose first item names the kind of
result (``("stretch", ...)``). Kinds keyed by what users ask (expressions, band lists) are
kept with :func:`remembered`, bounded by :func:`bound_memo`, so that a stream of distinct
requests cannot grow one. :class:`Kept` keeps results across requests for a time.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: Most entries of one kind kept per source (stretch ranges are keyed by the selection).
MAX_STRETCH_MEMO = 64


def bound_memo(memo: dict, kind: str, limit: int = MAX_STRETCH_MEMO) -> None:
    """Make room for one more ``kind`` entry in ``memo``: drop the oldest beyond ``limit``."""
    keys = [k for k in memo if isinstance(k, tuple) and k and k[0] == kind]
    for old in keys[:max(0, len(keys) - limit + 1)]:
        del memo[old]


def remembered(memo: dict[Any, Any], key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """``memo[key]``, computed by ``compute()`` the first time, the oldest entries of its
    kind (``key[0]``) dropped beyond :data:`MAX_STRETCH_MEMO`."""
    if key not in memo:
        value = compute()
        bound_memo(memo, key[0])
        memo[key] = value
    return memo[key]


class Kept:
    """A bounded LRU of results trusted for a time (answers of a remote service, indexes
    built from them), shared by a container's threads. ``clock()`` tells the time (a
    function, so that tests can move it)."""

    def __init__(self, size: int, clock: Callable[[], float]):
        self.size, self.clock = size, clock
        self._entries: OrderedDict[Any, tuple[Any, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, ttl: float, make: Callable[[], Any]) -> Any:
        """The entry for ``key`` if it was made less than ``ttl`` seconds ago, else
        ``make()``'s, kept (outside the lock: a slow make does not hold up others)."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and self.clock() - hit[1] < ttl:
                self._entries.move_to_end(key)
                return hit[0]
        made_at = self.clock()
        value = make()
        with self._lock:
            self._entries[key] = (value, made_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def forget(self, which: Callable[[Any], bool] = lambda key: True) -> None:
        """Drop the entries whose key ``which`` accepts (all, by default)."""
        with self._lock:
            for key in [k for k in self._entries if which(k)]:
                del self._entries[key]
