"""A real STAC API on 127.0.0.1: stac-fastapi-pgstac over PostgreSQL + PostGIS + PgSTAC.

What Planetary Computer and eoAPI run, brought up in a throwaway folder for the tests (and by
hand, to try catalog mosaics in the viewer). PostgreSQL runs as the ``postgres`` user (it
refuses root) on a private data directory and socket, listening on 127.0.0.1 only; PgSTAC's
schema comes from pypgstac's migrations; the API is uvicorn on another free port. Everything
stops, and the folder goes, when the context ends.

    with StacAPI() as api:
        api.load(collection, items)  # dicts, as STAC JSON
        api.url                      # http://127.0.0.1:PORT

    python tools/stacapi.py --install   # make test runs this first: PostGIS for PostgreSQL
                                        # from apt-get when missing (as root)
    python tools/stacapi.py --serve DIR # a catalog of the COGs in DIR, until Ctrl-C
"""

import argparse
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HOW = ("the STAC API tests need PostgreSQL 15 with PostGIS: on Debian/Ubuntu `sudo apt-get "
       "install postgresql-15-postgis-3`")
PACKAGES = ("postgresql-15", "postgresql-15-postgis-3")


def pg_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, postgres), newest first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), reverse=True)
    return Path(found[0]).parent if found else None


def has_postgis() -> bool:
    binary = pg_bin()
    return binary is not None and bool(glob.glob(
        f"/usr/share/postgresql/{binary.parent.name}/extension/postgis.control"))


def install() -> bool:
    """PostgreSQL and PostGIS, installed with apt-get when missing and this is root."""
    if has_postgis() or not (shutil.which("apt-get") and os.geteuid() == 0):
        return has_postgis()
    print("stacapi: installing Debian's PostgreSQL + PostGIS (apt-get), once", flush=True)
    command = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(command, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env)
        subprocess.run(command, env=env)
    return has_postgis()


def unavailable() -> str | None:
    """Why a STAC API cannot be started here (None when it can)."""
    if not has_postgis():
        return HOW
    if os.geteuid() == 0:
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            return "PostgreSQL refuses to run as root and there is no 'postgres' user"
    for module in ("pypgstac", "stac_fastapi.pgstac", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (requirements-dev.txt)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres() -> dict:
    """Popen arguments that run a program as ``postgres`` when this is root (PostgreSQL
    refuses root); a direct child, so that signals reach it."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _wait(ready, what: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll ``ready()`` until it holds; fail when ``process`` ends or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(0.05)


class StacAPI:
    """PostgreSQL + PgSTAC + stac-fastapi-pgstac, for as long as the context lasts."""

    def __init__(self, log: Path | None = None):
        self.folder = Path(tempfile.mkdtemp(prefix="cogtiler-stacapi-"))
        self.log_path = log or self.folder / "api.log"
        self.db_port = free_port()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.db_port}/postgis"
        self._processes: list[subprocess.Popen] = []

    # ---- the database --------------------------------------------------------------------

    def _start_database(self) -> None:
        binary = pg_bin()
        data, sockets = self.folder / "data", self.folder / "sockets"
        data.mkdir()
        sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            for path in (data, sockets):
                shutil.chown(path, "postgres")
        subprocess.run([str(binary / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "--no-sync", "-E", "UTF8"], **_as_postgres(),
                       check=True, capture_output=True, timeout=120, cwd=self.folder)
        log = open(self.folder / "postgres.log", "wb")
        self._processes.append(subprocess.Popen([
            str(binary / "postgres"), "-D", str(data), "-h", "127.0.0.1",
            "-p", str(self.db_port), "-k", str(sockets), "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off"], **_as_postgres(),
            stdout=log, stderr=subprocess.STDOUT, cwd=self.folder))
        ready = [str(binary / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.db_port)]
        _wait(lambda: subprocess.run(ready).returncode == 0, "postgres", self._processes[-1])
        subprocess.run([str(binary / "createdb"), "-U", "postgres", "-h", "127.0.0.1", "-p",
                        str(self.db_port), "postgis"], check=True, capture_output=True,
                       timeout=60)
        from pypgstac.db import PgstacDB
        from pypgstac.migrate import Migrate
        with PgstacDB(dsn=self.dsn) as db:
            Migrate(db).run_migration()

    def load(self, collection: dict, items: list[dict]) -> None:
        """One collection and its items into PgSTAC (as pypgstac's loader does), each
        numeric property of the items made a queryable: PgSTAC sorts only on queryables
        (``sortby`` on another property is silently not applied)."""
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods
        numbers = sorted({name for item in items for name, value in item["properties"].items()
                          if isinstance(value, (int, float)) and not isinstance(value, bool)})
        with PgstacDB(dsn=self.dsn) as db:
            loader = Loader(db)
            loader.load_collections(iter([collection]), Methods.upsert)
            loader.load_items(iter(items), Methods.upsert)
            for name in numbers:
                db.query_one(
                    "INSERT INTO pgstac.queryables (name, definition, property_wrapper) "
                    "SELECT %s, '{\"type\": \"number\"}', 'to_float' WHERE NOT EXISTS "
                    "(SELECT 1 FROM pgstac.queryables WHERE name = %s) RETURNING name",
                    (name, name))

    # ---- the API -------------------------------------------------------------------------

    def _start_api(self) -> None:
        env = {**os.environ, "PGUSER": "postgres", "PGPASSWORD": "unused",
               "PGHOST": "127.0.0.1", "PGPORT": str(self.db_port), "PGDATABASE": "postgis"}
        log = open(self.log_path, "wb")
        self._processes.append(subprocess.Popen([
            sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT))

        def answers() -> bool:
            try:
                with urllib.request.urlopen(self.url + "/collections", timeout=2) as answer:
                    return answer.status == 200
            except OSError:
                return False
        _wait(answers, "stac-fastapi-pgstac", self._processes[-1])

    def __enter__(self) -> "StacAPI":
        try:
            self._start_database()
            self._start_api()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                # SIGINT: PostgreSQL's fast shutdown; uvicorn's graceful stop
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def catalog_of(folder: Path, base_url: str, collection_id: str = "local",
               asset: str = "data") -> tuple[dict, list]:
    """A collection and one item per GeoTIFF in ``folder`` (each the item's ``asset``, its
    href under ``base_url``), for ``--serve`` and the fuzz run."""
    import rasterio
    from rasterio.warp import transform_bounds
    items, boxes = [], []
    for path in sorted(folder.glob("*.tif")):
        with rasterio.open(path) as src:
            box = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        boxes.append(box)
        items.append(stac_item(collection_id, path.stem, box, "2025-06-01T00:00:00Z",
                               {asset: f"{base_url}/{path.name}"}))
    return collection(collection_id, boxes), items


def stac_item(collection_id: str, item_id: str, box, when: str, assets: dict,
              **properties) -> dict:
    """A STAC item over ``box`` (degrees) whose GeoTIFF assets are ``name -> href``."""
    west, south, east, north = box
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection_id,
        "bbox": [west, south, east, north],
        "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south],
                                                         [east, north], [west, north],
                                                         [west, south]]]},
        "properties": {"datetime": when, **properties},
        "assets": {name: {"href": href, "type": "image/tiff; application=geotiff; "
                          "profile=cloud-optimized", "roles": ["data"]}
                   for name, href in assets.items()},
        "links": []}


def collection(collection_id: str, boxes) -> dict:
    west = min(b[0] for b in boxes)
    south = min(b[1] for b in boxes)
    east = max(b[2] for b in boxes)
    north = max(b[3] for b in boxes)
    return {"type": "Collection", "stac_version": "1.0.0", "id": collection_id,
            "description": f"{collection_id}: scenes for cogtiler", "license": "CC0-1.0",
            "extent": {"spatial": {"bbox": [[west, south, east, north]]},
                       "temporal": {"interval": [[None, None]]}}, "links": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--install", action="store_true",
                        help="install PostgreSQL + PostGIS if missing")
    parser.add_argument("--serve", type=Path, help="serve a catalog of the GeoTIFFs here")
    args = parser.parse_args()
    if args.install:
        found = install()
        print("stacapi: " + ("PostgreSQL with PostGIS found" if found else
                             HOW + " (the STAC API tests will be skipped)"))
        return
    if args.serve:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from rangeserver import RangeServer
        with RangeServer(args.serve) as files, StacAPI() as api:
            api.load(*catalog_of(args.serve, files.url("").rstrip("/")))
            print(f"stacapi: {api.url} (collection 'local'); files at {files.url('')}",
                  flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
        return
    print(unavailable() or "stacapi: a STAC API can be started here")


if __name__ == "__main__":
    main()
