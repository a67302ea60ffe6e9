"""Pre-rendering tiles into an S3 tile cache: ``seed`` plans, ``render`` draws and stores.

``seed`` takes a source, a zoom range and an optional bbox, lists the tiles that touch the
data, and sends them to the TILE_QUEUE (SQS) in batches. ``render`` draws each tile of a batch
with the same engine and parameters as the API (so a stored tile is byte for byte what the API
serves) and stores it at ``s3://TILE_BUCKET/TILE_PREFIX/{z}/{x}/{y}.{ext}`` with its
Content-Type and Cache-Control; empty tiles are skipped. A tile that fails makes its message
fail after the others are stored, so SQS retries that message (storing again is harmless).

The seed event::

    {"url": "s3://bucket/scene.tif", "minzoom": 8, "maxzoom": 12,
     "bbox": [west, south, east, north],            # optional, degrees; default: the data
     "format": "png",                                # png (default), jpg, webp, tif or npy
     "params": {"colormap_name": "viridis", "rescale": "0,3000"},   # as in tile URLs
     "batch_size": 50}                               # tiles per message, optional
"""

import json
import logging

import mercantile

from . import aws, params, reader, tiler
from .errors import BadRequest, TileOutsideBounds
from .settings import Settings

logger = logging.getLogger("cogtiler.tilecache")
MAX_BATCH = 200


def _query(values: dict) -> dict[str, list[str]]:
    """Render parameters from JSON (a value may be a string, a number or a list)."""
    if not isinstance(values, dict):
        raise BadRequest("'params' must be an object of tile URL parameters")
    query = {}
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        query[str(name)] = [v if isinstance(v, str) else json.dumps(v) for v in items]
    return query


def _zoom(event: dict, name: str) -> int:
    value = event.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 24:
        raise BadRequest(f"'{name}' must be an integer zoom level from 0 to 24")
    return value


def plan(event: dict, config: Settings) -> tuple[dict, list[mercantile.Tile]]:
    """Validate a seed event; returns the batch template and the tiles that touch the data."""
    if not isinstance(event, dict):
        raise BadRequest("the seed event must be a JSON object (see the README)")
    url = event.get("url")
    minzoom, maxzoom = _zoom(event, "minzoom"), _zoom(event, "maxzoom")
    if minzoom > maxzoom:
        raise BadRequest("'minzoom' must not be greater than 'maxzoom'")
    fmt = params.image_format(str(event.get("format", "png")))
    query = _query(event.get("params", {}))
    params.selection(query), params.style(query)  # refuse bad render parameters now
    entry = tiler.open_dataset(url)  # the allow-list applies to seeding too
    west, south, east, north = entry.geographic_bounds
    box = None
    if event.get("bbox") is not None:
        value = event["bbox"]
        if not (isinstance(value, list) and len(value) == 4):
            raise BadRequest("'bbox' is [west, south, east, north] in degrees")
        box = params.bbox(",".join(str(v) for v in value))
        south, north = max(south, box[1]), min(north, box[3])
        if west <= east:  # data that crosses 180 degrees: tiles are checked against box below
            west, east = max(west, box[0]), min(east, box[2])
        crosses = entry.geographic_bounds[0] > entry.geographic_bounds[2]
        if south >= north or (west >= east and not crosses):
            raise BadRequest("the bbox does not touch the data")
    tiles = []
    for tile in mercantile.tiles(west, south, east, north, range(minzoom, maxzoom + 1)):
        if not reader.tile_exists(entry, tile.z, tile.x, tile.y):
            continue
        if box is not None:
            t_west, _, t_east, _ = mercantile.bounds(tile)
            if t_east <= box[0] or t_west >= box[2]:
                continue
        tiles.append(tile)
        if len(tiles) > config.max_seed_tiles:
            raise BadRequest(f"more than {config.max_seed_tiles} tiles: narrow the zoom range "
                             "or the bbox (or raise MAX_SEED_TILES)")
    template = {"url": url, "format": fmt.extension, "params": query}
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
    bodies = [json.dumps({**template, "tiles": [[t.z, t.x, t.y] for t in tiles[i:i + size]]})
              for i in range(0, len(tiles), size)]
    for start in range(0, len(bodies), 10):  # SQS takes up to 10 messages per call
        chunk = bodies[start:start + 10]
        result = sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)])
        if result.get("Failed"):
            raise RuntimeError(f"SQS refused {len(result['Failed'])} batches: {result['Failed']}")
    summary = {"tiles": len(tiles), "batches": len(bodies), "queue": config.tile_queue,
               "zooms": sorted({t.z for t in tiles})}
    logger.info(json.dumps({"seed": summary}))
    return summary


def tile_key(prefix: str, z: int, x: int, y: int, extension: str) -> str:
    return f"{prefix}/{z}/{x}/{y}.{extension}" if prefix else f"{z}/{x}/{y}.{extension}"


def render(body: str, config: Settings) -> dict:
    """Render and store one batch (an SQS message body). Raises if any tile failed."""
    if not config.tile_bucket:
        raise RuntimeError("TILE_BUCKET is not configured for this stage")
    batch = json.loads(body)
    s3 = aws.client("s3")
    headers = {}
    if config.cache_max_age > 0:
        headers["CacheControl"] = f"public, max-age={config.cache_max_age}"
    stored = skipped = 0
    failures = []
    for z, x, y in batch["tiles"]:
        try:
            image = tiler.tile(batch["url"], str(z), str(x), f"{y}.{batch['format']}",
                               batch.get("params", {}))
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
                      Key=tile_key(config.tile_prefix, z, x, y, image.extension), **headers)
        stored += 1
    summary = {"stored": stored, "skipped": skipped, "failed": len(failures)}
    logger.info(json.dumps({"render": summary}))
    if failures:
        raise RuntimeError(f"{len(failures)} tile(s) failed, the message will be retried: "
                           + "; ".join(failures[:5]))
    return summary
