"""``python -m otc`` against one local fake of every upstream, with dummy keys (issue 3's acceptance run).

Each source answers from tests/fake_upstream.py; DNS from tests/fakedns.py. The fake counts requests,
so "local mode sends nothing" is a number, not a belief.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PROJECT_DIR
from fake_upstream import BAD_IP, FakeUpstream
from fakedns import FakeDnsServer
from otc.model import Kind
from otc.sources import all_sources

IP_SOURCES = sorted(s.name for s in all_sources() if Kind.IPV4 in s.kinds)


@pytest.fixture
def upstream(subprocess_env, tmp_path):
    fake = FakeUpstream().start()
    dns = FakeDnsServer()
    dns.start()
    env = dict(subprocess_env)
    env.update(fake.env())
    env.update({f"OTC_{s.name.upper()}_RATE": "0" for s in all_sources()})
    env["OTC_DNS_SERVER"] = dns.address
    env["OTC_TIMEOUT"] = "5"
    yield fake, dns, env
    fake.stop()
    dns.stop()


def lookup(env, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "otc", "lookup", *args, "--json"], env=env, cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_ip_source_reports_with_numbers_and_named_contributions(upstream):
    fake, dns, env = upstream
    data = lookup(env, BAD_IP)
    statuses = {name: data["sources"][name]["status"] for name in IP_SOURCES}
    assert statuses.pop("feeds") == "not_applicable"  # no feed snapshot loaded in this data dir
    assert all(status in ("ok", "not_found") for status in statuses.values()), statuses
    sources = data["sources"]
    assert sources["abuseipdb"]["data"]["confidence"] == 100
    assert sources["abuseipdb"]["data"]["total_reports"] == 412
    assert sources["virustotal"]["data"]["malicious"] == 12
    assert sources["greynoise"]["data"]["classification"] == "malicious"
    assert sources["internetdb"]["data"]["tags"] == ["tor", "compromised"]
    assert sources["shodan"]["data"]["ports"] == [22, 80, 443, 9001]
    named = {c["source"] for c in data["contributions"]}
    assert {"abuseipdb", "virustotal", "greynoise", "internetdb", "otx", "threatfox", "urlhaus"} <= named
    assert data["verdict"] == "malicious" and data["score"] == 100
    # every key-holding source was asked once for this one address (OTX twice: general + passive DNS)
    assert fake.counts["abuseipdb"] == 1 and fake.counts["virustotal"] == 1


def test_local_mode_asks_nothing(upstream):
    fake, dns, env = upstream
    data = lookup(env, BAD_IP, "--mode", "local")
    assert fake.total == 0
    assert dns.queries == []
    assert data["mode"] == "local"
    third_party = {s.name for s in all_sources() if s.third_party and Kind.IPV4 in s.kinds}
    assert {data["sources"][name]["status"] for name in third_party} == {"skipped_privacy"}
    assert data["sources"]["offline_geo"]["status"] == "ok"
