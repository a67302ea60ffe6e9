"""The pure Lambda functions (cogify, seed, render) through Chalice's test client, against
moto's S3 and SQS on 127.0.0.1."""

import json

import numpy as np
import pytest
import rasterio

from tests.conftest import PIPELINE
from tests.support import ACCEPT_IMAGE

UPLOADS = PIPELINE["UPLOAD_BUCKET"]
TILES = PIPELINE["TILE_BUCKET"]
QUEUE = PIPELINE["TILE_QUEUE"]


@pytest.fixture(scope="module")
def s3(moto):
    client = moto.client("s3")
    for bucket in (UPLOADS, TILES):
        client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture(scope="module")
def sqs(moto):
    client = moto.client("sqs")
    client.create_queue(QueueName=QUEUE)
    return client


def upload(s3, shared, name, key):
    s3.upload_file(str(shared / name), UPLOADS, key)
    return s3.head_object(Bucket=UPLOADS, Key=key)["ETag"]


def cogify(client, key, bucket=UPLOADS):
    from urllib.parse import quote_plus
    # S3's notifications carry the key URL-encoded, spaces as '+' (Chalice decodes it)
    event = client.events.generate_s3_event(bucket=bucket, key=quote_plus(key, safe="/"))
    return client.lambda_.invoke("cogify", event).payload


def report(s3, key):
    return json.loads(s3.get_object(Bucket=UPLOADS, Key=key)["Body"].read())


def test_cogify_turns_a_striped_file_into_a_valid_cog(client, s3, shared, tmp_path):
    etag = upload(s3, shared, "nocog.tif", "uploads/scenes/nocog.tif")
    assert cogify(client, "uploads/scenes/nocog.tif") == "created"
    head = s3.head_object(Bucket=UPLOADS, Key="cogs/scenes/nocog.tif")
    assert head["ContentType"].startswith("image/tiff") and "cloud-optimized" in head["ContentType"]
    assert head["Metadata"]["source-etag"] == etag.strip('"')
    path = tmp_path / "out.tif"
    s3.download_file(UPLOADS, "cogs/scenes/nocog.tif", str(path))
    with rasterio.open(path) as cog, rasterio.open(shared / "nocog.tif") as original:
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert cog.block_shapes[0] == (512, 512) and cog.overviews(1)  # tiled, overviews
        assert cog.crs == original.crs and cog.transform == original.transform
        assert cog.nodata == original.nodata
        np.testing.assert_array_equal(cog.read(), original.read())  # lossless: same pixels
    summary = report(s3, "cogs/scenes/nocog.report.json")
    assert summary["status"] == "created" and summary["details"]["overviews"]
    # the upload is untouched
    assert s3.head_object(Bucket=UPLOADS, Key="uploads/scenes/nocog.tif")["ETag"] == etag


def test_cogify_keeps_masks_and_palettes(client, s3, shared, tmp_path):
    upload(s3, shared, "RGB.byte.tif", "uploads/rgb.tif")
    upload(s3, shared, "cog_cmap.tif", "uploads/cmap.tif")
    assert cogify(client, "uploads/rgb.tif") == "created"
    assert cogify(client, "uploads/cmap.tif") == "created"
    for key, name in (("cogs/rgb.tif", "RGB.byte.tif"), ("cogs/cmap.tif", "cog_cmap.tif")):
        path = tmp_path / name
        s3.download_file(UPLOADS, key, str(path))
        with rasterio.open(path) as cog, rasterio.open(shared / name) as original:
            assert cog.nodata == original.nodata
            np.testing.assert_array_equal(cog.dataset_mask(), original.dataset_mask())
            if name == "cog_cmap.tif":
                assert cog.colormap(1) == original.colormap(1)


def test_the_same_event_twice_converts_once(client, s3, shared):
    upload(s3, shared, "cog_rgb_mask.tif", "uploads/twice.tif")
    assert cogify(client, "uploads/twice.tif") == "created"
    first = s3.head_object(Bucket=UPLOADS, Key="cogs/twice.tif")
    assert cogify(client, "uploads/twice.tif") == "skipped"
    again = s3.head_object(Bucket=UPLOADS, Key="cogs/twice.tif")
    assert again["ETag"] == first["ETag"] and again["LastModified"] == first["LastModified"]


@pytest.mark.parametrize("name, key, reason", [
    ("no_geo.jpg", "uploads/photo.jpg", "not a GeoTIFF"),
    ("README.md", "uploads/notes.tif", "not a GeoTIFF"),
    ("corrupt.tif", "uploads/corrupt.tif", "could not be read"),
])
def test_broken_uploads_are_reported_not_retried(client, s3, shared, name, key, reason):
    etag = upload(s3, shared, name, key)
    assert cogify(client, key) == "failed"  # returned, not raised: no retry storm
    stem = key[len("uploads/"):].rsplit(".", 1)[0]
    summary = report(s3, f"cogs/{stem}.report.json")
    assert summary["status"] == "failed" and reason in summary["message"]
    assert "/tmp" not in summary["message"]
    assert s3.head_object(Bucket=UPLOADS, Key=key)["ETag"] == etag  # nothing lost
    listing = s3.list_objects_v2(Bucket=UPLOADS, Prefix=f"cogs/{stem}.tif")
    assert listing.get("KeyCount", 0) == 0  # no half-made output


def test_uploads_that_map_to_one_name_never_replace_each_other(client, s3, shared, tmp_path):
    """x.tif, x.TIF, x.tiff and x all map to cogs/x.tif: the first keeps it, the others go
    beside it under their own names, and a second event of each is skipped."""
    names = {"uploads/same/x.tif": "cog_rgb_mask.tif", "uploads/same/x.TIF": "RGB.byte.tif",
             "uploads/same/x.tiff": "nocog.tif", "uploads/same/x": "cog_cmap.tif"}
    for key, name in names.items():
        upload(s3, shared, name, key)
        assert cogify(client, key) == "created"
    outputs = {}
    for key, name in names.items():
        listing = s3.list_objects_v2(Bucket=UPLOADS, Prefix="cogs/same/")["Contents"]
        made = [o["Key"] for o in listing if o["Key"].endswith(".tif") and s3.head_object(
            Bucket=UPLOADS, Key=o["Key"])["Metadata"]["source-key"] == key]
        assert len(made) == 1, (key, made)
        outputs[key] = made[0]
        path = tmp_path / "out.tif"
        s3.download_file(UPLOADS, made[0], str(path))
        with rasterio.open(path) as cog, rasterio.open(shared / name) as original:
            np.testing.assert_array_equal(cog.read(), original.read())
    assert outputs["uploads/same/x.tif"] == "cogs/same/x.tif"
    assert len(set(outputs.values())) == 4
    for key in names:
        assert cogify(client, key) == "skipped"


def test_non_ascii_keys_convert_and_say_where_from(client, s3, shared):
    key = "uploads/a b/\u00e9 \u00fc+x.tif"
    upload(s3, shared, "cog_rgb_mask.tif", key)
    assert cogify(client, key) == "created"
    head = s3.head_object(Bucket=UPLOADS, Key="cogs/a b/\u00e9 \u00fc+x.tif")
    from urllib.parse import unquote
    assert unquote(head["Metadata"]["source-key"]) == key
    assert report(s3, "cogs/a b/\u00e9 \u00fc+x.report.json")["status"] == "created"
    assert cogify(client, key) == "skipped"


def test_half_floats_convert_losslessly(client, s3, tmp_path):
    from rasterio.transform import from_origin
    data = np.random.default_rng(1).random((1, 300, 400)).astype("float16")
    source = tmp_path / "half.tif"
    with rasterio.open(source, "w", driver="GTiff", width=400, height=300, count=1,
                       dtype="float16", crs="EPSG:4326",
                       transform=from_origin(10, 50, 0.01, 0.01)) as dst:
        dst.write(data)
    s3.upload_file(str(source), UPLOADS, "uploads/half.tif")
    assert cogify(client, "uploads/half.tif") == "created"
    s3.download_file(UPLOADS, "cogs/half.tif", str(tmp_path / "out.tif"))
    with rasterio.open(tmp_path / "out.tif") as cog:
        assert cog.dtypes[0] == "float16"
        np.testing.assert_array_equal(cog.read(), data)


def test_a_small_file_declaring_huge_pixels_is_refused_before_converting(client, s3, tmp_path):
    """A sparse TIFF of a few hundred KB declaring 100000 x 100000 pixels (9.3 GB): GDAL
    would write every one of them."""
    from rasterio.transform import from_origin
    source = tmp_path / "bomb.tif"
    with rasterio.open(source, "w", driver="GTiff", width=100_000, height=100_000, count=1,
                       dtype="uint8", crs="EPSG:4326", tiled=True, blockxsize=1024,
                       blockysize=1024, sparse_ok=True,
                       transform=from_origin(0, 10, 1e-4, 1e-4)):
        pass
    assert source.stat().st_size < 1_000_000
    s3.upload_file(str(source), UPLOADS, "uploads/bomb.tif")
    assert cogify(client, "uploads/bomb.tif") == "failed"
    summary = report(s3, "cogs/bomb.report.json")
    assert "100000x100000" in summary["message"] and "split it" in summary["message"]


def test_events_outside_the_upload_prefix_or_gone_are_ignored(client, s3, shared):
    upload(s3, shared, "cog_rgb_mask.tif", "elsewhere/x.tif")
    assert cogify(client, "elsewhere/x.tif") == "ignored"
    assert cogify(client, "uploads/never-uploaded.tif") == "ignored"


def test_outputs_under_the_upload_prefix_are_refused(client, s3, shared, monkeypatch):
    monkeypatch.setenv("COG_PREFIX", "uploads/cogs/")  # would trigger cogify forever
    upload(s3, shared, "cog_rgb_mask.tif", "uploads/loop.tif")
    assert cogify(client, "uploads/loop.tif") == "failed"


# ---- seed and render -----------------------------------------------------------------------

def drain(sqs, client):
    """Deliver every queued message to `render`, as the SQS event source would."""
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    delivered = 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return delivered
        for message in messages:
            event = client.events.generate_sqs_event([message["Body"]], queue_name=QUEUE)
            client.lambda_.invoke("render", event)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            delivered += 1


def test_seed_and_render_fill_a_tile_cache_equal_to_the_api(client, s3, sqs, shared):
    url = str(shared / "RGB.byte.tif")
    event = {"url": url, "minzoom": 6, "maxzoom": 8, "format": "png",
             "params": {"bidx": [1], "colormap_name": "viridis"}, "batch_size": 3}
    summary = client.lambda_.invoke("seed", event).payload
    assert summary["ok"] and summary["tiles"] > 0 and summary["zooms"] == [6, 7, 8]
    assert summary["batches"] == -(-summary["tiles"] // 3)
    assert drain(sqs, client) == summary["batches"]
    stored = s3.list_objects_v2(Bucket=TILES, Prefix="tiles/")["Contents"]
    assert 0 < len(stored) <= summary["tiles"]
    for item in stored:
        z, x, y = item["Key"][len("tiles/"):-len(".png")].split("/")
        obj = s3.get_object(Bucket=TILES, Key=item["Key"])
        assert obj["ContentType"] == "image/png"
        assert obj["CacheControl"] == "public, max-age=3600"
        served = client.http.get(f"/cog/tiles/{z}/{x}/{y}.png?url={url}&bidx=1"
                                 "&colormap_name=viridis", headers=ACCEPT_IMAGE)
        assert served.status_code == 200 and obj["Body"].read() == served.body


def test_seed_and_render_in_another_tile_matrix_set(client, s3, sqs, shared):
    url = str(shared / "cog_dateline.tif")  # crosses 180 degrees
    event = {"url": url, "tileMatrixSetId": "WorldCRS84Quad", "minzoom": 7, "maxzoom": 8,
             "format": "webp", "params": {"rescale": "1,7000"}}
    summary = client.lambda_.invoke("seed", event).payload
    assert summary["ok"] and summary["zooms"] == [7, 8]
    drain(sqs, client)
    stored = s3.list_objects_v2(Bucket=TILES, Prefix="tiles/WorldCRS84Quad/")["Contents"]
    assert 0 < len(stored) <= summary["tiles"]
    columns = set()
    for item in stored:
        z, x, y = item["Key"][len("tiles/WorldCRS84Quad/"):-len(".webp")].split("/")
        columns.add(int(x) >= 2 ** (int(z) + 1) // 2)  # east or west of 0 degrees
        served = client.http.get(f"/cog/tiles/WorldCRS84Quad/{z}/{x}/{y}.webp?url={url}"
                                 "&rescale=1,7000", headers=ACCEPT_IMAGE)
        body = s3.get_object(Bucket=TILES, Key=item["Key"])["Body"].read()
        assert served.status_code == 200 and body == served.body
    assert columns == {True, False}  # tiles on both sides of the antimeridian


def test_seed_with_a_bbox_plans_only_what_it_touches(client, sqs, shared):
    url = str(shared / "RGB.byte.tif")
    whole = client.lambda_.invoke("seed", {"url": url, "minzoom": 9, "maxzoom": 9}).payload
    part = client.lambda_.invoke("seed", {"url": url, "minzoom": 9, "maxzoom": 9,
                                          "bbox": [-78.5, 24.0, -78.0, 24.5]}).payload
    assert 0 < part["tiles"] < whole["tiles"]
    drain(sqs, client)


@pytest.mark.parametrize("event, message", [
    ({"minzoom": 1, "maxzoom": 2}, "url"),
    ({"url": "/etc/passwd", "minzoom": 1, "maxzoom": 2}, "allow-list"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 5}, "maxzoom"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 9, "maxzoom": 3}, "minzoom"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 1, "maxzoom": 2, "format": "gif"}, "format"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 1, "maxzoom": 2, "params": {"bidx": 0}}, "bidx"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 1, "maxzoom": 2, "bbox": [0, 0, 1, 1]}, "touch"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 0, "maxzoom": 20}, "tiles"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 0, "maxzoom": 30}, "tiles"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 1, "maxzoom": 2, "tileMatrixSetId": "X"},
     "tile matrix set"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 26, "maxzoom": 26,
      "tileMatrixSetId": "CanadianNAD83_LCC"}, "zoom level from 0 to 25"),
    ("not an object", "JSON object"),
    ({"url": 123, "minzoom": 1, "maxzoom": 2}, "'url' must be a string"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 1, "maxzoom": 2, "source": ["cog"]},
     "'source' must be a string"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 1, "maxzoom": 2, "colour": "red"},
     "'colour'"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 1, "maxzoom": 2,
      "params": {"expression": "b1+" * 30_000 + "b1"}}, "larger than"),
    ({"url": "{shared}/RGB.byte.tif", "minzoom": 6, "maxzoom": 14, "batch_size": 1},
     "raise batch_size"),
])
def test_bad_seed_events_say_what_to_fix(client, sqs, shared, event, message):
    if isinstance(event, dict) and isinstance(event.get("url"), str):
        event = {**event, "url": event["url"].format(shared=shared)}
    result = client.lambda_.invoke("seed", event).payload
    assert result["ok"] is False and message in result["error"]


def test_a_tile_that_may_pass_later_fails_its_message(client, monkeypatch):
    import socket
    with socket.socket() as sock:  # a port nobody listens on: the storage is down
        sock.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{host}/")
    monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", host)
    body = json.dumps({"url": f"http://{host}/x.tif", "format": "png", "params": {},
                       "tiles": [[8, 72, 109]]})
    event = client.events.generate_sqs_event([body], queue_name=QUEUE)
    with pytest.raises(RuntimeError, match="retried"):
        client.lambda_.invoke("render", event)


def test_permanent_failures_are_dropped_and_the_batch_goes_on(client, s3, monkeypatch, shared):
    """A source off the allow-list, a zoom past the matrix, bad parameters: no retry mends
    them; the good message of the same batch is stored."""
    url = str(shared / "RGB.byte.tif")
    good = {"url": url, "format": "png", "params": {}, "tiles": [[8, 72, 109]]}
    bad = [{**good, "url": "/etc/passwd"}, {**good, "tiles": [[40, 0, 0]]},
           {**good, "params": {"bidx": "0"}}, {**good, "tileMatrixSetId": "Nope"}]
    bodies = [json.dumps(b) for b in bad] + [json.dumps(good)]
    event = client.events.generate_sqs_event(bodies, queue_name=QUEUE)
    s3.delete_object(Bucket=TILES, Key="tiles/8/72/109.png")
    assert client.lambda_.invoke("render", event).payload is None  # nothing to retry
    assert s3.head_object(Bucket=TILES, Key="tiles/8/72/109.png")["ContentType"] == "image/png"


def test_malformed_render_messages_are_dropped_not_retried(client):
    event = client.events.generate_sqs_event(
        ["{not json", '{"tiles": 5}', "[1, 2]", "5", "null", '"text"', '{"url": 5, "tiles": []}',
         '{"url": "x.tif", "tiles": [[1, 2]]}', '{"url": "x.tif", "tiles": [], "source": []}'],
        queue_name=QUEUE)
    assert client.lambda_.invoke("render", event).payload is None
