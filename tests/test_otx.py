"""AlienVault OTX against a real local HTTP server: sections, kinds, keyless use, passive DNS, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otc.config import Mode, Secret, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.otx import SOURCE as OTX
from otc.sources.otx import OtxSource

FIXTURES = Path(__file__).parent / "fixtures" / "reputation_a"
KEY = "dummy-otx-key-789"
API = "/otx/api/v1/indicators"  # the override replaces scheme and host and keeps the service path
PULSED = json.loads((FIXTURES / "otx_ipv4_pulsed_general.json").read_text())
PASSIVE_DNS = json.loads((FIXTURES / "otx_ipv4_passive_dns.json").read_text())


def general(count: int = 0, validation: list | None = None, **extra) -> dict:
    return {"indicator": "x", "type": "x", "validation": validation or [], "false_positive": [],
            "pulse_info": {"count": count, "pulses": [], "references": [], "related": {}}, **extra}


def indicator(value: str, kind: Kind = Kind.IPV4, **kwargs) -> Indicator:
    scope = Scope.NOT_APPLICABLE if kind in (Kind.MD5, Kind.SHA1, Kind.SHA256) else Scope.GLOBAL
    return Indicator(kind, value, value, value, scope=scope, **kwargs)


def settings(httpserver, key: str | None = KEY, **kwargs) -> Settings:
    return Settings(urls={"OTC_OTX_URL": httpserver.url_for("/otx")},
                    keys={"OTC_OTX_KEY": Secret(key)} if key else {}, timeout=3, **kwargs)


def enrich(httpserver, item: Indicator, source: OtxSource = OTX, **kwargs):
    return Enricher(settings(httpserver, **kwargs), sources=[source]).enrich(item)


def test_pulsed_address_fields_score_and_passive_dns(httpserver):
    httpserver.expect_request(f"{API}/IPv4/185.220.101.78/general", headers={"X-OTX-API-KEY": KEY}).respond_with_json(PULSED)
    httpserver.expect_request(f"{API}/IPv4/185.220.101.78/passive_dns").respond_with_json(PASSIVE_DNS)
    enrichment = enrich(httpserver, indicator("185.220.101.78"))
    result = enrichment.result("otx")
    assert result.status is Status.OK
    fields = result.fields
    assert fields["pulse_count"] == 12  # the total, though the answer lists only two pulses
    assert fields["pulses"] == ["Tor exit scanning campaign", "SSH brute force sources - November"]
    assert fields["pulse_tags"] == ["tor", "scanner", "ssh", "bruteforce"]
    assert fields["malware_families"] == ["Mirai", "Gafgyt"]
    assert fields["adversaries"] == ["Example Group"]
    assert fields["allowlisted"] is False
    assert fields["asn"] == "AS60729 example exit hosting"
    assert fields["passive_dns_records"] == 3
    assert fields["related_hosts"] == ["tor-exit-78.example-exit.net", "login-update.example-phish.com"]
    assert [c.reason for c in enrichment.contributions] == [
        "+20 AlienVault OTX: in 12 pulse(s) (e.g. 'Tor exit scanning campaign'); malware: Mirai, Gafgyt"]
    assert set(result.raw) == {"general", "passive_dns"}


def test_unpulsed_address_costs_one_request_and_scores_nothing(httpserver):
    httpserver.expect_request(f"{API}/IPv4/9.9.9.10/general").respond_with_json(general())
    enrichment = enrich(httpserver, indicator("9.9.9.10"))
    assert enrichment.result("otx").fields["pulse_count"] == 0
    assert "related_hosts" not in enrichment.result("otx").fields
    assert len(httpserver.log) == 1
    assert enrichment.contributions == () and enrichment.verdict is Verdict.UNKNOWN


def test_keyless_lookup_works_and_sends_no_key_header(httpserver):
    httpserver.expect_request(f"{API}/IPv4/9.9.9.10/general").respond_with_json(general(count=1))
    httpserver.expect_request(f"{API}/IPv4/9.9.9.10/passive_dns").respond_with_json({"passive_dns": [], "count": 0})
    result = enrich(httpserver, indicator("9.9.9.10"), key=None, mode=Mode.KEYLESS).result("otx")
    assert result.status is Status.OK and result.fields["pulse_count"] == 1
    assert all("X-OTX-API-KEY" not in request.headers for request, _ in httpserver.log)


def test_allowlisted_indicator_subtracts(httpserver):
    validation = [{"source": "whitelist", "message": "contained in whitelisted prefix", "name": "Whitelisted IP"},
                  {"source": "majestic", "message": "Whitelisted domain", "name": "Majestic rank #1"}]
    httpserver.expect_request(f"{API}/IPv4/8.8.4.4/general").respond_with_json(general(validation=validation))
    enrichment = enrich(httpserver, indicator("8.8.4.4"))
    fields = enrichment.result("otx").fields
    assert fields["allowlisted_by"] == ["Whitelisted IP: contained in whitelisted prefix"]
    assert fields["validation"] == ["Whitelisted IP: contained in whitelisted prefix", "Majestic rank #1: Whitelisted domain"]
    assert [c.reason for c in enrichment.contributions] == [
        "−15 AlienVault OTX: allow-listed (Whitelisted IP: contained in whitelisted prefix)"]
    assert enrichment.verdict is Verdict.LIKELY_BENIGN


def test_popularity_rank_alone_is_not_allowlisting(httpserver):
    validation = [{"source": "alexa", "message": "Alexa rank: #120", "name": "Listed on Alexa"}]
    httpserver.expect_request(f"{API}/domain/example.org/general").respond_with_json(general(validation=validation))
    enrichment = enrich(httpserver, indicator("example.org", Kind.DOMAIN, registered_domain="example.org"))
    assert enrichment.result("otx").fields["allowlisted"] is False
    assert enrichment.contributions == ()


@pytest.mark.parametrize(
    ("item", "path"),
    [
        (indicator("2606:4700:4700::1111", Kind.IPV6), "/IPv6/2606:4700:4700::1111/general"),
        (indicator("example.org", Kind.DOMAIN, registered_domain="example.org"), "/domain/example.org/general"),
        (indicator("login.example.org", Kind.DOMAIN, registered_domain="example.org"), "/hostname/login.example.org/general"),
        (indicator("44d88612fea8a8f36de82e1278abb02f", Kind.MD5), "/file/44d88612fea8a8f36de82e1278abb02f/general"),
        (indicator("3395856ce81f2b7382dee72602f798b642f14140", Kind.SHA1), "/file/3395856ce81f2b7382dee72602f798b642f14140/general"),
    ],
    ids=["ipv6", "domain", "hostname", "md5", "sha1"],
)
def test_each_kind_goes_to_its_section_path(httpserver, item, path):
    httpserver.expect_request(API + path).respond_with_json(general())
    assert enrich(httpserver, item).result("otx").status is Status.OK


def test_url_is_percent_encoded_in_the_path(httpserver):
    url = "https://login.example-phish.com/verify?acct=1"
    httpserver.expect_request(f"{API}/url/{url}/general").respond_with_json(general(count=3))
    result = enrich(httpserver, indicator(url, Kind.URL, host="login.example-phish.com", host_kind=Kind.DOMAIN)).result("otx")
    assert result.status is Status.OK and result.fields["pulse_count"] == 3
    raw_uri = httpserver.log[0][0].environ["REQUEST_URI"]
    assert raw_uri == "/otx/api/v1/indicators/url/https%3A%2F%2Flogin.example-phish.com%2Fverify%3Facct%3D1/general"
    assert len(httpserver.log) == 1  # no passive DNS for a URL


def test_failed_passive_dns_keeps_the_general_answer(httpserver):
    httpserver.expect_request(f"{API}/IPv4/185.220.101.78/general").respond_with_json(PULSED)
    httpserver.expect_request(f"{API}/IPv4/185.220.101.78/passive_dns").respond_with_json(
        {"detail": "Request was throttled."}, status=429)
    enrichment = enrich(httpserver, indicator("185.220.101.78"))
    result = enrichment.result("otx")
    assert result.status is Status.OK and result.fields["pulse_count"] == 12
    assert result.fields["passive_dns_error"] == (
        "passive DNS not fetched: AlienVault OTX rate limit reached (HTTP 429: Request was throttled.)")
    assert enrichment.contributions[0].rule == "pulses"


def test_malware_samples_when_asked_for(httpserver):
    httpserver.expect_request(f"{API}/IPv4/9.9.9.10/general").respond_with_json(general())
    httpserver.expect_request(f"{API}/IPv4/9.9.9.10/malware").respond_with_json({"data": [
        {"hash": "b" * 64, "detections": {"avast": "ELF:Mirai-AFB [Trj]", "avg": None}, "date": "2026-10-20T02:39:00"}],
        "size": 1, "count": 1})
    fields = enrich(httpserver, indicator("9.9.9.10"), source=OtxSource(malware_samples=True)).result("otx").fields
    assert (fields["malware_samples"], fields["malware_sample_hashes"], fields["malware_detections"]) == (
        1, ["b" * 64], ["ELF:Mirai-AFB [Trj]"])


def test_not_found_is_an_answer(httpserver):
    httpserver.expect_request(f"{API}/IPv4/9.9.9.10/general").respond_with_json({"detail": "Not found."}, status=404)
    enrichment = enrich(httpserver, indicator("9.9.9.10"))
    result = enrichment.result("otx")
    assert result.status is Status.NOT_FOUND
    assert result.message == "OTX has no record of this indicator"
    assert enrichment.verdict is Verdict.UNKNOWN


def test_bare_404_page_is_a_failure_not_nothing_known(httpserver):
    httpserver.expect_request(f"{API}/IPv4/9.9.9.10/general").respond_with_data("<h1>Not Found</h1>", status=404)
    result = enrich(httpserver, indicator("9.9.9.10")).result("otx")
    assert result.status is Status.ERROR
    assert result.message == "AlienVault OTX refused the request (HTTP 404)"


def test_forbidden_without_a_key_says_how_to_get_one(httpserver):
    httpserver.expect_request(f"{API}/IPv4/9.9.9.10/general").respond_with_json(
        {"detail": "Authentication credentials were not provided."}, status=403)
    result = enrich(httpserver, indicator("9.9.9.10"), key=None).result("otx")
    assert result.status is Status.AUTH_ERROR
    assert result.message == ("AlienVault OTX refused access without a key (HTTP 403: Authentication credentials were not "
                              "provided.) — set OTC_OTX_KEY (https://otx.alienvault.com/api)")


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "message"),
    [
        (403, json.dumps({"detail": "Invalid API key"}), {}, Status.AUTH_ERROR,
         "key rejected by AlienVault OTX (HTTP 403: Invalid API key)"),
        (401, json.dumps({"detail": "Invalid API key"}), {}, Status.AUTH_ERROR,
         "key rejected by AlienVault OTX (HTTP 401: Invalid API key)"),
        (429, json.dumps({"detail": "Request was throttled. Expected available in 3600 seconds."}), {"Retry-After": "3600"},
         Status.RATE_LIMITED, "AlienVault OTX rate limit reached (HTTP 429: Request was throttled. Expected available in 3600 seconds.; retry after 3600 s)"),
        (400, json.dumps({"detail": "Invalid IP"}), {}, Status.ERROR, "AlienVault OTX refused the request (HTTP 400: Invalid IP)"),
        (500, "Internal Server Error", {}, Status.ERROR, "AlienVault OTX had a server error (HTTP 500)"),
        (504, "<html><body><h1>504 Gateway Time-out</h1></body></html>", {"Content-Type": "text/html"}, Status.ERROR,
         "AlienVault OTX had a server error (HTTP 504)"),
        (200, "<!DOCTYPE html><html><title>OTX</title></html>", {"Content-Type": "text/html"}, Status.ERROR,
         "answer is an HTML page (HTTP 200)"),
        (200, '{"pulse_info": {"count": 2, "pulses": [', {}, Status.ERROR, "answer is not JSON (HTTP 200)"),
        (200, '{"reputation": 0}', {}, Status.ERROR, "AlienVault OTX answer has no pulse_info (not a 'general' section)"),
        (200, '{"pulse_info": {"count": "many", "pulses": []}}', {}, Status.ERROR,
         "AlienVault OTX pulse_info has no pulse count or list"),
    ],
    ids=["403", "401", "429", "400", "500", "504-html", "200-html", "malformed-json", "wrong-shape", "wrong-type"],
)
def test_failures_become_statuses_with_plain_messages(httpserver, status, body, headers, expected, message):
    httpserver.expect_request(f"{API}/IPv4/8.8.4.4/general").respond_with_data(body, status=status, headers=headers)
    enrichment = enrich(httpserver, indicator("8.8.4.4"))
    result = enrichment.result("otx")
    assert result.status is expected
    assert result.message == message
    assert enrichment.contributions == ()


def test_key_is_optional_and_allowed_in_keyless_mode():
    assert OTX.key_optional and not OTX.needs_key
    assert OTX.allowed_in(Mode.KEYLESS) and not OTX.allowed_in(Mode.LOCAL)
