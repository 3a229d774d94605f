"""DNS blocklists: Spamhaus ZEN for IPv4 addresses, Spamhaus DBL and SURBL multi for domains.

Asked through the configured resolver (``ctx.resolver``, ``OTC_DNS_SERVER``), keyless. IPv4: reversed
octets + ``.zen.spamhaus.org``; domains: the registered domain + ``.dbl.spamhaus.org`` / ``.multi.surbl.org``.
NXDOMAIN (or no A record) means "not listed" in that zone. Only each zone's documented listing codes
count as listed; Spamhaus' error range ``127.255.255.x`` (refused via a public resolver, over quota, typo),
DBL's ``127.0.1.255`` and SURBL's ``127.0.0.1`` (access blocked) are errors of the *query*: the zone's
listing is "unknown", the status says why, and they never add to the score. Any other answer (e.g. a
resolver that rewrites NXDOMAIN to an ad server) is "unknown" too, never a listing.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Callable, Mapping

import dns.exception
import dns.name
import dns.resolver
from publicsuffixlist import PublicSuffixList

from otc.errors import SourceError, SourceTimeout
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext


class Listing(StrEnum):
    """A zone's answer about one indicator. ``UNKNOWN`` when the query failed: never "not listed"."""

    LISTED = "true"
    NOT_LISTED = "false"
    UNKNOWN = "unknown"


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped in the package: nothing is downloaded


def registered_domain(indicator: Indicator) -> str:
    """The registrable domain of a domain indicator (``www.example.co.uk`` -> ``example.co.uk``); the
    parser's value when it set one, else computed from the Public Suffix List, else the name itself."""
    if indicator.registered_domain:
        return indicator.registered_domain
    host = indicator.host if indicator.kind is not Kind.DOMAIN and indicator.host else indicator.value
    return _public_suffixes().privatesuffix(host) or host


# -- return-code tables (../shared/docs/upstream-apis.md §10) -------------------------------------
SPAMHAUS_ERRORS: dict[str, tuple[Status, str]] = {
    "127.255.255.252": (Status.ERROR, "blocklist query error (typing error in the zone name)"),
    "127.255.255.254": (Status.ERROR, "blocklist query refused (public/open resolver)"),
    "127.255.255.255": (Status.RATE_LIMITED, "blocklist rate limit (excessive number of queries)"),
}

ZEN_CODES = {
    "127.0.0.2": "SBL: Spamhaus Block List (spam source)",
    "127.0.0.3": "SBL CSS: low-reputation spam source",
    "127.0.0.4": "XBL: exploited or infected host",
    "127.0.0.5": "XBL: exploited or infected host",
    "127.0.0.6": "XBL: exploited or infected host",
    "127.0.0.7": "XBL: exploited or infected host",
    "127.0.0.9": "SBL DROP/EDROP: hijacked or criminal network",
    "127.0.0.10": "PBL: end-user range, ISP-maintained (mail policy, not abuse)",
    "127.0.0.11": "PBL: end-user range, Spamhaus-maintained (mail policy, not abuse)",
}
# PBL says "this address should not send mail directly" — a policy, not evidence of abuse: not scored.
ZEN_ABUSE_CODES = frozenset(ZEN_CODES) - {"127.0.0.10", "127.0.0.11"}

DBL_CODES = {
    "127.0.1.2": "spam domain",
    "127.0.1.4": "phishing domain",
    "127.0.1.5": "malware domain",
    "127.0.1.6": "botnet C&C domain",
    "127.0.1.102": "abused legit spam",
    "127.0.1.103": "abused spammed redirector domain",
    "127.0.1.104": "abused legit phishing",
    "127.0.1.105": "abused legit malware",
    "127.0.1.106": "abused legit botnet C&C",
}
DBL_ABUSED_LEGIT_CODES = frozenset({"127.0.1.102", "127.0.1.103", "127.0.1.104", "127.0.1.105", "127.0.1.106"})
DBL_ERRORS = {"127.0.1.255": (Status.ERROR, "blocklist query error (an IP was queried against a domain list)")}

SURBL_BITS = {8: "PH: phishing", 16: "MW: malware", 64: "ABUSE: spam and abuse", 128: "CR: cracked site"}
SURBL_ERRORS = {"127.0.0.1": (Status.ERROR, "blocklist access blocked (SURBL refused this resolver)")}


@dataclass(frozen=True)
class ZoneAnswer:
    """What one zone said: listed or not (or unknown, with the failure status and why)."""

    zone: str
    listing: Listing
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    failure: Status | None = None  # set exactly when listing is UNKNOWN
    message: str = ""


def _undocumented(zone: str, codes: tuple[str, ...]) -> ZoneAnswer:
    return ZoneAnswer(zone, Listing.UNKNOWN, codes, failure=Status.ERROR,
                      message=f"undocumented answer {', '.join(codes)} — not counted as a listing")


def classify_table(zone: str, codes: tuple[str, ...], table: Mapping[str, str],
                   errors: Mapping[str, tuple[Status, str]]) -> ZoneAnswer:
    """Classify A-record answers against a zone's code table; error codes win over everything."""
    if not codes:
        return ZoneAnswer(zone, Listing.NOT_LISTED)
    for code in codes:
        failure = errors.get(code) or SPAMHAUS_ERRORS.get(code)
        if failure is None and code.startswith("127.255.255."):
            failure = (Status.ERROR, f"blocklist query error ({code})")
        if failure is not None:
            return ZoneAnswer(zone, Listing.UNKNOWN, codes, failure=failure[0], message=failure[1])
    meanings = tuple(dict.fromkeys(table[c] for c in codes if c in table))
    if not meanings:
        return _undocumented(zone, codes)
    return ZoneAnswer(zone, Listing.LISTED, codes, meanings)


def classify_zen(codes: tuple[str, ...]) -> ZoneAnswer:
    return classify_table("zen.spamhaus.org", codes, ZEN_CODES, {})


def classify_dbl(codes: tuple[str, ...]) -> ZoneAnswer:
    return classify_table("dbl.spamhaus.org", codes, DBL_CODES, DBL_ERRORS)


def classify_surbl(codes: tuple[str, ...]) -> ZoneAnswer:
    """SURBL multi: the last octet of 127.0.0.x is a bitmask; 127.0.0.1 means access blocked."""
    zone = "multi.surbl.org"
    if not codes:
        return ZoneAnswer(zone, Listing.NOT_LISTED)
    for code in codes:
        if code in SURBL_ERRORS:
            status, message = SURBL_ERRORS[code]
            return ZoneAnswer(zone, Listing.UNKNOWN, codes, failure=status, message=message)
    meanings: list[str] = []
    for code in codes:
        if not code.startswith("127.0.0."):
            continue
        mask = int(code.rsplit(".", 1)[1])
        meanings += [meaning for bit, meaning in SURBL_BITS.items() if mask & bit and meaning not in meanings]
    if not meanings:
        return _undocumented(zone, codes)
    return ZoneAnswer(zone, Listing.LISTED, codes, tuple(meanings))


@dataclass(frozen=True)
class Zone:
    short: str  # field prefix: zen_listed, dbl_meaning, ...
    name: str
    title: str
    rule: str  # weight rule in scoring_weights.toml
    classify: Callable[[tuple[str, ...]], ZoneAnswer]


ZEN = Zone("zen", "zen.spamhaus.org", "Spamhaus ZEN", "listed_zen", classify_zen)
DBL = Zone("dbl", "dbl.spamhaus.org", "Spamhaus DBL", "listed_dbl", classify_dbl)
SURBL = Zone("surbl", "multi.surbl.org", "SURBL multi", "listed_surbl", classify_surbl)
ZONES_BY_KIND = {Kind.IPV4: (ZEN,), Kind.DOMAIN: (DBL, SURBL)}
ZONES = {zone.short: zone for zone in (ZEN, DBL, SURBL)}


def query_name(indicator: Indicator, zone: Zone) -> str:
    """``1.2.3.4`` -> ``4.3.2.1.zen.spamhaus.org.``; ``www.example.com`` -> ``example.com.dbl.spamhaus.org.``"""
    if indicator.kind is Kind.IPV4:
        label = ".".join(reversed(str(ipaddress.IPv4Address(indicator.value)).split(".")))
    else:
        label = registered_domain(indicator)
    return f"{label}.{zone.name}."


def ask_zone(resolver: dns.resolver.Resolver, qname: str, zone: Zone, lifetime: float | None = None) -> ZoneAnswer:
    """One A query, turned into a :class:`ZoneAnswer` (DNS failures become an unknown listing)."""
    try:
        answer = resolver.resolve(dns.name.from_text(qname), "A", search=False, raise_on_no_answer=False,
                                  lifetime=lifetime)
    except dns.resolver.NXDOMAIN:
        return ZoneAnswer(zone.name, Listing.NOT_LISTED)
    except dns.exception.Timeout:
        return ZoneAnswer(zone.name, Listing.UNKNOWN, failure=Status.TIMEOUT,
                          message="the DNS resolver did not answer in time")
    except dns.resolver.NoNameservers:
        return ZoneAnswer(zone.name, Listing.UNKNOWN, failure=Status.ERROR,
                          message="DNS lookup failed (SERVFAIL or refused by the resolver)")
    except dns.exception.DNSException as exc:
        return ZoneAnswer(zone.name, Listing.UNKNOWN, failure=Status.ERROR,
                          message=f"DNS lookup failed ({type(exc).__name__})")
    codes = tuple(rr.address for rr in answer.rrset) if answer.rrset is not None else ()
    return zone.classify(codes)


def zone_fields(zone: Zone, answer: ZoneAnswer) -> dict[str, Any]:
    meaning = "; ".join(answer.meanings) if answer.listing is Listing.LISTED else answer.message or "not listed"
    return {
        f"{zone.short}_listed": answer.listing,
        f"{zone.short}_meaning": meaning,
        f"{zone.short}_codes": list(answer.codes),
    }


def summarize(answers: list[tuple[Zone, ZoneAnswer]]) -> tuple[Status, dict[str, Any], str]:
    """(status, fields, message) for a source result from each zone's answer. Pure.

    Listed anywhere -> OK; every zone answered "not listed" -> NOT_FOUND; otherwise the failure (rate
    limit first, then error, then timeout) with ``<zone>_listed = unknown`` — never a silent "not listed".
    """
    fields: dict[str, Any] = {}
    for zone, answer in answers:
        fields.update(zone_fields(zone, answer))
    fields["listed_on"] = [a.zone for _, a in answers if a.listing is Listing.LISTED]
    failed = [(z, a) for z, a in answers if a.listing is Listing.UNKNOWN]
    problems = "; ".join(f"{a.zone}: {a.message}" for _, a in failed)
    if fields["listed_on"]:
        return Status.OK, fields, (f"not every zone answered — {problems}" if failed else "")
    if not failed:
        return Status.NOT_FOUND, fields, "not listed on " + ", ".join(a.zone for _, a in answers)
    statuses = {a.failure for _, a in failed}
    for status in (Status.RATE_LIMITED, Status.ERROR, Status.TIMEOUT):
        if status in statuses:
            return status, fields, problems
    return Status.ERROR, fields, problems


class DnsblSource(Source):
    name = "dnsbl"
    title = "DNS blocklists"
    description = "Spamhaus ZEN (IPv4), Spamhaus DBL and SURBL multi (domains), with each zone's meaning"
    kinds = frozenset(ZONES_BY_KIND)
    base_url = ""  # asked through the configured resolver, not HTTP
    third_party = True  # the resolver forwards the indicator to Spamhaus / SURBL
    rate_limit = RateLimit(per_second=5.0)  # public mirrors: low-volume use only
    max_concurrency = 4
    licence_note = "Spamhaus and SURBL public mirrors: low-volume, non-commercial use (else Spamhaus DQS)"

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        if ctx.resolver is None:
            raise SourceError("no DNS resolver is configured for DNS blocklist queries")
        deadline = time.monotonic() + ctx.timeout  # one budget for all zones, not one per zone
        answers = []
        for zone in ZONES_BY_KIND[indicator.kind]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                answers.append((zone, ZoneAnswer(zone.name, Listing.UNKNOWN, failure=Status.TIMEOUT,
                                                 message="not asked: the time limit was reached")))
                continue
            answers.append((zone, ask_zone(ctx.resolver, query_name(indicator, zone), zone,
                                             min(ctx.resolver.lifetime, remaining))))
        if all(answer.failure is Status.TIMEOUT for _, answer in answers):
            # Raised rather than returned so the engine's circuit breaker counts a resolver that is down.
            raise SourceTimeout("the DNS resolver did not answer the blocklist queries in time")
        status, fields, message = summarize(answers)
        raw = {zone.name: {"query": query_name(indicator, zone), "answers": list(answer.codes),
                           "listed": answer.listing.value, "message": answer.message}
               for zone, answer in answers}
        return self.result(status, fields, raw=raw, message=message)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        lines: list[Contribution] = []
        for zone in ZONES.values():
            if fields.get(f"{zone.short}_listed") != Listing.LISTED:
                continue
            codes = list(fields.get(f"{zone.short}_codes") or ())
            meaning = fields.get(f"{zone.short}_meaning", "")
            factor = 1.0
            if zone is ZEN:
                abuse = [c for c in codes if c in ZEN_ABUSE_CODES]
                if not abuse:
                    continue  # PBL only: a mail-policy listing, shown but not scored
                meaning = "; ".join(dict.fromkeys(ZEN_CODES[c] for c in abuse))
            if zone is DBL and codes and set(codes) <= DBL_ABUSED_LEGIT_CODES:
                factor = weights.weight("abused_legit_factor")  # a legitimate domain that was abused
            lines.append(self.contribution(weights, zone.rule, f"{zone.title}: {meaning}", factor))
        return lines


SOURCE = DnsblSource()
