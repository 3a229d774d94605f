"""Every recorded answer in ../shared/fixtures/{urlhaus,threatfox,malwarebazaar,crtsh,dnsbl}/, replayed.

HTTP files are served by a real local HTTP server (pytest-httpserver) to the source through the engine;
the DNS blocklist answer table is served by the local fake DNS server. Each file has an expected status
and values below; a file added to ../shared without an entry here fails ``test_every_file_has_an_expectation``.
Skips (with the reason) when ../shared is absent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from conftest import shared_path
from fakedns import NXDOMAIN, fake_dns  # noqa: F401  (fixture)
from otc.config import Secret, Settings
from otc.engine import Enricher, make_resolver
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.base import RateLimit, Source
from otc.sources.crtsh import SOURCE as CRTSH
from otc.sources.dnsbl import DBL, SOURCE as DNSBL, SURBL, ZEN, Listing, ask_zone
from otc.sources.malwarebazaar import SOURCE as MALWAREBAZAAR
from otc.sources.threatfox import SOURCE as THREATFOX
from otc.sources.urlhaus import SOURCE as URLHAUS, request_for

KEY = "dummy-abusech-key-456"
SOURCES = {"urlhaus": URLHAUS, "threatfox": THREATFOX, "malwarebazaar": MALWAREBAZAAR, "crtsh": CRTSH}


def ind(kind: Kind, value: str, **extra) -> Indicator:
    if kind in (Kind.MD5, Kind.SHA1, Kind.SHA256):
        extra.setdefault("scope", Scope.NOT_APPLICABLE)
    return Indicator(kind, value, value, value, **extra)


SSKY_URL = "http://sskymedia.com/VMYB-ht_JAQo-gi/INV/99401FORPO/20673114777/US/Outstanding-Invoices/"
URL_IND = ind(Kind.URL, SSKY_URL, host="sskymedia.com", host_kind=Kind.DOMAIN)
MB_SHA256 = "7de2c1bf58bce09eecc70476747d88a26163c3d6bb1d85235c24a558d1f16754"


@dataclass(frozen=True)
class Replay:
    """How to replay one file and what must come out."""

    indicator: Indicator
    status: Status
    http_statuses: tuple[int, ...] = (200,)  # served with each of these
    fields: dict[str, Any] = field(default_factory=dict)  # exact values
    message: str = ""  # must appear in the message
    points: tuple[tuple[str, float], ...] = ()  # (rule, points) of the contributions, in order
    check: Callable[[Any], None] | None = None  # extra assertions on the result


def _crtsh_example(result) -> None:
    fields = result.fields
    assert fields["queried_domain"] == "example.com"
    assert fields["certificate_count"] == 2  # the two DigiCert rows share issuer and serial
    assert fields["log_entry_count"] == 3
    assert fields["names"] == ["example.com", "example.edu", "example.net", "example.org", "www.example.com",
                               "www.example.edu", "www.example.net", "www.example.org"]
    assert fields["subdomains"] == ["example.com", "www.example.com"]
    assert fields["issuers"] == ["DigiCert Inc", "Let's Encrypt"]
    assert fields["first_seen"] == "2020-11-24T00:00:00"
    assert fields["last_seen"] == "2026-09-01T09:00:00"


EXPECTED: dict[str, dict[str, Replay]] = {
    "urlhaus": {
        "401_unknown_auth_key.json": Replay(URL_IND, Status.AUTH_ERROR, (401, 403, 200), message="key rejected"),
        "host_1.1.1.1_wtfis.json": Replay(
            ind(Kind.IPV4, "1.1.1.1"), Status.OK,
            fields={"lookup": "host", "url_count": 10, "online_url_count": 10, "tags": ["elf", "mirai"],
                    "threat": "malware_download", "first_seen": "2024-02-09 13:41:05 UTC",
                    "last_seen": "2024-02-09 13:43:18 UTC", "abused_legit_host": False,
                    "blacklists": {"spamhaus_dbl": "not listed", "surbl": "not listed"}},
            points=(("listed", 40.0), ("listed_online", 10.0))),
        "host_gist.github.com_wtfis.json": Replay(
            ind(Kind.DOMAIN, "gist.github.com"), Status.OK,
            fields={"url_count": 3248, "online_url_count": 1, "tags": ["Pikabot", "TA577", "zip", "foo"],
                    "abused_legit_host": True, "first_seen": "2024-02-09 13:37:11 UTC"},
            points=(("listed", 20.0), ("listed_online", 5.0))),
        "invalid_host.json": Replay(ind(Kind.DOMAIN, "gist.github.com"), Status.ERROR,
                                    message="URLhaus refused the query: it is not a valid host"),
        "invalid_url.json": Replay(URL_IND, Status.ERROR, message="URLhaus refused the query: it is not a valid URL"),
        "no_results.json": Replay(URL_IND, Status.NOT_FOUND, fields={"listed": False, "lookup": "url"}),
        "url_sskymedia.com_105821.json": Replay(
            URL_IND, Status.OK,
            fields={"lookup": "url", "url_status": "offline", "threat": "malware_download",
                    "tags": ["emotet", "epoch2", "heodo"], "malware_family": "Heodo", "payload_signatures": ["Heodo"],
                    "first_seen": "2019-01-19 01:33:26 UTC", "reference": "https://urlhaus.abuse.ch/url/105821/"},
            points=(("listed", 40.0),)),  # offline: no "still online" points
    },
    "threatfox": {
        "401_unknown_auth_key.json": Replay(ind(Kind.IPV4, "139.180.203.104"), Status.AUTH_ERROR, (401, 403, 200),
                                            message="key rejected"),
        "illegal_search_term_RECONSTRUCTED.json": Replay(ind(Kind.DOMAIN, "bad-term.example-mal.com"), Status.ERROR,
                                                         message="ThreatFox refused the query"),
        "search_ioc_139.180.203.104_docs.json": Replay(
            ind(Kind.IPV4, "139.180.203.104", port=443), Status.OK,
            fields={"iocs": ["139.180.203.104:443"], "malware_family": "Cobalt Strike", "confidence": 75,
                    "threat_type": "botnet_cc", "first_seen": "2020-12-06 09:10:23 UTC", "last_seen": None,
                    "port_listed": True, "ids": [12], "tags": [], "malware_alias": "Agentemis,BEACON,CobaltStrike"},
            points=(("listed", 30.0),)),
        "search_ioc_no_result.json": Replay(ind(Kind.IPV4, "139.180.203.104"), Status.NOT_FOUND,
                                            fields={"listed": False}),
    },
    "malwarebazaar": {
        "401_unknown_auth_key.json": Replay(ind(Kind.SHA256, MB_SHA256), Status.AUTH_ERROR, (401, 403, 200),
                                            message="key rejected"),
        "get_info_7de2c1bf_RECONSTRUCTED.json": Replay(
            ind(Kind.MD5, "c40aead7a31d14e05b2ee4a11849eced"), Status.OK,
            fields={"malware_family": "AZORult", "file_name": "New Order POA12990120 From Akweni Group.exe",
                    "file_type": "exe", "file_type_mime": "application/x-dosexec", "file_size": 903680,
                    "first_seen": "2020-10-19 09:54:37", "last_seen": None, "tags": ["AgentTesla", "exe"],
                    "delivery_method": "email_attachment", "sha256": MB_SHA256,
                    "vendor_verdicts": {"ReversingLabs": "MALICIOUS"}},
            points=(("known_malware", 60.0),)),
        "hash_not_found.json": Replay(ind(Kind.SHA256, MB_SHA256), Status.NOT_FOUND, fields={"listed": False}),
        "illegal_hash.json": Replay(ind(Kind.SHA1, "77543bde72105ae1a28cc71815d9ea89ea162052"), Status.ERROR,
                                    message="it is not a valid hash"),
        "no_results.json": Replay(ind(Kind.SHA256, MB_SHA256), Status.NOT_FOUND, fields={"listed": False}),
    },
    "crtsh": {
        "502_bad_gateway.html": Replay(ind(Kind.DOMAIN, "example.com"), Status.ERROR, (502, 200),
                                       message="crt.sh overloaded"),
        "q_example.com_output_json_RECONSTRUCTED.json": Replay(ind(Kind.DOMAIN, "www.example.com"), Status.OK,
                                                               check=_crtsh_example),
        "q_nonexistent_domain_empty.json": Replay(ind(Kind.DOMAIN, "nonexistent-domain-example.com"), Status.NOT_FOUND,
                                                  fields={"certificate_count": 0}),
    },
}

def expected_path(source_name: str, indicator: Indicator) -> str:
    """The request path each source must use (served at the server's root, as OTC_<SOURCE>_URL=http://host:port/)."""
    if source_name == "urlhaus":
        return f"/v1/{request_for(indicator)[0]}/"
    return "/" if source_name == "crtsh" else "/api/v1/"


CASES = [pytest.param(source, name, http_status, id=f"{source}/{name}/{http_status}")
         for source, files in EXPECTED.items() for name, replay in files.items() for http_status in replay.http_statuses]


@pytest.mark.parametrize("source_name", [*EXPECTED, "dnsbl"])
def test_every_file_has_an_expectation(source_name):
    directory = shared_path("fixtures", source_name)
    known = set(EXPECTED.get(source_name, {})) if source_name != "dnsbl" else {"dnsbl_answers_RECONSTRUCTED.json"}
    assert {p.name for p in directory.iterdir() if p.is_file()} == known


@pytest.mark.parametrize(("source_name", "file_name", "http_status"), CASES)
def test_replay_http_fixture(httpserver, source_name, file_name, http_status):
    body = shared_path("fixtures", source_name, file_name).read_bytes()
    replay = EXPECTED[source_name][file_name]
    source: Source = SOURCES[source_name]
    content_type = "text/html" if file_name.endswith(".html") else "application/json"
    path = expected_path(source_name, replay.indicator)
    httpserver.expect_request(path, method="GET" if source_name == "crtsh" else "POST").respond_with_data(
        body, status=http_status, content_type=content_type)
    settings = Settings(urls={source.url_setting: httpserver.url_for("/")},
                        keys={"OTC_ABUSECH_KEY": Secret(KEY)}, timeout=3)
    enrichment = Enricher(settings, sources=[source], rate_limits={source.name: RateLimit()}).enrich(replay.indicator)
    result = enrichment.result(source.name)

    assert result.status is replay.status, result.message
    assert len(httpserver.log) == 1
    request = httpserver.log[0][0]
    if source_name != "crtsh":
        assert request.headers.get("Auth-Key") == KEY
    for name, value in replay.fields.items():
        assert result.fields[name] == value, name
    assert replay.message in result.message
    assert tuple((c.rule, c.points) for c in enrichment.contributions) == replay.points
    if replay.check is not None:
        replay.check(result)
    if not result.status.answered:
        assert enrichment.score == 0 and enrichment.verdict is Verdict.UNKNOWN
    assert KEY not in json.dumps([result.message, result.raw, dict(result.fields)], default=str)


# -- DNS blocklists: the answer table, served by the fake DNS server -------------------------------
def dnsbl_table() -> dict:
    return json.loads(shared_path("fixtures", "dnsbl", "dnsbl_answers_RECONSTRUCTED.json").read_text())


def _first_word(meaning: str) -> str:
    return meaning.split()[0].lower()


def test_dnsbl_test_queries_replayed(fake_dns):
    """The table's ``test_queries``, asked through the fake DNS server and the source's own zone logic."""
    queries = dnsbl_table()["test_queries"]
    for label, answer in queries.items():
        name = label.split(": ")[-1]  # "8.8.8.8-via-public-resolver example: 4.3.2.1.zen.spamhaus.org"
        fake_dns.records[(name, "A")] = NXDOMAIN if answer.get("rcode") == "NXDOMAIN" else answer["A"]
        if "TXT" in answer:
            fake_dns.records[(name, "TXT")] = answer["TXT"]
    resolver = make_resolver(Settings(dns_server=fake_dns.server, timeout=2))

    listed = ask_zone(resolver, "2.0.0.127.zen.spamhaus.org.", ZEN)  # Spamhaus' test address: .2, .4, .10
    assert listed.listing is Listing.LISTED
    assert listed.codes == ("127.0.0.2", "127.0.0.4", "127.0.0.10")
    assert [_first_word(m) for m in listed.meanings] == ["sbl:", "xbl:", "pbl:"]
    assert ask_zone(resolver, "1.0.0.127.zen.spamhaus.org.", ZEN).listing is Listing.NOT_LISTED
    surbl = ask_zone(resolver, "test.surbl.org.multi.surbl.org.", SURBL)  # SURBL's permanent test point
    assert surbl.listing is Listing.LISTED
    assert surbl.meanings == ("PH: phishing", "MW: malware", "ABUSE: spam and abuse", "CR: cracked site")

    # The two entries whose names are reachable from real indicators go through the whole engine.
    settings = Settings(dns_server=fake_dns.server, timeout=2)
    enricher = Enricher(settings, sources=[DNSBL], rate_limits={"dnsbl": RateLimit()})
    dbltest = enricher.enrich(ind(Kind.DOMAIN, "dbltest.com"))
    assert dbltest.result("dnsbl").status is Status.OK
    assert dbltest.result("dnsbl").fields["dbl_listed"] == "true"
    assert dbltest.result("dnsbl").fields["dbl_meaning"] == "spam domain"
    assert dbltest.result("dnsbl").fields["surbl_listed"] == "false"  # not in the table: NXDOMAIN
    assert [(c.rule, c.points) for c in dbltest.contributions] == [("listed_dbl", 35.0)]

    refused = enricher.enrich(ind(Kind.IPV4, "1.2.3.4"))  # 4.3.2.1.zen -> 127.255.255.254
    assert refused.result("dnsbl").status is Status.ERROR
    assert refused.result("dnsbl").fields["zen_listed"] == "unknown"
    assert "blocklist query refused (public/open resolver)" in refused.result("dnsbl").message
    assert refused.score == 0 and refused.contributions == ()


def _zone_cases(table: dict) -> list[tuple[Any, Indicator, str, str, str, Listing, str]]:
    """(zone, indicator, query name, field prefix, code, expected listing, documented meaning) for every code."""
    zones = table["zones"]
    cases = []
    for n, (code, meaning) in enumerate(zones["zen.spamhaus.org"].items(), start=1):
        address = f"185.220.101.{n}"
        cases.append((ZEN, ind(Kind.IPV4, address), f"{n}.101.220.185.zen.spamhaus.org", "zen", code,
                      Listing.LISTED, meaning))
    for n, (code, meaning) in enumerate(zones["dbl.spamhaus.org"].items(), start=1):
        name = f"dbl-case-{n}.com"
        expected = Listing.UNKNOWN if "ERROR" in meaning else Listing.LISTED
        cases.append((DBL, ind(Kind.DOMAIN, name), f"{name}.dbl.spamhaus.org", "dbl", code, expected, meaning))
    for bit, meaning in zones["multi.surbl.org"]["_bitmask_last_octet"].items():
        name = f"surbl-bit-{bit}.com"
        cases.append((SURBL, ind(Kind.DOMAIN, name), f"{name}.multi.surbl.org", "surbl", f"127.0.0.{bit}",
                      Listing.LISTED, meaning))
    for code, meaning in zones["multi.surbl.org"].items():
        if not code.startswith("_"):  # 127.0.0.1: access blocked
            cases.append((SURBL, ind(Kind.DOMAIN, "surbl-blocked.com"), "surbl-blocked.com.multi.surbl.org", "surbl",
                          code, Listing.UNKNOWN, meaning))
    for n, (code, meaning) in enumerate(zones["_spamhaus_error_codes_any_zone"].items(), start=1):
        address = f"185.220.102.{n}"
        cases.append((ZEN, ind(Kind.IPV4, address), f"{n}.102.220.185.zen.spamhaus.org", "zen", code,
                      Listing.UNKNOWN, meaning))
        name = f"dbl-error-{n}.com"
        cases.append((DBL, ind(Kind.DOMAIN, name), f"{name}.dbl.spamhaus.org", "dbl", code, Listing.UNKNOWN, meaning))
    return cases


def test_dnsbl_every_zone_code_replayed_through_the_engine(fake_dns):
    """Every return code of every zone in the table, served by the fake DNS server for its own indicator.

    Documented listing codes are listed with their meaning; error codes (DBL ``ERROR``, SURBL 127.0.0.1, the
    Spamhaus 127.255.255.x range) are ``unknown``, a failure status, and add nothing to the score (DNS-03)."""
    cases = _zone_cases(dnsbl_table())
    for _zone, _indicator, qname, _prefix, code, _listing, _meaning in cases:
        fake_dns.records[(qname, "A")] = [code]
    settings = Settings(dns_server=fake_dns.server, timeout=2)
    enricher = Enricher(settings, sources=[DNSBL], rate_limits={"dnsbl": RateLimit()})
    enrichments = {e.indicator.value: e for e in enricher.enrich_many([case[1] for case in cases])}
    assert len(enrichments) == len(cases)
    for zone, indicator, qname, prefix, code, listing, meaning in cases:
        enrichment = enrichments[indicator.value]
        result = enrichment.result("dnsbl")
        assert result.fields[f"{prefix}_listed"] == listing, (code, zone.name)
        assert result.fields[f"{prefix}_codes"] == [code]
        if listing is Listing.LISTED:
            assert result.status is Status.OK
            assert _first_word(meaning).rstrip(":") in result.fields[f"{prefix}_meaning"].lower(), (code, meaning)
        else:
            assert result.status in (Status.ERROR, Status.RATE_LIMITED), (code, result.status)
            assert enrichment.contributions == () and enrichment.score == 0, (code, enrichment.contributions)
        if code == "127.255.255.255":
            assert result.status is Status.RATE_LIMITED
