"""What the three abuse.ch services (URLhaus, ThreatFox, MalwareBazaar) share: the Auth-Key header, the
``query_status`` vocabulary, the pace, and the habit of sending numbers as strings.

abuse.ch answers HTTP 200 and says what happened in ``query_status``; :func:`read_abusech_answer` turns
that vocabulary into statuses. Not a source itself (the registry skips modules starting with ``_``).
"""

from __future__ import annotations

from typing import Any

from otc.errors import AuthRejected, MalformedResponse, UpstreamError
from otc.http import HttpResponse, raise_for_common_status
from otc.model import Status
from otc.sources.base import RateLimit, Source, SourceContext

ABUSECH_KEY_URL = "https://auth.abuse.ch/"
# abuse.ch publishes no numeric limit ("fair use"); two requests a second keeps a bulk run polite.
ABUSECH_RATE_LIMIT = RateLimit(per_second=2.0)

NOT_FOUND_STATUSES = frozenset({"no_results", "no_result", "hash_not_found"})
AUTH_STATUSES = frozenset({"unknown_auth_key", "unauthorized", "missing_auth_key", "auth_key_required"})
# query_status values that mean "the service refused what we sent", in plain words.
REFUSAL_MESSAGES = {
    "invalid_url": "it is not a valid URL for URLhaus",
    "invalid_host": "it is not a valid host for URLhaus",
    "invalid_hash": "it is not a valid hash",
    "illegal_hash": "it is not a valid hash",
    "illegal_search_term": "the search term is not valid",
    "illegal_search_type": "the search type is not valid",
    "http_post_expected": "it expected a POST request",
}


def read_abusech_answer(response: HttpResponse, title: str) -> tuple[Status, dict[str, Any]]:
    """Check an abuse.ch answer: ``(OK, body)`` or ``(NOT_FOUND, body)``; raises for everything else.

    - 401/403, or any ``query_status`` about the Auth-Key (even with HTTP 200) -> key rejected;
    - 429, 5xx, other 4xx -> the common statuses; an HTML page or broken JSON -> malformed;
    - ``illegal_*`` / ``invalid_*`` -> an error that names the refusal (we only send kinds the service takes,
      so a refusal means the service and our normalizer disagree — the analyst must see it, not a blank).
    """
    if response.status in (401, 403):
        raise AuthRejected(f"{title}: key rejected (HTTP {response.status}) — check the Auth-Key from {ABUSECH_KEY_URL}")
    raise_for_common_status(response, title)
    body = response.json_object()
    query_status = body.get("query_status")
    if not isinstance(query_status, str) or not query_status:
        raise MalformedResponse(f"{title} answer has no query_status")
    query_status = query_status.strip().lower()
    data = body.get("data")
    if query_status in AUTH_STATUSES or (isinstance(data, str) and "auth-key" in data.lower()):
        raise AuthRejected(f"{title}: key rejected ({query_status[:40]}) — check the Auth-Key from {ABUSECH_KEY_URL}")
    if query_status == "ok":
        return Status.OK, body
    if query_status in NOT_FOUND_STATUSES:
        return Status.NOT_FOUND, body
    if query_status in REFUSAL_MESSAGES:
        raise UpstreamError(f"{title} refused the query: {REFUSAL_MESSAGES[query_status]} ({query_status})")
    if query_status.startswith(("illegal_", "invalid_")):
        raise UpstreamError(f"{title} refused the query as invalid ({query_status[:40]})")
    raise UpstreamError(f"{title} answered an unknown query_status ({query_status[:40]})")


def abusech_headers(ctx: SourceContext) -> dict[str, str]:
    """The Auth-Key header (precheck guarantees a key; without one abuse.ch says unknown_auth_key)."""
    headers = {"Accept": "application/json"}
    if ctx.key is not None:
        headers["Auth-Key"] = ctx.key.reveal()
    return headers


def to_int(value: Any) -> int | None:
    """abuse.ch numbers, which arrive as strings ("10") or numbers or null."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def unique_tags(*tag_lists: Any) -> list[str]:
    """Tags from several lists (each may be null), de-duplicated case-insensitively, first spelling kept."""
    seen: dict[str, str] = {}
    for tags in tag_lists:
        if not isinstance(tags, list):
            continue
        for tag in tags:
            text = text_or_none(tag)
            if text and text.lower() not in seen:
                seen[text.lower()] = text
    return list(seen.values())


class AbuseChSource(Source):
    """What the three abuse.ch sources declare alike: the Auth-Key (own setting first, then the shared
    ``OTC_ABUSECH_KEY``), the fair-use pace and the licence."""

    needs_key = True
    key_url = ABUSECH_KEY_URL
    rate_limit = ABUSECH_RATE_LIMIT
    max_concurrency = 2
    licence_note = "abuse.ch data: free for commercial and non-commercial use (fair use)"

    @property
    def key_settings(self) -> tuple[str, ...]:
        return (f"{self.env_stem}_KEY", "OTC_ABUSECH_KEY")
