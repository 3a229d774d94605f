"""URLhaus against a real local HTTP server: endpoints per kind, query_status vocabulary, failures, key."""

from __future__ import annotations

import json
import time

import pytest

from otc.config import Secret, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.base import RateLimit
from otc.sources.urlhaus import SOURCE as URLHAUS

KEY = "dummy-abusech-key-456"
OWN_KEY = "dummy-urlhaus-own-key-789"

URL_OK = {
    "query_status": "ok", "id": "3000001", "urlhaus_reference": "https://urlhaus.abuse.ch/url/3000001/",
    "url": "http://bad-downloads.example-mal.com/bins/x86", "url_status": "online",
    "host": "bad-downloads.example-mal.com", "date_added": "2026-11-02 08:00:01 UTC", "last_online": None,
    "threat": "malware_download", "blacklists": {"spamhaus_dbl": "not listed", "surbl": "not listed"},
    "reporter": "reporter_q", "larted": "false", "takedown_time_seconds": None, "tags": ["mirai", "elf", "Mirai"],
    "payloads": [{"firstseen": "2026-11-02", "filename": "x86", "file_type": "elf", "response_size": "120000",
                  "response_md5": "0" * 32, "response_sha256": "1" * 64, "signature": "Mirai", "virustotal": None}],
}
HOST_OK = {
    "query_status": "ok", "urlhaus_reference": "https://urlhaus.abuse.ch/host/files.example-share.com/",
    "host": "files.example-share.com", "firstseen": "2025-06-01 10:00:00 UTC", "url_count": "57",
    "blacklists": {"spamhaus_dbl": "abused_legit_malware", "surbl": "not listed"},
    "urls": [
        {"id": "11", "url": "https://files.example-share.com/a.zip", "url_status": "online",
         "date_added": "2026-10-01 09:00:00 UTC", "threat": "malware_download", "tags": ["zip", "Qakbot"]},
        {"id": "12", "url": "https://files.example-share.com/b.zip", "url_status": "offline",
         "date_added": "2026-10-03 09:00:00 UTC", "threat": "malware_download", "tags": None},
    ],
}
PAYLOAD_OK = {
    "query_status": "ok", "md5_hash": "44d88612fea8a8f36de82e1278abb02f", "sha256_hash": "2" * 64,
    "file_type": "exe", "file_size": "68", "signature": "AgentTesla", "firstseen": "2026-09-09 12:00:00",
    "lastseen": "2026-11-11 12:00:00", "url_count": "4",
    "urls": [{"url_id": "1", "url": "http://x.example-mal.com/a.exe", "url_status": "online"}],
}


def ind(kind: Kind, value: str, **extra) -> Indicator:
    return Indicator(kind, value, value, value, **extra)


URL_IND = ind(Kind.URL, URL_OK["url"], host="bad-downloads.example-mal.com", host_kind=Kind.DOMAIN)


def settings_for(httpserver, keys: dict[str, str] | None = None) -> Settings:
    keys = {"OTC_ABUSECH_KEY": KEY} if keys is None else keys
    return Settings(urls={"OTC_URLHAUS_URL": httpserver.url_for("/uh")},
                    keys={name: Secret(value) for name, value in keys.items()}, timeout=3)


def enrich(httpserver, indicator: Indicator, keys: dict[str, str] | None = None):
    enricher = Enricher(settings_for(httpserver, keys), sources=[URLHAUS], rate_limits={"urlhaus": RateLimit()})
    return enricher.enrich(indicator)


def assert_no_key(result) -> None:
    text = json.dumps([result.message, result.raw, dict(result.fields)], default=str)
    assert KEY not in text and OWN_KEY not in text


def test_url_lookup_posts_the_url_form_with_the_key_and_reads_the_listing(httpserver):
    httpserver.expect_request("/uh/v1/url/", method="POST", headers={"Auth-Key": KEY},
                              data_form={"url": URL_OK["url"]}).respond_with_json(URL_OK)
    enrichment = enrich(httpserver, URL_IND)
    result = enrichment.result("urlhaus")
    assert result.status is Status.OK
    assert result.fields["lookup"] == "url"
    assert result.fields["url_status"] == "online"
    assert result.fields["threat"] == "malware_download"
    assert result.fields["tags"] == ["mirai", "elf"]  # case-insensitive duplicates folded
    assert result.fields["malware_family"] == "Mirai"
    assert result.fields["first_seen"] == "2026-11-02 08:00:01 UTC"
    assert result.fields["blacklists"] == {"spamhaus_dbl": "not listed", "surbl": "not listed"}
    assert [c.reason for c in enrichment.contributions] == [
        "+40 URLhaus: URL listed (malware_download, Mirai)",
        "+10 URLhaus: URL still online",
    ]
    assert enrichment.score == 50
    assert enrichment.verdict is Verdict.SUSPICIOUS
    assert_no_key(result)


def test_domain_goes_to_host_lookup_and_an_abused_legit_host_weighs_half(httpserver):
    httpserver.expect_request("/uh/v1/host/", method="POST", headers={"Auth-Key": KEY},
                              data_form={"host": "files.example-share.com"}).respond_with_json(HOST_OK)
    enrichment = enrich(httpserver, ind(Kind.DOMAIN, "files.example-share.com"))
    fields = enrichment.result("urlhaus").fields
    assert fields["lookup"] == "host"
    assert fields["url_count"] == 57  # a string upstream
    assert fields["online_url_count"] == 1
    assert fields["tags"] == ["zip", "Qakbot"]
    assert fields["first_seen"] == "2025-06-01 10:00:00 UTC"
    assert fields["last_seen"] == "2026-10-03 09:00:00 UTC"
    assert fields["abused_legit_host"] is True
    assert [(c.rule, c.points) for c in enrichment.contributions] == [("listed", 20.0), ("listed_online", 5.0)]
    assert enrichment.contributions[0].reason == (
        "+20 URLhaus: host listed (57 malware URL(s), malware_download, legitimate site abused)")
    assert enrichment.score == 25


def test_ipv4_goes_to_host_lookup(httpserver):
    httpserver.expect_request("/uh/v1/host/", method="POST", data_form={"host": "45.95.147.236"}).respond_with_json(
        {"query_status": "no_results"})
    result = enrich(httpserver, ind(Kind.IPV4, "45.95.147.236")).result("urlhaus")
    assert result.status is Status.NOT_FOUND
    assert result.fields == {"listed": False, "lookup": "host"}


@pytest.mark.parametrize(("kind", "value", "form_field"), [
    (Kind.MD5, "44d88612fea8a8f36de82e1278abb02f", "md5_hash"),
    (Kind.SHA256, "2" * 64, "sha256_hash"),
])
def test_hashes_go_to_payload_lookup(httpserver, kind, value, form_field):
    httpserver.expect_request("/uh/v1/payload/", method="POST", data_form={form_field: value}).respond_with_json(PAYLOAD_OK)
    enrichment = enrich(httpserver, ind(kind, value, scope=Scope.NOT_APPLICABLE))
    fields = enrichment.result("urlhaus").fields
    assert fields["malware_family"] == "AgentTesla"
    assert fields["file_type"] == "exe" and fields["file_size"] == 68
    assert fields["url_count"] == 4
    assert fields["last_seen"] == "2026-11-11 12:00:00"
    assert [c.reason for c in enrichment.contributions] == [
        "+40 URLhaus: payload listed (4 malware URL(s), malware_download, AgentTesla)"]


def test_sha1_and_ipv6_are_not_applicable(httpserver):
    for indicator in (ind(Kind.SHA1, "3" * 40, scope=Scope.NOT_APPLICABLE), ind(Kind.IPV6, "2606:4700::1111")):
        assert enrich(httpserver, indicator).result("urlhaus").status is Status.NOT_APPLICABLE
    assert httpserver.log == []


def test_not_found_is_not_clean(httpserver):
    httpserver.expect_request("/uh/v1/url/", method="POST").respond_with_json({"query_status": "no_results"})
    enrichment = enrich(httpserver, URL_IND)
    assert enrichment.result("urlhaus").status is Status.NOT_FOUND
    assert enrichment.result("urlhaus").message == "not listed by URLhaus (url lookup)"
    assert enrichment.contributions == ()
    assert enrichment.verdict is Verdict.UNKNOWN


@pytest.mark.parametrize(("status", "body", "headers", "expected", "message_part"), [
    pytest.param(401, '{"query_status": "unknown_auth_key"}', {}, Status.AUTH_ERROR, "key rejected", id="401"),
    pytest.param(403, '{"query_status": "unauthorized"}', {}, Status.AUTH_ERROR, "key rejected", id="403"),
    pytest.param(200, '{"query_status": "unknown_auth_key"}', {}, Status.AUTH_ERROR, "key rejected", id="200-auth"),
    pytest.param(200, '{"query_status": "missing_auth_key"}', {}, Status.AUTH_ERROR, "key rejected", id="200-missing"),
    pytest.param(429, "Too many requests", {"Retry-After": "3600"}, Status.RATE_LIMITED, "retry after 3600 s", id="429"),
    pytest.param(500, "Internal Server Error", {}, Status.ERROR, "server error (HTTP 500)", id="500"),
    pytest.param(503, "<html><body>maintenance</body></html>", {"Content-Type": "text/html"}, Status.ERROR,
                 "server error (HTTP 503)", id="503-html"),
    pytest.param(200, '{"query_status": "ok", "url"', {}, Status.ERROR, "not JSON", id="malformed-json"),
    pytest.param(200, "<!DOCTYPE html><html><body>Cloudflare</body></html>", {"Content-Type": "text/html"},
                 Status.ERROR, "HTML page", id="html-200"),
    pytest.param(200, '{"url_status": "online"}', {}, Status.ERROR, "no query_status", id="no-query-status"),
    pytest.param(200, '{"query_status": "invalid_url"}', {}, Status.ERROR, "not a valid URL", id="invalid-url"),
    pytest.param(200, '{"query_status": "http_post_expected"}', {}, Status.ERROR, "expected a POST", id="post-expected"),
])
def test_failures_become_statuses(httpserver, status, body, headers, expected, message_part):
    httpserver.expect_request("/uh/v1/url/", method="POST").respond_with_data(body, status=status, headers=headers)
    enrichment = enrich(httpserver, URL_IND)
    result = enrichment.result("urlhaus")
    assert result.status is expected
    assert message_part in result.message
    assert enrichment.score == 0 and enrichment.verdict is Verdict.UNKNOWN  # a failure is never "clean"
    assert_no_key(result)


def test_429_with_short_retry_after_is_waited_out_and_retried(httpserver):
    httpserver.expect_oneshot_request("/uh/v1/url/", method="POST").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"})
    httpserver.expect_request("/uh/v1/url/", method="POST").respond_with_json(URL_OK)
    started = time.monotonic()
    result = enrich(httpserver, URL_IND).result("urlhaus")
    assert result.status is Status.OK
    assert time.monotonic() - started >= 1.0
    assert len(httpserver.log) == 2


def test_no_key_is_skipped_with_where_to_get_one(httpserver):
    result = enrich(httpserver, URL_IND, keys={}).result("urlhaus")
    assert result.status is Status.SKIPPED_NO_KEY
    assert "OTC_URLHAUS_KEY" in result.message and "https://auth.abuse.ch/" in result.message
    assert httpserver.log == []


def test_own_key_is_preferred_to_the_shared_abusech_key(httpserver):
    httpserver.expect_request("/uh/v1/url/", method="POST", headers={"Auth-Key": OWN_KEY}).respond_with_json(
        {"query_status": "no_results"})
    result = enrich(httpserver, URL_IND, keys={"OTC_ABUSECH_KEY": KEY, "OTC_URLHAUS_KEY": OWN_KEY}).result("urlhaus")
    assert result.status is Status.NOT_FOUND


def test_a_key_echoed_by_the_service_is_redacted(httpserver):
    echoed = dict(URL_OK, urlhaus_reference=f"https://urlhaus.abuse.ch/url/1/?auth={KEY}")
    httpserver.expect_request("/uh/v1/url/", method="POST").respond_with_json(echoed)
    result = enrich(httpserver, URL_IND).result("urlhaus")
    assert result.status is Status.OK
    assert result.fields["reference"] == "https://urlhaus.abuse.ch/url/1/?auth=***"
    assert_no_key(result)
