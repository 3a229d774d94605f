"""Shodan InternetDB against a real local HTTP server."""

from __future__ import annotations

import json

import pytest

from otc.config import Settings
from otc.engine import Enricher
from otc.indicators import parse_indicator
from otc.model import Status
from otc.sources.internetdb import SOURCE as INTERNETDB

ANSWER_1111 = {
    "cpes": ["cpe:/a:cloudflare:cloudflare"],
    "hostnames": ["one.one.one.one"],
    "ip": "1.1.1.1",
    "ports": [443, 53, 80],
    "tags": ["cdn", "compromised"],
    "vulns": ["CVE-2020-0001", "CVE-2021-0002"],
}


def enrich(httpserver, ip: str):
    settings = Settings(urls={"OTC_INTERNETDB_URL": httpserver.url_for("/idb")}, timeout=3)
    return Enricher(settings, sources=[INTERNETDB]).enrich(parse_indicator(ip))


def test_ok_answer_fields_and_score(httpserver):
    httpserver.expect_request("/idb/1.1.1.1").respond_with_json(ANSWER_1111)
    enrichment = enrich(httpserver, "1.1.1.1")
    result = enrichment.result("internetdb")
    assert result.status is Status.OK
    assert result.fields["ports"] == [53, 80, 443]
    assert result.fields["tags"] == ["cdn", "compromised"]
    assert [c.reason for c in enrichment.contributions] == [
        "+30 Shodan InternetDB: tag 'compromised'",
        "+4 Shodan InternetDB: 2 CVE(s) inferred from banners",
    ]
    assert enrichment.score == 34


def test_404_is_not_found_not_clean(httpserver):
    httpserver.expect_request("/idb/203.0.113.9").respond_with_json({"detail": "No information available"}, status=404)
    # 203.0.113.9 is documentation space: it must never be sent, so use a global address instead
    httpserver.expect_request("/idb/9.9.9.10").respond_with_json({"detail": "No information available"}, status=404)
    enrichment = enrich(httpserver, "9.9.9.10")
    assert enrichment.result("internetdb").status is Status.NOT_FOUND
    assert enrichment.verdict.value == "unknown"


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (429, json.dumps({"detail": "Rate limit exceeded"}), {"Retry-After": "3600"}, Status.RATE_LIMITED),
        (500, "oops", {}, Status.ERROR),
        (200, "<html><body>Cloudflare</body></html>", {"Content-Type": "text/html"}, Status.ERROR),
        (200, '{"ports": [1,', {}, Status.ERROR),
        (200, "[1, 2]", {}, Status.ERROR),
        (403, "denied", {}, Status.AUTH_ERROR),
    ],
)
def test_failures_become_statuses(httpserver, status, body, headers, expected):
    httpserver.expect_request("/idb/8.8.4.4").respond_with_data(body, status=status, headers=headers)
    result = enrich(httpserver, "8.8.4.4").result("internetdb")
    assert result.status is expected
    assert result.message


def test_private_address_is_never_sent(httpserver):
    enrichment = enrich(httpserver, "192.168.1.20")
    assert enrichment.result("internetdb").status is Status.SKIPPED_PRIVACY
    assert httpserver.log == []
