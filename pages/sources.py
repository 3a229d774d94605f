"""Sources: what each source is, what it needs, what it sends where; feed freshness; the audit log."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path, PurePath

import pandas as pd
import streamlit as st

from otc.audit import AuditLog
from otc.config import Mode
from otc.feeds import feed_status, update_feeds
from ui.common import page_settings
from ui.sources_view import settings_rows, source_rows

FEED_OUTCOME_KEY = "feed_update_outcome"

AUDIT_ROWS_SHOWN = 1000  # newest entries on the page; the CSV export has them all

SOURCE_COLUMNS = {
    "title": st.column_config.TextColumn("Source"),
    "name": st.column_config.TextColumn("Name"),
    "kinds": st.column_config.TextColumn("Indicator kinds"),
    "key": st.column_config.TextColumn("API key"),
    "key_configured": st.column_config.TextColumn("Key configured"),
    "third_party": st.column_config.TextColumn("Sends the indicator to a third party"),
    "allowed": st.column_config.TextColumn("Allowed in current mode"),
    "rate_limit": st.column_config.TextColumn("Rate limit (free tier)"),
    "data_date": st.column_config.TextColumn("Data date"),
    "licence": st.column_config.TextColumn("Licence / terms"),
    "key_url": st.column_config.LinkColumn("Where to get a key"),
}


FEED_COLUMNS = ["title", "category", "kinds", "entries", "fetched", "age", "list_date", "status", "message",
                "min_refresh_minutes", "url", "licence"]


def show_feeds(settings) -> None:
    st.subheader("Blocklist feeds (local snapshots)")
    rows = feed_status(settings)
    if rows:
        st.dataframe(pd.DataFrame(rows)[FEED_COLUMNS], hide_index=True, width="stretch",
                     column_config={"min_refresh_minutes": st.column_config.NumberColumn("min. refresh (min)"),
                                    "list_date": st.column_config.TextColumn("list date"),
                                    "url": st.column_config.TextColumn("download URL")})
    local_only = settings.mode is Mode.LOCAL
    cols = st.columns(2)
    with cols[0]:
        clicked = st.button(
            "Update feeds", icon=":material/download:", disabled=local_only, key="update_feeds",
            help="Download the lists again (conditional requests; each feed's minimum interval is kept)",
        )
        if local_only:
            st.caption("Updating downloads the lists from their publishers, which local-only mode forbids. "
                       "Switch the privacy mode in the sidebar, or import copies of the files here.")
    with cols[1]:
        files = st.file_uploader("Import feed files (air-gapped machines)", accept_multiple_files=True,
                                 key="feed_files", help="Files named as downloaded, e.g. drop_v4.json, "
                                 "firehol_level1.netset; nothing is downloaded")
        imported = st.button("Import files", icon=":material/upload:", disabled=not files, key="import_feeds")
    if clicked and not local_only:
        with st.status("Updating feeds…", expanded=True) as status:
            outcome = update_feeds(settings, progress=lambda update: st.text(
                f"{update.name}: {update.status} ({update.entries:,} entries) {update.message}".strip()))
            status.update(label=f"{len(outcome)} feed(s) checked", state="complete")
        st.session_state[FEED_OUTCOME_KEY] = outcome
        st.rerun()  # the status table above was drawn before the update
    if imported and files:
        st.session_state[FEED_OUTCOME_KEY] = import_uploaded_feeds(settings, files)
        st.rerun()
    outcome = st.session_state.get(FEED_OUTCOME_KEY)
    if outcome is not None:
        st.caption("Last update")
        if outcome:
            st.dataframe(pd.DataFrame([asdict(update) for update in outcome]), hide_index=True, width="stretch")
        else:
            st.text("No file matched a feed (see the files globs in otc/feeds.toml).")


def import_uploaded_feeds(settings, files) -> list:
    """Write the uploaded copies to a temporary folder and import them like ``feeds update --from DIR``."""
    with tempfile.TemporaryDirectory(prefix="otc-feed-import-") as folder:
        for uploaded in files:
            name = PurePath(uploaded.name).name or "feed.txt"  # never a path from the browser
            (Path(folder) / name).write_bytes(uploaded.getvalue())
        return update_feeds(settings, from_dir=Path(folder))


def show_audit_log(settings) -> None:
    st.subheader("Audit log — every request that left this machine")
    log = AuditLog.for_settings(settings)
    entries = log.read(limit=AUDIT_ROWS_SHOWN)
    if not entries:
        st.info("No request has left this machine yet.")
        return
    st.caption(f"Newest {len(entries):,} entries (the export has the whole log). Keys are never recorded.")
    st.dataframe(list(reversed(entries)), hide_index=True, width="stretch", key="audit_table")
    st.download_button("Export audit log (CSV)", log.export_csv(), file_name="otc-audit-log.csv",
                       mime="text/csv", icon=":material/download:", key="audit_export", on_click="ignore")


def main() -> None:
    settings = page_settings()
    st.title("Sources")
    st.caption(f"Privacy mode: {settings.mode.value}. A key is shown only as configured yes/no — never its value.")
    st.dataframe(source_rows(settings), hide_index=True, width="stretch", column_config=SOURCE_COLUMNS,
                 key="sources_table")
    show_feeds(settings)
    show_audit_log(settings)
    st.subheader("Service URLs and settings")
    st.caption("`OTC_<SOURCE>_URL` replaces a service's scheme and host (for proxies, mirrors and tests). "
               "URLs are not secret; keys are, and are never shown.")
    st.dataframe(settings_rows(settings), hide_index=True, width="stretch", key="settings_table")


main()
