"""A local DNS server for tests: answers from a table you fill per test, and logs every question.

Built on dnslib; listens on 127.0.0.1 at a free port, UDP and TCP on the same port (so dnspython's
TCP fallback on truncated answers works too). Use the ``fake_dns`` pytest fixture::

    from fakedns import NXDOMAIN, SERVFAIL, SILENT, fake_dns  # noqa: F401  (fixture import)

    def test_something(fake_dns):
        fake_dns.records[("example.com", "A")] = ["93.184.215.14"]
        fake_dns.records[("example.com", "MX")] = ["10 mail.example.com"]
        fake_dns.records[("nx.example.test", "*")] = NXDOMAIN      # any type
        fake_dns.records[("slow.example.test", "A")] = SILENT        # never answers
        settings = Settings(dns_server=fake_dns.server, timeout=2)  # ("127.0.0.1", port)
        ...
        assert fake_dns.asked() == [("example.com", "A"), ...]      # (name, type) in arrival order
        assert fake_dns.queries == []                                # nothing asked at all

The table
---------
``records[(name, type)]`` is either a list of answers in zone-file text (``"192.0.2.1"``,
``"10 mail.example.com"``, ``"ns1.example.com"``; TXT text is given unquoted, one string per record)
or one of the behaviours ``NXDOMAIN``, ``SERVFAIL``, ``REFUSED``, ``NODATA`` (NOERROR with no answer)
and ``SILENT`` (the question is logged, no reply is ever sent). Names are case-insensitive, a trailing
dot is optional; ``type`` ``"*"`` matches every type of that name. A name that has a CNAME and no
record of the asked type is answered with the CNAME and the target's records, as a recursive resolver
would. A name with records of other types answers ``NODATA``; a name not in the table at all gets
``fake_dns.default`` (``NXDOMAIN`` unless changed). ``fake_dns.udp_max_size`` truncates larger UDP
answers (TC bit) to force the client onto TCP.

In conftest.py: ``from fakedns import fake_dns  # noqa: F401`` makes the fixture available everywhere.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Iterator, Sequence

import pytest
from dnslib import AAAA, CNAME, MX, NS, PTR, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSHandler, TCPServer, UDPServer

HOST = "127.0.0.1"


class Behaviour(StrEnum):
    """What the server does instead of answering with records."""

    NXDOMAIN = "NXDOMAIN"
    SERVFAIL = "SERVFAIL"
    REFUSED = "REFUSED"
    NODATA = "NODATA"  # NOERROR, empty answer section
    SILENT = "SILENT"  # no reply at all: the client times out


NXDOMAIN = Behaviour.NXDOMAIN
SERVFAIL = Behaviour.SERVFAIL
REFUSED = Behaviour.REFUSED
NODATA = Behaviour.NODATA
SILENT = Behaviour.SILENT

_RCODES = {NXDOMAIN: RCODE.NXDOMAIN, SERVFAIL: RCODE.SERVFAIL, REFUSED: RCODE.REFUSED, NODATA: RCODE.NOERROR}


@dataclass(frozen=True)
class DnsQuery:
    """One question the server received."""

    name: str  # lower-case, no trailing dot
    type: str  # "A", "MX", "PTR", ...
    protocol: str  # "udp" or "tcp"


def _key(name: str, rtype: str) -> tuple[str, str]:
    return name.lower().rstrip("."), rtype.upper()


class RecordTable(dict):
    """``(name, type) -> answers | Behaviour``, with names and types normalized on the way in and out."""

    def __setitem__(self, key: tuple[str, str], value: Sequence[str] | Behaviour | str) -> None:
        if isinstance(value, str):
            value = Behaviour(value.upper())  # a bare string is a behaviour's name; answers are lists
        else:
            value = [str(v) for v in value]
        super().__setitem__(_key(*key), value)

    def __getitem__(self, key: tuple[str, str]):
        return super().__getitem__(_key(*key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and super().__contains__(_key(*key))

    def __delitem__(self, key: tuple[str, str]) -> None:
        super().__delitem__(_key(*key))

    def get(self, key: tuple[str, str], default=None):
        return super().get(_key(*key), default)

    def has_name(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return any(existing == name for existing, _ in self.keys())


class _Silence(DNSError):
    """Raised by the resolver to make dnslib's handler send nothing (it catches DNSError)."""


class _QuietLogger:
    """dnslib logs every packet to stdout by default; tests read the query log instead."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def _rdata(rtype: str, text: str):
    if rtype == "A":
        return A(text)
    if rtype == "AAAA":
        return AAAA(text)
    if rtype == "CNAME":
        return CNAME(text)
    if rtype == "NS":
        return NS(text)
    if rtype == "PTR":
        return PTR(text)
    if rtype == "MX":
        preference, _, exchange = text.strip().partition(" ")
        return MX(exchange.strip(), int(preference))
    if rtype == "TXT":
        data = text.encode()
        return TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])
    return RR.fromZone(f"x. 300 IN {rtype} {text}")[0].rdata


class FakeDnsServer:
    """A DNS server on 127.0.0.1 answering from :attr:`records`; see the module docstring."""

    def __init__(self, ttl: int = 300) -> None:
        self.records = RecordTable()
        self.default: Behaviour = NXDOMAIN
        self.udp_max_size: int | None = None
        self.ttl = ttl
        self.queries: list[DnsQuery] = []
        self._lock = threading.Lock()
        self._servers: list = []
        self._threads: list[threading.Thread] = []
        self.port = 0

    # -- what tests use ---------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``, the form of ``OTC_DNS_SERVER``."""
        return f"{HOST}:{self.port}"

    @property
    def server(self) -> tuple[str, int]:
        """``("127.0.0.1", PORT)``, the form of ``Settings.dns_server``."""
        return (HOST, self.port)

    def asked(self) -> list[tuple[str, str]]:
        """Every question so far as ``(name, type)``, in arrival order (retries included)."""
        with self._lock:
            return [(q.name, q.type) for q in self.queries]

    def names_asked(self) -> set[str]:
        with self._lock:
            return {q.name for q in self.queries}

    def clear_log(self) -> None:
        with self._lock:
            self.queries.clear()

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "FakeDnsServer":
        for _ in range(20):  # the UDP port is free, the same TCP port may not be: try another
            udp = UDPServer((HOST, 0), DNSHandler)
            port = udp.server_address[1]
            try:
                tcp = TCPServer((HOST, port), DNSHandler)
            except OSError:
                udp.server_close()
                continue
            break
        else:
            raise RuntimeError("no free port for UDP and TCP DNS on 127.0.0.1")
        self.port = port
        for srv in (udp, tcp):
            srv.resolver = self
            srv.logger = _QuietLogger()
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"fakedns-{port}", daemon=True)
            thread.start()
            self._servers.append(srv)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> "FakeDnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- dnslib's resolver interface --------------------------------------------------------------
    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        qname = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE.get(request.q.qtype, str(request.q.qtype))
        protocol = "tcp" if handler.server.socket_type == socket.SOCK_STREAM else "udp"
        with self._lock:
            self.queries.append(DnsQuery(qname, qtype, protocol))
        reply = request.reply()
        outcome = self._answer(qname, qtype, reply, depth=0)
        if outcome is SILENT:
            raise _Silence("silent")
        if isinstance(outcome, Behaviour):
            reply.header.rcode = _RCODES[outcome]
        if protocol == "udp" and self.udp_max_size and len(reply.pack()) > self.udp_max_size:
            # dnslib's own truncate() drops the question, which dnspython rejects: keep it.
            truncated = request.reply()
            truncated.header.tc = 1
            return truncated
        return reply

    def _answer(self, qname: str, qtype: str, reply: DNSRecord, depth: int) -> Behaviour | None:
        value = self.records.get((qname, qtype))
        if value is None:
            value = self.records.get((qname, "*"))
        if value is None and qtype != "CNAME" and depth < 8:
            alias = self.records.get((qname, "CNAME"))
            if isinstance(alias, list) and alias:
                reply.add_answer(RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=CNAME(alias[0])))
                target = alias[0].lower().rstrip(".")
                if not self.records.has_name(target):
                    return None  # the chain ends outside our table: the CNAME alone, as resolvers do
                return self._answer(target, qtype, reply, depth + 1)
        if value is None:
            return NODATA if self.records.has_name(qname) else self.default
        if isinstance(value, Behaviour):
            return value
        rtype = getattr(QTYPE, qtype)
        for text in value:
            reply.add_answer(RR(qname, rtype, ttl=self.ttl, rdata=_rdata(qtype, text)))
        return None


@pytest.fixture
def fake_dns() -> Iterator[FakeDnsServer]:
    """A running :class:`FakeDnsServer` with an empty table (every name NXDOMAIN); stopped afterwards."""
    server = FakeDnsServer().start()
    try:
        yield server
    finally:
        server.stop()
