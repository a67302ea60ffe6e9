"""Property: whatever a client sends to any route, the answer is never a 5xx, errors have the
JSON error shape, and no server path shows that the client did not send itself.

Hypothesis builds requests for every route of the route table (so a new route is covered
the day it is declared): valid values from each parameter's declaration mixed with hostile
ones (Unicode digits, 100-digit numbers, values beyond float64, colours that are not
colours, expressions cut by an unescaped '+'), over real rasters and rasters no tiler draws
(complex pixels, another planet's CRS, an engineering CRS). Bounded: FUZZ_EXAMPLES
requests per route (default 20), seeded so CI is reproducible; run with a larger
FUZZ_EXAMPLES and FUZZ_SEED to explore (``make fuzz`` runs schemathesis for longer).
"""

import json
import math
import os
import re
import sys
from collections import Counter
from urllib.parse import quote, urlencode

import numpy as np
import pytest
import rasterio
from hostile_documents import NOT_ALLOWED, write_hostile_documents
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from rasterio.transform import from_bounds

from tests.support import BUILD, ROOT, SHARED

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("FUZZ_SEED", "20261123"))

#: Values that broke tilers before (ours or others): each is tried in every parameter.
HOSTILE = ["", " ", "\u0663", "\u0661", "b\u1369", "9" * 100, "-" + "9" * 100, "1e400",
           "-1.7e308,1.7e308", "0,5e-324", "1e20", "5e-324", "#gg0000", "nan", "inf", "-inf",
           "NaN,NaN", "0x10", "1_000", "\x00", "%00", "../../etc/passwd", "b1+", "b1 ",
           "(b3-b1)/(b3 b1)", "{}", "[]", '{"1":"#gg0000"}', '{"1":[1e400,0,0]}', "null",
           "-0", "2147483648", "\u2167", "\uff11", "true", "0,0", "1,2,3,4,5", "\u202e",
           # empty list items (p=, once gave a 500)
           ",", ",,", "1,", ",1", " , ", "1,,2", "0,,", ", ,"]

ODD_RASTERS = {
    "complex64.tif": dict(dtype="complex64", crs="EPSG:4326"),
    "cint16.tif": dict(dtype="complex_int16", crs="EPSG:4326"),
    "mars.tif": dict(dtype="uint8", crs="+proj=longlat +a=3396190 +b=3376200 +no_defs"),
    "engineering.tif": dict(dtype="uint8", crs='ENGCRS["site",EDATUM["P1"],CS[Cartesian,2],'
                            'AXIS["x",east,ORDER[1],LENGTHUNIT["metre",1]],'
                            'AXIS["y",north,ORDER[2],LENGTHUNIT["metre",1]]]'),
    "int64.tif": dict(dtype="int64", crs="EPSG:4326"),
    "int8.tif": dict(dtype="int8", crs="EPSG:4326"),
    "uint64.tif": dict(dtype="uint64", crs="EPSG:4326"),
}

SHARED_NAMES = ["cog.tif", "nocog.tif", "corrupt.tif", "float_raster_with_nodata.tif",
                "cog_dateline.tif", "world.rgb.tif", "RGBA.byte.tif", "cog_cmap.tif",
                "no_geo.jpg", "cog_rgb_mask.tif"]


def write_odd_rasters(folder) -> list[str]:
    paths = []
    for name, spec in ODD_RASTERS.items():
        path = folder / f"fuzz_{name}"
        dtype = spec["dtype"]
        data = (np.arange(64 * 64).reshape(1, 64, 64) % 200).astype(
            "complex64" if dtype.startswith("complex") else dtype)
        with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1,
                           dtype=dtype, crs=CRS.from_user_input(spec["crs"]),
                           transform=from_bounds(-78, 24, -77, 25, 64, 64)) as dst:
            dst.write(data)
        paths.append(str(path))
    return paths


class Swapper:
    """A raster and a document replaced between requests (by a rename or rewritten in place
    with their mtime put back), among good, odd and broken contents: a warm cache must
    never serve a 5xx for a file that changed under it."""

    def __init__(self, folder, rasters: list[str], documents: list[str]):
        self.raster, self.document = folder / "swap.tif", folder / "swap.json"
        demo = (ROOT / "chalicelib" / "demo" / "demo.tif").read_bytes()
        self.rasters = [demo, demo[:5000], b"not a tiff", b""] + [
            open(p, "rb").read() for p in rasters[:2]]
        self.documents = [(ROOT / "chalicelib" / "demo" / "item.json").read_bytes(),
                          b"{", b""] + [open(p, "rb").read() for p in documents[:3]]
        self.step = 0
        self.next()

    def _replace(self, path, body: bytes) -> None:
        if self.step % 2:  # a new file renamed over the old one (a new inode)
            path.with_suffix(".new").write_bytes(body)
            os.replace(path.with_suffix(".new"), path)
        elif path.exists():  # rewritten in place, its mtime put back (cp -p, touch -r)
            info = path.stat()
            path.write_bytes(body)
            os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
        else:
            path.write_bytes(body)

    def next(self) -> None:
        self._replace(self.raster, self.rasters[self.step % len(self.rasters)])
        self._replace(self.document, self.documents[self.step % len(self.documents)])
        self.step += 1


@pytest.fixture(scope="module")
def swapper(rasters):
    return Swapper(rasters, write_odd_rasters(rasters), write_hostile_documents(rasters)[0])


@pytest.fixture(scope="module")
def sources(rasters, swapper):
    cogs = ["chalicelib/demo/demo.tif", str(swapper.raster)] + write_odd_rasters(rasters) \
        + NOT_ALLOWED
    if SHARED.is_dir():
        cogs += [str(SHARED / n) for n in SHARED_NAMES]
    items, mosaics = write_hostile_documents(rasters)
    documents = ["chalicelib/demo/item.json", "chalicelib/demo/mosaic.json",
                 "chalicelib/demo/demo.tif", str(swapper.document)]
    return {"cog": cogs, "stac": documents + items + NOT_ALLOWED[:3],
            "mosaicjson": documents[::-1] + mosaics + NOT_ALLOWED[:3]}


@pytest.fixture(scope="module")
def module_client():
    from chalice.test import Client

    from app import app
    with Client(app, stage_name="test", project_dir=str(ROOT)) as client:
        yield client


def _routes():
    from app import api
    return [r for r in api.routes if r.path not in ("/{proxy+}",)]


# ---- values -------------------------------------------------------------------------------
# Each request is mostly valid (so it reaches the reading and rendering code) and, half of
# the time, carries one hostile value in one parameter.

hostile = st.sampled_from(HOSTILE)
small_text = st.text(max_size=12)
any_number = st.one_of(st.integers(-10, 5000).map(str),
                       st.floats(allow_nan=True, allow_infinity=True).map(repr))
extensions = st.sampled_from(["", ".png", ".jpg", ".jpeg", ".webp", ".tif", ".npy", ".gif",
                              ".PNG", "."])
image_extensions = st.sampled_from([".png", ".jpg", ".webp", ".tif", ".npy"])
TOKENS = ["b1", "b2", "b3", "b4", "b9", "b0", "B1", "nir", "red", "visual_b1", "+", "-", "*",
          "/", "**", "(", ")", ",", "<", "==", "sqrt(", "where(", "1e308", "9" * 60, "0",
          "nan", "pi", " ", ";", "~", "log(", "b\u1369"]
broken_expressions = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=8).map("".join)
band = st.sampled_from(["b1", "b2", "b3", "b1", "b4"])
operator = st.sampled_from(["+", "-", "*", "/", "**", "<", ">="])
expressions = st.one_of(
    st.tuples(band, operator, band).map("".join),
    st.tuples(band, band, band).map(lambda t: f"({t[0]}-{t[1]})/({t[0]}+{t[2]})"),
    st.sampled_from(["sqrt(b1)", "log(b1)", "where(b1>b2,b1,b2)", "b1;b2;b3", "b1*0",
                     "b1/0", "-b1", "b1**200", "abs(b1-b2)"]))
colours = st.one_of(st.lists(st.integers(0, 255), min_size=3, max_size=4),
                    st.sampled_from(["#ff0000", "#00ff0080"]))
bad_colours = st.one_of(st.lists(st.integers(-300, 300), min_size=1, max_size=5),
                        st.sampled_from(["#gg0000", "#fff", "red", None, 1e400]))
colormaps = st.dictionaries(st.integers(0, 255).map(str), colours, min_size=1, max_size=3)
bad_colormaps = st.dictionaries(st.one_of(st.integers(-5, 300).map(str), small_text),
                                bad_colours, max_size=3)
interval = st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4)).map(
    lambda t: f"{min(t):g},{max(t):g}")


def demo_tile(z: int, dx: int, dy: int) -> tuple[int, int]:
    import mercantile
    tile = mercantile.tile(-77.7, 24.5, z)
    return max(0, tile.x + dx), max(0, tile.y + dy)


def valid_path_value(name: str, param=None):
    """Mostly inside the demo's area (the Bahamas), so tiles are often found."""
    if name == "tileMatrixSetId":
        from chalicelib.grids import tilematrixsets
        return st.sampled_from(["WebMercatorQuad"] * 4 + list(tilematrixsets.IDS))
    if name == "lonlat":
        return st.tuples(st.floats(-78.5, -77), st.floats(23.5, 25.5)).map(
            lambda t: f"{t[0]:.4f},{t[1]:.4f}")
    if name == "bbox":
        return st.tuples(st.floats(-78.5, -77.6), st.floats(23.5, 24.4), st.floats(0.01, 1),
                         st.floats(0.01, 1), image_extensions).map(
            lambda t: f"{t[0]:.3f},{t[1]:.3f},{t[0] + t[2]:.3f},{t[1] + t[3]:.3f}{t[4]}")
    if name == "size":
        return st.tuples(st.integers(1, 600), st.integers(1, 600), image_extensions).map(
            lambda t: f"{t[0]}x{t[1]}{t[2]}")
    if param is not None and param.enum:  # any other declared path parameter
        return st.sampled_from(list(param.enum))
    return st.just(str(param.example)) if param is not None and param.example else small_text


def hostile_path_value(name: str):
    if name == "lonlat":
        return st.one_of(st.tuples(any_number, any_number).map(",".join), hostile)
    if name == "bbox":
        return st.one_of(st.tuples(st.lists(any_number, min_size=3, max_size=5).map(",".join),
                                   extensions).map("".join), hostile)
    if name == "size":
        return st.one_of(st.tuples(st.integers(-1, 9000).map(str), st.just("x"),
                                   st.integers(-1, 9000).map(str), extensions)
                         .map("".join), hostile)
    if name == "y":
        return st.one_of(st.tuples(st.integers(-1, 2 ** 31).map(str),
                                   st.sampled_from(["", "@2x", "@3x", "@9x", "@0x"]),
                                   extensions).map("".join), hostile)
    if name in ("z", "x"):
        return st.one_of(st.integers(-20, 2 ** 31).map(str), hostile)
    return st.one_of(small_text, hostile)


def valid_query_value(param):
    name, low, high = param.name, param.minimum, param.limit(None)
    if param.enum:
        return st.sampled_from(list(param.enum))
    if name == "expression":
        return st.one_of(expressions, st.just(str(param.example)))
    if name == "colormap":
        return colormaps.map(json.dumps)
    if name in ("rescale", "histogram_range"):
        return interval
    if name == "bidx":
        return st.integers(1, 4).map(str)
    if name == "nodata":
        return st.sampled_from(["0", "nan", "255", "-9999", "1e38"])
    if name in ("max_size", "width", "height"):
        return st.integers(1, 1024).map(str)
    if name == "p":
        return st.integers(0, 100).map(str)
    if name == "tilesize":
        return st.sampled_from(["256", "512", "64", "1024"])
    if param.kind == "integer":
        low = int(low if low is not None else 0)
        return st.integers(low, int(min(high if high is not None else 20, low + 20))).map(str)
    if param.kind == "number":
        return st.floats(0, 100).map(repr)
    if param.kind == "boolean":
        return st.sampled_from(["true", "false"])
    if param.example is not None:
        examples = param.example if isinstance(param.example, list) else [param.example]
        return st.sampled_from([str(e) for e in examples])
    return small_text


def hostile_query_value(param):
    choices = [hostile, small_text, any_number]
    if param.name == "expression":
        choices.append(broken_expressions)
    if param.name == "colormap":
        choices.append(bad_colormaps.map(lambda d: json.dumps(d).replace("Infinity", "1e400")))
    if param.name in ("rescale", "histogram_range"):
        choices.append(st.tuples(any_number, any_number).map(",".join))
    if param.kind == "boolean":
        choices.append(st.sampled_from(["1", "0", "yes", "maybe", "TRUE"]))
    return st.one_of(choices)


@st.composite
def requests(draw, route, urls):
    path_names = re.findall(r"\{(\w+)\}", route.path)
    query_params = [p for p in route.params if p.where == "query" and p.name != "url"]
    present = [p for p in query_params if draw(st.integers(0, 2)) == 0]  # a third of them
    targets = path_names + [p.name for p in present]
    spoiled = draw(st.sampled_from(targets)) if targets and draw(st.booleans()) else None

    path = route.path
    values = {}
    if "z" in path_names:  # a tile near the demo's data, at a zoom it has
        z = draw(st.integers(0, 14))
        x, y = demo_tile(z, draw(st.integers(-1, 1)), draw(st.integers(-1, 1)))
        values.update(z=str(z), x=str(x), y=str(y) + draw(st.sampled_from(
            ["", "", "@2x", ".png", ".jpg", ".webp", ".tif", ".npy", "@2x.png"])))
    for name in path_names:
        if name == spoiled:
            value = draw(hostile_path_value(name).filter(bool))  # "" would match no route
        else:
            declared = next((p for p in route.params if p.name == name), None)
            value = values.get(name) or draw(valid_path_value(name, declared))
        path = path.replace("{" + name + "}", quote(value, safe=",@."), 1)

    query = []
    if draw(st.integers(0, 9)):  # mostly a source of the route's kind, else none
        query.append(("url", draw(st.sampled_from(urls))))
    for param in present:
        strategy = hostile_query_value if param.name == spoiled else valid_query_value
        for _ in range(draw(st.integers(1, 2)) if param.repeat else 1):
            query.append((param.name, draw(strategy(param))))
    return path + ("?" + urlencode(query) if query else "")


SERVER_PATHS = [str(ROOT), str(SHARED), str(BUILD), sys.prefix, "/tmp/", "site-packages"]


#: Statuses seen in this run (printed at the end with -s: the figures for a fuzz report).
SEEN: Counter = Counter()


def teardown_module():
    print(f"\nfuzz: {sum(SEEN.values())} requests over {len(_routes())} routes, statuses "
          f"{dict(sorted(SEEN.items()))}")


def check(response, sent: str) -> None:
    status, body = response.status_code, response.body or b""
    SEEN[status] += 1
    assert status < 500, f"{sent} -> {status} {body[:300]!r}"
    text = body.decode("utf-8", "replace")
    if status >= 400:
        assert response.headers["Content-Type"] == "application/json", sent
        error = json.loads(text)
        assert set(error) == {"Code", "Message"} and error["Message"], sent
        assert "Traceback" not in text and 'File "' not in text, sent
        for server_path in SERVER_PATHS:  # a path the client did not send is a leak
            assert server_path not in text or server_path in sent, (sent, text)
    elif status == 204:
        assert not body and "outside=204" in sent, sent
    elif "json" in response.headers.get("Content-Type", ""):
        json.loads(text)  # valid JSON (no NaN, no Infinity)
    else:
        assert body, sent


@pytest.mark.parametrize("route", _routes(), ids=lambda r: r.path)
def test_no_request_gets_a_5xx(route, module_client, sources, swapper):
    kind = route.path.split("/")[1]
    urls = sources.get(kind, sources["cog"])

    @seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(requests(route, urls))
    def run(sent):
        if "swap." in sent:
            swapper.next()
        check(module_client.http.get(sent), sent)

    run()



# ---- the classes found by fuzzing, one table each ---------------------------------------------

ROUTES_OF_A_FILE = ["/cog/info?url={u}", "/cog/info.geojson?url={u}", "/cog/statistics?url={u}",
                    "/cog/tiles/10/290/441.png?url={u}", "/cog/preview.png?url={u}",
                    "/cog/point/-77.5,24.5?url={u}", "/cog/bbox/-78,24,-77,25.png?url={u}",
                    "/cog/tilejson.json?url={u}", "/cog/WMTSCapabilities.xml?url={u}"]


@pytest.mark.parametrize("name, words", [
    ("complex64.tif", ["complex", "complex64", "magnitude"]),
    ("cint16.tif", ["complex", "magnitude"]),
    ("mars.tif", ["CRS", "WGS84", "another planet", "gdalwarp"]),
    ("engineering.tif", ["'site'", "engineering", "gdal_edit"]),
])
def test_rasters_no_web_map_can_show_are_a_clear_422(module_client, rasters, name, words):
    write_odd_rasters(rasters)
    for route in ROUTES_OF_A_FILE:
        sent = route.format(u=rasters / f"fuzz_{name}")
        response = module_client.http.get(sent)
        check(response, sent)
        assert response.status_code == 422, (sent, response.body)
        message = response.json_body["Message"]
        assert all(w in message for w in words), message


@pytest.mark.parametrize("name", ["int64.tif", "int8.tif", "uint64.tif"])
def test_unusual_integer_types_are_served(module_client, rasters, name):
    write_odd_rasters(rasters)
    for route in ROUTES_OF_A_FILE:
        sent = route.format(u=rasters / f"fuzz_{name}")
        response = module_client.http.get(sent)
        assert response.status_code == 200, (sent, response.body)


DEMO = "chalicelib/demo/demo.tif"


@pytest.mark.parametrize("query, status, words", [
    # numbers too large for their type
    ("/cog/tiles/9/145/219.png?url={d}&expression=b1%2B" + "9" * 100, 200, []),
    ("/cog/statistics?url={d}&histogram_range=-1.7e308,1.7e308", 400, ["histogram_range"]),
    ("/cog/statistics?url={d}&histogram_range=0,5e-324", 400, ["histogram_range"]),
    ("/cog/preview.png?url={d}&max_size=1e20", 400, ["max_size", "integer"]),
    ("/cog/statistics?url={d}&expression=b1**b1&max_size=1", 200, []),  # one huge value
    ("/cog/statistics?url={d}&expression=b1*1e308*10", 200, []),  # infinite values
    # Unicode digits where a number is expected
    ("/cog/preview/\u0663x\u0663.png?url={d}", 400, ["width", "integer"]),
    ("/cog/preview.png?url={d}&bidx=\u0661", 400, ["bidx", "integer"]),
    ("/cog/preview.png?url={d}&expression=b\u1369", 400, ["unknown name"]),
    ("/cog/point/\u0661,\u0662?url={d}", 400, ["lon"]),
    # colours that are not colours
    ('/cog/tilejson.json?url={d}&colormap={{"1":"%23gg0000"}}', 400, ["colormap", "#rrggbb"]),
    ('/cog/tiles/9/145/219.png?url={d}&bidx=1&colormap={{"1":[1e400,0,0]}}', 400, ["colormap"]),
    # an unescaped '+' arrives as a space
    ("/cog/preview.png?url={d}&expression=(b3-b1)/(b3+b1)", 400, ["%2B"]),
    ("/cog/preview.png?url={d}&expression=b1+", 400, ["ends with a space", "%2B"]),
    # the format extension forgotten
    ("/cog/bbox/-78.5,24,-77.5,25?url={d}", 400, ["extension", ".png"]),
    # limits name themselves
    ("/cog/preview/4096x4096.tif?url={d}&bidx=1,2,3,1,2,3,1,2", 400, ["read limit", "bidx"]),
])
def test_hostile_values_get_a_message_to_act_on(module_client, query, status, words):
    sent = query.format(d=DEMO)
    response = module_client.http.get(sent)
    check(response, sent)
    assert response.status_code == status, (sent, response.body)
    if status != 200:
        message = response.json_body["Message"]
        assert all(w in message for w in words), message


def test_a_3_band_preview_at_the_largest_size_is_served(module_client):
    # MAX_IMAGE_SIZE (4096) allows it, so the read limit must too
    response = module_client.http.get(f"/cog/preview/4096x4096.jpg?url={DEMO}")
    assert response.status_code == 200, response.body


def test_previews_keep_the_aspect_ratio_unless_both_sides_are_given(module_client):
    from tests.support import decode
    with rasterio.open(ROOT / DEMO) as src:
        ratio = src.height / src.width
    one_side = decode(module_client.http.get(f"/cog/preview.png?url={DEMO}&width=2000").body)
    # the other side rounded up, as rio-tiler does
    assert one_side.shape[2] == 2000 and one_side.shape[1] == math.ceil(2000 * ratio)
    other = decode(module_client.http.get(f"/cog/preview.png?url={DEMO}&height=100").body)
    assert other.shape[1] == 100 and other.shape[2] == math.ceil(100 / ratio)
    both = decode(module_client.http.get(f"/cog/preview/300x300.png?url={DEMO}").body)
    assert both.shape[1:] == (300, 300)
    default = decode(module_client.http.get(f"/cog/preview.png?url={DEMO}&max_size=4096").body)
    assert max(default.shape[1:]) < 4096  # never upsampled past the data
