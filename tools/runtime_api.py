"""A small AWS Lambda Runtime API emulator on 127.0.0.1, for running a package as Lambda does.

The real runtime interface client (awslambdaric) polls ``GET /2018-06-01/runtime/invocation/
next`` for an event, runs the handler, and posts the result to ``.../{request id}/response``
(or ``/error``; a failed import goes to ``/runtime/init/error``). This emulator hands out the
queued events in order and records what comes back, with timestamps.

    api = RuntimeAPI([event1, event2]); api.start(); ...; api.wait_for(2); api.stop()
"""

import json
import queue
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The function process is terminated while it waits for its next event: expected.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@dataclass
class Result:
    request_id: str
    event: dict
    sent_at: float
    finished_at: float | None = None
    body: bytes | None = None
    error: dict | None = None

    @property
    def payload(self):
        return json.loads(self.body) if self.body is not None else None


@dataclass
class RuntimeAPI:
    events: list
    function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cogtiler-verify"
    results: list = field(default_factory=list)
    init_error: dict | None = None
    first_poll_at: float | None = None

    def __post_init__(self):
        self._queue: queue.Queue[dict] = queue.Queue()
        for event in self.events:
            self._queue.put(event)
        self._done = threading.Condition()
        self._by_id: dict[str, Result] = {}
        self._stopping = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                if api.first_poll_at is None:
                    api.first_poll_at = time.perf_counter()
                while not api._stopping.is_set():
                    try:
                        event = api._queue.get(timeout=0.2)
                        break
                    except queue.Empty:
                        continue
                else:
                    return self._reply(503)
                request_id = str(uuid.uuid4())
                result = Result(request_id, event, time.perf_counter())
                with api._done:
                    api._by_id[request_id] = result
                    api.results.append(result)
                deadline = int(time.time() * 1000) + 30_000
                self._reply(200, json.dumps(event).encode(), {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-"
                                               f"{uuid.uuid4().hex[:24]}",
                })

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.perf_counter()
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = json.loads(body or b"{}")
                    with api._done:
                        api._done.notify_all()
                    return self._reply(202, b"{}")
                match = re.fullmatch(rf"{PREFIX}/invocation/([^/]+)/(response|error)", self.path)
                if not match or match.group(1) not in api._by_id:
                    return self._reply(404)
                with api._done:
                    result = api._by_id[match.group(1)]
                    result.finished_at = now
                    if match.group(2) == "response":
                        result.body = body
                    else:
                        result.error = json.loads(body or b"{}")
                    api._done.notify_all()
                self._reply(202, b"{}")

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> "RuntimeAPI":
        self._thread.start()
        return self

    def wait_for(self, count: int, timeout: float, alive=lambda: True) -> bool:
        """Wait until ``count`` invocations have finished (or init failed, or the process
        died, or ``timeout`` passed). Returns whether they all finished."""
        deadline = time.monotonic() + timeout
        with self._done:
            while True:
                finished = sum(1 for r in self.results if r.finished_at is not None)
                if finished >= count:
                    return True
                if self.init_error is not None or not alive() or time.monotonic() > deadline:
                    return False
                self._done.wait(timeout=0.2)

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
