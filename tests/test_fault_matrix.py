"""Fault matrix (issue 5, group 1): every network source against every way an upstream can misbehave.

Built generically: every registered third-party source with a ``base_url`` is pointed at
``tests/faultserver.py`` (which answers every path and method with one fault) with a dummy key and an
indicator it handles, and run through the real :class:`otc.engine.Enricher` beside a healthy local source.
A source added to ``otc/sources/`` is in the matrix without touching this file. Each case asserts the
status, the time (settings timeout + slack), that the healthy source's result is intact, that no exception
escaped and no source crashed (an unexpected exception would also read "error" — the message tells them
apart), and for the 50 MB bodies that memory stayed bounded (tracemalloc peak).

Resolver-based sources (no ``base_url``: DNS, DNS blocklists) get the DNS fault set instead.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import pytest
from fakedns import REFUSED, SERVFAIL, SILENT, FakeDnsServer, fake_dns  # noqa: F401  (fixture)
from faultserver import MATRIX_FAULTS, FaultServer, GarbageDnsServer

from otc.config import Mode, Secret, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, SourceResult, Status
from otc.sources import all_sources
from otc.sources.base import Source

TIMEOUT = 2.0  # settings timeout: each source's budget for one indicator
SLACK = 1.5  # thread start-up, two shared CPU cores; a fault that doubles the budget still fails
MEMORY_BOUND = 20 * 1024 * 1024  # tracemalloc peak allowed while a 50 MB body is refused (the cap is 5 MB)

# One indicator per kind, built directly (not parsed) so a parser change cannot move the matrix.
SAMPLES: dict[Kind, Indicator] = {
    Kind.IPV4: Indicator(Kind.IPV4, "8.8.4.4", "8.8.4.4", "8.8.4.4"),
    Kind.DOMAIN: Indicator(Kind.DOMAIN, "example.com", "example.com", "example.com", registered_domain="example.com"),
    Kind.URL: Indicator(Kind.URL, "https://example.com/login", "https://example.com/login", "https://example.com/login",
                        host="example.com", host_kind=Kind.DOMAIN, registered_domain="example.com"),
    Kind.MD5: Indicator(Kind.MD5, "44d88612fea8a8f36de82e1278abb02f", "44d88612fea8a8f36de82e1278abb02f",
                        "44d88612fea8a8f36de82e1278abb02f", scope=Scope.NOT_APPLICABLE),
    Kind.SHA256: Indicator(Kind.SHA256, "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                           "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                           "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
                           scope=Scope.NOT_APPLICABLE),
    Kind.IPV6: Indicator(Kind.IPV6, "2001:4860:4860::8844", "2001:4860:4860::8844", "2001:4860:4860::8844"),
    Kind.SHA1: Indicator(Kind.SHA1, "3395856ce81f2b7382dee72602f798b642f14140", "3395856ce81f2b7382dee72602f798b642f14140",
                         "3395856ce81f2b7382dee72602f798b642f14140", scope=Scope.NOT_APPLICABLE),
}


def sample_for(source: Source) -> Indicator:
    for indicator in SAMPLES.values():
        if source.applies_to(indicator):
            return indicator
    raise AssertionError(f"no sample indicator for {source.name} (kinds {sorted(source.kinds)}): add one")


def http_sources() -> list[Source]:
    return [s for s in all_sources() if s.third_party and s.base_url]


def resolver_sources() -> list[Source]:
    """Third-party sources without a URL ask through the configured DNS resolver."""
    return [s for s in all_sources() if s.third_party and not s.base_url]


def dummy_keys(sources) -> dict[str, Secret]:
    return {name: Secret(f"KEY-{name.lower()}-7f3c9") for s in sources for name in s.key_settings}


class HealthyLocalSource(Source):
    """A local source that always answers: its result must come through whatever the other source does."""

    name = "healthy_local"
    title = "Healthy local"
    kinds = frozenset(Kind)
    third_party = False

    def lookup(self, indicator: Indicator, ctx) -> SourceResult:
        return self.result(Status.OK, {"echo": indicator.value})


HEALTHY = HealthyLocalSource()

# -- what each fault must become ---------------------------------------------------------------------
EXPECTED = {
    "refused": Status.ERROR,
    "no-answer": Status.TIMEOUT,
    "trickle": Status.TIMEOUT,
    "trickle-body": Status.TIMEOUT,
    "429-retry-after": Status.RATE_LIMITED,
    "429": Status.RATE_LIMITED,
    "500": Status.ERROR,
    "502": Status.ERROR,
    "503": Status.ERROR,
    "401": Status.AUTH_ERROR,
    "403": Status.AUTH_ERROR,
    "html-200": Status.ERROR,
    "malformed-json": Status.ERROR,
    "truncated-json": Status.ERROR,
    "broken-off": Status.ERROR,
    # Wrong shapes are errors unless a row of SHAPE_ANSWERS says otherwise: garbage is never "nothing found".
    "shape-list": Status.ERROR,
    "shape-nulls": Status.ERROR,
    "shape-empty": Status.ERROR,
    "invalid-utf8": Status.ERROR,
    "huge": Status.ERROR,
    "huge-chunked": Status.ERROR,
    "redirect-loop": Status.ERROR,
}
assert set(EXPECTED) == set(MATRIX_FAULTS)

# (source, shape fault) -> (status, exact fields) where a wrong-shaped answer is legitimately an answer.
# - internetdb / shodan, every field null: the object carries the service's own keys (ports, hostnames,
#   ip_str ...), each saying "nothing"; null lists read as empty ones. It is that service's answer with no
#   findings: ok with empty fields and no score line. (Their {} has none of the keys: not an answer -> error.)
# - every other source: nulls where its record must be (data, attributes, query_status, pulse_info,
#   noise/riot, handle) leave nothing to report, so error.
SHAPE_ANSWERS: dict[tuple[str, str], tuple[Status, dict[str, Any]]] = {
    ("internetdb", "shape-nulls"): (Status.OK, {"ports": [], "hostnames": [], "tags": [], "vulns": [], "cpes": []}),
    ("shodan", "shape-nulls"): (Status.OK, {
        "org": None, "isp": None, "asn": None, "country_code": None, "city": None, "os": None, "hostnames": [],
        "domains": [], "ports": [], "services": [], "tags": [], "vulns": [], "last_update": None}),
}


# Keyless services whose 401/403 is a block, not a rejected key: "check your key" would send the analyst
# after a key that does not exist (crt.sh and RDAP servers block abusive clients this way). InternetDB keeps
# the common auth_error, as tests/test_internetdb.py decides.
BLOCK_NOT_KEY = frozenset({"crtsh", "rdap"})


def expected_status(source: Source, fault: str) -> tuple[Status, dict[str, Any] | None]:
    if (source.name, fault) in SHAPE_ANSWERS:
        return SHAPE_ANSWERS[(source.name, fault)]
    if fault in ("401", "403") and source.name in BLOCK_NOT_KEY:
        return Status.ERROR, None
    return EXPECTED[fault], None


def matrix_cases():
    for source in http_sources():
        for fault in MATRIX_FAULTS:
            yield pytest.param(source, fault, id=f"{source.name}-{fault}")


def settings_for(source: Source, base: str, **extra) -> Settings:
    return Settings(mode=Mode.ALL, urls={source.url_setting: f"{base}/{source.name}"},
                    keys=dummy_keys([source]), timeout=TIMEOUT, **extra)


def assert_survived(result: SourceResult, healthy: SourceResult | None, indicator: Indicator, elapsed: float,
                    caplog) -> None:
    assert elapsed < TIMEOUT + SLACK, f"took {elapsed:.1f} s; the budget is {TIMEOUT:g} s (+{SLACK:g} s slack)"
    assert healthy is not None and healthy.status is Status.OK, healthy
    assert dict(healthy.fields) == {"echo": indicator.value}
    if result.status is not Status.OK:
        assert result.message.strip(), "a failure must say what happened"
    assert "failed unexpectedly" not in result.message, "the source crashed instead of recognising the fault"
    crashed = [r for r in caplog.records if r.name.startswith("otc") and r.exc_info]
    assert not crashed, f"traceback logged: {[r.getMessage() for r in crashed]}"


@pytest.mark.parametrize(("source", "fault"), list(matrix_cases()))
def test_fault_matrix(source: Source, fault: str, caplog):
    caplog.set_level(logging.DEBUG)
    indicator = sample_for(source)
    want, want_fields = expected_status(source, fault)
    measure_memory = fault.startswith("huge")
    with FaultServer(fault, max_stall=TIMEOUT + SLACK + 6) as server:
        enricher = Enricher(settings_for(source, server.base), sources=[source, HEALTHY])
        if measure_memory:
            tracemalloc.start()
        started = time.monotonic()
        try:
            enrichment = enricher.enrich(indicator)
            elapsed = time.monotonic() - started
        finally:
            if measure_memory:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
        received = server.requests

    result = enrichment.result(source.name)
    assert result is not None
    assert result.status is want, f"{source.name} on {fault}: {result.status} ({result.message!r}), want {want}"
    assert_survived(result, enrichment.result(HEALTHY.name), indicator, elapsed, caplog)
    if want_fields is not None:
        assert dict(result.fields) == want_fields
        assert result.contributions == ()
    if fault == "refused":
        assert received == []
    else:  # the source really asked the fault server (not skipped by a missing key or the privacy check)
        assert received, "the source sent nothing to the fault server"
    if fault.startswith("429"):
        assert len(received) == 1, "a rate-limited source must not ask again within the run"
    if measure_memory:
        assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.1f} MiB while refusing a 50 MB body"


def test_matrix_covers_every_network_source():
    """The matrix is generic; this pins that it found the sources (a registry bug would empty it)."""
    names = {s.name for s in http_sources()}
    assert {"internetdb", "rdap", "urlhaus", "threatfox", "malwarebazaar", "crtsh"} <= names
    assert {s.name for s in resolver_sources()} >= {"dns", "dnsbl"}
    assert all(s.url_setting == f"OTC_{s.name.upper()}_URL" for s in http_sources())


def test_rate_limited_source_is_not_asked_again_in_the_same_run_API_02():
    """API-02: 429 with Retry-After: 3600 marks the source for the rest of the run; later indicators are not
    sent and say "quota exceeded — not checked", never clean."""
    source = next(s for s in http_sources() if s.name == "internetdb")
    with FaultServer("429-retry-after") as server:
        enricher = Enricher(settings_for(source, server.base), sources=[source, HEALTHY])
        first = enricher.enrich(SAMPLES[Kind.IPV4])
        second = enricher.enrich(Indicator(Kind.IPV4, "9.9.9.9", "9.9.9.9", "9.9.9.9"))
        received = server.requests
    assert first.result("internetdb").status is Status.RATE_LIMITED
    assert second.result("internetdb").status is Status.RATE_LIMITED
    assert "quota exceeded — not checked" in second.result("internetdb").message
    assert len(received) == 1


# -- resolver-based sources ----------------------------------------------------------------------------
DNS_FAULTS = {
    "servfail": Status.ERROR,
    "refused": Status.ERROR,
    "silent": Status.TIMEOUT,
    "garbage": Status.TIMEOUT,  # a reply that is not DNS is ignored (as a spoofed one would be): no answer
    "truncated": Status.ERROR,  # TC bit set, and the TCP port it sends the client to is closed
}


def dns_cases():
    for source in resolver_sources():
        for kind in (Kind.IPV4, Kind.DOMAIN, Kind.URL):
            if source.applies_to(SAMPLES[kind]):
                for fault in DNS_FAULTS:
                    yield pytest.param(source, kind, fault, id=f"{source.name}-{kind}-{fault}")


@pytest.mark.parametrize(("source", "kind", "fault"), list(dns_cases()))
def test_dns_fault_matrix(source: Source, kind: Kind, fault: str, caplog):
    caplog.set_level(logging.DEBUG)
    indicator = SAMPLES[kind]
    if fault in ("garbage", "truncated"):
        server = GarbageDnsServer(fault).start()
    else:
        server = FakeDnsServer().start()
        server.default = {"servfail": SERVFAIL, "refused": REFUSED, "silent": SILENT}[fault]
    try:
        settings = Settings(mode=Mode.ALL, dns_server=server.server, timeout=TIMEOUT)
        enricher = Enricher(settings, sources=[source, HEALTHY])
        started = time.monotonic()
        enrichment = enricher.enrich(indicator)
        elapsed = time.monotonic() - started
        asked = server.queries if isinstance(server.queries, int) else len(server.queries)
    finally:
        server.stop()
    result = enrichment.result(source.name)
    assert result.status is DNS_FAULTS[fault], f"{result.status} ({result.message!r})"
    assert_survived(result, enrichment.result(HEALTHY.name), indicator, elapsed, caplog)
    assert asked >= 1, "the source never asked the configured resolver"


# -- the CLI: no traceback whatever the upstreams do -----------------------------------------------------
def run_cli(env: dict[str, str], cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otc", *args], env=env, cwd=cwd, capture_output=True, check=False,
                          text=True, encoding="utf-8", timeout=120)


def fault_env(base_env: dict[str, str], base: str, dns: FakeDnsServer) -> dict[str, str]:
    env = dict(base_env)
    env.update({s.url_setting: f"{base}/{s.name}" for s in http_sources()})
    env.update({name: secret.reveal() for name, secret in dummy_keys(http_sources()).items()})
    env["OTC_DNS_SERVER"] = dns.address  # the DNS sources must never fall back to the system resolver
    env["OTC_TIMEOUT"] = str(TIMEOUT)
    env["OTC_MODE"] = "all"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["malformed-json", "no-answer", "redirect-loop", "huge-chunked", "shape-list"])
def test_cli_lookup_survives_every_upstream_failing(fault, subprocess_env, tmp_path, fake_dns):
    fake_dns.default = SERVFAIL
    indicator = SAMPLES[Kind.IPV4]
    with FaultServer(fault) as server:
        env = fault_env(subprocess_env, server.base, fake_dns)
        started = time.monotonic()
        done = run_cli(env, tmp_path, "lookup", indicator.value, "--json")
        elapsed = time.monotonic() - started
        text = run_cli(env, tmp_path, "lookup", indicator.value)
    for run in (done, text):
        assert "Traceback" not in run.stdout + run.stderr, run.stderr
        assert run.returncode == 0, run.stderr
    assert elapsed < 30, "sources run in parallel: one budget (plus start-up), not one per source"
    data = json.loads(done.stdout)
    for source in http_sources():
        if not source.applies_to(indicator):
            continue
        want, _ = expected_status(source, fault)
        got = data["sources"][source.name]
        assert got["status"] == want.value, (source.name, got)
    assert data["sources"]["dns"]["status"] == "error"
    assert data["verdict"] == "unknown"
    assert "Sources" in text.stdout and "8.8.4.4" in text.stdout
