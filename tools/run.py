"""`make run`: chalice local as a person uses it.

- Idle means idle: no file watcher by default (chalice local's own reloader polls every file
  under the project, .venv included, about 20% of a CPU, and restarts whenever the tests
  write under build/). ``--reload`` (``make run RELOAD=1``) restarts the server when a file
  it runs from changes: app.py, chalicelib/ and .chalice/config.json only, once a second.
- A busy port is one line and a non-zero exit, not a traceback and a hang.
- Stopping make stops the server: Ctrl-C, or a SIGTERM to make (this process is exec'd by
  make's recipe, so make is its parent; on Linux the kernel signals it when make dies,
  elsewhere it notices within a second).
- The environment wins over the stage's variables for a local run: ``ALLOWED_SOURCES=/srv/
  make run`` serves /srv/ although .chalice/config.json names only the demo for dev.
"""

import argparse
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the server runs from; nothing else is watched (not .venv, build/, tests/ or docs/).
WATCHED = ("app.py", "chalicelib", ".chalice/config.json")


def watched_files(root: Path = ROOT) -> list[Path]:
    files = []
    for name in WATCHED:
        path = root / name
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()
                            and "__pycache__" not in p.parts) if path.is_dir() else [path])
    return files


def snapshot(files) -> dict:
    stamps = {}
    for path in files:
        try:
            stamps[path] = path.stat().st_mtime_ns
        except FileNotFoundError:
            pass
    return stamps


def die_with_parent() -> None:
    """Get SIGTERM when the parent process dies (Linux); elsewhere, watch for it."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGTERM) == 0:  # PR_SET_PDEATHSIG
            return
    except (OSError, AttributeError):
        pass
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, daemon=True).start()


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
        try:
            sock.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def busy(host: str, port: int) -> int:
    print(f"cogtiler: {host}:{port} is already in use (another `make run`?); pick another "
          f"port: make run PORT={port + 1}", file=sys.stderr)
    return 1


def serve(stage: str, host: str, port: int) -> int:
    """chalice local's server, in this process, with the environment over the stage's."""
    import logging

    from chalice.cli import create_local_server
    from chalice.cli.factory import CLIFactory

    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    given = dict(os.environ)
    factory = CLIFactory(project_dir=str(ROOT), environ=os.environ)
    try:
        server = create_local_server(factory, host, port, stage)  # loads app.py
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return busy(host, port)
        raise
    stage_variables = factory.create_config_obj(chalice_stage_name=stage).environment_variables
    overridden = sorted(k for k in stage_variables if k in given and given[k] != os.environ[k])
    os.environ.update({k: given[k] for k in overridden})  # read per request (settings.py)
    for name in overridden:
        print(f"cogtiler: {name} from the environment (not the {stage} stage's): {given[name]}")
    # a local run keeps registered searches (POST /searches/register) in a local folder
    if not os.environ.get("SEARCHES_PREFIX") and not stage_variables.get("SEARCHES_PREFIX"):
        os.environ["SEARCHES_PREFIX"] = str(ROOT / "build" / "searches")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def supervise(args) -> int:
    """Run the server in a child process; restart it when a watched file changes."""
    command = [sys.executable, __file__, "--serve", "--stage", args.stage, "--host", args.host,
               "--port", str(args.port)]
    stop = threading.Event()
    child: subprocess.Popen | None = None

    def on_signal(signum, _frame):
        stop.set()
        if child and child.poll() is None:
            child.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    files = watched_files()
    while True:
        stamps = snapshot(files)
        child = subprocess.Popen(command, cwd=ROOT)
        while child.poll() is None and not stop.is_set():
            stop.wait(1.0)
            if child.poll() is None and snapshot(watched_files()) != stamps:
                print("cogtiler: a source file changed; restarting the server", flush=True)
                child.send_signal(signal.SIGTERM)
                child.wait()
                files = watched_files()
                break
        else:
            code = child.wait()
            return 0 if stop.is_set() else code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--reload", action="store_true",
                        help="restart when app.py, chalicelib/ or .chalice/config.json change")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    die_with_parent()
    if port_in_use(args.host, args.port):
        return busy(args.host, args.port)
    if args.serve or not args.reload:
        return serve(args.stage, args.host, args.port)
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main())
