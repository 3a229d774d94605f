"""Secrets (issue 5, group 5): a configured key reaches its service and appears nowhere else.

Every keyed source gets a distinctive dummy key (``KEY-abuseipdb-…``). Lookups then run against normal
answers (``tests/fake_upstream.py``), against every fault of the fault matrix, and against upstreams that
quote the whole request — key included — back in their error text (``echo-*`` faults: some APIs do quote a
bad key). Scanned for every key value: results (messages, fields, raw answers), the CLI's JSON and text
renderings, all log records at DEBUG (urllib3's request lines included: Shodan takes its key in the query
string), the source errors, bulk CSV/JSON exports and summaries, the audit log, the SQLite result cache and
everything else under the data directory, and the output of ``python -m otc`` run as the analyst runs it.
Each test also checks the key *was* sent to the server, so "not found" cannot mean "never there".
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from fake_upstream import BAD_DOMAIN, BAD_IP, BAD_MD5, BENIGN_IP, FakeUpstream
from fakedns import SERVFAIL, FakeDnsServer, fake_dns  # noqa: F401  (fixture)
from faultserver import MATRIX_FAULTS, FaultServer

from otc import cli
from otc.audit import AUDIT_FILE_NAME, AuditLog
from otc.bulk import run_bulk
from otc.config import Mode, Settings, load_settings
from otc.csvio import read_table
from otc.engine import Enricher
from otc.http import HttpClient
from otc.indicators import parse_indicator
from otc.model import Indicator
from otc.scoring import load_rules
from otc.sources import all_sources
from otc.sources.base import RateLimit, attempt_source, context_for
from otc.store import SqliteResultCache, open_store

TIMEOUT = 2.0
UNPACED = {s.name: RateLimit() for s in all_sources()}  # free-tier pacing is not what is tested here


def _key_value(setting: str) -> str:
    stem = setting.removeprefix("OTC_").removesuffix("_KEY").lower()
    return f"KEY-{stem}-{hashlib.sha256(setting.encode()).hexdigest()[:5]}"


KEYED = [s for s in all_sources() if s.uses_key]
KEYS = {name: _key_value(name) for s in KEYED for name in s.key_settings}  # incl. the shared OTC_ABUSECH_KEY
HTTP_SOURCES = [s for s in all_sources() if s.third_party and s.base_url]
# The key each keyed HTTP source actually uses: its first setting (all are configured).
SENT_KEYS = {s.name: KEYS[s.key_settings[0]] for s in KEYED if s.base_url}

INDICATOR_TEXTS = [BAD_IP, BENIGN_IP, "2606:4700:4700::1111", BAD_DOMAIN, f"https://{BAD_DOMAIN}/login", BAD_MD5,
                   "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"]


# One indicator of each kind some source takes: every source asked at least once, few waits per fault.
FAULT_TEXTS = [BAD_IP, BAD_DOMAIN, f"https://{BAD_DOMAIN}/login", BAD_MD5, INDICATOR_TEXTS[-1]]


def indicators(texts=INDICATOR_TEXTS) -> list[Indicator]:
    parsed = [parse_indicator(t) for t in texts]
    assert all(isinstance(p, Indicator) for p in parsed), parsed
    return parsed


def keys_in(*blobs) -> dict[str, str]:
    """``{setting: where}`` for every key value found in the given texts/bytes (case-insensitively)."""
    found: dict[str, str] = {}
    for blob in blobs:
        text = blob.decode("utf-8", "replace") if isinstance(blob, (bytes, bytearray)) else str(blob)
        lowered = text.lower()
        for setting, value in KEYS.items():
            at = lowered.find(value.lower())
            if at >= 0 and setting not in found:
                found[setting] = text[max(0, at - 80):at + len(value) + 20]
    return found


def log_text(caplog) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def rendered(enrichments, mode: Mode) -> list[str]:
    """Each enrichment as the library holds it and as the CLI prints it (JSON and text)."""
    out = []
    for enrichment in enrichments:
        out.append(repr(enrichment))
        out.append(json.dumps(cli.lookup_json(enrichment.indicator.original, enrichment, mode), default=str))
        out.append(cli.lookup_text(enrichment, mode))
    return out


def data_dir_bytes(data_dir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()]


def settings_at(base: str, data_dir: Path, dns: tuple[str, int] | None = None) -> Settings:
    environ = {s.url_setting: f"{base}/{s.name}" for s in HTTP_SOURCES}
    environ.update(KEYS)
    environ["OTC_TIMEOUT"] = str(TIMEOUT)
    environ["OTC_DATA_DIR"] = str(data_dir)
    settings = load_settings(environ=environ, secrets={})
    assert set(settings.secret_values()) == set(KEYS.values())
    return Settings(mode=Mode.ALL, urls=settings.urls, keys=settings.keys, dns_server=dns,
                    timeout=settings.timeout, data_dir=data_dir)


def make_enricher(settings: Settings) -> Enricher:
    store = open_store(settings.data_dir)
    return Enricher(settings, sources=HTTP_SOURCES, cache=SqliteResultCache(store),
                    audit=AuditLog.for_settings(settings), rate_limits=UNPACED, refresh=True)


def assert_keys_were_sent(requests_text: str) -> None:
    """The dummy keys really went out (so their absence elsewhere means something)."""
    sent = keys_in(requests_text)
    missing = {name for name, value in SENT_KEYS.items() if value not in requests_text}
    assert not missing, f"keys never sent by: {sorted(missing)} (sent: {sorted(sent)})"


# -- every fault ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", list(MATRIX_FAULTS) + ["echo-401", "echo-404", "echo-200"])
def test_no_key_in_results_logs_audit_or_cache_on_any_fault(fault, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    with FaultServer(fault, max_stall=TIMEOUT + 4) as server:
        settings = settings_at(server.base, tmp_path / "data")
        enrichments = list(make_enricher(settings).enrich_many(indicators(FAULT_TEXTS)))
        received = "\n".join(r.text() for r in server.requests)
    assert len(enrichments) == len(FAULT_TEXTS)
    if fault != "refused":
        assert_keys_were_sent(received)
    if fault.startswith("echo-"):  # the upstream quoted the keys back: the redaction had work to do
        assert keys_in(json.dumps([r.raw for e in enrichments for r in e.results], default=str)) == {}
    leaks = keys_in(*rendered(enrichments, Mode.ALL), log_text(caplog), *data_dir_bytes(tmp_path / "data"))
    assert leaks == {}, f"key values found: {leaks}"
    assert (tmp_path / "data" / AUDIT_FILE_NAME).exists()


@pytest.mark.parametrize("fault", ["echo-401", "echo-404", "echo-200", "redirect-loop", "500"])
def test_source_errors_carry_no_key(fault):
    """The errors behind failure statuses (returned to the engine with each result) hold no key either:
    an upstream quoting the key in its error text must not put it into an exception someone may log."""
    with FaultServer(fault) as server:
        settings = settings_at(server.base, Path("unused"))
        http = HttpClient()
        texts = []
        for source in HTTP_SOURCES:
            indicator = next(i for i in indicators() if source.applies_to(i))
            ctx = context_for(source, settings, http)
            result, error = attempt_source(source, indicator, ctx, load_rules().for_source(source.name))
            texts.append(result.message)
            if error is not None:
                texts += [str(error), repr(error), repr(error.args), "".join(traceback.format_exception(error))]
        received = "\n".join(r.text() for r in server.requests)
    assert_keys_were_sent(received)
    leaks = keys_in(*texts)
    assert leaks == {}, f"key values in source errors: {leaks}"


# -- normal answers, bulk runs and exports ------------------------------------------------------------------
class KeyRecordingUpstream(FakeUpstream):
    """The fake upstream, also keeping every request line and header (to prove the keys were sent)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[str] = []
        fake, handler_class = self, self.server.RequestHandlerClass
        original = handler_class.parse_request

        def parse_request(handler):
            ok = original(handler)
            with fake.lock:
                fake.received.append(f"{handler.requestline}\n{handler.headers}")
            return ok

        handler_class.parse_request = parse_request


@pytest.fixture
def upstream():
    server = KeyRecordingUpstream().start()
    try:
        yield server
    finally:
        server.stop()


def test_no_key_anywhere_after_normal_lookups(upstream, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    settings = settings_at(upstream.base, tmp_path / "data")
    enrichments = list(make_enricher(settings).enrich_many(indicators()))
    assert_keys_were_sent("\n".join(upstream.received))
    statuses = {r.source: r.status.value for e in enrichments if e.indicator.value == BAD_IP for r in e.results}
    assert statuses["abuseipdb"] == "ok" and statuses["shodan"] == "ok"  # keyed sources really answered
    leaks = keys_in(*rendered(enrichments, Mode.ALL), log_text(caplog), *data_dir_bytes(tmp_path / "data"))
    assert leaks == {}, f"key values found: {leaks}"
    audit = AuditLog.for_settings(settings).read()
    assert {e["source"] for e in audit} >= set(SENT_KEYS)


def bulk_table():
    rows = INDICATOR_TEXTS + ["10.0.0.5", "not an indicator", BAD_IP]
    return read_table(("indicator,comment\n" + "\n".join(f'"{r}",row {n}' for n, r in enumerate(rows)) + "\n").encode(),
                      filename="in.csv")


@pytest.mark.parametrize("upstream_kind", ["normal", "echo-401", "echo-404", "echo-200", "malformed-json"])
def test_bulk_exports_and_summary_carry_no_key(upstream_kind, upstream, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    if upstream_kind == "normal":
        base, server = upstream.base, None
    else:
        server = FaultServer(upstream_kind).start()
        base = server.base
    try:
        settings = settings_at(base, tmp_path / "data")
        result = run_bulk(bulk_table(), "indicator", make_enricher(settings))
        received = "\n".join(upstream.received) if server is None else "\n".join(r.text() for r in server.requests)
    finally:
        if server is not None:
            server.stop()
    assert_keys_were_sent(received)
    assert len(result.records) == len(INDICATOR_TEXTS) + 3
    exports = [result.to_csv(), result.to_json(), result.summary_line(), json.dumps(result.summary, default=str),
               repr(result.records), json.dumps(result.map_points(), default=str)]
    leaks = keys_in(*exports, *rendered(result.enrichments.values(), Mode.ALL), log_text(caplog),
                    *data_dir_bytes(tmp_path / "data"))
    assert leaks == {}, f"key values found: {leaks}"


# -- the CLI, as the analyst runs it ----------------------------------------------------------------------
def run_cli(env, cwd, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otc", *args], env=env, cwd=cwd, capture_output=True, check=False,
                          text=True, encoding="utf-8", timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("upstream_kind", ["normal", "echo-401", "echo-200", "no-answer"])
def test_cli_output_and_data_dir_carry_no_key(upstream_kind, upstream, fake_dns, subprocess_env, tmp_path):
    fake_dns.default = SERVFAIL
    server = None if upstream_kind == "normal" else FaultServer(upstream_kind, max_stall=TIMEOUT + 4).start()
    base = upstream.base if server is None else server.base
    env = dict(subprocess_env)
    env.update({s.url_setting: f"{base}/{s.name}" for s in HTTP_SOURCES})
    env.update(KEYS)
    env.update({"OTC_DNS_SERVER": fake_dns.address, "OTC_TIMEOUT": str(TIMEOUT), "OTC_MODE": "all"})
    # One indicator that goes out (more would wait out VirusTotal's 4-a-minute pace, which the CLI keeps),
    # one private address and one rejected row.
    (tmp_path / "in.csv").write_text(f"indicator\n{BAD_IP}\n10.0.0.5\nnot an indicator\n", encoding="utf-8")
    try:
        runs = [
            run_cli(env, tmp_path, "lookup", BAD_IP, "--json"),
            run_cli(env, tmp_path, "lookup", BAD_IP),
            run_cli(env, tmp_path, "lookup", BAD_MD5, "--json", "--debug"),
            run_cli(env, tmp_path, "enrich", "in.csv", "-o", "out.csv", "--json", "out.json"),
        ]
        received = "\n".join(upstream.received) if server is None else "\n".join(r.text() for r in server.requests)
    finally:
        if server is not None:
            server.stop()
    for done in runs:
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert_keys_were_sent(received)
    if upstream_kind == "normal":
        assert json.loads(runs[0].stdout)["sources"]["abuseipdb"]["status"] == "ok"
    outputs = [d.stdout for d in runs] + [d.stderr for d in runs]
    outputs += [(tmp_path / "out.csv").read_bytes(), (tmp_path / "out.json").read_bytes()]
    leaks = keys_in(*outputs, *data_dir_bytes(Path(subprocess_env["OTC_DATA_DIR"])))
    assert leaks == {}, f"key values found: {leaks}"
