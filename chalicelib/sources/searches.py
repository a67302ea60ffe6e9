"""Registered searches (titiler-pgstac's ``POST /searches/register``), kept where the
deployment keeps data.

A Lambda function holds no state, so a registered search is a small JSON document under
``SEARCHES_PREFIX`` (``s3://bucket/searches/`` or a local folder under ``chalice local``),
named by the hash of its content: registering the same search twice gives the same id and
writes nothing new, and no search ever replaces another. A warm container reads each one
once (they never change).
"""

import hashlib
import json
import re
import threading
from pathlib import Path

from ..core.errors import BadRequest, NotFound, UpstreamError
from ..core.settings import PROJECT_DIR, Settings
from . import aws
from .stacapi import Search, search_from

_ID = re.compile(r"[0-9a-f]{32}")
_known: dict[str, dict] = {}  # id -> the stored document (immutable: kept for good)
_lock = threading.Lock()
MAX_KEPT = 1024


def _prefix(config: Settings) -> str:
    if not config.searches_prefix:
        raise NotFound("this server keeps no registered searches: the operator names where "
                       "with SEARCHES_PREFIX (an s3:// prefix or a folder)")
    return config.searches_prefix


def _where(prefix: str, search_id: str) -> tuple[str, str] | Path:
    if prefix.startswith("s3://"):
        bucket, _, key = prefix[len("s3://"):].partition("/")
        return bucket, f"{key.rstrip('/') + '/' if key.strip('/') else ''}{search_id}.json"
    folder = Path(prefix)
    return (folder if folder.is_absolute() else PROJECT_DIR / folder) / f"{search_id}.json"


def register(search: Search, metadata: dict, config: Settings) -> str:
    """Keep ``search`` (with its ``metadata``: name, bounds, zooms) and answer its id."""
    document = {"search": json.loads(search.text), "metadata": metadata}
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    search_id = hashlib.sha256(body).hexdigest()[:32]
    where = _where(_prefix(config), search_id)
    if isinstance(where, Path):
        where.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(where, "xb") as file:  # same id, same content: never rewritten
                file.write(body)
        except FileExistsError:
            pass
    else:
        from botocore.exceptions import BotoCoreError, ClientError
        bucket, key = where
        try:  # the same key always holds the same bytes: a second put changes nothing
            aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body,
                                        ContentType="application/json")
        except (ClientError, BotoCoreError):
            raise UpstreamError("the storage of registered searches failed to answer; "
                                "try again") from None
    return search_id


def load(search_id: str, config: Settings) -> tuple[Search, dict]:
    """The registered search ``search_id`` and its metadata; 404 if there is none."""
    if not _ID.fullmatch(search_id or ""):
        raise NotFound("no such search: a search id is 32 hexadecimal digits (from POST "
                       "/searches/register)")
    prefix = _prefix(config)
    with _lock:
        document = _known.get(f"{prefix}|{search_id}")
    if document is None:
        document = _read(_where(prefix, search_id))
        with _lock:
            if len(_known) >= MAX_KEPT:
                _known.pop(next(iter(_known)))
            _known[f"{prefix}|{search_id}"] = document
    return search_from(document["search"]), document.get("metadata") or {}


def _read(where) -> dict:
    missing = NotFound("no such search: register it with POST /searches/register")
    if isinstance(where, Path):
        try:
            raw = where.read_bytes()
        except OSError:
            raise missing from None
    else:
        from botocore.exceptions import BotoCoreError, ClientError
        bucket, key = where
        try:
            raw = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read(1 << 20)
        except ClientError as exc:
            if aws.is_missing(exc):
                raise missing from None
            raise UpstreamError("the storage of registered searches failed to answer; "
                                "try again") from None
        except BotoCoreError:
            raise UpstreamError("the storage of registered searches failed to answer; "
                                "try again") from None
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get("search"), dict):
        raise BadRequest("the stored search is damaged: register it again")
    return document


def clear() -> None:
    """Forget the searches read."""
    with _lock:
        _known.clear()
