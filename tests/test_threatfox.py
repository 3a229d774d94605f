"""ThreatFox against a real local HTTP server: JSON queries per kind, bare-IP search, no_result string."""

from __future__ import annotations

import json
import time

import pytest

from otc.config import Secret, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.base import RateLimit
from otc.sources.threatfox import SOURCE as THREATFOX

KEY = "dummy-abusech-key-456"


def ioc(value: str, ioc_type: str, confidence, **extra) -> dict:
    return {"id": "41", "ioc": value, "threat_type": "botnet_cc", "ioc_type": ioc_type,
            "malware": "win.qakbot", "malware_printable": "QakBot", "malware_alias": "Qbot,Quakbot",
            "confidence_level": confidence, "first_seen": "2026-10-01 10:00:00 UTC", "last_seen": None,
            "reference": None, "reporter": "reporter_t", "tags": ["qakbot"], **extra}


IP_ANSWER = {"query_status": "ok", "data": [
    ioc("91.215.85.17:443", "ip:port", 50),
    dict(ioc("91.215.85.17:2222", "ip:port", "90"), id="42", first_seen="2026-09-01 10:00:00 UTC",
         last_seen="2026-11-20 10:00:00 UTC", tags=["QakBot", "c2"]),
    dict(ioc("91.215.85.170:443", "ip:port", 100), id="43", malware_printable="Emotet"),  # a different IP
]}
NO_RESULT = {"query_status": "no_result", "data": "Your search did not yield any results"}


def ind(kind: Kind, value: str, **extra) -> Indicator:
    return Indicator(kind, value, value, value, **extra)


def enrich(httpserver, indicator: Indicator, keys: dict[str, str] | None = None):
    keys = {"OTC_ABUSECH_KEY": KEY} if keys is None else keys
    settings = Settings(urls={"OTC_THREATFOX_URL": httpserver.url_for("/tf")},
                        keys={n: Secret(v) for n, v in keys.items()}, timeout=3)
    return Enricher(settings, sources=[THREATFOX], rate_limits={"threatfox": RateLimit()}).enrich(indicator)


def assert_no_key(result) -> None:
    assert KEY not in json.dumps([result.message, result.raw, dict(result.fields)], default=str)


def test_ip_with_port_is_searched_bare_and_filtered_to_that_exact_ip(httpserver):
    httpserver.expect_request("/tf/api/v1/", method="POST", headers={"Auth-Key": KEY}, json={
        "query": "search_ioc", "search_term": "91.215.85.17", "exact_match": False}).respond_with_json(IP_ANSWER)
    enrichment = enrich(httpserver, ind(Kind.IPV4, "91.215.85.17", port=2222))
    result = enrichment.result("threatfox")
    assert result.status is Status.OK
    fields = result.fields
    assert fields["iocs"] == ["91.215.85.17:443", "91.215.85.17:2222"]  # not 91.215.85.170
    assert fields["ioc_count"] == 2
    assert fields["port_listed"] is True
    assert fields["malware_family"] == "QakBot"
    assert fields["confidence"] == 90  # the highest, though it came as a string
    assert fields["threat_type"] == "botnet_cc"
    assert fields["first_seen"] == "2026-09-01 10:00:00 UTC"
    assert fields["last_seen"] == "2026-11-20 10:00:00 UTC"
    assert fields["tags"] == ["qakbot", "c2"]
    assert fields["ids"] == [41, 42]
    assert [c.reason for c in enrichment.contributions] == [
        "+36 ThreatFox: IOC listed (QakBot, botnet_cc, confidence 90 %)"]
    assert enrichment.score == 36
    assert_no_key(result)


def test_only_other_ips_in_a_partial_match_is_not_found(httpserver):
    httpserver.expect_request("/tf/api/v1/", method="POST").respond_with_json(
        {"query_status": "ok", "data": [ioc("91.215.85.170:443", "ip:port", 100)]})
    enrichment = enrich(httpserver, ind(Kind.IPV4, "91.215.85.17"))
    assert enrichment.result("threatfox").status is Status.NOT_FOUND
    assert enrichment.score == 0


@pytest.mark.parametrize(("kind", "value", "body"), [
    (Kind.DOMAIN, "qak-c2.example-mal.net",
     {"query": "search_ioc", "search_term": "qak-c2.example-mal.net", "exact_match": True}),
    (Kind.URL, "http://qak-c2.example-mal.net/gate.php",
     {"query": "search_ioc", "search_term": "http://qak-c2.example-mal.net/gate.php", "exact_match": True}),
    (Kind.MD5, "5b7e82e051ade4b14d163eea2a17bf8b", {"query": "search_hash", "hash": "5b7e82e051ade4b14d163eea2a17bf8b"}),
    (Kind.SHA256, "b" * 64, {"query": "search_hash", "hash": "b" * 64}),
])
def test_query_body_per_kind(httpserver, kind, value, body):
    httpserver.expect_request("/tf/api/v1/", method="POST", json=body).respond_with_json(
        {"query_status": "ok", "data": [ioc(value, "domain", None)]})
    scope = Scope.NOT_APPLICABLE if kind in (Kind.MD5, Kind.SHA256) else Scope.GLOBAL
    enrichment = enrich(httpserver, ind(kind, value, scope=scope))
    assert enrichment.result("threatfox").status is Status.OK
    assert enrichment.result("threatfox").fields["confidence"] is None
    # no confidence given: counted at half weight, and the reason says so
    assert [c.reason for c in enrichment.contributions] == [
        "+20 ThreatFox: IOC listed (QakBot, botnet_cc, no confidence given)"]


def test_no_result_with_a_string_in_data_is_not_found(httpserver):
    httpserver.expect_request("/tf/api/v1/", method="POST").respond_with_json(NO_RESULT)
    enrichment = enrich(httpserver, ind(Kind.DOMAIN, "quiet.example-clean.org"))
    assert enrichment.result("threatfox").status is Status.NOT_FOUND
    assert enrichment.result("threatfox").fields == {"listed": False}
    assert enrichment.verdict is Verdict.UNKNOWN


def test_sha1_is_not_applicable(httpserver):
    assert enrich(httpserver, ind(Kind.SHA1, "c" * 40, scope=Scope.NOT_APPLICABLE)).result(
        "threatfox").status is Status.NOT_APPLICABLE
    assert httpserver.log == []


@pytest.mark.parametrize(("status", "body", "headers", "expected", "message_part"), [
    pytest.param(401, '{"query_status": "unknown_auth_key"}', {}, Status.AUTH_ERROR, "key rejected", id="401"),
    pytest.param(200, json.dumps({"query_status": "unknown_auth_key", "data": "The Auth-Key you provided is unknown."}),
                 {}, Status.AUTH_ERROR, "key rejected", id="200-auth"),
    pytest.param(200, json.dumps({"query_status": "failed", "data": "The Auth-Key you provided is unknown."}),
                 {}, Status.AUTH_ERROR, "key rejected", id="200-auth-in-data-only"),
    pytest.param(429, "{}", {"Retry-After": "120"}, Status.RATE_LIMITED, "retry after 120 s", id="429"),
    pytest.param(502, "Bad Gateway", {}, Status.ERROR, "server error (HTTP 502)", id="502"),
    pytest.param(200, '{"query_status": "ok", "data": [', {}, Status.ERROR, "not JSON", id="malformed-json"),
    pytest.param(200, "<html><head><title>Error</title></head></html>", {"Content-Type": "text/html"},
                 Status.ERROR, "HTML page", id="html-200"),
    pytest.param(200, '{"query_status": "ok", "data": "surprise"}', {}, Status.ERROR, "not a list", id="ok-string-data"),
    pytest.param(200, '{"query_status": "illegal_search_term", "data": "bad"}', {}, Status.ERROR,
                 "search term is not valid", id="illegal-search-term"),
])
def test_failures_become_statuses(httpserver, status, body, headers, expected, message_part):
    httpserver.expect_request("/tf/api/v1/", method="POST").respond_with_data(body, status=status, headers=headers)
    enrichment = enrich(httpserver, ind(Kind.IPV4, "91.215.85.17"))
    result = enrichment.result("threatfox")
    assert result.status is expected
    assert message_part in result.message
    assert enrichment.score == 0
    assert_no_key(result)


def test_429_with_short_retry_after_is_honoured(httpserver):
    httpserver.expect_oneshot_request("/tf/api/v1/", method="POST").respond_with_data(
        "{}", status=429, headers={"Retry-After": "1"})
    httpserver.expect_request("/tf/api/v1/", method="POST").respond_with_json(NO_RESULT)
    started = time.monotonic()
    assert enrich(httpserver, ind(Kind.IPV4, "91.215.85.17")).result("threatfox").status is Status.NOT_FOUND
    assert time.monotonic() - started >= 1.0 and len(httpserver.log) == 2


def test_no_key_is_skipped(httpserver):
    result = enrich(httpserver, ind(Kind.IPV4, "91.215.85.17"), keys={}).result("threatfox")
    assert result.status is Status.SKIPPED_NO_KEY
    assert "OTC_THREATFOX_KEY" in result.message and "auth.abuse.ch" in result.message
    assert httpserver.log == []
