"""Every recorded response in ../shared/fixtures/{abuseipdb,virustotal,otx,greynoise,shodan (host_*)}/ replayed
through a real local HTTP server and the source that reads it, with the status and values it must give.

A ``*.headers*.txt`` file gives the status line and headers to serve with the body it belongs to. Two OTX
sections otc never asks for (``geo``, ``reputation``) are served where ``general`` was expected: a body of
the wrong shape must come out as an error, never as a clean answer. Skips when ../shared is absent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from conftest import SHARED_DIR, shared_path
from otc.config import Secret, Settings
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.abuseipdb import SOURCE as ABUSEIPDB
from otc.sources.base import Source
from otc.sources.greynoise import SOURCE as GREYNOISE
from otc.sources.otx import SOURCE as OTX
from otc.sources.otx import OtxSource
from otc.sources.shodan import SOURCE as SHODAN
from otc.sources.virustotal import SOURCE as VIRUSTOTAL
from otc.sources.virustotal import VirusTotalSource, url_id

KEYS = {
    "OTC_ABUSEIPDB_KEY": Secret("dummy-abuse-key-123"), "OTC_VIRUSTOTAL_KEY": Secret("dummy-vt-key-456"),
    "OTC_OTX_KEY": Secret("dummy-otx-key-789"), "OTC_GREYNOISE_KEY": Secret("dummy-greynoise-key-000"),
    "OTC_SHODAN_KEY": Secret("dummy-shodan-key-321"),
}
ABUSE = "/abuseipdb/api/v2"
VT = "/virustotal/api/v3"
OTX_API = "/otx/api/v1/indicators"
GN = "/greynoise/v3/community"
SHODAN_API = "/shodan/shodan/host"
UNKNOWN_SHA256 = "a" * 64


def ip(value: str) -> Indicator:
    return Indicator(Kind.IPV4, value, value, value, scope=Scope.GLOBAL)


def domain(value: str, registered: str | None = None) -> Indicator:
    return Indicator(Kind.DOMAIN, value, value, value, registered_domain=registered or value)


def url(value: str, host: str) -> Indicator:
    return Indicator(Kind.URL, value, value, value, host=host, host_kind=Kind.IPV4 if host[0].isdigit() else Kind.DOMAIN)


def file_hash(value: str) -> Indicator:
    kind = {32: Kind.MD5, 40: Kind.SHA1, 64: Kind.SHA256}[len(value)]
    return Indicator(kind, value, value, value, scope=Scope.NOT_APPLICABLE)


def otx_general(count: int) -> dict:
    """A minimal ``general`` answer, for replays of another section that is only asked after ``general``."""
    pulses = [{"id": "p1", "name": "test pulse", "tags": [], "malware_families": []}] if count else []
    return {"validation": [], "false_positive": [], "pulse_info": {"count": count, "pulses": pulses, "related": {}}}


@dataclass
class Replay:
    fixture: str  # "<source dir>/<file>" under ../shared/fixtures
    source: Source
    indicator: Indicator
    path: str  # where the source asks for it (decoded path)
    status: Status
    served_status: int = 200
    headers_file: str | None = None  # "<source dir>/<file>": status line and headers to serve with it
    extra: list[tuple[str, Any]] = field(default_factory=list)  # (path, JSON body) the lookup also asks for
    fields: dict[str, Any] = field(default_factory=dict)  # expected subset of the result's fields
    message: str = ""  # expected start of the result's message
    rules: list[str] = field(default_factory=list)  # expected contribution rules, in order
    points: list[float] | None = None
    verdict: Verdict | None = None

    @property
    def id(self) -> str:
        return self.fixture


REPLAYS = [
    # ---- AbuseIPDB ------------------------------------------------------------------------------------------
    Replay("abuseipdb/check_118.25.6.39_verbose_docs.json", ABUSEIPDB, ip("118.25.6.39"), f"{ABUSE}/check", Status.OK,
           headers_file="abuseipdb/check_200.headers_RECONSTRUCTED.txt",
           fields={"confidence": 100, "total_reports": 1, "distinct_reporters": 1,
                   "usage_type": "Data Center/Web Hosting/Transit", "isp": "Tencent Cloud Computing (Beijing) Co. Ltd",
                   "last_reported_at": "2018-12-20T20:55:14+00:00", "is_tor": False, "is_whitelisted": False,
                   "country_code": "CN", "country_name": "China", "report_categories": [18, 22]},
           rules=["confidence"], points=[40.0]),
    Replay("abuseipdb/check_38.75.137.9_clean.json", ABUSEIPDB, ip("38.75.137.9"), f"{ABUSE}/check", Status.OK,
           headers_file="abuseipdb/check_200.headers_RECONSTRUCTED.txt",
           fields={"confidence": 0, "total_reports": 0, "distinct_reporters": 0, "last_reported_at": None,
                   "is_whitelisted": None, "isp": "GlobalTeleHost Corp.", "hostnames": ["9-137-75-38.clients.gthost.com"]},
           rules=[], verdict=Verdict.UNKNOWN),
    # the docs example is for loopback space, which otc never sends: a global /24 asks, the docs body answers
    Replay("abuseipdb/check_block_127.0.0.1_24_docs.json", ABUSEIPDB,
           Indicator(Kind.CIDR, "118.25.6.0/24", "118.25.6.0/24", "118.25.6.0/24"), f"{ABUSE}/check-block", Status.OK,
           fields={"network": "127.0.0.0/255.255.255.0", "possible_hosts": 254, "address_space": "Loopback",
                   "reported_addresses": 2, "total_reports": 647, "max_confidence": 0,
                   "top_addresses": ["127.0.0.1 (631 reports, confidence 0 %)", "127.0.0.2 (16 reports, confidence 0 %)"]},
           rules=[]),
    Replay("abuseipdb/error_401_auth.json", ABUSEIPDB, ip("118.25.6.39"), f"{ABUSE}/check", Status.AUTH_ERROR,
           served_status=401, message="key rejected by AbuseIPDB (HTTP 401: Authentication failed. Your API key is either"),
    Replay("abuseipdb/error_422_invalid_ip.json", ABUSEIPDB, ip("118.25.6.39"), f"{ABUSE}/check", Status.ERROR,
           served_status=422,
           message="AbuseIPDB refused the request (HTTP 422: The ip address must be a valid IPv4 or IPv6 address"),
    Replay("abuseipdb/error_429_daily_limit.json", ABUSEIPDB, ip("118.25.6.39"), f"{ABUSE}/check", Status.RATE_LIMITED,
           headers_file="abuseipdb/error_429_daily_limit.headers.txt",
           message="AbuseIPDB rate limit reached (HTTP 429: Daily rate limit of 1000 requests exceeded for this endpoint."),
    # ---- VirusTotal -----------------------------------------------------------------------------------------
    Replay("virustotal/domains_down.mykings.pw.json", VIRUSTOTAL, domain("down.mykings.pw", "mykings.pw"),
           f"{VT}/domains/down.mykings.pw", Status.OK,
           fields={"malicious": 8, "suspicious": 0, "harmless": 83, "engines": 98, "reputation": 0,
                   "categories": ["information technology", "known infection source",
                                  "malware callhome, command and control", "media sharing"],
                   "last_modification_date": "2021-02-08T23:54:21Z"},
           rules=["engines_malicious"], points=[40.0]),
    Replay("virustotal/domains_google.com_wtfis2022.json", VIRUSTOTAL, domain("google.com"), f"{VT}/domains/google.com",
           Status.OK, fields={"malicious": 1, "harmless": 84, "engines": 94, "reputation": 448, "votes_malicious": 42},
           rules=["engines_malicious"], points=[5.0]),
    Replay("virustotal/domains_one.one.one.one_resolutions_wtfis.json", VirusTotalSource(resolutions=True),
           domain("one.one.one.one"), f"{VT}/domains/one.one.one.one/resolutions", Status.OK,
           extra=[(f"{VT}/domains/one.one.one.one", {"data": {"type": "domain", "id": "one.one.one.one", "attributes": {
               "last_analysis_stats": {"harmless": 84, "malicious": 0, "suspicious": 0, "undetected": 10, "timeout": 0}}}})],
           fields={"resolutions": ["1.0.0.1 (2020-08-01)", "1.1.1.1 (2019-12-13)"], "malicious": 0}),
    Replay("virustotal/error_401_authrequired.json", VIRUSTOTAL, ip("23.129.64.215"), f"{VT}/ip_addresses/23.129.64.215",
           Status.AUTH_ERROR, served_status=401,
           message="key rejected by VirusTotal (HTTP 401: AuthenticationRequiredError X-Apikey header is missing)"),
    Replay("virustotal/error_401_wrongcredentials_RECONSTRUCTED.json", VIRUSTOTAL, ip("23.129.64.215"),
           f"{VT}/ip_addresses/23.129.64.215", Status.AUTH_ERROR, served_status=401,
           message="key rejected by VirusTotal (HTTP 401: WrongCredentialsError Wrong API key)"),
    Replay("virustotal/error_404_notfound.json", VIRUSTOTAL, file_hash(UNKNOWN_SHA256), f"{VT}/files/{UNKNOWN_SHA256}",
           Status.NOT_FOUND, served_status=404, message="not found in VirusTotal", verdict=Verdict.UNKNOWN),
    Replay("virustotal/error_404_url_notfound_docs.json", VIRUSTOTAL,
           url("http://never-seen.example-unknown.com/x", "never-seen.example-unknown.com"),
           f"{VT}/urls/{url_id('http://never-seen.example-unknown.com/x')}", Status.NOT_FOUND, served_status=404,
           message="not found in VirusTotal"),
    Replay("virustotal/error_429_quota_RECONSTRUCTED.json", VIRUSTOTAL, ip("23.129.64.215"),
           f"{VT}/ip_addresses/23.129.64.215", Status.RATE_LIMITED,
           headers_file="virustotal/error_429_quota.headers_RECONSTRUCTED.txt",
           message="VirusTotal rate limit reached (HTTP 429: QuotaExceededError Quota exceeded)"),
    Replay("virustotal/files_03bd9a94482f180bb047626cb2f27ccf8daa0e201345480b43585580e09c311b.json", VIRUSTOTAL,
           file_hash("03bd9a94482f180bb047626cb2f27ccf8daa0e201345480b43585580e09c311b"),
           f"{VT}/files/03bd9a94482f180bb047626cb2f27ccf8daa0e201345480b43585580e09c311b", Status.OK,
           fields={"malicious": 40, "suspicious": 0, "harmless": 0, "undetected": 28, "engines": 68,
                   "threat_label": "trojan.msil/tasker", "meaningful_name": "itami.exe",
                   "last_analysis_date": "2021-10-09T14:20:26Z", "type_description": "Win32 EXE"},
           rules=["engines_malicious"], points=[50.0]),
    Replay("virustotal/ip_addresses_1.1.1.1_wtfis2022.json", VIRUSTOTAL, ip("1.1.1.1"), f"{VT}/ip_addresses/1.1.1.1",
           Status.OK, fields={"malicious": 4, "harmless": 80, "engines": 94, "reputation": 134, "as_owner": "CLOUDFLARENET"},
           rules=["engines_malicious"], points=[20.0]),
    Replay("virustotal/ip_addresses_23.129.64.215.json", VIRUSTOTAL, ip("23.129.64.215"), f"{VT}/ip_addresses/23.129.64.215",
           Status.OK, fields={"malicious": 5, "suspicious": 2, "harmless": 72, "engines": 87, "reputation": -4,
                              "as_owner": "EMERALD-ONION", "country": "US", "tags": []},
           rules=["engines_malicious", "engines_suspicious"], points=[25.0, 2.0]),
    Replay("virustotal/urls_380269259e1f607fb07769fee779f0dc3144924f865e76a3c05c8898295d02f8.json", VIRUSTOTAL,
           url("http://218.54.47.77/", "218.54.47.77"), f"{VT}/urls/{url_id('http://218.54.47.77/')}", Status.OK,
           fields={"malicious": 0, "harmless": 57, "engines": 66, "categories": ["uncategorized"],
                   "last_analysis_date": "2019-01-08T14:25:49Z", "final_url": "http://218.54.47.77/", "threat_label": None},
           rules=[]),
    # ---- OTX ------------------------------------------------------------------------------------------------
    Replay("otx/400_invalid_indicator_RECONSTRUCTED.json", OTX, ip("186.180.44.234"), f"{OTX_API}/IPv4/186.180.44.234/general",
           Status.ERROR, served_status=400, message="AlienVault OTX refused the request (HTTP 400: Invalid IP)"),
    Replay("otx/403_invalid_api_key_RECONSTRUCTED.json", OTX, ip("186.180.44.234"), f"{OTX_API}/IPv4/186.180.44.234/general",
           Status.AUTH_ERROR, served_status=403,
           message="key rejected by AlienVault OTX (HTTP 403: Authentication credentials were not provided.)"),
    Replay("otx/404_not_found_RECONSTRUCTED.json", OTX, ip("186.180.44.234"), f"{OTX_API}/IPv4/186.180.44.234/general",
           Status.NOT_FOUND, served_status=404, message="OTX has no record of this indicator"),
    Replay("otx/IPv4_103.205.14.176_malware_RECONSTRUCTED.json", OtxSource(malware_samples=True), ip("103.205.14.176"),
           f"{OTX_API}/IPv4/103.205.14.176/malware", Status.OK,
           extra=[(f"{OTX_API}/IPv4/103.205.14.176/general", otx_general(0))],
           fields={"malware_samples": 1,
                   "malware_sample_hashes": ["b325c92fa540edeb89b95dbfd4400c1cb33599c66859a87aead820e568a2ebe7"],
                   "malware_detections": ["ELF:Mirai-AFB [Trj]", "Unix.Trojan.Mirai-5607483-0", "Backdoor:Linux/Mirai.B"]}),
    Replay("otx/IPv4_186.180.44.234_general_2025.json", OtxSource(passive_dns=False), ip("186.180.44.234"),
           f"{OTX_API}/IPv4/186.180.44.234/general", Status.OK,
           fields={"pulse_count": 2, "pulses": ["LCIA HoneyNet Data - July 2025 - Redishoneypot",
                                                "Honeypot Data - July 2025 - Redishoneypot"],
                   "malware_families": [], "allowlisted": False, "asn": "AS27831 colombia mvil", "country_code": "CO"},
           rules=["pulses"], points=[8.0]),
    Replay("otx/IPv4_195.22.26.248_passive_dns.json", OTX, ip("195.22.26.248"), f"{OTX_API}/IPv4/195.22.26.248/passive_dns",
           Status.OK, extra=[(f"{OTX_API}/IPv4/195.22.26.248/general", otx_general(1))],
           fields={"passive_dns_records": 1, "related_hosts": ["4ed8a7c6.ard.rr.zealbino.com"], "pulse_count": 1},
           rules=["pulses"], points=[4.0]),
    Replay("otx/IPv4_8.8.8.8_general.json", OTX, ip("8.8.8.8"), f"{OTX_API}/IPv4/8.8.8.8/general", Status.OK,
           headers_file="otx/IPv4_8.8.8.8_general.headers.txt",
           fields={"pulse_count": 0, "allowlisted": True, "asn": "AS15169 google llc",
                   "allowlisted_by": ["Known False Positive", "Whitelisted IP: contained in whitelisted prefix",
                                      "accepted false-positive report"]},
           rules=["allowlisted"], points=[-15.0], verdict=Verdict.LIKELY_BENIGN),
    Replay("otx/IPv4_8.8.8.8_geo_RECONSTRUCTED.json", OTX, ip("8.8.8.8"), f"{OTX_API}/IPv4/8.8.8.8/general", Status.ERROR,
           message="AlienVault OTX answer has no pulse_info (not a 'general' section)", verdict=Verdict.UNKNOWN),
    Replay("otx/IPv4_8.8.8.8_reputation_RECONSTRUCTED.json", OTX, ip("8.8.8.8"), f"{OTX_API}/IPv4/8.8.8.8/general",
           Status.ERROR, message="AlienVault OTX answer has no pulse_info (not a 'general' section)"),
    Replay("otx/domain_support-gmeet.com_general_2025.json", OtxSource(passive_dns=False), domain("support-gmeet.com"),
           f"{OTX_API}/domain/support-gmeet.com/general", Status.OK,
           fields={"pulse_count": 4, "adversaries": ["Lazarus"], "malware_families": ["APNIC"], "allowlisted": False},
           rules=["pulses"], points=[16.0]),
    Replay("otx/domain_www.joshisec.com_passive_dns.json", OTX, domain("www.joshisec.com", "joshisec.com"),
           f"{OTX_API}/hostname/www.joshisec.com/passive_dns", Status.OK,
           extra=[(f"{OTX_API}/hostname/www.joshisec.com/general", otx_general(1))],
           fields={"passive_dns_records": 1, "related_hosts": ["157.7.107.46"]}, rules=["pulses"], points=[4.0]),
    Replay("otx/file_1fd35d9dc2eb919088f4eb48ab18b5a8_general_2025.json", OTX, file_hash("1fd35d9dc2eb919088f4eb48ab18b5a8"),
           f"{OTX_API}/file/1fd35d9dc2eb919088f4eb48ab18b5a8/general", Status.OK,
           fields={"pulse_count": 1, "pulses": ["malware"]}, rules=["pulses"], points=[4.0]),
    Replay("otx/file_f5ef3b060fb476253f9a7638f82940d9_general_2017.json", OTX, file_hash("f5ef3b060fb476253f9a7638f82940d9"),
           f"{OTX_API}/file/f5ef3b060fb476253f9a7638f82940d9/general", Status.OK,
           fields={"pulse_count": 2, "adversaries": ["Greenbug"], "malware_families": [],
                   "pulse_tags": ["greenbug", "iran", "israel", "ISMDoor", "malware", "ZAHRANI", "REDACTED-HANDLE", "ThetaRay"]},
           rules=["pulses"], points=[8.0]),
    # ---- GreyNoise ------------------------------------------------------------------------------------------
    Replay("greynoise/community_1.1.1.1_riot_benign.json", GREYNOISE, ip("1.1.1.1"), f"{GN}/1.1.1.1", Status.OK,
           fields={"classification": "benign", "noise": False, "riot": True, "name": "Cloudflare Public DNS",
                   "last_seen": "2023-02-18", "link": "https://viz.greynoise.io/riot/1.1.1.1"},
           rules=["riot"], points=[-25.0], verdict=Verdict.LIKELY_BENIGN),
    Replay("greynoise/community_400_invalid_ip_RECONSTRUCTED.json", GREYNOISE, ip("1.1.1.1"), f"{GN}/1.1.1.1", Status.ERROR,
           served_status=400,
           message="GreyNoise refused the request (HTTP 400: Request is not a valid routable IPv4 address)"),
    Replay("greynoise/community_401_invalid_key_RECONSTRUCTED.json", GREYNOISE, ip("1.1.1.1"), f"{GN}/1.1.1.1",
           Status.AUTH_ERROR, served_status=401, message="key rejected by GreyNoise (HTTP 401: Invalid API Key)"),
    Replay("greynoise/community_404_123.123.115.117_not_observed.json", GREYNOISE, ip("123.123.115.117"),
           f"{GN}/123.123.115.117", Status.NOT_FOUND, served_status=404, fields={"noise": False, "riot": False},
           message="not observed scanning the internet and not a known benign service", verdict=Verdict.UNKNOWN),
    Replay("greynoise/community_429_rate_limited_RECONSTRUCTED.json", GREYNOISE, ip("1.1.1.1"), f"{GN}/1.1.1.1",
           Status.RATE_LIMITED, served_status=429,
           message="GreyNoise rate limit reached (HTTP 429: You have hit your daily rate limit of 10 requests per day."),
    Replay("greynoise/community_51.91.185.74_malicious_noise.json", GREYNOISE, ip("51.91.185.74"), f"{GN}/51.91.185.74",
           Status.OK, fields={"classification": "malicious", "noise": True, "riot": False, "name": "unknown",
                              "last_seen": "2021-03-18"},
           rules=["malicious"], points=[35.0], verdict=Verdict.SUSPICIOUS),
    # ---- Shodan host ----------------------------------------------------------------------------------------
    Replay("shodan/host_1.1.1.1_wtfis_trimmed.json", SHODAN, ip("1.1.1.1"), f"{SHODAN_API}/1.1.1.1", Status.OK,
           fields={"org": "APNIC and Cloudflare DNS Resolver project", "isp": "Cloudflare, Inc.", "asn": "AS13335",
                   "ports": [53, 69, 80, 161, 443, 2082, 2083, 2086, 2087, 8080, 8443, 8880], "vulns": [],
                   "last_update": "2022-09-04T01:03:56.524686", "city": "Los Angeles"},
           rules=[]),
    Replay("shodan/host_401_invalid_key_RECONSTRUCTED.json", SHODAN, ip("1.1.1.1"), f"{SHODAN_API}/1.1.1.1",
           Status.AUTH_ERROR, served_status=401, message="key rejected by Shodan (HTTP 401: Invalid API key)"),
    Replay("shodan/host_404_no_information_RECONSTRUCTED.json", SHODAN, ip("1.1.1.1"), f"{SHODAN_API}/1.1.1.1",
           Status.NOT_FOUND, served_status=404, message="Shodan has no information on this address"),
    Replay("shodan/host_8.8.8.8_docs2021.json", SHODAN, ip("8.8.8.8"), f"{SHODAN_API}/8.8.8.8", Status.OK,
           fields={"org": "Google", "ports": [53], "hostnames": ["dns.google"], "domains": ["dns.google"],
                   "last_update": "2021-01-22T08:49:35.190817", "services": ["53/udp"], "vulns": []},
           rules=[]),
]

REPLAYED_DIRS = ("abuseipdb", "virustotal", "otx", "greynoise", "shodan")


def served_headers(headers_file: str) -> tuple[int, dict[str, str]]:
    """Status and headers from a recorded ``HTTP/1.1 429 ...`` + ``Name: value`` file."""
    lines = shared_path("fixtures", *headers_file.split("/")).read_text().splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        # the server sets its own framing and date
        if sep and name.strip().lower() not in {"content-length", "connection", "transfer-encoding", "date", "server"}:
            headers[name.strip()] = value.strip()
    return status, headers


def settings(httpserver) -> Settings:
    urls = {f"OTC_{name.upper()}_URL": httpserver.url_for(f"/{name}") for name in REPLAYED_DIRS}
    return Settings(urls=urls, keys=KEYS, timeout=5)


@pytest.mark.parametrize("replay", REPLAYS, ids=[r.id for r in REPLAYS])
def test_replay(httpserver, replay: Replay):
    body = shared_path("fixtures", *replay.fixture.split("/")).read_bytes()
    status, headers = replay.served_status, {"Content-Type": "application/json"}
    if replay.headers_file:
        status, headers = served_headers(replay.headers_file)
    content_type = headers.pop("Content-Type", "application/json")
    httpserver.expect_request(replay.path).respond_with_data(body, status=status, headers=headers, content_type=content_type)
    for path, extra_body in replay.extra:
        httpserver.expect_request(path).respond_with_json(extra_body)

    enrichment = Enricher(settings(httpserver), sources=[replay.source]).enrich(replay.indicator)
    result = enrichment.result(replay.source.name)

    assert result.status is replay.status, result.message
    assert {name: result.fields.get(name) for name in replay.fields} == replay.fields
    if replay.message:
        assert result.message.startswith(replay.message)
    assert [c.rule for c in enrichment.contributions] == replay.rules
    if replay.points is not None:
        assert [c.points for c in enrichment.contributions] == replay.points
    if replay.verdict is not None:
        assert enrichment.verdict is replay.verdict
    if replay.status.failed:
        assert enrichment.contributions == () and enrichment.verdict is not Verdict.LIKELY_BENIGN
    # the source asked exactly for the fixture (and the extra sections) — nothing unplanned
    asked = sorted(request.path for request, _ in httpserver.log)
    assert asked == sorted([replay.path] + [path for path, _ in replay.extra])
    shown = json.dumps([result.raw, dict(result.fields), result.message], default=str)
    assert not any(secret.reveal() in shown for secret in KEYS.values())


def test_every_shared_fixture_file_is_replayed():
    """A file added to ../shared/fixtures for these sources must get a replay here."""
    shared_path("fixtures", "abuseipdb")
    present = set()
    for directory in REPLAYED_DIRS:
        for name in os.listdir(SHARED_DIR / "fixtures" / directory):
            if directory == "shodan" and not name.startswith("host_"):
                continue  # internetdb_* belong to the internetdb source's suite
            present.add(f"{directory}/{name}")
    replayed = {r.fixture for r in REPLAYS} | {r.headers_file for r in REPLAYS if r.headers_file}
    assert present - replayed == set(), "fixture files without a replay"
    assert replayed - present == set(), "replays of files that do not exist"
