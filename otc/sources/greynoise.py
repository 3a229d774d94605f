"""GreyNoise Community: is this address background noise (mass scanning), a known benign service (RIOT),
or classified malicious?

``GET https://api.greynoise.io/v3/community/{ip}``, header ``key`` when a key is configured (it works
without one, at a very small quota). 404 is an answer, not an error: ``{"noise": false, "riot": false,
"message": "IP not observed scanning the internet or contained in RIOT data set."}``. Other errors are
``{"message": ...}``; 429 names the plan's limit. IPv4 only.
"""

from __future__ import annotations

from typing import Any, Mapping

from otc.errors import MalformedResponse, UpstreamError
from otc.http import HttpResponse, json_detail, raise_for_common_status
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext

TITLE = "GreyNoise"
NOT_OBSERVED = "not observed scanning the internet and not a known benign service"


def raise_for_failure(response: HttpResponse) -> None:
    """401/403 key rejected; 429 rate limited (the body names the plan's limit); 5xx and other 4xx errors."""
    raise_for_common_status(response, TITLE, detail=json_detail(response, lambda body: body["message"]))


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise MalformedResponse(f"{TITLE} answer has no true/false in {name}")
    return value


def parse_community(response: HttpResponse) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from a Community answer. Pure: tested on recorded responses."""
    if response.status == 404:
        try:
            body = response.json_object()
        except MalformedResponse:
            body = None
        # a 404 without GreyNoise's own "not observed" body is an unknown endpoint, not an answer
        if body is not None and "noise" in body and "riot" in body:
            return Status.NOT_FOUND, {"noise": _flag(body, "noise"), "riot": _flag(body, "riot")}, body
        raise UpstreamError(f"{TITLE} refused the request (HTTP 404, not a GreyNoise answer)", http_status=404)
    raise_for_failure(response)
    body = response.json_object()
    if "noise" not in body or "riot" not in body:
        raise MalformedResponse(f"{TITLE} answer has no noise/riot flags")
    classification = body.get("classification")
    fields = {
        "classification": str(classification).lower() if classification else None,
        "noise": _flag(body, "noise"),
        "riot": _flag(body, "riot"),
        "name": body.get("name"),
        "last_seen": body.get("last_seen"),
        "link": body.get("link"),
    }
    return Status.OK, fields, body


class GreyNoiseSource(Source):
    name = "greynoise"
    title = TITLE
    description = "Internet background noise (mass scanners) vs. known benign services (RIOT), with a classification"
    kinds = frozenset({Kind.IPV4})
    base_url = "https://api.greynoise.io/v3/community"
    key_optional = True
    key_url = "https://viz.greynoise.io/signup"
    # Unpublished and changing (10/day keyless in 2026 docs, 100/day in older clients): pace gently and
    # let the service's 429 mark the rest of a run rate_limited.
    rate_limit = RateLimit(per_minute=10, per_day=100)
    max_concurrency = 1

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        headers = {"Accept": "application/json"}
        if ctx.key is not None:
            headers["key"] = ctx.key.reveal()
        response = ctx.http.get(ctx.url(f"/{indicator.value}"), timeout=ctx.timeout, headers=headers)
        status, fields, raw = parse_community(response)
        return self.result(status, fields, raw=raw, message="" if status is Status.OK else NOT_OBSERVED)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        name = fields.get("name")
        named = f" ({name})" if name and str(name).lower() != "unknown" else ""
        if fields.get("riot"):
            return [self.contribution(weights, "riot", f"known benign service{named}")]
        classification = fields.get("classification")
        if classification == "malicious":
            seen = ", seen scanning the internet" if fields.get("noise") else ""
            return [self.contribution(weights, "malicious", f"classified malicious{named}{seen}")]
        if classification == "benign":
            return [self.contribution(weights, "benign", f"classified benign{named}")]
        return []


SOURCE = GreyNoiseSource()
