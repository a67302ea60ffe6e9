"""3. Cold start: a fresh Python 3.12 process from the packaged artifact to its first tile
response, against the same for titiler + Mangum.

Both run through tools/verify_package.py's harness: the real awslambdaric against the Runtime
API emulator, an import path of only the package, the runtime folder (awslambdaric and boto3,
as Lambda's runtime has) and the standard library, no byte-code writing (/var/task is
read-only). cogtiler runs from build/package/dev (made by `make package STAGE=dev`, built here
if missing); titiler.core + Mangum are installed for this machine into build/bench/titiler with
pip's byte-code. The first event is the same PNG tile of the demo dataset for both.

    .venv/bin/python bench/cold_start.py [--runs N]
"""

import argparse
import shutil
import statistics
import subprocess
import sys

import common
import verify_package as harness

TITILER = ("titiler.core==2.4.0", "mangum==0.22.0")
TITILER_HANDLER = '''\
from fastapi import FastAPI
from mangum import Mangum
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from titiler.core.factory import TilerFactory

app = FastAPI()
app.include_router(TilerFactory(router_prefix="/cog").router, prefix="/cog")
add_exception_handlers(app, DEFAULT_STATUS_CODES)
handler = Mangum(app, lifespan="off")
'''


def titiler_task() -> common.Path:
    task = common.ROOT / "build" / "bench" / "titiler"
    if not (task / "titiler").is_dir():
        shutil.rmtree(task, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--target", str(task), *TITILER],
                       check=True)
        for package in ("boto3", "botocore", "s3transfer"):  # the runtime provides these
            for path in task.glob(f"{package}*"):
                shutil.rmtree(path, ignore_errors=True)
    (task / "titiler_lambda.py").write_text(TITILER_HANDLER)
    return task


def cogtiler_task() -> tuple[list, common.Path, dict]:
    package = common.ROOT / "build" / "package" / "dev"
    if not (package / "deployment.zip").exists():
        if not (common.ROOT / "vendor" / "rasterio").is_dir():
            subprocess.run([sys.executable, str(common.ROOT / "tools" / "vendor.py")], check=True)
        subprocess.run([sys.executable, str(common.ROOT / "tools" / "package.py"), "--stage",
                        "dev"], check=True)
    task, layer = harness.unpack(package, common.ROOT / "build" / "bench" / "cogtiler")
    variables, _ = harness.function_settings(package)
    return [task], task, variables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    ours_paths, ours_cwd, ours_env = cogtiler_task()
    theirs = titiler_task()
    demo = str(ours_cwd / "chalicelib" / "demo" / "demo.tif")  # the same file for both
    ours_event = harness.tile_event("png")
    z, x, y = harness.DEMO_TILE
    path = f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png"
    theirs_event = harness.api_event(path, {"url": [demo]}, resource="/{proxy+}",
                                     path_parameters={"proxy": path[1:]})
    results = {"cogtiler": [], "titiler": []}
    for _ in range(args.runs):  # alternate, so machine noise falls on both alike
        for name, paths, cwd, handler, env, ev in (
                ("cogtiler", ours_paths, ours_cwd, "app.app", ours_env, ours_event),
                ("titiler", [theirs], theirs, "titiler_lambda.handler",
                 {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}, theirs_event)):
            run = harness.run_function(paths, handler, cwd, env, [ev])
            result = run.api.results[0] if run.api.results else None
            if not run.finished or result is None or result.payload["statusCode"] != 200:
                sys.exit(f"{name} did not answer the first tile:\n{run.output[-2000:]}")
            results[name].append(result.finished_at - run.started)
    ours, theirs_s = statistics.median(results["cogtiler"]), statistics.median(results["titiler"])
    print(f"cold start, process start -> first PNG tile, median of {args.runs}:")
    print(f"  cogtiler       {ours * 1000:7.0f} ms  (runs: "
          + ", ".join(f"{t * 1000:.0f}" for t in results["cogtiler"]) + ")")
    print(f"  titiler+Mangum {theirs_s * 1000:7.0f} ms  (runs: "
          + ", ".join(f"{t * 1000:.0f}" for t in results["titiler"]) + ")")
    print(f"  ratio {ours / theirs_s:.2f}")
    common.save("cold_start", {"cogtiler_s": results["cogtiler"], "titiler_s": results["titiler"],
                               "cogtiler_median_s": ours, "titiler_median_s": theirs_s,
                               "ratio": ours / theirs_s, "target": 0.5})


if __name__ == "__main__":
    main()
