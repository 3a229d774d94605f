"""ThreatFox (abuse.ch): is this IP, domain, URL or hash a known indicator of compromise, and of which malware?

``POST https://threatfox-api.abuse.ch/api/v1/`` with a JSON body and an ``Auth-Key`` header:
``{"query": "search_ioc", "search_term": ...}`` for IPs, domains and URLs, ``{"query": "search_hash",
"hash": ...}`` for MD5/SHA-256. IP indicators are stored as ``ip:port``, so an IP (with or without a port
in the input) is searched bare and partially, and the answer is then filtered to that exact IP, because a
partial search for ``1.2.3.4`` also matches ``1.2.3.45:80``. ``no_result`` comes with a *string* in ``data``.
"""

from __future__ import annotations

from typing import Any, Mapping

from otc.errors import MalformedResponse
from otc.http import HttpResponse
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources._abusech import (
    AbuseChSource,
    abusech_headers,
    read_abusech_answer,
    text_or_none,
    to_int,
    unique_tags,
)
from otc.sources.base import SourceContext


def request_body(indicator: Indicator) -> dict[str, Any]:
    """The JSON body ThreatFox gets for ``indicator``."""
    if indicator.kind in (Kind.MD5, Kind.SHA256):
        return {"query": "search_hash", "hash": indicator.value}
    if indicator.kind is Kind.IPV4:
        return {"query": "search_ioc", "search_term": indicator.value, "exact_match": False}
    return {"query": "search_ioc", "search_term": indicator.value, "exact_match": True}


def ioc_matches(ioc: str, indicator: Indicator) -> bool:
    """Does a returned IOC value belong to ``indicator``? Only IPs are searched partially."""
    if indicator.kind is not Kind.IPV4:
        return True
    return ioc == indicator.value or ioc.startswith(indicator.value + ":")


def parse_threatfox(response: HttpResponse, indicator: Indicator) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from a ThreatFox answer about ``indicator``. Pure."""
    status, body = read_abusech_answer(response, ThreatFoxSource.title)
    if status is Status.NOT_FOUND:
        return status, {"listed": False}, body
    data = body.get("data")
    if not isinstance(data, list):
        raise MalformedResponse("ThreatFox answer 'data' is not a list of IOCs")
    iocs = [d for d in data if isinstance(d, dict) and ioc_matches(str(d.get("ioc", "")), indicator)]
    if not iocs:
        return Status.NOT_FOUND, {"listed": False}, body
    confidences = [c for c in (to_int(d.get("confidence_level")) for d in iocs) if c is not None]
    first = sorted(s for s in (text_or_none(d.get("first_seen")) for d in iocs) if s)
    last = sorted(s for s in (text_or_none(d.get("last_seen")) for d in iocs) if s)
    ioc_values = unique_tags([d.get("ioc") for d in iocs])
    fields = {
        "listed": True,
        "ioc_count": len(iocs),
        "iocs": ioc_values,
        "ioc_types": unique_tags([d.get("ioc_type") for d in iocs]),
        "threat_type": ", ".join(unique_tags([d.get("threat_type") for d in iocs])) or None,
        "malware_family": ", ".join(unique_tags([d.get("malware_printable") or d.get("malware") for d in iocs]))
                          or None,
        "malware_alias": text_or_none(iocs[0].get("malware_alias")),
        "confidence": max(confidences) if confidences else None,
        "first_seen": first[0] if first else None,
        "last_seen": last[-1] if last else None,
        "tags": unique_tags(*(d.get("tags") for d in iocs)),
        "reporters": unique_tags([d.get("reporter") for d in iocs]),
        "ids": [i for i in (to_int(d.get("id")) for d in iocs) if i is not None],
    }
    if indicator.port is not None:  # the input had a port: say whether ThreatFox knows that exact socket
        fields["port_listed"] = f"{indicator.value}:{indicator.port}" in ioc_values
    return Status.OK, fields, body


class ThreatFoxSource(AbuseChSource):
    name = "threatfox"
    title = "ThreatFox"
    description = "Whether abuse.ch ThreatFox lists the indicator as an IOC, with malware family and confidence"
    kinds = frozenset({Kind.IPV4, Kind.DOMAIN, Kind.URL, Kind.MD5, Kind.SHA256})
    base_url = "https://threatfox-api.abuse.ch/api/v1"

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        response = ctx.http.post(ctx.url("/"), timeout=ctx.timeout, json_body=request_body(indicator),
                                 headers=abusech_headers(ctx))
        status, fields, raw = parse_threatfox(response, indicator)
        message = "" if status is Status.OK else "not listed by ThreatFox"
        return self.result(status, fields, raw=raw, message=message)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        if not fields.get("listed"):
            return []
        confidence = fields.get("confidence")
        # Without a confidence level, count it at half: listed, but the reporter did not say how sure.
        factor = confidence / 100.0 if confidence is not None else 0.5
        details = [str(d) for d in (fields.get("malware_family"), fields.get("threat_type")) if d]
        details.append(f"confidence {confidence} %" if confidence is not None else "no confidence given")
        return [self.contribution(weights, "listed", "IOC listed (" + ", ".join(details) + ")", factor)]


SOURCE = ThreatFoxSource()
