"""s3:// sources through GDAL's /vsis3/ against moto's S3 on 127.0.0.1 (no code patched)."""

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mercantile
import numpy as np
import pytest

from chalicelib.core.errors import NotARaster, NotFound, SourceNotAllowed, UpstreamTimeout
from chalicelib.readers import geotiff
from chalicelib.sources import datasets
from tests.support import (
    ACCEPT_IMAGE,
    decode,
    engine_tile,
    open_dataset,
    tile_path,
    wmq,
    write_raster,
)

BUCKET = "cogs-test"


@pytest.fixture(scope="module")
def bucket(moto, shared):
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for name in ("cog.tif", "cog_rgb_mask.tif", "no_geo.jpg"):
        s3.upload_file(str(shared / name), BUCKET, f"data/{name}")
    return s3


@pytest.fixture
def allow_s3(monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"s3://{BUCKET}/data/")


def centre_tile(entry, zoom):
    west, south, east, north = entry.geographic_bounds
    return mercantile.tile((west + east) / 2, (south + north) / 2, zoom)


def test_s3_tiles_equal_local_tiles(client, bucket, allow_s3, shared, monkeypatch):
    url = f"s3://{BUCKET}/data/cog.tif"
    info = client.http.get(f"/cog/info?url={url}").json_body
    assert info["width"] == 2658 and info["name"] == url
    entry = open_dataset(url)
    tile = centre_tile(entry, info["maxzoom"])
    remote = client.http.get(tile_path(tile, ".npy", url=url), headers=ACCEPT_IMAGE)
    assert remote.status_code == 200
    monkeypatch.setenv("ALLOWED_SOURCES", f"{shared}/")
    local = client.http.get(tile_path(tile, ".npy", url=str(shared / "cog.tif")),
                            headers=ACCEPT_IMAGE)
    assert remote.body == local.body
    monkeypatch.setenv("ALLOWED_SOURCES", f"s3://{BUCKET}/data/")
    png = client.http.get(tile_path(tile, ".png", url=url), headers=ACCEPT_IMAGE)
    assert decode(png.body).shape[1:] == (256, 256)


@pytest.mark.parametrize("url, status, code", [
    (f"s3://{BUCKET}/data/missing.tif", 404, "NotFound"),
    (f"s3://{BUCKET}/data/no_geo.jpg", 422, "NotARaster"),
    (f"s3://{BUCKET}/other/cog.tif", 403, "SourceNotAllowed"),  # not on the allow-list
])
def test_s3_errors(client, bucket, allow_s3, url, status, code):
    response = client.http.get(f"/cog/info?url={url}")
    assert response.status_code == status and response.json_body["Code"] == code


def test_missing_bucket_is_404(client, bucket, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", "s3://no-such-bucket/")
    response = client.http.get("/cog/info?url=s3://no-such-bucket/x.tif")
    assert response.status_code == 404


def test_access_denied_is_403(bucket, monkeypatch):
    """A second moto server that enforces authentication: our keys are unknown to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                               env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        monkeypatch.setenv("AWS_S3_ENDPOINT", f"127.0.0.1:{port}")
        monkeypatch.setenv("ALLOWED_SOURCES", "s3://locked/")
        with pytest.raises(SourceNotAllowed, match="refused access"):
            open_dataset("s3://locked/cog.tif")
    finally:
        process.terminate()
        process.wait(timeout=10)


class StallingProxy:
    """A TCP proxy to moto that can stop answering, as a storage outage would."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.stalled = threading.Event()
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source, target):
        try:
            while not self._stop.is_set():
                data = source.recv(65536)
                if not data:
                    break
                while self.stalled.is_set() and not self._stop.is_set():
                    time.sleep(0.05)  # hold everything: the storage has stopped answering
                target.sendall(data)
        except OSError:
            pass

    def close(self):
        self._stop.set()
        for sock in self._sockets + [self._server]:
            sock.close()


def test_upstream_timeout_is_504_and_does_not_poison_the_cache(bucket, moto, monkeypatch):
    proxy = StallingProxy(moto.port)
    try:
        monkeypatch.setenv("AWS_S3_ENDPOINT", proxy.address)
        monkeypatch.setenv("ALLOWED_SOURCES", f"s3://{BUCKET}/data/")
        monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "2")
        monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
        url = f"s3://{BUCKET}/data/cog.tif"
        entry = open_dataset(url)  # opened and cached while the storage answers
        tile = centre_tile(entry, geotiff.zoom_range(entry, wmq())[1])
        proxy.stalled.set()
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            engine_tile(url, str(tile.z), str(tile.x), f"{tile.y}.png", {})
        assert time.monotonic() - started < 15  # bounded, never a hang
        assert entry not in datasets.cache._entries.values()  # the failed dataset is dropped
        proxy.stalled.clear()  # the storage answers again: the next request reopens, works
        image = engine_tile(url, str(tile.z), str(tile.x), f"{tile.y}.png", {})
        assert image.body.startswith(b"\x89PNG")
        assert open_dataset(url) is not entry
    finally:
        proxy.close()


def test_a_file_that_turns_bad_gives_422_not_500(bucket, moto, allow_s3, rasters):
    s3 = bucket
    path = write_raster(rasters / "s3_small.tif", np.ones((1, 256, 256), "uint8"))
    s3.upload_file(str(path), BUCKET, "data/replaced.tif")
    s3.put_object(Bucket=BUCKET, Key="data/garbage.tif", Body=b"definitely not a tiff")
    with pytest.raises(NotARaster):
        open_dataset(f"s3://{BUCKET}/data/garbage.tif")
    with pytest.raises(NotFound):
        open_dataset(f"s3://{BUCKET}/data/nothing-here.tif")


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def data_requests(moto, key: str) -> list[str]:
    lines = [ANSI.sub("", line) for line in moto.requests()]
    return [line for line in lines if f"/{BUCKET}/{key}" in line]


def test_http_requests_per_tile(bucket, moto, allow_s3, shared):
    """Cold container: open + first tile; warm: tiles from the cached dataset."""
    key = f"data/cold-{time.monotonic_ns()}.tif"  # a key GDAL has never cached
    bucket.upload_file(str(shared / "cog.tif"), BUCKET, key)
    url = f"s3://{BUCKET}/{key}"
    before = len(data_requests(moto, key))
    entry = open_dataset(url)
    opened = len(data_requests(moto, key)) - before
    zoom = geotiff.zoom_range(entry, wmq())[1]
    centre = centre_tile(entry, zoom)
    tiles = [mercantile.Tile(centre.x + dx, centre.y + dy, zoom)
             for dx in range(-2, 3) for dy in range(-2, 3)]
    engine_tile(url, str(tiles[0].z), str(tiles[0].x), f"{tiles[0].y}.png", {})
    first = len(data_requests(moto, key)) - before
    for tile in tiles[1:]:
        engine_tile(url, str(tile.z), str(tile.x), f"{tile.y}.png", {})
    requests = data_requests(moto, key)[before:]
    warm = (len(requests) - first) / (len(tiles) - 1)
    print(f"\nS3 requests (moto): open {opened}, cold first tile {first} in all, "
          f"warm {warm:.2f} per tile over {len(tiles) - 1} tiles")
    assert opened <= 2 and first <= 6
    assert warm <= 2.0  # the header is never fetched again; only the data ranges needed
    assert not any("?" in r.split()[1] for r in requests)  # no bucket listings


def test_the_api_reads_s3_without_loading_boto3(bucket, moto):
    """rasterio would import boto3 (0.2 s of a cold start); the app keeps it out, and S3
    reads still work, GDAL taking the credentials from the environment."""
    code = (
        "import sys, app\n"
        "from tests.support import engine_tile\n"
        f"url = 's3://{BUCKET}/data/cog.tif'\n"
        "image = engine_tile(url, '7', '44', '24.png', {})\n"
        "assert image.body.startswith(b'\\x89PNG')\n"
        "assert 'boto3' not in sys.modules, 'boto3 was imported'\n"
        "import boto3\n"  # still importable for the pure functions
    )
    env = {**os.environ, "ALLOWED_SOURCES": f"s3://{BUCKET}/data/"}
    result = subprocess.run([sys.executable, "-c", code], cwd=str(Path(__file__).parent.parent),
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_source_replaced_in_place_is_read_again_after_source_ttl(
        client, bucket, allow_s3, monkeypatch, rasters):
    """A COG and a STAC item overwritten under the same keys (as cogify overwrites its
    output): a warm container keeps what it read for SOURCE_TTL seconds, then reads both
    again (GDAL's cached ranges of the old file dropped too). The clock is moved, not
    waited for."""
    import json
    now = [1_000.0]
    monkeypatch.setattr(datasets, "clock", lambda: now[0])
    from chalicelib.sources import documents
    documents.clear()
    tile = mercantile.Tile(x=300, y=380, z=10)  # the synthetic rasters' tile
    bounds = mercantile.bounds(tile)
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "swap", "bbox": list(bounds),
            "geometry": {"type": "Point", "coordinates": [bounds.west, bounds.south]},
            "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": []}

    def put(value: int, asset: str) -> None:
        path = write_raster(rasters / f"swap{value}.tif", np.full((1, 256, 256), value, "uint8"))
        bucket.upload_file(str(path), BUCKET, "data/swap.tif")
        bucket.put_object(Bucket=BUCKET, Key="data/swap.json", Body=json.dumps(
            {**item, "assets": {asset: {"href": "swap.tif", "type": "image/tiff"}}}))

    def values() -> tuple[int, list[str]]:
        cog = client.http.get(tile_path(tile, ".npy", url=f"s3://{BUCKET}/data/swap.tif"),
                              headers=ACCEPT_IMAGE)
        assert cog.status_code == 200, cog.body[:200]
        import io
        first = int(np.load(io.BytesIO(cog.body))[0, 0, 0])
        assets = client.http.get(f"/stac/assets?url=s3://{BUCKET}/data/swap.json").json_body
        return first, assets

    put(10, "old")
    assert values() == (10, ["old"])
    put(20, "new")
    now[0] += 299  # within SOURCE_TTL (300 s by default): what was read stands
    assert values() == (10, ["old"])
    now[0] += 2
    assert values() == (20, ["new"])
    monkeypatch.setenv("SOURCE_TTL", "0")  # 0: read again on every request
    put(30, "newer")
    assert values() == (30, ["newer"])
