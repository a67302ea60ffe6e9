"""Configuration from the environment, parsed once per distinct environment.

Every other module receives values from here; nothing else reads ``os.environ``. On Lambda
the environment never changes, so :func:`current` parses it once per container. (Chalice's
test client swaps ``os.environ`` per request, which is why the result is memoised on the
raw values rather than computed at import.)
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Directory holding app.py; relative local paths (in ALLOWED_SOURCES and in ``url=``)
#: are resolved against it, so the same configuration works locally and on Lambda.
PROJECT_DIR = Path(__file__).resolve().parents[2]

#: The built-in demo dataset, as a user would name it in ``url=``.
DEMO_URL = "chalicelib/demo/demo.tif"


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _int(name: str, default: int, env: Mapping[str, str]) -> int:
    raw = env.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError:
        raise RuntimeError(f"environment variable {name} must be an integer, got {raw!r}") \
            from None


def _flag(name: str, env: Mapping[str, str]) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no"):
        raise RuntimeError(f"environment variable {name} must be true or false, got {raw!r}")
    return raw in ("1", "true", "yes")


#: Default largest side of a preview/bbox image (MAX_IMAGE_SIZE).
MAX_IMAGE_SIZE = 4096


@dataclass(frozen=True)
class Settings:
    """Everything configurable, each field from one environment variable."""

    #: Prefixes a source must start with (``s3://bucket/``, ``https://host/path/``, ``/srv/x/``).
    allowed_sources: tuple[str, ...] = ()
    #: host[:port] entries exempt from the private-address ban. For tests and benchmarks
    #: against servers on 127.0.0.1 only; never set it in a deployed stage.
    unsafe_allow_hosts: tuple[str, ...] = ()
    #: ``Cache-Control: public, max-age=N`` on successful tiles and images; 0 disables.
    cache_max_age: int = 3600
    #: How many opened datasets a warm container keeps.
    dataset_cache_size: int = 32
    #: Seconds a warm container trusts what it read of an S3 or HTTP source (an opened
    #: dataset, a document) before reading it again: a file replaced under the same key is
    #: seen within this time. Local files are checked on every request (mtime, ctime, inode).
    source_ttl: int = 300
    #: Largest side in pixels of any rendered image (preview, bbox, tile).
    max_image_size: int = MAX_IMAGE_SIZE
    #: Deepest zoom served (tiles, TileJSON, WMTS); None: the tile matrix set's deepest.
    max_zoom: int | None = None
    #: Who may call the API. ``api_key_required``: routes that read a source need API
    #: Gateway's ``x-api-key`` (a usage plan's key); read when the app is loaded, i.e. per
    #: deployed stage. ``cors_origins``: origins whose scripts may read the responses
    #: ("*": any; empty: none).
    api_key_required: bool = False
    cors_origins: tuple[str, ...] = ("*",)
    #: The pure functions (all optional; a function whose names are missing is not deployed).
    #: cogify: uploads under s3://UPLOAD_BUCKET/UPLOAD_PREFIX become COGs under
    #: s3://COG_BUCKET/COG_PREFIX (COG_BUCKET defaults to UPLOAD_BUCKET).
    upload_bucket: str = ""
    upload_prefix: str = "uploads/"
    cog_bucket: str = ""
    cog_prefix: str = "cogs/"
    #: seed -> TILE_QUEUE (SQS queue name) -> render -> s3://TILE_BUCKET/TILE_PREFIX/{z}/{x}/{y}.fmt
    tile_queue: str = ""
    tile_bucket: str = ""
    tile_prefix: str = "tiles"
    #: Most tiles one seed request may plan.
    max_seed_tiles: int = 100_000
    #: mosaic: where the ``mosaic`` function writes the MosaicJSON documents it builds
    #: (``s3://bucket/mosaics/`` or a local folder); unset, the function is not deployed.
    mosaic_prefix: str = ""
    #: The STAC API behind ``/collections/...`` and ``/searches/...`` (``https://host/path``,
    #: its landing page); unset, those routes answer 404. Asset hrefs of its items are
    #: checked against ALLOWED_SOURCES like every other source.
    stac_api_url: str = ""
    #: Where ``POST /searches/register`` keeps searches (``s3://bucket/searches/`` or a local
    #: folder), by content hash; unset, searches cannot be registered.
    searches_prefix: str = ""
    #: Whether the environment names an HTTP proxy (then GDAL's egress guard stays off).
    environment_proxy: bool = False
    #: GDAL configuration options found in the environment (GDAL_*, CPL_*, VSI_*, AWS_*...).
    #: Applied to GDAL by the dataset layer, so they hold even where ``os.environ`` is not
    #: the process environment (Chalice's test client).
    gdal_options: tuple[tuple[str, str], ...] = field(default=())


#: Environment variable prefixes that are GDAL configuration options.
GDAL_PREFIXES = ("GDAL_", "CPL_", "VSI_", "AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING",
                 "AWS_NO_SIGN_REQUEST", "AWS_REQUEST_PAYER", "PROJ_NETWORK")

#: Environment variables that name an HTTP proxy (libcurl's, Python's).
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "all_proxy")

_memo: list = []  # [snapshot of the environment, Settings]


def current() -> Settings:
    """The settings for the environment as it is now (parsed once per distinct environment).

    The check is a C-level comparison of the environment with the snapshot it was parsed
    from (os.environ keeps its mapping in ``_data``; Chalice's test client swaps in a dict).
    """
    env = os.environ
    raw = getattr(env, "_data", env)
    if _memo and _memo[0] == raw:
        found: Settings = _memo[1]
        return found
    found = from_environ(env)
    _memo[:] = [dict(raw), found]
    return found


def from_environ(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``env`` (default: the process environment), parsed now."""
    env = os.environ if env is None else env
    return Settings(
        gdal_options=tuple(sorted((k, v) for k, v in env.items() if k.startswith(GDAL_PREFIXES))),
        allowed_sources=_split(env.get("ALLOWED_SOURCES", "")),
        environment_proxy=any(env.get(name) for name in PROXY_VARIABLES),
        unsafe_allow_hosts=_split(env.get("UNSAFE_ALLOW_HOSTS", "")),
        cache_max_age=_int("CACHE_MAX_AGE", 3600, env),
        dataset_cache_size=max(1, _int("DATASET_CACHE_SIZE", 32, env)),
        source_ttl=max(0, _int("SOURCE_TTL", 300, env)),
        max_image_size=_int("MAX_IMAGE_SIZE", MAX_IMAGE_SIZE, env),
        max_zoom=_int("MAX_ZOOM", -1, env) if env.get("MAX_ZOOM", "").strip() else None,
        api_key_required=_flag("API_KEY_REQUIRED", env),
        cors_origins=_split(env.get("CORS_ORIGINS", "*")),
        upload_bucket=env.get("UPLOAD_BUCKET", "").strip(),
        upload_prefix=env.get("UPLOAD_PREFIX", "uploads/").strip(),
        cog_bucket=(env.get("COG_BUCKET", "") or env.get("UPLOAD_BUCKET", "")).strip(),
        cog_prefix=env.get("COG_PREFIX", "cogs/").strip(),
        tile_queue=env.get("TILE_QUEUE", "").strip(),
        tile_bucket=env.get("TILE_BUCKET", "").strip(),
        tile_prefix=env.get("TILE_PREFIX", "tiles").strip().strip("/"),
        max_seed_tiles=_int("MAX_SEED_TILES", 100_000, env),
        mosaic_prefix=env.get("MOSAIC_PREFIX", "").strip(),
        stac_api_url=env.get("STAC_API_URL", "").strip().rstrip("/"),
        searches_prefix=env.get("SEARCHES_PREFIX", "").strip(),
    )
