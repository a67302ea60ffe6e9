"""Pre-rendering tiles into an S3 tile cache: ``seed`` plans, ``render_batch`` draws and stores.

``seed`` takes a source, a zoom range, an optional bbox and tile matrix set, lists the tiles
that touch the data, and sends them to the TILE_QUEUE (SQS) in batches. ``render_batch`` draws
each tile of a batch with the same engine and parameters as the API (so a stored tile is byte
for byte what the API serves) and stores it at ``s3://TILE_BUCKET/TILE_PREFIX/{z}/{x}/{y}.{ext}``
(``TILE_PREFIX/{tileMatrixSetId}/{z}/{x}/{y}.{ext}`` for sets other than WebMercatorQuad) with
its Content-Type and Cache-Control; empty tiles are skipped. A tile that fails makes its
message fail after the others are stored, so SQS retries that message (storing again is
harmless).

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
from ..core.errors import BadRequest, TileOutsideBounds
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


def plan(event: dict, config: Settings) -> tuple[dict, list[tuple[int, int, int]]]:
    """Validate a seed event; returns the batch template and the (z, x, y) that touch the
    data (and the bbox)."""
    if not isinstance(event, dict):
        raise BadRequest("the seed event must be a JSON object (see the README)")
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
    if not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
        raise BadRequest(f"'batch_size' must be an integer from 1 to {MAX_BATCH}")
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


def render_batch(body: str, config: Settings) -> dict:
    """Render and store one batch (an SQS message body). Raises if any tile failed."""
    if not config.tile_bucket:
        raise RuntimeError("TILE_BUCKET is not configured for this stage")
    batch = json.loads(body)
    tms_id = batch.get("tileMatrixSetId", tilematrixsets.DEFAULT)
    query = batch.get("params", {})
    kind, url, tiles = batch.get("source", "cog"), batch["url"], list(batch["tiles"])
    try:
        source = open_reader(kind, url, config)
    except Exception as exc:  # every tile would fail: the message is retried
        raise RuntimeError(f"the source cannot be opened, the message will be retried: "
                           f"{exc}") from None
    s3 = aws.client("s3")
    headers = {}
    if config.cache_max_age > 0:
        headers["CacheControl"] = f"public, max-age={config.cache_max_age}"
    stored = skipped = 0
    failures = []
    for z, x, y in tiles:
        try:
            path = {"tileMatrixSetId": tms_id, "z": str(z), "x": str(x),
                    "y": f"{y}.{batch['format']}"}
            values = params.parse((params.TMS_ID, params.Z, params.X, params.Y, params.OUTSIDE,
                                   *RENDER_PARAMS[kind]), query, path, config)
            image = tiler.tile(source, params.tile_address(values),
                               params.selection(values), params.style(values),
                               params.algorithm(values))
        except TileOutsideBounds:
            skipped += 1
            continue
        except Exception as exc:  # keep going: the other tiles of the batch still count
            failures.append(f"{z}/{x}/{y}: {exc}")
            continue
        if image.empty:
            skipped += 1
            continue
        s3.put_object(Bucket=config.tile_bucket, Body=image.body, ContentType=image.media_type,
                      Key=tile_key(config.tile_prefix, tms_id, z, x, y, image.extension),
                      **headers)
        stored += 1
    summary = {"stored": stored, "skipped": skipped, "failed": len(failures)}
    logger.info(json.dumps({"render": summary}))
    if failures:
        raise RuntimeError(f"{len(failures)} tile(s) failed, the message will be retried: "
                           + "; ".join(failures[:5]))
    return summary
