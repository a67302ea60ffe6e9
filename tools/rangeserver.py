"""A range-capable HTTP file server on 127.0.0.1 that logs every request and the bytes sent.

Used by the tests (tests/test_http_source.py) and the request-count benchmark.

    with RangeServer(folder) as server: url = server.url("cog.tif"); ...; server.log
"""

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    bytes: int
    time: float = field(default_factory=time.time)


class RangeServer:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.log: list[Request] = []
        self.redirects: dict[str, str] = {}  # path -> Location answered with a 302
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _redirected(self) -> bool:
                target = server.redirects.get(self.path.split("?")[0])
                if target is None:
                    return False
                server.log.append(Request(self.command, self.path, self.headers.get("Range"),
                                          0))
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True

            def _file(self) -> bytes | None:
                name = self.path.split("?")[0].lstrip("/")
                path = (server.root / name).resolve()
                if ".." in name or not path.is_file() or server.root.resolve() not in path.parents:
                    server.log.append(Request(self.command, self.path,
                                              self.headers.get("Range"), 0))
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return path.read_bytes()

            def do_HEAD(self):
                if self._redirected():
                    return
                data = self._file()
                if data is not None:
                    server.log.append(Request("HEAD", self.path, None, 0))
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Accept-Ranges", "bytes")
                    self.end_headers()

            def do_GET(self):
                if self._redirected():
                    return
                data = self._file()
                wanted = self.headers.get("Range")
                if data is None:
                    return
                match = re.match(r"bytes=(\d+)-(\d*)$", wanted or "")
                if not match:
                    body, status = data, 200
                else:
                    start = int(match.group(1))
                    end = min(int(match.group(2) or len(data) - 1), len(data) - 1)
                    body, status = data[start:end + 1], 206
                # logged before the answer: a client that has its bytes finds its request
                # in the log (logged after, a test could miss it under load)
                server.log.append(Request("GET", self.path, wanted, len(body)))
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def url(self, name: str) -> str:
        return f"http://{self.host}/{name}"

    def __enter__(self) -> "RangeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
