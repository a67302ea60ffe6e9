"""Shared fixtures: the Chalice test client, the real rasters in ../shared/data/, and
synthetic rasters whose every pixel is known.

The suite runs the app under the ``test`` stage of .chalice/config.json (the same GDAL
tuning as dev/prod, but no ALLOWED_SOURCES of its own); the allow-list comes from here.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import BUILD, ROOT, SHARED

# The pure functions are declared when app.py is imported, from these names.
PIPELINE = {"UPLOAD_BUCKET": "cogtiler-uploads", "UPLOAD_PREFIX": "uploads/",
            "COG_PREFIX": "cogs/", "TILE_QUEUE": "cogtiler-tiles", "TILE_BUCKET": "cogtiler-tiles",
            "TILE_PREFIX": "tiles", "MOSAIC_PREFIX": "s3://cogtiler-tiles/mosaics/"}
os.environ.update(PIPELINE)
# Engine calls made directly by tests run with the deployed stages' GDAL tuning too.
for _name, _value in json.loads((ROOT / ".chalice" / "config.json").read_text())[
        "environment_variables"].items():
    os.environ.setdefault(_name, _value)


def _allow(paths):
    os.environ["ALLOWED_SOURCES"] = ",".join(str(p) for p in paths)


@pytest.fixture(scope="session")
def rasters():
    """A per-worker folder for synthetic rasters, on the allow-list."""
    folder = BUILD / os.environ.get("PYTEST_XDIST_WORKER", "main")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session", autouse=True)
def allow_list(rasters):
    _allow(["chalicelib/demo/", f"{SHARED}/", f"{BUILD}/"])
    yield


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test opens its datasets anew (synthetic files are rewritten between tests)."""
    from chalicelib.sources.datasets import cache
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def shared():
    if not SHARED.is_dir():
        pytest.skip(f"real test rasters not found at {SHARED} (the shared/ folder beside the "
                    "checkout); these tests need them")
    return SHARED


@pytest.fixture(scope="session")
def titiler():
    """titiler itself (titiler.core's COG and STAC factories, its algorithms and colormaps) in
    process:
    the oracle for every titiler URL, asked the same request as our handler."""
    from fastapi import FastAPI
    from rio_tiler.io import STACReader
    from starlette.testclient import TestClient
    from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from titiler.core.factory import (
        AlgorithmFactory,
        ColorMapFactory,
        MultiBaseTilerFactory,
        TilerFactory,
    )

    app = FastAPI()
    app.include_router(TilerFactory(router_prefix="/cog").router, prefix="/cog")
    app.include_router(MultiBaseTilerFactory(reader=STACReader, router_prefix="/stac").router,
                       prefix="/stac")
    app.include_router(AlgorithmFactory().router)
    app.include_router(ColorMapFactory().router)
    add_exception_handlers(app, DEFAULT_STATUS_CODES)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def client():
    from chalice.test import Client

    from app import app
    with Client(app, stage_name="test", project_dir=str(ROOT)) as test_client:
        yield test_client




class Moto:
    """A moto server (S3 and SQS over HTTP on 127.0.0.1), with its request log."""

    def __init__(self, port: int, log: Path):
        self.port, self.log = port, log
        self.endpoint = f"http://127.0.0.1:{port}"

    def requests(self) -> list[str]:
        """Request lines seen so far, e.g. 'GET /bucket/key HTTP/1.1" 206'."""
        return [line.split('"')[1] + " " + line.split('"')[2].split()[0]
                for line in self.log.read_text().splitlines() if '"' in line and "HTTP/" in line]

    def client(self, service: str):
        import boto3
        return boto3.session.Session().client(service, endpoint_url=self.endpoint)


@pytest.fixture(scope="session")
def moto(rasters):
    """moto in server mode, reached over HTTP by boto3 and by GDAL's /vsis3/."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = rasters / "moto.log"
    server = Path(sys.executable).parent / "moto_server"
    with open(log, "w") as out:
        process = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:  # until the port answers (bounded)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("moto_server did not start: " + log.read_text()[-2000:])
            time.sleep(0.1)
    env = {
        # boto3
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        # GDAL's /vsis3/
        "AWS_S3_ENDPOINT": f"127.0.0.1:{port}", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from chalicelib.sources import aws
    aws.client.cache_clear()
    try:
        yield Moto(port, log)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.client.cache_clear()
        process.terminate()
        process.wait(timeout=10)


class Catalog:
    """A real STAC API (tools/stacapi.py) over scenes served by a range server."""

    COLLECTION = "scenes"

    def __init__(self, api, files, items: list[dict], folder: Path):
        self.api, self.files, self.items, self.folder = api, files, items, folder
        self.url = api.url

    def env(self, searches: Path) -> dict:
        """The environment a stage pointed at this catalog has."""
        return {"STAC_API_URL": self.url, "SEARCHES_PREFIX": str(searches),
                "ALLOWED_SOURCES": os.environ["ALLOWED_SOURCES"] + f",{self.files.url('')}",
                "UNSAFE_ALLOW_HOSTS": self.files.host}

    def item(self, item_id: str) -> dict:
        return next(i for i in self.items if i["id"] == item_id)


#: The scenes of the catalog: windows of cog.tif (col, row offsets), each with its own
#: offset added to the pixels (which scene a pixel came from shows), a date and a cloud cover.
SCENES = (("s1", 0, 0, 0, "2025-06-01T10:00:00Z", 5.0),
          ("s2", 1100, 0, 1000, "2025-06-10T10:00:00Z", 40.0),
          ("s3", 0, 1100, 2000, "2025-07-01T10:00:00Z", 2.0),
          ("s4", 1100, 1100, 3000, "2025-06-20T10:00:00Z", 15.0))
SCENE_SIZE = 1550


def write_scene(shared: Path, path: Path, col: int, row: int, offset: int) -> tuple:
    """A window of cog.tif with ``offset`` added, as a COG; its bounds in degrees."""
    import numpy as np
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window
    window = Window(col, row, SCENE_SIZE, SCENE_SIZE)
    with rasterio.open(shared / "cog.tif") as src:
        data = src.read(1, window=window).astype("uint32") + offset
        profile = {"driver": "GTiff", "width": SCENE_SIZE, "height": SCENE_SIZE, "count": 1,
                   "dtype": "uint16", "crs": src.crs, "nodata": 0,
                   "transform": src.window_transform(window)}
        box = transform_bounds(src.crs, "EPSG:4326", *rasterio.windows.bounds(
            window, src.transform), densify_pts=21)
    if not path.exists():
        with MemoryFile() as memory:
            with memory.open(**profile) as mem:
                mem.write(np.clip(data, 1, 65535).astype("uint16"), 1)
            with memory.open() as mem:
                copy(mem, str(path), driver="COG", blocksize=256, compress="deflate",
                     overview_resampling="nearest")
    return box


@pytest.fixture(scope="session")
def stac_api(shared, rasters):
    """A real STAC API (PostgreSQL + PostGIS + PgSTAC + stac-fastapi-pgstac on 127.0.0.1) with
    one collection of four overlapping scenes; skipped, saying why, where it cannot run."""
    import stacapi  # tools/
    from rangeserver import RangeServer
    why = stacapi.unavailable()
    if why:
        pytest.skip(why)
    folder = rasters / "catalog"
    folder.mkdir(exist_ok=True)
    with RangeServer(folder) as files, stacapi.StacAPI() as api:
        items, boxes = [], []
        for name, col, row, offset, when, cloud in SCENES:
            box = write_scene(shared, folder / f"{name}.tif", col, row, offset)
            boxes.append(box)
            items.append(stacapi.stac_item(Catalog.COLLECTION, name, box, when,
                                           {"data": files.url(f"{name}.tif")},
                                           **{"eo:cloud_cover": cloud}))
        api.load(stacapi.collection(Catalog.COLLECTION, boxes), items)
        yield Catalog(api, files, items, folder)
