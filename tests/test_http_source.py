"""Sources over real HTTP with range requests, from a server on 127.0.0.1.

Loopback is never opened by default; the explicit, exact UNSAFE_ALLOW_HOSTS exemption
(tests and benchmarks only) lets the suite exercise GDAL's /vsicurl/ range reads.
"""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.datasets import cache
from tests.support import ACCEPT_IMAGE, SHARED, decode, tile_path


class RangeHandler(BaseHTTPRequestHandler):
    """Serves files from SHARED with HEAD and single-range GET, and logs every request."""

    log: list = []

    def _file(self):
        path = SHARED / self.path.lstrip("/").split("?")[0]
        if not path.is_file() or ".." in self.path:
            self.send_error(404)
            return None
        return path.read_bytes()

    def do_HEAD(self):
        data = self._file()
        self.log.append(("HEAD", self.path, None))
        if data is not None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

    def do_GET(self):
        data = self._file()
        rng = self.headers.get("Range")
        self.log.append(("GET", self.path, rng))
        if data is None:
            return
        match = re.match(r"bytes=(\d+)-(\d*)$", rng or "")
        if not match:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        start = int(match.group(1))
        end = min(int(match.group(2) or len(data) - 1), len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(data[start:end + 1])

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(shared):
    server = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    RangeHandler.log = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_loopback_sources_are_refused_by_default(client, http_server, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{http_server}/")
    response = client.http.get(f"/cog/info?url=http://{http_server}/cog.tif")
    assert response.status_code == 403
    assert RangeHandler.log == []  # not a single byte was requested


def test_tiles_over_http_range_requests(client, http_server, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{http_server}/")
    monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", http_server)
    url = f"http://{http_server}/cog.tif"
    info = client.http.get(f"/cog/info?url={url}").json_body
    assert info["width"] == 2658
    import mercantile
    west, south, east, north = info["bounds"]
    tile = mercantile.tile((west + east) / 2, (south + north) / 2, info["maxzoom"])
    before = len(RangeHandler.log)
    response = client.http.get(tile_path(tile, ".png", url=url), headers=ACCEPT_IMAGE)
    assert response.status_code == 200 and decode(response.body).shape[1:] == (256, 256)
    requests = RangeHandler.log[before:]
    assert requests and all(method == "GET" and rng for method, _, rng in requests)
    # the header was fetched once, at open; a warm tile reads only data ranges
    assert not any(rng.startswith("bytes=0-") for _, _, rng in requests)
    # a second, identical tile comes from the caches: no request at all
    before = len(RangeHandler.log)
    client.http.get(tile_path(tile, ".png", url=url), headers=ACCEPT_IMAGE)
    assert len(RangeHandler.log) == before


def test_missing_remote_file_is_404(client, http_server, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{http_server}/")
    monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", http_server)
    response = client.http.get(f"/cog/info?url=http://{http_server}/nope.tif")
    assert response.status_code == 404


def test_unreachable_upstream_is_502_and_not_cached(client, monkeypatch):
    import socket
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{host}/")
    monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", host)
    response = client.http.get(f"/cog/info?url=http://{host}/cog.tif")
    assert response.status_code == 502
    assert len(cache._entries) == 0
