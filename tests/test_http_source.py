"""Sources over real HTTP with range requests, from a server on 127.0.0.1.

Loopback is never opened by default; the explicit, exact UNSAFE_ALLOW_HOSTS exemption
(tests and benchmarks only) lets the suite exercise GDAL's /vsicurl/ range reads.
"""


import pytest
from rangeserver import RangeServer

from chalicelib.sources.datasets import cache
from tests.support import ACCEPT_IMAGE, decode, tile_path


@pytest.fixture
def http_server(shared):
    with RangeServer(shared) as server:
        yield server


def test_loopback_sources_are_refused_by_default(client, http_server, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{http_server.host}/")
    response = client.http.get(f"/cog/info?url=http://{http_server.host}/cog.tif")
    assert response.status_code == 403
    assert http_server.log == []  # not a single byte was requested


def test_tiles_over_http_range_requests(client, http_server, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{http_server.host}/")
    monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", http_server.host)
    url = f"http://{http_server.host}/cog.tif"
    info = client.http.get(f"/cog/info?url={url}").json_body
    assert info["width"] == 2658
    import mercantile
    west, south, east, north = info["bounds"]
    tile = mercantile.tile((west + east) / 2, (south + north) / 2, info["maxzoom"])
    before = len(http_server.log)
    response = client.http.get(tile_path(tile, ".png", url=url), headers=ACCEPT_IMAGE)
    assert response.status_code == 200 and decode(response.body).shape[1:] == (256, 256)
    requests = http_server.log[before:]
    assert requests and all(r.method == "GET" and r.range for r in requests)
    # the header was fetched once, at open; a warm tile reads only data ranges
    assert not any(r.range.startswith("bytes=0-") for r in requests)
    # a second, identical tile comes from the caches: no request at all
    before = len(http_server.log)
    client.http.get(tile_path(tile, ".png", url=url), headers=ACCEPT_IMAGE)
    assert len(http_server.log) == before


def test_missing_remote_file_is_404(client, http_server, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{http_server.host}/")
    monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", http_server.host)
    response = client.http.get(f"/cog/info?url=http://{http_server.host}/nope.tif")
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


def test_a_redirect_to_a_host_off_the_allow_list_is_not_followed(client, shared, monkeypatch):
    """An allowed server answering 302 to another host (here: a private one, by name):
    GDAL must not reach it, and the user is told why."""
    with RangeServer(shared) as allowed, RangeServer(shared) as target:
        target_url = f"http://localhost:{target.host.rsplit(':', 1)[1]}/cog.tif"
        allowed.redirects["/moved.tif"] = target_url
        monkeypatch.setenv("ALLOWED_SOURCES", f"http://{allowed.host}/")
        monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", allowed.host)
        response = client.http.get(f"/cog/info?url={allowed.url('moved.tif')}")
        assert response.status_code == 403, response.body
        assert "redirect" in response.json_body["Message"]
        assert [r.path for r in allowed.log] and target.log == []
        # the allowed file itself still opens (the guard blocks nothing on the list)
        assert client.http.get(f"/cog/info?url={allowed.url('cog.tif')}").status_code == 200
