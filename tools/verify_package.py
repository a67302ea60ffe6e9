"""Run a built deployment package the way AWS Lambda does, and check its answers.

The deployment zip is unzipped into an empty task folder (and the layer zip, in
automatic_layer mode, into an /opt-like folder); a Python 3.12 process whose import path is
only the task folder, the layer, the runtime's own folder (holding awslambdaric and boto3, as
Lambda's runtime does, installed outside the package) and the standard library is started
with the real AWS Lambda Runtime Interface Client against tools/runtime_api.py on 127.0.0.1.
The function's environment is the one in the packaged template (sam.json or chalice.tf.json).
API Gateway REST proxy events then ask for info, tiles in every format, a bad request and a
forbidden source; statuses, headers and the base64 images are checked. Cold start is timed
from process start to the first tile response.

    python tools/verify_package.py --stage prod [--package build/package/prod]
"""

import argparse
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import package as packaging
from runtime_api import RuntimeAPI

ROOT = Path(__file__).resolve().parent.parent
#: What Lambda's python3.12 runtime brings besides the standard library (/var/runtime):
#: the runtime interface client and boto3 (which rasterio imports whenever it can).
RUNTIME_PACKAGES = ("awslambdaric==4.2.2", "boto3")
DEMO = "chalicelib/demo/demo.tif"
DEMO_TILE = (9, 145, 219)  # inside the demo scene
TIMEOUT = 120.0


def runtime_python() -> str:
    """The plain Python 3.12 interpreter (not the virtual environment's)."""
    candidate = Path(sys.base_prefix) / "bin" / "python3.12"
    return str(candidate if candidate.exists() else Path(sys.base_prefix) / "bin" / "python3")


def runtime_dir(build: Path) -> Path:
    """awslambdaric and boto3 for this machine, outside the package (Lambda's /var/runtime)."""
    target = build / "lambda-runtime"
    if not (target / "awslambdaric").is_dir() or not (target / "boto3").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--target", str(target),
                        *RUNTIME_PACKAGES], check=True)
    return target


def unpack(package: Path, into: Path) -> tuple[Path, Path | None]:
    shutil.rmtree(into, ignore_errors=True)
    task = into / "task"
    with zipfile.ZipFile(package / "deployment.zip") as archive:
        archive.extractall(task)
    layer = None
    if (package / "layer-deployment.zip").exists():
        layer = into / "opt"
        with zipfile.ZipFile(package / "layer-deployment.zip") as archive:
            archive.extractall(layer)
    return task, layer


def function_settings(package: Path) -> tuple[dict, int]:
    """The API handler's environment variables and memory size from the template."""
    template = json.loads(packaging.template_path(package).read_text())
    found = packaging.functions(template)
    handler = found.get("APIHandler") or found["api_handler"]
    return {k: str(v) for k, v in handler["variables"].items()}, int(handler["memory"] or 128)


def api_event(path: str, query: dict | None = None, accept: str = "*/*",
              resource: str | None = None, path_parameters: dict | None = None,
              method: str = "GET") -> dict:
    query = query or {}
    return {
        "resource": resource or path, "path": path, "httpMethod": method,
        "headers": {"Accept": accept, "Host": "abc123.execute-api.us-east-1.amazonaws.com",
                    "X-Forwarded-Proto": "https"},
        "multiValueHeaders": {"Accept": [accept]},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters, "stageVariables": None, "body": None,
        "isBase64Encoded": False,
        "requestContext": {"resourcePath": resource or path, "httpMethod": method,
                           "path": f"/api{path}", "stage": "api", "requestId": "verify"},
    }


#: A triangle over the demo's centre, as a GeoJSON Feature (degrees).
DEMO_FEATURE = {"type": "Feature", "properties": {"name": "demo"}, "geometry": {
    "type": "Polygon", "coordinates": [[[-78.2, 24.2], [-77.3, 24.3], [-77.8, 25.0],
                                        [-78.2, 24.2]]]}}


def post_event(path: str, body: dict, query: dict, base64_body: bool) -> dict:
    """API Gateway's proxy event of a POST with a JSON body, base64-encoded (as API Gateway
    sends a body whose media type is binary: ``*/*`` here) or not."""
    event = api_event(path, query, accept="*/*", method="POST")
    text = json.dumps(body)
    event["headers"]["Content-Type"] = "application/geo+json"
    event["body"] = base64.b64encode(text.encode()).decode() if base64_body else text
    event["isBase64Encoded"] = base64_body
    return event


def tile_event(fmt: str, scale: str = "", source: str = DEMO, method: str = "GET",
               tms: str | None = None, tile: tuple = DEMO_TILE, kind: str = "cog",
               **extra: str) -> dict:
    z, x, y = tile
    last = f"{y}{scale}.{fmt}"
    query = {"url": [source], **{k: [v] for k, v in extra.items()}}
    if tms:
        prefix = f"/{kind}/tiles/{tms}"
        resource = f"/{kind}/tiles/{{tileMatrixSetId}}/{{z}}/{{x}}/{{y}}"
        parameters = {"tileMatrixSetId": tms, "z": str(z), "x": str(x), "y": last}
    else:  # /{kind}/tiles/{z}/{x}/{y} is API Gateway's .../{tileMatrixSetId}/{z}/{x}
        prefix = f"/{kind}/tiles"  # resource: one variable child per resource
        resource = f"/{kind}/tiles/{{tileMatrixSetId}}/{{z}}/{{x}}"
        parameters = {"tileMatrixSetId": str(z), "z": str(x), "x": last}
    return api_event(f"{prefix}/{z}/{x}/{last}", query,
                     accept="image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
                     resource=resource, method=method, path_parameters=parameters)


@dataclass
class Check:
    name: str
    event: dict
    status: int
    content_type: str | None = None
    size: tuple[int, int] | None = None


CHECKS = [  # the first one is the cold-start tile
    Check("PNG tile", tile_event("png"), 200, "image/png", (256, 256)),
    Check("info", api_event("/cog/info", {"url": [DEMO]}), 200, "application/json"),
    Check("WEBP tile @2x", tile_event("webp", "@2x"), 200, "image/webp", (512, 512)),
    Check("JPEG tile", tile_event("jpg"), 200, "image/jpeg", (256, 256)),
    Check("GeoTIFF tile", tile_event("tif"), 200, "image/tiff; application=geotiff"),
    Check("NPY tile", tile_event("npy"), 200, "application/x-binary"),
    # post-processing in the packaged engine: an algorithm with its buffered read (numpy's
    # gradient), a colour formula, a 16-bit PNG
    Check("hillshade tile", tile_event("png", bidx="2", algorithm="hillshade"), 200,
          "image/png", (256, 256)),
    Check("terrain RGB tile", tile_event("png", bidx="2", algorithm="terrainrgb"), 200,
          "image/png", (256, 256)),
    Check("colour formula tile", tile_event("png", color_formula="gamma rgb 1.5"), 200,
          "image/png", (256, 256)),
    Check("pngraw tile", tile_event("pngraw"), 200, "image/png", (256, 256)),
    Check("bad request", tile_event("png", bidx="0"), 400, "application/json"),
    Check("bad tile address", tile_event("gif"), 400, "application/json"),
    Check("forbidden source", api_event("/cog/info", {"url": ["/etc/passwd"]}), 403,
          "application/json"),
    Check("metadata endpoint", api_event("/cog/info", {
        "url": ["http://169.254.169.254/latest/meta-data/"]}), 403, "application/json"),
    Check("WorldCRS84Quad tile", tile_event("png", tms="WorldCRS84Quad", tile=(8, 145, 93)),
          200, "image/png", (256, 256)),
    Check("WMTS capabilities", api_event("/cog/WMTSCapabilities.xml", {"url": [DEMO]}), 200,
          "application/xml"),
    Check("OpenAPI document", api_event("/openapi.json"), 200, "application/json"),
    Check("HEAD tile", tile_event("png", method="HEAD"), 200, "image/png"),
    Check("POST is not allowed", api_event("/cog/info", {"url": [DEMO]}, method="POST"), 405,
          "application/json"),
    Check("STAC item tile (an expression over an asset)", tile_event(
        "png", kind="stac", source="chalicelib/demo/item.json",
        expression="visual_b1;visual_b2;visual_b3"), 200, "image/png", (256, 256)),
    Check("STAC unknown asset", api_event("/stac/info", {
        "url": ["chalicelib/demo/item.json"], "assets": ["nope"]}), 400, "application/json"),
    Check("MosaicJSON tile", tile_event("png", kind="mosaicjson",
                                        source="chalicelib/demo/mosaic.json"), 200,
          "image/png", (256, 256)),
    Check("POST statistics of a GeoJSON feature", post_event(
        "/cog/statistics", DEMO_FEATURE, {"url": [DEMO]}, base64_body=False), 200,
          "application/geo+json"),
    Check("POST statistics, base64 body", post_event(
        "/cog/statistics", DEMO_FEATURE, {"url": [DEMO]}, base64_body=True), 200,
          "application/geo+json"),
    Check("POST feature image", post_event(
        "/cog/feature.png", DEMO_FEATURE, {"url": [DEMO], "max_size": ["128"]},
        base64_body=True), 200, "image/png"),
    Check("POST invalid GeoJSON", post_event(
        "/cog/statistics", {"type": "Feature", "geometry": {"type": "Point"}},
        {"url": [DEMO]}, base64_body=False), 400, "application/json"),
    Check("unknown path", api_event("/cog/nothing/here", resource="/{proxy+}",
                                    path_parameters={"proxy": "cog/nothing/here"}), 404,
          "application/json"),
]


@dataclass
class Report:
    cold_start: float = 0.0  # process start -> first tile response, seconds
    init: float = 0.0  # process start -> first poll for an event (imports done)
    warm: list = field(default_factory=list)  # seconds per later invocation
    failures: list = field(default_factory=list)


def check_response(check: Check, payload: dict, failures: list) -> None:
    def fail(message):
        failures.append(f"{check.name}: {message}")

    if not isinstance(payload, dict) or "statusCode" not in payload:
        return fail(f"not an API Gateway proxy response: {str(payload)[:200]}")
    if payload["statusCode"] != check.status:
        return fail(f"status {payload['statusCode']}, wanted {check.status}: "
                    f"{str(payload.get('body'))[:300]}")
    headers = payload.get("headers", {})
    if check.content_type and headers.get("Content-Type") != check.content_type:
        fail(f"Content-Type {headers.get('Content-Type')}, wanted {check.content_type}")
    body = payload.get("body") or ""
    raw = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
    if check.status >= 400:
        error = json.loads(raw)
        if set(error) != {"Code", "Message"} or "Cache-Control" in headers:
            fail(f"error response not in the documented shape: {error}")
        return
    if not payload.get("isBase64Encoded"):
        fail("body is not base64 (API Gateway would not decode it)")
    if check.name.startswith("HEAD"):
        if raw:
            fail(f"a HEAD response has a body of {len(raw)} bytes")
        return
    if check.size:
        from PIL import Image
        size = Image.open(io.BytesIO(raw)).size
        if size != check.size:
            fail(f"image is {size}, wanted {check.size}")
    if check.name == "GeoTIFF tile" and not raw.startswith((b"II*\x00", b"MM\x00*")):
        fail("not a TIFF")
    _check_body(check.name, raw, fail)


def _check_body(name: str, raw: bytes, fail) -> None:
    """What a body must hold beyond its type and size."""
    if name.startswith("POST statistics"):
        answer = json.loads(raw)
        band = answer.get("properties", {}).get("statistics", {}).get("b1", {})
        if answer.get("properties", {}).get("name") != "demo" or not band.get("valid_pixels"):
            fail(f"not the feature with its statistics: {str(answer)[:300]}")
    if name == "NPY tile" and not raw.startswith(b"\x93NUMPY"):
        fail("not an .npy file")


@dataclass
class Run:
    api: RuntimeAPI
    started: float
    finished: bool
    output: str


def run_function(paths: list[Path], handler: str, cwd: Path, variables: dict, events: list,
                 memory: int = 1536, runtime: Path | None = None) -> Run:
    """Start a Python 3.12 process as Lambda does (import path: ``paths``, the runtime folder,
    the standard library), serve it ``events`` through awslambdaric, and stop it."""
    runtime = runtime or runtime_dir(ROOT / "build" / "verify")
    api = RuntimeAPI(events).start()
    env = {
        **variables,
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ":UTC",
        # /var/task is read-only on Lambda: byte-code not shipped is compiled at every start
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(p) for p in paths] + [str(runtime)]),
        "AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": str(cwd),
        "LAMBDA_RUNTIME_DIR": str(runtime), "_HANDLER": handler,
        "AWS_LAMBDA_FUNCTION_NAME": "cogtiler-verify", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory), "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    }
    started = time.perf_counter()
    # -S: no site-packages of this machine; the import path is PYTHONPATH + the stdlib.
    process = subprocess.Popen([runtime_python(), "-S", "-m", "awslambdaric", handler],
                               cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        finished = api.wait_for(len(events), TIMEOUT, alive=lambda: process.poll() is None)
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=10)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
        api.stop()
    return Run(api, started, finished, output)


def layer_paths(opt: Path) -> list[Path]:
    """Where Lambda's python3.12 runtime imports from in /opt (layers unzip there)."""
    return [opt / "python" / "lib" / "python3.12" / "site-packages", opt / "python"]


def verify(package: Path, work: Path, allowed: str | None = None,
           checks: list[Check] = CHECKS, env: dict | None = None) -> Report:
    """Unpack ``package`` into ``work`` and run ``checks`` through awslambdaric (``env``:
    variables added to the function's own)."""
    runtime = runtime_dir(work.parent)
    task, layer = unpack(package, work)
    variables, memory = function_settings(package)
    if allowed is not None:
        variables["ALLOWED_SOURCES"] = allowed
    variables.update(env or {})
    paths = [task, *(layer_paths(layer) if layer is not None else [])]
    return run_checks(paths, task, variables, memory, checks, runtime)


def run_checks(paths: list[Path], task: Path, variables: dict, memory: int,
               checks: list[Check] = CHECKS, runtime: Path | None = None) -> Report:
    """The API handler ``app.app`` of the function unpacked in ``task`` (import path
    ``paths``), sent ``checks`` through awslambdaric: failures and timings."""
    run = run_function(paths, "app.app", task, variables, [c.event for c in checks], memory,
                       runtime)
    api, report = run.api, Report()
    if api.init_error is not None:
        report.failures.append(f"the function failed to start: {api.init_error}")
    if not run.finished:
        report.failures.append("not every invocation finished; the function printed:\n"
                               + run.output[-3000:])
    for check in checks:
        result = next((r for r in api.results if r.event is check.event), None)
        if result is None or result.finished_at is None:
            continue
        if result.error is not None:
            report.failures.append(f"{check.name}: the handler raised {result.error}")
            continue
        check_response(check, result.payload, report.failures)
    first = api.results[0] if api.results else None
    if first is not None and first.finished_at is not None:
        report.cold_start = first.finished_at - run.started
    if api.first_poll_at is not None:
        report.init = api.first_poll_at - run.started
    report.warm = [r.finished_at - r.sent_at for r in api.results[1:] if r.finished_at]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--package", default=None)
    parser.add_argument("--allow", default="chalicelib/demo/",
                        help="ALLOWED_SOURCES for the run (the demo, so prod can be checked)")
    args = parser.parse_args()
    package = Path(args.package or ROOT / "build" / "package" / args.stage)
    if not (package / "deployment.zip").exists():
        sys.exit(f"no deployment.zip in {package}: run `make package STAGE={args.stage}`")
    report = verify(package, ROOT / "build" / "verify" / args.stage, args.allow)
    layer = " + layer" if (package / "layer-deployment.zip").exists() else ""
    print(f"verify-package ({args.stage}{layer}): {len(CHECKS)} API Gateway events through "
          f"awslambdaric")
    print(f"  init (process start -> runtime ready): {report.init * 1000:.0f} ms")
    print(f"  cold start (process start -> first tile response): {report.cold_start * 1000:.0f} ms")
    if report.warm:
        ordered = sorted(report.warm)
        print(f"  warm invocations: median {ordered[len(ordered) // 2] * 1000:.1f} ms")
    if report.failures:
        print("FAILED:\n  " + "\n  ".join(report.failures))
        sys.exit(1)
    print("  all checks passed")


if __name__ == "__main__":
    main()
