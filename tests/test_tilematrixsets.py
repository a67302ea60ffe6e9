"""Tile matrix sets: the data and the tile math against morecantile (the oracle), tiles in
every set against rio-tiler's ``Reader(tms=...)`` on the real rasters, and the routes."""

import json
import math
import random
import warnings

import numpy as np
import pytest

from chalicelib.core.errors import TileOutsideBounds
from chalicelib.core.records import Selection
from chalicelib.grids import tilematrixsets
from chalicelib.readers import geotiff
from tests.support import ACCEPT_IMAGE, decode, open_dataset

morecantile = pytest.importorskip("morecantile", reason="morecantile is a dev dependency")
import make_tilematrixsets  # noqa: E402

IDS = tilematrixsets.IDS


def test_the_data_is_what_morecantile_ships():
    index, documents = make_tilematrixsets.definitions()
    assert json.loads((tilematrixsets.DATA / "index.json").read_text()) == index
    assert set(IDS) == set(morecantile.tms.list())
    for tms_id, document in documents.items():
        assert tilematrixsets.get(tms_id).definition == document, tms_id


@pytest.mark.parametrize("tms_id", IDS)
def test_tile_bounds_are_morecantile_s(tms_id):
    ours, ref = tilematrixsets.get(tms_id), morecantile.tms.get(tms_id)
    rng = random.Random(tms_id)
    assert (ours.minzoom, ours.maxzoom) == (ref.minzoom, ref.maxzoom)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # morecantile warns when it derives deeper levels
        for z in range(ours.minzoom, ours.deepest + 1):
            matrix, expected = ours.matrix(z), ref.matrix(z)
            assert (matrix.cell_size, matrix.matrix_width, matrix.matrix_height) == \
                (expected.cellSize, expected.matrixWidth, expected.matrixHeight)
            for _ in range(4):
                x, y = rng.randrange(matrix.matrix_width), rng.randrange(matrix.matrix_height)
                assert ours.xy_bounds(z, x, y) == tuple(ref.xy_bounds(x, y, z))


@pytest.mark.parametrize("tms_id", ["WebMercatorQuad", "WorldCRS84Quad", "WGS1984Quad",
                                    "WorldMercatorWGS84Quad", "GNOSISGlobalGrid"])
def test_tiles_over_a_box_are_morecantile_s(tms_id):
    """In world grids, where a box's corners bound it, the tiles over a box agree; in rows
    of merged tiles we also list the merged tile covering the box's first column, which
    morecantile skips when the box starts inside a group."""
    ours, ref = tilematrixsets.get(tms_id), morecantile.tms.get(tms_id)
    rng = random.Random(7)
    for _ in range(20):
        west, east = sorted(rng.uniform(-179, 179) for _ in range(2))
        south, north = sorted(rng.uniform(-80, 80) for _ in range(2))
        z = rng.randrange(1, 9)
        box = tuple(ref.xy(west, south)) + tuple(ref.xy(east, north))
        expected = {(t.x, t.y) for t in ref.tiles(west, south, east, north, [z])}
        found = set(ours.tiles(z, box))
        assert expected <= found
        for x, y in found - expected:
            left, bottom, right, top = ours.xy_bounds(z, x, y)
            factor = ours.matrix(z).coalesce_factor(y)
            assert factor > 1 and x % factor == 0
            assert left < box[2] and right > box[0] and bottom < box[3] and top > box[1]


@pytest.mark.parametrize("tms_id", IDS)
def test_zoom_for_a_resolution_is_morecantile_s(tms_id):
    ours, ref = tilematrixsets.get(tms_id), morecantile.tms.get(tms_id)
    for z in range(ours.minzoom, min(ours.maxzoom, ours.minzoom + 12)):
        coarse, fine = ours.matrix(z).cell_size, ours.matrix(z + 1).cell_size
        between = math.sqrt(coarse * fine)  # the first level finer than this is z + 1
        assert ours.zoom_for_cell_size(between) == \
            ref.zoom_for_res(between, zoom_level_strategy="upper") == z + 1
        assert ours.zoom_for_cell_size(fine) == z + 1  # exactly a level's resolution


# ---- pixels against rio-tiler -----------------------------------------------------------

#: Real rasters paired with the sets they lie in (world.rgb.tif lies in all of them; in
#: CDB1GlobalGrid its levels have tiles of 1-2 pixels, so that set is tested on another).
PAIRS = [(tms_id, "world.rgb.tif") for tms_id in IDS if tms_id != "CDB1GlobalGrid"] + [
    ("CanadianNAD83_LCC", "cog.tif"), ("UPSArcticWGS84Quad", "cog.tif"),
    ("WGS1984Quad", "cog.tif"), ("WorldMercatorWGS84Quad", "RGB.byte.tif"),
    ("WorldCRS84Quad", "cog_dateline.tif"), ("UPSArcticWGS84Quad", "cog_dateline.tif"),
    ("GNOSISGlobalGrid", "RGB.byte.tif"), ("CDB1GlobalGrid", "cog_rgb_mask.tif"),
    ("EuropeanETRS89_LAEAQuad", "float_raster_with_nodata.tif"),
    ("UTM31WGS84Quad", "float_raster_with_nodata.tif"), ("WorldCRS84Quad", "shade.tif"),
]


def sample_tiles(dataset, tms, per_zoom=2):
    """Tiles near the middle of the data, from its minzoom to one past its maxzoom."""
    minzoom, maxzoom = geotiff.zoom_range(dataset, tms)
    box = geotiff.footprint(dataset, tms)[0]  # (the first part of data crossing 180 degrees)
    for z in range(max(minzoom, maxzoom - 2), min(maxzoom + 1, tms.deepest) + 1):
        found = tms.tile_range(z, box)
        if found is None:
            continue
        x0, y0 = (found[0] + found[2]) // 2, (found[1] + found[3]) // 2
        picked = [(x, y) for x, y in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 - 1, y0 - 1))
                  if found[0] <= x <= found[2] and found[1] <= y <= found[3]
                  and geotiff.tile_exists(dataset, tms, z, x, y)]
        for x, y in picked[:per_zoom]:
            yield z, x, y, z >= maxzoom - 1


@pytest.mark.parametrize("tms_id, name", PAIRS)
def test_tiles_match_rio_tiler_in_every_set(shared, tms_id, name):
    from rio_tiler.errors import TileOutsideBounds as RioOutside
    from rio_tiler.io import Reader

    path = str(shared / name)
    dataset, tms = open_dataset(path), tilematrixsets.get(tms_id)
    compared = values = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Reader(path, tms=morecantile.tms.get(tms_id)) as ref_reader:
            for z, x, y, compare_values in sample_tiles(dataset, tms):
                try:
                    ref = ref_reader.tile(x, y, z)
                except RioOutside:
                    continue  # rio-tiler is stricter about the extent; nothing to compare
                ours = _our_tile(dataset, tms, z, x, y)
                assert ours.data.shape == ref.data.shape
                ref_mask = ref.mask > 0
                agreement = (ref_mask == ours.mask).mean()
                assert agreement >= 0.97, f"{name} {tms_id} {z}/{x}/{y}: masks {agreement:.1%}"
                both = ref_mask & ours.mask
                if compare_values and both.sum() > 16:
                    diff = np.abs(ref.data.astype("float64") - ours.data)[:, both]
                    span = float(np.ptp(ref.data[:, both])) or 1.0
                    assert np.percentile(diff, 99) <= 0.01 * span, \
                        f"{name} {tms_id} {z}/{x}/{y}: values differ"
                    values += 1
                compared += 1
    assert compared >= 2 and values >= 1, f"{name} in {tms_id}: {compared} tiles, {values} " \
                                          "with values compared"


def _our_tile(dataset, tms, z, x, y):
    """Our tile at the matrix's own tile size (as rio-tiler's default)."""
    from chalicelib.core.records import TileAddress
    matrix = tms.matrix(z)
    address = TileAddress(tms, z, x, y, matrix.tile_width, matrix.tile_height, None)
    return geotiff.tile(dataset, address, Selection())


def test_data_is_never_missed_where_rio_tiler_finds_it(shared):
    """Every tile in which rio-tiler finds valid pixels exists for us (existence may be
    looser, never stricter)."""
    from rio_tiler.errors import TileOutsideBounds as RioOutside
    from rio_tiler.io import Reader

    checked = 0
    for tms_id, name in [("UPSArcticWGS84Quad", "cog.tif"), ("WorldCRS84Quad", "cog_dateline.tif"),
                         ("CanadianNAD83_LCC", "RGB.byte.tif"), ("NZTM2000Quad", "world.rgb.tif")]:
        path = str(shared / name)
        dataset, tms = open_dataset(path), tilematrixsets.get(tms_id)
        z = geotiff.zoom_range(dataset, tms)[0] + 1
        found = geotiff.tile_limits(dataset, tms, z)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = Reader(path, tms=morecantile.tms.get(tms_id))
            for x in range(max(found[0] - 1, 0), min(found[2] + 2, tms.matrix(z).matrix_width)):
                for y in range(max(found[1] - 1, 0),
                               min(found[3] + 2, tms.matrix(z).matrix_height)):
                    try:
                        image = ref.tile(x, y, z, tilesize=64)
                    except RioOutside:
                        continue
                    if (image.mask > 0).any():
                        assert geotiff.tile_exists(dataset, tms, z, x, y), (tms_id, name, z, x, y)
                        checked += 1
            ref.close()
    assert checked >= 4


def test_a_tile_far_from_the_data_is_outside(shared):
    dataset, tms = open_dataset(shared / "cog.tif"), tilematrixsets.get("UPSArcticWGS84Quad")
    z = geotiff.zoom_range(dataset, tms)[0] + 3
    min_col, min_row, _, _ = geotiff.tile_limits(dataset, tms, z)
    assert min_col > 0 and min_row > 0  # so the corner tile (0, 0) is far from the data
    assert not geotiff.tile_exists(dataset, tms, z, 0, 0)
    with pytest.raises(TileOutsideBounds):
        _our_tile(dataset, tms, z, 0, 0)


# ---- the routes ----------------------------------------------------------------------------

def test_tile_matrix_sets_are_listed_and_served(client):
    listed = client.http.get("/tileMatrixSets").json_body["tileMatrixSets"]
    assert sorted(t["id"] for t in listed) == sorted(morecantile.tms.list())
    link = next(t for t in listed if t["id"] == "WorldCRS84Quad")["links"][0]["href"]
    assert link.endswith("/tileMatrixSets/WorldCRS84Quad")
    body = client.http.get("/tileMatrixSets/WorldCRS84Quad").json_body
    expected = morecantile.tms.get("WorldCRS84Quad").model_dump(exclude_none=True, mode="json")
    assert body == json.loads(json.dumps(expected))
    missing = client.http.get("/tileMatrixSets/NoSuchGrid")
    assert missing.status_code == 404 and missing.json_body["Code"] == "NotFound"


def test_a_tile_in_another_set_through_the_api(client, shared):
    url = str(shared / "world.rgb.tif")
    response = client.http.get(f"/cog/tiles/WorldCRS84Quad/1/3/1.png?url={url}",
                               headers=ACCEPT_IMAGE)
    assert response.status_code == 200
    assert response.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    assert [float(v) for v in response.headers["Content-Bbox"].split(",")] == [90, -90, 180, 0]
    assert decode(response.body).shape[1:] == (256, 256)
    tilejson = client.http.get(f"/cog/WorldCRS84Quad/tilejson.json?url={url}&bidx=1").json_body
    assert "/cog/tiles/WorldCRS84Quad/{z}/{x}/{y}?" in tilejson["tiles"][0]
    assert "bidx=1" in tilejson["tiles"][0]
    bad = client.http.get(f"/cog/tiles/WorldCRS84Quad/1/4/0.png?url={url}")
    assert bad.status_code == 400 and "'x' must be between 0 and 3" in bad.json_body["Message"]
