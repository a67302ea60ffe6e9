"""The egress guard: no hop off the allow-list, in any thread, by any scheme, port or path.

An allowed server on 127.0.0.1 (exempt from the private-address ban by UNSAFE_ALLOW_HOSTS,
allowed under /r/ only) answers redirects; the "secret" servers are traps that record every
connection whatever its protocol, on the same host (another port), on another host
(127.0.0.2), by name (localhost) and over IPv6 ([::1]). Each must see nothing, through
sources, STAC assets, mosaic members and documents, and the user gets a 403 that says why.
"""

import json
import shutil
import subprocess
import threading

import pytest
from rangeserver import RangeServer, Trap

from chalicelib.sources import datasets, egress, gdalconfig
from tests.support import ACCEPT_IMAGE


@pytest.fixture
def site(shared, tmp_path):
    """The allowed server's files: /r/ (allowed) and /secret/ (same host, not allowed)."""
    for folder in ("r", "secret"):
        (tmp_path / folder).mkdir()
    shutil.copy(shared / "cog.tif", tmp_path / "r" / "a.tif")
    shutil.copy(shared / "cog.tif", tmp_path / "r" / "b.tif")
    shutil.copy(shared / "cog.tif", tmp_path / "secret" / "secret.tif")
    return tmp_path


@pytest.fixture
def allowed(site, monkeypatch):
    with RangeServer(site) as server:
        monkeypatch.setenv("ALLOWED_SOURCES", f"http://{server.host}/r/,{site}/docs/")
        monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", server.host)
        datasets.cache.clear()
        yield server


@pytest.fixture
def traps():
    """Secret listeners: same host, another host, IPv6."""
    with Trap("127.0.0.1") as one, Trap("127.0.0.2") as two, Trap("::1") as six:
        yield {"same-host": one, "other-host": two, "ipv6": six}


def targets(traps) -> dict[str, str]:
    one, two, six = traps["same-host"], traps["other-host"], traps["ipv6"]
    return {
        "other port": f"http://127.0.0.1:{one.port}/s.tif",
        "other host": f"http://127.0.0.2:{two.port}/s.tif",
        "by name": f"http://localhost:{one.port}/s.tif",
        "ipv6": f"http://[::1]:{six.port}/s.tif",
        "https": f"https://127.0.0.1:{one.port}/s.tif",
        "gopher": f"gopher://127.0.0.1:{one.port}/_SMUGGLED",
        "ftp": f"ftp://127.0.0.1:{one.port}/s.tif",
    }


def untouched(traps) -> bool:
    return not any(trap.touched() for trap in traps.values())


def cold_container():
    """The state of a new container: nothing applied to GDAL yet."""
    datasets.cache._applied = None
    datasets.cache._gdal_options = ()
    gdalconfig.set_option("GDAL_HTTP_PROXY", None)


def mosaic_document(urls: list[str]) -> dict:
    from chalicelib.core.settings import current
    from chalicelib.jobs import mosaics
    return mosaics.build(urls, current())


def test_the_guard_holds_in_every_thread(client, allowed, site, traps):
    """A cold container whose first open runs on the reader pool (a mean mosaic over two
    files): later requests, on other threads, are guarded all the same."""
    cold_container()
    members = [allowed.url("r/a.tif"), allowed.url("r/b.tif")]
    (site / "docs").mkdir()
    (site / "docs" / "m.json").write_text(json.dumps(mosaic_document(members)))
    cold_container()  # building the mosaic opened the files on this thread
    datasets.cache.clear()
    info = client.http.get(f"/mosaicjson/info?url={site}/docs/m.json").json_body
    z = info["minzoom"]
    import mercantile
    west, south, east, north = info["bounds"]
    tile = mercantile.tile((west + east) / 2, (south + north) / 2, z)
    first = client.http.get(f"/mosaicjson/tiles/WebMercatorQuad/{z}/{tile.x}/{tile.y}.png"
                            f"?url={site}/docs/m.json&pixel_selection=mean",
                            headers=ACCEPT_IMAGE)
    assert first.status_code == 200
    seen = {"main": gdalconfig.get_option("GDAL_HTTP_PROXY")}
    thread = threading.Thread(
        target=lambda: seen.__setitem__("worker", gdalconfig.get_option("GDAL_HTTP_PROXY")))
    thread.start()
    thread.join()
    assert seen["main"] == seen["worker"] and seen["main"].startswith("http://127.0.0.1:")
    allowed.redirects["/r/L.tif"] = targets(traps)["other host"]
    response = client.http.get(f"/cog/info?url={allowed.url('r/L.tif')}")
    assert response.status_code == 403 and "redirect" in response.json_body["Message"]
    assert untouched(traps)


@pytest.mark.parametrize("kind", ["other port", "other host", "by name", "ipv6", "https",
                                  "gopher", "ftp"])
def test_a_redirect_off_the_list_reaches_nothing(client, allowed, traps, kind):
    allowed.redirects["/r/L.tif"] = targets(traps)[kind]
    response = client.http.get(f"/cog/info?url={allowed.url('r/L.tif')}")
    assert response.status_code == 403, response.body
    assert "redirect" in response.json_body["Message"]
    assert untouched(traps)
    assert "/r/L.tif" in [r.path for r in allowed.log]


def test_a_redirect_to_another_path_of_the_allowed_host_is_refused(client, allowed):
    allowed.redirects["/r/L.tif"] = allowed.url("secret/secret.tif")
    response = client.http.get(f"/cog/info?url={allowed.url('r/L.tif')}")
    assert response.status_code == 403 and "redirect" in response.json_body["Message"]
    assert not [r for r in allowed.log if r.path.startswith("/secret")]
    # a redirect that stays under the allowed prefix is followed
    allowed.redirects["/r/moved.tif"] = allowed.url("r/a.tif")
    assert client.http.get(f"/cog/info?url={allowed.url('r/moved.tif')}").status_code == 200


def test_stac_assets_and_mosaic_members_that_redirect_reach_nothing(client, allowed, site,
                                                                    traps):
    allowed.redirects["/r/L.tif"] = targets(traps)["other host"]
    (site / "docs").mkdir()
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "bbox": [-180, -85, 180, 85],
            "geometry": {"type": "Polygon", "coordinates": [[[-180, -85], [180, -85],
                                                             [180, 85], [-180, 85],
                                                             [-180, -85]]]},
            "properties": {"datetime": "2024-01-01T00:00:00Z"}, "links": [],
            "assets": {"data": {"href": allowed.url("r/L.tif"), "roles": ["data"]}}}
    (site / "docs" / "item.json").write_text(json.dumps(item))
    response = client.http.get(f"/stac/info?url={site}/docs/item.json&assets=data")
    assert response.status_code == 403, response.body
    document = mosaic_document([allowed.url("r/a.tif")])
    for quadkey in document["tiles"]:
        document["tiles"][quadkey] = [allowed.url("r/L.tif")]
    (site / "docs" / "m.json").write_text(json.dumps(document))
    quadkey = next(iter(document["tiles"]))
    import mercantile
    tile = mercantile.quadkey_to_tile(quadkey)
    response = client.http.get(f"/mosaicjson/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}"
                               f".png?url={site}/docs/m.json", headers=ACCEPT_IMAGE)
    assert response.status_code == 403, response.body
    assert untouched(traps)


def test_a_document_that_redirects_is_not_followed(client, allowed, traps, monkeypatch):
    monkeypatch.setenv("ALLOWED_SOURCES", f"http://{allowed.host}/r/")
    allowed.redirects["/r/item.json"] = targets(traps)["other host"].replace(".tif", ".json")
    response = client.http.get(f"/stac/info?url={allowed.url('r/item.json')}")
    assert response.status_code == 400 and "redirect" in response.json_body["Message"]
    assert untouched(traps)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate for the https server")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return str(folder / "cert.pem"), str(folder / "key.pem")


def test_https_goes_through_a_checked_tunnel(client, site, certificate, traps, monkeypatch):
    with RangeServer(site, tls=certificate) as server:
        monkeypatch.setenv("ALLOWED_SOURCES", f"https://{server.host}/r/")
        monkeypatch.setenv("UNSAFE_ALLOW_HOSTS", server.host)
        monkeypatch.setenv("GDAL_HTTP_UNSAFESSL", "YES")  # the test's self-signed certificate
        datasets.cache.clear()
        assert client.http.get(f"/cog/info?url={server.url('r/a.tif')}").status_code == 200
        assert [r for r in server.log if r.path == "/r/a.tif"]
        server.redirects["/r/L.tif"] = targets(traps)["https"]
        response = client.http.get(f"/cog/info?url={server.url('r/L.tif')}")
        assert response.status_code == 403 and "redirect" in response.json_body["Message"]
        assert untouched(traps)


# ---- the rule itself, for hosts the suite cannot stand up (AWS's) --------------------------

def test_s3_hosts_are_allowed_by_bucket_only():
    rule = egress.Rule(("s3://mine/cogs/", "https://data.example.com/pub/"))
    assert rule.tunnel("mine.s3.amazonaws.com", 443)
    assert rule.tunnel("mine.s3.eu-west-1.amazonaws.com", 443)  # a region redirect
    assert rule.tunnel("mine.s3-us-west-2.amazonaws.com", 443)
    assert not rule.tunnel("theirs.s3.amazonaws.com", 443)
    assert not rule.tunnel("abc123.execute-api.us-east-1.amazonaws.com", 443)
    assert not rule.tunnel("s3.amazonaws.com", 443)  # path style: no dotted bucket needs it
    assert not rule.tunnel("mine.s3.amazonaws.com", 8443)
    assert rule.tunnel("data.example.com", 443)
    assert not rule.tunnel("data.example.com", 8443)
    assert not rule.tunnel("example.com", 443)
    dotted = egress.Rule(("s3://my.bucket/",))
    assert dotted.tunnel("s3.us-east-1.amazonaws.com", 443)


def test_plain_http_requests_are_checked_by_path_and_s3_listings_by_prefix():
    rule = egress.Rule(("http://h.example:8080/r/", "s3://b/data/"), s3_endpoint="127.0.0.1:9000",
                       s3_https=False, virtual_hosting=False)
    assert rule.request("http://h.example:8080/r/x.tif")
    assert not rule.request("http://h.example:8080/secret/x.tif")
    assert not rule.request("http://h.example:8080/r/../secret/x.tif")
    assert not rule.request("http://h.example:8081/r/x.tif")
    assert not rule.request("gopher://h.example:8080/r/x.tif")
    assert rule.request("http://127.0.0.1:9000/b/data/x.tif")
    assert not rule.request("http://127.0.0.1:9000/b/other/x.tif")
    assert not rule.request("http://127.0.0.1:9000/c/data/x.tif")
    assert rule.request("http://127.0.0.1:9000/b/?delimiter=%2F&prefix=data%2Fx.tif%2F")
    assert not rule.request("http://127.0.0.1:9000/b/?delimiter=%2F&prefix=other%2F")
    assert not rule.request("http://127.0.0.1:9000/b/")
    assert rule.trusted("127.0.0.1", 9000) and not rule.trusted("127.0.0.1", 9001)


def test_a_dead_proxy_is_started_again_and_the_guard_still_holds(client, allowed, traps):
    assert client.http.get(f"/cog/info?url={allowed.url('r/a.tif')}").status_code == 200
    child = egress._child[0].process
    child.kill()
    child.wait(timeout=10)
    datasets.cache.clear()
    assert client.http.get(f"/cog/info?url={allowed.url('r/b.tif')}").status_code == 200
    assert egress._child[0].process.pid != child.pid
    allowed.redirects["/r/L.tif"] = targets(traps)["other host"]
    assert client.http.get(f"/cog/info?url={allowed.url('r/L.tif')}").status_code == 403
    assert untouched(traps)


def test_the_proxy_starts_only_for_remote_allow_lists_and_ends_with_its_parent(tmp_path):
    """A server of local files never starts it; the proxy process exits with the parent."""
    import os
    import sys
    script = tmp_path / "probe.py"
    script.write_text(
        "import json, sys\n"
        "from chalicelib.core.settings import from_environ\n"
        "from chalicelib.readers import cog\n"
        "from chalicelib.sources import egress\n"
        "cog.open_dataset('chalicelib/demo/demo.tif', from_environ())\n"
        "before = len(egress._child)\n"
        "egress.guard(egress.Rule(('https://example.com/',)))\n"
        "print(json.dumps([before, egress._child[0].process.pid]))\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "ALLOWED_SOURCES": "chalicelib/demo/", "PYTHONPATH": root}
    result = subprocess.run([sys.executable, str(script)], cwd=root, env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    before, pid = json.loads(result.stdout.strip().splitlines()[-1])
    assert before == 0
    # the parent has exited: its proxy sees stdin close and exits
    import select
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already gone
    try:
        assert select.select([handle], [], [], 10)[0], "the proxy outlived its parent"
    finally:
        os.close(handle)
