"""`make run` as a person uses it: it idles, refuses a busy port in one line, stops with its
make (Ctrl-C or SIGTERM), and lets the environment choose what to serve."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from chalice_local import free_port

from tests.support import ROOT
from tools.run import watched_files

pytestmark = pytest.mark.server

STARTUP = 90.0  # seconds, bounded waits for the port (setup is already done by `make test`)


class MakeRun:
    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.log = tmp_path / "make-run.log"
        with open(self.log, "w") as out:
            self.make = subprocess.Popen(["make", "--no-print-directory", "run",
                                          f"PORT={self.port}", *args], cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, **(env or {})})
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + STARTUP
        while not self.answers():
            assert self.make.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "make run did not answer: " + self.output()
            time.sleep(0.1)  # polling the port, bounded by the deadline

    def output(self) -> str:
        return self.log.read_text()

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def processes(self) -> list[int]:
        """The processes of this make's session (make, the server, its supervisor)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == self.make.pid:
                        found.append(int(entry.name))
                except OSError:
                    pass
        return found

    def cpu_seconds(self) -> float:
        ticks = 0
        for pid in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
            except (OSError, IndexError):
                pass
        return ticks / os.sysconf("SC_CLK_TCK")

    def wait_all_gone(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [p for p in self.processes() if p != self.make.pid] and not self.answers():
                return True
            time.sleep(0.1)
        return False

    def kill(self):
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.make.wait(timeout=10)


@pytest.fixture
def make_run(tmp_path):
    started = []

    def start(*args, env=None):
        run = MakeRun(tmp_path, *args, env=env)
        started.append(run)
        return run
    yield start
    for run in started:
        run.kill()


def test_a_busy_port_is_one_line_and_a_non_zero_exit():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(["make", "--no-print-directory", "run", f"PORT={port}"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    message = [line for line in result.stderr.splitlines() if "in use" in line]
    assert len(message) == 1 and str(port) in message[0] and f"PORT={port + 1}" in message[0]


@pytest.mark.parametrize("how", ["SIGTERM to make", "Ctrl-C"])
def test_the_server_stops_with_its_make(make_run, how):
    run = make_run()
    if how == "Ctrl-C":  # the terminal signals the whole foreground process group
        os.killpg(run.make.pid, signal.SIGINT)
    else:
        run.make.send_signal(signal.SIGTERM)
    assert run.wait_all_gone(), f"still running after {how}: {run.processes()}"


@pytest.mark.parametrize("args", [(), ("RELOAD=1",)])
def test_idle_is_near_zero_cpu(make_run, args):
    run = make_run(*args)
    before, start = run.cpu_seconds(), time.monotonic()
    time.sleep(3.0)  # the measuring window itself, not a wait for something to happen
    used = (run.cpu_seconds() - before) / (time.monotonic() - start)
    assert used < 0.03, f"{used:.1%} of a CPU while idle"


def test_the_environment_chooses_the_sources_of_a_local_run(make_run, shared):
    run = make_run(env={"ALLOWED_SOURCES": f"{shared}/"})
    with urllib.request.urlopen(f"{run.base}/cog/info?url={shared}/cog.tif") as response:
        assert response.status == 200
    assert "ALLOWED_SOURCES from the environment" in run.output()


def test_reload_watches_only_what_the_server_runs_from():
    files = {p.relative_to(ROOT).as_posix() for p in watched_files()}
    assert "app.py" in files and "chalicelib/operations/tiler.py" in files
    assert ".chalice/config.json" in files
    assert not [f for f in files if f.startswith((".venv", "build", "tests", "docs", "vendor"))]
    assert len(files) < 200  # not the 30,000 files of the project folder
