"""Local feed snapshots: is the indicator on one of the public blocklists downloaded with
``python -m otc feeds update``? Nothing leaves the machine, so it works in local-only mode.

IPs match exact addresses and listed networks (radix tree), domains match themselves and their parents
(down to the registrable domain), URLs match exactly and by host, hashes and ASNs exactly. Each matching
feed adds its weight from ``feeds.toml`` with the feed's name and age in the reason
("+40 Feodo Tracker (C2): listed, list fetched 3 h ago"); IPsum is scaled by how many lists report it.
Non-global addresses are never matched: bogon lists (FireHOL level1) are not evidence against them.

Fields: ``lists`` (feed names), ``categories``, ``ipsum_count`` ("reported on N lists"), ``details`` (one
line per list: what matched, the list's note, its age) and ``matches`` (the same as records: the input of
``score`` and the raw panel). Local sources are never put in the result cache: a feed update shows at once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping

from otc.config import load_settings
from otc.feeds import age_text, feed_definitions, format_time
from otc.model import Contribution, Indicator, Kind, Scope, SourceResult, Status
from otc.scoring import SourceWeights
from otc.sources.base import Source, SourceContext
from otc.store import FeedIndex, FeedMatch, Store, best_per_feed, existing_store

# Nothing was checked, so this is not "not found" (which would read as "on no blocklist"): not applicable.
NO_FEEDS_MESSAGE = ("no feed snapshots loaded, so nothing was checked — import files with "
                    "`python -m otc feeds update --from DIR`, or download them with `python -m otc feeds update`")
_LOCAL_SCOPES = (Scope.GLOBAL, Scope.NOT_APPLICABLE)
STALE_LIST_SECONDS = 2 * 86400.0


def _reason_text(match: Mapping[str, Any]) -> str:
    how, matched, count = match["how"], match["matched"], match.get("count")
    if how == "url_host":
        return f"{count} listed URL{'s' if count != 1 else ''} on {matched}"
    if how == "parent_domain":
        return f"parent domain {matched} listed"
    listed = f"reported on {count} lists" if count else "listed"
    if how == "cidr":
        where = f"in listed range {matched}"
        return f"host {where}" if match.get("via_host") else f"{where}" + (f", {listed}" if count else "")
    if match.get("via_host"):
        return f"host {matched} {listed}"
    return listed


@dataclass(frozen=True)
class FeedView:
    """What a match row says about its feed; worked out once per index (not per lookup)."""

    title: str
    category: str
    weight: float | None
    fetched_at: float | None
    fetched: str
    list_date: str | None
    stale_list: bool


_VIEWS: dict[int, tuple[FeedIndex, dict[str, FeedView], float | None]] = {}
_VIEWS_LOCK = threading.Lock()


def feed_views(index: FeedIndex) -> tuple[dict[str, FeedView], float | None]:
    """Per feed of ``index``: title, category and weight (the current feeds.toml first, else what the store
    recorded), fetch time; and the newest fetch time. Cached for the index object's lifetime."""
    key = id(index)
    cached = _VIEWS.get(key)
    if cached is not None and cached[0] is index:
        return cached[1], cached[2]
    catalog = feed_definitions()
    views = {}
    for name, record in index.records.items():
        feed = catalog.get(name)
        list_date = record.list_date
        views[name] = FeedView(
            title=feed.title if feed else record.title or name,
            category=feed.category if feed else record.category,
            weight=feed.weight if feed else (record.weight or None),
            fetched_at=record.fetched_at,
            fetched=format_time(record.fetched_at),
            list_date=format_time(list_date) if list_date else None,
            # a copy fetched today of a list last updated months ago is not fresh evidence: say so
            stale_list=bool(list_date and record.fetched_at and record.fetched_at - list_date > STALE_LIST_SECONDS),
        )
    newest = max((r.fetched_at for r in index.records.values() if r.fetched_at is not None), default=None)
    with _VIEWS_LOCK:
        _VIEWS.clear()  # one index is current at a time per store; keep memory flat
        _VIEWS[key] = (index, views, newest)
    return views, newest


def match_fields(index: FeedIndex, matches: list[FeedMatch], now: float) -> dict[str, Any]:
    """The result fields for an indicator's matches (one per feed, the strongest)."""
    views, _ = feed_views(index)
    rows = []
    for match in best_per_feed(matches):
        view = views.get(match.feed) or FeedView(match.feed, "", None, None, "never", None, False)
        rows.append({
            "feed": match.feed,
            "title": view.title,
            "category": view.category,
            "weight": view.weight,
            "how": match.how,
            "matched": match.matched,
            "count": match.count,
            "info": match.info,
            "via_host": match.via_host,
            "fetched_at": view.fetched_at,
            "fetched": view.fetched,
            "age": age_text(max(0.0, now - view.fetched_at)) if view.fetched_at is not None else "at an unknown time",
            "list_date": view.list_date,
            "stale_list": view.stale_list,
        })
    rows.sort(key=lambda r: (-(r["weight"] or 0), r["feed"]))  # the strongest evidence first
    ipsum_counts = [r["count"] for r in rows if r["feed"] == "ipsum" and r["count"] and r["how"] != "url_host"]
    details = []
    for row in rows:
        text = f"{row['title']} ({row['category']}): {_reason_text(row)}"
        if row["info"]:
            text += f" — {row['info']}"
        text += f"; list fetched {row['age']}"
        if row["list_date"]:
            text += f", dated {row['list_date']}"
        details.append(text)
    return {
        "lists": [r["feed"] for r in rows],
        "categories": sorted({r["category"] for r in rows if r["category"]}),
        "ipsum_count": max(ipsum_counts) if ipsum_counts else None,
        "details": details,
        "matches": rows,
    }


class FeedSource(Source):
    name = "feeds"
    title = "Local feed snapshots"
    description = ("Public blocklists kept on this machine (Spamhaus DROP, FireHOL, Feodo, Tor exits, IPsum, "
                   "ET, OpenPhish, URLhaus, ThreatFox): which list, and how old it is")
    kinds = frozenset(Kind)
    base_url = ""
    third_party = False
    max_concurrency = 4
    licence_note = "Each list under its own terms (see the feed list on the Sources page)"

    def __init__(self) -> None:
        self._last_store: Store | None = None  # for data_date(), which is asked without settings

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        if indicator.scope not in _LOCAL_SCOPES:
            return self.result(
                Status.NOT_APPLICABLE,
                message=f"{indicator.scope.value.replace('_', '-')} address space is never matched against "
                        "blocklists (bogon lists are not evidence)",
            )
        store = existing_store(ctx.settings.data_dir)
        if store is None:
            return self.result(Status.NOT_APPLICABLE, message=NO_FEEDS_MESSAGE)
        self._last_store = store
        index = store.index()
        if index.empty:
            return self.result(Status.NOT_APPLICABLE, message=NO_FEEDS_MESSAGE)
        now = ctx.clock()
        _, newest = feed_views(index)
        data_date = format_time(newest) if newest is not None else None
        matches = index.match(indicator)
        if not matches:
            return self.result(
                Status.NOT_FOUND, {"lists": [], "categories": [], "ipsum_count": None, "details": [], "matches": []},
                message=f"not on any of the {len(index.feed_names)} loaded lists "
                        f"(newest fetched {age_text(max(0.0, now - newest)) if newest else 'at an unknown time'})",
                data_date=data_date,
            )
        fields = match_fields(index, matches, now)
        return self.result(Status.OK, fields, raw=fields["matches"], data_date=data_date)

    def score(self, fields: Mapping[str, Any], weights: SourceWeights) -> list[Contribution]:
        lines = []
        for row in fields.get("matches", []):
            weight = row.get("weight")
            weight = float(weight) if weight is not None else weights.weight("listed")
            factor = 1.0
            if row["how"] == "parent_domain":
                factor *= weights.weight("parent_domain_factor")
            elif row["how"] == "url_host":
                factor *= weights.weight("url_host_factor")
            elif row.get("count"):
                factor *= min(1.0, row["count"] / weights.weight("ipsum_full_at"))
            points = round(weight * factor, 1)
            if points == 0:
                continue
            sign = "+" if points >= 0 else "−"
            lines.append(Contribution(
                source=self.name, rule=f"feed:{row['feed']}", points=points, weight=weight,
                reason=f"{sign}{abs(points):g} {row['title']} ({row['category']}): {_reason_text(row)}, "
                       f"list fetched {row['age']}"
                       + (f" (list dated {row['list_date']})" if row.get("stale_list") else ""),
            ))
        return lines

    def data_date(self) -> str | None:
        """When the newest loaded snapshot was fetched."""
        store = self._last_store
        if store is None:
            try:
                store = existing_store(load_settings().data_dir)
            except Exception:  # a broken secrets file must not break the Sources page's date column
                return None
        if store is None:
            return None
        newest = max((r.fetched_at for r in store.feed_records().values() if r.loaded and r.fetched_at),
                     default=None)
        return format_time(newest) if newest is not None else None


SOURCE = FeedSource()
