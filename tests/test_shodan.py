"""Shodan host lookup against a real local HTTP server; the key rides in the query string and must never
show up anywhere else."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest

from otc.config import Mode, Secret, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.shodan import SOURCE as SHODAN

FIXTURES = Path(__file__).parent / "fixtures" / "reputation_a"
KEY = "dummy-shodan-key-321"
API = "/shodan/shodan/host"  # the override replaces scheme and host and keeps the service path
FLAGGED = json.loads((FIXTURES / "shodan_host_flagged.json").read_text())


def indicator(value: str, kind: Kind = Kind.IPV4) -> Indicator:
    return Indicator(kind, value, value, value, scope=Scope.GLOBAL)


def settings(base_url: str, key: str | None = KEY, **kwargs) -> Settings:
    return Settings(urls={"OTC_SHODAN_URL": base_url}, keys={"OTC_SHODAN_KEY": Secret(key)} if key else {},
                    timeout=3, **kwargs)


def enrich(httpserver, item: Indicator, **kwargs):
    return Enricher(settings(httpserver.url_for("/shodan"), **kwargs), sources=[SHODAN]).enrich(item)


def assert_no_key(*things) -> None:
    for thing in things:
        assert KEY not in json.dumps(thing, default=str)


def test_host_fields_score_and_key_only_in_the_query(httpserver, caplog):
    httpserver.expect_request(f"{API}/185.220.101.78", query_string={"key": KEY}).respond_with_json(FLAGGED)
    with caplog.at_level(logging.DEBUG):
        enrichment = enrich(httpserver, indicator("185.220.101.78"))
    result = enrichment.result("shodan")
    assert result.status is Status.OK
    fields = result.fields
    assert fields["org"] == "Example Exit Hosting"
    assert fields["ports"] == [22, 80, 443, 9001]
    assert fields["vulns"] == ["CVE-2023-38408", "CVE-2024-6387"]
    assert fields["last_update"] == "2026-11-29T03:12:44.123456"
    assert fields["services"] == ["22/tcp OpenSSH 8.9p1", "80/tcp nginx", "443/tcp", "9001/tcp Tor"]
    assert (fields["asn"], fields["country_code"], fields["tags"]) == ("AS60729", "DE", ["tor"])
    assert [c.reason for c in enrichment.contributions] == [
        "+4 Shodan: 2 CVE(s) on open services (from banners, not verified)"]
    assert_no_key(result.raw, result.fields, result.message, [c.reason for c in enrichment.contributions])
    # urllib3 logs the request line with its query string at debug level: the key is scrubbed there too
    assert any("/shodan/shodan/host/185.220.101.78?key=***" in record.getMessage() for record in caplog.records)
    ours = [r for r in caplog.records if not r.name.startswith("werkzeug")]  # werkzeug is the fake Shodan's own log
    assert ours and not any(KEY in record.getMessage() for record in ours)


def test_vulns_only_per_banner_are_counted_and_capped(httpserver):
    banners = [{"port": 1000 + n, "transport": "tcp", "vulns": {f"CVE-2024-{n:04d}": {"cvss": 5.0}}} for n in range(8)]
    httpserver.expect_request(f"{API}/185.220.101.78").respond_with_json(
        {"ip_str": "185.220.101.78", "ports": [1000 + n for n in range(8)], "data": banners})
    enrichment = enrich(httpserver, indicator("185.220.101.78"))
    assert len(enrichment.result("shodan").fields["vulns"]) == 8
    assert [c.points for c in enrichment.contributions] == [10.0]  # 8 x 2 capped at 10


def test_404_is_not_found(httpserver):
    httpserver.expect_request(f"{API}/9.9.9.10").respond_with_json(
        {"error": "No information available for that IP."}, status=404)
    enrichment = enrich(httpserver, indicator("9.9.9.10"))
    result = enrichment.result("shodan")
    assert result.status is Status.NOT_FOUND
    assert result.message == "Shodan has no information on this address"
    assert enrichment.verdict is Verdict.UNKNOWN


def test_bare_404_page_is_a_failure_not_no_data(httpserver):
    httpserver.expect_request(f"{API}/9.9.9.10").respond_with_data("<html>404 Not Found</html>", status=404)
    result = enrich(httpserver, indicator("9.9.9.10")).result("shodan")
    assert result.status is Status.ERROR
    assert result.message == "Shodan refused the request (HTTP 404)"


def test_unreachable_service_message_names_the_host_not_the_key():
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    enrichment = Enricher(settings(f"http://127.0.0.1:{port}/shodan"), sources=[SHODAN]).enrich(indicator("185.220.101.78"))
    result = enrichment.result("shodan")
    assert result.status is Status.ERROR
    assert result.message == f"could not connect to 127.0.0.1:{port} (connection refused)"
    assert_no_key(result.raw, result.fields, result.message)


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "message"),
    [
        (401, json.dumps({"error": "Invalid API key"}), {}, Status.AUTH_ERROR, "key rejected by Shodan (HTTP 401: Invalid API key)"),
        (401, "<html><head><title>401 Unauthorized</title></head><body><center><h1>401 Unauthorized</h1></center>"
              "<hr><center>nginx</center></body></html>", {"Content-Type": "text/html"}, Status.AUTH_ERROR,
         "key rejected by Shodan (HTTP 401)"),
        (403, json.dumps({"error": "Access denied (403 Forbidden)"}), {}, Status.AUTH_ERROR,
         "key rejected by Shodan (HTTP 403: Access denied (403 Forbidden))"),
        (429, json.dumps({"error": "Rate limit reached"}), {"Retry-After": "3600"}, Status.RATE_LIMITED,
         "Shodan rate limit reached (HTTP 429: Rate limit reached; retry after 3600 s)"),
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"}, Status.ERROR,
         "Shodan had a server error (HTTP 502)"),
        (500, json.dumps({"error": f"internal error for key={KEY}"}), {}, Status.ERROR,
         "Shodan had a server error (HTTP 500: internal error for key=***)"),
        (200, "<html><body>Cloudflare</body></html>", {"Content-Type": "text/html"}, Status.ERROR,
         "answer is an HTML page (HTTP 200)"),
        (200, '{"ip_str": "8.8.4.4", "ports": [53', {}, Status.ERROR, "answer is not JSON (HTTP 200)"),
        (200, '{"matches": []}', {}, Status.ERROR, "Shodan answer is not a host record (no ip_str or ports)"),
        (200, '{"ip_str": "8.8.4.4", "ports": ["dns"]}', {}, Status.ERROR, "Shodan answer has ports that are not numbers"),
    ],
    ids=["401-json", "401-html", "403", "429", "502-html", "500-echoes-key", "200-html", "malformed-json", "wrong-shape",
         "wrong-type"],
)
def test_failures_become_statuses_with_plain_messages(httpserver, status, body, headers, expected, message):
    httpserver.expect_request(f"{API}/8.8.4.4").respond_with_data(body, status=status, headers=headers)
    enrichment = enrich(httpserver, indicator("8.8.4.4"))
    result = enrichment.result("shodan")
    assert result.status is expected
    assert result.message == message
    assert enrichment.contributions == ()
    assert_no_key(result.raw, result.fields, result.message)


def test_no_key_or_keyless_mode_sends_nothing(httpserver):
    no_key = enrich(httpserver, indicator("8.8.4.4"), key=None).result("shodan")
    keyless = enrich(httpserver, indicator("8.8.4.4"), mode=Mode.KEYLESS).result("shodan")
    assert no_key.status is Status.SKIPPED_NO_KEY and "OTC_SHODAN_KEY" in no_key.message
    assert keyless.status is Status.SKIPPED_PRIVACY
    assert httpserver.log == []
