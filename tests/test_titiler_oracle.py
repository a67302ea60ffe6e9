"""titiler itself as the oracle: the same request (path and query) to titiler (in process,
the ``titiler`` fixture) and to our handler, on the real rasters; the same answer: status,
size, bands, mask and values. Where we differ on purpose, the README says so and the
difference is tested where it is built (tests/test_algorithms.py: tiles keep their size
without ``buffer=``; a hillshade's nodata stays masked)."""

import io

import numpy as np
import pytest
from PIL import Image

from chalicelib.pixels.algorithms import ALGORITHMS

TILE = "/cog/tiles/WebMercatorQuad/9/175/98"  # inside cog.tif
RGB = "/cog/preview.npy?url={data}/RGB.byte.tif&width=300&height=272"  # nodata 0 per band
SHADE = "/cog/preview.npy?url={data}/shade.tif&max_size=256"  # nodata 255

# (request, how much of the mask must agree): titiler's gradients mask a nodata pixel's
# neighbours, and show a nodata pixel whose neighbours are valid (we mask it).
CASES = [
    (TILE + ".npy?url={data}/cog.tif&algorithm=hillshade&buffer=3", 1.0),
    (TILE + ".npy?url={data}/cog.tif&algorithm=hillshade&buffer=3"
     '&algorithm_params={{"azimuth": 315, "angle_altitude": 30, "z_exaggeration": 3}}', 1.0),
    (TILE + ".npy?url={data}/cog.tif&algorithm=slope&buffer=3", 1.0),
    (TILE + ".npy?url={data}/cog.tif&algorithm=contours"
     '&algorithm_params={{"increment": 500, "minz": 0, "maxz": 10000, "thickness": 10}}', 1.0),
    (TILE + ".npy?url={data}/cog.tif&algorithm=terrarium", 1.0),
    (TILE + ".npy?url={data}/cog.tif&algorithm=terrainrgb", 1.0),
    (TILE + ".npy?url={data}/cog.tif&algorithm=cast", 1.0),
    (TILE + ".npy?url={data}/cog.tif&algorithm=floor", 1.0),
    (TILE + ".npy?url={data}/cog.tif&algorithm=ceil", 1.0),
    (SHADE + '&algorithm=hillshade&algorithm_params={{"buffer": 0}}', 0.999),
    (SHADE + '&algorithm=slope&algorithm_params={{"buffer": 0}}', 0.999),
    (SHADE + "&algorithm=terrarium", 1.0),
    (SHADE + '&algorithm=terrarium&algorithm_params={{"nodata_height": 0}}', 1.0),
    (SHADE + '&algorithm=terrainrgb&algorithm_params={{"nodata_height": -20}}', 1.0),
    (SHADE + '&algorithm=contours&algorithm_params={{"increment": 10, "minz": 0, '
     '"maxz": 255}}', 1.0),
    (RGB + "&algorithm=normalizedIndex&bidx=3&bidx=1", 1.0),
    (RGB + "&algorithm=grayscale", 1.0),
    (RGB + "&algorithm=bitonal", 1.0),
    (RGB + "&algorithm=bitonal&bidx=2", 1.0),
    *((RGB + f"&algorithm={name}", 1.0) for name in ("min", "max", "mean", "median", "std",
                                                      "var")),
    ("/cog/preview.npy?url={data}/float_raster_with_nodata.tif&algorithm=sum", 1.0),
    ("/cog/bbox/-61,73,-60,73.5/300x200.npy?url={data}/cog.tif&algorithm=hillshade", None),
]


def _ours(client, path):
    response = client.http.get(path)
    return response.status_code, response.body


def _theirs(titiler, path):
    response = titiler.get(path)
    return response.status_code, response.content


def _same_image(ours: np.ndarray, theirs: np.ndarray, mask_agreement: float) -> None:
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    mine, their = ours[-1] > 0, theirs[-1] > 0  # npy: the mask is the last band
    assert (mine == their).mean() >= mask_agreement
    assert mine.any()
    both = mine & their
    if ours.dtype.kind == "f":
        np.testing.assert_allclose(ours[:-1][:, both], theirs[:-1][:, both], rtol=1e-6)
    else:
        np.testing.assert_array_equal(ours[:-1][:, both], theirs[:-1][:, both])


@pytest.mark.parametrize(("request_path", "mask_agreement"), CASES)
def test_algorithms_answer_as_titiler(client, titiler, shared, request_path, mask_agreement):
    path = request_path.format(data=shared)
    (status, body), (their_status, their_body) = _ours(client, path), _theirs(titiler, path)
    assert (status, their_status) == (200, 200), body[:300]
    ours, theirs = np.load(io.BytesIO(body)), np.load(io.BytesIO(their_body))
    if mask_agreement is None:  # titiler's part shrinks by the buffer it cannot read
        b = ALGORITHMS["hillshade"]().buffer
        assert theirs.shape[1:] == (ours.shape[1] - 2 * b, ours.shape[2] - 2 * b)
        return
    _same_image(ours, theirs, mask_agreement)


def test_a_hillshade_png_shows_what_titilers_shows(client, titiler, shared):
    path = f"{TILE}.png?url={shared}/cog.tif&algorithm=hillshade&buffer=3"
    (status, body), (their_status, their_body) = _ours(client, path), _theirs(titiler, path)
    assert status == their_status == 200
    ours = np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))
    theirs = np.asarray(Image.open(io.BytesIO(their_body)).convert("RGBA"))
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_algorithm_definitions_are_titilers(client, titiler, name):
    ours = client.http.get(f"/algorithms/{name}").json_body
    assert ours == titiler.get(f"/algorithms/{name}").json()


def test_the_algorithm_list_is_titilers(client, titiler):
    ours = [a["id"] for a in client.http.get("/algorithms").json_body["algorithms"]]
    assert ours == [a["id"] for a in titiler.get("/algorithms").json()["algorithms"]]


@pytest.mark.parametrize("query", [
    '&algorithm=hillshade&algorithm_params={{"azimuth": 400}}',
    '&algorithm=hillshade&algorithm_params={{"azimuth": "north"}}',
    "&algorithm=nope",
    "&algorithm=normalizedIndex",
])
def test_refused_where_titiler_refuses(client, titiler, shared, query):
    path = f"{TILE}.npy?url={shared}/cog.tif" + query.format()
    status, _ = _ours(client, path)
    their_status, _ = _theirs(titiler, path)
    assert status == 400 and their_status >= 400


# ---- post-processing and rendering parameters --------------------------------------------

@pytest.fixture(scope="module")
def scaled(shared, rasters):
    """cog.tif with a scale and an offset in its metadata (what unscale applies)."""
    import rasterio
    path = rasters / "scaled.tif"
    with rasterio.open(shared / "cog.tif") as src:
        profile, data = src.profile, src.read()
    profile.update(driver="GTiff")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.scales, dst.offsets = (0.01,), (-5.0,)
    return path


RENDER_CASES = [
    RGB + "&rescale=0,200",
    RGB + "&rescale=0,200&rescale=10,250&rescale=30,180",
    RGB + "&color_formula=gamma rgb 1.5",
    RGB + "&color_formula=Gamma RGB 3.5 Saturation 1.7 Sigmoidal RGB 15 0.35",
    RGB + "&color_formula=gamma b 1.2, sigmoidal rg 5 0.4&rescale=0,220",
    RGB + "&color_formula=saturation 2&rescale=0,200",
    RGB + "&color_formula=saturation 0.2",
    "/cog/preview.npy?url={data}/cog.tif&max_size=256&rescale=0,8000&color_formula=gamma r 2",
    "/cog/preview.npy?url={data}/float_raster_with_nodata.tif&rescale=-1,1",
    "/cog/preview.npy?url={scaled}&max_size=256&unscale=true",
    "/cog/preview.npy?url={scaled}&max_size=256&unscale=true&rescale=0,50",
    TILE + ".npy?url={scaled}&unscale=true&algorithm=hillshade&buffer=3",
    TILE + ".npy?url={data}/cog.tif&buffer=1",  # 258 x 258
    TILE + ".npy?url={data}/cog.tif&buffer=0.5",  # 257 x 257
    TILE + ".npy?url={data}/cog.tif&padding=2",
]


@pytest.mark.parametrize("request_path", RENDER_CASES)
def test_rendering_answers_as_titiler(client, titiler, shared, scaled, request_path):
    path = request_path.format(data=shared, scaled=scaled)
    (status, body), (their_status, their_body) = _ours(client, path), _theirs(titiler, path)
    assert (status, their_status) == (200, 200), body[:300]
    _same_image(np.load(io.BytesIO(body)), np.load(io.BytesIO(their_body)), 1.0)


def test_an_unscaled_point_is_titilers(client, titiler, scaled):
    path = f"/cog/point/-57,73.5?url={scaled}&unscale=true"
    ours, theirs = client.http.get(path).json_body, titiler.get(path).json()
    assert ours["values"] == pytest.approx(theirs["values"])
    assert ours["values"][0] != client.http.get(f"/cog/point/-57,73.5?url={scaled}"
                                                ).json_body["values"][0]


@pytest.mark.parametrize("formula", ["gamma", "gamma rgb 0", "gamma x 1.2", "sigmoidal rgb 3",
                                     "contrast rgb 2"])
def test_bad_color_formulas_are_refused(client, shared, formula):
    response = client.http.get(f"{RGB.format(data=shared)}&color_formula={formula}")
    assert response.status_code == 400 and "color_formula" in response.json_body["Message"]


# ---- formats ------------------------------------------------------------------------------

def _decoded(body: bytes) -> np.ndarray:
    from rasterio.io import MemoryFile
    with MemoryFile(body) as memory, memory.open() as image:
        return image.read()


@pytest.mark.parametrize("request_path", [
    "/cog/preview.pngraw?url={data}/cog.tif&max_size=256",  # 16-bit, values kept
    "/cog/preview.pngraw?url={data}/cog_nodata.tif&max_size=256",
    TILE + ".pngraw?url={data}/cog.tif",
    RGB.replace(".npy", ".pngraw"),
    "/cog/preview.jp2?url={data}/cog.tif&max_size=256",
    RGB.replace(".npy", ".jp2"),
    TILE + ".jp2?url={data}/cog.tif",
    RGB.replace(".npy", ".jpeg"),
    TILE + ".jpeg?url={data}/cog.tif&rescale=0,8000",
    TILE + "?url={data}/cog.tif&format=pngraw",  # titiler's ?format= on a tile
])
def test_formats_answer_as_titiler(client, titiler, shared, request_path):
    path = request_path.format(data=shared)
    ours = client.http.get(path, headers={"Accept": "image/*"})
    theirs = titiler.get(path)
    assert ours.status_code == theirs.status_code == 200, ours.body[:300]
    assert ours.headers["Content-Type"] == theirs.headers["content-type"]
    np.testing.assert_array_equal(_decoded(ours.body), _decoded(theirs.content))


def test_pngraw_refuses_what_png_cannot_hold(client, titiler, shared):
    path = f"/cog/preview.pngraw?url={shared}/float_raster_with_nodata.tif"
    response = client.http.get(path)
    assert response.status_code == 400 and titiler.get(path).status_code == 400
    assert "pngraw holds uint8 or uint16" in response.json_body["Message"]


# ---- statistics ---------------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "cog.tif&max_size=256",
    "cog.tif&max_size=256&histogram_bins=0,1000,5000,10000",
    "cog.tif&max_size=256&histogram_bins=20&histogram_range=0,8000&p=5&p=50&p=95",
    "cog_cmap.tif&max_size=256&categorical=true",
    "cog_cmap.tif&max_size=256&categorical=true&c=1&c=2&c=100",
    "RGB.byte.tif&max_size=256&bidx=3&bidx=1",
    "cog.tif&max_size=256&algorithm=slope&algorithm_params={\"buffer\": 0}",
    "RGB.byte.tif&max_size=256&algorithm=normalizedIndex&bidx=3&bidx=1",
])
def test_statistics_answer_as_titiler(client, titiler, shared, query):
    path = f"/cog/statistics?url={shared}/{query}"
    ours, theirs = client.http.get(path), titiler.get(path)
    assert ours.status_code == theirs.status_code == 200, ours.body[:300]
    ours, theirs = ours.json_body, theirs.json()
    assert list(ours) == list(theirs)
    for band, expected in theirs.items():
        for key, value in expected.items():
            if key == "histogram":
                assert ours[band][key][0] == value[0]
                np.testing.assert_allclose(ours[band][key][1], value[1], rtol=1e-6)
            elif isinstance(value, str):
                assert ours[band][key] == value
            else:
                assert ours[band][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


# ---- STAC items: titiler 2's asset options ---------------------------------------------------

ITEM = "/stac/{kind}?url={root}/chalicelib/demo/item.json"


@pytest.mark.parametrize(("kind", "query", "mask_agreement"), [
    ("preview.npy", "&assets=visual&width=200&height=180", 1.0),
    ("preview.npy", "&assets=visual|bidx=3,2,1&width=200&height=180", 1.0),
    ("tiles/WebMercatorQuad/9/145/219.npy", "&assets=visual|bidx=2", 1.0),
    ("tiles/WebMercatorQuad/9/145/219.npy",  # nodata's neighbours: see CASES
     "&assets=visual|bidx=2&algorithm=hillshade&buffer=3", 0.999),
    ("tiles/WebMercatorQuad/9/145/219.npy", "&assets=visual&algorithm=grayscale", 1.0),
])
def test_stac_asset_options_answer_as_titiler(client, titiler, kind, query, mask_agreement):
    from tests.support import ROOT
    path = ITEM.format(kind=kind, root=ROOT) + query
    (status, body), (their_status, their_body) = _ours(client, path), _theirs(titiler, path)
    assert (status, their_status) == (200, 200), body[:300]
    _same_image(np.load(io.BytesIO(body)), np.load(io.BytesIO(their_body)), mask_agreement)


def test_the_old_asset_bidx_reads_what_the_new_syntax_reads(client):
    from tests.support import ROOT
    base = ITEM.format(kind="preview.npy", root=ROOT) + "&width=64&height=64"
    old = _ours(client, base + "&assets=visual&asset_bidx=visual|3,1")
    new = _ours(client, base + "&assets=visual|bidx=3,1")
    assert old[0] == new[0] == 200 and old[1] == new[1]
    every = _ours(client, base + "&assets=:all:")
    assert every == _ours(client, base + "&assets=visual")  # the item's one asset
    twice = client.http.get(base + "&assets=visual|bidx=3&asset_bidx=visual|1")
    assert twice.status_code == 400 and "given twice" in twice.json_body["Message"]
    option = client.http.get(base + "&assets=visual|expression=b1*2")
    assert option.status_code == 400 and "'expression' is not supported" in \
        option.json_body["Message"]


# ---- OGC API routes -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cog.tif", "world.rgb.tif", "RGB.byte.tif"])
def test_tilesets_describe_what_titilers_do(client, titiler, shared, name):
    url = f"{shared}/{name}"
    ours = client.http.get(f"/cog/tiles?url={url}").json_body["tilesets"]
    theirs = titiler.get("/cog/tiles", params={"url": url}).json()["tilesets"]
    assert [t["title"] for t in ours] == [t["title"] for t in theirs]
    # the same CRS, though titiler echoes some tile matrix sets' URN spelling
    assert [t["crs"] for t in ours] == [_crs_uri(t["crs"]) for t in theirs]
    for tms_id in ("WebMercatorQuad", "WorldCRS84Quad", "WGS1984Quad"):
        ours = client.http.get(f"/cog/tiles/{tms_id}?url={url}").json_body
        theirs = titiler.get(f"/cog/tiles/{tms_id}", params={"url": url}).json()
        theirs["crs"] = _crs_uri(theirs["crs"])
        for key in ("title", "dataType", "crs"):
            assert ours[key] == theirs[key], (tms_id, key)
        # the tiles with data, at the zooms both count (the zoom ranges themselves are
        # computed differently: see docs/titiler.md)
        mine = {m["tileMatrix"]: m for m in ours["tileMatrixSetLimits"]}
        common = [m for m in theirs["tileMatrixSetLimits"] if m["tileMatrix"] in mine]
        assert common and all(mine[m["tileMatrix"]] == m for m in common), tms_id
        np.testing.assert_allclose(ours["boundingBox"]["lowerLeft"] + ours["boundingBox"][
            "upperRight"], theirs["boundingBox"]["lowerLeft"] + theirs["boundingBox"][
            "upperRight"])
        tile = next(link for link in ours["links"] if link["rel"] == "tile")["href"]
        path = "/" + tile.split("//", 1)[1].split("/", 1)[1]
        z, x, y = _a_tile(ours)
        assert client.http.get(path.replace("{z}/{x}/{y}", f"{z}/{x}/{y}")).status_code == 200


def _crs_uri(crs: str) -> str:
    if crs.startswith("urn:ogc:def:crs:"):
        authority, _, code = crs[len("urn:ogc:def:crs:"):].partition("::")
        return f"http://www.opengis.net/def/crs/{authority}/0/{code}"
    return crs


def _a_tile(tileset: dict) -> tuple[int, int, int]:
    deepest = tileset["tileMatrixSetLimits"][-1]
    return (int(deepest["tileMatrix"]), (deepest["minTileCol"] + deepest["maxTileCol"]) // 2,
            (deepest["minTileRow"] + deepest["maxTileRow"]) // 2)


def test_landing_and_conformance(client):
    page = client.http.get("/", headers={"Accept": "application/json"})
    assert page.headers["Content-Type"] == "application/json"
    rels = {link["rel"]: link["href"] for link in page.json_body["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert client.http.get("/", headers={"Accept": "text/html"}).headers[
        "Content-Type"].startswith("text/html")
    assert client.http.get("/?f=json").json_body["title"] == "cogtiler"
    conforms = client.http.get("/conformance").json_body["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset" in conforms
    # the viewer keeps its state in the query: a reload is never refused
    assert client.http.get("/?url=x&rescale=0,1&colormap_name=viridis").status_code == 200


def test_map_html_is_the_viewer(client, shared):
    page = client.http.get(f"/cog/WebMercatorQuad/map.html?url={shared}/cog.tif&rescale=0,1")
    assert page.status_code == 200 and b"leaflet" in page.body.lower()
    other = client.http.get(f"/cog/WGS1984Quad/map.html?url={shared}/cog.tif")
    assert other.status_code == 400 and "WebMercatorQuad" in other.json_body["Message"]


# ---- colormaps ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["viridis", "cfastie", "rplumbo", "tab10", "tab10_r",
                                  "schwarzwald", "thermal_r", "terrain"])
def test_colormap_tables_are_titilers(client, titiler, name):
    assert client.http.get(f"/colorMaps/{name}").json_body == \
        titiler.get(f"/colorMaps/{name}").json()


@pytest.mark.parametrize("query", ["f=png", "f=png&orientation=vertical", "f=jpeg",
                                   "f=webp&orientation=horizontal"])
def test_colormap_swatches_are_titilers(client, titiler, query):
    ours = client.http.get(f"/colorMaps/cfastie?{query}", headers={"Accept": "image/*"})
    theirs = titiler.get(f"/colorMaps/cfastie?{query}")
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["Content-Type"] == theirs.headers["content-type"]
    mine, their = _decoded(ours.body), _decoded(theirs.content)
    assert mine.shape[1:] == their.shape[1:]
    if "jpeg" in query or "webp" in query:  # lossy: close
        assert np.abs(mine[:3].astype(int) - their[:3].astype(int)).mean() < 3
    else:
        np.testing.assert_array_equal(mine[:3], their[:3])


def test_the_colormap_list_is_titilers_and_more(client, titiler):
    ours = {c["id"] for c in client.http.get("/colorMaps").json_body["colormaps"]}
    theirs = {c["id"] for c in titiler.get("/colorMaps").json()["colormaps"]}
    assert theirs <= ours
    assert ours - theirs == {"cfastie_r", "rplumbo_r", "schwarzwald_r"}  # reversible too


# ---- every titiler parameter: taken, or refused by name --------------------------------------

_OURS = {  # titiler's path templates -> ours
    "/cog/tiles/{tileMatrixSetId}/{z}/{x}/{y}.{format}": "/cog/tiles/{tileMatrixSetId}/{z}/{x}/{y}",
    "/cog/point/{lon},{lat}": "/cog/point/{lonlat}",
    "/cog/preview.{format}": "/cog/preview.png",
    "/cog/preview/{width}x{height}.{format}": "/cog/preview/{size}",
    "/cog/bbox/{minx},{miny},{maxx},{maxy}.{format}": "/cog/bbox/{bbox}",
    "/cog/bbox/{minx},{miny},{maxx},{maxy}/{width}x{height}.{format}": "/cog/bbox/{bbox}/{size}",
}


@pytest.mark.parametrize("family", ["cog", "stac"])
def test_every_titiler_parameter_is_taken_or_refused_by_name(titiler, family):
    """Each query parameter of each titiler GET route: our route of that path declares it,
    or refuses it by name (a 400 that names it), never ignores it."""
    from app import api
    from chalicelib.api.params import check_names
    from chalicelib.core.errors import BadRequest

    ours = {r.path: r for r in api.routes if r.method == "GET"}
    checked = 0
    for path, operations in titiler.get("/openapi.json").json()["paths"].items():
        if not path.startswith(f"/{family}/") or "get" not in operations:
            continue
        mine = ours.get(_OURS.get(path.replace(f"/{family}/", "/cog/"), "").replace(
            "/cog/", f"/{family}/", 1) or path)
        assert mine is not None, f"no route for titiler's {path}"
        declared = {p.name for p in mine.params}
        for parameter in operations["get"].get("parameters", []):
            name = parameter["name"]
            if parameter["in"] != "query" or name in declared:
                continue
            with pytest.raises(BadRequest, match=f"does not take '{name}'"):
                check_names(mine.params, {name: ["1"]}, mine.path)
            checked += 1
    assert checked  # some are refused (coord_crs, dst_crs...), by name


@pytest.mark.parametrize("assets", ["visual", "visual|bidx=2"])
def test_asset_statistics_answer_as_titiler(client, titiler, assets):
    from tests.support import ROOT
    path = f"/stac/asset_statistics?url={ROOT}/chalicelib/demo/item.json&assets={assets}" \
           "&max_size=64"
    ours, theirs = client.http.get(path).json_body, titiler.get(path).json()
    # titiler names an asset read with options after them ("visual|indexes=[2]"): by name here
    assert list(ours) == ["visual"] and len(theirs) == 1
    mine, their = ours["visual"], next(iter(theirs.values()))
    assert list(mine) == list(their)
    for band, expected in their.items():
        for key in ("min", "max", "mean", "std", "median", "majority", "valid_pixels"):
            assert mine[band][key] == pytest.approx(expected[key])
        assert mine[band]["histogram"][0] == expected["histogram"][0]
