"""AlienVault OTX (LevelBlue OTX): in how many community "pulses" an indicator appears, which malware and
actors they name, whether OTX allow-lists it, and the host names seen with it (passive DNS).

``GET https://otx.alienvault.com/api/v1/indicators/{IPv4|IPv6|domain|hostname|url|file}/{indicator}/{section}``
(URLs percent-encoded in the path), header ``X-OTX-API-KEY`` when a key is configured — reads work without
one at a lower limit (about 1,000 requests/hour; 10,000 with a key). Errors are ``{"detail": ...}``: 400 an
indicator OTX refuses, 403 a bad key, 404 nothing known.

Requests per lookup: the ``general`` section always; ``passive_dns`` (one more request) only for addresses
and names that are in at least one pulse — related hosts matter for what is already suspect, and most of a
bulk run is not; ``malware`` (samples seen talking to it) only when built with ``OtxSource(malware_samples=True)``.
A failed extra request keeps the ``general`` answer and says what is missing.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping
from urllib.parse import quote

from otc.errors import MalformedResponse, SourceError
from otc.http import HttpResponse, json_detail, raise_for_common_status
from otc.model import HASH_KINDS, Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext

TITLE = "AlienVault OTX"
KEY_URL = "https://otx.alienvault.com/api"
# validation[].source values that mean "known good / known false positive"; popularity ranks
# (alexa, majestic, ...) are shown but are no proof of innocence.
ALLOWLIST_SOURCES = frozenset({"whitelist", "false_positive", "akamai"})
PULSES_SHOWN = 10
TAGS_SHOWN = 20
RELATED_HOSTS_SHOWN = 20
SAMPLES_SHOWN = 5


def indicator_type(indicator: Indicator) -> str:
    """OTX's path slug for an indicator kind; a sub-domain is a ``hostname``, a registered domain a ``domain``."""
    if indicator.kind is Kind.IPV4:
        return "IPv4"
    if indicator.kind is Kind.IPV6:
        return "IPv6"
    if indicator.kind is Kind.DOMAIN:
        if indicator.registered_domain and indicator.registered_domain != indicator.value:
            return "hostname"
        return "domain"
    if indicator.kind is Kind.URL:
        return "url"
    return "file"


def section_path(indicator: Indicator, section: str) -> str:
    safe = ":" if indicator.kind in (Kind.IPV4, Kind.IPV6) else ""
    return f"/{indicator_type(indicator)}/{quote(indicator.value, safe=safe)}/{section}"


def raise_for_failure(response: HttpResponse, key_configured: bool = True) -> None:
    """403/401 key rejected (or keyless access refused); 429 rate limited; 5xx and other 4xx errors."""
    raise_for_common_status(response, TITLE, detail=json_detail(response, lambda body: body["detail"]),
                            key_configured=key_configured, key_hint=f"set OTC_OTX_KEY ({KEY_URL})")


def _unique(values: Iterable[Any], limit: int | None = None) -> list[str]:
    """Distinct non-empty strings, first spelling kept, case-insensitive."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        text = str(value).strip() if value is not None else ""
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out[:limit] if limit is not None else out


def _family_name(entry: Any) -> Any:
    # 2025 pulses list {"id", "display_name", "target"}; older ones plain strings
    return (entry.get("display_name") or entry.get("id")) if isinstance(entry, dict) else entry


def _validation_text(entry: Mapping[str, Any]) -> str:
    name = entry.get("name") or entry.get("source") or "validation"
    message = entry.get("message")
    return f"{name}: {message}" if message and message != name else str(name)


def parse_general(response: HttpResponse, key_configured: bool = True) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from the ``general`` section. Pure: tested on recorded responses."""
    # OTX's own {"detail": "Not found."} is "nothing known"; a bare 404 page (wrong base URL, proxy) is a failure
    if response.status == 404 and json_detail(response, lambda body: body["detail"]):
        return Status.NOT_FOUND, {}, response.json()
    raise_for_failure(response, key_configured)
    body = response.json_object()
    pulse_info = body.get("pulse_info")
    if not isinstance(pulse_info, dict):
        raise MalformedResponse(f"{TITLE} answer has no pulse_info (not a 'general' section)")
    count = pulse_info.get("count")
    pulses = pulse_info.get("pulses") if pulse_info.get("pulses") is not None else []
    if isinstance(count, bool) or not isinstance(count, int) or not isinstance(pulses, list):
        raise MalformedResponse(f"{TITLE} pulse_info has no pulse count or list")
    pulses = [p for p in pulses if isinstance(p, dict)]
    related = pulse_info.get("related") if isinstance(pulse_info.get("related"), dict) else {}
    related_groups = [g for g in related.values() if isinstance(g, dict)]
    families = _unique([_family_name(f) for p in pulses for f in (p.get("malware_families") or [])]
                       + [f for g in related_groups for f in (g.get("malware_families") or [])])
    adversaries = _unique([p.get("adversary") for p in pulses]
                          + [a for g in related_groups for a in (g.get("adversary") or [])])
    validation = [v for v in body.get("validation") or [] if isinstance(v, dict)]
    accepted_false_positive = any(isinstance(fp, dict) and fp.get("assessment") == "accepted"
                                  for fp in body.get("false_positive") or [])
    allowlist = _unique([_validation_text(v) for v in validation if str(v.get("source", "")).lower() in ALLOWLIST_SOURCES]
                        + (["accepted false-positive report"] if accepted_false_positive else []))
    fields: dict[str, Any] = {
        "pulse_count": count,
        "pulses": _unique((p.get("name") for p in pulses), PULSES_SHOWN),
        "pulse_tags": _unique((t for p in pulses for t in (p.get("tags") or [])), TAGS_SHOWN),
        "malware_families": families,
        "adversaries": adversaries,
        "allowlisted": bool(allowlist),
        "allowlisted_by": allowlist,
        "validation": _unique(_validation_text(v) for v in validation),
    }
    if body.get("asn"):
        fields["asn"] = body["asn"]
    if body.get("country_code"):
        fields["country_code"] = body["country_code"]
    return Status.OK, fields, body


def parse_passive_dns(response: HttpResponse) -> list[dict[str, Any]]:
    """The ``passive_dns`` section: ``[{"hostname", "address", "record_type", "first", "last"}]``."""
    raise_for_failure(response)
    records = response.json_object().get("passive_dns")
    if not isinstance(records, list):
        raise MalformedResponse(f"{TITLE} answer has no passive_dns list")
    return [{k: r.get(k) for k in ("hostname", "address", "record_type", "first", "last")}
            for r in records if isinstance(r, dict)]


def parse_malware(response: HttpResponse) -> dict[str, Any]:
    """The ``malware`` section: samples seen contacting the address or name, and what engines call them."""
    raise_for_failure(response)
    body = response.json_object()
    samples = body.get("data")
    if not isinstance(samples, list):
        raise MalformedResponse(f"{TITLE} answer has no malware data list")
    samples = [s for s in samples if isinstance(s, dict)]
    count = body.get("count") if isinstance(body.get("count"), int) else len(samples)
    return {
        "malware_samples": count,
        "malware_sample_hashes": _unique((s.get("hash") for s in samples), SAMPLES_SHOWN),
        "malware_detections": _unique((d for s in samples for d in (s.get("detections") or {}).values()), 10),
    }


class OtxSource(Source):
    name = "otx"
    title = TITLE
    description = "Community threat pulses naming the indicator, malware families, actors, allow-listing, passive DNS"
    kinds = frozenset({Kind.IPV4, Kind.IPV6, Kind.DOMAIN, Kind.URL}) | HASH_KINDS
    base_url = "https://otx.alienvault.com/api/v1/indicators"
    key_optional = True
    key_url = KEY_URL
    # ~1,000 requests/hour keyless (reported, unpublished); 15/min leaves room for the passive-DNS requests
    rate_limit = RateLimit(per_minute=15)
    max_concurrency = 2

    def __init__(self, *, passive_dns: bool = True, malware_samples: bool = False) -> None:
        self.passive_dns = passive_dns
        self.malware_samples = malware_samples

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        headers = {"Accept": "application/json"}
        if ctx.key is not None:
            headers["X-OTX-API-KEY"] = ctx.key.reveal()
        response = ctx.http.get(ctx.url(section_path(indicator, "general")), timeout=ctx.timeout, headers=headers)
        status, fields, raw = parse_general(response, key_configured=ctx.key is not None)
        if status is Status.NOT_FOUND:
            return self.result(status, raw=raw, message="OTX has no record of this indicator")
        network_kind = indicator.kind in (Kind.IPV4, Kind.IPV6, Kind.DOMAIN)
        extra_raw: dict[str, Any] = {}
        if self.passive_dns and network_kind and fields["pulse_count"] > 0:
            fields.update(self._passive_dns(indicator, ctx, headers, extra_raw))
        if self.malware_samples and network_kind:
            fields.update(self._malware(indicator, ctx, headers, extra_raw))
        return self.result(status, fields, raw={"general": raw, **extra_raw} if extra_raw else raw)

    def _passive_dns(self, indicator: Indicator, ctx: SourceContext, headers: dict, raw: dict) -> dict[str, Any]:
        try:
            response = ctx.http.get(ctx.url(section_path(indicator, "passive_dns")), timeout=ctx.timeout, headers=headers)
            records = parse_passive_dns(response)
        except SourceError as exc:
            return {"passive_dns_error": f"passive DNS not fetched: {exc}"}
        raw["passive_dns"] = response.json()
        other = "hostname" if indicator.kind in (Kind.IPV4, Kind.IPV6) else "address"
        return {"passive_dns_records": len(records),
                "related_hosts": _unique((r[other] for r in records), RELATED_HOSTS_SHOWN)}

    def _malware(self, indicator: Indicator, ctx: SourceContext, headers: dict, raw: dict) -> dict[str, Any]:
        try:
            response = ctx.http.get(ctx.url(section_path(indicator, "malware")), timeout=ctx.timeout, headers=headers)
            found = parse_malware(response)
        except SourceError as exc:
            return {"malware_samples_error": f"malware samples not fetched: {exc}"}
        raw["malware"] = response.json()
        return found

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        lines: list[Contribution] = []
        count = fields.get("pulse_count") or 0
        if count > 0:
            example = f" (e.g. '{fields['pulses'][0]}')" if fields.get("pulses") else ""
            families = fields.get("malware_families") or []
            named = f"; malware: {', '.join(families[:3])}" if families else ""
            lines.append(self.contribution(weights, "pulses", f"in {count} pulse(s){example}{named}",
                                           factor=min(1.0, count / 5.0)))
        if fields.get("allowlisted"):
            lines.append(self.contribution(weights, "allowlisted", f"allow-listed ({fields['allowlisted_by'][0]})"))
        return lines


SOURCE = OtxSource()
