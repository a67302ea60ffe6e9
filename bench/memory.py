"""5. Memory: peak RSS per request and RSS growth over 5,000 tiles in one process, through
cogtiler's Lambda handler and, in a process of its own, titiler + Mangum on the same tiles.

RSS is read from /proc/self/status; the peak of a request is the high-water mark after it
(reset before it by writing 5 to /proc/self/clear_refs) minus the RSS before it.

    .venv/bin/python bench/memory.py [--tiles 5000]
"""

import argparse
import json
import subprocess
import sys

import common

FILES = {"RGB.byte.tif": {}, "cog.tif": {"rescale": "1,7872"},
         "dem_float_nodata.tif": {"rescale": "600,2400", "colormap_name": "terrain"},
         "large_rgb_3857.tif": {}, "rgb_uint8_utm.tif": {}}
FORMATS = ("png", "jpg", "webp")


def status(field: str) -> int:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")


def worker(impl: str, count: int) -> dict:
    import warnings
    warnings.simplefilter("ignore")
    common.make_synthetic()
    common.allow_everything_local()
    import handler as bench_handler

    requests = []
    for name, extra in FILES.items():
        path = str(common.path_of(name))
        for tile in common.sample_tiles(path, 20):
            for fmt in FORMATS:
                requests.append((path, extra, tile, fmt))
    if impl == "cogtiler":
        from app import app as function

        def make(path, extra, t, fmt):
            last = f"{t.y}.{fmt}"
            return bench_handler.event(f"/cog/tiles/{t.z}/{t.x}/{last}",
                                       bench_handler.TILE_RESOURCE,
                                       bench_handler.tile_parameters(t, last),
                                       {"url": path, **extra})
    else:
        function = bench_handler.titiler_handler()

        def make(path, extra, t, fmt):
            path_ = f"/cog/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.{fmt}"
            return bench_handler.event(path_, "/{proxy+}", {"proxy": path_[1:]},
                                       {"url": path, **extra})

    context = bench_handler.Context()
    for item in requests:  # warm-up: every dataset opened, every code path run once
        function(make(*item), context)
    baseline = status("VmRSS")
    samples, peaks = [], []
    for i in range(count):
        item = requests[i % len(requests)]
        if i % 50 == 0:
            before = status("VmRSS")
            reset_peak()
            function(make(*item), context)
            peaks.append(status("VmHWM") - before)
        else:
            function(make(*item), context)
        if (i + 1) % 250 == 0:
            samples.append((i + 1, status("VmRSS")))
    return {"baseline": baseline, "samples": samples, "peaks": peaks,
            "distinct_requests": len(requests)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiles", type=int, default=5000)
    args = parser.parse_args()
    results = {}
    for impl in ("cogtiler", "titiler"):
        run = subprocess.run([sys.executable, __file__, "--worker", impl, str(args.tiles)],
                             capture_output=True, text=True, timeout=3600)
        if run.returncode != 0:
            sys.exit(f"{impl} failed:\n{run.stderr[-3000:]}")
        result = json.loads(run.stdout.strip().splitlines()[-1])
        growth = result["samples"][-1][1] - result["baseline"]
        peak = max(result["peaks"])
        results[impl] = {**result, "growth": growth, "peak_per_request": peak}
        print(f"{impl:9} RSS after warm-up {result['baseline'] / 1e6:6.1f} MB, after "
              f"{args.tiles} tiles {result['samples'][-1][1] / 1e6:6.1f} MB: growth "
              f"{growth / 1e6:+6.1f} MB; peak extra per request {peak / 1e6:5.1f} MB "
              f"({result['distinct_requests']} distinct requests cycled)")
    common.save("memory", {"tiles": args.tiles, **results, "target_growth_mb": 30})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
