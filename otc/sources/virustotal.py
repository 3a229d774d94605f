"""VirusTotal v3: how many of ~90 engines flag an address, domain, URL or file, plus community reputation.

``GET https://www.virustotal.com/api/v3/{ip_addresses,domains,urls,files}/{id}`` with header ``x-apikey``.
A URL's id is the unpadded base64url of the URL string (vt-py's ``url_id``). Errors are
``{"error": {"code": "NotFoundError", "message": ...}}``; 404 ``NotFoundError`` means VirusTotal has never
seen the indicator — an answer (``not_found``), never "clean". 429 ``QuotaExceededError`` comes without a
documented ``Retry-After``; daily quotas reset at 00:00 UTC. Free (public) keys: 4 requests/min, 500/day,
non-commercial use only.

Resolutions (``/{domains,ip_addresses}/{id}/resolutions``) cost one more request of that small quota, so
they are off unless the source is built with ``VirusTotalSource(resolutions=True)``.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import quote

from otc.errors import MalformedResponse, SourceError
from otc.http import HttpResponse, json_detail, raise_for_common_status
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext

TITLE = "VirusTotal"
NOT_FOUND_MESSAGE = "not found in VirusTotal"
FLAGGING_ENGINES_SHOWN = 10
RESOLUTIONS_SHOWN = 20
VERDICT_CATEGORIES = ("malicious", "suspicious", "harmless", "undetected")

_COLLECTIONS = {
    Kind.IPV4: "ip_addresses", Kind.IPV6: "ip_addresses", Kind.DOMAIN: "domains", Kind.URL: "urls",
    Kind.MD5: "files", Kind.SHA1: "files", Kind.SHA256: "files",
}


def url_id(url: str) -> str:
    """VirusTotal's identifier of a URL: unpadded base64url of the exact string (as vt-py's ``url_id``)."""
    return base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


def object_path(indicator: Indicator) -> str:
    """The API path of an indicator's object, e.g. ``/urls/aHR0cDovL2V4YW1wbGUuY29tLw``."""
    collection = _COLLECTIONS[indicator.kind]
    ident = url_id(indicator.value) if indicator.kind is Kind.URL else indicator.value
    return f"/{collection}/{quote(ident, safe=':')}"


def _error_words(body: Any) -> str:
    """``{"error": {"code": "QuotaExceededError", "message": "..."}}`` -> "QuotaExceededError ..."."""
    error = body["error"]
    return " ".join(str(error.get(part) or "") for part in ("code", "message")).strip()


def raise_for_failure(response: HttpResponse) -> None:
    """401/403 key rejected; 429 quota (``Retry-After`` if sent); 5xx and other 4xx errors, with VT's code."""
    raise_for_common_status(response, TITLE, detail=json_detail(response, _error_words))


def _iso(epoch: Any) -> str | None:
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or epoch <= 0:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(stats: Mapping[str, Any], name: str) -> int:
    value = stats.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedResponse(f"{TITLE} last_analysis_stats.{name} is not a number")
    return int(value)


def _threat_label(attributes: Mapping[str, Any]) -> str | None:
    classification = attributes.get("popular_threat_classification")
    if isinstance(classification, dict) and classification.get("suggested_threat_label"):
        return str(classification["suggested_threat_label"])
    names = attributes.get("threat_names")
    if isinstance(names, list) and names:
        return ", ".join(str(n) for n in names[:3])
    return None


def parse_object(response: HttpResponse) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from an object answer (IP, domain, URL or file). Pure: tested on recorded responses."""
    # only VirusTotal's own NotFoundError is "never seen"; a bare 404 page (wrong base URL, proxy) is a failure
    if response.status == 404 and json_detail(response, lambda body: body["error"]["code"]) == "NotFoundError":
        return Status.NOT_FOUND, {}, response.json()
    raise_for_failure(response)
    body = response.json_object()
    data = body.get("data")
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attributes, dict):
        raise MalformedResponse(f"{TITLE} answer has no data.attributes object")
    stats = attributes.get("last_analysis_stats")
    if not isinstance(stats, dict):
        raise MalformedResponse(f"{TITLE} answer has no last_analysis_stats")
    # "of total" counts engines that gave a verdict, as VirusTotal's own detection ratio does; timeouts,
    # failures and "type-unsupported" did not look at it
    total = sum(_count(stats, name) for name in VERDICT_CATEGORIES)
    results = attributes.get("last_analysis_results")
    flagging = sorted(
        f"{engine}: {verdict.get('result') or verdict.get('category')}"
        for engine, verdict in (results.items() if isinstance(results, dict) else [])
        if isinstance(verdict, dict) and verdict.get("category") in ("malicious", "suspicious")
    )
    categories = attributes.get("categories")
    votes = attributes.get("total_votes") if isinstance(attributes.get("total_votes"), dict) else {}
    reputation = attributes.get("reputation")
    fields: dict[str, Any] = {
        "malicious": _count(stats, "malicious"),
        "suspicious": _count(stats, "suspicious"),
        "harmless": _count(stats, "harmless"),
        "undetected": _count(stats, "undetected"),
        "engines": total,
        "reputation": int(reputation) if isinstance(reputation, (int, float)) and not isinstance(reputation, bool) else None,
        "votes_malicious": votes.get("malicious"),
        "votes_harmless": votes.get("harmless"),
        "tags": [str(t) for t in attributes.get("tags") or []],
        "categories": sorted({str(c) for c in categories.values()}) if isinstance(categories, dict) else [],
        "last_analysis_date": _iso(attributes.get("last_analysis_date")),
        "last_modification_date": _iso(attributes.get("last_modification_date")),
        "threat_label": _threat_label(attributes),
        "flagged_by": flagging[:FLAGGING_ENGINES_SHOWN],
    }
    kind = data.get("type")
    if kind == "ip_address":
        fields.update(as_owner=attributes.get("as_owner"), asn=attributes.get("asn"), country=attributes.get("country"))
    elif kind == "file":
        fields.update(meaningful_name=attributes.get("meaningful_name"), type_description=attributes.get("type_description"),
                      size=attributes.get("size"), sha256=attributes.get("sha256"))
    elif kind == "url":
        fields.update(final_url=attributes.get("last_final_url"))
    return Status.OK, fields, body


def parse_resolutions(response: HttpResponse) -> list[dict[str, Any]]:
    """The ``resolutions`` relationship: ``[{"ip_address", "host_name", "date"}]``, newest first."""
    raise_for_failure(response)
    items = response.json_object().get("data")
    if not isinstance(items, list):
        raise MalformedResponse(f"{TITLE} resolutions answer has no data list")
    records = []
    for item in items:
        attributes = item.get("attributes") if isinstance(item, dict) else None
        if not isinstance(attributes, dict):
            raise MalformedResponse(f"{TITLE} resolution has no attributes")
        records.append(attributes)
    records.sort(key=lambda a: a.get("date") if isinstance(a.get("date"), (int, float)) else 0, reverse=True)
    return [{"ip_address": a.get("ip_address"), "host_name": a.get("host_name"), "date": _iso(a.get("date"))}
            for a in records]


class VirusTotalSource(Source):
    name = "virustotal"
    title = TITLE
    description = "How many antivirus engines and URL scanners flag it, community reputation, tags and categories"
    kinds = frozenset(_COLLECTIONS)
    base_url = "https://www.virustotal.com/api/v3"
    needs_key = True
    key_url = "https://www.virustotal.com/gui/my-apikey"
    rate_limit = RateLimit(per_minute=4, per_day=500)  # public (free) API
    max_concurrency = 1  # the pace, not parallelism, is the limit
    licence_note = "Public API: non-commercial use only"

    def __init__(self, *, resolutions: bool = False) -> None:
        self.resolutions = resolutions

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        headers = {"Accept": "application/json"}
        if ctx.key is not None:
            headers["x-apikey"] = ctx.key.reveal()
        path = object_path(indicator)
        response = ctx.http.get(ctx.url(path), timeout=ctx.timeout, headers=headers)
        status, fields, raw = parse_object(response)
        if status is Status.NOT_FOUND:
            return self.result(status, raw=raw, message=NOT_FOUND_MESSAGE)
        if self.resolutions and indicator.kind in (Kind.DOMAIN, Kind.IPV4, Kind.IPV6):
            fields.update(self._resolutions(indicator, ctx, path, headers))
        return self.result(status, fields, raw=raw)

    def _resolutions(self, indicator: Indicator, ctx: SourceContext, path: str, headers: dict) -> dict[str, Any]:
        """Related names (for an address) or addresses (for a domain); a failure here keeps the main answer."""
        try:
            response = ctx.http.get(ctx.url(f"{path}/resolutions"), timeout=ctx.timeout, headers=headers,
                                    params={"limit": RESOLUTIONS_SHOWN})
            resolutions = parse_resolutions(response)
        except SourceError as exc:
            return {"resolutions_error": f"resolutions not fetched: {exc}"}
        other = "host_name" if indicator.kind in (Kind.IPV4, Kind.IPV6) else "ip_address"
        return {"resolutions": [f"{r[other]} ({r['date'][:10] if r['date'] else 'date unknown'})"
                                for r in resolutions[:RESOLUTIONS_SHOWN]]}

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        lines: list[Contribution] = []
        malicious, suspicious, total = fields.get("malicious", 0), fields.get("suspicious", 0), fields.get("engines", 0)
        label = f" ({fields['threat_label']})" if fields.get("threat_label") else ""
        if malicious:
            lines.append(self.contribution(weights, "engines_malicious",
                                           f"{malicious} of {total} engines flag it malicious{label}",
                                           factor=min(1.0, malicious / 10.0)))
        if suspicious:
            lines.append(self.contribution(weights, "engines_suspicious",
                                           f"{suspicious} of {total} engines flag it suspicious",
                                           factor=min(1.0, suspicious / 10.0)))
        reputation = fields.get("reputation")
        if not malicious and not suspicious and isinstance(reputation, int) and reputation > 0:
            lines.append(self.contribution(weights, "harmless_reputation",
                                           f"community reputation +{reputation} and no engine flags it"))
        return lines


SOURCE = VirusTotalSource()
