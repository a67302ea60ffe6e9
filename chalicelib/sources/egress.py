"""The egress guard: every HTTP request GDAL makes passes the allow-list's rule.

The first hop of a source is checked by :func:`allowlist.resolve`. GDAL then follows HTTP
redirects (libcurl's, with no option to refuse them), so an allowed server answering
``302 Location: http://169.254.169.254/...`` or ``/secret/x.tif`` would lead it anywhere.
So GDAL is given a proxy: a small forward proxy in this process, on 127.0.0.1, which
applies the allow-list's rule to every request and tunnel it is asked for:

- plain ``http://``: the request line shows scheme, host, port and path, all checked as a
  source is (a redirect to another path of an allowed host is refused too);
- ``https://``: libcurl asks for a ``CONNECT host:port`` tunnel; host and port are checked
  (the path travels inside TLS: within an allowed https host, its own redirects are trusted);
- S3 (``/vsis3/``): the bucket, from the virtual host or the path, must be allowed;
- any other scheme (``gopher://``, ``ftp://``...) is refused;
- the address connected to is the one checked: a host that resolves to a loopback, private
  or link-local address is refused unless it is in UNSAFE_ALLOW_HOSTS (tests) or is the
  operator's own S3 endpoint.

The proxy runs in a child process of its own (started on first use, about 45 ms; it exits
with its parent): in this process it would need the GIL, which rasterio holds through some
GDAL calls that read (``overviews()`` loading a lazy directory), and GDAL would wait for an
answer that cannot come. Refusals answer 403; the child writes the time of the last one
where the parent reads it, so the dataset layer can tell the user "the source redirected
off the allow-list" rather than "access denied". The cost per tile is a local hop per
connection (bench/egress.py); nothing but GDAL uses the proxy.
"""

import dataclasses
import ipaddress
import json
import mmap
import os
import re
import select
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from ..core.errors import TilerError
from ..core.settings import PROJECT_DIR
from . import allowlist

#: How long a connection may sit idle (seconds) before the proxy closes it.
IDLE_TIMEOUT = 120.0
#: How long connecting to a host may take (seconds; GDAL's own timeout still applies).
CONNECT_TIMEOUT = 30.0
#: Longest request head accepted from GDAL.
MAX_HEAD = 64 * 1024
#: How long a host's addresses are remembered (seconds).
DNS_TTL = 60.0

_AWS_VIRTUAL = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.\-]*)\.s3(?:[.\-](?:dualstack\.)?[a-z0-9\-]+)?"
    r"\.amazonaws\.com(?:\.cn)?$")
_AWS_PATH = re.compile(r"^s3(?:[.\-](?:dualstack\.)?[a-z0-9\-]+)?\.amazonaws\.com(?:\.cn)?$")


def _split_host(netloc: str, default_port: int) -> tuple[str, int]:
    """(host, port) of ``host[:port]`` or ``[v6][:port]``, the host lowercased."""
    parts = urlsplit("//" + netloc)
    try:
        port = parts.port or default_port
    except ValueError:
        port = -1
    return (parts.hostname or "").lower(), port


@dataclass(frozen=True)
class Rule:
    """The allow-list's rule, as the proxy applies it to each request."""

    allowed: tuple[str, ...]
    unsafe_allow_hosts: tuple[str, ...] = ()
    #: AWS_S3_ENDPOINT (host[:port]), "" for AWS's own.
    s3_endpoint: str = ""
    s3_https: bool = True
    virtual_hosting: bool = True

    def _prefixes(self) -> list[allowlist.Source]:
        found = (allowlist._prefix(entry, PROJECT_DIR) for entry in self.allowed)
        return [p for p in found if p is not None]

    def _buckets(self) -> set[str]:
        return {p.host for p in self._prefixes() if p.scheme == "s3"}

    def _endpoint(self) -> tuple[str, int] | None:
        if not self.s3_endpoint:
            return None
        netloc = self.s3_endpoint.split("://")[-1].split("/")[0]
        return _split_host(netloc, 443 if self.s3_https else 80)

    def _s3_bucket(self, host: str, port: int) -> str | None:
        """The bucket a virtual-hosted S3 host names, or None."""
        endpoint = self._endpoint()
        if endpoint is None:
            match = _AWS_VIRTUAL.match(host)
            return match.group("bucket") if match and port == 443 else None
        if port == endpoint[1] and host.endswith("." + endpoint[0]):
            return host[:-len(endpoint[0]) - 1]
        return None

    def _s3_path_host(self, host: str, port: int) -> bool:
        """Whether host:port is an S3 endpoint addressed path-style (``/bucket/key``)."""
        endpoint = self._endpoint()
        if endpoint is None:
            return port == 443 and _AWS_PATH.match(host) is not None
        return (host, port) == endpoint

    def remote(self) -> bool:
        """Whether the allow-list names any remote prefix (else GDAL never goes online)."""
        return any(p.scheme != "file" for p in self._prefixes())

    def trusted(self, host: str, port: int) -> bool:
        """Whether host:port may be a private address (exempt hosts, the S3 endpoint)."""
        for entry in self.unsafe_allow_hosts:
            if _split_host(entry, port) == (host, port):
                return True
        return self._endpoint() == (host, port)

    def request(self, url: str) -> bool:
        """Whether a plain-HTTP request for ``url`` (absolute form) may be sent."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "http":
            return False
        host, port = _split_host(parts.netloc, 80)
        if self._s3_path_host(host, port):
            name, _, key = unquote(parts.path).lstrip("/").partition("/")
            return self._s3_allowed(name, key, parts.query)
        bucket = self._s3_bucket(host, port)
        if bucket is not None:
            return self._s3_allowed(bucket, unquote(parts.path).lstrip("/"), parts.query)
        try:
            source = allowlist.parse(url)
        except TilerError:
            return False
        return allowlist.is_allowed(source, self.allowed)

    def _s3_allowed(self, bucket: str, key: str, query: str) -> bool:
        """An object under an allowed prefix, or a listing (GDAL asks whether a name is a
        directory) of keys under one."""
        if not key:
            key = (parse_qs(query).get("prefix") or [""])[0]
        try:
            source = allowlist.parse(f"s3://{bucket}/{key}", prefix=True)
        except TilerError:
            return False
        return bool(bucket) and allowlist.is_allowed(source, self.allowed)

    def tunnel(self, host: str, port: int) -> bool:
        """Whether a ``CONNECT host:port`` tunnel (https) may be opened."""
        bucket = self._s3_bucket(host, port)
        if bucket is not None and bucket in self._buckets():
            return True
        if self._s3_path_host(host, port):
            # path-style S3 shows no bucket in the host: allowed where an allowed bucket
            # needs it (a dotted name, or an endpoint without virtual hosting)
            return any("." in b or not self.virtual_hosting for b in self._buckets())
        for prefix in self._prefixes():
            if prefix.scheme == "https" and _split_host(prefix.host, 443) == (host, port):
                return True
        return False


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: "EgressProxy"):
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """The request or response head (up to the blank line) and what followed it."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            return None
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


_HOP_BY_HOP = (b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization")


def _closing(head: bytes, first_line: bytes | None = None) -> bytes:
    """``head`` without hop-by-hop headers, ending with ``Connection: close``."""
    lines = head.split(b"\r\n")
    kept = [first_line or lines[0]] + [
        line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    return b"\r\n".join(kept + [b"Connection: close", b"", b""])


def _relay(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until a side closes or both stay idle too long."""
    with selectors.DefaultSelector() as selector:
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        while True:
            events = selector.select(IDLE_TIMEOUT)
            if not events:
                return
            for key, _ in events:
                try:
                    chunk = key.fileobj.recv(262144)  # type: ignore[union-attr]
                    if not chunk:
                        return
                    key.data.sendall(chunk)
                except OSError:
                    return


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        proxy: EgressProxy = self.server.proxy  # type: ignore[attr-defined]
        client: socket.socket = self.request
        client.settimeout(IDLE_TIMEOUT)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # relayed as it comes
        try:
            read = _read_head(client)
            if read is None:
                return
            head, rest = read
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            try:
                method, target, _version = line.split(" ")
            except ValueError:
                return self._refuse(proxy, client, line, status=b"400 Bad Request")
            rule = proxy.rule
            if method.upper() == "CONNECT":
                host, port = _split_host(target, 443)
                upstream = proxy.connect(host, port) if rule.tunnel(host, port) else None
                if upstream is None:
                    return self._refuse(proxy, client, f"CONNECT {target}")
                if isinstance(upstream, bytes):
                    return self._fail(client, upstream)
                with upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    if rest:
                        upstream.sendall(rest)
                    _relay(client, upstream)
                return
            upstream = None
            if rule.request(target):
                parts = urlsplit(target)
                host, port = _split_host(parts.netloc, 80)
                upstream = proxy.connect(host, port)
            if upstream is None:
                return self._refuse(proxy, client, f"{method} {target}")
            if isinstance(upstream, bytes):
                return self._fail(client, upstream)
            path = target.split("://", 1)[1]
            path = path[path.find("/"):] if "/" in path else "/"
            request = _closing(head, f"{method} {path} HTTP/1.1".encode("latin-1"))
            with upstream:
                upstream.sendall(request + rest)
                answer = _read_head(upstream)
                if answer is None:
                    return
                client.sendall(_closing(answer[0]) + answer[1])
                _relay(client, upstream)
        except OSError:
            return

    @staticmethod
    def _fail(client: socket.socket, status: bytes) -> None:
        client.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n"
                       b"Connection: close\r\n\r\n")

    @staticmethod
    def _refuse(proxy: "EgressProxy", client: socket.socket, what: str,
                status: bytes = b"403 Forbidden") -> None:
        proxy.note_refusal(what)  # before the answer: GDAL's error comes after it
        client.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n"
                       b"Connection: close\r\n\r\n")


class EgressProxy:
    """The forward proxy GDAL is pointed at (one per process, started on first use)."""

    def __init__(self, rule: Rule, shared: mmap.mmap | None = None):
        self.rule = rule
        self._shared = shared  # the parent reads the last refusal's time here
        self._dns: dict[tuple[str, int], tuple[float, list]] = {}
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="egress-guard", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def note_refusal(self, what: str) -> None:
        now = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
        sys.stderr.write(json.dumps({"egress": "refused", "request": what[:300]}) + "\n")
        if self._shared is not None:
            struct.pack_into("d", self._shared, 0, now)

    def connect(self, host: str, port: int) -> socket.socket | bytes | None:
        """A connection to host:port, at an address the rule permits; None if refused;
        the HTTP status to answer (bytes) if the host cannot be reached."""
        if not host or not 0 < port < 65536:
            return None
        infos = self._resolve(host, port)
        if not infos:
            return b"502 Bad Gateway"
        trusted = self.rule.trusted(host, port)
        for *_, address in infos:
            ip = ipaddress.ip_address(str(address[0]).split("%")[0])
            if not trusted and allowlist._blocked_ip(ip):
                return None  # checked here, connected here: no rebinding in between
        status = b"502 Bad Gateway"
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(CONNECT_TIMEOUT)
            try:
                sock.connect(address)
                sock.settimeout(IDLE_TIMEOUT)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except TimeoutError:
                status = b"504 Gateway Timeout"
                sock.close()
            except OSError:
                sock.close()
        return status

    def _resolve(self, host: str, port: int) -> list:
        """getaddrinfo, remembered for :data:`DNS_TTL` (one lookup per host, not per read)."""
        now = time.monotonic()
        known = self._dns.get((host, port))
        if known is not None and known[0] > now:
            return known[1]
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        if len(self._dns) > 256:
            self._dns.clear()
        self._dns[(host, port)] = (now + DNS_TTL, infos)
        return infos

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---- the parent's side: one child process per container -----------------------------------

def _rule_line(rule: Rule) -> bytes:
    return (json.dumps(dataclasses.asdict(rule)) + "\n").encode()


def _child_main(shared_fd: int) -> None:
    """The proxy process: serve, take rules from stdin (one JSON line each, acknowledged),
    exit when the parent goes (stdin closes)."""
    shared = mmap.mmap(shared_fd, 8)
    proxy: EgressProxy | None = None
    for line in sys.stdin.buffer:
        fields = json.loads(line)
        rule = Rule(tuple(fields["allowed"]), tuple(fields["unsafe_allow_hosts"]),
                    fields["s3_endpoint"], fields["s3_https"], fields["virtual_hosting"])
        if proxy is None:
            proxy = EgressProxy(rule, shared)
        proxy.rule = rule
        sys.stdout.write(f"{proxy.port}\n")
        sys.stdout.flush()
    os._exit(0)


#: How the child starts: without site-packages or the environment's Python settings, and
#: without chalicelib/__init__ (which loads rasterio): the proxy needs the standard library
#: and the allow-list only (about 45 ms).
_BOOT = ("import sys, types; package = types.ModuleType('chalicelib'); "
         "package.__path__ = [sys.argv[1]]; sys.modules['chalicelib'] = package; "
         "from chalicelib.sources import egress; egress._child_main(int(sys.argv[2]))")


class _Child:
    """The proxy process and what the parent shares with it."""

    def __init__(self):
        import subprocess  # here, not at import: only a container that reads remote
        import tempfile  # sources starts the proxy (a few ms of every cold start saved)
        self._file = tempfile.TemporaryFile()
        self._file.write(b"\0" * 8)
        self._file.flush()
        self.shared = mmap.mmap(self._file.fileno(), 8)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOT, str(PROJECT_DIR / "chalicelib"),
             str(self._file.fileno())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(self._file.fileno(),),
            close_fds=True, cwd=str(PROJECT_DIR))
        self.port = 0
        self.rule: Rule | None = None  # the last rule sent
        self._pending = 0

    def send(self, rule: Rule) -> None:
        """Send ``rule`` (the child answers its port once it applies it)."""
        assert self.process.stdin is not None
        self.rule = rule
        self.process.stdin.write(_rule_line(rule))
        self.process.stdin.flush()
        self._pending += 1

    def wait(self) -> int:
        """The child's port, once it has applied every rule sent."""
        assert self.process.stdout is not None
        while self._pending:
            ready = select.select([self.process.stdout], [], [], START_TIMEOUT)[0]
            answer = self.process.stdout.readline() if ready else b""
            if not answer.strip().isdigit():
                self.process.kill()
                raise RuntimeError("the egress guard's proxy process did not start")
            self.port = int(answer)
            self._pending -= 1
        return self.port

    def alive(self) -> bool:
        return self.process.poll() is None

    def last_refusal(self) -> float:
        return struct.unpack_from("d", self.shared, 0)[0]


_child: list[_Child] = []
_child_lock = threading.Lock()
#: How long the proxy process may take to start or to take a new rule (seconds).
START_TIMEOUT = 20.0


def start(rule: Rule) -> None:
    """Start the container's proxy (or start it again if it died) and send it ``rule``,
    without waiting: the child boots while this process goes on."""
    with _child_lock:
        if not _child or not _child[0].alive():
            _child[:] = [_Child()]
        _child[0].send(rule)


def guard(rule: Rule) -> str:
    """The URL of the container's egress proxy, applying ``rule`` (started if need be)."""
    with _child_lock:
        if not _child or not _child[0].alive():
            _child[:] = [_Child()]
            _child[0].send(rule)
        elif _child[0].rule != rule:
            _child[0].send(rule)
        return f"http://127.0.0.1:{_child[0].wait()}"


def alive() -> bool:
    """Whether the proxy process runs (a dead one is started again by :func:`guard`)."""
    return bool(_child) and _child[0].alive()


def refused_since(started: float) -> bool:
    """Whether the proxy refused a request since ``started`` (a ``time.monotonic()``)."""
    return bool(_child) and _child[0].last_refusal() >= started
