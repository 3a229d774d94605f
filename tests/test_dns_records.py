"""DNS records against a real local DNS server (tests/fakedns.py)."""

from __future__ import annotations

import time

import dns.resolver
import pytest

from fakedns import NODATA, NXDOMAIN, REFUSED, SERVFAIL, SILENT, FakeDnsServer, fake_dns  # noqa: F401
from otc.config import Mode, Settings
from otc.engine import Enricher, make_resolver
from otc.errors import SourceUnreachable
from otc.http import HttpClient
from otc.indicators import parse_indicator
from otc.model import Indicator, Kind, Status
from otc.scoring import load_rules
from otc.sources.base import attempt_source, context_for
from otc.sources.dns_records import SOURCE as DNS, DnsRecordsSource, query_name

TYPES = ["A", "AAAA", "CNAME", "MX", "NS", "TXT"]


def enrich(fake_dns, indicator, timeout: float = 2, source=DNS, **kwargs):
    if isinstance(indicator, str):
        indicator = parse_indicator(indicator)
    settings = Settings(dns_server=fake_dns.server, timeout=timeout, **kwargs)
    return Enricher(settings, sources=[source]).enrich(indicator).result("dns")


def test_domain_records(fake_dns):
    fake_dns.records[("example.com", "A")] = ["93.184.215.14", "93.184.215.15"]
    fake_dns.records[("example.com", "AAAA")] = ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    fake_dns.records[("example.com", "MX")] = ["10 mail.example.com", "20 backup.example.net."]
    fake_dns.records[("example.com", "NS")] = ["a.iana-servers.net", "b.iana-servers.net"]
    fake_dns.records[("example.com", "TXT")] = ["v=spf1 -all", "_k2n1y4vw3qtb4skdx9e7dxt97qrmmq9"]
    result = enrich(fake_dns, "Example.COM")
    assert result.status is Status.OK, result.message
    assert result.fields == {
        "name": "example.com",
        "a": ["93.184.215.14", "93.184.215.15"],
        "aaaa": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "cname": [],
        "mx": ["10 mail.example.com", "20 backup.example.net"],
        "ns": ["a.iana-servers.net", "b.iana-servers.net"],
        "txt": ["v=spf1 -all", "_k2n1y4vw3qtb4skdx9e7dxt97qrmmq9"],
        "errors": [],
    }
    assert result.message == ""
    assert fake_dns.asked() == [("example.com", t) for t in TYPES]


def test_cname_is_followed_for_addresses(fake_dns):
    fake_dns.records[("www.example.org", "CNAME")] = ["cdn.example.net"]
    fake_dns.records[("cdn.example.net", "A")] = ["198.51.100.7"]
    result = enrich(fake_dns, "www.example.org")
    assert result.status is Status.OK
    assert result.fields["cname"] == ["cdn.example.net"]
    assert result.fields["a"] == ["198.51.100.7"]
    assert result.fields["mx"] == [] and result.fields["txt"] == []


def test_txt_is_kept_as_plain_text(fake_dns):
    hostile = '<script>alert("x")</script> =cmd|\' /C calc\'!A0'
    long_spf = "v=spf1 " + " ".join(f"ip4:198.51.100.{n}" for n in range(1, 40)) + " -all"  # > 255 bytes
    assert len(long_spf) > 255
    fake_dns.records[("txt.example.com", "TXT")] = [hostile, long_spf]
    result = enrich(fake_dns, "txt.example.com")
    assert result.fields["txt"] == [hostile, long_spf]  # split into 255-byte strings on the wire, joined back


@pytest.mark.parametrize(("ip", "reverse"), [
    ("8.8.8.8", "8.8.8.8.in-addr.arpa"),
    ("2001:4860:4860::8888", "8.8.8.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.8.4.0.6.8.4.1.0.0.2.ip6.arpa"),
])
def test_ptr_for_ips(fake_dns, ip, reverse):
    fake_dns.records[(reverse, "PTR")] = ["dns.google."]
    result = enrich(fake_dns, ip)
    assert result.status is Status.OK
    assert result.fields == {"name": reverse, "ptr": ["dns.google"], "errors": []}
    assert fake_dns.asked() == [(reverse, "PTR")]


def test_ptr_nxdomain(fake_dns):
    result = enrich(fake_dns, "9.9.9.10")
    assert result.status is Status.NOT_FOUND
    assert "NXDOMAIN" in result.message


@pytest.mark.parametrize(("behaviour", "status", "message"), [
    (SERVFAIL, Status.ERROR, "DNS lookup failed (SERVFAIL)"),
    (NXDOMAIN, Status.NOT_FOUND, "does not exist (NXDOMAIN)"),
    (SILENT, Status.TIMEOUT, "did not answer within 2 s"),
], ids=["DNS-01-servfail", "DNS-01-nxdomain", "DNS-01-silent"])
def test_servfail_nxdomain_silent_are_distinct_DNS_01(fake_dns, behaviour, status, message):
    name = {SERVFAIL: "servfail.example.com", NXDOMAIN: "nx.example.com", SILENT: "silent.example.com"}[behaviour]
    fake_dns.records[(name, "*")] = behaviour
    started = time.monotonic()
    result = enrich(fake_dns, name, timeout=2)
    elapsed = time.monotonic() - started
    assert result.status is status
    assert message in result.message
    if behaviour is SERVFAIL:
        assert elapsed < 1.0  # SERVFAIL is not retried until the lifetime runs out
        assert fake_dns.asked() == [(name, t) for t in TYPES]  # each type once, no retries
    elif behaviour is NXDOMAIN:
        assert elapsed < 1.0
        assert fake_dns.asked() == [(name, "A")]  # a name that does not exist has no other types either
    else:
        assert 1.9 <= elapsed < 4.0  # the configured lifetime (2 s), once, not once per record type
        assert {q[1] for q in fake_dns.asked()} == {"A"}


@pytest.mark.parametrize("name", ["0-0-0.info"], ids=["DNS-01-mx-servfail-only"])
def test_one_type_servfail_keeps_the_answers_DNS_01(fake_dns, name):
    # the resolver answers A but SERVFAILs the MX question
    fake_dns.records[(name, "A")] = ["192.0.2.10"]
    fake_dns.records[(name, "MX")] = SERVFAIL
    result = enrich(fake_dns, name)
    assert result.status is Status.OK
    assert result.fields["a"] == ["192.0.2.10"]
    assert result.fields["mx"] == []
    assert result.fields["errors"] == ["MX: DNS lookup failed (SERVFAIL)"]
    assert result.message == "MX: DNS lookup failed (SERVFAIL)"


def test_answers_then_silence_reports_what_was_answered(fake_dns):
    fake_dns.records[("half.example.com", "A")] = ["192.0.2.11"]
    fake_dns.records[("half.example.com", "AAAA")] = SILENT
    result = enrich(fake_dns, "half.example.com", timeout=1)
    assert result.status is Status.OK
    assert result.fields["a"] == ["192.0.2.11"]
    assert result.fields["errors"] == ["AAAA: no answer in time",
                                       "CNAME, MX, NS, TXT: not asked (the DNS server stopped answering)"]


def test_no_records_at_all_is_not_found(fake_dns):
    fake_dns.records[("empty.example.com", "*")] = NODATA
    result = enrich(fake_dns, "empty.example.com")
    assert result.status is Status.NOT_FOUND
    assert result.message == "no records"


def test_refused_is_an_error_that_counts_as_unreachable(fake_dns):
    fake_dns.records[("refused.example.com", "*")] = REFUSED
    settings = Settings(dns_server=fake_dns.server, timeout=2)
    ctx = context_for(DNS, settings, HttpClient(), make_resolver(settings))
    result, error = attempt_source(DNS, parse_indicator("refused.example.com"), ctx, load_rules().for_source("dns"))
    assert result.status is Status.ERROR
    assert result.message == f"DNS server {fake_dns.address} refused the query (REFUSED)"
    assert isinstance(error, SourceUnreachable)


def test_silent_server_trips_the_circuit_breaker(fake_dns):
    fake_dns.default = SILENT
    one_at_a_time = DnsRecordsSource()
    one_at_a_time.max_concurrency = 1  # deterministic order: three timeouts, then the breaker is open
    settings = Settings(dns_server=fake_dns.server, timeout=1)
    names = [parse_indicator(f"host{n}.example.com") for n in range(6)]
    started = time.monotonic()
    results = [e.result("dns") for e in Enricher(settings, sources=[one_at_a_time]).enrich_many(names)]
    assert time.monotonic() - started < 5
    assert [r.status for r in results] == [Status.TIMEOUT] * 6
    assert sum(r.message.startswith("not tried: DNS did not answer 3 times in a row") for r in results) == 3
    assert len(fake_dns.names_asked()) == 3


def test_wildcard_is_asked_without_the_star(fake_dns):
    fake_dns.records[("example.net", "A")] = ["192.0.2.44"]
    wildcard = Indicator(Kind.DOMAIN, "*.example.net", "*.example.net", "*.example.net", wildcard=True)
    result = enrich(fake_dns, wildcard)
    assert result.status is Status.OK and result.fields["name"] == "example.net"
    assert fake_dns.names_asked() == {"example.net"}
    assert all("*" not in name for name, _ in fake_dns.asked())


def test_url_and_email_hosts_are_asked(fake_dns):
    fake_dns.records[("login.example.org", "A")] = ["192.0.2.80"]
    fake_dns.records[("example.org", "MX")] = ["5 mx.example.org"]
    url = Indicator(Kind.URL, "https://login.example.org/a", "https://login.example.org/a", "https://login.example.org/a",
                    host="login.example.org", host_kind=Kind.DOMAIN, registered_domain="example.org")
    email = Indicator(Kind.EMAIL, "ceo@example.org", "ceo@example.org", "ceo@example.org",
                      host="example.org", host_kind=Kind.DOMAIN, registered_domain="example.org")
    assert enrich(fake_dns, url).fields["a"] == ["192.0.2.80"]
    assert enrich(fake_dns, email).fields["mx"] == ["5 mx.example.org"]


def test_not_applicable_kinds():
    ip_url = Indicator(Kind.URL, "http://192.0.2.1/x", "http://192.0.2.1/x", "http://192.0.2.1/x",
                       host="192.0.2.1", host_kind=Kind.IPV4)
    assert not DNS.applies_to(ip_url)
    assert not DNS.applies_to(parse_indicator("44d88612fea8a8f36de82e1278abb02f"))
    assert query_name(parse_indicator("example.com.")) == "example.com"


def test_private_address_and_local_mode_ask_nothing(fake_dns):
    assert enrich(fake_dns, "10.0.0.1").status is Status.SKIPPED_PRIVACY
    assert enrich(fake_dns, "example.com", mode=Mode.LOCAL).status is Status.SKIPPED_PRIVACY
    assert fake_dns.queries == []


def test_truncated_answer_is_retried_over_tcp(fake_dns):
    fake_dns.records[("big.example.com", "TXT")] = ["x" * 200, "y" * 200, "z" * 200]
    fake_dns.udp_max_size = 512
    result = enrich(fake_dns, "big.example.com")
    assert result.fields["txt"] == ["x" * 200, "y" * 200, "z" * 200]
    assert [q.protocol for q in fake_dns.queries if q.type == "TXT"] == ["udp", "tcp"]


def test_fake_dns_can_run_outside_the_fixture():
    with FakeDnsServer() as server:
        server.records[("a.example", "A")] = ["192.0.2.1"]
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], server.port
        assert [r.to_text() for r in resolver.resolve("a.example", "A")] == ["192.0.2.1"]
        assert server.address == f"127.0.0.1:{server.port}"


def test_failure_without_any_record_is_the_failure_not_no_records(fake_dns):
    fake_dns.records[("partial.example.com", "A")] = NODATA
    fake_dns.records[("partial.example.com", "MX")] = SERVFAIL
    result = enrich(fake_dns, "partial.example.com")
    assert result.status is Status.ERROR
    assert result.message == "DNS lookup failed (SERVFAIL)"
