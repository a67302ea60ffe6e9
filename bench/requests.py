"""4. Requests and bytes per tile, from a range-capable HTTP server on 127.0.0.1: the first
tile of a cold container (open included), then warm tiles. (Against moto's S3 the same
counts are measured by tests/test_s3.py::test_http_requests_per_tile.)

cogtiler runs with its stages' GDAL settings and keeps the dataset open across requests, as a
warm container does. rio-tiler runs with titiler's recommended GDAL settings and, as titiler
does, opens a Reader per request. Each side runs in a fresh process (cold GDAL caches).

    .venv/bin/python bench/requests.py
"""

import json
import os
import re
import subprocess
import sys
import time

import common

FILES = ["cog.tif", "rgb_uint8_utm.tif", "large_rgb_3857.tif"]
RESCALE = {"cog.tif": (1, 7872)}  # the same explicit stretch on both sides
TITILER_GDAL = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES", "GDAL_HTTP_VERSION": "2", "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "5000000", "GDAL_INGESTED_BYTES_AT_OPEN": "32768",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def worker(impl: str, source: str, tiles: list) -> dict:
    """In a fresh process: the first tile (cold), then the others (warm); returns timings."""
    marks = []
    rescale = RESCALE.get(source.rsplit("/", 1)[-1])
    if impl == "cogtiler":
        query = {"rescale": [f"{rescale[0]},{rescale[1]}"]} if rescale else {}

        def draw(z, x, y):
            common.engine_tile(source, z, x, f"{y}.png", query)
    else:
        import rasterio
        from rio_tiler.io import Reader
        env = rasterio.Env(**TITILER_GDAL)
        env.__enter__()

        def draw(z, x, y):
            with Reader(source) as reader:  # titiler: a reader per request
                image = reader.tile(x, y, z)
                if rescale:
                    image.rescale(in_range=(rescale,))
                image.render(img_format="PNG")
    for z, x, y in tiles:
        draw(z, x, y)
        marks.append(time.time())
    return {"marks": marks}


def run_worker(impl: str, url: str, tiles: list, env: dict) -> list[float]:
    result = subprocess.run([sys.executable, __file__, "--worker", impl, url, json.dumps(tiles)],
                            env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        sys.exit(f"{impl} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["marks"]


def summarise(name, source, impl, tiles, marks, requests) -> dict:
    """``requests``: (time, method, bytes); those up to the first tile are the cold part."""
    first = [r for r in requests if r[0] <= marks[0]]
    warm = [r for r in requests if r[0] > marks[0]]
    row = {"file": name, "source": source, "impl": impl, "tiles": len(tiles),
           "cold_requests": len(first), "cold_bytes": sum(r[2] for r in first),
           "warm_requests_per_tile": len(warm) / (len(tiles) - 1),
           "warm_bytes_per_tile": sum(r[2] for r in warm) / (len(tiles) - 1),
           "warm_heads": sum(r[1] == "HEAD" for r in warm)}
    print(f"{name:20} {source:4} {impl:9} cold: {row['cold_requests']:2} req "
          f"{row['cold_bytes'] / 1024:7.0f} KB | warm: {row['warm_requests_per_tile']:.2f} "
          f"req/tile {row['warm_bytes_per_tile'] / 1024:6.0f} KB/tile ({row['warm_heads']} HEAD)")
    return row


def zxy(tiles) -> list[list[int]]:
    return [[t.z, t.x, t.y] for t in tiles]


def main() -> None:
    common.make_synthetic()
    common.allow_everything_local()
    from rangeserver import RangeServer

    rows = []
    base_env = dict(os.environ)
    with RangeServer(common.DATA) as data_server, RangeServer(common.SHARED) as shared_server:
        for name in FILES:
            server = shared_server if name in common.REAL else data_server
            url = server.url(name)
            env = {**base_env, "ALLOWED_SOURCES": f"http://{server.host}/",
                   "UNSAFE_ALLOW_HOSTS": server.host}
            os.environ.update(ALLOWED_SOURCES=env["ALLOWED_SOURCES"],
                              UNSAFE_ALLOW_HOSTS=server.host)
            tiles = zxy(common.sample_tiles(url, 6, extra_zoom=0))
            for impl in ("cogtiler", "rio-tiler"):
                start = len(server.log)
                marks = run_worker(impl, url, tiles, env)
                requests = [(r.time, r.method, r.bytes) for r in server.log[start:]]
                rows.append(summarise(name, "http", impl, tiles, marks, requests))
    common.save("requests", {"rows": rows, "target_warm_requests_per_tile": 1.0})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        import warnings
        warnings.simplefilter("ignore")
        print(json.dumps(worker(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))))
    else:
        main()
