"""Build vendor/: the compiled runtime dependencies for AWS Lambda (python3.12).

Two ways, one slimming step (tools/slim.py):

* ``docker``: tools/Dockerfile installs requirements-runtime.txt on the AWS Lambda Python 3.12
  image for the target architecture, slims there, and the result is copied out.
* ``pip`` (no Docker engine needed): ``pip install --target`` with Lambda's platform tags
  (manylinux_2_28 and manylinux2014), ``--implementation cp --python-version 3.12
  --only-binary=:all:``, then the same slimming with this interpreter (which must be 3.12).
  The wheels are downloaded once per requirements file into build/wheels/, and installed
  from there offline.

``auto`` (the default) uses Docker when an engine answers, else pip; the build says which.
The architecture defaults to the ``lambda_architecture`` of .chalice/config.json.

    python tools/vendor.py [--mode auto|docker|pip] [--arch x86_64|arm64] [--out vendor]
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import slim

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-runtime.txt"
BUILD = ROOT / "build"
#: Lambda's limits for a function (or layer) uploaded directly.
MAX_UNZIPPED = 250 * 1000 * 1000
MAX_ZIPPED = 50 * 1000 * 1000
PLATFORMS = {
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
}
ELF_MACHINE = {"x86_64": 62, "arm64": 183}  # e_machine: EM_X86_64, EM_AARCH64
KEEP_IN_VENDOR = ("README.md",)


def configured_architecture() -> str:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return config.get("lambda_architecture", "x86_64")


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def wheels_for(arch: str) -> Path:
    """Lambda's wheels for requirements-runtime.txt, downloaded once per set of requirements
    into build/wheels/ (a second build, e.g. each `make test`, needs no network)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    folder = BUILD / "wheels" / f"{arch}-{digest}"
    if (folder / "complete").exists():
        print(f"vendor: wheels from {folder.relative_to(ROOT)} (no download)")
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--dest", str(folder), *_target_options(arch), "-r", str(REQUIREMENTS)]
    subprocess.run(command, check=True)
    (folder / "complete").write_text(REQUIREMENTS.read_text())
    return folder


def _target_options(arch: str) -> list[str]:
    options = ["--implementation", "cp", "--python-version", "3.12", "--only-binary=:all:"]
    for platform in PLATFORMS[arch]:
        options += ["--platform", platform]
    return options


def build_with_pip(target: Path, arch: str) -> None:
    if sys.version_info[:2] != (3, 12):
        raise SystemExit("the pip build byte-compiles for Lambda's python3.12: run it with "
                         "Python 3.12 (make vendor uses .venv)")
    wheels = wheels_for(arch)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(target), *_target_options(arch), "--no-compile", "--upgrade",
               "--no-index", "--find-links", str(wheels), "-r", str(REQUIREMENTS)]
    subprocess.run(command, check=True)
    slim.slim(str(target))


def build_with_docker(target: Path, arch: str) -> None:
    platform = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}[arch]
    # BuildKit's local exporter writes the final (scratch) stage, i.e. the slimmed tree.
    subprocess.run(["docker", "build", "--platform", platform, "--file",
                    str(ROOT / "tools" / "Dockerfile"), "--output",
                    f"type=local,dest={target}", str(ROOT)], check=True)


def check_architecture(root: Path, arch: str) -> None:
    """Every shared library must be an ELF for the target machine and Python 3.12, with
    segments the loader accepts (what can be checked of an arm64 build without running it)."""
    wrong, misaligned = [], []
    for path in root.rglob("*"):
        name = path.name
        if path.is_symlink() or not path.is_file() or not (name.endswith(".so") or ".so." in name):
            continue
        if slim.elf_machine(str(path)) != ELF_MACHINE[arch]:
            wrong.append(str(path.relative_to(root)))
        elif ".cpython-" in name and ".cpython-312-" not in name:
            wrong.append(str(path.relative_to(root)))
        elif slim.misaligned_segments(str(path)):
            misaligned.append(str(path.relative_to(root)))
    if misaligned:
        raise SystemExit(f"vendor/ has {len(misaligned)} libraries whose segments are "
                         f"misaligned (they would not load), e.g. {misaligned[:3]}")
    if wrong:
        raise SystemExit(f"vendor/ has {len(wrong)} libraries not built for {arch} / "
                         f"CPython 3.12, e.g. {wrong[:3]}")


def check_limits(unzipped: int, zipped: int) -> None:
    problems = []
    if unzipped > MAX_UNZIPPED:
        problems.append(f"{unzipped / 1e6:.1f} MB unzipped is over Lambda's 250 MB")
    if zipped > MAX_ZIPPED:
        problems.append(f"{zipped / 1e6:.1f} MB zipped is over the 50 MB of a direct upload")
    if problems:
        raise SystemExit("vendor/ is too big: " + "; ".join(problems))


def install(built: Path, out: Path) -> None:
    """Replace ``out``'s contents with ``built``'s (keeping vendor/README.md)."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in out.iterdir():
        if entry.name in KEEP_IN_VENDOR:
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for entry in built.iterdir():
        shutil.move(str(entry), str(out / entry.name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("auto", "docker", "pip"),
                        default=os.environ.get("VENDOR_MODE", "auto"))
    parser.add_argument("--arch", choices=tuple(PLATFORMS), default=None)
    parser.add_argument("--out", default=str(ROOT / "vendor"))
    args = parser.parse_args()
    arch = args.arch or configured_architecture()
    mode = args.mode
    if mode == "auto":
        mode = "docker" if docker_answers() else "pip"
        print(f"vendor: mode auto -> {mode} "
              f"({'a Docker engine answers' if mode == 'docker' else 'no Docker engine answers'})")
    elif mode == "docker" and not docker_answers():
        raise SystemExit("vendor: --mode docker, but no Docker engine answers (`docker info`)")
    print(f"vendor: building for python3.12 on {arch} with {mode}")
    started = time.monotonic()
    # one staging folder per destination: builds for different destinations may run at once
    tag = hashlib.sha256(str(Path(args.out).resolve()).encode()).hexdigest()[:8]
    staging = BUILD / f"vendor-{mode}-{arch}-{tag}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (build_with_docker if mode == "docker" else build_with_pip)(staging, arch)
    check_architecture(staging, arch)
    print("vendor: size report")
    unzipped, zipped = slim.size_report(str(staging))
    check_limits(unzipped, zipped)
    install(staging, Path(args.out))
    info = {"mode": mode, "arch": arch, "python": "3.12", "unzipped": unzipped,
            "zipped": zipped, "requirements": REQUIREMENTS.read_text()}
    (BUILD / "vendor-info.json").write_text(json.dumps(info, indent=2))
    print(f"vendor: done in {time.monotonic() - started:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
