"""Lookup: one indicator in, an explained verdict out. ``?ioc=...`` opens the page on that indicator."""

from __future__ import annotations

import time
from collections import Counter

import streamlit as st

from otc.engine import default_enricher
from otc.indicators import parse_indicator
from otc.model import Enrichment, Indicator, Rejection, Scope, SourceResult
from otc.scoring import combine
from otc.sources import all_sources
from ui.charts import VERDICT_COLORS, VERDICT_ICONS, contributions_figure
from ui.common import md_escape, page_settings, reveal_bidi
from ui.maps import show_map
from ui.panels import render_source_panel, status_badges

TEXT_KEY = "lookup_text"
RESULT_KEY = "lookup_result"  # {"key": (kind, value, mode), "enrichment": Enrichment}
QUERY_SEEN_KEY = "lookup_query_seen"


def choose_candidate(candidate: str) -> None:
    """Button callback: look up one reading of an ambiguous input (runs before the widgets exist)."""
    st.session_state[TEXT_KEY] = candidate


def sync_query_param() -> None:
    """``?ioc=`` fills the input when the page opens (or the link changes); typing updates the link."""
    wanted = st.query_params.get("ioc")
    if wanted and wanted != st.session_state.get(QUERY_SEEN_KEY):
        st.session_state[QUERY_SEEN_KEY] = wanted
        st.session_state[TEXT_KEY] = wanted


def show_indicator(indicator: Indicator) -> None:
    cols = st.columns([3, 1, 1])
    with cols[0]:
        st.caption("Normalized indicator (the form sent to sources)")
        st.code(reveal_bidi(indicator.value), language=None)
        if indicator.display != indicator.value:
            st.caption("Displayed as")
            st.text(reveal_bidi(indicator.display))
    cols[1].metric("Kind", indicator.kind.value)
    cols[2].metric("Scope", indicator.scope.value.replace("_", " "))
    details = []
    if indicator.registered_domain:
        details.append(f"registered domain: {indicator.registered_domain}")
    if indicator.host and indicator.host != indicator.value:
        details.append(f"host: {indicator.host}")
    if indicator.port is not None:
        details.append(f"port: {indicator.port}")
    if indicator.wildcard:
        details.append("wildcard: looked up without the '*'")
    if details:
        st.text(reveal_bidi(" · ".join(details)))
    if indicator.notes:
        with st.container(border=True):
            st.caption("What normalization changed")
            st.text(reveal_bidi("\n".join(f"• {note}" for note in indicator.notes)))
    if indicator.scope not in (Scope.GLOBAL, Scope.NOT_APPLICABLE):
        st.info(f"A {indicator.scope.value.replace('_', '-')} {indicator.kind.value} is never sent to a "
                "third-party service; only local sources look at it.", icon=":material/lock:")


def show_rejection(rejection: Rejection) -> None:
    if rejection.status == "ambiguous":
        st.warning(f"Ambiguous input — not looked up: {md_escape(reveal_bidi(rejection.reason))}",
                   icon=":material/help:")
        if rejection.candidates:
            st.caption("Which reading did you mean?")
            cols = st.columns(len(rejection.candidates))
            for n, (col, candidate) in enumerate(zip(cols, rejection.candidates)):
                # Button labels are markdown: escape, the candidate comes from the analyst's input.
                col.button(f"Look up {md_escape(reveal_bidi(candidate))}", key=f"candidate_{n}",
                           on_click=choose_candidate, args=(candidate,))
    elif rejection.status == "empty":
        st.info("Paste an indicator to look it up.")
    else:
        st.error(f"Not an indicator: {md_escape(reveal_bidi(rejection.reason))}", icon=":material/block:")


def show_verdict(enrichment: Enrichment) -> None:
    verdict = enrichment.verdict
    cols = st.columns([2, 1])
    with cols[0]:
        # Verdict and icon are our own enum values; only the reason may quote upstream text.
        st.markdown(f"## :{VERDICT_COLORS[verdict]}[{VERDICT_ICONS[verdict]} {verdict.value.upper()}]")
        # Plain text, not a Markdown caption: the reason may quote upstream text, and Streamlit's Markdown
        # turns a bare "http://..." into a link even when every character of it is backslash-escaped.
        st.text(reveal_bidi(enrichment.verdict_reason))
        if verdict.value == "unknown":
            st.caption("“unknown” means there is not enough evidence either way — it never means “clean”.")
    cols[1].metric("Score", f"{enrichment.score} / 100")


def show_contributions(enrichment: Enrichment) -> None:
    st.subheader("Why this score")
    figure = contributions_figure(enrichment.contributions)
    if figure is None:
        st.info("No source gave evidence either way, so there is nothing to chart: the score is 0.")
        return
    st.plotly_chart(figure, key="contributions_chart", config={"displaylogo": False})
    st.caption(f"The score is the sum of these {len(enrichment.contributions)} line(s), clamped to 0–100.")


def run_lookup(indicator: Indicator, settings, refresh: bool, summary_area, panel_area) -> Enrichment:
    """Run every source, drawing each panel as its source finishes (a slow source holds back nothing)."""
    enricher = default_enricher(settings, refresh=refresh)
    titles = {s.name: s for s in enricher.sources}
    order = [s.name for s in enricher.sources]
    slots = {name: panel_area.empty() for name in order}
    progress = summary_area.progress(0.0, text=f"Asking {len(order)} sources…")
    results: dict[str, SourceResult] = {}
    for _, result, _complete in enricher.iter_results([indicator]):
        results[result.source] = result
        with slots[result.source].container():
            render_source_panel(result, titles.get(result.source))
        progress.progress(len(results) / len(order), text=f"{len(results)} of {len(order)} sources done")
    progress.empty()
    ordered = [results[name] for name in order if name in results]
    return combine(indicator, ordered, enricher.rules)


def main() -> None:
    settings = page_settings()
    st.title("Lookup")
    sync_query_param()
    text = st.text_input(
        "Indicator", key=TEXT_KEY,
        placeholder="IP, CIDR, domain, URL, e-mail, hash or ASN — defanged forms like hxxps://example[.]com work",
    )
    if not text.strip():
        if "ioc" in st.query_params:  # the link should not name an indicator the page no longer shows
            del st.query_params["ioc"]
        st.info("Paste an indicator to look it up. A link with `?ioc=...` opens this page on that indicator.")
        return
    if st.query_params.get("ioc") != text.strip():
        st.query_params["ioc"] = text.strip()
        st.session_state[QUERY_SEEN_KEY] = text.strip()

    parsed = parse_indicator(text)
    if isinstance(parsed, Rejection):
        show_rejection(parsed)
        return
    show_indicator(parsed)

    refresh = st.button("Ask the sources again", icon=":material/refresh:", help="Bypass the cache for this lookup")
    cache_key = (parsed.kind.value, parsed.value, settings.mode.value)
    summary_area = st.container()
    st.subheader("Sources")
    panel_area = st.container()
    stored = st.session_state.get(RESULT_KEY)
    if refresh or stored is None or stored["key"] != cache_key:
        enrichment = run_lookup(parsed, settings, refresh, summary_area, panel_area)
        st.session_state[RESULT_KEY] = {"key": cache_key, "enrichment": enrichment}
    else:
        enrichment = stored["enrichment"]
        sources = {s.name: s for s in all_sources()}
        with panel_area:
            now = time.time()
            for result in enrichment.results:
                render_source_panel(result, sources.get(result.source), now=now)

    with summary_area:
        counts = Counter(result.status.value for result in enrichment.results)
        st.markdown("Sources: " + status_badges(counts))
        show_verdict(enrichment)
        show_contributions(enrichment)
        st.subheader("Where")
        show_map([enrichment], key="lookup_map")


main()
