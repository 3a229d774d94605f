"""DNS blocklists against a local DNS server: zones per kind, return-code meanings, query errors (DNS-03)."""

from __future__ import annotations

import pytest

from fakedns import NODATA, SERVFAIL, SILENT, fake_dns  # noqa: F401  (fixture)
from otc.config import Mode, Secret, Settings
from otc.engine import Enricher
from otc.indicators import parse_indicator
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.base import RateLimit
from otc.sources.crtsh import SOURCE as CRTSH
from otc.sources.dnsbl import SOURCE as DNSBL, Listing
from otc.sources.malwarebazaar import SOURCE as MALWAREBAZAAR
from otc.sources.threatfox import SOURCE as THREATFOX
from otc.sources.urlhaus import SOURCE as URLHAUS

IP = "198.51.7.100"  # not documentation space (that is 198.51.100.0/24): a global address
ZEN_NAME = "100.7.51.198.zen.spamhaus.org"


def ip(value: str = IP) -> Indicator:
    return Indicator(Kind.IPV4, value, value, value)


def domain(value: str) -> Indicator:
    return Indicator(Kind.DOMAIN, value, value, value)


def enrich(fake_dns, indicator: Indicator, mode: Mode = Mode.ALL):
    settings = Settings(mode=mode, dns_server=fake_dns.server, timeout=1)
    return Enricher(settings, sources=[DNSBL], rate_limits={"dnsbl": RateLimit()}).enrich(indicator)


def test_zen_several_codes_listed_with_meanings_and_pbl_not_scored(fake_dns):
    fake_dns.records[(ZEN_NAME, "A")] = ["127.0.0.2", "127.0.0.4", "127.0.0.10"]
    enrichment = enrich(fake_dns, ip())
    result = enrichment.result("dnsbl")
    assert fake_dns.asked() == [(ZEN_NAME, "A")]
    assert result.status is Status.OK
    assert result.fields["zen_listed"] == Listing.LISTED == "true"
    assert result.fields["zen_codes"] == ["127.0.0.2", "127.0.0.4", "127.0.0.10"]
    assert result.fields["zen_meaning"] == ("SBL: Spamhaus Block List (spam source); XBL: exploited or infected host; "
                                           "PBL: end-user range, ISP-maintained (mail policy, not abuse)")
    assert result.fields["listed_on"] == ["zen.spamhaus.org"]
    assert [c.reason for c in enrichment.contributions] == [
        "+25 DNS blocklists: Spamhaus ZEN: SBL: Spamhaus Block List (spam source); XBL: exploited or infected host"]
    assert enrichment.score == 25


def test_pbl_alone_is_shown_but_not_scored(fake_dns):
    fake_dns.records[(ZEN_NAME, "A")] = ["127.0.0.11"]
    enrichment = enrich(fake_dns, ip())
    assert enrichment.result("dnsbl").status is Status.OK
    assert enrichment.result("dnsbl").fields["zen_listed"] == "true"
    assert enrichment.contributions == () and enrichment.score == 0


@pytest.mark.parametrize("behaviour", [None, NODATA], ids=["nxdomain", "nodata"])
def test_nxdomain_or_no_record_is_not_listed(fake_dns, behaviour):
    if behaviour is not None:
        fake_dns.records[(ZEN_NAME, "A")] = behaviour
    enrichment = enrich(fake_dns, ip())
    result = enrichment.result("dnsbl")
    assert result.status is Status.NOT_FOUND
    assert result.fields["zen_listed"] == "false"
    assert result.message == "not listed on zen.spamhaus.org"
    assert enrichment.verdict is Verdict.UNKNOWN


def test_domain_asks_dbl_and_surbl_for_the_registered_domain(fake_dns):
    fake_dns.records[("evil-login.com.dbl.spamhaus.org", "A")] = ["127.0.1.4"]
    fake_dns.records[("evil-login.com.multi.surbl.org", "A")] = ["127.0.0.24"]  # 8 + 16
    enrichment = enrich(fake_dns, domain("secure.login.evil-login.com"))
    result = enrichment.result("dnsbl")
    assert fake_dns.asked() == [("evil-login.com.dbl.spamhaus.org", "A"), ("evil-login.com.multi.surbl.org", "A")]
    assert result.status is Status.OK
    assert result.fields["dbl_listed"] == "true" and result.fields["dbl_meaning"] == "phishing domain"
    assert result.fields["surbl_listed"] == "true" and result.fields["surbl_meaning"] == "PH: phishing; MW: malware"
    assert result.fields["listed_on"] == ["dbl.spamhaus.org", "multi.surbl.org"]
    assert [c.reason for c in enrichment.contributions] == [
        "+35 DNS blocklists: Spamhaus DBL: phishing domain",
        "+30 DNS blocklists: SURBL multi: PH: phishing; MW: malware",
    ]
    assert enrichment.score == 65


def test_dbl_abused_legit_weighs_half(fake_dns):
    fake_dns.records[("files-example.net.dbl.spamhaus.org", "A")] = ["127.0.1.105"]
    enrichment = enrich(fake_dns, domain("files-example.net"))
    assert enrichment.result("dnsbl").fields["dbl_meaning"] == "abused legit malware"
    assert enrichment.result("dnsbl").fields["surbl_listed"] == "false"
    assert [(c.rule, c.points) for c in enrichment.contributions] == [("listed_dbl", 17.5)]


# -- DNS-03: blocklist error return codes ---------------------------------------------------------
@pytest.mark.parametrize(("name", "indicator", "answer", "field", "status", "message"), [
    pytest.param(ZEN_NAME, ip(), "127.255.255.254", "zen", Status.ERROR,
                 "blocklist query refused (public/open resolver)", id="DNS-03-zen-254-public-resolver"),
    pytest.param(ZEN_NAME, ip(), "127.255.255.255", "zen", Status.RATE_LIMITED,
                 "blocklist rate limit", id="DNS-03-zen-255-rate-limit"),
    pytest.param("typo-example.org.dbl.spamhaus.org", domain("typo-example.org"), "127.255.255.252", "dbl",
                 Status.ERROR, "blocklist query error", id="DNS-03-dbl-252-query-error"),
    pytest.param("typo-example.org.dbl.spamhaus.org", domain("typo-example.org"), "127.0.1.255", "dbl",
                 Status.ERROR, "blocklist query error (an IP was queried against a domain list)", id="DNS-03-dbl-255"),
    pytest.param("typo-example.org.multi.surbl.org", domain("typo-example.org"), "127.0.0.1", "surbl",
                 Status.ERROR, "blocklist access blocked", id="DNS-03-surbl-access-blocked"),
    pytest.param(ZEN_NAME, ip(), "198.18.0.53", "zen", Status.ERROR,
                 "undocumented answer 198.18.0.53", id="DNS-03-nxdomain-rewriting-resolver"),
])
def test_DNS_03_error_codes_are_unknown_never_listed_never_scored(fake_dns, name, indicator, answer, field, status,
                                                                  message):
    fake_dns.records[(name, "A")] = [answer]
    enrichment = enrich(fake_dns, indicator)
    result = enrichment.result("dnsbl")
    assert result.status is status
    assert result.fields[f"{field}_listed"] == Listing.UNKNOWN == "unknown"
    assert message in result.fields[f"{field}_meaning"]
    assert message in result.message
    assert result.fields["listed_on"] == []
    # error codes never raise the risk score
    assert enrichment.contributions == ()
    assert enrichment.score == 0
    assert enrichment.verdict is Verdict.UNKNOWN


def test_DNS_03_error_code_mixed_with_a_listing_code_is_still_unknown(fake_dns):
    fake_dns.records[(ZEN_NAME, "A")] = ["127.0.0.2", "127.255.255.254"]
    enrichment = enrich(fake_dns, ip())
    assert enrichment.result("dnsbl").fields["zen_listed"] == "unknown"
    assert enrichment.score == 0


def test_DNS_03_listing_code_counts(fake_dns):
    fake_dns.records[(ZEN_NAME, "A")] = ["127.0.0.2"]
    enrichment = enrich(fake_dns, ip())
    assert enrichment.result("dnsbl").fields["zen_listed"] == "true"
    assert enrichment.score == 25


def test_one_zone_listed_and_one_failed_is_ok_with_the_failure_said(fake_dns):
    fake_dns.records[("evil-login.com.dbl.spamhaus.org", "A")] = ["127.0.1.5"]
    fake_dns.records[("evil-login.com.multi.surbl.org", "A")] = ["127.0.0.1"]
    enrichment = enrich(fake_dns, domain("evil-login.com"))
    result = enrichment.result("dnsbl")
    assert result.status is Status.OK
    assert result.fields["surbl_listed"] == "unknown"
    assert result.message.startswith("not every zone answered — multi.surbl.org: blocklist access blocked")
    assert [c.rule for c in enrichment.contributions] == ["listed_dbl"]


def test_one_zone_not_listed_and_one_rate_limited_is_not_reported_as_not_listed(fake_dns):
    fake_dns.records[("quiet-example.org.dbl.spamhaus.org", "A")] = ["127.255.255.255"]
    result = enrich(fake_dns, domain("quiet-example.org")).result("dnsbl")
    assert result.status is Status.RATE_LIMITED
    assert result.fields["dbl_listed"] == "unknown" and result.fields["surbl_listed"] == "false"


def test_servfail_is_an_error_and_silence_a_timeout(fake_dns):
    fake_dns.records[(ZEN_NAME, "A")] = SERVFAIL
    result = enrich(fake_dns, ip()).result("dnsbl")
    assert result.status is Status.ERROR
    assert "SERVFAIL" in result.message and result.fields["zen_listed"] == "unknown"

    fake_dns.records[(ZEN_NAME, "A")] = SILENT
    result = enrich(fake_dns, ip()).result("dnsbl")
    assert result.status is Status.TIMEOUT
    assert "did not answer" in result.message


def test_local_mode_asks_nothing(fake_dns):
    result = enrich(fake_dns, ip(), Mode.LOCAL).result("dnsbl")
    assert result.status is Status.SKIPPED_PRIVACY
    assert fake_dns.queries == []


def test_ipv6_and_urls_are_not_applicable(fake_dns):
    assert enrich(fake_dns, Indicator(Kind.IPV6, "2606:4700::1111", "x", "x")).result("dnsbl").status is \
        Status.NOT_APPLICABLE
    assert fake_dns.queries == []


# -- privacy: nothing about a private address or a reserved name leaves the machine -------------------
@pytest.mark.parametrize("indicator", [
    pytest.param(parse_indicator("192.168.10.20"), id="private-ip-parsed"),
    pytest.param(Indicator(Kind.IPV4, "10.1.2.3", "10.1.2.3", "10.1.2.3", scope=Scope.PRIVATE), id="private-ip"),
    pytest.param(Indicator(Kind.DOMAIN, "shop.example.test", "shop.example.test", "shop.example.test",
                           scope=Scope.RESERVED), id="dot-test-domain"),
    pytest.param(Indicator(Kind.URL, "http://intranet.corp.test/x", "http://intranet.corp.test/x", "x",
                           scope=Scope.RESERVED, host="intranet.corp.test", host_kind=Kind.DOMAIN), id="dot-test-url"),
])
def test_private_ip_and_reserved_name_are_never_queried(fake_dns, httpserver, indicator):
    base = httpserver.url_for("/")
    settings = Settings(
        dns_server=fake_dns.server, timeout=1,
        urls={f"OTC_{s.name.upper()}_URL": base for s in (URLHAUS, THREATFOX, MALWAREBAZAAR, CRTSH)},
        keys={"OTC_ABUSECH_KEY": Secret("dummy-abusech-key-456")},
    )
    sources = [URLHAUS, THREATFOX, MALWAREBAZAAR, CRTSH, DNSBL]
    enrichment = Enricher(settings, sources=sources).enrich(indicator)
    statuses = {r.source: r.status for r in enrichment.results}
    applicable = [s.name for s in sources if indicator.kind in s.kinds]
    assert len(applicable) >= 2
    assert all(statuses[name] is Status.SKIPPED_PRIVACY for name in applicable), statuses
    assert fake_dns.queries == []
    assert httpserver.log == []
