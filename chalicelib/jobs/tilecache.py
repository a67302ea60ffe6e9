"""Pre-rendering tiles into an S3 tile cache: ``seed`` plans, ``render_batch`` draws and stores.

``seed`` takes a source, a zoom range, an optional bbox and tile matrix set, lists the tiles
that touch the data, and sends them to the TILE_QUEUE (SQS) in batches. ``render_batch`` draws
each tile of a batch with the same engine and parameters as the API (so a stored tile is byte
for byte what the API serves) and stores it at ``s3://TILE_BUCKET/TILE_PREFIX/{z}/{x}/{y}.{ext}``
(``TILE_PREFIX/{tileMatrixSetId}/{z}/{x}/{y}.{ext}`` for sets other than WebMercatorQuad) with
its Content-Type and Cache-Control; empty tiles are skipped. A tile that fails for a reason
that may pass (the storage failing, a timeout) makes its message fail after the others are
stored, so SQS retries that message (storing again is harmless); a failure no retry can
mend (a message that is not a batch, a source not allowed or missing, bad parameters, a zoom
past the matrix) is logged and dropped, and the other messages of the batch still run.

The seed event::

    {"url": "s3://bucket/scene.tif", "minzoom": 8, "maxzoom": 12,
     "bbox": [west, south, east, north],            # optional, degrees; default: the data
     "tileMatrixSetId": "WebMercatorQuad",           # optional; see /tileMatrixSets
     "format": "png",                                # png (default), jpg, webp, tif or npy
     "source": "cog",                                # or "stac", "mosaicjson" (url names it)
     "params": {"colormap_name": "viridis", "rescale": "0,3000"},   # as in tile URLs
     "batch_size": 50}                               # tiles per message, optional
"""

import json
import logging

from ..api import params
from ..core import budget
from ..core.errors import BadRequest, TileOutsideBounds, TilerError
from ..core.geo import geographic_overlap
from ..core.settings import Settings
from ..grids import tilematrixsets
from ..grids.tilematrixsets import TileMatrixSet
from ..operations import tiler
from ..pixels import formats
from ..readers.kinds import open_reader
from ..sources import aws

logger = logging.getLogger("cogtiler.tilecache")
MAX_BATCH = 200
#: Most messages one seed sends (10 per SQS call): 100,000 tiles in batches of 1 would be
#: 10,000 sequential calls, over the function's timeout.
MAX_MESSAGES = 5_000
#: Largest ``params`` a seed event may carry into every message it queues.
MAX_PARAMS_BYTES = 8 * 1024
#: The keys of a seed event.
SEED_KEYS = {"url", "minzoom", "maxzoom", "bbox", "tileMatrixSetId", "format", "source",
             "params", "batch_size"}
#: Render parameters a batch carries (as in tile URLs), per kind of source.
RENDER_PARAMS = {kind: (params.TILESIZE, *selection, *params.POST_PROCESS, *params.STYLE)
                 for kind, selection in (
    ("cog", params.SELECTION), ("stac", params.STAC_SELECTION),
    ("mosaicjson", params.MOSAIC_SELECTION))}


def _query(values: dict) -> dict[str, list[str]]:
    """Render parameters from JSON (a value may be a string, a number or a list)."""
    if not isinstance(values, dict):
        raise BadRequest("'params' must be an object of tile URL parameters")
    query = {}
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        query[str(name)] = [v if isinstance(v, str) else json.dumps(v) for v in items]
    return query


def _zoom(event: dict, name: str, tms: TileMatrixSet) -> int:
    value = event.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or \
            not tms.minzoom <= value <= tms.deepest:
        raise BadRequest(f"'{name}' must be an integer zoom level from {tms.minzoom} to "
                         f"{tms.deepest} ({tms.id})")
    return value


def _bbox(event: dict, source) -> tuple | None:
    value = event.get("bbox")
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 4):
        raise BadRequest("'bbox' is [west, south, east, north] in degrees")
    box = params.bbox_value(",".join(str(v) for v in value))
    if not geographic_overlap(box, source.geographic_bounds):
        raise BadRequest("the bbox does not touch the data")
    return box


def _check_shape(event) -> None:
    """A seed event's keys and the types of its strings."""
    if not isinstance(event, dict):
        raise BadRequest("the seed event must be a JSON object (see the README)")
    unknown_keys = sorted(str(k) for k in set(event) - SEED_KEYS)
    if unknown_keys:
        raise BadRequest(f"the seed event has '{unknown_keys[0][:40]}', which seed does not "
                         "take: " + ", ".join(sorted(SEED_KEYS)))
    for name in ("url", "tileMatrixSetId", "format", "source"):
        if name in event and not isinstance(event[name], str):
            raise BadRequest(f"'{name}' must be a string")
    if len(json.dumps(event.get("params", {}), default=str)) > MAX_PARAMS_BYTES:
        raise BadRequest(f"'params' is larger than {MAX_PARAMS_BYTES // 1024} KB")


def plan(event: dict, config: Settings) -> tuple[dict, list[tuple[int, int, int]]]:
    """Validate a seed event; returns the batch template and the (z, x, y) that touch the
    data (and the bbox)."""
    _check_shape(event)
    url = event.get("url")
    tms = tilematrixsets.get(str(event.get("tileMatrixSetId", tilematrixsets.DEFAULT)))
    minzoom, maxzoom = _zoom(event, "minzoom", tms), _zoom(event, "maxzoom", tms)
    if minzoom > maxzoom:
        raise BadRequest("'minzoom' must not be greater than 'maxzoom'")
    fmt = formats.get(str(event.get("format") or "png")) or formats.PNG
    query = _query(event.get("params", {}))
    kind = event.get("source", "cog")
    if kind not in RENDER_PARAMS:
        raise BadRequest("'source' is one of: " + ", ".join(RENDER_PARAMS))
    unknown = sorted(set(query) - {p.name for p in RENDER_PARAMS[kind]})
    if unknown:
        raise BadRequest(f"the seed event's params has '{unknown[0]}', which tiles do not "
                         "take: " + ", ".join(sorted({p.name for p in RENDER_PARAMS[kind]})))
    values = params.parse(RENDER_PARAMS[kind], query, config=config)
    # refuse bad render parameters now
    params.selection(values), params.style(values), params.algorithm(values)
    # allow-listed as for the API
    source = open_reader(kind, url, config, params.selection(values))
    box = _bbox(event, source)
    boxes = source.footprint(tms)
    limit = config.max_seed_tiles
    candidates = sum((r[2] - r[0] + 1) * (r[3] - r[1] + 1)
                     for z in range(minzoom, maxzoom + 1)
                     for r in (tms.tile_range(z, b) for b in boxes) if r)
    if candidates > 4 * limit + 1000:
        raise BadRequest(f"more than {limit} tiles: narrow the zoom range or the bbox "
                         "(or raise MAX_SEED_TILES)")
    tiles = []
    for z in range(minzoom, maxzoom + 1):
        found = {xy for b in boxes for xy in tms.tiles(z, b)}
        for x, y in sorted(found, key=lambda t: (t[1], t[0])):
            if not source.tile_exists(tms, z, x, y):
                continue
            if box is not None:
                tile_box = tms.geographic_bounds(z, x, y)
                if tile_box is not None and not geographic_overlap(tile_box, box):
                    continue
            tiles.append((z, x, y))
            if len(tiles) > limit:
                raise BadRequest(f"more than {limit} tiles: narrow the zoom range or the "
                                 "bbox (or raise MAX_SEED_TILES)")
    template = {"url": url, "source": kind, "tileMatrixSetId": tms.id,
                "format": fmt.extension, "params": query}
    return template, tiles


def seed(event: dict, config: Settings) -> dict:
    """Plan the tiles and send them to the queue; returns a summary."""
    if not config.tile_queue:
        raise BadRequest("TILE_QUEUE is not configured for this stage")
    template, tiles = plan(event, config)
    size = event.get("batch_size", 50)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_BATCH:
        raise BadRequest(f"'batch_size' must be an integer from 1 to {MAX_BATCH}")
    if -(-len(tiles) // size) > MAX_MESSAGES:
        raise BadRequest(f"{len(tiles)} tiles in batches of {size} are more than "
                         f"{MAX_MESSAGES} messages: raise batch_size to at least "
                         f"{-(-len(tiles) // MAX_MESSAGES)}")
    sqs = aws.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=config.tile_queue)["QueueUrl"]
    bodies = [json.dumps({**template, "tiles": [list(t) for t in tiles[i:i + size]]})
              for i in range(0, len(tiles), size)]
    for start in range(0, len(bodies), 10):  # SQS takes up to 10 messages per call
        chunk = bodies[start:start + 10]
        result = sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)])
        if result.get("Failed"):
            raise RuntimeError(f"SQS refused {len(result['Failed'])} batches: {result['Failed']}")
    summary = {"tiles": len(tiles), "batches": len(bodies), "queue": config.tile_queue,
               "zooms": sorted({t[0] for t in tiles})}
    logger.info(json.dumps({"seed": summary}))
    return summary


def tile_key(prefix: str, tms_id: str, z: int, x: int, y: int, extension: str) -> str:
    """Where a tile is stored: WebMercatorQuad tiles at ``{z}/{x}/{y}.{ext}`` (as before
    other sets existed), other sets under their identifier."""
    parts = [prefix] if prefix else []
    if tms_id != tilematrixsets.DEFAULT:
        parts.append(tms_id)
    return "/".join(parts + [str(z), str(x), f"{y}.{extension}"])


def permanent(error: BaseException) -> bool:
    """Whether no retry can mend ``error``: the request's own fault (a 4xx), not the
    storage's (a 5xx, a timeout) nor a bug."""
    return isinstance(error, TilerError) and error.status < 500


def render_messages(bodies: list[str], config: Settings) -> list[dict]:
    """Render every message of an SQS batch. Permanent failures are logged and dropped;
    if any other failed, raises after all have run (the batch is retried)."""
    summaries, retry = [], []
    for body in bodies:
        try:
            summaries.append(render_batch(body, config))
        except Exception as error:
            if permanent(error):
                logger.error(json.dumps({"render": "dropped", "error": str(error)[:500]}))
            else:
                logger.exception("render failed; the message will be retried")
                retry.append(str(error)[:300])
    if retry:
        raise RuntimeError(f"{len(retry)} message(s) failed, the batch will be retried: "
                           + "; ".join(retry[:3]))
    return summaries


def _batch(body: str) -> dict:
    """A render message, checked: not one is a permanent failure."""
    try:
        batch = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        raise BadRequest("the render message is not JSON") from None
    if not isinstance(batch, dict) or not isinstance(batch.get("url"), str) \
            or not isinstance(batch.get("tiles"), list) \
            or not isinstance(batch.get("params", {}), dict) \
            or not isinstance(batch.get("format", "png"), str) \
            or not isinstance(batch.get("source", "cog"), str) \
            or batch.get("source", "cog") not in RENDER_PARAMS:
        raise BadRequest("the render message is not a batch of tiles (see seed)")
    for tile in batch["tiles"]:
        if not (isinstance(tile, list) and len(tile) == 3
                and all(isinstance(n, int) and not isinstance(n, bool) for n in tile)):
            raise BadRequest("the render message's tiles must be [z, x, y] integers")
    return batch


def render_batch(body: str, config: Settings) -> dict:
    """Render and store one batch (an SQS message body). Raises if any tile failed: a
    :func:`permanent` error when all failures were permanent, else a RuntimeError."""
    if not config.tile_bucket:
        raise RuntimeError("TILE_BUCKET is not configured for this stage")
    batch = _batch(body)
    tms_id = str(batch.get("tileMatrixSetId", tilematrixsets.DEFAULT))
    query = batch.get("params", {})
    kind, url, tiles = batch.get("source", "cog"), batch["url"], batch["tiles"]
    source = open_reader(kind, url, config)  # a 4xx here fails every tile for good
    s3 = aws.client("s3")
    headers = {}
    if config.cache_max_age > 0:
        headers["CacheControl"] = f"public, max-age={config.cache_max_age}"
    stored = skipped = 0
    failures: list[str] = []  # may pass on a retry
    dropped: list[str] = []  # will not
    for z, x, y in tiles:
        try:
            path = {"tileMatrixSetId": tms_id, "z": str(z), "x": str(x),
                    "y": f"{y}.{batch['format']}"}
            values = params.parse((params.TMS_ID, params.Z, params.X, params.Y, params.OUTSIDE,
                                   *RENDER_PARAMS[kind]), query, path, config)
            with budget.scope():  # each tile its own memory budget, as a request
                image = tiler.tile(source, params.tile_address(values),
                                   params.selection(values), params.style(values),
                                   params.algorithm(values))
        except TileOutsideBounds:
            skipped += 1
            continue
        except Exception as exc:  # keep going: the other tiles of the batch still count
            (dropped if permanent(exc) else failures).append(f"{z}/{x}/{y}: {exc}")
            continue
        if image.empty:
            skipped += 1
            continue
        s3.put_object(Bucket=config.tile_bucket, Body=image.body, ContentType=image.media_type,
                      Key=tile_key(config.tile_prefix, tms_id, z, x, y, image.extension),
                      **headers)
        stored += 1
    summary = {"stored": stored, "skipped": skipped, "failed": len(failures),
               "dropped": len(dropped)}
    logger.info(json.dumps({"render": summary}))
    if failures:
        raise RuntimeError(f"{len(failures)} tile(s) failed, the message will be retried: "
                           + "; ".join(failures[:5]))
    if dropped:
        logger.error(json.dumps({"render": "dropped tiles", "tiles": dropped[:20]}))
    return summary
