"""Egress (issue 5, group 6): what may leave the machine, counted at the receiving end.

A fake upstream (``tests/fake_upstream.py``, every source under ``/<source>``) counts and records every
request; a fake DNS server (``tests/fakedns.py``) logs every question. Then:

- local-only mode (``Settings(mode=Mode.LOCAL)``, ``OTC_OFFLINE=1``, ``OTC_MODE=local``, the CLI's
  ``--offline`` and ``--mode local``) makes zero requests and zero DNS queries for a batch of mixed
  indicators;
- private, shared, documentation, loopback, link-local, multicast and reserved addresses, and names under
  ``.test`` / ``.example`` / ``.invalid`` / ``.localhost`` (and URLs and e-mail addresses on them) are
  never sent to any third-party source, in any mode — parsed by the real parser, so a name the parser
  does not yet classify as non-global fails here;
- a positive control proves the counting works: global indicators in "all" mode do reach both fakes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_upstream import BAD_DOMAIN, BAD_IP, BAD_MD5, FakeUpstream
from fakedns import FakeDnsServer, fake_dns  # noqa: F401  (fixture)

from otc.bulk import run_bulk
from otc.config import Mode, Settings, load_settings
from otc.csvio import read_table
from otc.engine import Enricher, default_enricher
from otc.indicators import parse_indicator
from otc.model import Indicator, Scope, Status
from otc.sources import all_sources, source_by_name
from otc.sources.base import RateLimit

UNPACED = {s.name: RateLimit() for s in all_sources()}  # free-tier pacing would make a 3-indicator run last 30 s

MIXED = [
    BAD_IP, "1.1.1.1", "2606:4700:4700::1111", "8.8.8.0/24", BAD_DOMAIN, "www.example.com", f"https://{BAD_DOMAIN}/login",
    f"admin@{BAD_DOMAIN}", BAD_MD5, "3395856ce81f2b7382dee72602f798b642f14140",
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", "AS13335", "*.example.com",
    "10.0.0.5", "foo.test",
]

# Never sent anywhere, in any mode. (text, pytest id): edge-case ids where a shared case is covered.
NON_GLOBAL = [
    ("10.0.0.5", "MAP-01-private-10"),
    ("172.16.5.4", "private-172-16"),
    ("192.168.1.1", "private-192-168"),
    ("fd00::1", "private-ula-v6"),
    ("10.0.0.0/8", "private-cidr"),
    ("fc00::/7", "private-cidr-v6"),
    ("::ffff:10.0.0.1", "private-ipv4-mapped-v6"),
    ("printer.local", "private-local-name"),
    ("corp.internal", "private-internal-name"),
    ("AS64512", "private-asn"),
    ("100.64.0.1", "IP-02-shared-cgnat"),
    ("100.64.0.0/10", "shared-cidr"),
    ("100.64.0.1:80", "shared-with-port"),
    ("192.0.2.1", "IP-02-documentation-test-net-1"),
    ("198.51[.]100[.]248", "DEFANG-01-documentation-defanged"),
    ("203.0.113.9", "documentation-test-net-3"),
    ("2001:db8::1", "documentation-v6"),
    ("127.0.0.1", "IP-02-loopback"),
    ("::1", "loopback-v6"),
    ("169.254.1.1", "link-local"),
    ("fe80::1%eth0", "IP-04-link-local-zone-id"),
    ("224.0.0.251", "IP-02-multicast"),
    ("ff02::1", "multicast-v6"),
    ("249.176.139.93", "IP-02-reserved-240-4"),
    ("0.0.0.0", "reserved-this-network"),
    ("foo.test", "tld-test"),
    ("FOO.TEST.", "tld-test-upper-trailing-dot"),
    ("*.foo.test", "tld-test-wildcard"),
    ("xn--eckwd4c7c.xn--zckzah", "PARSE-05-idn-test-tld"),
    ("www.example", "tld-example"),
    ("cloudsafety[.]example", "PARSE-05-defanged-example-tld"),
    ("x.invalid", "tld-invalid"),
    ("localhost", "name-localhost"),
    ("app.localhost", "tld-localhost"),
    ("http://foo.test/login", "url-test"),
    ("hxxp://app[.]localhost/admin", "url-localhost-defanged"),
    ("http://user@x.invalid/", "url-invalid-userinfo"),
    ("http://foo.example/", "url-example"),
    ("https://10.0.0.1/login", "url-private"),
    ("http://example.com@10.0.0.1/", "url-userinfo-hides-private-host"),
    ("http://192.168.1.1:8080/x", "url-private-port"),
    ("http://[fe80::1]/", "url-link-local"),
    ("http://[::1]:8080/", "url-loopback-v6"),
    ("http://[2001:db8::1]/", "url-documentation-v6"),
    ("user@foo.example", "email-example"),
    ("a@x.invalid", "email-invalid"),
    ("admin@app.localhost", "email-localhost"),
    ("user@[10.0.0.1]", "email-private-literal"),
]


class RecordingUpstream(FakeUpstream):
    """The fake upstream, also recording what each request asked (path, query, form)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[str, str]] = []

    def answer(self, source, path, query, form):
        with self.lock:
            self.asked.append((source, json.dumps({"path": path, "query": query, "form": form})))
        return super().answer(source, path, query, form)


@pytest.fixture(scope="module")
def _running_upstream():
    server = RecordingUpstream().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def upstream(_running_upstream):
    """The module's fake upstream with its counts and records cleared for this test."""
    with _running_upstream.lock:
        _running_upstream.counts.clear()
        _running_upstream.asked.clear()
    return _running_upstream


def third_party_http() -> list:
    return [s for s in all_sources() if s.third_party and s.base_url]


def keyed_env() -> dict[str, str]:
    return {s.key_settings[0]: f"KEY-{s.name}-e9r2" for s in all_sources() if s.uses_key}


def upstream_env(upstream: FakeUpstream, dns: FakeDnsServer) -> dict[str, str]:
    """Every HTTP source (also one added later) and every feed at the fake; DNS at the fake; keys for all."""
    env = upstream.env(with_keys=False)
    env.update({s.url_setting: f"{upstream.base}/{s.name}" for s in third_party_http()})
    env.update(keyed_env())
    env["OTC_DNS_SERVER"] = dns.address
    return env


def settings_for(upstream, dns, mode: Mode, tmp_path: Path) -> Settings:
    env = upstream_env(upstream, dns)
    settings = load_settings(environ=env, secrets={})
    return Settings(mode=mode, urls=settings.urls, keys=settings.keys, dns_server=dns.server, timeout=3.0,
                    data_dir=tmp_path / "data")


def parsed(texts) -> list[Indicator]:
    out = []
    for text in texts:
        outcome = parse_indicator(text)
        assert isinstance(outcome, Indicator), f"{text!r} was not parsed: {outcome}"
        out.append(outcome)
    return out


def assert_nothing_left(upstream: RecordingUpstream, dns: FakeDnsServer) -> None:
    assert upstream.total == 0, f"requests reached the fake upstream: {dict(upstream.counts)} {upstream.asked[:5]}"
    assert dns.asked() == [], f"DNS questions were asked: {dns.asked()[:10]}"


def assert_withheld(enrichment, mode: Mode) -> None:
    """Every third-party source that handles the indicator says it was withheld, and why; none ran."""
    for result in enrichment.results:
        source = source_by_name(result.source)
        if not source.third_party:
            continue
        if source.applies_to(enrichment.indicator) and source.not_applicable_reason(enrichment.indicator) is None:
            assert result.status is Status.SKIPPED_PRIVACY, (enrichment.indicator.value, result)
            assert result.message.startswith("not sent"), result.message
            # the mode is checked first; a source the mode allows is held back by the indicator's scope
            why = "never leaves this machine" if source.allowed_in(mode) else f"{'local-only' if mode is Mode.LOCAL else mode} mode"
            assert why in result.message, result.message
        else:
            assert result.status is Status.NOT_APPLICABLE, (enrichment.indicator.value, result)


# -- local-only mode -------------------------------------------------------------------------------------
def test_local_mode_sends_no_request_and_no_dns_query(upstream, fake_dns, tmp_path):
    settings = settings_for(upstream, fake_dns, Mode.LOCAL, tmp_path)
    indicators = parsed(MIXED)
    enricher = default_enricher(settings)
    assert enricher.resolver is None  # not even a resolver exists to ask
    plan = enricher.egress_plan(indicators)
    assert [row["source"] for row in plan if row["third_party"] and row["indicators_sent"]] == []
    enrichments = list(enricher.enrich_many(indicators))
    assert len(enrichments) == len(indicators)
    assert_nothing_left(upstream, fake_dns)
    for enrichment in enrichments:
        assert_withheld(enrichment, Mode.LOCAL)
    local = [s.name for s in all_sources() if not s.third_party]
    assert local, "local-only mode needs local sources to be of any use"
    # Local sources are never withheld in local-only mode (with no feed snapshot loaded, `feeds` says
    # not_applicable — nothing to check — but it is not skipped for privacy).
    withheld = {r.source for e in enrichments for r in e.results if r.source in local and r.status is Status.SKIPPED_PRIVACY}
    assert withheld == set(), "a local source was withheld in local-only mode"
    ran = {r.source for e in enrichments for r in e.results if r.source in local and r.status.answered}
    assert "offline_geo" in ran


@pytest.mark.parametrize("env_setting", [{"OTC_OFFLINE": "1"}, {"OTC_MODE": "local"}, {"OTC_OFFLINE": "yes", "OTC_MODE": "all"}],
                         ids=["OTC_OFFLINE", "OTC_MODE-local", "OTC_OFFLINE-beats-OTC_MODE"])
def test_local_mode_from_settings_sends_nothing(env_setting, upstream, fake_dns):
    settings = load_settings(environ={**upstream_env(upstream, fake_dns), **env_setting}, secrets={})
    assert settings.mode is Mode.LOCAL
    list(default_enricher(settings).enrich_many(parsed(MIXED)))
    assert_nothing_left(upstream, fake_dns)


def test_positive_control_all_mode_does_reach_the_fakes(upstream, fake_dns, tmp_path):
    """Without this, "zero requests" could mean the fakes were never wired in."""
    settings = settings_for(upstream, fake_dns, Mode.ALL, tmp_path)
    list(Enricher(settings, rate_limits=UNPACED).enrich_many(parsed([BAD_IP, BAD_DOMAIN, BAD_MD5])))
    asked_sources = {name for name, count in upstream.counts.items() if count}
    assert {"internetdb", "rdap", "urlhaus", "virustotal", "malwarebazaar"} <= asked_sources
    assert ("78.101.220.185.in-addr.arpa", "PTR") in fake_dns.asked()
    assert any(name.endswith("zen.spamhaus.org") for name, _ in fake_dns.asked())


def test_wildcard_star_is_never_sent_DOM_03(upstream, fake_dns, tmp_path):
    """DOM-03: ``*.example.com`` is looked up as example.com; '*' never reaches DNS, RDAP or an API."""
    settings = settings_for(upstream, fake_dns, Mode.ALL, tmp_path)
    list(Enricher(settings, rate_limits=UNPACED).enrich_many(parsed(["*.example.com", "*.mail.example.com"])))
    assert upstream.total > 0 and fake_dns.asked()
    assert not [entry for entry in upstream.asked if "*" in entry[1] or "%2a" in entry[1].lower()]
    assert not [name for name, _ in fake_dns.asked() if "*" in name]


# -- non-global indicators, every mode -------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize(("text", "case_id"), NON_GLOBAL, ids=[case_id for _, case_id in NON_GLOBAL])
def test_non_global_indicator_is_never_sent(text, case_id, mode, upstream, fake_dns, tmp_path):
    outcome = parse_indicator(text)
    assert isinstance(outcome, Indicator), f"{text!r} must be kept as an indicator (labelled), got {outcome}"
    assert outcome.scope not in (Scope.GLOBAL, Scope.NOT_APPLICABLE), f"{text!r} classified {outcome.scope}"
    assert not outcome.is_shareable
    settings = settings_for(upstream, fake_dns, mode, tmp_path)
    enricher = Enricher(settings)
    plan = enricher.egress_plan([outcome])
    assert sum(row["indicators_sent"] for row in plan) == 0
    enrichment = enricher.enrich(outcome)
    assert_nothing_left(upstream, fake_dns)
    assert_withheld(enrichment, mode)


def test_bulk_run_of_non_global_indicators_sends_nothing_in_all_mode(upstream, fake_dns, tmp_path):
    texts = [text for text, _ in NON_GLOBAL]
    table = read_table(("indicator\n" + "\n".join(f'"{t}"' for t in texts) + "\n").encode(), filename="in.csv")
    settings = settings_for(upstream, fake_dns, Mode.ALL, tmp_path)
    result = run_bulk(table, "indicator", Enricher(settings))
    assert_nothing_left(upstream, fake_dns)
    assert [r["otc_row_status"] for r in result.records] == ["ok"] * len(texts)
    assert "global" not in {r["otc_scope"] for r in result.records}


# -- the CLI ---------------------------------------------------------------------------------------------
def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "otc", *args], env=env, cwd=cwd, capture_output=True, check=False, text=True,
                          encoding="utf-8", timeout=120)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


@pytest.fixture
def cli_env(subprocess_env, upstream, fake_dns) -> dict[str, str]:
    env = dict(subprocess_env)
    env.update(upstream_env(upstream, fake_dns))
    env["OTC_TIMEOUT"] = "3"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--offline"], ["--mode", "local"]], ids=["offline", "mode-local"])
def test_cli_local_mode_sends_nothing(flags, cli_env, upstream, fake_dns, tmp_path):
    cli_env["OTC_MODE"] = "all"  # the flag wins over the environment
    for text in (BAD_IP, BAD_DOMAIN, f"https://{BAD_DOMAIN}/login", BAD_MD5):
        done = run_cli(cli_env, tmp_path, "lookup", text, "--json", *flags)
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert data["mode"] == "local"
        third = [s.name for s in all_sources() if s.third_party]
        statuses = {data["sources"][name]["status"] for name in third}
        assert statuses <= {"skipped_privacy", "not_applicable"} and "skipped_privacy" in statuses, statuses
    (tmp_path / "in.csv").write_text("indicator\n" + "\n".join(f'"{t}"' for t in MIXED) + "\n", encoding="utf-8")
    done = run_cli(cli_env, tmp_path, "enrich", "in.csv", "-o", "out.csv", *flags)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.csv").exists()
    assert_nothing_left(upstream, fake_dns)


@pytest.mark.parametrize("env_setting", [{"OTC_OFFLINE": "1"}, {"OTC_MODE": "local"}], ids=["OTC_OFFLINE", "OTC_MODE"])
def test_cli_local_mode_from_environment_sends_nothing(env_setting, cli_env, upstream, fake_dns, tmp_path):
    cli_env.update(env_setting)
    done = run_cli(cli_env, tmp_path, "lookup", BAD_IP)
    assert done.returncode == 0, done.stderr
    assert "Mode       local" in done.stdout
    assert_nothing_left(upstream, fake_dns)


@pytest.mark.slow
def test_cli_non_global_in_all_mode_sends_nothing(cli_env, upstream, fake_dns, tmp_path):
    for text in ("10.0.0.5", "foo.test", "http://app.localhost/admin", "user@x.invalid"):
        done = run_cli(cli_env, tmp_path, "lookup", text, "--json", "--mode", "all")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["indicator"]["scope"] != "global"
    (tmp_path / "private.csv").write_text("indicator\n" + "\n".join(f'"{t}"' for t, _ in NON_GLOBAL) + "\n",
                                          encoding="utf-8")
    done = run_cli(cli_env, tmp_path, "enrich", "private.csv", "-o", "out.csv", "--mode", "all")
    assert done.returncode == 0, done.stderr
    assert_nothing_left(upstream, fake_dns)


def test_cli_positive_control_all_mode_reaches_the_fakes(cli_env, upstream, fake_dns, tmp_path):
    done = run_cli(cli_env, tmp_path, "lookup", BAD_IP, "--json", "--mode", "all")
    assert done.returncode == 0, done.stderr
    assert upstream.counts["internetdb"] >= 1 and upstream.counts["abuseipdb"] >= 1
    assert fake_dns.asked()
    assert json.loads(done.stdout)["sources"]["internetdb"]["status"] == "ok"
