"""Public blocklist feeds: the declarative list (``feeds.toml``), one parser per format, and updates.

``update_feeds(settings)`` downloads every enabled feed with conditional requests (ETag /
If-Modified-Since), never more often than the feed's ``min_refresh_minutes`` unless forced, and swaps
each new snapshot into the store atomically; ``update_feeds(settings, from_dir=DIR)`` imports copies of
the files for an air-gapped machine (files are matched to feeds by each feed's ``files`` globs).
``feed_status(settings)`` is what the Sources page shows.

Parsers are pure: ``parse_feed(format, text)`` -> entries, tested on recorded files.
"""

from __future__ import annotations

import csv
import email.utils
import fnmatch
import json
import re
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import requests

from otc.config import ConfigError, Mode, Settings
from otc.errors import MalformedResponse, SourceError
from otc.http import HttpClient, raise_for_common_status, rebase_url
from otc.sources.base import redact
from otc.store import (
    ENTRY_KINDS,
    Entry,
    FeedRecord,
    canonical_url,
    normalize_asn,
    normalize_domain,
    normalize_hash,
    normalize_ip,
    open_store,
    url_host,
)

FEEDS_PATH = Path(__file__).with_name("feeds.toml")
FEEDS_URL_SETTING = "OTC_FEEDS_URL"
DOWNLOAD_TIMEOUT = 120.0  # seconds for one whole feed file
UPDATE_STATUSES = ("updated", "not_modified", "skipped_recent", "imported", "failed")
CATEGORIES = ("C2", "scanner", "phishing", "Tor", "spam", "malware", "drop")
LOCAL_MODE_REFUSAL = ("local-only mode: feed downloads are refused (nothing leaves this machine); "
                      "import copies with `python -m otc feeds update --from DIR`")


# ---------------------------------------------------------------------------------------------------
# The feed list
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedDef:
    """One feed of ``feeds.toml``. ``files`` are ``(glob, format)`` pairs for ``--from DIR`` imports."""

    name: str
    title: str
    url: str
    format: str
    kinds: frozenset[str]
    category: str
    weight: float
    min_refresh_minutes: float
    licence: str
    enabled: bool = True
    needs_key: bool = False  # true: not downloaded without the key (false: sent only when configured)
    key_setting: str | None = None
    key_header: str | None = None
    files: tuple[tuple[str, str], ...] = ()
    max_megabytes: float = 64.0

    @property
    def url_setting(self) -> str:
        return f"OTC_FEED_{re.sub(r'[^A-Z0-9]', '_', self.name.upper())}_URL"

    def source_url(self, settings: Settings) -> str:
        """The download URL after ``OTC_FEED_<NAME>_URL`` (first) or ``OTC_FEEDS_URL`` rebased it."""
        override = settings.url_override(self.url_setting) or settings.url_override(FEEDS_URL_SETTING)
        return rebase_url(self.url, override)

    def format_for(self, filename: str) -> str | None:
        """The format of a file for this feed, or ``None`` if no glob matches its name."""
        lowered = filename.lower()
        for glob, fmt in self.files:
            if fnmatch.fnmatchcase(lowered, glob.lower()):
                return fmt
        return None


def _feed_from_table(name: str, table: dict[str, Any]) -> FeedDef:
    where = f"feed [{name}] in {FEEDS_PATH.name}"
    missing = [k for k in ("title", "url", "format", "kinds", "category", "weight", "min_refresh_minutes", "licence")
               if k not in table]
    if missing:
        raise ConfigError(f"{where} lacks {', '.join(missing)}")
    fmt = table["format"]
    files: list[tuple[str, str]] = []
    for item in table.get("files", []):
        if isinstance(item, str):
            files.append((item, fmt))
        elif isinstance(item, dict) and "glob" in item:
            files.append((str(item["glob"]), str(item.get("format", fmt))))
        else:
            raise ConfigError(f"{where}: each of files is a glob or {{glob, format}}")
    for _, file_format in [("", fmt), *files]:
        if file_format not in PARSERS:
            raise ConfigError(f"{where}: unknown format {file_format!r} (known: {', '.join(sorted(PARSERS))})")
    if table.get("needs_key") and not (table.get("key_setting") and table.get("key_header")):
        raise ConfigError(f"{where}: needs_key requires key_setting and key_header")
    kinds = frozenset(table["kinds"])
    unknown_kinds = kinds - {"ip", "cidr", "domain", "url", "hash", "asn"}
    if unknown_kinds:
        raise ConfigError(f"{where}: unknown kinds {sorted(unknown_kinds)}")
    return FeedDef(
        name=name, title=str(table["title"]), url=str(table["url"]), format=fmt, kinds=kinds,
        category=str(table["category"]), weight=float(table["weight"]),
        min_refresh_minutes=float(table["min_refresh_minutes"]), licence=str(table["licence"]),
        enabled=bool(table.get("enabled", True)), needs_key=bool(table.get("needs_key", False)),
        key_setting=table.get("key_setting"),
        key_header=table.get("key_header"), files=tuple(files),
        max_megabytes=float(table.get("max_megabytes", 64)),
    )


@lru_cache(maxsize=8)
def load_feeds(path: Path = FEEDS_PATH) -> tuple[FeedDef, ...]:
    """Every feed of the list, in file order."""
    with Path(path).open("rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML ({exc})") from None
    return tuple(_feed_from_table(name, table) for name, table in data.items() if isinstance(table, dict))


@lru_cache(maxsize=8)
def _definitions(path: Path) -> dict[str, FeedDef]:
    return {feed.name: feed for feed in load_feeds(path)}


def feed_definitions(path: Path = FEEDS_PATH) -> dict[str, FeedDef]:
    """The feeds of the list by name (a copy: callers may change it)."""
    return dict(_definitions(path))


# ---------------------------------------------------------------------------------------------------
# Parsers: text -> raw items; then normalization -> entries
# ---------------------------------------------------------------------------------------------------

@dataclass
class ParseReport:
    """What a parser saw besides the entries: the list's own date, its declared size, skipped lines."""

    filename: str = ""
    list_date: float | None = None
    declared: int | None = None  # "# END 6 entries", "# Number of entries: 3", Spamhaus "records"
    rows: int = 0  # data rows the parser read (compared with ``declared``)
    invalid: int = 0
    non_global: int = 0
    other_kinds: int = 0

    def note_comment(self, line: str) -> None:
        if self.list_date is None:
            self.list_date = header_date(line)
        match = _DECLARED_RE.search(line)
        if match:
            self.declared = int(match.group(1) or match.group(2))


_DECLARED_RE = re.compile(r"#\s*END\s+(\d+)\s+entries|#\s*Number of entries:\s*(\d+)", re.I)
_DATE_PATTERNS = (
    # abuse.ch: "# Last updated: 2026-03-12 10:05:11 UTC" / "(UTC)"
    (re.compile(r"Last updated:\s*(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", re.I),
     lambda s: datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)),
    # IPsum: "# Last update: Sat, 22 Aug 2026 03:00:29 +0200"; Spamhaus legacy "; Last-Modified: Thu, ..."
    (re.compile(r"Last[- ](?:update|modified):\s*(\w{3}, .+)$", re.I), email.utils.parsedate_to_datetime),
    # FireHOL: "# This File Date: Fri Nov 13 17:18:59 UTC 2015"
    (re.compile(r"This File Date\s*:\s*(.+?)\s*$", re.I),
     lambda s: datetime.strptime(s, "%a %b %d %H:%M:%S UTC %Y").replace(tzinfo=timezone.utc)),
)


def header_date(line: str) -> float | None:
    """The list's own "last updated" time from a header line, as epoch seconds, if the line has one."""
    for pattern, convert in _DATE_PATTERNS:
        match = pattern.search(line)
        if match:
            try:
                return convert(match.group(1).strip()).timestamp()
            except (ValueError, TypeError, IndexError):
                return None
    return None


RawItem = tuple[str, str, "int | None", "str | None"]  # (ip|domain|url|hash|asn, text, count, info)


def _lines(text: str, report: ParseReport, comments: str = "#;") -> Iterator[str]:
    """Non-empty, non-comment lines (comments feed the report's date and declared size)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped[0] in comments:
            report.note_comment(stripped)
            continue
        yield stripped


def parse_plain_ip(text: str, report: ParseReport) -> Iterator[RawItem]:
    """One IP or CIDR per line, ``#``/``;`` comments, anything after the first token ignored
    (FireHOL netsets, ET, Tor bulk exit list, Feodo txt, IPsum levels)."""
    for line in _lines(text, report):
        report.rows += 1
        yield "ip", line.split(None, 1)[0], None, None


def parse_ipsum(text: str, report: ParseReport) -> Iterator[RawItem]:
    """IPsum: ``IP<TAB>count`` (the count is how many lists report the address)."""
    for line in _lines(text, report):
        report.rows += 1
        parts = line.split()
        count = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        yield "ip", parts[0], count, None


def parse_ipsum_level(text: str, report: ParseReport) -> Iterator[RawItem]:
    """IPsum ``levels/N.txt``: bare IPs, each on at least N lists (N from the file name)."""
    match = re.search(r"(\d+)(?:\.txt)?$", report.filename or "")
    level = int(match.group(1)) if match else None
    for line in _lines(text, report):
        report.rows += 1
        yield "ip", line.split(None, 1)[0], level, None


def _ndjson(text: str, report: ParseReport) -> Iterator[dict]:
    """Spamhaus NDJSON: objects, one per line, then a ``{"type": "metadata", "records": n}`` line whose
    count must equal the rows (a missing metadata line means the download was cut short)."""
    saw_metadata = False
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise MalformedResponse(f"line {number} is not JSON (expected one object per line)") from None
        if not isinstance(item, dict):
            raise MalformedResponse(f"line {number} is not a JSON object")
        if item.get("type") == "metadata":
            saw_metadata = True
            if isinstance(item.get("records"), int):
                report.declared = item["records"]
            if isinstance(item.get("timestamp"), (int, float)):
                report.list_date = float(item["timestamp"])
            continue
        report.rows += 1
        yield item
    if not saw_metadata:
        raise MalformedResponse("no trailing metadata line: the download is incomplete")


def parse_spamhaus_drop_json(text: str, report: ParseReport) -> Iterator[RawItem]:
    for item in _ndjson(text, report):
        yield "ip", str(item.get("cidr", "")), None, item.get("sblid")


def parse_spamhaus_asndrop_json(text: str, report: ParseReport) -> Iterator[RawItem]:
    for item in _ndjson(text, report):
        name = item.get("asname") or item.get("domain") or ""
        country = item.get("cc")
        info = f"{name} ({country})" if name and country else name or None
        yield "asn", str(item.get("asn", "")), None, info


def parse_spamhaus_drop_legacy(text: str, report: ParseReport) -> Iterator[RawItem]:
    """``drop.txt``: ``; `` comment header, then ``CIDR ; SBLnnnnn``."""
    for line in _lines(text, report):
        report.rows += 1
        network, _, sbl = line.partition(";")
        yield "ip", network.strip(), None, sbl.strip() or None


def _commented_csv(text: str, report: ParseReport, header_key: str) -> Iterator[dict[str, str]]:
    """abuse.ch CSV: ``#`` banner, a header (commented or not) naming ``header_key``, quoted rows
    (ThreatFox separates them with ", ", hence ``skipinitialspace``)."""
    header: list[str] | None = None

    def data_lines() -> Iterator[str]:
        nonlocal header
        for line in text.splitlines():
            stripped = line.strip()
            if not stripped:
                continue
            if stripped[0] == "#":
                body = stripped.lstrip("#").strip()
                if header is None and header_key in body:
                    header = next(csv.reader([body], skipinitialspace=True))
                else:
                    report.note_comment(stripped)
                continue
            yield stripped

    for row in csv.reader(data_lines(), skipinitialspace=True):
        if header is None:
            if header_key in row:
                header = row
                continue
            raise MalformedResponse(f"no header row with {header_key!r} before the data")
        report.rows += 1
        yield dict(zip(header, row))


def parse_feodo_csv(text: str, report: ParseReport) -> Iterator[RawItem]:
    for row in _commented_csv(text, report, "dst_ip"):
        yield "ip", row.get("dst_ip", ""), None, _feodo_info(row.get("malware"), row.get("c2_status"),
                                                             row.get("last_online"))


def _feodo_info(malware: Any, status: Any, last_online: Any) -> str | None:
    parts = [str(malware)] if malware else []
    if status:
        parts.append(f"C2 {status}" + (f", last online {last_online}" if last_online else ""))
    return ", ".join(parts) or None


def _json_document(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise MalformedResponse("not valid JSON (truncated download?)") from None


def parse_feodo_json(text: str, report: ParseReport) -> Iterator[RawItem]:
    data = _json_document(text)
    if not isinstance(data, list):
        raise MalformedResponse("Feodo JSON must be an array")
    for item in data:
        if not isinstance(item, dict):
            report.invalid += 1
            continue
        report.rows += 1
        yield "ip", str(item.get("ip_address", "")), None, _feodo_info(item.get("malware"), item.get("status"),
                                                                     item.get("last_online"))


def parse_tor_exit_addresses(text: str, report: ParseReport) -> Iterator[RawItem]:
    """``exit-addresses``: records of ExitNode / Published / LastStatus / ``ExitAddress <ip> <date>``."""
    for line in _lines(text, report):
        if line.startswith("ExitAddress "):
            report.rows += 1
            yield "ip", line.split()[1], None, None


def parse_plain_url(text: str, report: ParseReport) -> Iterator[RawItem]:
    """One URL per line (OpenPhish, URLhaus text exports); ``#`` comments."""
    for line in _lines(text, report, comments="#"):
        report.rows += 1
        yield "url", line, None, None


def parse_urlhaus_csv(text: str, report: ParseReport) -> Iterator[RawItem]:
    for row in _commented_csv(text, report, "url_status"):
        threat, tags, status = row.get("threat"), row.get("tags"), row.get("url_status")
        info = threat or ""
        if tags and tags != "None":
            info += f" ({tags})"
        if status:
            info += f", {status}"
        yield "url", row.get("url", ""), None, info.strip(", ") or None


_THREATFOX_KINDS = {"ip:port": "ip", "domain": "domain", "url": "url", "md5_hash": "hash",
                    "sha1_hash": "hash", "sha256_hash": "hash"}


def parse_threatfox_csv(text: str, report: ParseReport) -> Iterator[RawItem]:
    for row in _commented_csv(text, report, "ioc_value"):
        kind = _THREATFOX_KINDS.get(row.get("ioc_type", ""))
        value = row.get("ioc_value", "")
        if kind is None:
            report.other_kinds += 1
            continue
        if kind == "ip":  # "1.2.3.4:443" or "[2001:db8::1]:443"
            host, _, port = value.rpartition(":")
            value = host.strip("[]") if port.isdigit() and host else value
        malware = row.get("malware_printable") or row.get("fk_malware") or ""
        details = [d for d in (row.get("threat_type"), f"confidence {row['confidence_level']}"
                               if row.get("confidence_level") else "") if d]
        info = f"{malware} ({', '.join(details)})" if details else malware
        yield kind, value, None, info or None


def parse_plain_domain(text: str, report: ParseReport) -> Iterator[RawItem]:
    for line in _lines(text, report):
        report.rows += 1
        yield "domain", line.split(None, 1)[0], None, None


def parse_hosts(text: str, report: ParseReport) -> Iterator[RawItem]:
    """A hosts file: ``0.0.0.0 name`` / ``127.0.0.1 name`` lines; the names are the entries."""
    for line in _lines(text, report, comments="#"):
        parts = line.split()
        if len(parts) < 2:
            report.invalid += 1
            continue
        for name in parts[1:]:
            if name.startswith("#"):
                break
            if name in ("localhost", "localhost.localdomain", "broadcasthost", "local"):
                continue
            report.rows += 1
            yield "domain", name, None, None


def parse_phishtank_csv(text: str, report: ParseReport) -> Iterator[RawItem]:
    reader = csv.DictReader(text.splitlines())
    if "url" not in (reader.fieldnames or []):
        raise MalformedResponse("PhishTank CSV has no 'url' column")
    for row in reader:
        report.rows += 1
        target = row.get("target")
        yield "url", row.get("url") or "", None, f"target {target}" if target and target != "Other" else None


def parse_phishtank_json(text: str, report: ParseReport) -> Iterator[RawItem]:
    data = _json_document(text)
    if not isinstance(data, list):
        raise MalformedResponse("PhishTank JSON must be an array")
    for item in data:
        if isinstance(item, dict):
            report.rows += 1
            target = item.get("target")
            yield "url", str(item.get("url") or ""), None, f"target {target}" if target and target != "Other" else None


def parse_phishtank_checkurl(text: str, report: ParseReport) -> Iterator[RawItem]:
    """A saved ``checkurl`` answer: its URL is an entry when PhishTank has it as a valid phish."""
    data = _json_document(text)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise MalformedResponse("PhishTank checkurl answer has no 'results' object")
    report.rows += 1
    if results.get("in_database") and results.get("valid", results.get("verified")):
        yield "url", str(results.get("url") or ""), None, None
    else:
        report.other_kinds += 1


PARSERS: dict[str, Callable[[str, ParseReport], Iterator[RawItem]]] = {
    "plain_ip": parse_plain_ip,
    "netset": parse_plain_ip,
    "et_plain": parse_plain_ip,
    "tor_bulk": parse_plain_ip,
    "feodo_txt": parse_plain_ip,
    "ipsum": parse_ipsum,
    "ipsum_level": parse_ipsum_level,
    "spamhaus_drop_json": parse_spamhaus_drop_json,
    "spamhaus_asndrop_json": parse_spamhaus_asndrop_json,
    "spamhaus_drop_legacy": parse_spamhaus_drop_legacy,
    "feodo_csv": parse_feodo_csv,
    "feodo_json": parse_feodo_json,
    "tor_exit_addresses": parse_tor_exit_addresses,
    "openphish": parse_plain_url,
    "plain_url": parse_plain_url,
    "urlhaus_text": parse_plain_url,
    "urlhaus_csv": parse_urlhaus_csv,
    "threatfox_csv": parse_threatfox_csv,
    "plain_domain": parse_plain_domain,
    "hosts": parse_hosts,
    "phishtank_csv": parse_phishtank_csv,
    "phishtank_json": parse_phishtank_json,
    "phishtank_checkurl": parse_phishtank_checkurl,
}


_MISSING = object()


class EntrySet:
    """Normalized, de-duplicated entries of one snapshot, possibly from several files.

    One table per kind: value -> ``(count, info)``, or ``None`` for a plain entry (most of them: no tuple
    per entry on a million-line import). A duplicate keeps the higher count and the first note.
    """

    def __init__(self, kinds: Iterable[str] | None = None) -> None:
        kinds = set(kinds) if kinds is not None else set(ENTRY_KINDS)
        if kinds & {"ip", "cidr"}:
            kinds |= {"ip", "cidr"}  # a /32 in a CIDR list is an address; an address list may hold ranges
        self.kinds = frozenset(kinds)
        self._tables: dict[str, dict[str, tuple[int | None, str | None] | None]] = {k: {} for k in ENTRY_KINDS}

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values())

    def add_items(self, items: Iterable[RawItem], report: ParseReport) -> None:
        tables, kinds = self._tables, self.kinds
        for hint, text, count, info in items:
            text = text.strip()
            if hint == "ip":
                normalized = normalize_ip(text)
                if normalized is None:
                    report.invalid += 1
                    continue
                if normalized is False:
                    report.non_global += 1
                    continue
                kind, value = normalized
            elif hint == "url":
                kind, value = "url", canonical_url(text)
                if value is not None:
                    host = url_host(value)
                    # http://192.168.1.1/... is nobody else's evidence
                    if host[:1] in _ADDRESS_START and normalize_ip(host) is False:
                        report.non_global += 1
                        continue
            elif hint == "domain":
                kind, value = "domain", normalize_domain(text)
            elif hint == "hash":
                kind, value = "hash", normalize_hash(text)
            else:
                kind, value = "asn", normalize_asn(text)
            if value is None:
                report.invalid += 1
                continue
            if kind not in kinds:
                report.other_kinds += 1
                continue
            table = tables[kind]
            existing = table.get(value, _MISSING)
            if existing is _MISSING:
                table[value] = None if count is None and info is None else (count, info)
            elif count is not None or info:
                old_count, old_info = existing or (None, None)
                best = count if old_count is None or (count is not None and count > old_count) else old_count
                table[value] = (best, old_info or info)

    def entries(self) -> Iterator[Entry]:
        for kind, table in self._tables.items():
            for value, extra in table.items():
                yield (kind, value, None, None) if extra is None else (kind, value, *extra)


_ADDRESS_START = frozenset("0123456789:")  # url_host strips IPv6 brackets: "2001:db8::1", "::1"


def parse_feed(fmt: str, text: str, *, filename: str = "", kinds: Iterable[str] | None = None,
               into: EntrySet | None = None) -> tuple[EntrySet, ParseReport]:
    """Parse one feed file. Raises :class:`MalformedResponse` when the file is not that format, is cut
    short (fewer rows than its declared count), or has data lines none of which is an entry."""
    parser = PARSERS.get(fmt)
    if parser is None:
        raise MalformedResponse(f"unknown feed format {fmt!r}")
    text = text.lstrip("\ufeff")
    if text[:4096].lstrip()[:1] == "<":
        raise MalformedResponse(f"answer is an HTML page, not a {fmt} list")
    report = ParseReport(filename=filename)
    entries = into if into is not None else EntrySet(kinds)
    before = len(entries)
    entries.add_items(parser(text, report), report)
    if report.declared is not None and report.declared != report.rows:
        raise MalformedResponse(f"the list says {report.declared} entries but {report.rows} arrived "
                                "(truncated download?)")
    added_or_skipped = len(entries) - before + report.non_global + report.other_kinds
    if report.rows and not added_or_skipped and report.invalid >= report.rows:
        raise MalformedResponse(f"none of the {report.rows} lines is a valid entry for format {fmt}")
    return entries, report


def _describe(report: ParseReport) -> str:
    notes = []
    if report.non_global:
        notes.append(f"{report.non_global} non-global (private/reserved) entries skipped")
    if report.invalid:
        notes.append(f"{report.invalid} invalid lines skipped")
    if report.other_kinds:
        notes.append(f"{report.other_kinds} entries of other kinds skipped")
    return "; ".join(notes)


# ---------------------------------------------------------------------------------------------------
# Updates
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedUpdate:
    """The outcome of updating one feed: ``status`` is one of :data:`UPDATE_STATUSES`."""

    name: str
    status: str
    entries: int
    message: str = ""


def match_files(directory: Path, feeds: Sequence[FeedDef]) -> tuple[dict[str, list[tuple[Path, str]]], list[Path]]:
    """Which files of ``directory`` belong to which feed (first matching feed wins), and the files no feed
    claims. Not recursive; hidden files are ignored."""
    matched: dict[str, list[tuple[Path, str]]] = {}
    unmatched: list[Path] = []
    for path in sorted(Path(directory).iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        for feed in feeds:
            fmt = feed.format_for(path.name)
            if fmt is not None:
                matched.setdefault(feed.name, []).append((path, fmt))
                break
        else:
            unmatched.append(path)
    return matched, unmatched


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _import_feed(feed: FeedDef, files: list[tuple[Path, str]], store, clock: Callable[[], float]) -> FeedUpdate:
    entries = EntrySet(feed.kinds)
    notes: list[str] = []
    list_dates: list[float] = []
    file_times: list[float] = []
    for path, fmt in files:
        try:
            _, report = parse_feed(fmt, _read_text(path), filename=path.name, into=entries)
        except MalformedResponse as exc:
            return _failed(store, feed, f"{path.name}: {exc}; previous snapshot kept", checked_at=None)
        except OSError as exc:
            return _failed(store, feed, f"{path.name} could not be read ({exc.strerror}); previous snapshot kept",
                           checked_at=None)
        if report.list_date is not None:
            list_dates.append(report.list_date)
        file_times.append(path.stat().st_mtime)
        described = _describe(report)
        notes.append(f"{path.name}" + (f" ({described})" if described else ""))
    # Several files: the age shown is the oldest one's, so a match is never claimed fresher than it is.
    fetched_at = min(file_times) if file_times else clock()
    message = "imported from " + ", ".join(notes)
    count = store.replace_snapshot(
        feed.name, entries.entries(), title=feed.title, category=feed.category, weight=feed.weight,
        url=feed.url, fetched_at=fetched_at, list_date=min(list_dates) if list_dates else None,
        status="imported", message=message,
    )
    return FeedUpdate(feed.name, "imported", count, message)


def _failed(store, feed: FeedDef, message: str, *, checked_at: float | None) -> FeedUpdate:
    store.record_check(feed.name, status="failed", message=message, checked_at=checked_at, title=feed.title,
                       category=feed.category, weight=feed.weight, url=feed.url)
    return FeedUpdate(feed.name, "failed", 0, message)


def _download_feed(feed: FeedDef, settings: Settings, store, session: requests.Session, *, force: bool,
                   clock: Callable[[], float]) -> FeedUpdate:
    record: FeedRecord | None = store.feed_record(feed.name)
    now = clock()
    if not force and record is not None and record.checked_at is not None:
        waited = now - record.checked_at
        if waited < feed.min_refresh_minutes * 60.0:
            return FeedUpdate(
                feed.name, "skipped_recent", record.entry_count,
                f"checked {age_text(waited)}; {feed.title} is asked at most every "
                f"{feed.min_refresh_minutes:g} min (use --force to ask anyway)",
            )
    url = feed.source_url(settings)
    headers = {"Accept": "*/*"}
    if record is not None and record.loaded:
        if record.etag:
            headers["If-None-Match"] = record.etag
        if record.last_modified:
            headers["If-Modified-Since"] = record.last_modified
    if feed.key_setting and feed.key_header:
        key = settings.key([feed.key_setting])
        if key is not None:
            headers[feed.key_header] = key.reveal()
        elif feed.needs_key:
            return FeedUpdate(feed.name, "failed", record.entry_count if record else 0,
                              f"no key configured (set {feed.key_setting}); not downloaded")
    client = HttpClient(session, max_bytes=int(feed.max_megabytes * 1024 * 1024))
    secrets = settings.secret_values()
    try:
        response = client.get(url, timeout=max(DOWNLOAD_TIMEOUT, settings.timeout), headers=headers)
    except SourceError as exc:  # nothing answered: the interval does not restart, a retry may work
        return _failed(store, feed, redact(f"{exc}; previous snapshot kept", secrets), checked_at=None)
    checked_at = clock()
    etag = response.headers.get("ETag") or response.headers.get("etag")
    last_modified = response.headers.get("Last-Modified") or response.headers.get("last-modified")
    if response.status == 304 and record is not None and record.loaded:
        message = f"not modified since {format_time(record.fetched_at)}"
        store.record_check(feed.name, status="not_modified", message=message, checked_at=checked_at,
                           etag=etag, last_modified=last_modified)
        return FeedUpdate(feed.name, "not_modified", record.entry_count, message)
    try:
        if response.status == 509:  # PhishTank's "Bandwidth Limit Exceeded"
            raise SourceError(f"{feed.title} bandwidth limit exceeded (HTTP 509)")
        raise_for_common_status(response, feed.title)
        if response.status != 200:
            raise SourceError(f"{feed.title} answered HTTP {response.status}")
        text = response.body.decode("utf-8", errors="replace")
        entries, report = parse_feed(feed.format, text, filename=url.rstrip("/").rsplit("/", 1)[-1],
                                     kinds=feed.kinds)
    except SourceError as exc:
        return _failed(store, feed, redact(f"{exc}; previous snapshot kept", secrets), checked_at=checked_at)
    described = _describe(report)
    message = f"downloaded {len(response.body):,} bytes" + (f"; {described}" if described else "")
    count = store.replace_snapshot(
        feed.name, entries.entries(), title=feed.title, category=feed.category, weight=feed.weight, url=url,
        fetched_at=checked_at, list_date=report.list_date, checked_at=checked_at, etag=etag,
        last_modified=last_modified, status="updated", message=message,
    )
    return FeedUpdate(feed.name, "updated", count, message)


def update_feeds(
    settings: Settings,
    *,
    from_dir: Path | None = None,
    force: bool = False,
    session: requests.Session | None = None,
    names: Iterable[str] | None = None,
    progress: Callable[[FeedUpdate], None] | None = None,
    feeds: Sequence[FeedDef] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[FeedUpdate]:
    """Update the feed snapshots in ``<settings.data_dir>/otc.sqlite``; one :class:`FeedUpdate` per feed.

    Without ``from_dir``: download every enabled feed (or those in ``names``, enabled or not). In
    local-only mode downloads are refused (every feed ``failed`` with the reason). With ``from_dir``:
    import the files there that match a feed's ``files`` globs (disabled feeds too: giving the file
    is the choice); feeds without a file are not mentioned. ``progress`` is called as each feed finishes.
    """
    catalog = tuple(feeds) if feeds is not None else load_feeds()
    wanted = set(names) if names is not None else None
    if wanted is not None:
        unknown = wanted - {f.name for f in catalog}
        if unknown:
            raise ConfigError(f"no feed named {', '.join(sorted(unknown))} (see {FEEDS_PATH.name})")
    selected = [f for f in catalog if (f.name in wanted if wanted is not None else True)]
    results: list[FeedUpdate] = []

    def done(update: FeedUpdate) -> None:
        results.append(update)
        if progress is not None:
            progress(update)

    if from_dir is not None:
        directory = Path(from_dir)
        if not directory.is_dir():
            raise ConfigError(f"{directory} is not a folder")
        matched, _ = match_files(directory, catalog)
        store = open_store(settings.data_dir)
        for feed in selected:
            if feed.name in matched:
                done(_import_feed(feed, matched[feed.name], store, clock))
        return results

    if wanted is None:
        selected = [f for f in selected if f.enabled]
    if settings.mode is Mode.LOCAL:
        for feed in selected:
            done(FeedUpdate(feed.name, "failed", 0, LOCAL_MODE_REFUSAL))
        return results
    store = open_store(settings.data_dir)
    session = session or requests.Session()
    for feed in selected:
        done(_download_feed(feed, settings, store, session, force=force, clock=clock))
    return results


# ---------------------------------------------------------------------------------------------------
# Status for the Sources page
# ---------------------------------------------------------------------------------------------------

def age_text(seconds: float | None) -> str:
    """``"just now"``, ``"12 min ago"``, ``"3 h ago"``, ``"5 d ago"``, ``"2 y ago"``; ``"never"`` for None."""
    if seconds is None:
        return "never"
    if seconds < 60:
        return "just now"
    minutes = seconds / 60
    if minutes < 90:
        return f"{int(minutes)} min ago"
    hours = minutes / 60
    if hours < 48:
        return f"{int(hours)} h ago"
    days = hours / 24
    if days < 730:
        return f"{int(days)} d ago"
    return f"{int(days // 365)} y ago"


def format_time(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def feed_status(settings: Settings, *, clock: Callable[[], float] = time.time,
                feeds: Sequence[FeedDef] | None = None) -> list[dict]:
    """One row per feed (enabled, or loaded): what the Sources page shows. Reads the store only if it
    exists (showing the page must not create files)."""
    from otc.store import existing_store

    catalog = tuple(feeds) if feeds is not None else load_feeds()
    store = existing_store(settings.data_dir)
    records = store.feed_records() if store is not None else {}
    now = clock()
    rows = []
    for feed in catalog:
        record = records.get(feed.name)
        if not feed.enabled and (record is None or not record.loaded):
            continue
        loaded = record is not None and record.loaded
        fetched_at = record.fetched_at if loaded else None
        rows.append({
            "name": feed.name,
            "title": feed.title,
            "category": feed.category,
            "kinds": sorted(feed.kinds),
            "weight": feed.weight,
            "enabled": feed.enabled,
            "fetched_at": fetched_at,
            "fetched": format_time(fetched_at),
            "age": age_text(now - fetched_at) if fetched_at is not None else "never",
            "list_date": format_time(record.list_date) if loaded and record.list_date else None,
            "entries": record.entry_count if loaded else 0,
            "url": feed.source_url(settings),
            "licence": feed.licence,
            "min_refresh_minutes": feed.min_refresh_minutes,
            "status": record.status if record is not None else "not loaded",
            "message": record.message if record is not None else "",
        })
    return rows
