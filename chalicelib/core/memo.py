"""Results kept per source (a dataset, a STAC item, a mosaic) in a warm container.

Each source holds a ``memo`` dict; keys are tuples whose first item names the kind of
result (``("stretch", ...)``). Kinds keyed by what users ask (expressions, band lists) are
kept with :func:`remembered`, bounded by :func:`bound_memo`, so that a stream of distinct
requests cannot grow one.
"""

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
