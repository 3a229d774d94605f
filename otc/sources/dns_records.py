"""DNS: A, AAAA, CNAME, MX, NS and TXT records of a domain (or of a URL's / e-mail's host), PTR of an IP.

Asks through the injected dnspython resolver (``ctx.resolver``: the system's, or ``OTC_DNS_SERVER``).
The outcomes a resolver can give are kept apart, because they mean different things to an analyst:
NXDOMAIN (the name does not exist) is ``not_found``; SERVFAIL (the resolver could not get an answer) is
``error`` and comes back at once; no reply is ``timeout``; NOERROR without records is ``not_found``
"no records". TXT records are attacker-controlled text and are kept as plain strings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NoReturn

import dns.exception
import dns.rdatatype
import dns.resolver
import dns.reversename

from otc.errors import SourceError, SourceTimeout, SourceUnreachable
from otc.model import Indicator, Kind, SourceResult, Status
from otc.sources.base import Source, SourceContext

DOMAIN_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT")
FIELD_OF_TYPE = {t: t.lower() for t in DOMAIN_TYPES} | {"PTR": "ptr"}


class DnsLookupFailed(SourceError):
    """The resolver answered, but with a failure (SERVFAIL and kin)."""


@dataclass(frozen=True)
class TypeOutcome:
    """What the resolver said for one record type of one name."""

    rdtype: str
    records: tuple[str, ...] = ()
    rcode: str = "NOERROR"  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ... or TIMEOUT / UNREACHABLE


def query_name(indicator: Indicator) -> str | None:
    """The DNS name to ask about for this indicator, or ``None`` when DNS does not apply.

    A wildcard (``*.example.com``) is asked as ``example.com``: ``*`` is never sent.
    """
    if indicator.kind in (Kind.IPV4, Kind.IPV6):
        return dns.reversename.from_address(indicator.value).to_text(omit_final_dot=True)
    if indicator.kind is Kind.DOMAIN:
        name = indicator.value
    elif indicator.kind in (Kind.URL, Kind.EMAIL) and indicator.host_kind is Kind.DOMAIN and indicator.host:
        name = indicator.host
    else:
        return None
    name = name.strip().rstrip(".").lower()
    while name.startswith("*."):
        name = name[2:]
    if not name or "*" in name:
        return None
    return name


def record_text(rdata: Any) -> str:
    """One record as the analyst reads it: names without the final dot, TXT strings joined."""
    rdtype = dns.rdatatype.to_text(rdata.rdtype)
    if rdtype == "TXT":
        # A TXT record is a list of <=255-byte strings meant to be read joined (SPF, DKIM).
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    if rdtype == "MX":
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True)}"
    if rdtype in ("CNAME", "NS", "PTR"):
        return rdata.target.to_text(omit_final_dot=True)
    return rdata.to_text()


def _failure_rcode(exc: dns.resolver.NoNameservers) -> str:
    """The resolver's answer behind "all nameservers failed": SERVFAIL, REFUSED, or UNREACHABLE."""
    errors = exc.kwargs.get("errors") or []
    seen = [e[3] for e in errors if len(e) > 3]
    texts = [s for s in seen if isinstance(s, str)]
    if "SERVFAIL" in texts:
        return "SERVFAIL"
    if texts:
        return texts[0]
    if any(isinstance(s, OSError) for s in seen):
        return "UNREACHABLE"
    return "SERVFAIL"


def ask(resolver: dns.resolver.Resolver, name: str, rdtype: str, lifetime: float) -> TypeOutcome:
    """One question; every resolver outcome becomes a :class:`TypeOutcome` (none raises)."""
    try:
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=False, lifetime=lifetime, search=False)
    except dns.resolver.NXDOMAIN:
        return TypeOutcome(rdtype, rcode="NXDOMAIN")
    except dns.resolver.YXDOMAIN:
        return TypeOutcome(rdtype, rcode="YXDOMAIN")
    except dns.resolver.NoNameservers as exc:
        return TypeOutcome(rdtype, rcode=_failure_rcode(exc))
    except dns.exception.Timeout:
        return TypeOutcome(rdtype, rcode="TIMEOUT")
    except OSError:
        return TypeOutcome(rdtype, rcode="UNREACHABLE")
    if answer.rrset is None:
        return TypeOutcome(rdtype)
    return TypeOutcome(rdtype, tuple(record_text(r) for r in answer.rrset))


def _server_label(resolver: dns.resolver.Resolver) -> str:
    servers = [str(ns) for ns in resolver.nameservers] or ["the system resolver"]
    port = getattr(resolver, "port", 53)
    return servers[0] if port == 53 else f"{servers[0]}:{port}"


class DnsRecordsSource(Source):
    name = "dns"
    title = "DNS"
    description = "A, AAAA, CNAME, MX, NS and TXT records of a domain; the reverse name (PTR) of an IP"
    kinds = frozenset({Kind.DOMAIN, Kind.URL, Kind.EMAIL, Kind.IPV4, Kind.IPV6})
    base_url = ""  # the resolver comes from OTC_DNS_SERVER / the system, not a URL
    third_party = True  # the resolver (and the name's authoritative servers) see the name
    max_concurrency = 8

    def applies_to(self, indicator: Indicator) -> bool:
        return indicator.kind in self.kinds and query_name(indicator) is not None

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        resolver = ctx.resolver
        if resolver is None:
            raise SourceUnreachable("no DNS resolver is configured")
        name = query_name(indicator)
        is_ip = indicator.kind in (Kind.IPV4, Kind.IPV6)
        types = ("PTR",) if is_ip else DOMAIN_TYPES
        deadline = time.monotonic() + ctx.timeout
        per_query = min(resolver.lifetime, ctx.timeout)
        outcomes: list[TypeOutcome] = []
        for rdtype in types:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            outcome = ask(resolver, name, rdtype, min(per_query, remaining))
            outcomes.append(outcome)
            if outcome.rcode in ("NXDOMAIN", "TIMEOUT", "UNREACHABLE"):
                break  # the name does not exist / the resolver is gone: asking other types cannot help
        return self._result(name, is_ip, types, outcomes, resolver, ctx.timeout)

    def _result(self, name: str, is_ip: bool, types: tuple[str, ...], outcomes: list[TypeOutcome],
                resolver: dns.resolver.Resolver, timeout: float) -> SourceResult:
        raw = {"name": name, "answers": {o.rdtype: list(o.records) for o in outcomes},
               "rcodes": {o.rdtype: o.rcode for o in outcomes}}
        if any(o.rcode == "NXDOMAIN" for o in outcomes):
            message = ("no reverse DNS name: the PTR name does not exist (NXDOMAIN)" if is_ip
                       else "does not exist (NXDOMAIN)")
            return self.result(Status.NOT_FOUND, {"name": name, "rcode": "NXDOMAIN"}, raw=raw, message=message)
        answered = [o for o in outcomes if o.rcode == "NOERROR"]
        failed = [o for o in outcomes if o.rcode != "NOERROR"]
        not_asked = [t for t in types if t not in {o.rdtype for o in outcomes}]
        if not any(o.records for o in answered):
            # Nothing to show: a failure must not read as "no records", so it becomes the status.
            if failed:
                self._raise_failure(failed, resolver, timeout)
            if not_asked:
                raise SourceTimeout(f"DNS lookup of {name} did not finish within {timeout:g} s")
            message = "no PTR record (the reverse name exists, without one)" if is_ip else "no records"
            return self.result(Status.NOT_FOUND, {"name": name, "rcode": "NOERROR"}, raw=raw, message=message)
        fields: dict[str, Any] = {"name": name}
        for rdtype in types:
            fields[FIELD_OF_TYPE[rdtype]] = [r for o in answered if o.rdtype == rdtype for r in o.records]
        notes = [f"{o.rdtype}: {self._describe(o.rcode)}" for o in failed]
        if not_asked:
            stopped_by_server = any(o.rcode in ("TIMEOUT", "UNREACHABLE") for o in failed)
            why = "the DNS server stopped answering" if stopped_by_server else f"time limit of {timeout:g} s reached"
            notes.append(f"{', '.join(not_asked)}: not asked ({why})")
        fields["errors"] = notes
        return self.result(Status.OK, fields, raw=raw, message="; ".join(notes))

    @staticmethod
    def _describe(rcode: str) -> str:
        if rcode == "TIMEOUT":
            return "no answer in time"
        if rcode == "UNREACHABLE":
            return "DNS server unreachable"
        return f"DNS lookup failed ({rcode})"

    @staticmethod
    def _raise_failure(failed: list[TypeOutcome], resolver: dns.resolver.Resolver, timeout: float) -> NoReturn:
        rcodes = [o.rcode for o in failed]
        server = _server_label(resolver)
        if "SERVFAIL" in rcodes:
            raise DnsLookupFailed("DNS lookup failed (SERVFAIL)")
        if "TIMEOUT" in rcodes:
            lifetime = min(resolver.lifetime, timeout)
            raise SourceTimeout(f"DNS server {server} did not answer within {lifetime:g} s")
        if "UNREACHABLE" in rcodes:
            raise SourceUnreachable(f"DNS server {server} cannot be reached")
        if rcodes and all(r == "REFUSED" for r in rcodes):
            # A resolver that refuses us will refuse every name: let the circuit breaker stop asking.
            raise SourceUnreachable(f"DNS server {server} refused the query (REFUSED)")
        raise DnsLookupFailed(f"DNS lookup failed ({rcodes[0] if rcodes else 'no answer'})")


SOURCE = DnsRecordsSource()
