"""Slim a pip --target tree for AWS Lambda, reporting what each step saves.

Shared by both vendor builds (no-Docker: tools/vendor.py; Docker: tools/Dockerfile), so it uses
the standard library only. Each step names what it removes and why that is safe; the package
verification (tools/verify_package.py, tests/test_lambda_package.py) proves the result still
imports, warps, and renders every format.

    python3.12 tools/slim.py TARGET [--keep-sources]
"""

import argparse
import compileall
import os
import shutil
import subprocess
import sys
import zlib

#: Provided by the Lambda Python runtime itself; never ship them.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "python_dateutil",
                    "urllib3", "six", "awslambdaric")
#: Modules nothing imports at runtime (the verification exercises every route and format).
UNUSED_MODULES = ("numpy/random", "numpy/f2py", "numpy/typing", "numpy/polynomial", "numpy/fft",
                  "numpy/testing", "numpy/_pyinstaller", "numpy/doc", "rasterio/rio")
#: What an unused module keeps: rasterio.features (GeoJSON shapes rasterized) imports
#: rasterio.rio.helpers.
KEEP_OF_UNUSED = {"rasterio/rio": ("__init__.py", "helpers.py")}
#: numpy's test-only extension modules.
TEST_EXTENSIONS = ("_simd", "_multiarray_tests", "_umath_tests", "_rational_tests",
                   "_struct_ufunc_tests", "_operand_flag_tests")
SOURCE_SUFFIXES = (".h", ".hpp", ".c", ".cc", ".cpp", ".pyx", ".pxd", ".pxi", ".pyi")
#: Rewritten by auditwheel/patchelf: `strip` breaks them ("ELF load command ... not
#: page-aligned"), so they are left as they are.
NEVER_STRIP = ("numpy.libs",)


def tree_size(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs
               if not os.path.islink(os.path.join(d, f)))


def zipped_size(path: str) -> int:
    """What ``path`` adds to a deflate zip (level 6, as Chalice's zipfile writes)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    total = 0
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            total += len(compressor.compress(chunk))
    return total + len(compressor.flush()) + 100  # + local and central headers


def _remove(paths: list[str]) -> int:
    saved = 0
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            saved += tree_size(path)
            shutil.rmtree(path)
        elif os.path.lexists(path):
            saved += os.path.getsize(path) if not os.path.islink(path) else 0
            os.remove(path)
    return saved


def _walk_files(root: str):
    for directory, _, files in os.walk(root):
        for name in files:
            yield os.path.join(directory, name)


def step_runtime_provided(root: str) -> int:
    names = {n.lower() for n in RUNTIME_PROVIDED}
    doomed = []
    for entry in os.listdir(root):
        base = entry.split("-")[0].lower() if entry.endswith((".dist-info", ".egg-info")) \
            else entry.lower().removesuffix(".py")
        if base in names:
            doomed.append(os.path.join(root, entry))
    return _remove(doomed)


def step_executables_and_caches(root: str) -> int:
    doomed = [os.path.join(root, "bin")]
    for directory, dirs, files in os.walk(root):
        doomed += [os.path.join(directory, d) for d in dirs if d == "__pycache__"]
        doomed += [os.path.join(directory, f) for f in files if f.endswith((".pyc", ".pyo"))]
    return _remove(doomed)


def step_tests(root: str) -> int:
    doomed = []
    for directory, dirs, files in os.walk(root):
        doomed += [os.path.join(directory, d) for d in dirs if d in ("tests", "test")]
        doomed += [os.path.join(directory, f) for f in files
                   if f.split(".")[0] in TEST_EXTENSIONS and f.endswith(".so")]
    return _remove(doomed)


def step_sources_and_stubs(root: str) -> int:
    return _remove([p for p in _walk_files(root)
                    if p.endswith(SOURCE_SUFFIXES) or os.path.basename(p) == "py.typed"])


def step_unused_modules(root: str) -> int:
    doomed = []
    for module in UNUSED_MODULES:
        path = os.path.join(root, module)
        kept = KEEP_OF_UNUSED.get(module)
        if kept and os.path.isdir(path):
            doomed += [os.path.join(path, name) for name in os.listdir(path)
                       if name not in kept]
        else:
            doomed.append(path)
    return _remove(doomed)


#: ELF e_machine -> (name, binutils' strip for it on another machine, the package holding it)
ELF_MACHINES = {62: ("x86_64", "x86_64-linux-gnu-strip", "binutils-x86-64-linux-gnu"),
                183: ("aarch64", "aarch64-linux-gnu-strip", "binutils-aarch64-linux-gnu")}
#: Package managers that can install binutils' cross strip (Debian's and Fedora's names).
PACKAGE_MANAGERS = ("apt-get", "dnf")


def elf_machine(path: str) -> int | None:
    """The ELF e_machine of ``path`` (None if it is not an ELF file)."""
    with open(path, "rb") as file:
        header = file.read(20)
    return int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None


def misaligned_segments(path: str) -> int:
    """How many PT_LOAD segments of a 64-bit little-endian ELF file break the loader's rule
    that a segment's file offset and address agree modulo its alignment (such a library
    fails to load: "ELF load command address/offset not properly aligned")."""
    with open(path, "rb") as file:
        data = file.read(64)
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            return 0
        phoff = int.from_bytes(data[0x20:0x28], "little")
        size, count = (int.from_bytes(data[0x36:0x38], "little"),
                       int.from_bytes(data[0x38:0x3A], "little"))
        file.seek(phoff)
        table = file.read(size * count)
    bad = 0
    for i in range(count):
        entry = table[i * size:(i + 1) * size]
        if int.from_bytes(entry[0:4], "little") != 1:  # PT_LOAD
            continue
        offset, address = int.from_bytes(entry[8:16], "little"), int.from_bytes(entry[16:24],
                                                                                "little")
        align = int.from_bytes(entry[48:56], "little")
        if align > 1 and offset % align != address % align:
            bad += 1
    return bad


def find_strip(machine: int, install: bool = True) -> str:
    """A strip for ELF files of ``machine``: the host's own ``strip`` for its own machine,
    else binutils' cross strip (``aarch64-linux-gnu-strip``). llvm-strip is not used: on
    auditwheel-repaired libraries (rasterio.libs) it leaves the segments patchelf added
    misaligned, and they would not load (43 of rasterio's 48 aarch64 libraries, checked).
    When none is found and ``install``, installs binutils' cross strip with the system's
    package manager (as root), saying so; SystemExit naming the package otherwise."""
    name, cross, package = ELF_MACHINES.get(machine, (f"machine {machine}", None, None))
    host = {"arm64": "aarch64"}.get(os.uname().machine, os.uname().machine)
    if host == name and shutil.which("strip"):
        return shutil.which("strip")
    if cross and shutil.which(cross):
        return shutil.which(cross)
    manager = next((m for m in PACKAGE_MANAGERS if shutil.which(m)), None)
    if install and package and manager and os.geteuid() == 0:
        print(f"  (no strip for {name} libraries on this {host} machine: installing {package} "
              f"with {manager})")
        if manager == "apt-get":
            subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run([manager, "install", "-y", "-q", package], check=False)
        return find_strip(machine, install=False)
    raise SystemExit(f"slim: no strip for {name} libraries on this {host} machine: install "
                     f"binutils' {cross or 'cross strip'} (Debian/Ubuntu and Fedora: "
                     f"`{package or 'binutils-<arch>-linux-gnu'}`), or build with Docker "
                     "(VENDOR_MODE=docker), then build again")


def step_strip(root: str) -> int:
    libraries = []
    for path in _walk_files(root):
        name = os.path.basename(path)
        relative = os.path.relpath(path, root)
        if os.path.islink(path) or relative.split(os.sep)[0] in NEVER_STRIP:
            continue
        if (name.endswith(".so") or ".so." in name) and elf_machine(path) is not None:
            libraries.append(path)
    if not libraries:
        return 0
    machines = {elf_machine(path) for path in libraries}
    if len(machines) > 1:
        raise SystemExit(f"slim: the tree mixes ELF machines {sorted(machines)}")
    strip = find_strip(machines.pop())
    print(f"  (stripping with {strip})")
    before = after = 0
    failed = []
    for path in libraries:
        size = os.path.getsize(path)
        result = subprocess.run([strip, "--strip-unneeded", path], capture_output=True)
        if result.returncode == 0:
            before, after = before + size, after + os.path.getsize(path)
        else:
            failed.append(os.path.relpath(path, root))
    if failed and len(failed) == len(libraries):  # the wrong tool, not one odd file
        raise SystemExit(f"slim: {strip} could not strip any of the {len(failed)} libraries")
    if failed:
        print(f"  ({len(failed)} libraries left unstripped, {strip} refused them: "
              f"{', '.join(failed[:5])})")
    broken = [os.path.relpath(p, root) for p in libraries if misaligned_segments(p)]
    if broken:
        raise SystemExit(f"slim: after {strip}, {len(broken)} libraries have misaligned "
                         f"segments and would not load, e.g. {broken[:3]}")
    return before - after


def step_byte_compile(root: str, keep_sources: bool) -> int:
    """Precompile for this interpreter (must be the Lambda runtime's Python version).

    Lambda's /var/task is read-only, so without shipped byte-code every cold start compiles
    every module again. ``unchecked-hash`` pycs are used without comparing source mtimes
    (which a zip round trip does not keep). Without --keep-sources the .py files are dropped
    and the .pyc files take their place (smaller, and one stat less per import).
    """
    before = tree_size(root)
    ok = compileall.compile_dir(root, quiet=2, legacy=not keep_sources, workers=0,
                                invalidation_mode=compileall.py_compile.PycInvalidationMode
                                .UNCHECKED_HASH)
    if not ok:
        raise SystemExit("byte-compiling failed")
    if not keep_sources:
        for path in _walk_files(root):
            if path.endswith(".py") and os.path.exists(path + "c"):
                os.remove(path)
    return before - tree_size(root)


STEPS = [
    ("modules the Lambda runtime provides (boto3, botocore, ...)", step_runtime_provided),
    ("executables and stale byte-code", step_executables_and_caches),
    ("test suites and test-only extensions", step_tests),
    ("C/Cython sources, headers and type stubs", step_sources_and_stubs),
    ("modules never imported at runtime", step_unused_modules),
    ("debug symbols of shared libraries (strip)", step_strip),
]


def size_report(root: str, top: int = 10) -> tuple[int, int]:
    """Print the unzipped and zipped size and the biggest parts; return both sizes."""
    parts: dict[str, list[int]] = {}
    for path in _walk_files(root):
        if os.path.islink(path):
            continue
        relative = os.path.relpath(path, root).split(os.sep)
        key = os.sep.join(relative[:2]) if len(relative) > 1 else relative[0]
        sizes = parts.setdefault(key, [0, 0])
        sizes[0] += os.path.getsize(path)
        sizes[1] += zipped_size(path)
    unzipped = sum(s[0] for s in parts.values())
    zipped = sum(s[1] for s in parts.values())
    print(f"  {unzipped / 1e6:.1f} MB unzipped, {zipped / 1e6:.1f} MB zipped; biggest parts:")
    for key, (raw, packed) in sorted(parts.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"    {packed / 1e6:6.2f} MB zipped {raw / 1e6:7.2f} MB  {key}")
    return unzipped, zipped


def slim(root: str, keep_sources: bool = False) -> None:
    if sys.version_info[:2] != (3, 12):
        raise SystemExit(f"slim.py byte-compiles for the Lambda runtime: run it with Python "
                         f"3.12, not {sys.version.split()[0]}")
    print(f"slimming {root}")
    start = tree_size(root)
    for label, step in STEPS:
        print(f"  - {label}: {step(root) / 1e6:.1f} MB")
    label = "byte-compile for Python 3.12" + (", sources kept" if keep_sources
                                               else ", .pyc in place of .py")
    print(f"  - {label}: {step_byte_compile(root, keep_sources) / 1e6:+.1f} MB saved")
    print(f"  total: {start / 1e6:.1f} MB -> {tree_size(root) / 1e6:.1f} MB unzipped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target")
    parser.add_argument("--keep-sources", action="store_true",
                        help="keep .py files beside the byte-code (readable tracebacks)")
    args = parser.parse_args()
    slim(args.target, args.keep_sources)
    size_report(args.target)


if __name__ == "__main__":
    main()
