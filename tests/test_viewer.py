"""The map viewer at `/`, in a real browser: headless Chromium (Debian's package) driven by
Playwright, against `chalice local`. The page loads Leaflet from unpkg.com; here the same
files come from the npm registry (`npm pack`), served in place of the CDN by request
interception; the OpenStreetMap base layer is refused, so the map shows only our tiles.

Screenshots of each state go to build/screenshots/ (`make screenshots` refreshes the README's,
in docs/screenshots/)."""

import io
import json
import os
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
from chalice_local import ChaliceLocal
from PIL import Image

from tests.support import ROOT, fetch
from tools import browser as tools_browser

pytestmark = pytest.mark.browser

DEMO = "chalicelib/demo/demo.tif"
BACKGROUND = (221, 221, 221)  # Leaflet's map container, where no tile is drawn
SHOTS = Path(os.environ.get("SCREENSHOTS") or ROOT / "build" / "screenshots")
TIMEOUT = 30_000  # ms, for any one wait in the page


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright
    path = tools_browser.chromium()
    if path is None:
        pytest.fail(tools_browser.HOW + " (make test installs it when it can)")
    leaflet = tools_browser.npm_package(*tools_browser.LEAFLET) / "dist"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched, leaflet
        launched.close()


@pytest.fixture(scope="module")
def server(shared):
    with ChaliceLocal("test", {"ALLOWED_SOURCES": f"chalicelib/demo/,{shared}/"}) as local:
        yield local.base


@pytest.fixture
def open_page(chromium):
    browser, leaflet = chromium
    contexts = []

    def open_(url, cdn=True):
        context = browser.new_context(viewport={"width": 1280, "height": 960})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        version = "/".join(tools_browser.LEAFLET)

        def from_npm(route):
            name = route.request.url.split(f"/{version.replace('/', '@')}/dist/", 1)[1]
            route.fulfill(path=str(leaflet / name))
        if cdn:
            page.route(f"https://unpkg.com/{version.replace('/', '@')}/dist/**", from_npm)
        else:
            page.route("https://unpkg.com/**", lambda route: route.abort())
        page.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
        page.goto(url)
        return page
    yield open_
    for context in contexts:
        context.close()


def tiles_loaded(page, after: int = 0) -> None:
    page.wait_for_function(f"window.cogtiler && window.cogtiler.tilesLoaded > {after}")


def map_pixels(page, name: str | None) -> np.ndarray:
    """The map as (h, w, 3) RGB; also kept as a screenshot of the whole page (``name``)."""
    if name:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"viewer-{name}.jpg"), type="jpeg", quality=70)
    shot = Image.open(io.BytesIO(page.locator("#map").screenshot())).convert("RGB")
    return np.asarray(shot)


def drawn(pixels: np.ndarray) -> np.ndarray:
    """Where a tile is drawn (not the empty map's background), away from the zoom buttons
    (top left) and the attribution (bottom)."""
    shown = (pixels != BACKGROUND).any(axis=2)
    shown[:80, :80] = shown[-24:] = False
    return shown


def api(server, path, **query):
    status, _, body = fetch(f"{server}{path}?{urlencode(query)}")
    assert status == 200, body
    return json.loads(body)


def test_the_demo_shows_tiles_and_what_the_file_is(server, open_page):
    page = open_page(server + "/")
    tiles_loaded(page)
    pixels = map_pixels(page, "demo")
    assert drawn(pixels).mean() > 0.1  # the data, in the map fitted to its bounds
    assert pixels[drawn(pixels)].std() > 10  # an image, not a flat colour
    info = page.locator("#info").inner_text()
    assert "bands\t3" in info and "791 x 718" in info and "EPSG:32618" in info
    assert "red" in info and "overviews\t2, 4" in info
    assert page.locator("#message").is_hidden()


def test_a_colormap_changes_the_tiles_and_the_state_is_in_the_address(server, open_page):
    page = open_page(f"{server}/?url={DEMO}&bidx=1")
    tiles_loaded(page)
    grey = map_pixels(page, "band-1")
    shown = drawn(grey)
    assert (grey[shown][:, 0] == grey[shown][:, 1]).all()  # one band: grey
    loads = page.evaluate("window.cogtiler.tilesLoaded")
    page.click("#swatches button[data-name=viridis]")
    tiles_loaded(page, loads)
    coloured = map_pixels(page, "viridis")
    shown = drawn(coloured)
    assert (coloured[shown][:, 0] != coloured[shown][:, 1]).mean() > 0.5  # colours now
    assert "colormap_name=viridis" in page.url and "bidx=1" in page.url and "map=" in page.url
    # the address is the view: opened again, it shows the same
    again = open_page(page.url)
    tiles_loaded(again)
    assert again.locator("#colormap-chosen").inner_text() == "viridis"
    np.testing.assert_array_equal(map_pixels(again, None), coloured)


def test_the_histogram_is_drawn_with_the_rescale_range(server, open_page):
    page = open_page(f"{server}/?url={DEMO}&bidx=2&rescale=10,120")
    tiles_loaded(page)
    page.wait_for_function("window.cogtiler.histogramDrawn")
    rgba = page.evaluate("""() => { const c = document.getElementById('histogram');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
    pixels = np.array(rgba, dtype=np.uint8).reshape(100, 280, 4)
    bars = (pixels[..., 2] > 150) & (pixels[..., 0] < 150) & (pixels[..., 3] > 0)  # blue bars
    marks = (pixels[..., 0] > 150) & (pixels[..., 2] < 100) & (pixels[..., 3] > 0)  # red lines
    assert bars.sum() > 500 and marks.any(axis=0).sum() >= 2
    assert "b2" in page.locator("#histogram-note").inner_text()
    map_pixels(page, "histogram")


def test_a_click_shows_the_value_of_every_band(server, open_page):
    page = open_page(server + "/")
    tiles_loaded(page)
    page.locator("#map").click(position={"x": 450, "y": 400})
    page.wait_for_function("document.querySelectorAll('#point tr').length >= 4")
    rows = dict(line.split("\t") for line in page.locator("#point").inner_text().splitlines())
    lon, lat = (float(v) for v in rows["at"].split(","))
    expected = api(server, f"/cog/point/{lon},{lat}", url=DEMO)
    for name, value in zip(expected["band_names"], expected["values"]):
        assert rows[name] == ("nodata" if value is None else str(value))
    map_pixels(page, "point")


@pytest.mark.parametrize("query, words", [
    ("expression=b9", "band 9 does not exist"),
    ("colormap_name=viridis", "a colormap colours one band"),
])
def test_a_parameter_that_does_not_fit_shows_the_server_message(server, open_page, query,
                                                                 words):
    page = open_page(f"{server}/?url={DEMO}&{query}")
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert words in message.inner_text()
    map_pixels(page, "error-" + query.split("=")[0])


def test_a_stage_that_does_not_allow_the_demo_opens_with_a_prompt(open_page):
    with ChaliceLocal("prod") as prod:
        page = open_page(prod.base + "/")
        page.locator("#prompt").wait_for(state="visible")
        assert "allow-list" in page.locator("#prompt").inner_text()
        assert page.locator("#message").is_hidden()


def test_without_the_map_library_the_page_says_why(server, open_page):
    page = open_page(server + "/", cdn=False)
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert "could not be loaded" in message.inner_text()


@pytest.mark.parametrize("url, kind", [("chalicelib/demo/item.json", "STAC item"),
                                       ("chalicelib/demo/mosaic.json", "MosaicJSON")])
def test_stac_items_and_mosaics_open_by_themselves(server, open_page, url, kind):
    page = open_page(f"{server}/?url={url}")
    tiles_loaded(page)
    assert f"kind\t{kind}" in page.locator("#info").inner_text()
    assert drawn(map_pixels(page, kind.split()[0].lower())).mean() > 0.1
    assert page.locator("#message").is_hidden()


def test_a_failing_tile_shows_the_server_message_once(server, open_page, shared):
    # corrupt.tif: some of its blocks are damaged, so some tiles at its deepest zoom fail (422)
    fetched = []
    page = open_page(f"{server}/?url={shared / 'corrupt.tif'}&map=18/37.6686/128.6581")
    page.on("request", lambda request: fetched.append(request.url)
            if request.resource_type == "fetch" and "/tiles/" in request.url else None)
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert "A tile failed (422)" in message.inner_text()
    assert "damaged" in message.inner_text()
    page.wait_for_function("window.cogtiler.tilesLoaded > 0")  # every tile answered
    assert len(fetched) <= 1  # the message fetched once, not once per failed tile
    map_pixels(page, "tile-error")


def test_a_collection_search_opens_from_the_address(open_page, stac_api, tmp_path):
    """kind=collection in the address: the collection's search of a real STAC API, through
    chalice local, drawn; a click reads the top item's value."""
    window = "2025-06-01T00:00:00Z/2025-06-15T00:00:00Z"
    with ChaliceLocal("test", stac_api.env(tmp_path / "searches")) as local:
        page = open_page(f"{local.base}/?" + urlencode(
            {"kind": "collection", "url": "scenes", "assets": "data", "datetime": window,
             "rescale": "0,9000"}))
        tiles_loaded(page)
        info = page.locator("#info").inner_text()
        assert "kind\tSTAC API collection" in info and f"datetime={window}" in info
        pixels = map_pixels(page, "collection")
        assert drawn(pixels).mean() > 0.1
        assert page.locator("#message").is_hidden()
        assert "datetime=" in page.url and "kind=collection" in page.url
        page.locator("#map").click(position={"x": 640, "y": 480})
        page.wait_for_function("document.querySelectorAll('#point tr').length >= 2")
        rows = dict(line.split("\t", 1) for line in
                    page.locator("#point").inner_text().splitlines())
        lon, lat = (float(v) for v in rows["at"].split(","))
        expected = api(local.base, f"/collections/scenes/point/{lon},{lat}", assets="data",
                       datetime=window)
        shown = [v for k, v in rows.items() if k != "at"]
        assert shown[0] == ("nodata" if expected["values"][0] is None
                            else str(expected["values"][0]))
