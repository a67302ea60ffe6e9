"""7. Statistics of a GeoJSON polygon: ``POST /cog/statistics`` with a 1,000-vertex polygon
over the demo (and over cog.tif), through cogtiler's app (the Chalice test client) and
through titiler in process, the same body; time per request (median of warm runs) and the
peak RSS a request adds (high-water mark reset before it, as bench/memory.py), each side in
a process of its own.

    .venv/bin/python bench/shapes.py [--runs 15]
"""

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

import common
from memory import reset_peak, status

VERTICES = 1000


def polygon(bounds, vertices: int = VERTICES) -> dict:
    """A wavy star of ``vertices`` vertices over the middle of ``bounds``, as a Feature."""
    west, south, east, north = bounds
    cx, cy, rx, ry = (west + east) / 2, (south + north) / 2, (east - west) / 3, (north - south) / 3
    ring = []
    for i in range(vertices - 1):
        t = 2 * math.pi * i / (vertices - 1)
        r = 0.75 + 0.25 * math.sin(7 * t)
        ring.append([cx + rx * r * math.cos(t), cy + ry * r * math.sin(t)])
    ring.append(ring[0])
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
                                                              "coordinates": [ring]}}


def _peak_of(call) -> int:
    """The RSS ``call()`` adds at its high-water mark (as bench/memory.py measures)."""
    reset_peak()
    before = status("VmRSS")
    call()
    return status("VmHWM") - before


def measure(side: str, url: str, runs: int) -> dict:
    """In this process: one side's time and peak per request."""
    import os
    os.environ["ALLOWED_SOURCES"] = f"{common.ROOT}/chalicelib/demo/,{common.SHARED}/"
    import rasterio
    from rasterio.warp import transform_bounds
    with rasterio.open(url) as src:  # the same polygon on both sides
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    if side == "cogtiler":
        from chalice.test import Client

        import app
        client = Client(app.app, stage_name="test").__enter__()  # no allow-list of its own
        body = json.dumps(polygon(bounds))

        def post():
            response = client.http.post(f"/cog/statistics?url={url}", body=body,
                                        headers={"Content-Type": "application/geo+json"})
            assert response.status_code == 200, response.body[:300]
            return json.loads(response.body)
    else:
        from fastapi import FastAPI
        from starlette.testclient import TestClient
        from titiler.core.factory import TilerFactory
        api = FastAPI()
        api.include_router(TilerFactory(router_prefix="/cog").router, prefix="/cog")
        client = TestClient(api)
        feature = polygon(bounds)

        def post():
            response = client.post(f"/cog/statistics?url={url}", json=feature)
            assert response.status_code == 200, response.text[:300]
            return response.json()
    answer = post()  # warm: the dataset open, the code loaded
    peak = max(_peak_of(post) for _ in range(3))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        post()
        times.append(time.perf_counter() - started)
    band = answer["properties"]["statistics"]["b1"]
    return {"ms": 1000 * statistics.median(times), "peak_mb": peak / 2**20,
            "valid_pixels": band["valid_pixels"], "mean": band["mean"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--side")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(measure(args.side, args.url, args.runs)))
        return 0
    rows = {}
    for name, url in (("demo.tif", f"{common.ROOT}/chalicelib/demo/demo.tif"),
                      ("cog.tif", f"{common.SHARED}/cog.tif")):
        for side in ("cogtiler", "titiler"):
            found = subprocess.run([sys.executable, __file__, "--side", side, "--url", url,
                                    "--runs", str(args.runs)], capture_output=True, text=True,
                                   check=True)
            rows[(name, side)] = json.loads(found.stdout.strip().splitlines()[-1])
        ours, theirs = rows[(name, "cogtiler")], rows[(name, "titiler")]
        print(f"{name}: {VERTICES}-vertex polygon, {ours['valid_pixels']} pixels: cogtiler "
              f"{ours['ms']:.1f} ms, {ours['peak_mb']:.1f} MB peak; titiler {theirs['ms']:.1f} "
              f"ms, {theirs['peak_mb']:.1f} MB peak ({ours['ms'] / theirs['ms']:.2f}x the "
              f"time); mean {ours['mean']:.3f} vs {theirs['mean']:.3f}")
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    (common.RESULTS / "shapes.json").write_text(json.dumps(
        {f"{n}/{s}": v for (n, s), v in rows.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
