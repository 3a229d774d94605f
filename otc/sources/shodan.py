"""Shodan host lookup (REST, keyed): organisation, open ports and services, CVEs and when Shodan last looked.

``GET https://api.shodan.io/shodan/host/{ip}?key=<KEY>``. The key goes in the **query string** — the only way
Shodan takes it — so nothing here may ever show a request URL: :mod:`otc.http` names only the host in its
errors, and :class:`_RedactKeyParameter` scrubs ``key=`` from urllib3's debug log lines, which do carry the
full request line. 404 ``{"error": "No information available for that IP."}`` means Shodan has no data
(``not_found``); 401 (JSON or an nginx HTML page) a bad key; 403 "access denied" to a free key.
Keyless data for an address comes from the ``internetdb`` source.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping

from otc.errors import MalformedResponse
from otc.http import HttpResponse, json_detail, raise_for_common_status
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext

TITLE = "Shodan"
SERVICES_SHOWN = 20

_KEY_PARAMETER = re.compile(r"([?&]key=)[^&\s\"']*", re.IGNORECASE)


class _RedactKeyParameter(logging.Filter):
    """urllib3 logs ``"GET /shodan/host/1.2.3.4?key=... HTTP/1.1" 200`` at debug level: keep the key out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_KEY_PARAMETER.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _KEY_PARAMETER.sub(r"\1***", record.msg)
        return True


_URLLIB3_LOGGER = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactKeyParameter) for f in _URLLIB3_LOGGER.filters):
    _URLLIB3_LOGGER.addFilter(_RedactKeyParameter())


def raise_for_failure(response: HttpResponse) -> None:
    """401/403 key rejected; 429 rate limited; 5xx (502 is transient at Shodan) and other 4xx errors."""
    raise_for_common_status(response, TITLE, detail=json_detail(response, lambda body: body["error"]))


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):  # banner-level vulns are {CVE: {...}}
        return [str(k) for k in value]
    if not isinstance(value, list):
        raise MalformedResponse(f"{TITLE} answer has a list field of the wrong type")
    return [str(v) for v in value]


def parse_host(response: HttpResponse) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from a host answer. Pure: tested on recorded responses."""
    # Shodan's own {"error": "No information available ..."} is "no data"; a bare 404 page is a failure
    if response.status == 404 and json_detail(response, lambda body: body["error"]):
        return Status.NOT_FOUND, {}, response.json()
    raise_for_failure(response)
    body = response.json_object()
    if "ports" not in body and "ip_str" not in body:
        raise MalformedResponse(f"{TITLE} answer is not a host record (no ip_str or ports)")
    try:
        ports = sorted({int(p) for p in body.get("ports") or []})
    except (TypeError, ValueError):
        raise MalformedResponse(f"{TITLE} answer has ports that are not numbers") from None
    banners = [b for b in body.get("data") or [] if isinstance(b, dict)]
    services = []
    for banner in sorted(banners, key=lambda b: (b.get("port") or 0, str(b.get("transport") or ""))):
        product = " ".join(str(p) for p in (banner.get("product"), banner.get("version")) if p)
        services.append(f"{banner.get('port')}/{banner.get('transport') or 'tcp'}" + (f" {product}" if product else ""))
    vulns = set(_strings(body.get("vulns")))
    for banner in banners:  # a trimmed answer may carry CVEs only per banner
        vulns.update(_strings(banner.get("vulns")))
    fields = {
        "org": body.get("org"),
        "isp": body.get("isp"),
        "asn": body.get("asn"),
        "country_code": body.get("country_code"),
        "city": body.get("city"),
        "os": body.get("os"),
        "hostnames": _strings(body.get("hostnames")),
        "domains": _strings(body.get("domains")),
        "ports": ports,
        "services": services[:SERVICES_SHOWN],
        "tags": _strings(body.get("tags")),
        "vulns": sorted(vulns),
        "last_update": body.get("last_update"),
    }
    return Status.OK, fields, body


class ShodanSource(Source):
    name = "shodan"
    title = TITLE
    description = "Organisation, open ports and services, CVEs and last scan date from Shodan's host database"
    kinds = frozenset({Kind.IPV4, Kind.IPV6})
    base_url = "https://api.shodan.io/shodan/host"
    needs_key = True
    key_url = "https://account.shodan.io/"
    rate_limit = RateLimit(per_second=1.0)  # shodan-python's own pace
    max_concurrency = 1

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        params = {"key": ctx.key.reveal()} if ctx.key is not None else {}
        response = ctx.http.get(ctx.url(f"/{indicator.value}"), timeout=ctx.timeout,
                                headers={"Accept": "application/json"}, params=params)
        status, fields, raw = parse_host(response)
        message = "" if status is Status.OK else "Shodan has no information on this address"
        return self.result(status, fields, raw=raw, message=message)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        vulns = fields.get("vulns") or []
        if not vulns:
            return []
        per, cap = weights.weight("vuln_each"), weights.weight("vulns_cap")
        points = min(cap, per * len(vulns))
        return [self.contribution(weights, "vuln_each", f"{len(vulns)} CVE(s) on open services (from banners, not verified)",
                                  factor=points / per)]


SOURCE = ShodanSource()
