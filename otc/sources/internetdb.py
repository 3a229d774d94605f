"""Shodan InternetDB: open ports, hostnames, tags and CVEs for an IP, keyless.

``GET https://internetdb.shodan.io/{ip}``; 404 ``{"detail": "No information available"}`` is the normal
answer for addresses Shodan has not seen (not an error). Non-commercial use, attribution to Shodan.
"""

from __future__ import annotations

from typing import Any, Mapping

from otc.errors import MalformedResponse
from otc.http import HttpResponse, raise_for_common_status
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext

# Shodan tags that are evidence, and the weight rule each one uses.
SCORED_TAGS = {
    "compromised": "tag_compromised",
    "malware": "tag_malware",
    "c2": "tag_malware",
    "honeypot": "tag_honeypot",
    "tor": "tag_tor",
    "proxy": "tag_proxy",
    "vpn": "tag_proxy",
    "scanner": "tag_scanner",
}


ANSWER_KEYS = frozenset({"ip", "ports", "hostnames", "tags", "vulns", "cpes"})


def parse_internetdb(response: HttpResponse) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from an InternetDB answer. Pure: tested on recorded responses."""
    if response.status == 404:
        raw = _json_or_text(response)
        return Status.NOT_FOUND, {}, raw
    raise_for_common_status(response, InternetDbSource.title, key_configured=False)
    data = response.json_object()
    if not ANSWER_KEYS & data.keys():
        raise MalformedResponse("InternetDB answer is not a host record (none of ip, ports, hostnames ...)")
    try:
        fields = {
            "ports": sorted(int(p) for p in data.get("ports") or []),
            "hostnames": [str(h) for h in data.get("hostnames") or []],
            "tags": [str(t) for t in data.get("tags") or []],
            "vulns": sorted(str(v) for v in data.get("vulns") or []),
            "cpes": [str(c) for c in data.get("cpes") or []],
        }
    except (TypeError, ValueError):
        raise MalformedResponse("InternetDB answer has fields of the wrong type") from None
    return Status.OK, fields, data


def _json_or_text(response: HttpResponse) -> Any:
    try:
        return response.json()
    except MalformedResponse:
        return response.text[:2000]


class InternetDbSource(Source):
    name = "internetdb"
    title = "Shodan InternetDB"
    description = "Open ports, hostnames, tags and CVEs Shodan saw on the address (weekly data, no key)"
    kinds = frozenset({Kind.IPV4, Kind.IPV6})
    base_url = "https://internetdb.shodan.io"
    rate_limit = RateLimit(per_second=1.0)  # bursts of ~600 earn a 1-hour ban
    max_concurrency = 2
    licence_note = "Non-commercial use; attribution to Shodan required"

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        response = ctx.http.get(ctx.url(f"/{indicator.value}"), timeout=ctx.timeout,
                                headers={"Accept": "application/json"})
        status, fields, raw = parse_internetdb(response)
        message = "" if status is Status.OK else "Shodan has no information on this address"
        return self.result(status, fields, raw=raw, message=message)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        lines: list[Contribution] = []
        seen_rules: set[str] = set()
        for tag in fields.get("tags", []):
            rule = SCORED_TAGS.get(tag.lower())
            if rule and rule not in seen_rules:
                seen_rules.add(rule)
                lines.append(self.contribution(weights, rule, f"tag '{tag}'"))
        vulns = fields.get("vulns", [])
        if vulns:
            cap = weights.weight("vulns_cap")
            per = weights.weight("vuln_each")
            points = min(cap, per * len(vulns))
            lines.append(self.contribution(weights, "vuln_each", f"{len(vulns)} CVE(s) inferred from banners",
                                           factor=points / per))
        return lines


SOURCE = InternetDbSource()
