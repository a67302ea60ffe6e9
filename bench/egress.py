"""9. What the egress guard costs per tile: the same tiles over http and https range servers
on 127.0.0.1, through the guard (GDAL's requests pass the in-process proxy,
chalicelib/sources/egress.py) and without it (``GDAL_HTTP_PROXY=``, the operator's switch),
with rio-tiler's Reader on the same tiles for scale. Rounds alternate; each round starts
cold (dataset cache and GDAL's /vsicurl/ cache cleared): the first tile includes the open.

    .venv/bin/python bench/egress.py
"""

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import common

ROUNDS = 4


def clear_caches() -> None:
    from chalicelib.sources import datasets, gdalconfig
    datasets.cache.clear()
    gdalconfig._library().VSICurlClearCache()


def certificate(folder: Path) -> tuple[str, str]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return str(folder / "cert.pem"), str(folder / "key.pem")


def run_round(mode: str, url: str, tiles) -> tuple[float, list[float]]:
    if mode == "direct":
        os.environ["GDAL_HTTP_PROXY"] = ""
    else:
        os.environ.pop("GDAL_HTTP_PROXY", None)
    clear_caches()
    times = []
    for tile in tiles:
        started = time.perf_counter()
        if mode == "rio-tiler":
            from rio_tiler.io import Reader
            with Reader(url) as reader:
                reader.tile(tile.x, tile.y, tile.z).render(img_format="PNG")
        else:
            common.engine_tile(url, tile.z, tile.x, f"{tile.y}.png", {})
        times.append(time.perf_counter() - started)
    return times[0], times[1:]


def main() -> None:
    common.start(__doc__)
    from rangeserver import RangeServer
    os.environ["GDAL_HTTP_UNSAFESSL"] = "YES"  # the benchmark's self-signed certificate
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tls = certificate(Path(folder)) if shutil.which("openssl") else None
        with RangeServer(common.SHARED) as plain, \
                RangeServer(common.SHARED, tls=tls) as secure:
            servers = [("http", plain)] + ([("https", secure)] if tls else [])
            print(f"{'source':6} {'mode':10} {'first tile ms':>14} {'warm tile ms':>13} "
                  f"{'warm vs direct':>15}")
            for scheme, server in servers:
                os.environ["ALLOWED_SOURCES"] = f"{scheme}://{server.host}/"
                os.environ["UNSAFE_ALLOW_HOSTS"] = server.host
                url = server.url("cog.tif")
                tiles = common.sample_tiles(url, 4, extra_zoom=0)
                results: dict[str, tuple[list, list]] = {m: ([], []) for m in
                                                         ("guarded", "direct", "rio-tiler")}
                for _ in range(ROUNDS):
                    for mode, (cold, warm) in results.items():
                        first, others = run_round(mode, url, tiles)
                        cold.append(first)
                        warm.extend(others)
                direct = statistics.median(results["direct"][1])
                for mode, (cold, warm) in results.items():
                    row = {"source": scheme, "mode": mode, "tiles": len(tiles),
                           "first_tile_ms": statistics.median(cold) * 1000,
                           "warm_tile_ms": statistics.median(warm) * 1000,
                           "warm_vs_direct": statistics.median(warm) / direct}
                    rows.append(row)
                    print(f"{scheme:6} {mode:10} {row['first_tile_ms']:14.2f} "
                          f"{row['warm_tile_ms']:13.2f} {row['warm_vs_direct']:15.2f}")
    os.environ.pop("GDAL_HTTP_PROXY", None)
    common.save("egress", {"rows": rows, "rounds": ROUNDS})


if __name__ == "__main__":
    main()
