"""Rows for the Sources page: each source's declared facts, and the settings in force (never a key value)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from otc.config import Settings
from otc.http import rebase_url
from otc.sources import all_sources
from otc.sources.base import RateLimit, Source


def format_rate_limit(limit: RateLimit) -> str:
    parts = []
    if limit.per_second:
        parts.append(f"{limit.per_second:g}/s")
    if limit.per_minute:
        parts.append(f"{limit.per_minute:g}/min")
    if limit.per_day:
        parts.append(f"{limit.per_day:,}/day")
    return ", ".join(parts) or "no published limit"


def key_requirement(source: Source) -> str:
    if source.needs_key:
        return "needed"
    if source.key_optional:
        return "optional"
    return "none"


def key_configured(source: Source, settings: Settings) -> str:
    """``yes`` / ``no`` (``—`` for sources that take no key). Only presence is checked, never shown."""
    if not source.uses_key:
        return "—"
    return "yes" if settings.key(source.key_settings) is not None else "no"


def source_rows(settings: Settings) -> list[dict]:
    rows = []
    for source in all_sources():
        rows.append({
            "title": source.title,
            "name": source.name,
            "kinds": ", ".join(sorted(kind.value for kind in source.kinds)),
            "key": key_requirement(source),
            "key_configured": key_configured(source, settings),
            "third_party": "yes" if source.third_party else "no (local)",
            "allowed": "yes" if source.allowed_in(settings.mode) else "no",
            "rate_limit": format_rate_limit(source.rate_limit) if source.third_party else "local",
            "data_date": source.data_date() or "—",
            "licence": source.licence_note or "—",
            "key_url": source.key_url or None,
        })
    return rows


def shown_url(url: str) -> str:
    """A URL as the page may show it: a password in it (``http://user:pw@proxy``) is masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, parts.fragment))


def settings_rows(settings: Settings) -> list[dict]:
    """Every URL setting (override or default service), the resolver, timeout and data directory."""
    rows = []
    for source in all_sources():
        if not source.base_url:
            continue
        override = settings.url_override(source.url_setting)
        rows.append({
            "setting": source.url_setting,
            "value": shown_url(rebase_url(source.base_url, override) if override else source.base_url),
            "from": "override" if override else "default",
        })
    known = {row["setting"] for row in rows}
    for name, value in sorted(settings.urls.items()):
        if name in known:
            continue
        if name.startswith(("OTC_FEEDS_", "OTC_FEED_")):
            origin = "override (feed downloads)"
        else:  # an override nothing uses: a typo is worth seeing
            origin = "override (no source uses it)"
        rows.append({"setting": name, "value": shown_url(value), "from": origin})
    dns = f"{settings.dns_server[0]}:{settings.dns_server[1]}" if settings.dns_server else "system resolver"
    rows += [
        {"setting": "OTC_DNS_SERVER", "value": dns, "from": "override" if settings.dns_server else "default"},
        {"setting": "OTC_TIMEOUT", "value": f"{settings.timeout:g} s", "from": "setting"},
        {"setting": "OTC_DATA_DIR", "value": str(settings.data_dir), "from": "setting"},
        {"setting": "OTC_MODE", "value": settings.mode.value, "from": "sidebar / setting"},
    ]
    return rows
