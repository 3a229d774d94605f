"""AbuseIPDB v2: how often, how recently and by how many people an address was reported for abuse.

``GET https://api.abuseipdb.com/api/v2/check?ipAddress=<ip>&maxAgeInDays=90`` for an address and
``GET .../check-block?network=<cidr>&maxAgeInDays=30`` for a network, with headers ``Key`` and
``Accept: application/json`` (without the latter errors come back as HTML pages). Errors are
``{"errors": [{"detail": ..., "status": N}]}``; 429 carries ``Retry-After`` and ``X-RateLimit-Reset``.

An address nobody reported is an answer ("0 reports"), not a failure: status ``ok`` with zero counts and
no score. The free tier allows 1,000 checks and 100 block checks a day, blocks up to a /24.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

from otc.errors import MalformedResponse
from otc.http import HttpResponse, json_detail, raise_for_common_status
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext

TITLE = "AbuseIPDB"
MAX_AGE_DAYS = 90  # what most clients send; the service's own default window is 30 days
BLOCK_MAX_AGE_DAYS = 30
FREE_BLOCK_MAX_ADDRESSES = 256  # free ("Standard") plan: check-block up to a /24
TOP_BLOCK_ADDRESSES = 10


def raise_for_failure(response: HttpResponse, now: float) -> None:
    """401/403 key rejected; 429 rate limited (``Retry-After``, else ``X-RateLimit-Reset``); other >= 400 errors."""
    retry = response.retry_after()
    if response.status == 429 and retry is None:
        reset = response.headers.get("X-RateLimit-Reset") or response.headers.get("x-ratelimit-reset")
        if reset and reset.strip().isdigit():
            retry = max(0.0, float(reset) - now)
    raise_for_common_status(response, TITLE, retry_after=retry,
                            detail=json_detail(response, lambda body: body["errors"][0]["detail"]))


def _data_object(response: HttpResponse) -> dict:
    data = response.json_object().get("data")
    if not isinstance(data, dict):
        raise MalformedResponse(f"{TITLE} answer has no data object")
    return data


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedResponse(f"{TITLE} answer has no number in {name}")
    return int(value)


def parse_check(response: HttpResponse, now: float = 0.0) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from a ``/check`` answer. Pure: tested on recorded responses."""
    raise_for_failure(response, now)
    data = _data_object(response)
    reports = data.get("reports") if isinstance(data.get("reports"), list) else []
    categories = sorted({int(c) for r in reports if isinstance(r, dict) for c in (r.get("categories") or [])
                         if isinstance(c, int) and not isinstance(c, bool)})
    fields = {
        "confidence": _int(data, "abuseConfidenceScore"),
        "total_reports": _int(data, "totalReports"),
        "distinct_reporters": _int(data, "numDistinctUsers"),
        "last_reported_at": data.get("lastReportedAt"),
        "usage_type": data.get("usageType"),
        "isp": data.get("isp"),
        "domain": data.get("domain"),
        "country_code": data.get("countryCode"),
        "is_tor": bool(data.get("isTor")),
        # null means "not on AbuseIPDB's allow-list data either way", which is not the same as false
        "is_whitelisted": data.get("isWhitelisted") if isinstance(data.get("isWhitelisted"), bool) else None,
        "hostnames": [str(h) for h in data.get("hostnames") or []],
    }
    if data.get("countryName"):
        fields["country_name"] = data["countryName"]
    if reports:  # only in verbose answers
        fields["report_categories"] = categories
    return Status.OK, fields, response.json()


def parse_check_block(response: HttpResponse, now: float = 0.0) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from a ``/check-block`` answer: the reported addresses inside the network."""
    raise_for_failure(response, now)
    data = _data_object(response)
    reported = data.get("reportedAddress")
    if reported is None:
        reported = []
    if not isinstance(reported, list) or not all(isinstance(r, dict) for r in reported):
        raise MalformedResponse(f"{TITLE} block answer has no list of reported addresses")
    try:
        entries = sorted(
            ({"ip": str(r.get("ipAddress")), "reports": int(r.get("numReports") or 0),
              "confidence": int(r.get("abuseConfidenceScore") or 0), "last_reported_at": r.get("mostRecentReport")}
             for r in reported),
            key=lambda e: (-e["confidence"], -e["reports"], e["ip"]),
        )
    except (TypeError, ValueError):
        raise MalformedResponse(f"{TITLE} block answer has counts of the wrong type") from None
    fields = {
        "network": f"{data.get('networkAddress')}/{data.get('netmask')}",
        "possible_hosts": data.get("numPossibleHosts"),
        "address_space": data.get("addressSpaceDesc"),
        "reported_addresses": len(entries),
        "total_reports": sum(e["reports"] for e in entries),
        "max_confidence": max((e["confidence"] for e in entries), default=0),
        "top_addresses": [f"{e['ip']} ({e['reports']} reports, confidence {e['confidence']} %)"
                          for e in entries[:TOP_BLOCK_ADDRESSES]],
    }
    return Status.OK, fields, response.json()


def block_too_large(indicator: Indicator) -> str | None:
    """Why a network is beyond the free tier's check-block size, or ``None`` when it may be sent."""
    try:
        network = ipaddress.ip_network(indicator.value, strict=False)
    except ValueError:
        return f"{indicator.value} is not a network AbuseIPDB can check"
    if network.num_addresses > FREE_BLOCK_MAX_ADDRESSES:
        return (f"not checked: /{network.prefixlen} is larger than the /24 (256 addresses) AbuseIPDB's free tier "
                f"checks at once — split it or check single addresses")
    return None


class AbuseIpDbSource(Source):
    name = "abuseipdb"
    title = TITLE
    description = "Abuse reports by the community: confidence, report count, reporters, ISP, usage type, Tor"
    kinds = frozenset({Kind.IPV4, Kind.IPV6, Kind.CIDR})
    base_url = "https://api.abuseipdb.com/api/v2"
    needs_key = True
    key_url = "https://www.abuseipdb.com/account/api"
    rate_limit = RateLimit(per_day=1000)  # free tier; check-block has its own 100/day that this gate does not see
    max_concurrency = 4

    def not_applicable_reason(self, indicator: Indicator) -> str | None:
        return block_too_large(indicator) if indicator.kind is Kind.CIDR else None

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        headers = {"Accept": "application/json"}
        if ctx.key is not None:
            headers["Key"] = ctx.key.reveal()
        if indicator.kind is Kind.CIDR:
            response = ctx.http.get(ctx.url("/check-block"), timeout=ctx.timeout, headers=headers,
                                    params={"network": indicator.value, "maxAgeInDays": BLOCK_MAX_AGE_DAYS})
            status, fields, raw = parse_check_block(response, ctx.clock())
        else:
            response = ctx.http.get(ctx.url("/check"), timeout=ctx.timeout, headers=headers,
                                    params={"ipAddress": indicator.value, "maxAgeInDays": MAX_AGE_DAYS})
            status, fields, raw = parse_check(response, ctx.clock())
        return self.result(status, fields, raw=raw)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        lines: list[Contribution] = []
        if "max_confidence" in fields:  # a network
            if fields["max_confidence"] > 0:
                lines.append(self.contribution(
                    weights, "block_max_confidence",
                    f"highest confidence {fields['max_confidence']} % among {fields['reported_addresses']} "
                    f"reported address(es) in the block",
                    factor=fields["max_confidence"] / 100.0))
            return lines
        confidence = fields.get("confidence") or 0
        if confidence > 0:
            lines.append(self.contribution(
                weights, "confidence",
                f"confidence {confidence} % from {fields.get('total_reports', 0)} reports "
                f"by {fields.get('distinct_reporters', 0)} reporters",
                factor=confidence / 100.0))
        if fields.get("is_whitelisted") is True:
            lines.append(self.contribution(weights, "whitelisted", "on AbuseIPDB's allow-list"))
        return lines


SOURCE = AbuseIpDbSource()
