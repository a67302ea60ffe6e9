"""`chalice package` for a stage, offline, and the checks Chalice does not make.

Chalice 1.34 never checks sizes, and when it cannot match a wheel to the Lambda platform it
leaves the package out of the zip and still exits 0; its Lambda runtime is the version of the
interpreter that runs it. This wrapper fails on each of those, on duplicate zip entries (a
package both in requirements.txt and vendor/), on a stale IAM policy, and reports the sizes of
the function zip and, in automatic_layer mode, of the layer. A stage that deploys cogify
(UPLOAD_BUCKET set) is packaged for Terraform (chalice.tf.json), since CloudFormation cannot
attach notifications to an existing bucket; every other stage gets a SAM template (sam.json).

    python tools/package.py --stage prod [--out build/package/prod]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import policy
import slim

import vendor as vendoring

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = "python3.12"
MAX_UNZIPPED = 250 * 1000 * 1000  # function + layers, unzipped
MAX_ZIPPED = 50 * 1000 * 1000  # each zip uploaded directly
#: What Chalice prints when it leaves a dependency out (chalice.constants).
MISSING_MARKERS = ("Could not install dependencies", "vendor them")


class PackageError(SystemExit):
    pass


@dataclass
class ZipReport:
    name: str
    zipped: int
    unzipped: int
    entries: int


def read_config(project: Path = ROOT) -> dict:
    """The project's .chalice/config.json, its shape checked (one line saying what is wrong)."""
    path = project / ".chalice" / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise PackageError(f"{path.relative_to(project)} is missing: restore it "
                           "(git checkout .chalice/config.json)") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise PackageError(f"{path.relative_to(project)} is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise PackageError(f"{path.relative_to(project)} must hold a JSON object")
    if not isinstance(config.get("app_name"), str) or not STAGE_NAME.fullmatch(config["app_name"]):
        raise PackageError("config.json's app_name must be letters, digits, '-' or '_'")
    if not isinstance(config.get("stages", {}), dict):
        raise PackageError("config.json's \"stages\" must be an object of stage names")
    scopes = [("the top level", config)] + [
        (f"stage {name!r}", value) for name, value in config.get("stages", {}).items()]
    for where, scope in scopes:
        if not isinstance(scope, dict):
            raise PackageError(f"config.json: {where} must be an object")
        variables = scope.get("environment_variables", {})
        if not isinstance(variables, dict) or not all(
                isinstance(v, str) for v in variables.values()):
            raise PackageError(f"config.json: environment_variables of {where} must be an "
                               "object of strings")
    return config


#: Stage (and app) names: what API Gateway, Lambda and the file names under .chalice/ take.
STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ARCHITECTURES = ("x86_64", "arm64")


def check_stage_config(stage: str, config: dict) -> None:
    """Refuse a stage that does not exist, a name that could escape a path, and settings
    the deployed function would refuse at its first request, before anything is built or
    published."""
    if not isinstance(stage, str) or not STAGE_NAME.fullmatch(stage):
        raise PackageError(f"{stage[:80]!r} is not a stage name (letters, digits, '-' and "
                           "'_', at most 64)")
    stages = config.get("stages", {})
    if stage not in stages:
        raise PackageError(f"no stage {stage!r} in .chalice/config.json (stages: "
                           f"{', '.join(sorted(stages)) or 'none'})")
    arch = stage_architecture(stage, config)
    if arch not in ARCHITECTURES:
        raise PackageError(f"stage {stage!r}: lambda_architecture must be "
                           f"{' or '.join(ARCHITECTURES)}, not {arch!r}")
    env = policy.stage_environment(stage, config)
    numbers = {"THROTTLE_RATE_LIMIT": float, "THROTTLE_BURST_LIMIT": int, "QUOTA_PER_DAY": int}
    for name, kind in numbers.items():
        if env.get(name, "").strip():
            try:
                value = kind(env[name])
            except ValueError:
                raise PackageError(f"stage {stage!r}: {name} must be a number, not "
                                   f"{env[name][:40]!r}") from None
            if not value > 0:
                raise PackageError(f"stage {stage!r}: {name} must be above 0")
    sys.path.insert(0, str(ROOT))
    from chalicelib.core import settings
    try:
        settings.from_environ(env)
    except RuntimeError as error:
        raise PackageError(f"stage {stage!r}: {error}") from None


def copy_project(target: Path, source: Path = ROOT, chalicelib: bool = True) -> Path:
    """A fresh copy of what Chalice packages (app.py, requirements.txt, chalicelib/ unless
    told not to, the .chalice config without deployment state) from ``source`` at
    ``target``, for builds, packages, deploys and rehearsals that must not touch the
    checkout; vendor/ is the caller's to add."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("app.py", "requirements.txt"):
        shutil.copy(source / name, target)
    if chalicelib:
        shutil.copytree(source / "chalicelib", target / "chalicelib",
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(source / ".chalice", target / ".chalice",
                    ignore=shutil.ignore_patterns("deployments", "deployed"))
    return target


def check_interpreter(version=sys.version_info) -> None:
    if tuple(version[:2]) != (3, 12):
        raise PackageError(f"chalice targets the Lambda runtime of the Python running it: "
                           f"run packaging with Python 3.12, not {version[0]}.{version[1]}")


def check_vendor(vendor: Path) -> None:
    if not (vendor / "rasterio").is_dir() or not (vendor / "numpy").is_dir():
        raise PackageError("vendor/ holds no rasterio/numpy build: run `make vendor` first")


def stage_architecture(stage: str, config: dict) -> str:
    """The stage's lambda_architecture (the stage's own, else the top level's, else x86_64)."""
    return config.get("stages", {}).get(stage, {}).get(
        "lambda_architecture", config.get("lambda_architecture", "x86_64"))


def vendor_architecture(vendor: Path) -> str | None:
    """What vendor/'s shared libraries are built for (None: no ELF file found)."""
    for path in vendor.rglob("*.so*"):
        machine = (slim.elf_machine(str(path)) if path.is_file() and not path.is_symlink()
                   else None)
        if machine is not None:
            return next((a for a, m in vendoring.ELF_MACHINE.items() if m == machine),
                        f"ELF machine {machine}")
    return None


def check_architecture(stage: str, config: dict, vendor: Path) -> None:
    """Refuse to package a vendor/ built for another architecture than the stage's: Lambda
    would fail at the first import ("cannot open shared object file" / "wrong ELF class")."""
    wanted, built = stage_architecture(stage, config), vendor_architecture(vendor)
    if built is not None and built != wanted:
        raise PackageError(f"vendor/ holds {built} libraries, but the {stage} stage's "
                           f"lambda_architecture is {wanted}: run `make vendor ARCH={wanted}`, "
                           f"or set lambda_architecture to {built} for the stage")


def check_output(text: str) -> None:
    if any(marker in text for marker in MISSING_MARKERS):
        raise PackageError("chalice left dependencies out of the package (it exits 0 when "
                           "it does):\n" + text[-2000:])


def inspect_zip(path: Path) -> ZipReport:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    duplicates = [name for name, count in Counter(i.filename for i in infos).items() if count > 1]
    if duplicates:
        raise PackageError(f"{path.name} has {len(duplicates)} duplicate entries (a package in "
                           f"both requirements.txt and vendor/?), e.g. {duplicates[:5]}")
    return ZipReport(path.name, path.stat().st_size, sum(i.file_size for i in infos), len(infos))


def package_format(stage: str, config: dict) -> str:
    """CloudFormation (SAM) unless the stage deploys cogify: CloudFormation cannot attach a
    notification to an existing bucket, so Chalice refuses @app.on_s3_event there."""
    env = policy.stage_environment(stage, config)
    return "terraform" if env.get("UPLOAD_BUCKET", "").strip() else "cloudformation"


def functions(template: dict) -> dict[str, dict]:
    """Function name -> {runtime, memory, timeout, variables} from a SAM or Terraform template."""
    found = {}
    for name, res in template.get("Resources", {}).items():  # SAM
        if res.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            props = res["Properties"]
            found[name] = {"runtime": props.get("Runtime"), "memory": props.get("MemorySize"),
                           "timeout": props.get("Timeout"),
                           "variables": props.get("Environment", {}).get("Variables", {})}
    for name, props in template.get("resource", {}).get("aws_lambda_function", {}).items():
        found[name] = {"runtime": props.get("runtime"), "memory": props.get("memory_size"),
                       "timeout": props.get("timeout"),
                       "variables": props.get("environment", {}).get("variables", {})}
    return found


def template_path(out: Path) -> Path:
    for name in ("sam.json", "chalice.tf.json"):
        if (out / name).exists():
            return out / name
    raise PackageError(f"chalice wrote no template in {out}")


def inspect_template(path: Path) -> dict:
    template = json.loads(path.read_text())
    runtimes = {name: f["runtime"] for name, f in functions(template).items()}
    wrong = {name: runtime for name, runtime in runtimes.items() if runtime != RUNTIME}
    if not runtimes or wrong:
        raise PackageError(f"the template's functions must run {RUNTIME}; found {wrong or 'none'}")
    return template


def check_sizes(reports: list[ZipReport]) -> None:
    problems = [f"{r.name} is {r.zipped / 1e6:.1f} MB zipped, over the 50 MB of a direct upload"
                for r in reports if r.zipped > MAX_ZIPPED]
    unzipped = sum(r.unzipped for r in reports)
    if unzipped > MAX_UNZIPPED:
        problems.append(f"function and layer unzip to {unzipped / 1e6:.1f} MB, over 250 MB")
    if problems:
        raise PackageError("; ".join(problems))


#: Settings read when Chalice loads app.py; packaging must depend on .chalice/config.json only.
APP_SETTINGS = ("ALLOWED_SOURCES", "UPLOAD_BUCKET", "UPLOAD_PREFIX", "COG_BUCKET", "COG_PREFIX",
                "TILE_QUEUE", "TILE_BUCKET", "TILE_PREFIX", "MOSAIC_PREFIX")


def chalice_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in APP_SETTINGS}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice needs one, even offline
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PIP_NO_INDEX"] = "1"  # requirements.txt is comment-only: pip must never run
    return env


def precompile(directory: Path) -> None:
    """Byte-code for chalicelib/, which Chalice copies into the zip as it is.

    Lambda's /var/task is read-only, so modules without shipped byte-code are compiled at
    every cold start (about 45 ms for chalicelib/). Checked-hash pycs are validated against
    the source's hash, so a stale one is ignored, never run; local timestamp pycs are
    replaced first. Compiled without column ranges (``-X no_debug_ranges``: tracebacks keep
    file and line, lose the ^^^ markers): a quarter smaller, which every deploy uploads.
    """
    for cache in directory.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    result = subprocess.run([sys.executable, "-X", "no_debug_ranges", "-m", "compileall", "-q",
                             "--invalidation-mode", "checked-hash", str(directory)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise PackageError(f"byte-compiling chalicelib/ failed:\n{result.stdout[-2000:]}")


def add_bytecode(path: Path) -> int:
    """Checked-hash byte-code for the modules Chalice writes into the function zip itself
    (app.py and its own runtime, chalice/app.py: 90 KB, about 27 ms to compile at each cold
    start). Returns how many were added."""
    import importlib.util
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        sources = {n: archive.read(n) for n in names if n.endswith(".py")}
    added = {}
    for name, source in sorted(sources.items()):
        folder, _, file = name.rpartition("/")
        pyc = f"{folder + '/' if folder else ''}__pycache__/{file[:-3]}." \
              f"{sys.implementation.cache_tag}.pyc"
        if pyc in names or any(n.startswith(f"{folder}/__pycache__/{file[:-3]}.")
                               for n in names if folder):
            continue
        code = compile(source, name, "exec", dont_inherit=True)
        added[pyc] = importlib._bootstrap_external._code_to_hash_pyc(
            code, importlib.util.source_hash(source), checked=True)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        for pyc, data in added.items():
            info = zipfile.ZipInfo(pyc, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16  # readable on Lambda, as Chalice's own entries
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return len(added)


def check_stage(stage: str, config: dict, project: Path = ROOT) -> None:
    """What packaging and deploying a stage both need: a valid stage, Python 3.12 running
    Chalice, vendor/ built for the stage's architecture, and (own policy) a policy matching
    ALLOWED_SOURCES."""
    check_stage_config(stage, config)
    check_interpreter()
    check_vendor(project / "vendor")
    check_architecture(stage, config, project / "vendor")
    policy_path = project / ".chalice" / f"policy-{stage}.json"
    if config.get("stages", {}).get(stage, {}).get("autogen_policy") is False:
        if not policy_path.exists() or policy_path.read_text() != policy.render(stage, config):
            raise PackageError(f"{policy_path.name} does not match the {stage} stage's "
                               f"ALLOWED_SOURCES: run `make policy STAGE={stage}`")


def package(stage: str, out: Path, project: Path = ROOT) -> list[ZipReport]:
    config = read_config(project)
    check_stage(stage, config, project)
    precompile(project / "chalicelib")
    shutil.rmtree(out, ignore_errors=True)
    chalice = Path(sys.executable).parent / "chalice"
    result = subprocess.run([str(chalice), "package", "--pkg-format",
                             package_format(stage, config), "--stage", stage, str(out)],
                            cwd=project, env=chalice_env(), capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise PackageError(f"chalice package failed:\n{output[-3000:]}")
    check_output(output)
    inspect_template(template_path(out))
    add_bytecode(out / "deployment.zip")
    reports = [inspect_zip(path) for path in sorted(out.glob("*.zip"))]
    check_sizes(reports)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = Path(args.out or ROOT / "build" / "package" / args.stage)
    reports = package(args.stage, out)
    print(f"package ({args.stage}, {RUNTIME}, {template_path(out).name}) in {out}:")
    for report in reports:
        print(f"  {report.name:24} {report.zipped / 1e6:7.2f} MB zipped "
              f"{report.unzipped / 1e6:8.2f} MB unzipped {report.entries:6} files")


if __name__ == "__main__":
    main()
