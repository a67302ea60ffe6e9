"""`chalice local` as a user runs it (`make run`), for tests and tools: started on a free
port, waited for (bounded) until it answers, stopped at the end. Its output (one line per
request) goes to a log file, never to a pipe nobody reads (which would block the server).

    with ChaliceLocal("test", {"ALLOWED_SOURCES": "/srv/rasters/"}) as local:
        urllib.request.urlopen(local.base + "/healthz")
        local.requests()  # ['GET /healthz 200']
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_REQUEST = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChaliceLocal:
    """``chalice local --stage STAGE`` on a free port; ``env`` is added to the environment
    (a stage's own variables still win)."""

    STARTUP_TIMEOUT = 60.0

    def __init__(self, stage: str = "dev", env: dict | None = None, project: Path = ROOT):
        self.stage, self.env, self.project = stage, env or {}, project
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="chalice-local-", suffix=".log")[1])

    def __enter__(self):
        chalice = Path(sys.executable).parent / "chalice"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [str(chalice), "local", "--stage", self.stage, "--host", "127.0.0.1",
                 "--port", str(self.port), "--no-autoreload"],
                cwd=self.project, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env})
        deadline = time.monotonic() + self.STARTUP_TIMEOUT
        while True:  # wait for the port to answer (bounded), not for a fixed time
            if self.process.poll() is not None:
                raise RuntimeError("chalice local exited: " + self.output()[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("chalice local did not start within "
                                       f"{self.STARTUP_TIMEOUT:.0f} s") from None
                time.sleep(0.1)

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def requests(self) -> list[str]:
        """The requests served so far, as 'METHOD /path?query STATUS'."""
        return [" ".join(m.groups()) for m in _REQUEST.finditer(self.output())]
