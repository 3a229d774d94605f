"""VirusTotal v3 against a real local HTTP server: every indicator kind, not found, failures, API-01."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otc.config import Secret, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.base import RateLimit
from otc.sources.virustotal import SOURCE as VIRUSTOTAL
from otc.sources.virustotal import VirusTotalSource, url_id

FIXTURES = Path(__file__).parent / "fixtures" / "reputation_a"
KEY = "dummy-vt-key-456"
API = "/virustotal/api/v3"  # the override replaces scheme and host and keeps the service path
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"
UNKNOWN_SHA256 = "a" * 64
EICAR = json.loads((FIXTURES / "vt_file_eicar.json").read_text())
FLAGGED_IP = json.loads((FIXTURES / "vt_ip_flagged.json").read_text())
NOT_FOUND = {"error": {"code": "NotFoundError", "message": "Resource not found."}}


def indicator(value: str, kind: Kind = Kind.IPV4, **kwargs) -> Indicator:
    return Indicator(kind, value, value, value, scope=Scope.NOT_APPLICABLE if kind in (
        Kind.MD5, Kind.SHA1, Kind.SHA256) else Scope.GLOBAL, **kwargs)


def settings(httpserver, key: str | None = KEY) -> Settings:
    return Settings(urls={"OTC_VIRUSTOTAL_URL": httpserver.url_for("/virustotal")},
                    keys={"OTC_VIRUSTOTAL_KEY": Secret(key)} if key else {}, timeout=3)


def enrich_all(httpserver, *indicators: Indicator, source: VirusTotalSource = VIRUSTOTAL, **kwargs):
    # the free tier's 4/min pace would make each test wait 15 s per request; pacing is proven in test_rate_limits
    fast = {"virustotal": RateLimit(per_second=50)}
    return list(Enricher(settings(httpserver, **kwargs), sources=[source], rate_limits=fast).enrich_many(indicators))


def enrich(httpserver, item: Indicator, **kwargs):
    return enrich_all(httpserver, item, **kwargs)[0]


def domain_object(name: str, **attributes) -> dict:
    stats = {"harmless": 70, "malicious": 0, "suspicious": 0, "undetected": 20, "timeout": 0}
    return {"data": {"type": "domain", "id": name, "attributes": {"last_analysis_stats": stats, **attributes}}}


def test_url_id_is_unpadded_base64url():
    assert url_id("http://example.com/") == "aHR0cDovL2V4YW1wbGUuY29tLw"
    assert "=" not in url_id("http://a.b/c") and "/" not in url_id("https://x.y/?a=b&c=/d")


def test_ip_fields_score_and_key_header(httpserver):
    httpserver.expect_request(f"{API}/ip_addresses/185.220.101.78", headers={"x-apikey": KEY}).respond_with_json(FLAGGED_IP)
    enrichment = enrich(httpserver, indicator("185.220.101.78"))
    result = enrichment.result("virustotal")
    assert result.status is Status.OK
    fields = result.fields
    assert (fields["malicious"], fields["suspicious"], fields["harmless"], fields["engines"]) == (12, 2, 60, 94)
    assert fields["reputation"] == -31
    assert fields["tags"] == ["tor"]
    assert fields["last_analysis_date"] == "2025-11-30T10:20:00Z"
    assert fields["as_owner"] == "Example Exit Hosting" and fields["country"] == "DE"
    assert fields["flagged_by"] == ["GreenSnow: malicious", "Snort IP sample list: suspicious"]
    assert [c.reason for c in enrichment.contributions] == [
        "+50 VirusTotal: 12 of 94 engines flag it malicious",
        "+2 VirusTotal: 2 of 94 engines flag it suspicious",
    ]
    assert KEY not in json.dumps([result.raw, result.fields, result.message], default=str)


def test_file_hash_threat_label(httpserver):
    httpserver.expect_request(f"{API}/files/{EICAR_MD5}").respond_with_json(EICAR)
    enrichment = enrich(httpserver, indicator(EICAR_MD5, Kind.MD5))
    fields = enrichment.result("virustotal").fields
    assert (fields["malicious"], fields["engines"]) == (62, 67)  # the 9 "type-unsupported" did not look
    assert fields["threat_label"] == "virus.eicar/test"
    assert fields["meaningful_name"] == "eicar.com"
    assert fields["sha256"] == EICAR_SHA256
    assert enrichment.contributions[0].reason == "+50 VirusTotal: 62 of 67 engines flag it malicious (virus.eicar/test)"
    assert enrichment.verdict is Verdict.SUSPICIOUS


def test_url_is_looked_up_by_its_id(httpserver):
    url = "https://login.example-phish.com/verify?acct=1&next=/home"
    body = {"data": {"type": "url", "id": "0" * 64, "attributes": {
        "url": url, "last_final_url": "https://login.example-phish.com/verify", "threat_names": ["Phishing.Generic"],
        "categories": {"Forcepoint ThreatSeeker": "phishing and other frauds", "Sophos": "phishing"},
        "last_analysis_date": 1764500000, "reputation": -5,
        "last_analysis_stats": {"harmless": 60, "malicious": 7, "suspicious": 1, "undetected": 22, "timeout": 0}}}}
    httpserver.expect_request(f"{API}/urls/{url_id(url)}").respond_with_json(body)
    enrichment = enrich(httpserver, indicator(url, Kind.URL, host="login.example-phish.com", host_kind=Kind.DOMAIN))
    fields = enrichment.result("virustotal").fields
    assert fields["categories"] == ["phishing", "phishing and other frauds"]
    assert fields["threat_label"] == "Phishing.Generic"
    assert fields["final_url"] == "https://login.example-phish.com/verify"
    assert fields["last_analysis_date"] == "2025-11-30T10:53:20Z"
    assert enrichment.contributions[0].points == 35.0


def test_domain_with_good_reputation_and_no_flags_subtracts(httpserver):
    httpserver.expect_request(f"{API}/domains/example.org").respond_with_json(
        domain_object("example.org", reputation=120, categories={"Sophos": "information technology"}))
    enrichment = enrich(httpserver, indicator("example.org", Kind.DOMAIN))
    assert [c.reason for c in enrichment.contributions] == [
        "−10 VirusTotal: community reputation +120 and no engine flags it"]
    assert enrichment.result("virustotal").fields["categories"] == ["information technology"]


def test_not_found_is_an_answer_not_clean(httpserver):
    httpserver.expect_request(f"{API}/files/{UNKNOWN_SHA256}").respond_with_json(NOT_FOUND, status=404)
    enrichment = enrich(httpserver, indicator(UNKNOWN_SHA256, Kind.SHA256))
    result = enrichment.result("virustotal")
    assert result.status is Status.NOT_FOUND
    assert result.message == "not found in VirusTotal"
    assert enrichment.verdict is Verdict.UNKNOWN


def test_bare_404_page_is_a_failure_not_never_seen(httpserver):
    # a wrong OTC_VIRUSTOTAL_URL or a proxy answers 404 too; only VirusTotal's NotFoundError means "never seen"
    httpserver.expect_request(f"{API}/files/{UNKNOWN_SHA256}").respond_with_data("<html>404 Not Found</html>", status=404)
    result = enrich(httpserver, indicator(UNKNOWN_SHA256, Kind.SHA256)).result("virustotal")
    assert result.status is Status.ERROR
    assert result.message == "VirusTotal refused the request (HTTP 404)"


def test_api_01_unknown_hash_in_a_batch_keeps_three_rows(httpserver):
    """API-01: two EICAR hashes show VirusTotal results; the unknown one is 'not found', verdict unknown."""
    httpserver.expect_request(f"{API}/files/{EICAR_SHA256}").respond_with_json(EICAR)
    httpserver.expect_request(f"{API}/files/{EICAR_MD5}").respond_with_json(EICAR)
    httpserver.expect_request(f"{API}/files/{UNKNOWN_SHA256}").respond_with_json(NOT_FOUND, status=404)
    batch = [indicator(EICAR_SHA256, Kind.SHA256), indicator(UNKNOWN_SHA256, Kind.SHA256), indicator(EICAR_MD5, Kind.MD5)]
    rows = {e.indicator.value: e for e in enrich_all(httpserver, *batch)}
    assert len(rows) == 3
    for known in (EICAR_SHA256, EICAR_MD5):
        result = rows[known].result("virustotal")
        assert result.status is Status.OK
        assert (result.fields["malicious"], result.fields["threat_label"]) == (62, "virus.eicar/test")
    unknown = rows[UNKNOWN_SHA256]
    assert unknown.result("virustotal").status is Status.NOT_FOUND
    assert unknown.result("virustotal").message == "not found in VirusTotal"
    assert unknown.verdict is Verdict.UNKNOWN and unknown.score == 0


def test_resolutions_are_off_by_default_and_one_request_when_on(httpserver):
    httpserver.expect_request(f"{API}/domains/example.org").respond_with_json(domain_object("example.org"))
    httpserver.expect_request(f"{API}/domains/example.org/resolutions", query_string={"limit": "20"}).respond_with_json(
        {"data": [{"type": "resolution", "attributes": {"date": 1576218294, "ip_address": "93.184.216.34", "host_name": "example.org"}},
                  {"type": "resolution", "attributes": {"date": 1596319640, "ip_address": "93.184.215.14", "host_name": "example.org"}}]})
    plain = enrich(httpserver, indicator("example.org", Kind.DOMAIN)).result("virustotal")
    assert "resolutions" not in plain.fields and len(httpserver.log) == 1
    with_resolutions = enrich(httpserver, indicator("example.org", Kind.DOMAIN),
                              source=VirusTotalSource(resolutions=True)).result("virustotal")
    assert with_resolutions.fields["resolutions"] == ["93.184.215.14 (2020-08-01)", "93.184.216.34 (2019-12-13)"]


def test_failed_resolutions_keep_the_main_answer(httpserver):
    httpserver.expect_request(f"{API}/domains/example.org").respond_with_json(domain_object("example.org"))
    httpserver.expect_request(f"{API}/domains/example.org/resolutions").respond_with_data("busy", status=503)
    result = enrich(httpserver, indicator("example.org", Kind.DOMAIN), source=VirusTotalSource(resolutions=True)).result("virustotal")
    assert result.status is Status.OK
    assert result.fields["resolutions_error"] == "resolutions not fetched: VirusTotal had a server error (HTTP 503)"


def test_short_retry_after_is_waited_out_and_retried_once(httpserver):
    httpserver.expect_oneshot_request(f"{API}/ip_addresses/185.220.101.78").respond_with_json(
        {"error": {"code": "TooManyRequestsError", "message": "Too many requests"}}, status=429, headers={"Retry-After": "1"})
    httpserver.expect_request(f"{API}/ip_addresses/185.220.101.78").respond_with_json(FLAGGED_IP)
    result = enrich(httpserver, indicator("185.220.101.78")).result("virustotal")
    assert result.status is Status.OK and result.fields["malicious"] == 12
    assert [r.status_code for _, r in httpserver.log] == [429, 200]


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "message"),
    [
        (401, json.dumps({"error": {"code": "WrongCredentialsError", "message": "Wrong API key"}}), {},
         Status.AUTH_ERROR, "key rejected by VirusTotal (HTTP 401: WrongCredentialsError Wrong API key)"),
        (403, json.dumps({"error": {"code": "ForbiddenError", "message": "You are not allowed to perform the requested operation"}}),
         {}, Status.AUTH_ERROR,
         "key rejected by VirusTotal (HTTP 403: ForbiddenError You are not allowed to perform the requested operation)"),
        (429, json.dumps({"error": {"code": "QuotaExceededError", "message": "Quota exceeded"}}), {"Retry-After": "3600"},
         Status.RATE_LIMITED, "VirusTotal rate limit reached (HTTP 429: QuotaExceededError Quota exceeded; retry after 3600 s)"),
        (503, json.dumps({"error": {"code": "TransientError", "message": "Please retry"}}), {}, Status.ERROR,
         "VirusTotal had a server error (HTTP 503: TransientError Please retry)"),
        (502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
         {"Content-Type": "text/html"}, Status.ERROR, "VirusTotal had a server error (HTTP 502)"),
        (200, "<html><body>Sign in</body></html>", {"Content-Type": "text/html"}, Status.ERROR,
         "answer is an HTML page (HTTP 200)"),
        (200, '{"data": {"attributes": {"last_analysis_stats": {"malicious": 3', {}, Status.ERROR,
         "answer is not JSON (HTTP 200)"),
        (200, '{"data": {"type": "ip_address"}}', {}, Status.ERROR, "VirusTotal answer has no data.attributes object"),
        (200, '{"data": {"attributes": {"last_analysis_stats": {"malicious": "many"}}}}', {}, Status.ERROR,
         "VirusTotal last_analysis_stats.malicious is not a number"),
    ],
    ids=["401", "403", "429-long-retry-after", "503", "502-html", "200-html", "malformed-json", "wrong-shape", "wrong-type"],
)
def test_failures_become_statuses_with_plain_messages(httpserver, status, body, headers, expected, message):
    httpserver.expect_request(f"{API}/ip_addresses/8.8.4.4").respond_with_data(body, status=status, headers=headers)
    enrichment = enrich(httpserver, indicator("8.8.4.4"))
    result = enrichment.result("virustotal")
    assert result.status is expected
    assert result.message == message
    assert enrichment.contributions == () and enrichment.verdict is Verdict.UNKNOWN


def test_no_key_is_skipped(httpserver):
    result = enrich(httpserver, indicator("8.8.4.4"), key=None).result("virustotal")
    assert result.status is Status.SKIPPED_NO_KEY
    assert "OTC_VIRUSTOTAL_KEY" in result.message and "virustotal.com" in result.message
    assert httpserver.log == []


def test_handles_every_kind_in_the_issue_table():
    assert VIRUSTOTAL.kinds == {Kind.IPV4, Kind.IPV6, Kind.DOMAIN, Kind.URL, Kind.MD5, Kind.SHA1, Kind.SHA256}
    assert (VIRUSTOTAL.rate_limit.per_minute, VIRUSTOTAL.rate_limit.per_day) == (4, 500)
