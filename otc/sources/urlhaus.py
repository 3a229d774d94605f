"""URLhaus (abuse.ch): is this URL, host or payload known for distributing malware?

``POST https://urlhaus-api.abuse.ch/v1/{url,host,payload}/`` with form fields and an ``Auth-Key`` header.
URLs go to ``url/``; domains and IPv4 addresses to ``host/``; MD5/SHA-256 to ``payload/``.

abuse.ch answers HTTP 200 and says what happened in ``query_status``; ``otc.sources._abusech`` (shared
with ThreatFox and MalwareBazaar) turns that vocabulary into statuses. Numbers arrive as strings.
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


def _blacklists(body: Mapping[str, Any]) -> dict[str, str]:
    lists = body.get("blacklists")
    if not isinstance(lists, dict):
        return {}
    return {str(name): str(value) for name, value in lists.items() if value is not None}


def _abused_legit(blacklists: Mapping[str, str]) -> bool:
    return any(value.startswith("abused_legit") for value in blacklists.values())


def parse_url_answer(body: Mapping[str, Any]) -> dict[str, Any]:
    """Fields from a ``url/`` answer (one URL)."""
    payloads = [p for p in body.get("payloads") or [] if isinstance(p, dict)]
    signatures = unique_tags([p.get("signature") for p in payloads])
    blacklists = _blacklists(body)
    return {
        "listed": True,
        "lookup": "url",
        "threat": text_or_none(body.get("threat")),
        "url_status": text_or_none(body.get("url_status")),
        "url_count": 1,
        "online_url_count": 1 if body.get("url_status") == "online" else 0,
        "tags": unique_tags(body.get("tags")),
        "malware_family": signatures[0] if signatures else None,
        "payload_signatures": signatures,
        "first_seen": text_or_none(body.get("date_added")),
        "last_seen": text_or_none(body.get("last_online")),
        "blacklists": blacklists,
        "abused_legit_host": _abused_legit(blacklists),
        "reference": text_or_none(body.get("urlhaus_reference")),
    }


def parse_host_answer(body: Mapping[str, Any]) -> dict[str, Any]:
    """Fields from a ``host/`` answer (a domain or IPv4 and the malware URLs seen on it)."""
    urls = [u for u in body.get("urls") or [] if isinstance(u, dict)]
    threats = unique_tags([u.get("threat") for u in urls])
    dates = sorted(d for d in (text_or_none(u.get("date_added")) for u in urls) if d)
    url_count = to_int(body.get("url_count"))
    blacklists = _blacklists(body)
    return {
        "listed": True,
        "lookup": "host",
        "threat": ", ".join(threats) or None,
        "url_status": None,
        "url_count": url_count if url_count is not None else len(urls),
        # Counted over the URLs the answer lists (URLhaus may list fewer than url_count).
        "online_url_count": sum(1 for u in urls if u.get("url_status") == "online"),
        "tags": unique_tags(*(u.get("tags") for u in urls)),
        "malware_family": None,
        "payload_signatures": [],
        "first_seen": text_or_none(body.get("firstseen")),
        "last_seen": dates[-1] if dates else None,
        "blacklists": blacklists,
        "abused_legit_host": _abused_legit(blacklists),
        "reference": text_or_none(body.get("urlhaus_reference")),
    }


def parse_payload_answer(body: Mapping[str, Any]) -> dict[str, Any]:
    """Fields from a ``payload/`` answer (a file served by malware URLs)."""
    urls = [u for u in body.get("urls") or [] if isinstance(u, dict)]
    url_count = to_int(body.get("url_count"))
    signature = text_or_none(body.get("signature"))
    return {
        "listed": True,
        "lookup": "payload",
        "threat": "malware_download",
        "url_status": None,
        "url_count": url_count if url_count is not None else len(urls),
        "online_url_count": sum(1 for u in urls if u.get("url_status") == "online"),
        "tags": [],
        "malware_family": signature,
        "payload_signatures": [signature] if signature else [],
        "first_seen": text_or_none(body.get("firstseen")),
        "last_seen": text_or_none(body.get("lastseen")),
        "blacklists": {},
        "abused_legit_host": False,
        "reference": None,
        "file_type": text_or_none(body.get("file_type")),
        "file_size": to_int(body.get("file_size")),
    }


PARSERS = {"url": parse_url_answer, "host": parse_host_answer, "payload": parse_payload_answer}


def parse_urlhaus(response: HttpResponse, lookup: str) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from a URLhaus answer to a ``lookup`` (url, host or payload). Pure."""
    status, body = read_abusech_answer(response, UrlhausSource.title)
    if status is Status.NOT_FOUND:
        return status, {"listed": False, "lookup": lookup}, body
    try:
        fields = PARSERS[lookup](body)
    except (TypeError, AttributeError):
        raise MalformedResponse("URLhaus answer has fields of the wrong type") from None
    return Status.OK, fields, body


def request_for(indicator: Indicator) -> tuple[str, dict[str, str]]:
    """Which endpoint and form a lookup of ``indicator`` uses."""
    if indicator.kind is Kind.URL:
        return "url", {"url": indicator.value}
    if indicator.kind in (Kind.DOMAIN, Kind.IPV4):
        return "host", {"host": indicator.value}
    if indicator.kind is Kind.MD5:
        return "payload", {"md5_hash": indicator.value}
    if indicator.kind is Kind.SHA256:
        return "payload", {"sha256_hash": indicator.value}
    raise ValueError(f"URLhaus does not take {indicator.kind}")  # precheck keeps other kinds away


class UrlhausSource(AbuseChSource):
    name = "urlhaus"
    title = "URLhaus"
    description = "Whether abuse.ch URLhaus lists the URL, host or payload as distributing malware"
    kinds = frozenset({Kind.URL, Kind.DOMAIN, Kind.IPV4, Kind.MD5, Kind.SHA256})
    base_url = "https://urlhaus-api.abuse.ch/v1"

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        lookup, form = request_for(indicator)
        response = ctx.http.post(ctx.url(f"/{lookup}/"), timeout=ctx.timeout, data=form, headers=abusech_headers(ctx))
        status, fields, raw = parse_urlhaus(response, lookup)
        message = "" if status is Status.OK else f"not listed by URLhaus ({lookup} lookup)"
        return self.result(status, fields, raw=raw, message=message)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        if not fields.get("listed"):
            return []
        # A legitimate site abused to host malware (a code-hosting or file-sharing service) is listed, but
        # the host itself is not malicious: URLhaus' own blacklist column says so, and we weigh it less.
        factor = weights.weight("abused_legit_factor") if fields.get("abused_legit_host") else 1.0
        what = {"url": "URL listed", "host": "host listed", "payload": "payload listed"}[fields["lookup"]]
        details = []
        if fields["lookup"] != "url" and fields.get("url_count"):
            details.append(f"{fields['url_count']} malware URL(s)")
        if fields.get("threat"):
            details.append(str(fields["threat"]))
        if fields.get("malware_family"):
            details.append(str(fields["malware_family"]))
        if factor != 1.0:
            details.append("legitimate site abused")
        reason = what + (f" ({', '.join(details)})" if details else "")
        lines = [self.contribution(weights, "listed", reason, factor)]
        online = fields.get("online_url_count") or 0
        if online and fields["lookup"] != "payload":
            still = "URL still online" if fields["lookup"] == "url" else f"{online} listed URL(s) still online"
            lines.append(self.contribution(weights, "listed_online", still, factor))
        return lines


SOURCE = UrlhausSource()
