"""GreyNoise Community against a real local HTTP server: noise, RIOT, "not observed", keyless use, failures."""

from __future__ import annotations

import json

import pytest

from otc.config import Mode, Secret, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.greynoise import SOURCE as GREYNOISE

KEY = "dummy-greynoise-key-000"
API = "/greynoise/v3/community"  # the override replaces scheme and host and keeps the service path


def answer(ip: str, **values) -> dict:
    body = {"ip": ip, "noise": False, "riot": False, "classification": "unknown", "name": "unknown",
            "link": f"https://viz.greynoise.io/ip/{ip}", "last_seen": "2026-11-30", "message": "Success"}
    body.update(values)
    return body


def indicator(value: str, kind: Kind = Kind.IPV4) -> Indicator:
    return Indicator(kind, value, value, value, scope=Scope.GLOBAL)


def enrich(httpserver, item: Indicator, key: str | None = KEY, **kwargs):
    settings = Settings(urls={"OTC_GREYNOISE_URL": httpserver.url_for("/greynoise")},
                        keys={"OTC_GREYNOISE_KEY": Secret(key)} if key else {}, timeout=3, **kwargs)
    return Enricher(settings, sources=[GREYNOISE]).enrich(item)


def test_malicious_scanner(httpserver):
    httpserver.expect_request(f"{API}/185.220.101.78", headers={"key": KEY}).respond_with_json(
        answer("185.220.101.78", noise=True, classification="malicious", name="Example Botnet", last_seen="2026-12-01"))
    enrichment = enrich(httpserver, indicator("185.220.101.78"))
    result = enrichment.result("greynoise")
    assert result.status is Status.OK
    assert result.fields == {"classification": "malicious", "noise": True, "riot": False, "name": "Example Botnet",
                             "last_seen": "2026-12-01", "link": "https://viz.greynoise.io/ip/185.220.101.78"}
    assert [c.reason for c in enrichment.contributions] == [
        "+35 GreyNoise: classified malicious (Example Botnet), seen scanning the internet"]
    assert enrichment.verdict is Verdict.SUSPICIOUS


def test_riot_known_benign_service_subtracts(httpserver):
    httpserver.expect_request(f"{API}/1.1.1.1").respond_with_json(
        answer("1.1.1.1", riot=True, classification="benign", name="Cloudflare Public DNS"))
    enrichment = enrich(httpserver, indicator("1.1.1.1"))
    assert [c.reason for c in enrichment.contributions] == [
        "−25 GreyNoise: known benign service (Cloudflare Public DNS)"]
    assert enrichment.verdict is Verdict.LIKELY_BENIGN


def test_benign_scanner_that_is_not_riot(httpserver):
    httpserver.expect_request(f"{API}/71.6.135.131").respond_with_json(
        answer("71.6.135.131", noise=True, classification="benign", name="Shodan.io"))
    enrichment = enrich(httpserver, indicator("71.6.135.131"))
    assert [c.reason for c in enrichment.contributions] == ["−10 GreyNoise: classified benign (Shodan.io)"]


def test_unknown_classification_scores_nothing(httpserver):
    httpserver.expect_request(f"{API}/9.9.9.10").respond_with_json(answer("9.9.9.10", noise=True))
    enrichment = enrich(httpserver, indicator("9.9.9.10"))
    assert enrichment.result("greynoise").fields["classification"] == "unknown"
    assert enrichment.contributions == () and enrichment.verdict is Verdict.UNKNOWN


def test_404_not_observed_is_not_found_with_flags(httpserver):
    httpserver.expect_request(f"{API}/123.123.115.117").respond_with_json(
        {"ip": "123.123.115.117", "noise": False, "riot": False,
         "message": "IP not observed scanning the internet or contained in RIOT data set."}, status=404)
    enrichment = enrich(httpserver, indicator("123.123.115.117"))
    result = enrichment.result("greynoise")
    assert result.status is Status.NOT_FOUND
    assert result.fields == {"noise": False, "riot": False}
    assert result.message == "not observed scanning the internet and not a known benign service"
    assert enrichment.verdict is Verdict.UNKNOWN


def test_404_without_greynoise_body_is_an_error(httpserver):
    httpserver.expect_request(f"{API}/9.9.9.10").respond_with_data("<html>Not Found</html>", status=404)
    result = enrich(httpserver, indicator("9.9.9.10")).result("greynoise")
    assert result.status is Status.ERROR
    assert result.message == "GreyNoise refused the request (HTTP 404, not a GreyNoise answer)"


def test_keyless_lookup_sends_no_key_header(httpserver):
    httpserver.expect_request(f"{API}/1.1.1.1").respond_with_json(answer("1.1.1.1", riot=True, classification="benign"))
    result = enrich(httpserver, indicator("1.1.1.1"), key=None, mode=Mode.KEYLESS).result("greynoise")
    assert result.status is Status.OK
    assert "key" not in {name.lower() for name in httpserver.log[0][0].headers.keys()}


def test_ipv6_is_not_applicable(httpserver):
    result = enrich(httpserver, indicator("2606:4700:4700::1111", Kind.IPV6)).result("greynoise")
    assert result.status is Status.NOT_APPLICABLE
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "message"),
    [
        (401, json.dumps({"message": "Invalid API Key"}), {}, Status.AUTH_ERROR,
         "key rejected by GreyNoise (HTTP 401: Invalid API Key)"),
        (429, json.dumps({"plan": "unauthenticated", "rate-limit": "10-lookups/day",
                          "message": "You have hit your daily rate limit of 10 requests per day."}),
         {"Retry-After": "40000"}, Status.RATE_LIMITED,
         "GreyNoise rate limit reached (HTTP 429: You have hit your daily rate limit of 10 requests per day.; retry after 40000 s)"),
        (400, json.dumps({"message": "Request is not a valid routable IPv4 address"}), {}, Status.ERROR,
         "GreyNoise refused the request (HTTP 400: Request is not a valid routable IPv4 address)"),
        (500, "oops", {}, Status.ERROR, "GreyNoise had a server error (HTTP 500)"),
        (503, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", {"Content-Type": "text/html"},
         Status.ERROR, "GreyNoise had a server error (HTTP 503)"),
        (200, "<html><body>maintenance</body></html>", {"Content-Type": "text/html"}, Status.ERROR,
         "answer is an HTML page (HTTP 200)"),
        (200, '{"ip": "8.8.4.4", "noise": tru', {}, Status.ERROR, "answer is not JSON (HTTP 200)"),
        (200, '{"ip": "8.8.4.4", "message": "Success"}', {}, Status.ERROR, "GreyNoise answer has no noise/riot flags"),
        (200, '{"ip": "8.8.4.4", "noise": "yes", "riot": false}', {}, Status.ERROR,
         "GreyNoise answer has no true/false in noise"),
    ],
    ids=["401", "429", "400", "500", "503-html", "200-html", "malformed-json", "wrong-shape", "wrong-type"],
)
def test_failures_become_statuses_with_plain_messages(httpserver, status, body, headers, expected, message):
    httpserver.expect_request(f"{API}/8.8.4.4").respond_with_data(body, status=status, headers=headers)
    enrichment = enrich(httpserver, indicator("8.8.4.4"))
    result = enrichment.result("greynoise")
    assert result.status is expected
    assert result.message == message
    assert enrichment.contributions == ()


def test_key_is_optional():
    assert GREYNOISE.key_optional and not GREYNOISE.needs_key
    assert GREYNOISE.allowed_in(Mode.KEYLESS)
