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
    return _remove([os.path.join(root, m) for m in UNUSED_MODULES])


def step_strip(root: str) -> int:
    strip = shutil.which("strip")
    if strip is None:
        print("  (no `strip` found: shared libraries left as they are)")
        return 0
    before = 0
    after = 0
    for path in _walk_files(root):
        name = os.path.basename(path)
        relative = os.path.relpath(path, root)
        if os.path.islink(path) or relative.split(os.sep)[0] in NEVER_STRIP:
            continue
        if not (name.endswith(".so") or ".so." in name):
            continue
        size = os.path.getsize(path)
        result = subprocess.run([strip, "--strip-unneeded", path], capture_output=True)
        if result.returncode == 0:
            before, after = before + size, after + os.path.getsize(path)
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
