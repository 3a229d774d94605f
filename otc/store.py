"""The local SQLite store: blocklist feed snapshots, the in-memory matching index, and the result cache.

One file, ``<data_dir>/otc.sqlite`` (WAL, so the dashboard reads while the CLI updates feeds):

- ``feeds``: one row per feed (source URL, fetched time, ETag/Last-Modified, entry count, last status) and
  the id of its current snapshot; ``entries`` holds every snapshot's rows. A new snapshot is written and
  swapped in by one transaction, so a failed or interrupted download keeps the previous one.
- :class:`FeedIndex`: built in memory from the current snapshots (a ``pytricia`` radix tree for CIDRs,
  dicts for exact addresses, domain names and URL hosts, URLs, hashes and ASNs) and rebuilt when a
  snapshot changes.
- ``result_cache``: :class:`SqliteResultCache`, the engine's :class:`otc.engine.ResultCache`.

Entry values are normalized here (:func:`normalize_ip`, :func:`normalize_domain`, :func:`canonical_url`) so
the feed side and the indicator side of a match always agree.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import re
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple

import idna
import pytricia
from publicsuffixlist import PublicSuffixList

from otc.model import HASH_KINDS, Contribution, Indicator, Kind, Location, SourceResult, Status

log = logging.getLogger(__name__)

STORE_FILENAME = "otc.sqlite"
SCHEMA_VERSION = 1
INDEX_RECHECK_SECONDS = 1.0  # how stale the in-memory index may be after another process's update

# An entry is (kind, value, count, info): kind is one of ENTRY_KINDS; count is "reported on N lists"
# (IPsum) or None; info is a short human note (malware family, SBL id, threat type) or None.
Entry = tuple[str, str, "int | None", "str | None"]
ENTRY_KINDS = ("ip", "cidr", "domain", "url", "hash", "asn")


# ---------------------------------------------------------------------------------------------------
# Normalization shared by feed import and indicator matching
# ---------------------------------------------------------------------------------------------------

def _ranges(blocks: Iterable[str], bits: int) -> tuple[list[int], list[int]]:
    """Sorted, merged [start, end] integer ranges of CIDR blocks (for bisect)."""
    spans = []
    for block in blocks:
        address, _, length = block.partition("/")
        family = socket.AF_INET6 if bits == 128 else socket.AF_INET
        start = int.from_bytes(socket.inet_pton(family, address), "big")
        size = 1 << (bits - int(length))
        spans.append((start, start + size - 1))
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [s for s, _ in merged], [e for _, e in merged]


# Address space that is never evidence of anything: private, shared (CGNAT), loopback, link-local,
# documentation, benchmarking, multicast, reserved. FireHOL level1 lists all of it as "bogons".
_NON_GLOBAL_V4 = _ranges([
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
], 32)
_NON_GLOBAL_V6 = _ranges([
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
    "3fff::/20", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
], 128)


def _overlaps(ranges: tuple[list[int], list[int]], start: int, end: int) -> bool:
    starts, ends = ranges
    i = bisect.bisect_right(starts, end) - 1
    return i >= 0 and ends[i] >= start


def _octet_table() -> list[int]:
    """Per first IPv4 octet: 0 = the whole /8 is global, 1 = all of it is not, 2 = look closer."""
    table = []
    for octet in range(256):
        start, end = octet << 24, (octet << 24) | 0xFFFFFF
        if not _overlaps(_NON_GLOBAL_V4, start, end):
            table.append(0)
        else:
            starts, ends = _NON_GLOBAL_V4
            i = bisect.bisect_right(starts, start) - 1
            table.append(1 if i >= 0 and ends[i] >= end else 2)
    return table


_V4_OCTET = _octet_table()
_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_inet_pton = socket.inet_pton


def normalize_ip(text: str) -> tuple[str, str] | None | bool:
    """``("ip", "1.2.3.4")`` / ``("cidr", "1.2.3.0/24")`` for a valid global address or network;
    ``False`` for a valid one that touches non-global space (skip it, never score it); ``None`` if invalid.

    A /32 (/128) is an address; host bits of a network are cleared (``1.2.3.4/24`` -> ``1.2.3.0/24``).
    Uses ``inet_pton`` rather than ``ipaddress``: an import handles a million of these.
    """
    if "/" not in text and ":" not in text:  # the common case: a plain IPv4 address
        try:
            packed = _inet_pton(_AF_INET, text)
        except (OSError, ValueError):
            return None
        verdict = _V4_OCTET[packed[0]]
        if verdict == 1 or (verdict == 2 and _overlaps(_NON_GLOBAL_V4, *(2 * (int.from_bytes(packed, "big"),)))):
            return False
        return "ip", text  # inet_pton accepts only the canonical dotted quad (no leading zeros)
    address, slash, length_text = text.partition("/")
    if ":" in address:
        family, bits, ranges = socket.AF_INET6, 128, _NON_GLOBAL_V6
    else:
        family, bits, ranges = socket.AF_INET, 32, _NON_GLOBAL_V4
    try:
        packed = socket.inet_pton(family, address)
    except (OSError, ValueError):
        return None
    number = int.from_bytes(packed, "big")
    if slash:
        if not length_text.isdigit() or not 0 <= int(length_text) <= bits:
            return None
        length = int(length_text)
    else:
        length = bits
    host_bits = bits - length
    start = (number >> host_bits) << host_bits
    end = start + (1 << host_bits) - 1
    if _overlaps(ranges, start, end):
        return False
    if start != number:
        packed = start.to_bytes(bits // 8, "big")
    canonical = socket.inet_ntop(family, packed)
    if length == bits:
        return "ip", canonical
    return "cidr", f"{canonical}/{length}"


def is_global_ip(text: str) -> bool:
    result = normalize_ip(text)
    return bool(result)


_DOMAIN_RE = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}")


def normalize_domain(text: str) -> str | None:
    """Lower-case A-label form without a trailing dot or ``*.`` prefix, or ``None`` if not a domain name."""
    name = text.strip().lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    if len(name) > 253 or _DOMAIN_RE.fullmatch(name) is None:
        return None
    if name.rpartition(".")[2].isdigit():  # 1.2.3.4 is an address, not a name
        return None
    return name


_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}
_SIMPLE_URL_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([A-Za-z0-9._-]+)(?::(\d+))?([/?][^#]*)?(?:#.*)?", re.S)


def canonical_url(text: str) -> str | None:
    """One spelling per URL: lower-case scheme and host, no default port, no user info, no fragment,
    a path of at least ``/``. ``None`` when the text has no ``scheme://host``."""
    text = text.strip()
    simple = _SIMPLE_URL_RE.fullmatch(text)
    if simple is not None:  # the common shape: scheme://host[:port]/path, no user info or brackets
        scheme, host, port, tail = simple.group(1, 2, 3, 4)
        scheme = scheme.lower()
        host = host.lower().rstrip(".")
        if host:
            if port and port == _DEFAULT_PORTS.get(scheme):
                port = None
            tail = tail or "/"
            if tail[0] != "/":
                tail = "/" + tail
            return f"{scheme}://{host}:{port}{tail}" if port else f"{scheme}://{host}{tail}"
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme.isalpha():
        return None
    scheme = scheme.lower()
    cut = len(rest)
    for mark in "/?#":
        position = rest.find(mark)
        if position != -1 and position < cut:
            cut = position
    authority, tail = rest[:cut], rest[cut:]
    tail = tail.split("#", 1)[0]
    if not tail.startswith("/"):
        tail = "/" + tail
    authority = authority.rpartition("@")[2].lower()
    if authority.startswith("["):
        host, _, port_part = authority[1:].partition("]")
        port = port_part[1:] if port_part.startswith(":") else ""
        host_text = f"[{host}]"
    else:
        host, _, port = authority.partition(":")
        host = host.rstrip(".")
        host_text = host
    if not host:
        return None
    if port and port == _DEFAULT_PORTS.get(scheme):
        port = ""
    if port and not port.isdigit():
        return None
    return f"{scheme}://{host_text}{':' + port if port else ''}{tail}"


def url_host(url: str) -> str:
    """The host of a :func:`canonical_url` (IPv6 without brackets)."""
    authority = url.split("/", 3)[2]
    if authority[:1] == "[":
        return authority[1:].partition("]")[0]
    return authority.partition(":")[0]


_HEX = frozenset("0123456789abcdef")


def normalize_hash(text: str) -> str | None:
    value = text.strip().lower()
    if len(value) in (32, 40, 64) and _HEX.issuperset(value):
        return value
    return None


def normalize_asn(text: Any) -> str | None:
    value = str(text).strip().upper()
    if value.startswith("AS"):
        value = value[2:]
    return value if value.isdigit() and 0 < int(value) < 2**32 else None


_PSL: PublicSuffixList | None = None
_PSL_LOCK = threading.Lock()


def _psl() -> PublicSuffixList:
    global _PSL
    if _PSL is None:
        with _PSL_LOCK:
            if _PSL is None:
                _PSL = PublicSuffixList()
    return _PSL


@lru_cache(maxsize=65536)
def is_public_suffix(name: str) -> bool:
    """Is ``name`` a public suffix (``co.uk``, ``blogspot.com``, ``workers.dev``)? Nobody registers those,
    so a listing of one is never evidence against the names under it."""
    return bool(_psl().is_public(name))


# ---------------------------------------------------------------------------------------------------
# Records and matches
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedRecord:
    """What the store knows about one feed: its current snapshot and the last check."""

    name: str
    title: str
    category: str
    weight: float
    url: str
    snapshot_id: int | None
    fetched_at: float | None  # when the snapshot's data was obtained (download time, or the file's time)
    list_date: float | None  # the list's own "last updated" time, when it states one
    checked_at: float | None  # the last request that got an HTTP answer (for the minimum interval)
    etag: str | None
    last_modified: str | None
    entry_count: int
    status: str
    message: str

    @property
    def loaded(self) -> bool:
        return self.snapshot_id is not None


class FeedMatch(NamedTuple):
    """One reason an indicator is on one feed (a named tuple: a P3 run makes tens of thousands).

    ``how``: ``exact`` (the value itself is listed), ``cidr`` (inside a listed network ``matched``),
    ``parent_domain`` (``matched`` is a listed parent), ``url_host`` (``count`` listed URLs are on host
    ``matched``). ``via_host`` is true when a URL's or e-mail's host is what matched.
    ``count`` is "reported on N lists" for ``exact``/``cidr`` (IPsum), else None.
    """

    feed: str
    how: str
    matched: str
    count: int | None = None
    info: str | None = None
    via_host: bool = False


_NO_MATCHES: tuple = ()
# module constants: a look-up here is cheaper than Kind.X on the hot path
_IPV4, _IPV6, _CIDR, _DOMAIN, _URL, _EMAIL, _ASN = (Kind.IPV4, Kind.IPV6, Kind.CIDR, Kind.DOMAIN, Kind.URL,
                                                    Kind.EMAIL, Kind.ASN)
# _match(FeedMatch, (all six fields)): a fifth of the cost of FeedMatch(...) in the hot path (no defaults!)
_match = tuple.__new__
_ADDRESS_START = frozenset("0123456789:")
_HOW_RANK = {"exact": 0, "cidr": 1, "parent_domain": 2, "url_host": 3}


class FeedIndex:
    """Every current snapshot, in memory, for matching. Built by :meth:`Store.index`; read-only after.

    Each table maps a value to a tuple of ``(feed_idx, count, info)``; entries with neither count nor
    info share one tuple per feed to save memory. ``names`` maps a domain name to ``(listings, hosted)``
    where ``hosted`` is ``((feed_idx, number of listed URLs on that host), ...)``, so a name (or each of
    its parents) costs one look-up; ``ip_hosts`` is the same ``hosted`` for URL hosts that are addresses.
    """

    def __init__(self, generation: int, records: Mapping[str, FeedRecord]) -> None:
        self.generation = generation
        self.records = dict(records)
        self.feed_names: list[str] = []
        self.ips: dict[str, tuple] = {}  # exact addresses: a dict look-up beats a walk down a deep tree
        self.v4 = pytricia.PyTricia(32)  # networks only; each value is the chain of its covering networks
        self.v6 = pytricia.PyTricia(128)
        self.names: dict[str, tuple] = {}
        self.ip_hosts: dict[str, tuple] = {}
        self.urls: dict[str, tuple] = {}
        self.hashes: dict[str, tuple] = {}
        self.asns: dict[str, tuple] = {}
        self.size = 0
        # until _finish: CIDRs (then in the trees), domains and URL hosts (then merged into names)
        self._networks: dict[str, tuple] = {}
        self._domains: dict[str, tuple] = {}
        self._hosts: dict[str, tuple] = {}
        _psl()  # load the Public Suffix List now, not in the first lookup

    @property
    def empty(self) -> bool:
        return not self.feed_names

    # -- building ---------------------------------------------------------------------------------
    def _load_feed(self, name: str, rows: Iterable[tuple[str, str, int | None, str | None]]) -> None:
        feed_idx = len(self.feed_names)
        self.feed_names.append(name)
        plain = ((feed_idx, None, None),)
        ips, networks, urls, domains = self.ips, self._networks, self.urls, self._domains
        hashes, asns = self.hashes, self.asns
        per_host: dict[str, int] = {}
        count = 0
        for kind, value, number, info in rows:
            count += 1
            item = plain if number is None and info is None else ((feed_idx, number, info),)
            if kind == "ip":
                table = ips
            elif kind == "cidr":
                table = networks
            elif kind == "url":
                table = urls
                host = url_host(value)
                per_host[host] = per_host.get(host, 0) + 1
            elif kind == "domain":
                table = domains
            elif kind == "hash":
                table = hashes
            elif kind == "asn":
                table = asns
            else:
                count -= 1
                continue
            existing = table.get(value)
            table[value] = item if existing is None else existing + item
        hosts = self._hosts
        for host, listed in per_host.items():
            hosts[host] = hosts.get(host, ()) + ((feed_idx, listed),)
        self.size += count

    def _finish(self) -> None:
        """Put the networks in the radix trees, each with the chain of every listed network covering it
        (itself first), so one tree look-up answers an address."""
        v4, v6 = self.v4, self.v6
        for value, item in self._networks.items():
            (v6 if ":" in value else v4).insert(value, item)
        for tree in (v4, v6):
            chains = {}
            for key in tree.keys():
                chain = []
                parent = key
                while parent is not None:
                    chain.append((parent, tree.get(parent)))
                    parent = tree.parent(parent)
                chains[key] = tuple(chain)
            for key, chain in chains.items():
                tree.insert(key, chain)
        self._networks = {}
        names, ip_hosts = self.names, self.ip_hosts
        for name, items in self._domains.items():
            names[name] = (items, None)
        for host, hosted in self._hosts.items():
            if host[:1] in _ADDRESS_START and normalize_ip(host) is not None:
                ip_hosts[host] = hosted
            else:
                listed = names.get(host)
                names[host] = (listed[0] if listed else None, hosted)
        self._domains, self._hosts = {}, {}

    # -- matching ---------------------------------------------------------------------------------
    # Misses are most look-ups: they allocate nothing (no list, no tuple), which keeps a bulk match of
    # 100,000 indicators clear of most garbage-collector passes over the big index.
    def _chain(self, value: str) -> tuple | None:
        """The listed networks containing ``value`` (an address or a CIDR) as ``((network, items), ...)``,
        the narrowest first; ``None`` when there is none."""
        try:
            return (self.v6 if ":" in value else self.v4).get(value)
        except (ValueError, KeyError, SystemError):  # not an address pytricia can read
            return None

    def _network_matches(self, value: str, via_host: bool, chain: tuple | None = None) -> tuple[FeedMatch, ...]:
        """Every listed network containing ``value``, the narrowest first."""
        chain = chain if chain is not None else self._chain(value)
        if chain is None:
            return _NO_MATCHES
        names = self.feed_names
        out = []
        for network, items in chain:
            for feed_idx, number, info in items:
                out.append(_match(FeedMatch, (names[feed_idx], "cidr", network, number, info, via_host)))
        return tuple(out)

    def _ip_matches(self, address: str, via_host: bool) -> tuple[FeedMatch, ...]:
        exact = self.ips.get(address)
        chain = self._chain(address)
        hosted = self.ip_hosts.get(address)
        if exact is None and hosted is None:
            return _NO_MATCHES if chain is None else self._network_matches(address, via_host, chain)
        names = self.feed_names
        out = [_match(FeedMatch, (names[i], "exact", address, number, info, via_host))
               for i, number, info in exact or ()]
        if chain is not None:
            out += self._network_matches(address, via_host, chain)
        out += [_match(FeedMatch, (names[i], "url_host", address, listed, None, via_host))
                for i, listed in hosted or ()]
        return tuple(out)

    def _domain_matches(self, name: str, via_host: bool) -> tuple[FeedMatch, ...]:
        """The name, then each parent: dictionary look-ups only; only a listed parent is checked against
        the whole Public Suffix List, private section included (``Indicator.registered_domain`` stops at
        ICANN suffixes), so ``x.blogspot.com`` never matches a listing of ``blogspot.com`` and the common
        "not listed" case stays cheap."""
        table, names = self.names, self.feed_names
        out: list[FeedMatch] | None = None
        candidate = name
        is_parent = False
        while True:
            pair = table.get(candidate)
            if pair is not None:
                listed, on_hosts = pair
                if is_parent and is_public_suffix(candidate):
                    break  # a public suffix (and everything above it) is never evidence
                if out is None:
                    out = []
                how = "parent_domain" if is_parent else "exact"
                for feed_idx, number, info in listed or ():
                    out.append(_match(FeedMatch, (names[feed_idx], how, candidate, number, info, via_host)))
                for feed_idx, count in on_hosts or ():
                    out.append(_match(FeedMatch, (names[feed_idx], "url_host", candidate, count, None, via_host)))
            dot = candidate.find(".")
            if dot < 0:
                break
            candidate = candidate[dot + 1:]
            if "." not in candidate:  # a bare TLD is never looked up
                break
            is_parent = True
        return _NO_MATCHES if out is None else tuple(out)

    def _host_matches(self, host: str, host_kind: Kind | None) -> tuple[FeedMatch, ...]:
        host = host.strip("[]").lower().rstrip(".")
        if host_kind is _IPV4 or host_kind is _IPV6 or (host_kind is None and normalize_ip(host) is not None):
            return self._ip_matches(host, True)
        return self._domain_matches(host, True)

    def _exact(self, table: Mapping[str, tuple], value: str, shown: str) -> tuple[FeedMatch, ...]:
        items = table.get(value)
        if items is None:
            return _NO_MATCHES
        names = self.feed_names
        return tuple(_match(FeedMatch, (names[i], "exact", shown, number, info, False)) for i, number, info in items)

    def match(self, indicator: Indicator) -> tuple[FeedMatch, ...]:
        """Every listing of ``indicator`` (several per feed possible; see :func:`best_per_feed`)."""
        if not self.feed_names:
            return _NO_MATCHES
        kind = indicator.kind
        value = indicator.value
        if kind is _IPV4 or kind is _IPV6:
            return self._ip_matches(value, False)
        if kind is _DOMAIN:
            return self._domain_matches(value.lower().rstrip("."), False)
        if kind is _URL:
            url = canonical_url(value)
            if url is None:
                return _NO_MATCHES
            return self._exact(self.urls, url, url) + self._host_matches(indicator.host or url_host(url),
                                                                         indicator.host_kind)
        if kind is _CIDR:
            return self._network_matches(value, False)
        if kind is _EMAIL:
            host = indicator.host or value.rpartition("@")[2]
            return self._host_matches(host, indicator.host_kind) if host else _NO_MATCHES
        if kind in HASH_KINDS:
            lowered = value.lower()
            return self._exact(self.hashes, lowered, lowered)
        if kind is _ASN:
            asn = normalize_asn(value) or ""
            return self._exact(self.asns, asn, f"AS{asn}")
        return _NO_MATCHES


def best_per_feed(matches: Iterable[FeedMatch]) -> list[FeedMatch]:
    """The strongest match of each feed (exact > in a listed range > parent domain > listed URLs on the
    host; the indicator itself before its host), in feed order of first appearance."""
    best: dict[str, FeedMatch] = {}
    for match in matches:
        current = best.get(match.feed)
        if current is None or (_HOW_RANK[match.how], match.via_host) < (_HOW_RANK[current.how], current.via_host):
            best[match.feed] = match
    return list(best.values())


# ---------------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feeds (
    name TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    weight REAL NOT NULL DEFAULT 0,
    url TEXT NOT NULL DEFAULT '',
    snapshot_id INTEGER,
    fetched_at REAL,
    list_date REAL,
    checked_at REAL,
    etag TEXT,
    last_modified TEXT,
    entry_count INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT ''
);
-- A snapshot's entries are written by one transaction, so they occupy one rowid range: reading and
-- deleting a snapshot walks that range of the table itself, and no secondary index slows an import.
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    feed TEXT NOT NULL,
    created_at REAL NOT NULL,
    entry_count INTEGER NOT NULL DEFAULT 0,
    first_rowid INTEGER,
    last_rowid INTEGER
);
CREATE TABLE IF NOT EXISTS entries (
    snapshot_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    count INTEGER,
    info TEXT
);
CREATE TABLE IF NOT EXISTS result_cache (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    fetched_at REAL,
    expires_at REAL NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (source, kind, value, fingerprint)
) WITHOUT ROWID;
"""

_SNAPSHOT_ROWS = "rowid BETWEEN ? AND ? AND snapshot_id = ?"


def _snapshot_range(conn: sqlite3.Connection, snapshot_id: int) -> tuple[int, int, int]:
    """Parameters for :data:`_SNAPSHOT_ROWS`: the snapshot's rowid range (all rows if it is unknown)."""
    row = conn.execute("SELECT first_rowid, last_rowid FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return 0, 2**63 - 1, snapshot_id
    return row[0], row[1], snapshot_id


_FEED_COLUMNS = ("name, title, category, weight, url, snapshot_id, fetched_at, list_date, checked_at, etag, "
                 "last_modified, entry_count, status, message")


class Store:
    """The SQLite file. Thread-safe: small operations share one connection under a lock; a snapshot
    import and an index build use their own connection so lookups and cache reads go on meanwhile."""

    def __init__(self, path: Path, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self._index_lock = threading.Lock()
        self._index: FeedIndex | None = None
        self._index_checked = float("-inf")
        self.cache_purged = False
        self._conn = self._connect()
        with self._lock:
            self._conn.executescript(_SCHEMA)
            self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                               (str(SCHEMA_VERSION),))
            self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0')")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a crashed process loses nothing committed; a power cut may lose the last commits
        # but never leaves the file inconsistent
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- feeds ------------------------------------------------------------------------------------
    def generation(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def feed_records(self) -> dict[str, FeedRecord]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {_FEED_COLUMNS} FROM feeds ORDER BY name").fetchall()
        return {row[0]: FeedRecord(*row) for row in rows}

    def feed_record(self, name: str) -> FeedRecord | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE name = ?", (name,)).fetchone()
        return FeedRecord(*row) if row else None

    def replace_snapshot(
        self,
        name: str,
        entries: Iterable[Entry],
        *,
        title: str,
        category: str,
        weight: float,
        url: str,
        fetched_at: float,
        list_date: float | None = None,
        checked_at: float | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        status: str = "updated",
        message: str = "",
    ) -> int:
        """Write ``entries`` as the feed's new snapshot and swap it in, all in one transaction.

        If ``entries`` raises (a parse error, an interrupted read) or the process dies, nothing changes:
        the previous snapshot stays current. Returns the number of entries written.
        """
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                snapshot_id = conn.execute("INSERT INTO snapshots(feed, created_at) VALUES (?, ?)",
                                           (name, time.time())).lastrowid
                first_rowid = conn.execute("SELECT COALESCE(MAX(rowid), 0) + 1 FROM entries").fetchone()[0]
                before = conn.total_changes
                # the id is an integer SQLite just gave us; writing it into the statement saves building a
                # five-item tuple per entry
                conn.executemany(f"INSERT INTO entries(snapshot_id, kind, value, count, info) "
                                 f"VALUES ({int(snapshot_id)}, ?, ?, ?, ?)", entries)
                counted = conn.total_changes - before
                last_rowid = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM entries").fetchone()[0]
                conn.execute("UPDATE snapshots SET entry_count = ?, first_rowid = ?, last_rowid = ? WHERE id = ?",
                             (counted, first_rowid, last_rowid, snapshot_id))
                old = conn.execute("SELECT snapshot_id FROM feeds WHERE name = ?", (name,)).fetchone()
                conn.execute(
                    """INSERT INTO feeds(name, title, category, weight, url, snapshot_id, fetched_at, list_date,
                                         checked_at, etag, last_modified, entry_count, status, message)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(name) DO UPDATE SET
                         title = excluded.title, category = excluded.category, weight = excluded.weight,
                         url = excluded.url, snapshot_id = excluded.snapshot_id, fetched_at = excluded.fetched_at,
                         list_date = excluded.list_date, checked_at = COALESCE(excluded.checked_at, checked_at),
                         etag = excluded.etag, last_modified = excluded.last_modified,
                         entry_count = excluded.entry_count, status = excluded.status, message = excluded.message""",
                    (name, title, category, weight, url, snapshot_id, fetched_at, list_date, checked_at, etag,
                     last_modified, counted, status, message),
                )
                if old and old[0] is not None:
                    conn.execute(f"DELETE FROM entries WHERE {_SNAPSHOT_ROWS}", _snapshot_range(conn, old[0]))
                    conn.execute("DELETE FROM snapshots WHERE id = ?", (old[0],))
                conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        self._index_checked = float("-inf")
        return counted

    def record_check(
        self,
        name: str,
        *,
        status: str,
        message: str = "",
        checked_at: float | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        title: str = "",
        category: str = "",
        weight: float = 0.0,
        url: str = "",
    ) -> None:
        """Note a check that did not replace the snapshot (304, or a failure). The snapshot is untouched;
        ``checked_at`` (when given) restarts the minimum interval; a new ETag/Last-Modified is kept."""
        with self._lock:
            self._conn.execute(
                """INSERT INTO feeds(name, title, category, weight, url, checked_at, etag, last_modified,
                                     status, message)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET
                     checked_at = COALESCE(excluded.checked_at, checked_at),
                     etag = COALESCE(excluded.etag, etag),
                     last_modified = COALESCE(excluded.last_modified, last_modified),
                     status = excluded.status, message = excluded.message""",
                (name, title, category, weight, url, checked_at, etag, last_modified, status, message),
            )

    def entries(self, name: str) -> list[Entry]:
        """The current snapshot's entries of one feed (for tests and exports)."""
        with self._lock:
            record = self.feed_record(name)
            if record is None or record.snapshot_id is None:
                return []
            rows = self._conn.execute(f"SELECT kind, value, count, info FROM entries WHERE {_SNAPSHOT_ROWS} "
                                      "ORDER BY rowid", _snapshot_range(self._conn, record.snapshot_id)).fetchall()
        return [tuple(row) for row in rows]

    # -- matching index -----------------------------------------------------------------------------
    def index(self) -> FeedIndex:
        """The in-memory index of every current snapshot; rebuilt when a snapshot has changed (checked
        at most once a second, or at once after an update through this object)."""
        now = self._monotonic()
        index = self._index
        if index is not None and now - self._index_checked < INDEX_RECHECK_SECONDS:
            return index
        with self._index_lock:
            index = self._index
            if index is not None and self._monotonic() - self._index_checked < INDEX_RECHECK_SECONDS:
                return index
            generation = self.generation()
            if index is None or index.generation != generation:
                index = self._build_index()
                self._index = index
            self._index_checked = self._monotonic()
            return index

    def _build_index(self) -> FeedIndex:
        conn = self._connect()
        try:
            conn.execute("BEGIN")  # one read snapshot: the generation and the rows it names agree
            generation = int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            rows = conn.execute(f"SELECT {_FEED_COLUMNS} FROM feeds WHERE snapshot_id IS NOT NULL ORDER BY name")
            records = {row[0]: FeedRecord(*row) for row in rows.fetchall()}
            index = FeedIndex(generation, records)
            for record in records.values():
                cursor = conn.execute(f"SELECT kind, value, count, info FROM entries WHERE {_SNAPSHOT_ROWS}",
                                      _snapshot_range(conn, record.snapshot_id))
                index._load_feed(record.name, cursor)
            conn.execute("COMMIT")
        finally:
            conn.close()
        index._finish()
        return index

    # -- health -----------------------------------------------------------------------------------
    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound file."""
        with self._lock:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    # -- result cache rows --------------------------------------------------------------------------
    def cache_read(self, source: str, kind: str, value: str, fingerprint: str) -> tuple[str, float] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT result, expires_at FROM result_cache WHERE source = ? AND kind = ? AND value = ? "
                "AND fingerprint = ?", (source, kind, value, fingerprint)).fetchone()
        return (row[0], row[1]) if row else None

    def cache_write(self, source: str, kind: str, value: str, fingerprint: str, status: str,
                    fetched_at: float | None, expires_at: float, payload: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO result_cache(source, kind, value, fingerprint, status, fetched_at, "
                "expires_at, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (source, kind, value, fingerprint, status, fetched_at, expires_at, payload))

    def cache_purge(self, now: float, source: str | None = None) -> int:
        """Drop expired rows (or, with ``source``, every row of that source)."""
        with self._lock:
            if source is not None:
                cursor = self._conn.execute("DELETE FROM result_cache WHERE source = ?", (source,))
            else:
                cursor = self._conn.execute("DELETE FROM result_cache WHERE expires_at <= ?", (now,))
        return cursor.rowcount


_STORES: dict[Path, Store] = {}
_STORES_LOCK = threading.Lock()


def store_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / STORE_FILENAME


def open_store(data_dir: Path | str) -> Store:
    """The process-wide :class:`Store` of ``<data_dir>/otc.sqlite`` (created if missing), one per path."""
    path = store_path(data_dir).resolve()
    with _STORES_LOCK:
        store = _STORES.get(path)
        if store is None:
            store = _STORES[path] = Store(path)
        return store


_BY_DATA_DIR: dict[str, Store] = {}  # the spelling a caller used -> its store (no realpath per lookup)


def existing_store(data_dir: Path | str) -> Store | None:
    """Like :func:`open_store`, but ``None`` instead of creating a file (a lookup must not leave one)."""
    spelled = str(data_dir)
    store = _BY_DATA_DIR.get(spelled)
    if store is not None:
        return store
    if not store_path(data_dir).exists():
        return None
    store = open_store(data_dir)
    _BY_DATA_DIR[spelled] = store
    return store


# ---------------------------------------------------------------------------------------------------
# Result cache
# ---------------------------------------------------------------------------------------------------

HOUR = 3600.0
DEFAULT_TTLS: Mapping[Status, float] = {
    Status.OK: 24 * HOUR,
    Status.NOT_FOUND: 1 * HOUR,
    Status.ERROR: 600.0,
    Status.AUTH_ERROR: 600.0,
}
# Never cached, whatever a source asks: a retry may succeed at once, and skips depend on the settings.
NEVER_CACHED = frozenset({Status.RATE_LIMITED, Status.TIMEOUT, Status.NOT_APPLICABLE, Status.SKIPPED_NO_KEY,
                          Status.SKIPPED_PRIVACY})
MAX_CACHED_RAW_CHARS = 1_000_000


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def result_to_json(result: SourceResult) -> str:
    """A :class:`SourceResult` as JSON (tuples become lists; unknown types their ``str``)."""
    raw = result.raw
    raw_text = json.dumps(raw, default=_json_default, ensure_ascii=False)
    if len(raw_text) > MAX_CACHED_RAW_CHARS:
        raw = {"note": f"raw answer of {len(raw_text):,} characters not kept in the cache"}
    data = {
        "source": result.source,
        "status": result.status.value,
        "fields": dict(result.fields),
        "raw": raw,
        "message": result.message,
        "latency_ms": result.latency_ms,
        "contributions": [dataclasses.asdict(c) for c in result.contributions],
        "location": dataclasses.asdict(result.location) if result.location is not None else None,
        "fetched_at": result.fetched_at,
        "data_date": result.data_date,
    }
    return json.dumps(data, default=_json_default, ensure_ascii=False)


def result_from_json(text: str) -> SourceResult:
    data = json.loads(text)
    location = data.get("location")
    return SourceResult(
        source=data["source"],
        status=Status(data["status"]),
        fields=data.get("fields") or {},
        raw=data.get("raw"),
        message=data.get("message") or "",
        latency_ms=data.get("latency_ms"),
        contributions=tuple(Contribution(**c) for c in data.get("contributions") or ()),
        location=Location(**location) if location else None,
        fetched_at=data.get("fetched_at"),
        cached=True,
        data_date=data.get("data_date"),
    )


class SqliteResultCache:
    """:class:`otc.engine.ResultCache` on the store: answers of network sources, with a TTL per status.

    TTLs: :data:`DEFAULT_TTLS`, overridden by a source's optional ``cache_ttl`` attribute (a mapping of
    status or status value -> seconds; 0 means "do not cache"). Statuses in :data:`NEVER_CACHED` and
    sources that do not leave the machine (``third_party = False``: offline data, feed snapshots, which
    are cheaper to ask than the cache and must reflect a feed update at once) are never cached.
    Keyed by (source, indicator kind, indicator value, configuration fingerprint).
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time,
                 ttls: Mapping[Status, float] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.ttls = dict(DEFAULT_TTLS if ttls is None else ttls)
        if not store.cache_purged:  # expired rows go once per process, not on every page rerun
            store.cache_purged = True
            self.purge_expired()

    def ttl_for(self, source: Any, status: Status) -> float:
        if status in NEVER_CACHED or not getattr(source, "third_party", True):
            return 0.0
        override = getattr(source, "cache_ttl", None) or {}
        for key in (status, status.value):
            if key in override:
                return float(override[key] or 0.0)
        return float(self.ttls.get(status, 0.0))

    def get(self, source: Any, indicator: Indicator, fingerprint: str) -> SourceResult | None:
        if not getattr(source, "third_party", True):
            return None
        row = self.store.cache_read(source.name, indicator.kind.value, indicator.value, fingerprint)
        if row is None:
            return None
        payload, expires_at = row
        if expires_at <= self.clock():
            return None
        try:
            result = result_from_json(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable cache row for %s ignored", source.name)
            return None
        if result.status in NEVER_CACHED:
            return None
        return result

    def put(self, source: Any, indicator: Indicator, fingerprint: str, result: SourceResult) -> None:
        ttl = self.ttl_for(source, result.status)
        if ttl <= 0:
            return
        now = self.clock()
        fetched_at = result.fetched_at if result.fetched_at is not None else now
        stored = dataclasses.replace(result, fetched_at=fetched_at, cached=False)
        self.store.cache_write(source.name, indicator.kind.value, indicator.value, fingerprint,
                               result.status.value, fetched_at, now + ttl, result_to_json(stored))

    def purge_expired(self) -> int:
        return self.store.cache_purge(self.clock())

    def clear(self, source: str) -> int:
        return self.store.cache_purge(self.clock(), source=source)


def result_cache(settings: Any, *, clock: Callable[[], float] = time.time) -> SqliteResultCache:
    """The persistent result cache under ``settings.data_dir`` — what ``default_enricher`` attaches."""
    return SqliteResultCache(open_store(settings.data_dir), clock=clock)
