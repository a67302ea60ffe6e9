"""Geometry: statistics and images of GeoJSON shapes (``POST .../statistics``,
``POST .../feature``), coordinates in any CRS (``coord_crs``), outputs in any CRS
(``dst_crs``).

titiler (in process) is the oracle for the numbers and the images: the same POST to both.
Coverage weighting is checked against exact areas (shapely) on a raster whose values are
known; the GeoJSON a user can get wrong is answered with a 400 that names the feature."""

import io
import json

import numpy as np
import pytest
import rasterio

from chalicelib.grids import shapes
from tests.support import ROOT, write_raster


def _ring(bounds, shrink=5.0):
    """An irregular pentagon inside ``bounds`` (west, south, east, north), closed."""
    w, s, e, n = bounds
    cx, cy, dx, dy = (w + e) / 2, (s + n) / 2, (e - w) / shrink, (n - s) / shrink
    ring = [[cx - dx, cy - dy], [cx + dx, cy - 0.7 * dy], [cx + 0.3 * dx, cy + dy],
            [cx - 1.2 * dx, cy + 0.4 * dy]]
    return ring + [ring[0]]


def _feature(ring, **properties):
    return {"type": "Feature", "properties": properties,
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _post(client, path, body):
    text = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, body=text, headers={"Content-Type": "application/geo+json",
                                                      "Accept": "*/*"})


def _bounds(client, url):
    return client.http.get(f"/cog/info?url={url}").json_body["bounds"]


def _same_statistics(ours: dict, theirs: dict) -> None:
    """Same pixels (counts, min, max, histogram: exactly), weighted figures within 1%."""
    assert list(ours) == list(theirs)
    for band, expected in theirs.items():
        mine = ours[band]
        for key in ("valid_pixels", "masked_pixels", "min", "max", "majority", "minority",
                    "unique"):
            assert mine[key] == expected[key], (band, key)
        assert mine["histogram"][0] == expected["histogram"][0]
        assert mine["valid_percent"] == pytest.approx(expected["valid_percent"], abs=0.5)
        spread = max(expected["max"] - expected["min"], 1e-9)
        for key in ("mean", "count", "sum", "std"):
            assert mine[key] == pytest.approx(expected[key], rel=0.01), (band, key)
        for key in [k for k in expected if k.startswith("percentile_")] + ["median"]:
            assert abs(mine[key] - expected[key]) <= 0.01 * spread, (band, key)


# ---- the same POST as titiler --------------------------------------------------------------

@pytest.mark.parametrize(("name", "query"), [
    ("cog.tif", ""),
    ("cog.tif", "&p=10&p=90&histogram_bins=5"),
    ("cog.tif", "&max_size=300"),
    ("cog.tif", "&dst_crs=EPSG:32621"),  # the file's own pixels
    ("RGB.byte.tif", "&bidx=3&bidx=1"),
    ("RGB.byte.tif", "&nodata=0&unscale=true"),
    ("cog_cmap.tif", "&categorical=true&c=1&c=2&c=7"),
])
def test_statistics_of_a_feature_answer_as_titiler(client, titiler, shared, name, query):
    url = f"{shared}/{name}"
    feature = _feature(_ring(_bounds(client, url)), name="field 7")
    path = f"/cog/statistics?url={url}{query}"
    ours, theirs = _post(client, path, feature), titiler.post(path, json=feature)
    assert ours.status_code == theirs.status_code == 200, ours.body[:300]
    assert ours.headers["Content-Type"] == "application/geo+json"
    ours, theirs = ours.json_body, theirs.json()
    assert ours["type"] == "Feature" and ours["geometry"] == feature["geometry"]
    assert ours["properties"]["name"] == "field 7"  # what the user sent is kept
    _same_statistics(ours["properties"]["statistics"], theirs["properties"]["statistics"])


@pytest.mark.parametrize("name", ["cog.tif", "cog_nodata.tif"])
def test_a_shape_across_the_data_s_edge_counts_the_data_inside(client, titiler, shared, name):
    """Half of the shape lies beyond the data: those pixels are masked, not zeros, and
    valid_percent says how much of the shape had data."""
    url = f"{shared}/{name}"
    w, s, e, n = _bounds(client, url)
    feature = _feature(_ring((w, s, e + (e - w), n), 2.5))  # its east half beyond the data
    path = f"/cog/statistics?url={url}"
    ours, theirs = _post(client, path, feature), titiler.post(path, json=feature)
    assert ours.status_code == theirs.status_code == 200, ours.body[:300]
    mine = ours.json_body["properties"]["statistics"]
    _same_statistics(mine, theirs.json()["properties"]["statistics"])
    assert 20 < mine["b1"]["valid_percent"] < 80


def test_a_feature_collection_answers_each_feature(client, titiler, shared):
    url = f"{shared}/cog.tif"
    w, s, e, n = _bounds(client, url)
    west, east = (w, (w + e) / 2), ((w + e) / 2, e)
    with_hole = _feature(_ring((*west[:1], s, west[1], n), 3), id=1)
    with_hole["geometry"]["coordinates"].append(
        list(reversed(_ring((*west[:1], s, west[1], n), 10))))
    two_parts = {"type": "Feature", "properties": {"id": 2}, "geometry": {
        "type": "MultiPolygon", "coordinates": [[_ring((east[0], s, east[1], n), 4)],
                                                [_ring((east[0], s, east[1], n), 12)[::-1]]]}}
    two_parts["geometry"]["coordinates"][1][0] = [[x, y + (n - s) / 3] for x, y in
                                                  two_parts["geometry"]["coordinates"][1][0]]
    collection = {"type": "FeatureCollection", "name": "fields",
                  "features": [with_hole, two_parts]}
    path = f"/cog/statistics?url={url}"
    ours, theirs = _post(client, path, collection), titiler.post(path, json=collection)
    assert ours.status_code == theirs.status_code == 200, ours.body[:300]
    ours, theirs = ours.json_body, theirs.json()
    assert ours["type"] == "FeatureCollection" and ours["name"] == "fields"
    assert [f["properties"]["id"] for f in ours["features"]] == [1, 2]
    for mine, expected in zip(ours["features"], theirs["features"]):
        _same_statistics(mine["properties"]["statistics"],
                         expected["properties"]["statistics"])
    # the hole is not counted: the feature with it has fewer pixels than without
    whole = _post(client, path, _feature(with_hole["geometry"]["coordinates"][0]))
    assert whole.json_body["properties"]["statistics"]["b1"]["count"] > \
        ours["features"][0]["properties"]["statistics"]["b1"]["count"]


def test_statistics_of_a_feature_over_a_stac_item_answer_as_titiler(client, titiler):
    url = f"{ROOT}/chalicelib/demo/item.json"
    box = client.http.get(f"/stac/info?url={url}&assets=visual").json_body["visual"]["bounds"]
    feature = _feature(_ring(box))
    path = f"/stac/statistics?url={url}&assets=visual"
    ours, theirs = _post(client, path, feature), titiler.post(path, json=feature)
    assert ours.status_code == theirs.status_code == 200, ours.body[:300]
    _same_statistics(ours.json_body["properties"]["statistics"],
                     theirs.json()["properties"]["statistics"])


def _npy(body: bytes) -> np.ndarray:
    return np.load(io.BytesIO(body))


def _same_image(ours: np.ndarray, theirs: np.ndarray, exact: bool = True) -> None:
    """The same size, type and mask; the same values, or where the image is resampled from
    another grid (its size asked, another CRS: nearest samples a half pixel apart, see
    docs/titiler.md) the same picture: each band's mean within 2%."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    mine, their = ours[-1] > 0, theirs[-1] > 0
    assert mine.any() and (mine == their).mean() >= (0.999 if exact else 0.99)
    both = mine & their
    if exact:
        np.testing.assert_array_equal(ours[:-1][:, both], theirs[:-1][:, both])
    else:
        np.testing.assert_allclose(ours[:-1][:, both].mean(axis=1),
                                   theirs[:-1][:, both].mean(axis=1), rtol=0.02)


@pytest.mark.parametrize(("name", "route", "query", "exact"), [
    ("cog.tif", "feature.npy", "", True),
    ("cog.tif", "feature/300x200.npy", "", False),
    ("RGB.byte.tif", "feature.npy", "&max_size=256", True),
    ("RGB.byte.tif", "feature.npy", "&dst_crs=EPSG:3857&max_size=300", True),
])
def test_the_image_of_a_feature_is_titilers(client, titiler, shared, name, route, query,
                                            exact):
    url = f"{shared}/{name}"
    feature = _feature(_ring(_bounds(client, url)))
    path = f"/cog/{route}?url={url}{query}"
    ours, theirs = _post(client, path, feature), titiler.post(path, json=feature)
    assert ours.status_code == theirs.status_code == 200, ours.body[:300]
    _same_image(_npy(ours.body), _npy(theirs.content), exact)
    assert ours.headers["Content-Crs"] == theirs.headers["content-crs"]
    ours_box = [float(v) for v in ours.headers["Content-Bbox"].split(",")]
    their_box = [float(v) for v in theirs.headers["content-bbox"].split(",")]
    np.testing.assert_allclose(ours_box, their_box, rtol=1e-9)
    # outside the shape is transparent in a PNG
    png = _post(client, path.replace(".npy", ".png"), feature)
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"


def test_coordinates_and_outputs_in_other_crss_answer_as_titiler(client, titiler, shared):
    url = f"{shared}/cog.tif"
    with rasterio.open(url) as src:
        left, bottom, right, top = src.bounds
    box = (left + 20000, bottom + 20000, left + 60000, bottom + 50000)  # metres, EPSG:32621
    bbox = ",".join(f"{v:.3f}" for v in box)
    paths = [f"/cog/bbox/{bbox}/256x192.npy?url={url}&coord_crs=EPSG:32621",
             f"/cog/bbox/{bbox}/256x192.npy?url={url}&coord_crs=EPSG:32621&dst_crs=EPSG:3857",
             f"/cog/bbox/-60,73,-59,73.5/200x100.npy?url={url}&dst_crs=EPSG:32621",
             f"/cog/preview.npy?url={url}&dst_crs=EPSG:3857&max_size=256",
             f"/cog/preview/200x200.npy?url={url}&dst_crs=EPSG:4326"]
    for path in paths:
        ours, theirs = client.http.get(path), titiler.get(path)
        assert ours.status_code == theirs.status_code == 200, (path, ours.body[:300])
        _same_image(_npy(ours.body), _npy(theirs.content), exact=False)
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    path = f"/cog/point/{x},{y}?url={url}&coord_crs=EPSG:32621"
    ours, theirs = client.http.get(path), titiler.get(path)
    assert ours.status_code == theirs.status_code == 200
    assert ours.json_body["values"] == theirs.json()["values"]
    assert ours.json_body["coordinates"] == pytest.approx([x, y])
    # coordinates in metres without coord_crs are refused, not read as degrees
    response = client.http.get(f"/cog/point/{x},{y}?url={url}")
    assert response.status_code == 400 and "coord_crs" in response.json_body["Message"]


def test_a_bbox_in_another_crs_is_georeferenced_there(client, shared):
    url = f"{shared}/cog.tif"
    response = client.http.get(f"/cog/bbox/-60,73,-59,73.5.tif?url={url}&dst_crs=EPSG:3857")
    assert response.status_code == 200
    assert response.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/3857>"
    with rasterio.MemoryFile(response.body) as memory, memory.open() as tif:
        assert tif.crs.to_epsg() == 3857
        np.testing.assert_allclose(tif.bounds, [float(v) for v in
                                                response.headers["Content-Bbox"].split(",")])
        assert tif.bounds.left == pytest.approx(-6679169.45, abs=1)  # -60 degrees


# ---- coverage: exact areas -------------------------------------------------------------------

@pytest.fixture(scope="module")
def columns(rasters):
    """100 x 100 pixels of 10 m (EPSG:32633), each pixel's value its column number."""
    path = rasters / "columns.tif"
    data = np.tile(np.arange(100, dtype="float32"), (100, 1))[None]
    write_raster(path, data, bounds=(500000, 6000000, 501000, 6001000), crs="EPSG:32633")
    return path


def _exact(polygon, transform) -> tuple[float, float]:
    """(area in pixels, area-weighted mean of the column numbers) of ``polygon``."""
    shapely = pytest.importorskip("shapely")
    cols, rows = np.meshgrid(np.arange(100), np.arange(100))
    x0, y0 = transform * (cols.ravel(), rows.ravel())
    x1, y1 = transform * (cols.ravel() + 1, rows.ravel() + 1)
    cells = shapely.box(x0, y1, x1, y0)
    areas = shapely.area(shapely.intersection(cells, polygon)) / abs(transform.a * transform.e)
    return float(areas.sum()), float((areas * cols.ravel()).sum() / areas.sum())


@pytest.mark.parametrize("cover_scale", [10, 50])
def test_partial_pixels_are_weighted_by_the_area_the_shape_covers(client, columns,
                                                                  cover_scale):
    shapely = pytest.importorskip("shapely")
    ring = [[500123.4, 6000111.1], [500877.7, 6000301.9], [500612.2, 6000943.3],
            [500171.9, 6000689.5], [500123.4, 6000111.1]]
    hole = [[500400.5, 6000400.5], [500500.5, 6000433.3], [500455.5, 6000555.5],
            [500400.5, 6000400.5]]
    feature = {"type": "Feature", "properties": {},
               "geometry": {"type": "Polygon", "coordinates": [ring, hole]}}
    response = _post(client, f"/cog/statistics?url={columns}&coord_crs=EPSG:32633"
                     f"&cover_scale={cover_scale}", feature)
    assert response.status_code == 200, response.body
    found = response.json_body["properties"]["statistics"]["b1"]
    with rasterio.open(columns) as src:
        area, mean = _exact(shapely.Polygon(ring, [hole]), src.transform)
    tolerance = 2.0 / cover_scale  # sub-pixel sampling: edge pixels only
    assert found["count"] == pytest.approx(area, rel=tolerance / 100)
    assert found["mean"] == pytest.approx(mean, rel=tolerance / 100)
    assert found["sum"] == pytest.approx(area * mean, rel=2 * tolerance / 100)
    assert found["valid_pixels"] > found["count"]  # every touched pixel, whole


def test_coverage_of_a_pixel_grid_square():
    square = shapes.shapes_of(_feature([[0.25, 0.25], [2.75, 0.25], [2.75, 1.5], [0.25, 1.5],
                                        [0.25, 0.25]]), crs=rasterio.crs.CRS.from_epsg(3857))
    from affine import Affine
    weights = shapes.coverage(square.shapes[0], Affine(1, 0, 0, 0, -1, 2), 3, 2, scale=4)
    np.testing.assert_allclose(weights, [[0.375, 0.5, 0.375], [0.5625, 0.75, 0.5625]])


@pytest.mark.parametrize("scale", [3, 10, 40, 200])
def test_coverage_samples_only_the_outline_and_equals_sampling_everything(scale):
    """The outline's pixels sampled alone give what sampling every pixel gives (the pixels
    inside are 1, those outside 0)."""
    from affine import Affine
    from rasterio.features import rasterize
    t = np.linspace(0, 2 * np.pi, 400)
    ring = [[60 + 45 * (1 + 0.3 * np.sin(5 * a)) * np.cos(a),
             50 + 35 * (1 + 0.3 * np.sin(5 * a)) * np.sin(a)] for a in t[:-1]]
    hole = [[60 + 8 * np.cos(a), 50 + 8 * np.sin(a)] for a in t[:-1]]
    geometry = {"type": "Polygon", "coordinates": [ring + [ring[0]], hole + [hole[0]]]}
    shape = shapes.shapes_of({"type": "Feature", "properties": {}, "geometry": geometry},
                             crs=rasterio.crs.CRS.from_epsg(3857)).shapes[0]
    transform, width, height = Affine(1, 0, 0, 0, -1, 100), 120, 100
    fast = shapes.coverage(shape, transform, width, height, scale)
    fine = rasterize([(shape.geometry, 1)], out_shape=(height * scale, width * scale),
                     transform=transform @ Affine.scale(1 / scale), all_touched=False,
                     fill=0, dtype="uint8")
    everything = fine.reshape(height, scale, width, scale).mean(axis=(1, 3))
    partial = (everything > 0) & (everything < 1)
    assert partial.sum() > 200  # the outline crosses many pixels
    differ = ~np.isclose(fast, everything, atol=1e-6)
    assert differ.sum() <= max(2, 0.002 * partial.sum())  # GDAL's line walk at corners
    assert abs(fast.sum() - everything.sum()) < 1.0


# ---- across the antimeridian ------------------------------------------------------------------

def test_a_shape_split_at_the_antimeridian_is_the_shape_across_it(client, shared):
    url = f"{shared}/cog_dateline.tif"
    joined = _feature([[179.0, 51.0], [181.0, 51.0], [181.0, 52.0], [179.0, 52.0],
                       [179.0, 51.0]])
    split = {"type": "Feature", "properties": {}, "geometry": {"type": "MultiPolygon",
             "coordinates": [[[[179.0, 51.0], [180.0, 51.0], [180.0, 52.0], [179.0, 52.0],
                               [179.0, 51.0]]],
                             [[[-180.0, 51.0], [-179.0, 51.0], [-179.0, 52.0],
                               [-180.0, 52.0], [-180.0, 51.0]]]]}}
    answers = [_post(client, f"/cog/statistics?url={url}{query}", body).json_body
               for body, query in ((joined, ""), (split, ""), (split, "&dst_crs=EPSG:32660"))]
    degrees, split_degrees, native = (a["properties"]["statistics"]["b1"] for a in answers)
    assert degrees == split_degrees
    # the degrees grid holds about as many pixels as the file's own grid, and the same mean
    assert degrees["valid_pixels"] == pytest.approx(native["valid_pixels"], rel=0.15)
    assert degrees["mean"] == pytest.approx(native["mean"], rel=0.005)
    image = _post(client, f"/cog/feature.npy?url={url}&max_size=256", split)
    assert image.status_code == 200 and _npy(image.body).shape[1:] == (128, 256)


# ---- mosaics ------------------------------------------------------------------------------

def test_a_mosaic_answers_shapes_and_boxes_as_its_file(client):
    mosaic, demo = (f"{ROOT}/chalicelib/demo/{name}" for name in ("mosaic.json", "demo.tif"))
    feature = _feature(_ring(_bounds(client, demo)))
    ours = _post(client, f"/mosaicjson/statistics?url={mosaic}", feature)
    single = _post(client, f"/cog/statistics?url={demo}", feature)
    assert ours.status_code == single.status_code == 200, ours.body[:300]
    assert ours.json_body["properties"] == single.json_body["properties"]
    box = "-78.2,24.2,-77.3,25.0/200x180.npy"
    tile, file = (client.http.get(f"/{kind}/bbox/{box}?url={url}")
                  for kind, url in (("mosaicjson", mosaic), ("cog", demo)))
    assert tile.status_code == file.status_code == 200
    np.testing.assert_array_equal(_npy(tile.body), _npy(file.body))


def test_a_mosaic_names_the_files_a_tile_a_point_or_a_box_reads(client, tmp_path, rasters):
    """titiler-mosaic's /assets routes, on a mosaic of two files side by side: each request
    names the files it would read, in the index's order."""
    import shutil

    import mercantile
    demo = ROOT / "chalicelib" / "demo" / "demo.tif"
    folder = rasters / "assets-mosaic"
    folder.mkdir(exist_ok=True)
    shutil.copy(demo, folder / "a.tif")
    shutil.copy(demo, folder / "b.tif")
    document = json.loads((ROOT / "chalicelib" / "demo" / "mosaic.json").read_text())
    keys = sorted(document["tiles"])
    document["tiles"] = {key: ["a.tif", "b.tif"] if i == 0 else ["b.tif"]
                         for i, key in enumerate(keys)}
    (folder / "mosaic.json").write_text(json.dumps(document))
    url = folder / "mosaic.json"
    first, other = mercantile.quadkey_to_tile(keys[0]), mercantile.quadkey_to_tile(keys[-1])

    def inside(tile):  # the middle of the part of a quadkey's tile the mosaic covers
        w, s, e, n = mercantile.bounds(tile)
        west, south, east, north = document["bounds"]
        return (max(w, west) + min(e, east)) / 2, (max(s, south) + min(n, north)) / 2

    x, y, z = mercantile.tile(*inside(first), first.z + 2)
    answer = client.http.get(f"/mosaicjson/tiles/WebMercatorQuad/{z}/{x}/{y}/assets?url={url}")
    assert answer.status_code == 200, answer.body
    assert answer.json_body == ["a.tif", "b.tif"]
    lon, lat = inside(other)
    assert client.http.get(f"/mosaicjson/point/{lon},{lat}/assets?url={url}").json_body == \
        ["b.tif"]
    cx, cy = inside(first)
    corners = (cx - 0.05, cy - 0.05, cx + 0.05, cy + 0.05)
    box = ",".join(map(str, corners))
    assert client.http.get(f"/mosaicjson/bbox/{box}/assets?url={url}").json_body == \
        ["a.tif", "b.tif"]
    # in another CRS, the same box
    from rasterio.warp import transform_bounds
    metres = transform_bounds("EPSG:4326", "EPSG:3857", *corners)
    box = ",".join(f"{v:.2f}" for v in metres)
    assert client.http.get(f"/mosaicjson/bbox/{box}/assets?url={url}&coord_crs=EPSG:3857"
                           ).json_body == ["a.tif", "b.tif"]
    assert client.http.get(f"/mosaicjson/point/10,10/assets?url={url}").json_body == []
    refused = client.http.get(f"/mosaicjson/bbox/{box}.png/assets?url={url}")
    assert refused.status_code in (400, 404)


# ---- what a user can get wrong ----------------------------------------------------------------

def _square(x=-78.0, y=24.5, d=0.2):
    return [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]


@pytest.mark.parametrize(("body", "status", "words"), [
    ("{not json", 400, "not valid JSON"),
    ("", 400, "missing 'geojson'"),
    ({"type": "Polygon", "coordinates": [_square()]}, 400, "wrap a geometry"),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}}, 400,
     "feature 0: the geometry is a Point"),
    ({"type": "FeatureCollection", "features": [_feature(_square()),
                                                _feature(_square()[:-1] + [[0, 0]])]},
     400, "feature 1: a ring must end where it starts"),
    ({"type": "FeatureCollection", "features": [_feature(_square()),
                                                _feature([[0, 0], [1, 1], [0, 0]])]},
     400, "feature 1: a ring is a list of at least 4 positions"),
    (_feature(_square()[:2] + [["a", 1]] + _square()[3:]), 400, "finite numbers"),
    (_feature([[500000, 2700000], [510000, 2700000], [510000, 2710000], [500000, 2700000]]),
     400, "give coord_crs"),
    ({"type": "FeatureCollection", "features": []}, 400, "non-empty list"),
    ({"type": "FeatureCollection", "features": [_feature(_square())] * 101}, 400,
     "at most 100"),
    (_feature([[-78 + 0.1 * np.cos(t), 24.5 + 0.1 * np.sin(t)]
               for t in np.linspace(0, 2 * np.pi, shapes.MAX_VERTICES + 1)]), 400,
     "vertices"),
    (_feature(_square(10.0, 10.0)), 404, "feature 0 does not touch the data"),
    (_feature(_square(d=0)), 400, "no area"),
])
def test_bad_geojson_is_a_400_that_names_the_feature(client, body, status, words):
    if isinstance(body, dict) and body.get("geometry", {}).get("coordinates"):
        coords = body["geometry"]["coordinates"][0]
        if coords and coords[0] != coords[-1] and words != "a ring must end where it starts":
            coords.append(coords[0])  # close the generated circle
    response = _post(client, f"/cog/statistics?url={ROOT}/chalicelib/demo/demo.tif", body)
    assert response.status_code == status, response.body
    assert words in response.json_body["Message"]


def test_limits_on_what_one_shape_may_cost(client):
    demo = f"{ROOT}/chalicelib/demo/demo.tif"
    feature = _feature(_square(-78.5, 24.0, 1.0))
    response = _post(client, f"/cog/statistics?url={demo}&cover_scale=1000", feature)
    assert response.status_code == 400 and "lower cover_scale" in response.json_body["Message"]
    collection = {"type": "FeatureCollection", "features": [feature]}
    response = _post(client, f"/cog/feature.png?url={demo}", collection)
    assert response.status_code == 400 and "/cog/statistics" in response.json_body["Message"]
    response = client.http.get(f"/cog/statistics?url={demo}&coord_crs=EPSG:4326")
    assert response.status_code == 400 and "coord_crs" in response.json_body["Message"]
    response = _post(client, f"/cog/statistics?url={demo}&coord_crs=+proj=longlat", feature)
    assert response.status_code == 400 and "by its code" in response.json_body["Message"]


def test_algorithms_and_expressions_on_a_shape(client):
    demo = f"{ROOT}/chalicelib/demo/demo.tif"
    feature = _feature(_square(-78.2, 24.2, 0.6))
    slope = _post(client, f"/cog/statistics?url={demo}&bidx=1&algorithm=slope", feature)
    assert slope.status_code == 200, slope.body
    stats = slope.json_body["properties"]["statistics"]["b1"]
    assert stats["description"] == "slope" and 0 <= stats["min"] <= stats["max"] <= 90
    ratio = _post(client, f"/cog/statistics?url={demo}&expression=b1/(b2%2B1)", feature)
    assert ratio.status_code == 200, ratio.body
    assert ratio.json_body["properties"]["statistics"]["b1"]["description"] == "b1/(b2+1)"
