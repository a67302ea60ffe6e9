"""What the browser tests need, found or fetched: Debian's Chromium, and the map library the
viewer loads from a CDN, taken from the npm registry instead (CDNs are unreachable on test
machines; the npm registry is not).

    python tools/browser.py --install   # make test runs this first: installs chromium if
                                        # missing (apt-get, as root), says how otherwise
                                        # (and the browser tests fail saying so)
"""

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NPM_CACHE = ROOT / "build" / "npm"
#: The map library, as the viewer's <script> and <link> name it on unpkg.com.
LEAFLET = ("leaflet", "1.9.4")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOW = ("the browser tests need Chromium: on Debian/Ubuntu `sudo apt-get install chromium`, "
       "or set CHROMIUM=/path/to/chrome")


def chromium() -> str | None:
    """The Chromium executable: $CHROMIUM, else the first of CANDIDATES on the PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next(filter(None, map(shutil.which, CANDIDATES)), None)


def install_chromium() -> str | None:
    """Chromium, installed with apt-get when missing and this is root on Debian/Ubuntu."""
    found = chromium()
    if found or not (shutil.which("apt-get") and os.geteuid() == 0):
        return found
    print("browser: installing Debian's chromium (apt-get), once", flush=True)
    command = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(command, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env)
        subprocess.run(command, env=env)
    return chromium()


def npm_package(name: str, version: str) -> Path:
    """The package's files (its `package/` folder), from `npm pack`, cached in build/npm/."""
    folder = NPM_CACHE / f"{name}-{version}"
    if not (folder / "package" / "package.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=folder,
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"npm pack {name}@{version} failed: {result.stderr[-500:]}")
        archive = folder / result.stdout.strip().splitlines()[-1]
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    return folder / "package"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--install", action="store_true", help="install chromium if missing")
    args = parser.parse_args()
    path = install_chromium() if args.install else chromium()
    print(f"browser: chromium {path or 'not found: ' + HOW + ' (the browser tests will fail)'}")
    print(f"browser: {LEAFLET[0]} {LEAFLET[1]} in {npm_package(*LEAFLET)}")
    # make test goes on without it: the other tests run, the browser tests say what is missing
    sys.exit(0 if path or args.install else 1)


if __name__ == "__main__":
    main()
