"""The Bulk page: upload -> what was read -> what would leave the machine -> run -> table, map, downloads.

The run's result is kept in ``st.session_state`` under :data:`RESULT_KEY`, keyed by the file's digest,
the column and the privacy mode, so a download or any other rerun never enriches again.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import PurePath
from typing import Any, Callable, Sequence

import pandas as pd
import streamlit as st

from otc.bulk import BulkProgress, BulkResult, ParsedRow, parse_rows, run_bulk
from otc.config import Mode, Settings
from otc.csvio import DELIMITER_NAMES, Table, detect_indicator_column, read_table
from otc.engine import Enricher, default_enricher
from otc.errors import InputError
from otc.model import Indicator, Rejection
from ui.common import BIDI_CONTROLS, format_duration, md_escape, page_settings, reveal_bidi
from ui.maps import show_map
from ui.panels import status_badges

# {"run_key": (digest, column, mode), "result": BulkResult, "file_name": str, "run_id": str}
RESULT_KEY = "bulk_result"
PROGRESS_EVERY_SECONDS = 0.25  # page updates during a run: often enough to feel live, rarely enough to be cheap
ENCODING_TITLES = {
    "utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16-le": "UTF-16 LE (with BOM)",
    "utf-16-be": "UTF-16 BE (with BOM)", "utf-32-le": "UTF-32 LE", "utf-32-be": "UTF-32 BE",
    "cp1252": "Windows-1252", "utf-8+cp1252": "UTF-8 + some Windows-1252 lines",
}
LEADING_RESULT_COLUMNS = ("otc_row_status", "otc_indicator", "otc_kind", "otc_score", "otc_verdict",
                          "otc_verdict_reason", "otc_message")


def session_memo(slot: str, key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per ``key`` in this session: every widget click reruns the page, and reading,
    parsing and planning a 50,000-row file takes seconds."""
    stored = st.session_state.get(slot)
    if stored is not None and stored[0] == key:
        return stored[1]
    value = compute()
    st.session_state[slot] = (key, value)
    return value


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def enriched_file_name(upload_name: str, suffix: str) -> str:
    """``iocs.csv`` -> ``iocs-enriched.csv`` (``suffix`` is ``.csv`` or ``.json``)."""
    stem = PurePath(upload_name or "indicators").stem or "indicators"
    return f"{stem}-enriched{suffix}"


def row_counts(parsed: Sequence[ParsedRow]) -> dict[str, int]:
    """What the analyst should know before running: rows, distinct indicators, duplicates, rejected, empty."""
    indicators = [p for p in parsed if isinstance(p.outcome, Indicator)]
    rejected = [p for p in parsed if isinstance(p.outcome, Rejection) and p.outcome.status != "empty"]
    return {
        "rows": len(parsed),
        "distinct": sum(1 for p in indicators if p.duplicate_of is None),
        "duplicates": sum(1 for p in indicators if p.duplicate_of is not None),
        "rejected": len(rejected),
        "empty": sum(1 for p in parsed if isinstance(p.outcome, Rejection) and p.outcome.status == "empty"),
    }


def distinct_indicators(parsed: Sequence[ParsedRow]) -> list[Indicator]:
    return [p.outcome for p in parsed if isinstance(p.outcome, Indicator) and p.duplicate_of is None]


def with_current_quota(plan: Sequence[dict[str, Any]], enricher: Enricher) -> list[dict[str, Any]]:
    """The remembered plan with each service's quota as it is now (a run since then has spent some)."""
    return [{**entry, "remaining_quota_today": enricher.gates[entry["source"]].remaining_today()}
            if entry["source"] in enricher.gates else dict(entry) for entry in plan]


def egress_frame(plan: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The third-party services that would see at least one indicator, as the preview table shows them."""
    rows = []
    for entry in plan:
        if not entry["third_party"] or not entry["indicators_sent"]:
            continue
        remaining = entry.get("remaining_quota_today")
        rows.append({
            "service": entry["title"],
            "indicators sent": entry["indicators_sent"],
            "estimated requests": entry["estimated_requests"],
            "free quota left today": "no daily cap" if remaining is None else f"{remaining:,}",
            "over quota": (remaining is not None and entry["estimated_requests"] > remaining),
            "minimum time (pace)": format_duration(entry.get("min_seconds")),
        })
    return pd.DataFrame(rows, columns=["service", "indicators sent", "estimated requests", "free quota left today",
                                       "over quota", "minimum time (pace)"])


# -- page sections -----------------------------------------------------------------------------------
def show_table_facts(table: Table) -> None:
    cols = st.columns(4)
    cols[0].metric("Encoding", ENCODING_TITLES.get(table.encoding, table.encoding))
    cols[1].metric("Delimiter", DELIMITER_NAMES.get(table.delimiter, repr(table.delimiter)))
    cols[2].metric("Header row", "yes" if table.has_header else "no")
    cols[3].metric("Columns", len(table.columns))
    if table.notes:
        st.text(reveal_bidi("\n".join(f"• {note}" for note in table.notes)))


def show_counts(parsed: Sequence[ParsedRow]) -> dict[str, int]:
    counts = row_counts(parsed)
    cols = st.columns(5)
    cols[0].metric("Rows", f"{counts['rows']:,}")
    cols[1].metric("Distinct indicators", f"{counts['distinct']:,}")
    cols[2].metric("Duplicate rows", f"{counts['duplicates']:,}")
    cols[3].metric("Rejected", f"{counts['rejected']:,}")
    cols[4].metric("Empty cells", f"{counts['empty']:,}")
    rejected = [p for p in parsed if isinstance(p.outcome, Rejection) and p.outcome.status != "empty"]
    if rejected:
        with st.expander(f"{len(rejected):,} rejected row(s) — kept in the output with their reason"):
            st.dataframe(
                pd.DataFrame([{"row": p.row_number, "cell": reveal_bidi(p.cell), "status": p.outcome.status,
                               "reason": reveal_bidi(p.outcome.reason),
                               "could be": reveal_bidi(" or ".join(p.outcome.candidates))}
                              for p in rejected]),
                hide_index=True, width="stretch",
            )
    return counts


def show_egress_preview(plan: Sequence[dict[str, Any]], indicators: Sequence[Indicator], settings: Settings) -> None:
    st.subheader("Before you run: what leaves this machine")
    local = [e for e in plan if not e["third_party"] and e["indicators_checked_locally"]]
    local_note = ("Checked locally: " + ", ".join(f"{e['title']} ({e['indicators_checked_locally']:,})" for e in local)
                  if local else "No local source handles these indicators.")
    if settings.mode is Mode.LOCAL:
        st.success(f"Local-only mode: nothing leaves this machine — not one of the {len(indicators):,} "
                   "indicators, not even a DNS query.", icon=":material/lock:")
        st.caption(local_note)
        return
    frame = egress_frame(plan)
    if frame.empty:
        st.success("No indicator would be sent to a third-party service (none is applicable, shareable and "
                   "allowed in this mode).", icon=":material/lock:")
    else:
        st.warning(f"{len(frame)} third-party service(s) would see indicators from this file.",
                   icon=":material/cloud_upload:")
        st.dataframe(frame, hide_index=True, width="stretch", key="egress_table",
                     column_config={"over quota": st.column_config.CheckboxColumn("over quota")})
        if frame["over quota"].any():
            st.caption("Where the estimate exceeds the free quota, the rows beyond it are reported "
                       "rate_limited (not checked) — never scored as clean.")
    st.caption(local_note + ". Private, reserved and documentation addresses are never sent anywhere.")


def run_with_progress(table: Table, column: str, enricher: Enricher) -> BulkResult:
    progress = st.progress(0.0, text="Starting…")
    counts_slot = st.empty()
    last_update = [0.0]

    def on_progress(update: BulkProgress) -> None:
        now = time.monotonic()
        if update.done not in (0, update.total) and now - last_update[0] < PROGRESS_EVERY_SECONDS:
            return
        last_update[0] = now
        fraction = update.done / update.total if update.total else 1.0
        progress.progress(min(1.0, fraction), text=f"{update.done:,} of {update.total:,} indicators · "
                                                   f"ETA {format_duration(update.eta_seconds)}")
        badges = status_badges(dict(update.status_counts))
        if badges:
            counts_slot.markdown("Source answers so far: " + badges)

    result = run_bulk(table, column, enricher, on_progress=on_progress)
    progress.progress(1.0, text=f"Done in {result.summary.get('elapsed_seconds', 0):.1f} s")
    return result


def results_column_config() -> dict[str, Any]:
    return {
        "otc_score": st.column_config.ProgressColumn("score", min_value=0, max_value=100, format="%d",
                                                     help="0–100: the sum of the contributions"),
        "otc_verdict": st.column_config.TextColumn("verdict", help="“unknown” is not enough evidence — never clean"),
        "otc_row_status": st.column_config.TextColumn("row status"),
        "otc_indicator": st.column_config.TextColumn("indicator"),
        "otc_kind": st.column_config.TextColumn("kind"),
        "otc_verdict_reason": st.column_config.TextColumn("why"),
        "otc_message": st.column_config.TextColumn("message"),
    }


def _shown_cell(value: Any) -> Any:
    # isascii() first: it is much cheaper than translate() and true for almost every cell
    return reveal_bidi(value) if isinstance(value, str) and not value.isascii() else value


def shown_column(column: pd.Series) -> pd.Series:
    """A text column with bidi controls revealed; columns of other types unchanged."""
    if column.dtype == object:
        return column.map(_shown_cell)
    if pd.api.types.is_string_dtype(column.dtype):
        # a vectorized scan first: almost no column holds a bidi control, and the scan is cheap
        if column.str.contains(f"[{BIDI_CONTROLS}]", regex=True, na=False).any():
            return column.map(reveal_bidi, na_action="ignore")
    return column


def results_frame(result: BulkResult) -> pd.DataFrame:
    """The results as the page's table shows them (the downloads are built from ``result`` itself)."""
    frame = result.dataframe()
    leading = [c for c in LEADING_RESULT_COLUMNS if c in frame.columns]
    # Mixed cells (a number in one row, text in another) would break Arrow: show such columns as text.
    for name in frame.columns:
        if frame[name].dtype == object:
            kinds = {type(v) for v in frame[name] if v is not None and not (isinstance(v, float) and pd.isna(v))}
            if len(kinds) > 1:
                frame[name] = frame[name].map(lambda v: None if v is None else str(v))
        frame[name] = shown_column(frame[name])
    frame.columns = [reveal_bidi(str(c)) for c in frame.columns]  # the upload's own header names
    leading = [reveal_bidi(c) for c in leading]
    return frame[leading + [c for c in frame.columns if c not in leading]]


def show_results(result: BulkResult, file_name: str, run_id: str) -> None:
    summary = result.summary
    st.subheader("Results")
    st.text(result.summary_line())
    verdicts = summary.get("verdicts") or {}
    if verdicts:
        cols = st.columns(len(verdicts))
        for col, (verdict, n) in zip(cols, verdicts.items()):
            col.metric(verdict, f"{n:,}")
    frame = session_memo("bulk_frame", (run_id,), lambda: results_frame(result))
    st.dataframe(frame, hide_index=True, width="stretch", key="bulk_results_table",
                 column_config=results_column_config())
    downloads = st.columns(2)
    downloads[0].download_button(
        # Callables: the file is built when the analyst clicks, not on every rerun of the page.
        "Download enriched CSV", result.to_csv, file_name=enriched_file_name(file_name, ".csv"),
        mime="text/csv", icon=":material/download:", key="download_csv", on_click="ignore",
    )
    downloads[1].download_button(
        "Download JSON", result.to_json, file_name=enriched_file_name(file_name, ".json"),
        mime="application/json", icon=":material/data_object:", key="download_json", on_click="ignore",
    )
    skipped = summary.get("skipped") or []
    if skipped:
        st.subheader("Lookups that did not happen")
        st.caption("These were not checked — not evidence either way.")
        st.text(reveal_bidi("\n".join(f"• {line}" for line in skipped)))
    st.subheader("Map")
    show_map(result.enrichments.values(), key="bulk_map")


def bulk_page() -> None:
    settings = page_settings()
    st.title("Bulk")
    uploaded = st.file_uploader(
        "CSV, TSV or text file of indicators", type=["csv", "tsv", "txt"], key="bulk_upload",
        help="UTF-8 (with or without BOM), UTF-16 from Excel or Windows-1252; comma, semicolon or tab; "
             "with or without a header row",
    )
    if uploaded is None:
        st.info("Upload a file to see what would be looked up — nothing is sent before you press Run.")
        return
    data = uploaded.getvalue()
    digest = file_digest(data)
    try:
        table = session_memo("bulk_table", (digest,), lambda: read_table(data, uploaded.name))
    except InputError as exc:
        st.error(md_escape(reveal_bidi(str(exc))), icon=":material/error:")
        return
    show_table_facts(table)

    detected = session_memo("bulk_detected", (digest,), lambda: detect_indicator_column(table))
    column = st.selectbox(
        "Indicator column", table.columns, index=table.columns.index(detected), key=f"bulk_column_{digest}",
        format_func=reveal_bidi,
        # Not the column's name: help is Markdown, which links a bare URL even escaped, and the name
        # comes from the uploaded file.
        help="Preselected: the column whose cells most often read as indicators",
    )
    parsed = session_memo("bulk_parsed", (digest, column), lambda: parse_rows(table, column))
    show_counts(parsed)
    indicators = distinct_indicators(parsed)
    enricher = default_enricher(settings)
    plan = session_memo("bulk_plan", (digest, column, settings.mode.value),
                        lambda: enricher.egress_plan(indicators))
    plan = with_current_quota(plan, enricher)
    show_egress_preview(plan, indicators, settings)

    run_key = (digest, column, settings.mode.value)
    stored = st.session_state.get(RESULT_KEY)
    clicked = st.button("Run", type="primary", icon=":material/play_arrow:", key="bulk_run",
                        help="Every row gets a status in the output; nothing is dropped")
    if clicked:
        result = run_with_progress(table, column, enricher)
        stored = {"run_key": run_key, "result": result, "file_name": uploaded.name, "run_id": uuid.uuid4().hex}
        st.session_state[RESULT_KEY] = stored
    if stored is not None and stored["run_key"] == run_key:
        show_results(stored["result"], stored["file_name"], stored["run_id"])
    elif stored is not None:
        st.caption("The last run was for another file, column or privacy mode: press Run for this one.")
