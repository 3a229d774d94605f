"""AbuseIPDB against a real local HTTP server: answers, failures, CIDR blocks, key handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otc.config import Mode, Secret, Settings
from otc.engine import Enricher
from otc.errors import RateLimited
from otc.http import HttpResponse
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.abuseipdb import SOURCE as ABUSEIPDB
from otc.sources.abuseipdb import raise_for_failure

FIXTURES = Path(__file__).parent / "fixtures" / "reputation_a"
KEY = "dummy-abuse-key-123"
API = "/abuseipdb/api/v2"  # the override replaces scheme and host and keeps the service path
REPORTED = json.loads((FIXTURES / "abuseipdb_check_reported.json").read_text())
NEVER_REPORTED = {"data": {
    "ipAddress": "9.9.9.10", "isPublic": True, "ipVersion": 4, "isWhitelisted": None, "abuseConfidenceScore": 0,
    "countryCode": "US", "usageType": "Data Center/Web Hosting/Transit", "isp": "Quad9", "domain": "quad9.net",
    "hostnames": [], "isTor": False, "totalReports": 0, "numDistinctUsers": 0, "lastReportedAt": None}}


def indicator(value: str, kind: Kind = Kind.IPV4, scope: Scope = Scope.GLOBAL) -> Indicator:
    return Indicator(kind, value, value, value, scope=scope)


def settings(httpserver, key: str | None = KEY, **kwargs) -> Settings:
    return Settings(urls={"OTC_ABUSEIPDB_URL": httpserver.url_for("/abuseipdb")},
                    keys={"OTC_ABUSEIPDB_KEY": Secret(key)} if key else {}, timeout=3, **kwargs)


def enrich(httpserver, *indicators: Indicator, **kwargs):
    enrichments = list(Enricher(settings(httpserver, **kwargs), sources=[ABUSEIPDB]).enrich_many(indicators))
    return {e.indicator.value: e for e in enrichments}


def assert_no_key(*things) -> None:
    for thing in things:
        assert KEY not in json.dumps(thing, default=str)


def test_reported_address_fields_score_and_request(httpserver):
    httpserver.expect_request(
        API + "/check", query_string={"ipAddress": "185.220.101.78", "maxAgeInDays": "90"},
        headers={"Key": KEY, "Accept": "application/json"},
    ).respond_with_json(REPORTED)
    enrichment = enrich(httpserver, indicator("185.220.101.78"))["185.220.101.78"]
    result = enrichment.result("abuseipdb")
    assert result.status is Status.OK
    assert result.fields == {
        "confidence": 87, "total_reports": 412, "distinct_reporters": 38,
        "last_reported_at": "2026-11-30T22:10:05+00:00", "usage_type": "Data Center/Web Hosting/Transit",
        "isp": "Example Exit Hosting GmbH", "domain": "example-exit.net", "country_code": "DE", "is_tor": True,
        "is_whitelisted": False, "hostnames": ["tor-exit-78.example-exit.net"],
    }
    assert [c.reason for c in enrichment.contributions] == [
        "+34.8 AbuseIPDB: confidence 87 % from 412 reports by 38 reporters"]
    assert enrichment.score == 35
    assert_no_key(result.raw, result.fields, result.message)


def test_never_reported_is_an_answer_without_score_not_benign(httpserver):
    # AbuseIPDB has no "not found": an address nobody reported is an answer with zero counts
    httpserver.expect_request(API + "/check").respond_with_json(NEVER_REPORTED)
    enrichment = enrich(httpserver, indicator("9.9.9.10"))["9.9.9.10"]
    result = enrichment.result("abuseipdb")
    assert result.status is Status.OK
    assert (result.fields["confidence"], result.fields["total_reports"], result.fields["last_reported_at"]) == (0, 0, None)
    assert result.fields["is_whitelisted"] is None
    assert enrichment.contributions == ()
    assert enrichment.verdict is Verdict.UNKNOWN


def test_whitelisted_address_subtracts(httpserver):
    body = json.loads(json.dumps(NEVER_REPORTED))
    body["data"]["isWhitelisted"] = True
    httpserver.expect_request(API + "/check").respond_with_json(body)
    enrichment = enrich(httpserver, indicator("9.9.9.10"))["9.9.9.10"]
    assert [c.reason for c in enrichment.contributions] == ["−15 AbuseIPDB: on AbuseIPDB's allow-list"]
    assert enrichment.verdict is Verdict.LIKELY_BENIGN


def test_ipv6_address_goes_in_the_query_encoded(httpserver):
    httpserver.expect_request(
        API + "/check", query_string={"ipAddress": "2001:4860:4860::8888", "maxAgeInDays": "90"},
    ).respond_with_json(NEVER_REPORTED)
    result = enrich(httpserver, indicator("2001:4860:4860::8888", Kind.IPV6))["2001:4860:4860::8888"].result("abuseipdb")
    assert result.status is Status.OK
    assert "ipAddress=2001%3A4860%3A4860%3A%3A8888" in httpserver.log[0][0].query_string.decode()


def test_cidr_uses_check_block(httpserver):
    httpserver.expect_request(
        API + "/check-block", query_string={"network": "185.220.101.0/24", "maxAgeInDays": "30"},
        headers={"Key": KEY},
    ).respond_with_json(json.loads((FIXTURES / "abuseipdb_check_block_reported.json").read_text()))
    enrichment = enrich(httpserver, indicator("185.220.101.0/24", Kind.CIDR))["185.220.101.0/24"]
    result = enrichment.result("abuseipdb")
    assert result.status is Status.OK
    assert result.fields["network"] == "185.220.101.0/255.255.255.0"
    assert result.fields["reported_addresses"] == 3
    assert result.fields["total_reports"] == 455
    assert result.fields["max_confidence"] == 87
    assert result.fields["top_addresses"][0] == "185.220.101.78 (412 reports, confidence 87 %)"
    assert [c.reason for c in enrichment.contributions] == [
        "+17.4 AbuseIPDB: highest confidence 87 % among 3 reported address(es) in the block"]


@pytest.mark.parametrize("network", ["185.220.0.0/16", "185.220.100.0/23"])
def test_cidr_larger_than_free_tier_is_not_sent(httpserver, network):
    result = enrich(httpserver, indicator(network, Kind.CIDR))[network].result("abuseipdb")
    assert result.status is Status.NOT_APPLICABLE
    assert "larger than the /24" in result.message
    assert httpserver.log == []


def test_rejected_key_is_auth_error_and_never_echoed(httpserver):
    # the service quoting the key back must not put it on the page
    httpserver.expect_request(API + "/check").respond_with_json(
        {"errors": [{"detail": f"Authentication failed for key {KEY}.", "status": 401}]}, status=401)
    result = enrich(httpserver, indicator("8.8.4.4"))["8.8.4.4"].result("abuseipdb")
    assert result.status is Status.AUTH_ERROR
    assert result.message.startswith("key rejected by AbuseIPDB (HTTP 401: Authentication failed for key ***")
    assert_no_key(result.raw, result.fields, result.message)


def test_429_with_retry_after_marks_the_rest_quota_exceeded(httpserver):
    httpserver.expect_request(API + "/check").respond_with_json(
        {"errors": [{"detail": "Daily rate limit of 1000 requests exceeded for this endpoint.", "status": 429}]},
        status=429, headers={"Retry-After": "29241", "X-RateLimit-Remaining": "0"})
    addresses = [indicator(f"8.8.{n}.4") for n in range(12)]
    found = enrich(httpserver, *addresses)
    assert {e.result("abuseipdb").status for e in found.values()} == {Status.RATE_LIMITED}
    messages = [e.result("abuseipdb").message for e in found.values()]
    sent = len(httpserver.log)
    # only the lookups already in flight when the first 429 came back were sent; the rest waited for nothing
    assert 1 <= sent <= ABUSEIPDB.max_concurrency
    assert sum("Daily rate limit of 1000 requests exceeded" in m for m in messages) == sent
    assert sum(m.startswith("quota exceeded — not checked") for m in messages) == 12 - sent
    assert all(e.score == 0 and e.verdict is Verdict.UNKNOWN and not e.contributions for e in found.values())


def test_429_without_retry_after_waits_until_the_daily_reset():
    response = HttpResponse(429, {"X-RateLimit-Reset": "1545973200"}, b'{"errors": []}', 1.0)
    with pytest.raises(RateLimited) as caught:
        raise_for_failure(response, now=1545973200 - 3600)
    assert caught.value.retry_after == 3600


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "message"),
    [
        (503, "Service Unavailable", {}, Status.ERROR, "AbuseIPDB had a server error (HTTP 503)"),
        (500, "<!DOCTYPE html><html><body><h1>Whoops, looks like something went wrong.</h1></body></html>",
         {"Content-Type": "text/html"}, Status.ERROR, "AbuseIPDB had a server error (HTTP 500)"),
        (200, "<html><body>Just a moment...</body></html>", {"Content-Type": "text/html"}, Status.ERROR,
         "answer is an HTML page (HTTP 200)"),
        (200, '{"data": {"abuseConfidenceScore": 8', {}, Status.ERROR, "answer is not JSON (HTTP 200)"),
        (200, '{"data": []}', {}, Status.ERROR, "AbuseIPDB answer has no data object"),
        (200, '{"data": {"abuseConfidenceScore": "high"}}', {}, Status.ERROR,
         "AbuseIPDB answer has no number in abuseConfidenceScore"),
        (422, json.dumps({"errors": [{"detail": "The max age in days must be between 1 and 365.", "status": 422}]}),
         {}, Status.ERROR, "AbuseIPDB refused the request (HTTP 422: The max age in days must be between 1 and 365.)"),
    ],
    ids=["503", "500-html", "200-html", "malformed-json", "wrong-shape", "wrong-type", "422"],
)
def test_failures_become_statuses_with_plain_messages(httpserver, status, body, headers, expected, message):
    httpserver.expect_request(API + "/check").respond_with_data(body, status=status, headers=headers)
    result = enrich(httpserver, indicator("8.8.4.4"))["8.8.4.4"].result("abuseipdb")
    assert result.status is expected
    assert result.message == message
    assert result.contributions == ()


def test_no_key_is_skipped_and_says_where_to_get_one(httpserver):
    result = enrich(httpserver, indicator("8.8.4.4"), key=None)["8.8.4.4"].result("abuseipdb")
    assert result.status is Status.SKIPPED_NO_KEY
    assert "OTC_ABUSEIPDB_KEY" in result.message and "abuseipdb.com/account/api" in result.message
    assert httpserver.log == []


def test_private_address_and_keyless_mode_send_nothing(httpserver):
    private = enrich(httpserver, indicator("10.1.2.3", scope=Scope.PRIVATE))["10.1.2.3"].result("abuseipdb")
    keyless = enrich(httpserver, indicator("8.8.4.4"), mode=Mode.KEYLESS)["8.8.4.4"].result("abuseipdb")
    assert (private.status, keyless.status) == (Status.SKIPPED_PRIVACY, Status.SKIPPED_PRIVACY)
    assert httpserver.log == []
