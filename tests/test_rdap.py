"""RDAP against real local HTTP servers: a redirector (like rdap.org) and, where it matters, separate RIRs."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from fakedns import fake_dns  # noqa: F401  (pytest fixture)
from otc.config import Mode, Settings
from otc.engine import Enricher
from otc.indicators import parse_indicator
from otc.model import Indicator, Kind, Scope, Status
from otc.sources.base import RateLimit
from otc.sources.dns_records import SOURCE as DNS
from otc.sources.internetdb import SOURCE as INTERNETDB
from otc.sources.rdap import RATE_LIMITED_MESSAGE, SOURCE as RDAP, rdap_path

FIXTURES = Path(__file__).parent / "fixtures" / "rdap"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
UNPACED = {"rdap": RateLimit()}  # the local servers have no rate limit; rdap.org's pace would make tests slow


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def _fresh_backoff():
    RDAP.backoff.clear()  # the source is a process-wide singleton; a back-off must not leak between tests
    yield
    RDAP.backoff.clear()


@pytest.fixture
def rir_servers():
    """Two more local servers standing for two RIRs (different hosts, as RIPE and LACNIC are)."""
    servers = [HTTPServer(host="127.0.0.1", port=0), HTTPServer(host="127.0.0.1", port=0)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.clear()
        if server.is_running():
            server.stop()


def settings_for(httpserver, **kwargs) -> Settings:
    return Settings(urls={"OTC_RDAP_URL": httpserver.url_for("")}, timeout=kwargs.pop("timeout", 3), **kwargs)


def enricher(httpserver, sources=(RDAP,), clock=lambda: NOW, **kwargs) -> Enricher:
    return Enricher(settings_for(httpserver, **kwargs), sources=list(sources), rate_limits=UNPACED, clock=clock)


def domain_body(name: str, registered: str, status=("client transfer prohibited",), **extra) -> dict:
    body = {
        "objectClassName": "domain",
        "ldhName": name.upper(),
        "status": list(status),
        "events": [
            {"eventAction": "registration", "eventDate": registered},
            {"eventAction": "expiration", "eventDate": "2027-01-01T00:00:00Z"},
            {"eventAction": "last changed", "eventDate": "2026-02-01T08:00:00Z"},
            {"eventAction": "last update of RDAP database", "eventDate": "2026-03-01T00:00:00Z"},
        ],
        "entities": [{
            "objectClassName": "entity", "handle": "1068", "roles": ["registrar"],
            "publicIds": [{"type": "IANA Registrar ID", "identifier": "1068"}],
            "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "NameCheap, Inc."]]],
            "entities": [{
                "objectClassName": "entity", "roles": ["abuse"],
                "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", ""],
                                         ["email", {}, "text", "abuse@namecheap.com"]]],
            }],
        }, {
            "objectClassName": "entity", "roles": ["registrant"],
            "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Jane Doe"],
                                     ["kind", {}, "text", "individual"]]],
        }],
        "nameservers": [{"objectClassName": "nameserver", "ldhName": "DNS1.REGISTRAR-SERVERS.COM."},
                        {"objectClassName": "nameserver", "ldhName": "dns2.registrar-servers.com"}],
        "secureDNS": {"delegationSigned": True},
    }
    body.update(extra)
    return body


# -- IP addresses --------------------------------------------------------------------------------------
@pytest.mark.parametrize("texts", [("2001:4860:4860::8888", "2001:4860:4860:0000:0000:0000:0000:8888")],
                         ids=["IP-08-ipv6-two-forms"])
def test_ipv6_two_forms_one_lookup_google_network_IP_08(httpserver, texts):
    httpserver.expect_request("/ip/2001:4860:4860::8888",
                              headers={"Accept": "application/rdap+json"}).respond_with_json(
        fixture("ip_2001-4860-4860--8888.json"), content_type="application/rdap+json")
    forms = [parse_indicator(text) for text in texts]
    enrichments = list(enricher(httpserver).enrich_many(forms))
    assert len(enrichments) == 1 and len(httpserver.log) == 1
    result = enrichments[0].result("rdap")
    assert result.status is Status.OK, result.message
    fields = result.fields
    assert fields["network_name"] == "GOOGLE-IPV6"
    assert fields["organization"] == "Google LLC"
    assert fields["cidr"] == ["2001:4860::/32"]
    assert fields["asn"] == ["AS15169"]
    assert "asn_note" not in fields and result.message == ""
    assert fields["start_address"] == "2001:4860::"
    assert fields["registered"] == "2005-03-14" and fields["last_changed"] == "2012-02-24"
    # the nested ARIN abuse POC is found; the individual technical contact is left out
    assert fields["abuse_emails"] == ["network-abuse@google.com"]
    assert "a.person@example.invalid" not in json.dumps(fields)


@pytest.mark.parametrize("ip", ["75.2.80.129"], ids=["IP-08-ipv4-goes-to-ip-rdap"])
def test_ipv4_goes_to_ip_never_domain_IP_08(httpserver, ip):
    body = fixture("ip_33.3.69.247.json") | {"handle": "NET-75-2-0-0-1", "name": "AT-88-Z", "startAddress": "75.2.0.0",
                                                "endAddress": "75.2.127.255", "arin_originas0_originautnums": [16509]}
    httpserver.expect_request(f"/ip/{ip}").respond_with_json(body)
    result = enricher(httpserver).enrich(parse_indicator(ip)).result("rdap")
    assert result.status is Status.OK
    assert [entry[0].path for entry in httpserver.log] == [f"/ip/{ip}"]
    assert result.fields["cidr"] == ["75.2.0.0/17"]
    assert result.fields["asn"] == ["AS16509"]


@pytest.mark.parametrize("ip", ["33.3.69.247"], ids=["IP-07-asn-lookup-failure"])
def test_asn_lookup_failure_keeps_row_and_other_sources_IP_07(httpserver, fake_dns, ip):
    # ARIN answers for the DoD's 33/8 but names no origin AS: the row still gets the network data
    httpserver.expect_request(f"/ip/{ip}").respond_with_json(fixture("ip_33.3.69.247.json"))
    httpserver.expect_request(f"/idb/{ip}").respond_with_json(
        {"ip": ip, "ports": [443], "hostnames": [], "tags": [], "vulns": [], "cpes": []})
    fake_dns.records[(".".join(reversed(ip.split("."))) + ".in-addr.arpa", "PTR")] = ["host.dnic.example"]
    settings = Settings(urls={"OTC_RDAP_URL": httpserver.url_for(""), "OTC_INTERNETDB_URL": httpserver.url_for("/idb")},
                        dns_server=fake_dns.server, timeout=3)
    engine = Enricher(settings, sources=[RDAP, DNS, INTERNETDB], rate_limits=UNPACED, clock=lambda: NOW)
    enrichment = engine.enrich(parse_indicator(ip))
    rdap = enrichment.result("rdap")
    assert rdap.status is Status.OK
    assert rdap.fields["asn"] == []
    assert rdap.fields["asn_note"] == "ASN lookup failed (the RDAP answer names no origin AS)"
    assert rdap.message.startswith("ASN lookup failed")
    assert rdap.fields["network_name"] == "DNIC-SNET-033"
    assert rdap.fields["cidr"] == ["33.0.0.0/8"]
    assert rdap.fields["organization"] == "DoD Network Information Center"
    assert rdap.fields["abuse_emails"] == ["disa.columbus.ns.mbx.arin-registrations@mail.mil"]
    assert enrichment.result("dns").fields["ptr"] == ["host.dnic.example"]
    assert enrichment.result("internetdb").fields["ports"] == [443]


def test_private_and_local_mode_send_nothing(httpserver):
    assert enricher(httpserver).enrich(parse_indicator("10.1.2.3")).result("rdap").status is Status.SKIPPED_PRIVACY
    local = enricher(httpserver, mode=Mode.LOCAL).enrich(parse_indicator("8.8.8.8")).result("rdap")
    assert local.status is Status.SKIPPED_PRIVACY
    assert httpserver.log == []


# -- domains -------------------------------------------------------------------------------------------
def test_young_domain_fields_and_score(httpserver):
    httpserver.expect_request("/domain/fresh-login.com").respond_with_json(
        domain_body("fresh-login.com", "2026-02-17T09:30:00Z"))
    enrichment = enricher(httpserver).enrich(parse_indicator("fresh-login.com"))
    result = enrichment.result("rdap")
    assert result.status is Status.OK
    assert result.fields == {
        "object": "domain", "domain": "fresh-login.com", "registrar": "NameCheap, Inc.", "registrar_iana_id": "1068",
        "registered": "2026-02-17", "expires": "2027-01-01", "last_changed": "2026-02-01", "age_days": 12,
        "status": ["client transfer prohibited"],
        "nameservers": ["dns1.registrar-servers.com", "dns2.registrar-servers.com"],
        "dnssec": True, "abuse_emails": ["abuse@namecheap.com"], "server": httpserver.url_for("").split("/")[2],
    }
    assert "Jane Doe" not in json.dumps(result.fields)  # an individual registrant is never a field
    assert [c.reason for c in enrichment.contributions] == ["+25 RDAP: domain registered 12 days ago"]
    assert enrichment.score == 25


@pytest.mark.parametrize(("registered", "status", "reasons"), [
    ("2025-06-01T00:00:00Z", ["active"], ["+10 RDAP: domain registered 273 days ago"]),
    ("1997-09-15T04:00:00Z", ["active"], ["−5 RDAP: domain registered 28 years ago (1997-09-15)"]),
    ("2023-01-01T00:00:00Z", ["client hold", "client transfer prohibited"],
     ["+30 RDAP: domain on hold (client hold)"]),
    ("2026-03-01T00:00:00Z", ["serverHold"],
     ["+25 RDAP: domain registered today", "+30 RDAP: domain on hold (serverHold)"]),
])
def test_domain_age_and_hold_rules(httpserver, registered, status, reasons):
    httpserver.expect_request("/domain/example.com").respond_with_json(domain_body("example.com", registered, status))
    enrichment = enricher(httpserver).enrich(parse_indicator("example.com"))
    assert [c.reason for c in enrichment.contributions] == reasons


@pytest.mark.parametrize("indicator", [
    Indicator(Kind.DOMAIN, "www.shop.example.co.uk", "www.shop.example.co.uk", "www.shop.example.co.uk",
              registered_domain="example.co.uk"),
    Indicator(Kind.DOMAIN, "*.example.co.uk", "*.example.co.uk", "*.example.co.uk",
              registered_domain="example.co.uk", wildcard=True),
    Indicator(Kind.DOMAIN, "example.co.uk", "*.example.co.uk", "*.example.co.uk", wildcard=True),
    Indicator(Kind.URL, "https://login.example.co.uk/x", "https://login.example.co.uk/x", "hxxps://login.example[.]co.uk/x",
              host="login.example.co.uk", host_kind=Kind.DOMAIN, registered_domain="example.co.uk"),
    Indicator(Kind.EMAIL, "billing@mail.example.co.uk", "billing@mail.example.co.uk", "billing@mail.example.co.uk",
              host="mail.example.co.uk", host_kind=Kind.DOMAIN, registered_domain="example.co.uk"),
], ids=["subdomain", "wildcard", "wildcard-stripped", "url", "email"])
def test_domain_lookups_ask_the_registered_domain(httpserver, indicator):
    httpserver.expect_request("/domain/example.co.uk").respond_with_json(domain_body("example.co.uk", "2001-05-05T00:00:00Z"))
    result = enricher(httpserver).enrich(indicator).result("rdap")
    assert result.status is Status.OK, result.message
    assert result.fields["domain"] == "example.co.uk"
    assert [entry[0].path for entry in httpserver.log] == ["/domain/example.co.uk"]


def test_url_with_ip_host_goes_to_ip_and_hash_is_not_applicable():
    url = Indicator(Kind.URL, "http://75.2.80.129/x", "http://75.2.80.129/x", "http://75.2.80.129/x",
                    host="75.2.80.129", host_kind=Kind.IPV4)
    assert rdap_path(url) == ("ip", "/ip/75.2.80.129")
    md5 = parse_indicator("44d88612fea8a8f36de82e1278abb02f")
    assert not RDAP.applies_to(md5)
    assert rdap_path(Indicator(Kind.ASN, "AS15169", "AS15169", "as15169")) == ("autnum", "/autnum/15169")
    assert rdap_path(Indicator(Kind.CIDR, "8.8.8.0/24", "8.8.8.0/24", "8.8.8.0/24")) == ("ip", "/ip/8.8.8.0/24")


def test_autnum(httpserver):
    httpserver.expect_request("/autnum/64496").respond_with_data("", status=302, headers={
        "Location": httpserver.url_for("/ripe/autnum/64496")})
    httpserver.expect_request("/ripe/autnum/64496").respond_with_json({
        "objectClassName": "autnum", "handle": "AS64496", "startAutnum": 64496, "endAutnum": 64496,
        "name": "EXAMPLE-AS", "type": "DIRECT ALLOCATION", "country": "NL",
        "events": [{"eventAction": "registration", "eventDate": "2004-07-01T10:00:00Z"}],
        "entities": [{"objectClassName": "entity", "handle": "ORG-EX1-RIPE", "roles": ["registrant"],
                      "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Example B.V."],
                                               ["kind", {}, "text", "org"]]]}],
    })
    indicator = Indicator(Kind.ASN, "AS64496", "AS64496", "AS64496", scope=Scope.GLOBAL)
    result = enricher(httpserver).enrich(indicator).result("rdap")
    assert result.status is Status.OK
    assert result.fields["asn"] == "AS64496" and result.fields["name"] == "EXAMPLE-AS"
    assert result.fields["country"] == "NL" and result.fields["organization"] == "Example B.V."
    assert result.fields["registered"] == "2004-07-01"


# -- not found and failures ----------------------------------------------------------------------------
def test_404_from_registry_after_redirect_is_not_registered(httpserver):
    httpserver.expect_request("/domain/nothing-here.design").respond_with_data("", status=302, headers={
        "Location": httpserver.url_for("/centralnic/design/domain/nothing-here.design")})
    httpserver.expect_request("/centralnic/design/domain/nothing-here.design").respond_with_json(
        {"errorCode": 404, "title": "Object not found", "rdapConformance": ["rdap_level_0"]}, status=404)
    result = enricher(httpserver).enrich(parse_indicator("nothing-here.design")).result("rdap")
    assert result.status is Status.NOT_FOUND
    assert result.message.startswith("domain not registered (HTTP 404 from ")


@pytest.mark.parametrize(("status", "body"), [(404, ""), (501, '{"errorCode": 501}')])
def test_no_rdap_service_for_tld(httpserver, status, body):
    # rdap.org answers an empty 404 when the IANA bootstrap lists no RDAP server for the TLD
    httpserver.expect_request("/domain/example.de").respond_with_data(body, status=status,
                                                                      content_type="application/rdap+json")
    result = enricher(httpserver).enrich(parse_indicator("example.de")).result("rdap")
    assert result.status is Status.NOT_FOUND
    assert result.message == "no RDAP service for .de"


def test_ip_404_is_not_found(httpserver):
    httpserver.expect_request("/ip/9.9.9.10").respond_with_json({"errorCode": 404}, status=404)
    result = enricher(httpserver).enrich(parse_indicator("9.9.9.10")).result("rdap")
    assert result.status is Status.NOT_FOUND
    assert result.message.startswith("no RDAP record for this address")


@pytest.mark.parametrize(("status", "body", "content_type", "message"), [
    (200, "<html><body>Service Unavailable</body></html>", "text/html", "answer is an HTML page (HTTP 200)"),
    (200, '{"handle": "NET-1", "startAddress": ', "application/rdap+json", "answer is not JSON (HTTP 200)"),
    (200, "[1, 2]", "application/rdap+json", "expected a JSON object, got list"),
    (200, '{"notices": []}', "application/rdap+json", "RDAP answer is not an IP network"),
    (503, "<html><h1>503 Service Temporarily Unavailable</h1></html>", "text/html", "had a server error (HTTP 503)"),
    (400, "bad request", "text/plain", "refused the request (HTTP 400)"),
])
def test_bad_answers_are_plain_errors(httpserver, status, body, content_type, message):
    httpserver.expect_request("/ip/8.8.4.4").respond_with_data(body, status=status, content_type=content_type)
    result = enricher(httpserver).enrich(parse_indicator("8.8.4.4")).result("rdap")
    assert result.status is Status.ERROR
    assert message in result.message
    assert "Traceback" not in result.message and "JSONDecodeError" not in result.message


def test_redirect_loop_is_an_error(httpserver):
    httpserver.expect_request("/ip/8.8.4.4").respond_with_data("", status=302, headers={"Location": "/ip/8.8.4.4"})
    result = enricher(httpserver).enrich(parse_indicator("8.8.4.4")).result("rdap")
    assert result.status is Status.ERROR
    assert "redirect loop" in result.message
    assert len(httpserver.log) == 6  # the first request and five redirects, then it stops


def test_unreachable_server_is_error_and_breaker_stops_asking():
    settings = Settings(urls={"OTC_RDAP_URL": "http://127.0.0.1:9"}, timeout=2)  # discard port: nothing listens
    engine = Enricher(settings, sources=[RDAP], rate_limits=UNPACED)
    ips = [parse_indicator(f"8.8.8.{n}") for n in range(1, 7)]
    results = [e.result("rdap") for e in engine.enrich_many(ips)]
    assert all(r.status is Status.ERROR for r in results)
    assert all("could not connect" in r.message for r in results)
    assert any(r.message.startswith("not tried: RDAP did not answer 3 times in a row") for r in results)


# -- rate limits ---------------------------------------------------------------------------------------
def test_429_from_the_redirector_itself_is_rate_limited(httpserver):
    httpserver.expect_request("/ip/8.8.4.4").respond_with_data("<html>Too Many Requests</html>", status=429,
                                                               headers={"Retry-After": "3600"}, content_type="text/html")
    result = enricher(httpserver).enrich(parse_indicator("8.8.4.4")).result("rdap")
    assert result.status is Status.RATE_LIMITED
    assert result.message == RATE_LIMITED_MESSAGE


RIPE_IPS = ["193.0.6.139", "193.0.11.51", "193.0.19.1", "193.0.20.1"]
LACNIC_IPS = ["200.3.14.10", "200.3.14.11", "200.3.14.12"]
ARIN_IPS = ["8.8.4.4", "9.9.9.9", "4.2.2.2", "75.2.80.129", "12.0.0.1"]


@pytest.mark.parametrize("retry_after", ["120", None], ids=["RDAP-01-retry-after", "RDAP-01-no-retry-after"])
def test_rir_rate_limits_only_hit_their_rows_RDAP_01(httpserver, rir_servers, retry_after):
    ripe, lacnic = rir_servers
    for ip in RIPE_IPS:
        httpserver.expect_request(f"/ip/{ip}").respond_with_data("", status=302, headers={
            "Location": ripe.url_for(f"/ip/{ip}")})
        ripe.expect_request(f"/ip/{ip}").respond_with_data(
            "<html><head><title>429 Too Many Requests</title></head><body>slow down</body></html>",
            status=429, content_type="text/html", headers={"Retry-After": retry_after} if retry_after else {})
    for ip in LACNIC_IPS:
        httpserver.expect_request(f"/ip/{ip}").respond_with_data("", status=302, headers={
            "Location": lacnic.url_for(f"/rdap/ip/{ip}")})
        lacnic.expect_request(f"/rdap/ip/{ip}").respond_with_json({
            "rdapConformance": ["rdap_level_0"],
            "notices": [{"title": "Rate Limit Notice",
                         "description": ["Query rate limit exceeded. Please try again later."]}],
        })
    for ip in ARIN_IPS:
        httpserver.expect_request(f"/ip/{ip}").respond_with_data("", status=302, headers={
            "Location": httpserver.url_for(f"/arin/registry/ip/{ip}")})
        httpserver.expect_request(f"/arin/registry/ip/{ip}").respond_with_json(
            fixture("ip_33.3.69.247.json") | {"handle": f"NET-{ip}", "startAddress": ip, "endAddress": ip,
                                              "arin_originas0_originautnums": [3356]})
    indicators = [parse_indicator(ip) for ip in RIPE_IPS + ARIN_IPS + LACNIC_IPS]
    results = {e.indicator.value: e.result("rdap") for e in enricher(httpserver).enrich_many(indicators)}

    assert len(results) == len(indicators)
    for ip in RIPE_IPS + LACNIC_IPS:
        assert results[ip].status is Status.RATE_LIMITED, (ip, results[ip].message)
        assert results[ip].message == RATE_LIMITED_MESSAGE
    ripe_rows = [results[ip] for ip in RIPE_IPS]
    assert {r.fields["server"] for r in ripe_rows} == {ripe.url_for("").split("/")[2]}
    assert {r.fields["retry_after_s"] for r in ripe_rows} == {120 if retry_after else 60}
    for ip in ARIN_IPS:
        assert results[ip].status is Status.OK, (ip, results[ip].message)
        assert results[ip].fields["handle"] == f"NET-{ip}" and results[ip].fields["asn"] == ["AS3356"]
    # back off per RIR: after its first 429 a RIR is not asked again (two lookups may already be in flight)
    assert 1 <= len(ripe.log) <= 2
    assert 1 <= len(lacnic.log) <= 2


def test_backoff_ends_after_retry_after(httpserver, rir_servers):
    ripe, _ = rir_servers
    now = [NOW]
    httpserver.expect_request("/ip/193.0.6.139").respond_with_data("", status=302, headers={
        "Location": ripe.url_for("/ip/193.0.6.139")})
    ripe.expect_ordered_request("/ip/193.0.6.139").respond_with_data("", status=429, headers={"Retry-After": "30"})
    ripe.expect_ordered_request("/ip/193.0.6.139").respond_with_json(
        fixture("ip_33.3.69.247.json") | {"handle": "RIPE-NET", "startAddress": "193.0.0.0", "endAddress": "193.0.7.255"})
    engine = enricher(httpserver, clock=lambda: now[0])
    first = engine.enrich(parse_indicator("193.0.6.139")).result("rdap")
    assert first.status is Status.RATE_LIMITED and first.fields["retry_after_s"] == 30
    now[0] += 10  # still inside the server's Retry-After: RIPE is not asked
    assert engine.enrich(parse_indicator("193.0.6.139")).result("rdap").status is Status.RATE_LIMITED
    assert len(ripe.log) == 1
    now[0] += 25  # past it: asked again, and answers
    again = engine.enrich(parse_indicator("193.0.6.139")).result("rdap")
    assert again.status is Status.OK and again.fields["cidr"] == ["193.0.0.0/21"]
    assert len(ripe.log) == 2
