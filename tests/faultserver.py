"""A local HTTP server that misbehaves on purpose: every path and method gets the same chosen fault.

Used by the fault matrix (``tests/test_fault_matrix.py``) and the secrets tests. Written on raw sockets,
not ``http.server``, because several faults live below HTTP: a status line sent one byte a second, a body
cut off before its ``Content-Length``, a connection that is accepted and never answered. Loopback only.

    with FaultServer("trickle") as server:
        settings = Settings(urls={"OTC_RDAP_URL": server.base + "/rdap"}, timeout=2)
        ...
        assert server.requests[0].method == "GET"

``FAULTS`` lists the faults; ``server.requests`` logs what arrived (method, path, headers, body), so a
test can also check what the source *sent* (e.g. that its key really reached the server).
:class:`GarbageDnsServer` is the DNS counterpart for replies ``tests/fakedns.py`` cannot make (bytes that
are not a DNS message, a truncated reply with no TCP service behind it).
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from typing import Self

HOST = "127.0.0.1"
TRICKLE_INTERVAL = 1.0  # seconds between two bytes of a trickling answer
HUGE_BODY_BYTES = 50 * 1024 * 1024
_BLOCK = b"A" * 65536  # the one block a huge body is made of: serving 50 MB allocates nothing more

# Every top-level field any source reads from an answer, each null (the "wrong shape: nulls" fault).
NULL_FIELDS = (
    "ip", "ports", "hostnames", "tags", "vulns", "cpes",  # InternetDB
    "data", "errors",  # AbuseIPDB, VirusTotal, abuse.ch
    "noise", "riot", "classification", "name", "link", "last_seen", "message",  # GreyNoise
    "ip_str", "org", "isp", "asn", "country_code", "last_update", "domains",  # Shodan
    "indicator", "type", "reputation", "validation", "pulse_info", "false_positive",  # OTX
    "query_status", "urls", "url_count", "firstseen", "urlhaus_reference", "payloads", "blacklists",  # abuse.ch
    "objectClassName", "handle", "startAddress", "endAddress", "ldhName", "unicodeName", "events",
    "entities", "status", "nameservers", "startAutnum", "country",  # RDAP
    "error", "detail", "count",
)

HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Service maintenance</title></head>"
             b"<body><h1>We'll be back soon</h1><p>The API is down for maintenance.</p></body></html>")
VALID_LOOKING_JSON = json.dumps({
    "ip": "8.8.4.4", "ports": [53, 443], "hostnames": ["dns.google"], "tags": [], "vulns": [], "cpes": [],
    "data": {"attributes": {"last_analysis_stats": {"malicious": 0, "harmless": 70}}},
}).encode()


@dataclass(frozen=True)
class Fault:
    """One way to misbehave. ``status`` None means the fault is not an HTTP answer (or not a whole one)."""

    name: str
    status: int | None = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


_FAULTS = (
    Fault("refused"),  # nothing listens on the port
    Fault("no-answer"),  # the connection is accepted, the request read, nothing ever sent
    Fault("trickle"),  # the whole answer, status line first, one byte a second
    Fault("trickle-body"),  # headers at once, then the body one byte a second
    Fault("429-retry-after", 429, b'{"message": "Too Many Requests"}', headers=(("Retry-After", "3600"),)),
    Fault("429", 429, b'{"message": "Too Many Requests"}'),
    Fault("500", 500, b"<html><body><h1>500 Internal Server Error</h1></body></html>", "text/html"),
    Fault("502", 502, b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "text/html"),
    Fault("503", 503, b'{"message": "Service Unavailable"}'),
    Fault("401", 401, b'{"message": "Unauthorized"}'),
    Fault("403", 403, b'{"message": "Forbidden"}'),
    Fault("html-200", 200, HTML_PAGE, "text/html"),
    Fault("malformed-json", 200, b'{"data": {"abuseConfidenceScore": 100,, "query_status": ok}'),
    Fault("truncated-json", 200, VALID_LOOKING_JSON[: len(VALID_LOOKING_JSON) // 2]),  # honest length, cut JSON
    Fault("broken-off", 200, VALID_LOOKING_JSON[:40]),  # Content-Length promises more; the connection closes
    Fault("shape-list", 200, b'[1, "two", null, [3]]'),
    Fault("shape-nulls", 200, json.dumps(dict.fromkeys(NULL_FIELDS)).encode()),
    Fault("shape-empty", 200, b"{}"),
    Fault("invalid-utf8", 200, b'{"query_status": "ok", "ip": "8.8.4.4", "data": "\xff\xfe\xc3\x28\xa0\xa1"}'),
    Fault("huge", 200),  # 50 MB with Content-Length, streamed
    Fault("huge-chunked", 200),  # 50 MB chunked, no length announced: only counting stops it
    Fault("redirect-loop", 302),
    # Not faults of the matrix: answers that quote the request back (as some APIs quote a bad key).
    Fault("echo-401", 401),
    Fault("echo-404", 404),
    Fault("echo-200", 200),
)
FAULTS = {fault.name: fault for fault in _FAULTS}
MATRIX_FAULTS = tuple(f.name for f in _FAULTS if not f.name.startswith("echo-"))


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    target: str  # path and query as sent
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        """The whole request as text (to search for a key wherever the source put it)."""
        lines = [f"{self.method} {self.target}"] + [f"{k}: {v}" for k, v in self.headers.items()]
        return "\n".join(lines) + "\n\n" + self.body.decode("utf-8", "replace")


@dataclass
class _State:
    fault: Fault
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[ReceivedRequest] = field(default_factory=list)
    max_stall: float = 12.0  # longest a stalling fault holds a connection (a client without deadline fails)


class _Handler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        state = self.server.state
        conn: socket.socket = self.request
        conn.settimeout(10)
        try:
            request = _read_request(conn)
        except (OSError, ValueError):
            return
        if request is None:
            return
        with state.lock:
            state.requests.append(request)
        try:
            _answer(conn, request, state, self.server.base)
        except OSError:  # the client hung up (e.g. it stopped reading at its size cap): that is fine
            pass


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: _State
    base: str


def _read_request(conn: socket.socket) -> ReceivedRequest | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1_000_000:
            raise ValueError("request head too large")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = (lines[0].split(" ") + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0") or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return ReceivedRequest(method, target, headers, body)


def _head(status: int, content_type: str, extra: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}",
             "Connection: close"] + [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {200: "OK", 302: "Found", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def _echo_body(request: ReceivedRequest) -> bytes:
    """An error body that quotes the request back, in every error field some source reads."""
    quoted = request.text()
    return json.dumps({
        "message": quoted, "detail": quoted, "error": quoted, "errors": [{"detail": quoted, "status": 401}],
        "query_status": quoted[:200], "data": quoted, "ip": quoted, "noise": False, "riot": False,
        "ports": [], "hostnames": [quoted], "title": quoted, "description": [quoted],
    }).encode()


def _answer(conn: socket.socket, request: ReceivedRequest, state: _State, base: str) -> None:
    fault = state.fault
    name = fault.name
    if name == "no-answer":
        state.stop.wait(state.max_stall)
        return
    if name in ("trickle", "trickle-body"):
        head = _head(200, "application/json", [("Content-Length", str(len(VALID_LOOKING_JSON)))])
        if name == "trickle-body":
            conn.sendall(head)
            _trickle(conn, VALID_LOOKING_JSON, state)
        else:
            _trickle(conn, head + VALID_LOOKING_JSON, state)
        return
    if name in ("huge", "huge-chunked"):
        _send_huge(conn, chunked=name == "huge-chunked")
        return
    if name == "redirect-loop":
        location = base + request.target  # the same URL again: a loop no number of hops escapes
        conn.sendall(_head(302, "text/html", [("Location", location), ("Content-Length", "0")]))
        return
    if name == "broken-off":
        conn.sendall(_head(200, fault.content_type, [("Content-Length", str(len(VALID_LOOKING_JSON)))]) + fault.body)
        return  # closing now leaves the body short of its announced length
    body = _echo_body(request) if name.startswith("echo-") else fault.body
    extra = list(fault.headers) + [("Content-Length", str(len(body)))]
    conn.sendall(_head(fault.status or 200, fault.content_type, extra) + body)


def _trickle(conn: socket.socket, data: bytes, state: _State) -> None:
    """One byte per interval, until sent, the server stops, or ``max_stall`` seconds have passed."""
    started = time.monotonic()
    for index in range(len(data)):
        conn.sendall(data[index:index + 1])
        if state.stop.wait(TRICKLE_INTERVAL) or time.monotonic() - started > state.max_stall:
            return


def _send_huge(conn: socket.socket, chunked: bool) -> None:
    if chunked:
        conn.sendall(_head(200, "application/json", [("Transfer-Encoding", "chunked")]))
        frame = f"{len(_BLOCK):x}\r\n".encode() + _BLOCK + b"\r\n"
        for _ in range(HUGE_BODY_BYTES // len(_BLOCK)):
            conn.sendall(frame)
        conn.sendall(b"0\r\n\r\n")
    else:
        conn.sendall(_head(200, "application/json", [("Content-Length", str(HUGE_BODY_BYTES))]))
        for _ in range(HUGE_BODY_BYTES // len(_BLOCK)):
            conn.sendall(_BLOCK)


class FaultServer:
    """Serves one fault on 127.0.0.1 at a free port. ``base`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, fault: str, max_stall: float = 12.0) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self.state = _State(FAULTS[fault], max_stall=max_stall)
        self._server: _TcpServer | None = None
        self._closed_port: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def fault(self) -> str:
        return self.state.fault.name

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def start(self) -> Self:
        if self.fault == "refused":
            # Bound but not listening: connections to the port are refused, and no other test can take it.
            self._closed_port = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._closed_port.bind((HOST, 0))
            self.port = self._closed_port.getsockname()[1]
            return self
        self._server = _TcpServer((HOST, 0), _Handler)
        self.port = self._server.server_address[1]
        self._server.state = self.state
        self._server.base = self.base
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"faultserver-{self.fault}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.stop.set()  # releases stalled and trickling connections
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._closed_port is not None:
            self._closed_port.close()
            self._closed_port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class GarbageDnsServer:
    """A UDP "DNS server" on 127.0.0.1 whose replies are broken; its TCP port is closed.

    ``mode`` ``"garbage"`` answers every datagram with bytes that are not a DNS message; ``"truncated"``
    answers with the query's own header flipped to a response with the TC bit set (so the client must
    retry over TCP, where nothing listens). ``queries`` counts datagrams received.
    """

    def __init__(self, mode: str = "garbage") -> None:
        if mode not in ("garbage", "truncated"):
            raise ValueError(mode)
        self.mode = mode
        self.queries = 0
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((HOST, 0))
        self._udp.settimeout(0.1)
        self.port = self._udp.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"garbagedns-{self.port}", daemon=True)

    @property
    def server(self) -> tuple[str, int]:
        return (HOST, self.port)

    def _reply(self, query: bytes) -> bytes:
        if self.mode == "garbage" or len(query) < 12:
            return b"\x00\x01not a DNS message at all\xff\xfe" * 3
        # id, flags QR=1 TC=1 RD=1 RA=1, same question count, no records; question section copied
        return query[:2] + b"\x83\x80" + query[4:6] + b"\x00\x00\x00\x00\x00\x00" + query[12:]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, client = self._udp.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.queries += 1
            try:
                self._udp.sendto(self._reply(query), client)
            except OSError:
                pass

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._udp.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
