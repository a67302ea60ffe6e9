"""A range-capable HTTP file server on 127.0.0.1 that logs every request and the bytes sent.

Used by the tests (tests/test_http_source.py) and the request-count benchmark.

    with RangeServer(folder) as server: url = server.url("cog.tif"); ...; server.log

``bind`` picks another loopback address (127.0.0.2 is "another host" on Linux); ``tls``
(a (certificate, key) pair of files) serves https. :class:`Trap` is a listener that serves
nothing and records every connection, whatever the protocol: a secret server for tests.
"""

import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    bytes: int
    time: float = field(default_factory=time.time)


class RangeServer:
    def __init__(self, root: Path, bind: str = "127.0.0.1",
                 tls: tuple[str, str] | None = None):
        self.root = Path(root)
        self.scheme = "https" if tls else "http"
        self.log: list[Request] = []
        self.redirects: dict[str, str] = {}  # path -> Location answered with a 302
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK add 40 ms to every kept-alive response
            disable_nagle_algorithm = True

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
                name = unquote(self.path.split("?")[0]).lstrip("/")
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

        family = socket.AF_INET6 if ":" in bind else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family

        self._server = Server((bind, 0), Handler)
        self._server.daemon_threads = True
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        address = self._server.server_address
        name = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{name}:{address[1]}"

    def url(self, name: str) -> str:
        return f"{self.scheme}://{self.host}/{name}"

    def __enter__(self) -> "RangeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


class Trap:
    """A TCP listener that answers nothing and records each connection's first bytes."""

    def __init__(self, bind: str = "127.0.0.1"):
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.bind((bind, 0))
        self._socket.listen(16)
        self.received: list[bytes] = []  # one entry per connection
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(4096))
                except OSError:
                    self.received.append(b"")

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def touched(self) -> bool:
        """Whether anyone connected (also a connection still waiting to be accepted)."""
        import select
        waiting = select.select([self._socket], [], [], 0.05)[0]
        return bool(self.received or waiting)

    def __enter__(self) -> "Trap":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._socket.close()
