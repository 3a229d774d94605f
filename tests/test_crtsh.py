"""crt.sh against a real local HTTP server: registered-domain query, names and issuers, overload."""

from __future__ import annotations

import time

import pytest

from otc.config import Mode, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Status, Verdict
from otc.sources.base import RateLimit
from otc.sources.crtsh import SOURCE as CRTSH, issuer_label

CERTS = [
    {"issuer_ca_id": 295815, "issuer_name": "C=US, O=Let's Encrypt, CN=R11", "common_name": "login.shop-example.net",
     "name_value": "login.shop-example.net\n*.shop-example.net\nsecurity@shop-example.net\nShop-Example.net",
     "id": 101, "entry_timestamp": "2026-10-01T00:00:01", "not_before": "2026-10-01T00:00:00",
     "not_after": "2026-12-30T00:00:00", "serial_number": "04aa"},
    # the precertificate of the same certificate: same issuer and serial
    {"issuer_ca_id": 295815, "issuer_name": "C=US, O=Let's Encrypt, CN=R11", "common_name": "login.shop-example.net",
     "name_value": "login.shop-example.net\n*.shop-example.net", "id": 100, "entry_timestamp": "2026-10-01T00:00:00",
     "not_before": "2026-10-01T00:00:00", "not_after": "2026-12-30T00:00:00", "serial_number": "04aa"},
    {"issuer_ca_id": 1, "issuer_name": 'C=GB, O="Sectigo Limited", CN=Sectigo RSA DV',
     "common_name": "mail.shop-example.net",
     "name_value": "mail.shop-example.net\npay-shop-example.com", "id": 99, "entry_timestamp": "2026-08-01T00:00:00",
     "not_before": "2026-07-31T00:00:00", "not_after": "2027-07-31T00:00:00", "serial_number": "77"},
]


def domain(value: str) -> Indicator:
    return Indicator(Kind.DOMAIN, value, value, value)


def enrich(httpserver, indicator: Indicator, mode: Mode = Mode.ALL):
    settings = Settings(mode=mode, urls={"OTC_CRTSH_URL": httpserver.url_for("/crt")}, timeout=3)
    return Enricher(settings, sources=[CRTSH], rate_limits={"crtsh": RateLimit()}).enrich(indicator)


def test_queries_the_registered_domain_and_lists_names_issuers_and_dates(httpserver):
    httpserver.expect_request("/crt/", method="GET", query_string={
        "q": "%.shop-example.net", "output": "json", "exclude": "expired", "deduplicate": "Y"}).respond_with_json(CERTS)
    enrichment = enrich(httpserver, domain("login.shop-example.net"))
    result = enrichment.result("crtsh")
    assert result.status is Status.OK
    assert "q=%25.shop-example.net" in httpserver.log[0][0].query_string.decode()  # the wildcard sent encoded
    fields = result.fields
    assert fields["queried_domain"] == "shop-example.net"
    assert fields["certificate_count"] == 2  # precertificate and certificate are one
    assert fields["log_entry_count"] == 3
    assert fields["names"] == ["*.shop-example.net", "login.shop-example.net", "mail.shop-example.net",
                               "pay-shop-example.com", "shop-example.net"]  # e-mail dropped, case folded
    assert fields["name_count"] == 5
    assert fields["subdomains"] == ["*.shop-example.net", "login.shop-example.net", "mail.shop-example.net",
                                    "shop-example.net"]
    assert fields["other_names"] == ["pay-shop-example.com"]
    assert fields["issuers"] == ["Let's Encrypt", "Sectigo Limited"]
    assert fields["first_seen"] == "2026-07-31T00:00:00"
    assert fields["last_seen"] == "2026-10-01T00:00:00"
    assert enrichment.contributions == ()  # context, not evidence
    assert enrichment.verdict is Verdict.UNKNOWN


def test_public_suffix_aware_registered_domain(httpserver):
    httpserver.expect_request("/crt/", query_string={
        "q": "%.example-shop.co.uk", "output": "json", "exclude": "expired", "deduplicate": "Y"}).respond_with_json([])
    assert enrich(httpserver, domain("www.example-shop.co.uk")).result("crtsh").status is Status.NOT_FOUND


def test_empty_list_is_not_found(httpserver):
    httpserver.expect_request("/crt/").respond_with_json([])
    result = enrich(httpserver, domain("never-issued-example.org")).result("crtsh")
    assert result.status is Status.NOT_FOUND
    assert result.message == "crt.sh has no current certificate for names under never-issued-example.org"
    assert result.fields["certificate_count"] == 0


@pytest.mark.parametrize(("status", "body", "headers", "expected", "message_part"), [
    pytest.param(502, "<html><head><title>502 Bad Gateway</title></head></html>", {"Content-Type": "text/html"},
                 Status.ERROR, "crt.sh overloaded (HTTP 502)", id="502-html"),
    pytest.param(503, "", {}, Status.ERROR, "crt.sh overloaded (HTTP 503)", id="503"),
    pytest.param(504, "", {}, Status.ERROR, "crt.sh overloaded (HTTP 504)", id="504"),
    pytest.param(500, "boom", {}, Status.ERROR, "server error (HTTP 500)", id="500"),
    pytest.param(200, "<!DOCTYPE html><html><body>crt.sh | search</body></html>", {"Content-Type": "text/html"},
                 Status.ERROR, "crt.sh overloaded (it answered an HTML page", id="html-200"),
    pytest.param(200, '[{"id": 1,', {}, Status.ERROR, "not JSON", id="malformed-json"),
    pytest.param(200, '{"error": "x"}', {}, Status.ERROR, "not a list", id="object"),
    pytest.param(429, "", {"Retry-After": "600"}, Status.RATE_LIMITED, "retry after 600 s", id="429"),
    pytest.param(401, "", {}, Status.ERROR, "refused the request (HTTP 401)", id="401-no-key-involved"),
])
def test_failures_become_statuses(httpserver, status, body, headers, expected, message_part):
    httpserver.expect_request("/crt/").respond_with_data(body, status=status, headers=headers)
    result = enrich(httpserver, domain("shop-example.net")).result("crtsh")
    assert result.status is expected
    assert message_part in result.message


def test_429_with_short_retry_after_is_honoured(httpserver):
    httpserver.expect_oneshot_request("/crt/").respond_with_data("", status=429, headers={"Retry-After": "1"})
    httpserver.expect_request("/crt/").respond_with_json(CERTS)
    started = time.monotonic()
    assert enrich(httpserver, domain("shop-example.net")).result("crtsh").status is Status.OK
    assert time.monotonic() - started >= 1.0 and len(httpserver.log) == 2


def test_keyless_mode_allows_it_local_mode_does_not(httpserver):
    httpserver.expect_request("/crt/").respond_with_json([])
    assert enrich(httpserver, domain("shop-example.net"), Mode.KEYLESS).result("crtsh").status is Status.NOT_FOUND
    assert enrich(httpserver, domain("shop-example.net"), Mode.LOCAL).result("crtsh").status is Status.SKIPPED_PRIVACY
    assert len(httpserver.log) == 1


def test_ip_is_not_applicable(httpserver):
    ip = Indicator(Kind.IPV4, "91.215.85.17", "91.215.85.17", "91.215.85.17")
    assert enrich(httpserver, ip).result("crtsh").status is Status.NOT_APPLICABLE
    assert httpserver.log == []


@pytest.mark.parametrize(("issuer", "label"), [
    ("C=US, O=DigiCert Inc, CN=DigiCert TLS RSA SHA256 2020 CA1", "DigiCert Inc"),
    ('C=GB, ST=Greater Manchester, O="Sectigo Limited", CN=Sectigo RSA DV', "Sectigo Limited"),
    ("CN=Some Private CA", "Some Private CA"),
])
def test_issuer_label(issuer, label):
    assert issuer_label(issuer) == label
