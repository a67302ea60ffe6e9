"""The read path on synthetic rasters whose every pixel is known."""

import io
import math

import mercantile
import numpy as np
import pytest
from rasterio.enums import ColorInterp

from chalicelib.core.errors import BadRequest, NotARaster, TileOutsideBounds
from chalicelib.core.records import Selection, StatisticsOptions
from chalicelib.readers import geotiff, planning
from chalicelib.sources import datasets
from tests.support import TILE, open_dataset, parsed, pattern, read_tile, wmq, write_raster

SEL = Selection()


def open_entry(path):
    return open_dataset(str(path))


def test_a_tile_aligned_raster_reads_back_exactly(rasters):
    data = pattern(bands=3)
    entry = open_entry(write_raster(rasters / "aligned.tif", data))
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 256, SEL)
    np.testing.assert_array_equal(image.data, data)
    assert image.mask.all()
    assert image.bounds == pytest.approx(tuple(mercantile.xy_bounds(TILE)))


def test_zooming_in_repeats_pixels(rasters):
    data = pattern()
    entry = open_entry(write_raster(rasters / "aligned.tif", data))
    child = mercantile.children(TILE)[0]  # the top-left quarter
    image = read_tile(entry, child.z, child.x, child.y, 256, SEL)
    expected = np.repeat(np.repeat(data[:, :128, :128], 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(image.data, expected)


def test_a_512_pixel_tile_of_the_same_area(rasters):
    data = pattern()
    entry = open_entry(write_raster(rasters / "aligned.tif", data))
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 512, SEL)
    np.testing.assert_array_equal(image.data, np.repeat(np.repeat(data, 2, axis=1), 2, axis=2))


def test_zooming_out_reads_the_overview_and_masks_the_rest(rasters):
    # A 0/200 checkerboard averages to 100 in the overview; decimating the full
    # resolution image instead would give 0s and 200s.
    rows, cols = np.mgrid[0:256, 0:256]
    board = (((rows + cols) % 2) * 200).astype("uint8")[None]
    entry = open_entry(write_raster(rasters / "board.tif", board, overviews=(2, 4)))
    parent = mercantile.parent(TILE)  # TILE is its top-left quarter (x, y even)
    image = read_tile(entry, parent.z, parent.x, parent.y, 256, SEL)
    assert np.all(image.data[0, :128, :128] == 100)
    assert image.mask[:128, :128].all() and not image.mask[128:, :].any() \
        and not image.mask[:, 128:].any()


def test_tiles_outside_the_data_are_404(rasters):
    entry = open_entry(write_raster(rasters / "aligned.tif", pattern()))
    with pytest.raises(TileOutsideBounds):
        read_tile(entry, TILE.z, TILE.x + 2, TILE.y, 256, SEL)


def test_nodata_pixels_are_masked(rasters):
    data = pattern()
    data[0, 10:20, 30:40] = 0
    entry = open_entry(write_raster(rasters / "nodata.tif", data, nodata=0))
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 256, SEL)
    expected = np.ones((256, 256), bool)
    expected[10:20, 30:40] = False
    np.testing.assert_array_equal(image.mask, expected)


def test_a_user_nodata_overrides_the_file(rasters):
    data = pattern()
    entry = open_entry(write_raster(rasters / "plain.tif", data))
    value = int(data[0, 5, 5])
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 256, Selection(nodata=value))
    np.testing.assert_array_equal(image.mask, data[0] != value)


def test_nan_nodata_on_float_data(rasters):
    data = pattern(dtype="float32")
    data[0, :8, :] = np.nan
    entry = open_entry(write_raster(rasters / "nan.tif", data, nodata=float("nan")))
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 256, SEL)
    assert not image.mask[:8].any() and image.mask[8:].all()


def test_nodata_outside_the_data_type_is_a_bad_request(rasters):
    entry = open_entry(write_raster(rasters / "plain.tif", pattern()))
    with pytest.raises(BadRequest, match="range"):
        read_tile(entry, TILE.z, TILE.x, TILE.y, 256, Selection(nodata=-5))


def test_alpha_band_is_the_mask_and_not_a_default_band(rasters):
    data = pattern(bands=4)
    data[3] = 255
    data[3, 100:, :] = 0
    path = write_raster(rasters / "rgba.tif", data, photometric="RGB", alpha="YES")
    entry = open_entry(path)
    assert entry.src.colorinterp[3] == ColorInterp.alpha
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 256, SEL)
    assert image.data.shape[0] == 3
    np.testing.assert_array_equal(image.mask, data[3] > 0)


def test_mask_band_is_honoured(rasters):
    mask = np.full((256, 256), 255, "uint8")
    mask[:, :64] = 0
    entry = open_entry(write_raster(rasters / "masked.tif", pattern(bands=3), mask=mask))
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 256, SEL)
    np.testing.assert_array_equal(image.mask, mask > 0)


def test_bidx_and_expression(rasters):
    data = pattern(bands=3)
    entry = open_entry(write_raster(rasters / "rgb.tif", data))
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 256, Selection(indexes=(3, 1)))
    np.testing.assert_array_equal(image.data, data[[2, 0]])
    from chalicelib.api.params import selection as to_selection
    selection = to_selection(parsed({"expression": ["(b3 - b1) / (b3 + b1)"]}))
    image = read_tile(entry, TILE.z, TILE.x, TILE.y, 256, selection)
    d = data.astype("float64")
    np.testing.assert_allclose(image.data[0], (d[2] - d[0]) / (d[2] + d[0]), rtol=1e-6)
    with pytest.raises(BadRequest, match="band 4"):
        read_tile(entry, TILE.z, TILE.x, TILE.y, 256, Selection(indexes=(4,)))


def test_reprojected_geographic_data_lands_where_it_belongs(rasters):
    # A 4326 raster split in a west half (value 10) and an east half (value 20) at lon 0.
    data = np.full((1, 180, 360), 10, "uint8")
    data[0, :, 180:] = 20
    entry = open_entry(write_raster(rasters / "halves.tif", data, bounds=(-180, -90, 180, 90),
                                    crs="EPSG:4326", blocksize=16))
    west = read_tile(entry, 1, 0, 0, 256, SEL)
    east = read_tile(entry, 1, 1, 1, 256, SEL)
    assert np.all(west.data == 10) and np.all(east.data == 20)
    assert west.mask.all() and east.mask.all()
    whole = read_tile(entry, 0, 0, 0, 256, SEL)
    assert np.all(whole.data[0, :, :127] == 10) and np.all(whole.data[0, :, 129:] == 20)


def test_data_crossing_the_antimeridian_shows_on_both_sides(rasters):
    # UTM zone 60 north around 180 degrees: the raster spans 178E to 178W.
    from rasterio.warp import transform
    xs, ys = transform("EPSG:4326", "EPSG:32660", [178.0, -178.0], [50.0, 52.0])
    bounds = (min(xs), min(ys), max(xs), max(ys))
    entry = open_entry(write_raster(rasters / "dateline.tif", np.full((1, 256, 256), 7, "uint8"),
                                    bounds=bounds, crs="EPSG:32660", nodata=0))
    west, _, east, _ = entry.geographic_bounds
    assert west > east  # crosses 180 degrees
    for lon in (179.5, -179.5):
        t = mercantile.tile(lon, 51.0, 6)
        image = read_tile(entry, t.z, t.x, t.y, 256, SEL)
        assert image.mask.any() and np.all(image.data[0][image.mask] == 7)
    far = mercantile.tile(0, 51.0, 6)
    with pytest.raises(TileOutsideBounds):
        read_tile(entry, far.z, far.x, far.y, 256, SEL)


def test_point_values(rasters):
    data = pattern(bands=2, dtype="uint16")
    entry = open_entry(write_raster(rasters / "points.tif", data))
    left, bottom, right, top = mercantile.xy_bounds(TILE)
    res = (right - left) / 256
    x, y = left + res * (30 + 0.5), top - res * (40 + 0.5)  # row 40, col 30
    lon, lat = mercantile.lnglat(x, y)
    image = geotiff.point(entry, lon, lat, SEL)
    np.testing.assert_array_equal(image.data[:, 0, 0], data[:, 40, 30])
    with pytest.raises(TileOutsideBounds):
        geotiff.point(entry, 0.0, 0.0, SEL)


def test_statistics_are_those_of_the_data(rasters):
    data = pattern(dtype="float32")
    data[0, :16] = -1
    entry = open_entry(write_raster(rasters / "stats.tif", data, nodata=-1))
    stats = geotiff.statistics(entry, SEL, StatisticsOptions(max_size=1024))["b1"]
    valid = data[0][data[0] != -1]
    assert stats["min"] == valid.min() and stats["max"] == valid.max()
    assert stats["mean"] == pytest.approx(valid.mean(), rel=1e-6)
    assert stats["std"] == pytest.approx(valid.std(), rel=1e-5)
    assert stats["percentile_98"] == pytest.approx(np.percentile(valid, 98))
    assert stats["valid_percent"] == pytest.approx(100 * valid.size / data[0].size, abs=0.01)
    assert sum(stats["histogram"][0]) == valid.size


def test_stretch_ranges_come_from_the_dataset(rasters):
    data = (pattern(dtype="float32") * 10 + 1000)
    entry = open_entry(write_raster(rasters / "float.tif", data))
    low, high = geotiff.stretch_ranges(entry, SEL)[0]
    assert low == pytest.approx(np.percentile(data, 2), rel=0.01)
    assert high == pytest.approx(np.percentile(data, 98), rel=0.01)


def test_info_describes_the_file(rasters):
    path = write_raster(rasters / "info.tif", pattern(bands=2, dtype="int16"), nodata=-9,
                        overviews=(2,))
    info = geotiff.info(open_entry(path), wmq())
    assert info["count"] == 2 and info["dtype"] == "int16" and info["nodata_value"] == -9
    assert info["nodata_type"] == "Nodata" and info["overviews"] == [2]
    west, south, east, north = info["bounds"]
    expected = mercantile.bounds(TILE)
    assert (west, south, east, north) == pytest.approx(tuple(expected), abs=1e-6)
    assert info["maxzoom"] == TILE.z  # 256 pixels over one z10 tile
    assert info["minzoom"] == TILE.z
    assert "/" not in info["name"]


def test_files_without_georeferencing_are_refused(rasters):
    import rasterio
    path = rasters / "nogeo.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1,
                       dtype="uint8") as dst:
        dst.write(np.zeros((1, 8, 8), "uint8"))
    with pytest.raises(NotARaster, match="georeferencing"):
        open_entry(path)


def test_vrt_files_are_refused_even_when_allowed(rasters):
    write_raster(rasters / "inner.tif", pattern())
    vrt = rasters / "evil.tif"  # a VRT in disguise, pointing at another file
    vrt.write_text(f'<VRTDataset rasterXSize="8" rasterYSize="8"><VRTRasterBand dataType="Byte" '
                   f'band="1"><SimpleSource><SourceFilename>{rasters / "inner.tif"}'
                   f'</SourceFilename></SimpleSource></VRTRasterBand></VRTDataset>')
    with pytest.raises(NotARaster):
        open_entry(vrt)


def test_opened_datasets_are_reused_and_the_cache_is_bounded(rasters, monkeypatch):
    monkeypatch.setenv("DATASET_CACHE_SIZE", "2")
    paths = [write_raster(rasters / f"c{i}.tif", pattern()) for i in range(3)]
    before = datasets.cache.opened
    first = open_entry(paths[0])
    assert open_entry(paths[0]) is first and datasets.cache.opened == before + 1
    open_entry(paths[1]), open_entry(paths[2])
    assert datasets.cache.opened == before + 3
    # evicted (least recently used) but not closed under whoever still holds it; rasterio
    # closes the file when the last reference goes
    assert not first.src.closed and first.src.read(1).shape == (256, 256)
    assert open_entry(paths[0]) is not first and datasets.cache.opened == before + 4


def test_a_rewritten_local_file_is_reopened(rasters):
    path = write_raster(rasters / "rewritten.tif", pattern())
    first = open_entry(path)
    write_raster(path, pattern() + 1)
    second = open_entry(path)
    assert second is not first
    image = read_tile(second, TILE.z, TILE.x, TILE.y, 256, SEL)
    np.testing.assert_array_equal(image.data, pattern() + 1)


def test_native_resolution_of_world_data_is_sane(rasters):
    entry = open_entry(write_raster(rasters / "world.tif", np.ones((1, 180, 360), "uint8"),
                                    bounds=(-180, -90, 180, 90), crs="EPSG:4326", blocksize=16))
    # one degree at the equator is 111 km in web mercator metres
    assert entry.native_resolution(wmq().crs) == pytest.approx(111_319, rel=0.05)
    # the first zoom whose 256-pixel tiles are at least that fine
    zoom = math.log2(2 * math.pi * 6378137 / (256 * entry.native_resolution(wmq().crs)))
    assert geotiff.zoom_range(entry, wmq()) == (0, math.ceil(zoom - 0.01))


def _world(rasters, name="world_stripes.tif"):
    """A whole-world EPSG:4326 raster (4096 x 2048, overviews 2-8) of one-degree latitude
    stripes and 10-degree longitude bands, with nodata (0) cells scattered over it: detail
    that a too coarse overview blurs, and edges a mask must follow."""
    height, width = 2048, 4096
    rows, cols = np.mgrid[0:height, 0:width]
    lat = 90 - (rows + 0.5) * 180 / height
    lon = -180 + (cols + 0.5) * 360 / width
    data = ((np.floor(lat) % 2) * 150 + (np.floor(lon / 10) % 2) * 60 + 20).astype("uint8")
    data[(np.floor(lon / 7) + np.floor(lat / 3)) % 5 == 0] = 0
    path = write_raster(rasters / name, data[None], bounds=(-180, -90, 180, 90),
                        crs="EPSG:4326", nodata=0, overviews=(2, 4, 8), blocksize=512)
    return path, data


def _nearest_truth(data, z, x, y, size=256):
    """The full-resolution pixel under each output pixel's centre of WebMercatorQuad tile
    z/x/y (what nearest resampling of the whole-resolution file gives), computed here from the
    array: web mercator rows to latitudes by the inverse Gudermannian."""
    height, width = data.shape
    west, south, east, north = mercantile.xy_bounds(x, y, z)
    step = (east - west) / size
    xs = west + (np.arange(size) + 0.5) * step
    ys = north - (np.arange(size) + 0.5) * step
    lon = np.degrees(xs / 6378137.0)
    lat = np.degrees(np.arctan(np.sinh(ys / 6378137.0)))
    rows = np.clip(((90 - lat) * height / 180).astype(int), 0, height - 1)
    cols = np.clip(((lon + 180) * width / 360).astype(int), 0, width - 1)
    return data[rows[:, None], cols[None, :]]


@pytest.mark.parametrize("z, x, y", [(0, 0, 0), (1, 0, 0), (1, 1, 1), (2, 1, 0), (2, 2, 1),
                                     (2, 3, 3)])
def test_world_tiles_at_low_zooms_read_the_overview_their_poles_need(rasters, z, x, y):
    """The overview comes from the finest detail needed anywhere in the tile: near the poles a
    web mercator pixel spans a small fraction of the latitude it spans at the equator, so an
    overview chosen for the centre (the data's or the tile's) blurs the stripes and shifts the
    mask there. Against the full resolution data sampled at each pixel's centre. (Where an
    output pixel spans 1-2 source pixels the read samples twice, through the warped grid,
    so a few percent of the pixels on the stripes' edges differ; an overview chosen at the
    centre got 40-75% of the values and 94-98% of the mask right on these tiles.)"""
    path, data = _world(rasters)
    image = read_tile(open_entry(path), z, x, y, 256, SEL)
    truth = _nearest_truth(data, z, x, y)
    valid = truth != 0
    assert (image.mask == valid).mean() >= 0.985
    both = image.mask & valid
    assert (image.data[0][both] == truth[both]).mean() >= 0.9
    # the rows nearest the pole (or the equator) alone, where a wrong overview shows most
    edge = np.zeros_like(both)
    edge[:32] = True
    edge[-32:] = True
    assert (image.data[0][both & edge] == truth[both & edge]).mean() >= 0.9


def test_a_world_tile_over_the_read_limit_uses_a_coarser_overview(rasters, monkeypatch):
    """When the overview the poles need would decompress more than the read limit, the tile
    is read from the finest overview within it (blurrier toward the poles) instead of being
    refused; below even the coarsest, it is refused."""
    from chalicelib.core.errors import TooLarge
    path, data = _world(rasters)
    entry = open_entry(path)
    bounds, crs = mercantile.xy_bounds(0, 0, 1), wmq().crs
    needed = planning.read_scale(entry, bounds, crs, 256, 256, SEL)
    full = planning.read_cost(entry, bounds, crs, 256, 256, SEL, needed)
    coarsest = planning.read_cost(entry, bounds, crs, 256, 256, SEL, 8)
    assert needed < 2 and coarsest < full
    monkeypatch.setattr(planning, "MAX_READ_BYTES", coarsest)
    scale = planning.read_scale(entry, bounds, crs, 256, 256, SEL)
    assert scale in entry.src.overviews(1) and scale > needed
    assert planning.read_cost(entry, bounds, crs, 256, 256, SEL, scale) <= coarsest
    image = read_tile(entry, 1, 0, 0, 256, SEL)
    truth = _nearest_truth(data, 1, 0, 0)
    assert (image.mask == (truth != 0)).mean() >= 0.9  # served, roughly right
    monkeypatch.setattr(planning, "MAX_READ_BYTES", coarsest - 1)
    with pytest.raises(TooLarge, match="read limit"):
        read_tile(entry, 1, 0, 0, 256, SEL)


def test_reads_beyond_the_value_budget_are_refused(rasters, monkeypatch):
    from chalicelib.core.errors import TooLarge
    entry = open_entry(write_raster(rasters / "many.tif", pattern(bands=4)))
    monkeypatch.setattr(planning, "MAX_READ_VALUES", 4 * 256 * 256)  # 3 bands + mask fit, 4 do not
    read_tile(entry, TILE.z, TILE.x, TILE.y, 256, Selection(indexes=(1, 2, 3)))
    with pytest.raises(TooLarge):
        read_tile(entry, TILE.z, TILE.x, TILE.y, 256, Selection(indexes=(1, 2, 3, 4)))


@pytest.mark.parametrize("query", [{"bidx": ["2"]}, {"bidx": ["3", "1"]},
                                   {"expression": ["b2*1"]}])
def test_band_subsets_equal_the_bands_of_a_full_read(shared, query):
    """A band subset is read with every band (GDAL uses the warped VRT's overviews only
    then: a subset used to take a minute for a z0 tile); the values are those bands'."""
    from tests.support import engine_tile
    url = shared / "cog_rgb_mask.tif"
    for z, x, y in ((0, 0, 0), (1, 0, 0)):
        every = np.load(io.BytesIO(engine_tile(url, z, x, f"{y}.npy", {}).body))
        part = np.load(io.BytesIO(engine_tile(url, z, x, f"{y}.npy", query).body))
        bands = [int(b) - 1 for b in query.get("bidx", ["2"])]
        np.testing.assert_array_equal(part[:-1].astype("float64"),
                                      every[bands].astype("float64"))
        np.testing.assert_array_equal(part[-1], every[-1])  # the mask


class CountingLock:
    """A dataset's lock that counts how often it is taken."""

    def __init__(self):
        import threading
        self.lock, self.taken = threading.RLock(), 0

    def acquire(self, blocking=True):
        self.taken += 1
        return self.lock.acquire(blocking)

    def release(self):
        self.lock.release()

    def __enter__(self):
        self.acquire()

    def __exit__(self, *exc):
        self.release()


@pytest.mark.parametrize("query, statistics", [
    ({}, True),  # float data without rescale: stretched by the dataset's statistics
    ({"rescale": ["0,3000"]}, False),
    ({"colormap_name": ["viridis"], "rescale": ["0,3000"]}, False),
])
def test_a_tile_holds_the_dataset_once(rasters, query, statistics):
    """Read, then what rendering needs (palette, statistics) in the same hold: the tile
    never goes back to the reader, also the first time, when the statistics are computed."""
    from tests.support import engine_tile
    path = write_raster(rasters / "lock_once.tif", pattern(dtype="float32") * 10)
    entry = open_dataset(path)
    entry.lock = CountingLock()
    for _ in range(2):  # the first tile computes the statistics, the second has them memoised
        image = engine_tile(path, TILE.z, TILE.x, f"{TILE.y}.png", query)
        assert image.body.startswith(b"\x89PNG")
    assert entry.lock.taken == 2  # once per tile
    assert (("stretch",) + Selection().key in entry.memo) is statistics


def test_what_the_reader_attaches_follows_the_style(rasters):
    """A paletted file's tile carries its palette; statistics come only when asked, and
    never for 8-bit pixels (shown as they are)."""
    from chalicelib.readers.cog import COGReader
    from tests.support import config
    colormap = {i: (i, 255 - i, 0, 255) for i in range(256)}
    paletted = write_raster(rasters / "attach_paletted.tif", pattern(), colormap=colormap)
    reader = COGReader.open(str(paletted), config())
    from chalicelib.core.records import TileAddress
    address = TileAddress(wmq(), TILE.z, TILE.x, TILE.y, 256, 256, None)
    image = reader.tile(address, SEL, statistics=True)
    assert image.palette is not None and image.palette[7].tolist() == [7, 248, 0, 255]
    assert image.dataset_statistics is None  # 8-bit
    floats = write_raster(rasters / "attach_float.tif", pattern(dtype="float32"))
    reader = COGReader.open(str(floats), config())
    assert reader.tile(address, SEL).dataset_statistics is None  # not asked
    low, high = reader.tile(address, SEL, statistics=True).dataset_statistics[0]
    assert low == pytest.approx(np.percentile(pattern(), 2), abs=3)
    assert high == pytest.approx(np.percentile(pattern(), 98), abs=3)
