"""Fuzz the API from its own OpenAPI document with schemathesis, against `chalice local`.

The document is first checked with openapi-spec-validator. Then two schemathesis runs, each
bounded in examples per operation and in time:

* ``random-url``: ``url`` as schemathesis makes it up (the allow-list answers those);
  examples and fuzzing phases;
* ``real-rasters``: ``url`` drawn from the real rasters in ../shared/data (and the demo's
  raster, STAC item and MosaicJSON), so
  that tiles, previews, statistics and WMTS are computed from generated parameters, and from
  hostile STAC items and MosaicJSON documents (:mod:`hostile_documents`); examples,
  coverage (boundary values of every parameter: about 6,000 requests, 2-3 minutes) and
  fuzzing phases.

The catalog routes (``/collections/...``, ``/searches/...``: no ``url``) are fuzzed in the
``random-url`` run against a real STAC API (:mod:`stacapi`, where PostgreSQL + PostGIS are
installed) holding the demo raster as collection ``demo``, item ``demo``, asset ``visual``
(their parameters' examples), and left out of the real-raster runs, which vary ``url``.

Checks: no 5xx (``not_a_server_error``), and every status code, content type, documented
header and JSON body as the document says. Methods that chalice local's HTTP server itself
answers with 501 (TRACE, QUERY; API Gateway never forwards them) are left out.

    .venv/bin/python tools/fuzz_api.py [--examples 25] [--max-time 600] [--seed N]
"""

import argparse
import collections
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import stacapi
from chalice_local import ROOT, ChaliceLocal
from hostile_documents import write_hostile_documents

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")
SHARED = ROOT.parent / "shared" / "data"


@dataclass
class Run:
    mode: str
    exit_code: int
    operations: int
    test_cases: int
    failures: int
    seconds: float
    statuses: dict = field(default_factory=dict)
    report: str = ""

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def line(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (f"{self.mode:13} operations {self.operations}, test cases {self.test_cases}, "
                f"HTTP requests {self.requests} ({statuses}), failures {self.failures}, "
                f"{self.seconds:.0f} s")


def rasters(shared: Path) -> list[str]:
    found = sorted(str(p) for p in shared.glob("*") if p.suffix in (".tif", ".jpg"))
    return found + ["chalicelib/demo/demo.tif", "chalicelib/demo/item.json",
                    "chalicelib/demo/mosaic.json"]


def validate(base: str) -> dict:
    from openapi_spec_validator import validate as check
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as response:
        document = json.load(response)
    check(document)
    return document


#: Operations that repeat another with only a literal format in the path (the same view as
#: ``/preview?format=...``): fuzzed through their PNG and NPY spellings (every format is
#: fuzzed through ``format=`` and the tiles' extensions), so the bounded run spends its
#: time elsewhere.
REPEATS = r"^/.*/(feature|preview)\.(?!png$|npy$)[a-z0-9]+$"
#: The catalog's operations (no ``url``): fuzzed in the random-url run only.
CATALOG = r"^/(collections|searches)/"


def operations(document: dict) -> tuple[int, int, int]:
    """(operations in the document, those :data:`REPEATS` leaves out of the runs, the
    catalog's that are not repeats)."""
    found = [(path, method) for path, item in document["paths"].items() for method in item]
    repeats = sum(1 for path, _ in found if re.match(REPEATS, path))
    catalog = sum(1 for path, _ in found if re.match(CATALOG, path)
                  and not re.match(REPEATS, path))
    return len(found), repeats, catalog


def run(local: ChaliceLocal, mode: str, config: str, phases: str, args, work: Path,
        methods: tuple[str, ...] = (), exclude: str = REPEATS) -> Run:
    toml = work / f"{mode}.toml"
    toml.write_text(config)
    before = len(local.requests())
    command = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(toml),
               "run", f"{local.base}/openapi.json", "--url", local.base, "--checks", CHECKS,
               "--max-examples", str(args.examples),
               "--seed", str(args.seed), "--workers", "2", "--request-timeout", "30",
               "--phases", phases,
               "--exclude-method", "TRACE", "--exclude-method", "QUERY",
               "--exclude-path-regex", exclude, "--no-color",
               *(f"--include-method={m}" for m in methods)]
    started = time.monotonic()
    try:  # schemathesis's own --max-time would fuzz until it is spent: bound it from here
        result = subprocess.run(command, cwd=work, capture_output=True, text=True,
                                timeout=args.max_time)
        exit_code, report = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as expired:
        exit_code = -1
        report = f"stopped after {args.max_time} s\n" + str(expired.stdout or "")[-3000:]
    seconds = time.monotonic() - started
    tested = re.search(r"Tested: (\d+)", report)
    cases = re.search(r"(\d+) generated", report)
    failed = re.search(r"(\d+) unique failures", report)
    statuses = collections.Counter(r.rsplit(" ", 1)[1] for r in local.requests()[before:])
    return Run(mode, exit_code, int(tested.group(1)) if tested else 0,
               int(cases.group(1)) if cases else 0, int(failed.group(1)) if failed else 0,
               seconds, dict(statuses), report)


def catalog(stack: contextlib.ExitStack) -> dict:
    """A real STAC API with the demo raster (collection ``demo``, item ``demo``, asset
    ``visual``), for as long as ``stack`` lasts; the environment that points at it (none
    where it cannot run here)."""
    if stacapi.unavailable():
        return {}
    from rangeserver import RangeServer
    files = stack.enter_context(RangeServer(ROOT / "chalicelib" / "demo"))
    api = stack.enter_context(stacapi.StacAPI())
    api.load(*stacapi.catalog_of(ROOT / "chalicelib" / "demo", files.url("").rstrip("/"),
                                 "demo", asset="visual"))
    return {"STAC_API_URL": api.url, "UNSAFE_ALLOW_HOSTS": files.host,
            "CATALOG_FILES": files.url("")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=25, help="examples per operation")
    parser.add_argument("--max-time", type=int, default=600,
                        help="seconds a run may take before it counts as failed")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--reports", type=Path, help="write each run's report and the "
                        "server's log into this folder")
    args = parser.parse_args(argv)
    pinned = rasters(args.shared) if args.shared.is_dir() else [
        "chalicelib/demo/demo.tif", "chalicelib/demo/item.json", "chalicelib/demo/mosaic.json"]
    hostile = tempfile.TemporaryDirectory()
    items, mosaics = write_hostile_documents(Path(hostile.name))
    chosen = ("nested", "surrogate", "hrefs", "many", "bomb", "odd_mosaic", "self_mosaic")
    pinned += [p for p in items + mosaics if Path(p).stem in chosen]  # most: real pixels
    allowed = ",".join(["chalicelib/demo/", f"{hostile.name}/"]
                       + ([f"{args.shared}/"] if args.shared.is_dir() else []))
    real = (f"[dictionaries.rasters]\nvalues = {json.dumps(pinned)}\n\n"
            '[parameters]\n"query.url" = { dictionary = "rasters", probability = 1.0 }\n')
    # mode: (configuration, phases, methods). The GeoJSON routes take the GET routes'
    # parameters (the same declarations, parsed by the same code: covered there) plus a
    # body: fuzzed on real rasters without the coverage phase's parameter enumeration.
    urls_only = f"(?:{REPEATS})|(?:{CATALOG})"
    modes = {
        "random-url": ("", "examples,fuzzing", (), REPEATS),
        "real-rasters": (real, "examples,coverage,fuzzing", ("GET",), urls_only),
        "real-shapes": (real, "examples,fuzzing", ("POST",), urls_only),
    }
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(tempfile.TemporaryDirectory())
        env = {"ALLOWED_SOURCES": allowed, "SEARCHES_PREFIX": f"{work}/searches"}
        env.update(catalog(stack))
        env["ALLOWED_SOURCES"] = ",".join(filter(None, [allowed, env.pop("CATALOG_FILES", "")]))
        local = stack.enter_context(ChaliceLocal("test", env))
        document = validate(local.base)
        total, repeats, in_catalog = operations(document)
        print(f"openapi.json: valid OpenAPI {document['openapi']}, "
              f"{len(document['paths'])} paths, {total} operations, {repeats} repeats, "
              f"{in_catalog} catalog")
        if "STAC_API_URL" not in env:
            print(f"catalog: no STAC API here ({stacapi.unavailable()}): its routes answer 404")
        runs = [run(local, mode, config, phases, args, Path(work), methods, exclude)
                for mode, (config, phases, methods, exclude) in modes.items()]
        server_output = local.output()
    hostile.cleanup()
    if args.reports:  # whole reports and the server's log, for a failure's details
        args.reports.mkdir(parents=True, exist_ok=True)
        for result in runs:
            (args.reports / f"{result.mode}.txt").write_text(result.report)
        (args.reports / "server.log").write_text(server_output)
    for result in runs:
        print(result.line())
    failed = [r for r in runs if r.exit_code != 0 or r.failures]
    for result in failed:
        print(f"\n---- {result.mode}: schemathesis exited {result.exit_code} ----")
        print(result.report[-6000:])
    if "Traceback" in server_output:
        print("\n---- the server logged a traceback ----\n" + server_output[-4000:])
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
