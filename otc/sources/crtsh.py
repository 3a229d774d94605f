"""crt.sh: the certificates issued for a domain and the names on them — the "associated sites".

``GET https://crt.sh/?q=%25.<registered domain>&output=json&exclude=expired&deduplicate=Y`` (keyless).
``exclude=expired`` keeps popular domains from timing out (crt.sh gives up after ~6 s with a 502/503/504
or an HTML page, reported as "crt.sh overloaded"), so the answer describes the *current* certificates;
``deduplicate=Y`` folds a precertificate and its final certificate into one row, and we also count
certificates by (issuer, serial) in case it does not. ``[]`` means no current certificate matches.

No score: having (or lacking) certificates is not evidence of malice, only context for the analyst.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from otc.errors import MalformedResponse, UpstreamError
from otc.http import HttpResponse, raise_for_common_status
from otc.model import Contribution, Indicator, Kind, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import RateLimit, Source, SourceContext
from otc.sources.dnsbl import registered_domain

MAX_NAMES = 500  # a CDN's certificates can carry thousands of names; the count says how many there were
OVERLOAD_STATUSES = frozenset({502, 503, 504})
_ISSUER_ORG = re.compile(r'(?:^|,\s*)O=("(?:[^"]*)"|[^,]*)')
_ISSUER_CN = re.compile(r'(?:^|,\s*)CN=("(?:[^"]*)"|[^,]*)')


def issuer_label(issuer_name: str) -> str:
    """``C=US, O=Let's Encrypt, CN=R11`` -> ``Let's Encrypt``; the CN when there is no O."""
    for pattern in (_ISSUER_ORG, _ISSUER_CN):
        match = pattern.search(issuer_name)
        if match:
            return match.group(1).strip().strip('"')
    return issuer_name.strip()


def is_under(name: str, domain: str) -> bool:
    bare = name[2:] if name.startswith("*.") else name
    return bare == domain or bare.endswith("." + domain)


def parse_crtsh(response: HttpResponse, domain: str) -> tuple[Status, dict[str, Any], Any]:
    """(status, fields, raw) from a crt.sh JSON answer for ``domain`` (the registered domain). Pure."""
    if response.status in OVERLOAD_STATUSES:
        raise UpstreamError(f"crt.sh overloaded (HTTP {response.status}) — try again later", http_status=response.status)
    if response.status in (401, 403):  # crt.sh has no keys: a 401/403 is a block, not a key problem
        raise UpstreamError(f"crt.sh refused the request (HTTP {response.status})", http_status=response.status)
    raise_for_common_status(response, CrtShSource.title)
    if response.body.lstrip()[:1] == b"<":
        raise UpstreamError("crt.sh overloaded (it answered an HTML page instead of JSON)")
    rows = response.json()
    if not isinstance(rows, list):
        raise MalformedResponse(f"crt.sh answer is not a list of certificates (got {type(rows).__name__})")
    if rows and not any(isinstance(r, dict) for r in rows):
        raise MalformedResponse("crt.sh answer holds no certificate rows")
    rows = [r for r in rows if isinstance(r, dict)]
    if not rows:
        return Status.NOT_FOUND, {"queried_domain": domain, "certificate_count": 0}, rows

    certificates = {(r.get("issuer_ca_id"), r.get("serial_number") or r.get("id")) for r in rows}
    names: set[str] = set()
    for row in rows:
        for name in str(row.get("name_value") or "").splitlines():
            name = name.strip().lower().rstrip(".")
            if name and "@" not in name:  # SANs and CNs may hold e-mail addresses: not sites
                names.add(name)
    issuers = sorted({issuer_label(str(r["issuer_name"])) for r in rows if r.get("issuer_name")})
    not_before = sorted(str(r["not_before"]) for r in rows if r.get("not_before"))
    ordered = sorted(names)
    subdomains = [n for n in ordered if is_under(n, domain)]
    others = [n for n in ordered if not is_under(n, domain)]
    fields = {
        "queried_domain": domain,
        "certificate_count": len(certificates),
        "log_entry_count": len(rows),
        "name_count": len(ordered),
        "names": ordered[:MAX_NAMES],
        "subdomains": subdomains[:MAX_NAMES],
        "other_names": others[:MAX_NAMES],  # names sharing a certificate with the domain: related sites
        "issuers": issuers,
        "first_seen": not_before[0] if not_before else None,
        "last_seen": not_before[-1] if not_before else None,
    }
    return Status.OK, fields, rows


class CrtShSource(Source):
    name = "crtsh"
    title = "crt.sh"
    description = "Current certificates for the domain and the names on them (certificate transparency, no key)"
    kinds = frozenset({Kind.DOMAIN})
    base_url = "https://crt.sh"
    third_party = True
    rate_limit = RateLimit(per_minute=30)  # no published quota; the service is slow and often overloaded
    max_concurrency = 2
    licence_note = "Sectigo's crt.sh: free public service; be gentle"

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        domain = registered_domain(indicator)
        params = {"q": f"%.{domain}", "output": "json", "exclude": "expired", "deduplicate": "Y"}
        response = ctx.http.get(ctx.url("/"), timeout=ctx.timeout, params=params,
                                headers={"Accept": "application/json"})
        status, fields, raw = parse_crtsh(response, domain)
        message = "" if status is Status.OK else f"crt.sh has no current certificate for names under {domain}"
        return self.result(status, fields, raw=raw, message=message)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        return []


SOURCE = CrtShSource()
