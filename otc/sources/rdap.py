"""RDAP: who holds an IP network or an AS number, and who registered a domain and when.

``GET https://rdap.org/{ip|domain|autnum}/{x}``: rdap.org redirects (302) to the authoritative server
(an RIR for addresses and AS numbers, the TLD's registry for domains). Redirects are followed here, one
hop at a time, so the source knows which server answered: a 404 from rdap.org itself (empty body) means
"no RDAP service for this TLD", a 404 from a registry means "not registered", and a rate limit from one
RIR backs off from that RIR only (:class:`HostBackoff`) while the rest of a batch goes on.

The answer is parsed here rather than by ipwhois: ipwhois parses only the IP network object (not domains
or AS numbers), at depth 0 it skips the nested entities where ARIN keeps the abuse contact, it ignores
ARIN's origin-AS extension, and its ``Net`` object reads the system resolver configuration even when no
lookup is made. ``tests/test_rdap_shared_fixtures.py`` checks that the network fields parsed here equal
ipwhois's own parse of its recorded RIR answers.

Personal data: only role mailboxes of abuse contacts and organisation names become fields; contacts of
kind "individual" are left out.
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping
from urllib.parse import urljoin, urlsplit

from otc.errors import MalformedResponse, RateLimited, SourceTimeout, UpstreamError
from otc.http import HttpResponse
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext

ACCEPT = {"Accept": "application/rdap+json"}
RATE_LIMITED_MESSAGE = "RDAP rate-limited - retry"
ASN_FAILED_NOTE = "ASN lookup failed (the RDAP answer names no origin AS)"
MAX_REDIRECTS = 5
DEFAULT_BACKOFF = 60.0  # seconds to leave a server alone after a 429 without Retry-After
HOLD_STATUSES = {"clienthold", "serverhold"}
_REDIRECTS = {301, 302, 303, 307, 308}
_ASN = re.compile(r"^(?:AS)?(\d{1,10})$", re.IGNORECASE)


# -- what to ask ---------------------------------------------------------------------------------------
def rdap_path(indicator: Indicator) -> tuple[str, str] | None:
    """``(object class, path)`` to request for an indicator, or ``None`` when RDAP does not apply.

    Addresses and networks go to ``/ip/`` (never ``/domain/``); subdomains, URLs and e-mail addresses
    are asked about their registered domain, the object a registry holds; a wildcard likewise.
    """
    kind = indicator.kind
    if kind in (Kind.IPV4, Kind.IPV6, Kind.CIDR):
        return "ip", f"/ip/{indicator.value}"
    if kind is Kind.ASN:
        match = _ASN.match(indicator.value.strip())
        return ("autnum", f"/autnum/{int(match.group(1))}") if match else None
    if kind in (Kind.URL, Kind.EMAIL):
        if indicator.host_kind in (Kind.IPV4, Kind.IPV6) and indicator.host:
            return "ip", f"/ip/{indicator.host.strip('[]')}"
        if indicator.host_kind is not Kind.DOMAIN or not indicator.host:
            return None
        domain = indicator.registered_domain or indicator.host
    elif kind is Kind.DOMAIN:
        domain = indicator.registered_domain or indicator.value
    else:
        return None
    domain = domain.strip().rstrip(".").lower()
    while domain.startswith("*."):
        domain = domain[2:]
    if not domain or "*" in domain or "." not in domain:
        return None
    return "domain", f"/domain/{domain}"


# -- per-server back-off -------------------------------------------------------------------------------
class HostBackoff:
    """Servers (by host) that answered 429, and until when (wall clock) they are left alone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def block(self, host: str, now: float, seconds: float) -> None:
        with self._lock:
            self._until[host] = max(self._until.get(host, 0.0), now + seconds)

    def blocked_for(self, host: str, now: float) -> float:
        """Seconds still to wait before asking ``host`` again (0 when it may be asked)."""
        with self._lock:
            return max(0.0, self._until.get(host, 0.0) - now)

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


class ServerRateLimited(Exception):
    """An authoritative server behind the redirector rate-limited us (or still asks us to wait)."""

    def __init__(self, host: str, wait: float) -> None:
        super().__init__(host)
        self.host, self.wait = host, wait


# -- parsing (pure) ------------------------------------------------------------------------------------
def _json_object_or_none(response: HttpResponse) -> dict | None:
    try:
        data = response.json()
    except MalformedResponse:
        return None
    return data if isinstance(data, dict) else None


def is_rate_limited(response: HttpResponse) -> bool:
    """HTTP 429, or a JSON body carrying a notice titled "Rate Limit Notice" (LACNIC answers so)."""
    if response.status == 429:
        return True
    data = _json_object_or_none(response)
    notices = data.get("notices") if data else None
    return isinstance(notices, list) and any(
        isinstance(n, dict) and "rate limit" in str(n.get("title", "")).lower() for n in notices
    )


def _is_rdap_error_body(response: HttpResponse) -> bool:
    data = _json_object_or_none(response)
    return bool(data) and ("errorCode" in data or "rdapConformance" in data or "objectClassName" in data)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int))]
    return []


def iter_entities(entities: Any, depth: int = 0) -> Iterator[dict]:
    """Every entity, nested ones included (ARIN nests the abuse contact inside the registrant)."""
    if not isinstance(entities, list) or depth > 5:
        return
    for entity in entities:
        if isinstance(entity, dict):
            yield entity
            yield from iter_entities(entity.get("entities"), depth + 1)


def vcard_of(entity: Mapping[str, Any]) -> dict[str, Any]:
    """``{"fn", "kind", "emails": [(address, types)]}`` from an entity's jCard (RFC 7095)."""
    card: dict[str, Any] = {"fn": "", "kind": "", "emails": []}
    array = entity.get("vcardArray")
    if not (isinstance(array, list) and len(array) > 1 and isinstance(array[1], list)):
        return card
    for prop in array[1]:
        if not (isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str)):
            continue
        name, params, value = prop[0].lower(), prop[1] if isinstance(prop[1], dict) else {}, prop[3]
        if name == "fn" and isinstance(value, str):
            card["fn"] = value.strip()
        elif name == "kind" and isinstance(value, str):
            card["kind"] = value.strip().lower()
        elif name == "email" and isinstance(value, str) and "@" in value:
            types = {t.lower() for t in _strings(params.get("type"))}
            card["emails"].append((value.strip(), types))
    return card


def _roles(entity: Mapping[str, Any]) -> set[str]:
    return {r.lower() for r in _strings(entity.get("roles"))}


def abuse_emails(data: Mapping[str, Any]) -> list[str]:
    """Abuse role mailboxes. Contacts of kind "individual" are people: their addresses are left out.

    Where an abuse contact marks one address as its abuse address (vCard ``type=abuse``), only that one
    is taken (RIPE lists a person's address beside the role mailbox in the same card).
    """
    found: list[str] = []
    for entity in iter_entities(data.get("entities")):
        if "abuse" not in _roles(entity):
            continue
        card = vcard_of(entity)
        if card["kind"] == "individual":
            continue
        marked = [addr for addr, types in card["emails"] if "abuse" in types]
        for address in marked or [addr for addr, _ in card["emails"]]:
            if address.lower() not in (f.lower() for f in found):
                found.append(address)
    return found


def organization(data: Mapping[str, Any], role: str) -> str | None:
    """The name of the organisation holding ``role`` (registrant, registrar); never a person's name.

    A registrant counts only when its card says ``kind: org``; registrars are organisations by
    definition (ICANN accreditation), and their cards often omit ``kind``.
    """
    for entity in iter_entities(data.get("entities")):
        if role not in _roles(entity):
            continue
        card = vcard_of(entity)
        if card["fn"] and (card["kind"] == "org" or (role == "registrar" and card["kind"] != "individual")):
            return card["fn"]
    return None


def event_dates(data: Mapping[str, Any]) -> dict[str, datetime]:
    """``eventAction`` (lower case) -> first date, as aware UTC datetimes; unparsable dates are skipped."""
    dates: dict[str, datetime] = {}
    for event in data.get("events") or []:
        if not isinstance(event, dict):
            continue
        action = str(event.get("eventAction", "")).strip().lower()
        when = parse_date(event.get("eventDate"))
        if action and when is not None and action not in dates:
            dates[action] = when
    return dates


def parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _day(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%d") if when else None


def _address(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An RDAP start/end address; RIRs zero-pad IPv4 (``074.125.000.000``) or append ``/32``."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip().split("/")[0]
    if "." in text and ":" not in text:
        try:
            text = ".".join(str(int(part)) for part in text.split("."))
        except ValueError:
            return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def network_cidrs(data: Mapping[str, Any]) -> list[str]:
    """The CIDR blocks covering startAddress..endAddress (as ipwhois computes), else ``cidr0_cidrs``."""
    start, end = _address(data.get("startAddress")), _address(data.get("endAddress"))
    if start is not None and end is not None and start.version == end.version and start <= end:
        return [str(net) for net in ipaddress.summarize_address_range(start, end)]
    blocks = []
    for block in data.get("cidr0_cidrs") or []:
        if isinstance(block, dict):
            prefix = block.get("v4prefix") or block.get("v6prefix")
            if prefix and block.get("length") is not None:
                blocks.append(f"{prefix}/{block['length']}")
    return blocks


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


def parse_ip_network(data: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of an RDAP IP network object (RFC 9083 5.4, ARIN's cidr0 and originAS extensions)."""
    start, end = _address(data.get("startAddress")), _address(data.get("endAddress"))
    if not _text(data, "handle") and start is None:
        raise MalformedResponse("RDAP answer is not an IP network (no handle, no address range)")
    origin = data.get("arin_originas0_originautnums")
    asns = [f"AS{int(n)}" for n in origin if str(n).isdigit()] if isinstance(origin, list) else []
    dates = event_dates(data)
    fields: dict[str, Any] = {
        "object": "ip network",
        "network_name": _text(data, "name"),
        "handle": _text(data, "handle"),
        "cidr": network_cidrs(data),
        "start_address": str(start) if start else None,
        "end_address": str(end) if end else None,
        "country": _text(data, "country"),
        "type": _text(data, "type"),
        "parent_handle": _text(data, "parentHandle"),
        "organization": organization(data, "registrant"),
        "asn": asns,
        "abuse_emails": abuse_emails(data),
        "registered": _day(dates.get("registration")),
        "last_changed": _day(dates.get("last changed")),
        "status": _strings(data.get("status")),
    }
    if not asns:
        fields["asn_note"] = ASN_FAILED_NOTE
    return fields


def parse_domain(data: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Fields of an RDAP domain object: registrar, dates, age in days at ``now``, status, name servers."""
    name = _text(data, "ldhName") or _text(data, "unicodeName")
    if not name:
        raise MalformedResponse("RDAP answer is not a domain (no ldhName)")
    registrar_id = None
    for entity in iter_entities(data.get("entities")):
        if "registrar" in _roles(entity):
            for public_id in entity.get("publicIds") or []:
                if isinstance(public_id, dict) and "iana" in str(public_id.get("type", "")).lower():
                    registrar_id = str(public_id.get("identifier", "")).strip() or None
            break
    dates = event_dates(data)
    registered = dates.get("registration")
    age_days = None
    if registered is not None:
        age = (now - registered.timestamp()) // 86400
        age_days = int(age) if age >= 0 else None
    secure = data.get("secureDNS")
    signed = secure.get("delegationSigned") if isinstance(secure, dict) else None
    nameservers = [
        str(ns.get("ldhName")).lower().rstrip(".")
        for ns in data.get("nameservers") or [] if isinstance(ns, dict) and ns.get("ldhName")
    ]
    return {
        "object": "domain",
        "domain": name.lower().rstrip("."),
        "registrar": organization(data, "registrar"),
        "registrar_iana_id": registrar_id,
        "registered": _day(registered),
        "expires": _day(dates.get("expiration")),
        "last_changed": _day(dates.get("last changed")),
        "age_days": age_days,
        "status": _strings(data.get("status")),
        "nameservers": nameservers,
        "dnssec": signed if isinstance(signed, bool) else None,
        "abuse_emails": abuse_emails(data),
    }


def parse_autnum(data: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of an RDAP autnum object (AS number)."""
    handle = _text(data, "handle")
    start = data.get("startAutnum")
    if not handle and start is None:
        raise MalformedResponse("RDAP answer is not an AS number (no handle)")
    dates = event_dates(data)
    match = _ASN.match(handle or "")
    number = int(start) if isinstance(start, int) else int(match.group(1)) if match else None
    return {
        "object": "autnum",
        "asn": f"AS{number}" if number is not None else None,
        "name": _text(data, "name"),
        "handle": handle,
        "type": _text(data, "type"),
        "country": _text(data, "country"),
        "organization": organization(data, "registrant"),
        "abuse_emails": abuse_emails(data),
        "registered": _day(dates.get("registration")),
        "last_changed": _day(dates.get("last changed")),
    }


def parse_rdap(object_class: str, data: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Fields for an RDAP object of ``object_class`` (``ip``, ``domain``, ``autnum``). Pure."""
    if object_class == "ip":
        return parse_ip_network(data)
    if object_class == "domain":
        return parse_domain(data, now)
    return parse_autnum(data)


def _tld(path: str) -> str:
    return "." + path.rstrip("/").rsplit(".", 1)[-1]


def _host(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1] or "the RDAP server"


# -- the source ----------------------------------------------------------------------------------------
class RdapSource(Source):
    name = "rdap"
    title = "RDAP"
    description = "Registration data: network, AS and abuse contact of an IP; registrar, dates and age of a domain"
    kinds = frozenset({Kind.IPV4, Kind.IPV6, Kind.CIDR, Kind.ASN, Kind.DOMAIN, Kind.URL, Kind.EMAIL})
    base_url = "https://rdap.org"
    # rdap.org answers 429 past 30 requests in 5 minutes: a steady pace of 6 a minute stays within it.
    rate_limit = RateLimit(per_minute=6, burst=5)
    max_concurrency = 2
    licence_note = "Registry data under each RIR's and registry's terms of use"

    def __init__(self) -> None:
        self.backoff = HostBackoff()

    def applies_to(self, indicator: Indicator) -> bool:
        return indicator.kind in self.kinds and rdap_path(indicator) is not None

    def _fetch(self, ctx: SourceContext, path: str) -> tuple[HttpResponse, str, int]:
        """GET ``path``, following redirects one hop at a time: ``(response, url answered, hops)``."""
        url = ctx.url(path)
        deadline = time.monotonic() + ctx.timeout
        for hop in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceTimeout(f"RDAP did not answer within {ctx.timeout:g} s")
            if hop:
                wait = self.backoff.blocked_for(_host(url), ctx.clock())
                if wait:
                    raise ServerRateLimited(_host(url), wait)
            response = ctx.http.get(url, timeout=remaining, headers=ACCEPT, allow_redirects=False)
            location = response.headers.get("Location") or response.headers.get("location")
            if response.status in _REDIRECTS and location:
                target = urljoin(url, location.strip())
                if urlsplit(target).scheme not in ("http", "https"):
                    raise UpstreamError("RDAP redirected to a non-HTTP address")
                url = target
                continue
            return response, url, hop
        raise UpstreamError(f"RDAP redirected more than {MAX_REDIRECTS} times (redirect loop)")

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        object_class, path = rdap_path(indicator)
        try:
            response, url, hops = self._fetch(ctx, path)
            if is_rate_limited(response):
                retry_after = response.retry_after()
                if hops == 0:  # the service we are configured for limits us: the engine paces the source
                    raise RateLimited(RATE_LIMITED_MESSAGE, retry_after=retry_after)
                wait = retry_after if retry_after is not None else DEFAULT_BACKOFF
                self.backoff.block(_host(url), ctx.clock(), wait)
                raise ServerRateLimited(_host(url), wait)
        except ServerRateLimited as limited:
            # One RIR or registry behind the redirector limits us: only lookups it answers wait.
            return self.result(Status.RATE_LIMITED, {"server": limited.host, "retry_after_s": round(limited.wait)},
                               message=RATE_LIMITED_MESSAGE)
        server = _host(url)
        status = response.status
        if status == 404 or status == 501:
            raw = _json_object_or_none(response) or (response.text[:2000] or None)
            if object_class == "domain" and (status == 501 or (hops == 0 and not _is_rdap_error_body(response))):
                # rdap.org answers an empty 404 when no RDAP server is known for the TLD.
                return self.result(Status.NOT_FOUND, {"server": server}, raw=raw,
                                   message=f"no RDAP service for {_tld(path)}")
            if status == 501:
                return self.result(Status.NOT_FOUND, {"server": server}, raw=raw,
                                   message=f"{server} offers no RDAP service for this query (HTTP 501)")
            what = {"domain": "domain not registered", "ip": "no RDAP record for this address",
                    "autnum": "no RDAP record for this AS number"}[object_class]
            return self.result(Status.NOT_FOUND, {"server": server}, raw=raw, message=f"{what} (HTTP 404 from {server})")
        if status >= 500:
            raise UpstreamError(f"RDAP server {server} had a server error (HTTP {status})", http_status=status)
        if status >= 300:
            raise UpstreamError(f"RDAP server {server} refused the request (HTTP {status})", http_status=status)
        try:
            data = response.json_object()
        except MalformedResponse as exc:
            raise MalformedResponse(f"RDAP server {server}: {exc}") from None
        fields = parse_rdap(object_class, data, ctx.clock())
        fields["server"] = server
        return self.result(Status.OK, fields, raw=data, message=fields.get("asn_note", ""))

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        if fields.get("object") != "domain":
            return []
        lines: list[Contribution] = []
        age = fields.get("age_days")
        if isinstance(age, int):
            when = "today" if age == 0 else f"{age} day{'s' if age != 1 else ''} ago"
            if age < 30:
                lines.append(self.contribution(weights, "domain_age_under_30_days", f"domain registered {when}"))
            elif age < 365:
                lines.append(self.contribution(weights, "domain_age_under_1_year", f"domain registered {when}"))
            elif age >= 5 * 365.25:
                years = int(age // 365.25)
                lines.append(self.contribution(weights, "domain_age_over_5_years",
                                               f"domain registered {years} years ago ({fields.get('registered')})"))
        held = [s for s in fields.get("status") or [] if s.replace(" ", "").lower() in HOLD_STATUSES]
        if held:
            lines.append(self.contribution(weights, "domain_status_hold", f"domain on hold ({', '.join(held)})"))
        return lines


SOURCE = RdapSource()
