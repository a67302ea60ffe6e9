"""arm64 (Graviton): vendor/ built for aarch64 without Docker, stripped by binutils' aarch64
strip (with segments the loader accepts), packaged for a stage whose lambda_architecture is
arm64; a vendor/ of one architecture is refused for a stage of the other.

Running the arm64 artifact needs an arm64 machine (this one is x86_64): everything else about
it is checked here, from its ELF headers to the template Chalice writes.
"""

import json
import shutil
import subprocess
import sys

import package as packaging
import pytest
import slim

import vendor
from tests.support import ROOT

pytestmark = pytest.mark.package

SCRATCH = ROOT / "build" / "test-arm64"


def _elf(path, machine: int):
    """A file with just an ELF header for ``machine`` (what the architecture checks read)."""
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4] = 2  # 64-bit
    header[18:20] = machine.to_bytes(2, "little")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(header))
    return path


@pytest.fixture(scope="module")
def project():
    """A copy of the project whose stages run on arm64, with vendor/ built for aarch64."""
    shutil.rmtree(SCRATCH, ignore_errors=True)
    copy = packaging.copy_project(SCRATCH / "project")
    config_path = copy / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["lambda_architecture"] = "arm64"
    config_path.write_text(json.dumps(config, indent=2))
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "vendor.py"), "--mode", "pip",
                             "--arch", "arm64", "--out", str(copy / "vendor")],
                            capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return copy, output


def test_arm64_vendor_is_aarch64_stripped_and_within_limits(project):
    copy, output = project
    assert "building for python3.12 on arm64 with pip" in output
    assert "aarch64-linux-gnu-strip" in output.split("stripping with")[1].split(")")[0]
    stripped = next(line for line in output.splitlines() if "(strip)" in line)
    assert float(stripped.rsplit(":", 1)[1].split("MB")[0]) > 5  # symbols really removed
    root = copy / "vendor"
    vendor.check_architecture(root, "arm64")
    machines = {slim.elf_machine(str(p)) for p in root.rglob("*.so*")
                if p.is_file() and not p.is_symlink()}
    assert machines == {183}  # EM_AARCH64 only
    unzipped, zipped = slim.size_report(str(root))
    assert unzipped < 250e6 and zipped < 45e6
    assert (root / "rasterio" / "proj_data" / "proj.db").exists()


def test_arm64_stages_package_for_arm64(project):
    copy, _ = project
    out = SCRATCH / "prod"
    reports = packaging.package("prod", out, project=copy)
    assert [r.name for r in reports] == ["deployment.zip", "layer-deployment.zip"]
    assert all(r.zipped < 50e6 for r in reports)
    template = json.loads((out / "sam.json").read_text())
    resources = template["Resources"]
    assert resources["APIHandler"]["Properties"]["Architectures"] == ["arm64"]
    layer = next(r for r in resources.values() if r["Type"] == "AWS::Serverless::LayerVersion")
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_a_vendor_of_another_architecture_is_refused(tmp_path):
    _elf(tmp_path / "vendor" / "rasterio.libs" / "libgdal.so.38", 183)
    config = {"lambda_architecture": "x86_64", "stages": {"prod": {}, "graviton": {
        "lambda_architecture": "arm64"}}}
    with pytest.raises(packaging.PackageError, match="make vendor ARCH=x86_64"):
        packaging.check_architecture("prod", config, tmp_path / "vendor")
    packaging.check_architecture("graviton", config, tmp_path / "vendor")  # the stage's own
    _elf(tmp_path / "vendor" / "rasterio.libs" / "libgdal.so.38", 62)
    packaging.check_architecture("prod", config, tmp_path / "vendor")
    with pytest.raises(packaging.PackageError, match="lambda_architecture is arm64"):
        packaging.check_architecture("graviton", config, tmp_path / "vendor")


def test_the_strip_for_foreign_libraries_is_binutils_cross_strip(monkeypatch):
    """On this x86_64 machine the host strip serves x86_64; aarch64 needs binutils'
    aarch64 strip (installed by the build when missing), and without it the build says what
    to install."""
    assert slim.find_strip(62, install=False) == shutil.which("strip")
    assert slim.find_strip(183).endswith("aarch64-linux-gnu-strip")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SystemExit, match="binutils-aarch64-linux-gnu"):
        slim.find_strip(183, install=False)


def test_llvm_strips_misalignment_is_caught(tmp_path):
    """llvm-strip moves the segments patchelf added to auditwheel-repaired libraries off
    their alignment (the loader refuses such a library): the check sees it, on the real
    rasterio aarch64 libgdal before and after."""
    import zipfile
    llvm = shutil.which("llvm-strip")
    if llvm is None:
        pytest.skip("llvm-strip is not installed here")
    wheel = next((ROOT / "build" / "wheels").glob("arm64-*/rasterio-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if "rasterio.libs/libgdal" in n)
        (tmp_path / "libgdal.so").write_bytes(archive.read(name))
    library = str(tmp_path / "libgdal.so")
    assert slim.misaligned_segments(library) == 0
    gnu = tmp_path / "gnu.so"
    shutil.copy(library, gnu)
    subprocess.run([slim.find_strip(183), "--strip-unneeded", str(gnu)], check=True)
    assert slim.misaligned_segments(str(gnu)) == 0
    subprocess.run([llvm, "--strip-unneeded", library], check=True)
    assert slim.misaligned_segments(library) > 0
