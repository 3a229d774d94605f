"""One panel per source result: status badge, timing, fields and the raw answer — all upstream text escaped,
with bidi controls revealed (:func:`ui.common.reveal_bidi`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from otc.model import SourceResult, Status
from otc.sources.base import Source
from ui.common import format_epoch, reveal_bidi, reveal_bidi_deep


@dataclass(frozen=True)
class StatusStyle:
    label: str  # what the analyst reads
    icon: str  # Streamlit material icon
    color: str  # st.badge colour
    meaning: str  # one line: what this status does and does not mean


# Each status has its own colour + icon pair, so a glance at the panels tells answered from skipped from failed.
STATUS_STYLES: dict[Status, StatusStyle] = {
    Status.OK: StatusStyle("ok", ":material/check_circle:", "green", "The source answered with findings."),
    Status.NOT_FOUND: StatusStyle(
        "not found", ":material/search_off:", "blue",
        "The source answered: it has no record of this indicator (not evidence it is clean)."),
    Status.NOT_APPLICABLE: StatusStyle(
        "not applicable", ":material/do_not_disturb_on:", "gray", "This source does not handle this kind of indicator."),
    Status.SKIPPED_NO_KEY: StatusStyle(
        "skipped: no key", ":material/key_off:", "violet", "Not asked: the source needs an API key."),
    Status.SKIPPED_PRIVACY: StatusStyle(
        "skipped: privacy", ":material/lock:", "primary",
        "Not sent: the privacy mode or the indicator's scope keeps it on this machine."),
    Status.RATE_LIMITED: StatusStyle(
        "rate limited", ":material/speed:", "orange", "Not checked: the service's quota or pace was exhausted."),
    Status.TIMEOUT: StatusStyle(
        "timeout", ":material/timer_off:", "yellow", "The service did not answer in time."),
    Status.AUTH_ERROR: StatusStyle(
        "auth error", ":material/gpp_bad:", "red", "The service rejected the key."),
    Status.ERROR: StatusStyle(
        "error", ":material/error:", "red", "The lookup failed; see the message."),
}


def status_badge(status: Status) -> None:
    style = STATUS_STYLES[status]
    st.badge(style.label, icon=style.icon, color=style.color, help=style.meaning)


def status_badges(counts: dict[str, int]) -> str:
    """``:green-badge[... ok 12] ...`` for the status counts (our own status names and numbers only)."""
    parts = []
    for status in Status:
        n = counts.get(status.value)
        if n:
            style = STATUS_STYLES[status]
            parts.append(f":{style.color}-badge[{style.icon} {style.label} {n:,}]")
    return " ".join(parts)


def fields_frame(fields: Mapping[str, Any]) -> pd.DataFrame:
    """A two-column table (field, value) of a result's fields; lists and dicts shown as compact text."""
    rows = [{"field": reveal_bidi(str(name)), "value": reveal_bidi(_cell_text(value))}
            for name, value in fields.items()]
    return pd.DataFrame(rows, columns=["field", "value"])


def _cell_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell_text(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def key_hint(source: Source) -> str:
    """Where to put a key and where to get one (names and URLs only, never a value)."""
    where = f"set {source.key_settings[0]} in .streamlit/secrets.toml or the environment"
    return f"{where}; get a key at {source.key_url}" if source.key_url else where


def render_source_panel(result: SourceResult, source: Source | None, now: float | None = None,
                        expanded: bool = False) -> None:
    """One expander for one source's result. Upstream text goes only through st.text/dataframe/json/code."""
    now = time.time() if now is None else now
    style = STATUS_STYLES[result.status]
    title = source.title if source is not None else result.source  # ours, not upstream
    with st.expander(f"{title} — {style.label}", icon=style.icon, expanded=expanded):
        status_badge(result.status)
        if result.message:
            st.text(reveal_bidi(result.message))
        if result.status is Status.SKIPPED_NO_KEY and source is not None:
            st.caption(key_hint(source))
        meta = {
            "latency": f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "—",
            "answer": ("cached " if result.cached else "fetched ") + format_epoch(result.fetched_at, now),
            "data date": result.data_date or "—",
        }
        st.dataframe(pd.DataFrame([meta]), hide_index=True, width="stretch")
        if result.fields:
            st.dataframe(fields_frame(result.fields), hide_index=True, width="stretch")
        if result.contributions:
            st.text(reveal_bidi("\n".join(c.reason for c in result.contributions)))
        if result.raw is not None:
            st.caption("Raw response")
            if isinstance(result.raw, (dict, list)):
                st.json(reveal_bidi_deep(result.raw), expanded=False)
            else:
                st.code(reveal_bidi(str(result.raw)[:20000]), language=None)
