"""The allow-list and the sources that are never opened."""

import pytest

from chalicelib.core.errors import BadRequest, NotFound, SourceNotAllowed
from chalicelib.sources import allowlist

ALLOWED = ("s3://bucket/cogs/", "https://data.example.com/cogs", "/srv/rasters/",
           "chalicelib/demo/")


@pytest.mark.parametrize("url, gdal_path", [
    ("s3://bucket/cogs/a.tif", "/vsis3/bucket/cogs/a.tif"),
    ("s3://bucket/cogs/deep/er/b.tif", "/vsis3/bucket/cogs/deep/er/b.tif"),
    ("/srv/rasters/x.tif", "/srv/rasters/x.tif"),
])
def test_allowed_sources_map_to_gdal_paths(url, gdal_path):
    assert allowlist.resolve(url, ALLOWED).gdal_path == gdal_path


def test_relative_paths_resolve_against_the_project():
    src = allowlist.resolve("chalicelib/demo/demo.tif", ALLOWED)
    assert src.gdal_path.endswith("/chalicelib/demo/demo.tif") and src.gdal_path.startswith("/")


@pytest.mark.parametrize("url", [
    "s3://bucket/cogsx/a.tif",                       # prefix is a directory, not a string
    "s3://bucket2/cogs/a.tif",
    "s3://other/cogs/a.tif",
    "https://data.example.com/cogs-private/x.tif",
    "https://data.example.com.evil.net/cogs/x.tif",  # host must match exactly
    "http://data.example.com/cogs/x.tif",            # scheme must match
    "https://data.example.com:8443/cogs/x.tif",      # port must match
    "/srv/rasters/../secrets/x.tif",                 # normalised before the check
    "/srv/rasters-old/x.tif",
    "/etc/passwd",
    "chalicelib/demo/../../app.py",
])
def test_sources_outside_the_allow_list_are_refused(url):
    with pytest.raises(SourceNotAllowed):
        allowlist.resolve(url, ALLOWED)


@pytest.mark.parametrize("url", [
    "file:///srv/rasters/x.tif",
    "/vsicurl/https://data.example.com/cogs/x.tif",
    "/vsis3/bucket/cogs/a.tif",
    "/srv/rasters//vsimem/x",
    "GTIFF_DIR:1:/srv/rasters/x.tif",
    "NETCDF:/srv/rasters/x.nc:var",
    "ftp://data.example.com/cogs/x.tif",
    "https://user:pw@data.example.com/cogs/x.tif",
    "https://data.example.com/cogs/%2e%2e/%2e%2e/x.tif",
    "https://data.example.com/cogs/..%2fx.tif",
    "/srv/rasters/x.tif\x00.png",
    "/srv/rasters/a\\..\\b.tif",
])
def test_dangerous_sources_are_never_opened_even_when_allowed(url):
    everything = ALLOWED + ("/", "https://data.example.com/", "file:///")
    with pytest.raises(SourceNotAllowed):
        allowlist.resolve(url, everything)


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.1.2.3", "localhost", "169.254.169.254", "10.0.0.1", "172.16.5.5",
    "192.168.1.1", "[::1]", "[fd00::1]", "0.0.0.0", "[::ffff:127.0.0.1]", "100.64.0.1",
])
def test_private_addresses_are_never_opened_whatever_the_list_says(host):
    url = f"http://{host}/x.tif"
    with pytest.raises(SourceNotAllowed, match="private|loopback|link-local"):
        allowlist.resolve(url, (f"http://{host}/",))


def test_the_unsafe_host_exemption_is_explicit_and_exact():
    allowed = ("http://127.0.0.1:8123/",)
    exempt = allowlist.resolve("http://127.0.0.1:8123/a.tif", allowed, ("127.0.0.1:8123",))
    assert exempt.gdal_path == "/vsicurl/http://127.0.0.1:8123/a.tif"
    with pytest.raises(SourceNotAllowed):
        allowlist.resolve("http://127.0.0.1:8123/a.tif", allowed, ("127.0.0.1:9999",))


def test_unresolvable_hosts_are_not_found():
    with pytest.raises(NotFound):
        allowlist.resolve("https://no-such-host.invalid/cogs/x.tif", ("https://no-such-host.invalid/",))


@pytest.mark.parametrize("url", ["", "   ", "s3://bucket", "s3://bucket/", "https:///x.tif",
                                 "https://h:99999/x", "x" * 3000])
def test_malformed_sources_are_bad_requests(url):
    with pytest.raises((BadRequest, SourceNotAllowed)):
        allowlist.resolve(url, ALLOWED + ("https://h/",))


def test_an_empty_allow_list_allows_nothing():
    with pytest.raises(SourceNotAllowed):
        allowlist.resolve("s3://bucket/cogs/a.tif", ())


def test_display_names_never_show_a_server_path():
    src = allowlist.resolve("/srv/rasters/sub/x.tif", ALLOWED)
    assert allowlist.display_name(src) == "x.tif"
