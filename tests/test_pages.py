"""The dashboard pages under Streamlit's AppTest: nothing leaves loopback (local mode, or every source
pointed at a pytest-httpserver and DNS at a closed loopback port)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st_
from streamlit.testing.v1 import AppTest

from conftest import PROJECT_DIR
from otc.audit import AuditLog
from otc.config import load_settings
from otc.indicators import parse_indicator
from otc.model import Contribution, Kind, Status
from otc.sources import all_sources
from ui.charts import NEGATIVE_COLOR, POSITIVE_COLOR, contributions_figure
from ui.common import format_age, md_escape
from ui.sources_view import shown_url

APP = str(PROJECT_DIR / "app.py")
RUN_TIMEOUT = 60  # seconds for one script run (the keyless lookups wait for the closed DNS port)

IDB_ANSWER = {
    "cpes": [], "hostnames": ["one.one.one.one"], "ip": "1.1.1.1", "ports": [53, 80, 443],
    "tags": ["compromised"], "vulns": [],
}


# -- helpers -----------------------------------------------------------------------------------------
def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def lookup(at: AppTest, text: str) -> AppTest:
    at.text_input(key="lookup_text").input(text).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def panels(at: AppTest) -> dict[str, str]:
    """Source title -> status label, from the source panels' expander labels ("Title — status")."""
    titles = {s.title for s in all_sources()}
    found = {}
    for expander in at.expander:
        title, sep, status = expander.label.rpartition(" — ")
        if sep and title in titles:
            found[title] = status
    return found


def markdown_texts(at: AppTest) -> list[str]:
    """Every string Streamlit renders as markdown (where unescaped upstream text would be dangerous)."""
    texts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader"):
        texts += [str(element.value) for element in getattr(at, kind)]
    texts += [e.label for e in at.expander] + [b.label for b in at.button]
    return texts


def page_text(at: AppTest) -> str:
    """Everything the page sends to the browser: every element's proto, plus the tables' cells."""
    parts = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at._tree)
    parts += [frame.value.to_csv() for frame in at.dataframe]
    return "\n".join(parts)


def table_with(at: AppTest, *columns: str):
    """The one dataframe element that has these columns (display tables carry no key in AppTest)."""
    found = [frame for frame in at.dataframe if set(columns) <= set(frame.value.columns)]
    assert len(found) == 1, f"{len(found)} tables with columns {columns}"
    return found[0]


def plotly_spec(at: AppTest) -> dict:
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    return json.loads(charts[0].proto.spec)


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert len(values) == 1, f"metric {label!r}: {values}"
    return values[0]


@pytest.fixture
def local_mode(monkeypatch):
    monkeypatch.setenv("OTC_MODE", "local")


@pytest.fixture
def keyless_upstream(monkeypatch, httpserver):
    """Keyless mode with every source's service at the local httpserver and DNS at a closed loopback port."""
    monkeypatch.setenv("OTC_MODE", "keyless")
    for source in all_sources():
        if source.base_url:
            monkeypatch.setenv(source.url_setting, httpserver.url_for(f"/{source.name}"))
    monkeypatch.setenv("OTC_DNS_SERVER", "127.0.0.1:9")  # discard port: nothing answers
    monkeypatch.setenv("OTC_TIMEOUT", "2")
    return httpserver


# -- every page renders ------------------------------------------------------------------------------
@pytest.mark.parametrize("page", [None, "pages/lookup.py", "pages/bulk.py", "pages/sources.py"])
def test_each_page_renders_without_exception(local_mode, page):
    at = open_app(page)
    assert at.sidebar.radio(key="otc_mode_radio").value == "local"
    assert at.title[0].value in {"Lookup", "Bulk", "Sources"}


def test_privacy_mode_switch_persists_across_pages(local_mode):
    at = open_app()
    at.sidebar.radio(key="otc_mode_radio").set_value("keyless").run()
    at.switch_page("pages/sources.py").run()
    assert at.sidebar.radio(key="otc_mode_radio").value == "keyless"
    assert "Privacy mode: keyless" in at.caption[0].value
    at.switch_page("pages/lookup.py").run()
    assert at.session_state["otc_mode"] == "keyless"


# -- Lookup --------------------------------------------------------------------------------------------
def test_lookup_local_mode_is_unknown_with_privacy_skips(local_mode):
    at = lookup(open_app(), "8.8.8.8")
    assert at.get("code")[0].value == "8.8.8.8"
    assert metric(at, "Kind") == "ipv4"
    assert metric(at, "Scope") == "global"
    assert [m.value for m in at.markdown if "UNKNOWN" in m.value] == ["## :gray[:material/help: UNKNOWN]"]
    assert any("never means “clean”" in c.value for c in at.caption)
    assert metric(at, "Score") == "0 / 100"
    summary = [m.value for m in at.markdown if m.value.startswith("Sources: ")]
    withheld = sum(1 for s in all_sources() if s.third_party and Kind.IPV4 in s.kinds)
    assert len(summary) == 1 and f"skipped: privacy {withheld}]" in summary[0]
    # one panel per registered source; every third-party source that handles IPv4 was withheld
    shown = panels(at)
    assert set(shown) == {s.title for s in all_sources()}
    for source in all_sources():
        if source.third_party and Kind.IPV4 in source.kinds:
            assert shown[source.title] == "skipped: privacy", source.name
        elif Kind.IPV4 not in source.kinds:
            assert shown[source.title] == "not applicable", source.name
    # no evidence: a sentence instead of an empty chart
    assert len(at.get("plotly_chart")) == 0
    assert any("nothing to chart" in i.value for i in at.info)


def test_lookup_local_mode_shows_offline_country_on_the_offline_map(local_mode):
    at = lookup(open_app(), "8.8.8.8")
    located = [f for f in at.dataframe if list(f.value.columns)[:2] == ["indicator", "location"]]
    assert len(located) == 1
    row = located[0].value.iloc[0]
    assert row["indicator"] == "8.8.8.8"
    assert "approximate (country-level)" in row["location"]
    maps = at.get("component_instance")
    assert len(maps) == 1
    args = json.loads(maps[0].proto.json_args)
    # Leaflet comes from data: URLs, and nothing in the map points at a remote host.
    assert args["js_links"] and all(link.startswith("data:") for link in args["js_links"] + args["css_links"])
    assert re.findall(r"https?://", args["script"] + args["header"] + args["html"]) == []


def test_lookup_shows_refang_note_DEFANG_02(local_mode):
    at = lookup(open_app(), "hxxps://example[.]com/login")
    assert at.get("code")[0].value == "https://example.com/login"
    assert metric(at, "Kind") == "url"
    notes = "\n".join(t.value for t in at.text)
    expected = parse_indicator("hxxps://example[.]com/login").notes
    assert expected and all(note in notes for note in expected)
    assert "refang" in notes.lower()


def test_lookup_ambiguous_ipv4_offers_both_readings_and_looks_nothing_up_IP_01(local_mode):
    at = lookup(open_app(), "010.1.1.1")
    assert any("Ambiguous" in w.value for w in at.warning)
    labels = [b.label for b in at.button]
    assert f"Look up {md_escape('8.1.1.1')}" in labels
    assert f"Look up {md_escape('10.1.1.1')}" in labels
    assert panels(at) == {}  # no source was asked
    assert "lookup_result" not in at.session_state
    # choosing a reading looks that one up
    chosen = next(b for b in at.button if b.label == f"Look up {md_escape('10.1.1.1')}")
    chosen.click().run()
    assert at.text_input(key="lookup_text").value == "10.1.1.1"
    assert at.get("code")[0].value == "10.1.1.1"
    assert metric(at, "Scope") == "private"
    assert panels(at)["Shodan InternetDB"] == "skipped: privacy"


def test_lookup_invalid_input_is_a_plain_error(local_mode):
    at = lookup(open_app(), "not an indicator at all")
    assert len(at.error) == 1
    assert panels(at) == {}


def test_query_param_opens_the_page_on_that_indicator(local_mode):
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.query_params["ioc"] = "9.9.9.9"
    at.run()
    assert not at.exception
    assert at.text_input(key="lookup_text").value == "9.9.9.9"
    assert at.get("code")[0].value == "9.9.9.9"
    assert "Offline country & AS" in panels(at)


def test_lookup_keyless_internetdb_contribution_in_chart_and_ok_panel(keyless_upstream):
    keyless_upstream.expect_request("/internetdb/1.1.1.1").respond_with_json(IDB_ANSWER)
    at = lookup(open_app(), "1.1.1.1")
    shown = panels(at)
    assert shown["Shodan InternetDB"] == "ok"
    assert shown["VirusTotal"] == "skipped: privacy"  # keyed source: not in keyless mode
    spec = plotly_spec(at)
    bar = spec["data"][0]
    labels = spec["layout"]["yaxis"]["ticktext"]
    reason = "+30 Shodan InternetDB: tag 'compromised'"
    assert reason in labels
    assert bar["x"][labels.index(reason)] == 30
    assert bar["marker"]["color"][labels.index(reason)] == "#d62728"  # positive: red
    assert metric(at, "Score") == f"{min(100, round(sum(bar['x'])))} / 100"
    # the panel shows the fields InternetDB returned
    frames = [f.value for f in at.dataframe if list(f.value.columns) == ["field", "value"]]
    assert any(((frame["field"] == "ports") & (frame["value"] == "53, 80, 443")).any() for frame in frames)
    # the enrichment is kept: a rerun (e.g. expanding, switching nothing) asks nobody again
    asked = len([r for r, _ in keyless_upstream.log if r.path == "/internetdb/1.1.1.1"])
    assert asked == 1
    at.run()
    assert len([r for r, _ in keyless_upstream.log if r.path == "/internetdb/1.1.1.1"]) == asked
    assert panels(at)["Shodan InternetDB"] == "ok"


def test_switching_the_sidebar_mode_looks_up_again_under_the_new_mode(keyless_upstream, monkeypatch):
    monkeypatch.setenv("OTC_MODE", "local")
    keyless_upstream.expect_request("/internetdb/1.1.1.1").respond_with_json(IDB_ANSWER)
    at = lookup(open_app(), "1.1.1.1")
    assert panels(at)["Shodan InternetDB"] == "skipped: privacy"
    assert keyless_upstream.log == []  # local mode: the fake upstream saw nothing
    at.sidebar.radio(key="otc_mode_radio").set_value("keyless").run()
    assert panels(at)["Shodan InternetDB"] == "ok"
    assert [r.path for r, _ in keyless_upstream.log].count("/internetdb/1.1.1.1") == 1


def test_upstream_text_never_reaches_markdown_unescaped(keyless_upstream):
    hostile = ["![pixel](http://203.0.113.7/p.png)", "<img src=x onerror=alert(1)>", ":red[fake verdict]"]
    keyless_upstream.expect_request("/internetdb/1.1.1.1").respond_with_json(
        {**IDB_ANSWER, "hostnames": hostile, "tags": ["compromised", "<b>x</b>"]})
    at = lookup(open_app(), "1.1.1.1")
    for text in markdown_texts(at):
        for value in hostile + ["<b>x</b>"]:
            assert value not in text
    # ...but the analyst still sees the values, as plain table cells
    frames = [f.value for f in at.dataframe if list(f.value.columns) == ["field", "value"]]
    hostnames = [v for frame in frames for v in frame.loc[frame["field"] == "hostnames", "value"]]
    assert hostnames == [", ".join(hostile)]


@pytest.mark.parametrize(
    ("status", "body", "headers", "label"),
    [
        (429, '{"detail": "Rate limit exceeded"}', {"Retry-After": "3600"}, "rate limited"),
        (500, "oops", {}, "error"),
        (403, "denied", {}, "auth error"),
    ],
)
def test_lookup_failure_statuses_have_their_own_panel_label(keyless_upstream, status, body, headers, label):
    keyless_upstream.expect_request("/internetdb/8.8.4.4").respond_with_data(body, status=status, headers=headers)
    at = lookup(open_app(), "8.8.4.4")
    assert panels(at)["Shodan InternetDB"] == label
    # a failure is not evidence: with nothing else known the verdict is unknown, never benign
    assert [m.value for m in at.markdown if m.value.startswith("## ")] == ["## :gray[:material/help: UNKNOWN]"]


def test_missing_key_panel_says_where_to_get_one(monkeypatch, httpserver):
    monkeypatch.setenv("OTC_MODE", "all")
    for source in all_sources():
        if source.base_url:
            monkeypatch.setenv(source.url_setting, httpserver.url_for(f"/{source.name}"))
    # a hash: only the hash sources apply, and none of them has a key here
    at = lookup(open_app(), "44d88612fea8a8f36de82e1278abb02f")
    shown = panels(at)
    keyed = [s for s in all_sources() if s.needs_key and Kind.MD5 in s.kinds]
    assert keyed
    for source in keyed:
        assert shown[source.title] == "skipped: no key"
        if source.key_url:
            assert any(source.key_url in c.value and source.key_settings[0] in c.value for c in at.caption)
    asked = {request.path.split("/")[1] for request, _ in httpserver.log}
    assert asked.isdisjoint(s.name for s in keyed)


# -- Bulk ------------------------------------------------------------------------------------------------
BULK_CSV = (
    "indicator,comment\r\n"
    "8.8.8.8,resolver\r\n"
    "10.0.0.5,internal host\r\n"
    "8.8.8.8,again\r\n"
    "010.1.1.1,ambiguous\r\n"
    "1.1.1.1,global\r\n"
    ",empty\r\n"
).encode()


def upload(at: AppTest, data: bytes, name: str = "iocs.csv") -> AppTest:
    at.file_uploader(key="bulk_upload").upload(name, data, "text/csv")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_bulk_counts_before_running_and_local_preview(local_mode):
    at = upload(open_app("pages/bulk.py"), BULK_CSV)
    assert metric(at, "Encoding") == "UTF-8"
    assert metric(at, "Delimiter") == "comma"
    assert metric(at, "Header row") == "yes"
    assert at.selectbox[0].value == "indicator"
    assert metric(at, "Rows") == "6"
    assert metric(at, "Distinct indicators") == "3"
    assert metric(at, "Duplicate rows") == "1"
    assert metric(at, "Rejected") == "1"
    assert metric(at, "Empty cells") == "1"
    assert any("nothing leaves this machine" in s.value for s in at.success)
    assert "bulk_result" not in at.session_state  # nothing runs before the button


def test_bulk_shows_what_reading_detected_for_an_excel_utf16_file(local_mode):
    data = "indicator\tnote\r\nmünchen.de\tcafé\r\n8.8.8.8\tx\r\n".encode("utf-16")  # BOM + UTF-16 LE
    at = upload(open_app("pages/bulk.py"), data, name="excel export.txt")
    assert metric(at, "Encoding") == "UTF-16 LE (with BOM)"
    assert metric(at, "Delimiter") == "tab"
    assert metric(at, "Distinct indicators") == "2"


def test_bulk_egress_preview_counts_per_service_and_sends_nothing(keyless_upstream):
    at = upload(open_app("pages/bulk.py"), BULK_CSV)
    preview = table_with(at, "service", "indicators sent").value
    services = dict(zip(preview["service"], preview["indicators sent"]))
    # 8.8.8.8 and 1.1.1.1 are global; 10.0.0.5 is private and never offered to a third party
    assert services["Shodan InternetDB"] == 2
    assert services["RDAP"] == 2
    assert "VirusTotal" not in services  # needs a key: not in keyless mode
    assert preview.loc[preview["service"] == "Shodan InternetDB", "estimated requests"].item() == 2
    assert keyless_upstream.log == []  # the preview asks nobody


def test_bulk_run_results_table_downloads_and_no_rerun(keyless_upstream):
    keyless_upstream.expect_request("/internetdb/1.1.1.1").respond_with_json(IDB_ANSWER)
    keyless_upstream.expect_request("/internetdb/8.8.8.8").respond_with_json(
        {"detail": "No information available"}, status=404)
    at = upload(open_app("pages/bulk.py"), BULK_CSV)
    at.button(key="bulk_run").click().run()
    assert not at.exception
    progress = at.get("progress")
    assert len(progress) == 1 and progress[0].proto.value == 100
    assert progress[0].proto.text.startswith("Done in")
    counts = [m.value for m in at.markdown if m.value.startswith("Source answers so far:")]
    assert len(counts) == 1 and ":green-badge[:material/check_circle: ok " in counts[0]
    table = table_with(at, "otc_row_status").value
    assert len(table) == 6  # every input row, none dropped
    assert list(table["otc_row_status"]) == ["ok", "ok", "ok", "ambiguous", "ok", "empty"]
    assert list(table["comment"]) == ["resolver", "internal host", "again", "ambiguous", "global", "empty"]
    by_ip = table.set_index("otc_indicator")
    assert by_ip.loc["1.1.1.1", "internetdb_status"] == "ok"
    assert by_ip.loc["1.1.1.1", "otc_score"] >= 30
    assert by_ip.loc["10.0.0.5", "internetdb_status"] == "skipped_privacy"
    assert table.loc[2, "otc_message"] == "duplicate of row 1"
    config = json.loads(table_with(at, "otc_row_status").proto.columns)
    assert config["otc_score"]["type_config"]["type"] == "progress"
    assert config["otc_score"]["type_config"]["max_value"] == 100
    labels = {b.label for b in at.get("download_button")}
    assert labels == {"Download enriched CSV", "Download JSON"}
    result = at.session_state["bulk_result"]
    assert result["file_name"] == "iocs.csv"
    assert result["result"].to_csv().startswith("\ufeff".encode())
    # a download (or any rerun) shows the same result without asking again
    requests_before = len(keyless_upstream.log)
    at.run()
    assert len(keyless_upstream.log) == requests_before
    assert len(table_with(at, "otc_row_status").value) == 6


def test_bulk_map_shows_only_real_locations_MAP_01(local_mode):
    at = upload(open_app("pages/bulk.py"), b"ip\n10.0.0.5\n8.8.8.8\n192.0.2.1\n")
    at.button(key="bulk_run").click().run()
    located = table_with(at, "indicator", "location", "verdict").value
    assert list(located["indicator"]) == ["8.8.8.8"]  # private and documentation addresses have no pin
    assert len(at.get("component_instance")) == 1


def test_bulk_skipped_lookups_summary_API_02(local_mode):
    at = upload(open_app("pages/bulk.py"), b"ip\n8.8.8.8\n")
    at.button(key="bulk_run").click().run()
    summary = "\n".join(t.value for t in at.text)
    assert "local mode — not asked:" in summary
    assert "Shodan InternetDB" in summary


def test_bulk_column_can_be_changed(local_mode):
    data = b"host,ioc\nalpha,8.8.8.8\nbeta,1.1.1.1\ngamma,9.9.9.9\n"
    at = upload(open_app("pages/bulk.py"), data)
    assert at.selectbox[0].value == "ioc"
    assert metric(at, "Distinct indicators") == "3"
    at.selectbox[0].set_value("host").run()
    assert metric(at, "Rejected") == "3"
    assert metric(at, "Distinct indicators") == "0"


def test_bulk_unreadable_file_is_a_plain_error(local_mode):
    at = upload(open_app("pages/bulk.py"), b"PK\x03\x04" + b"\x00" * 40 + b"[Content_Types].xml xl/workbook.xml",
                name="iocs.csv")
    assert len(at.error) == 1
    assert "Excel" in at.error[0].value
    assert "bulk_run" not in {b.key for b in at.button}


# -- Sources -----------------------------------------------------------------------------------------
def test_sources_page_lists_every_source_and_never_a_key_value(local_mode, monkeypatch):
    dummy = "dummy-KEY-value-3f9a7c"
    monkeypatch.setenv("OTC_VIRUSTOTAL_KEY", dummy)
    monkeypatch.setenv("OTC_INTERNETDB_URL", "http://127.0.0.1:8081/idb")
    at = open_app("pages/sources.py")
    table = table_with(at, "title", "key_configured").value
    assert list(table["name"]) == [s.name for s in all_sources()]
    rows = table.set_index("name")
    assert rows.loc["virustotal", "key_configured"] == "yes"
    assert rows.loc["abuseipdb", "key_configured"] == "no"
    assert rows.loc["internetdb", "key_configured"] == "—"
    assert rows.loc["virustotal", "key"] == "needed"
    assert rows.loc["internetdb", "third_party"] == "yes"
    assert rows.loc["offline_geo", "third_party"] == "no (local)"
    assert rows.loc["internetdb", "allowed"] == "no"  # local mode
    assert rows.loc["offline_geo", "allowed"] == "yes"
    assert rows.loc["offline_geo", "data_date"] != "—"
    assert rows.loc["abuseipdb", "rate_limit"] == "1,000/day"
    assert dummy not in page_text(at)
    urls = table_with(at, "setting", "from").value.set_index("setting")
    assert urls.loc["OTC_INTERNETDB_URL", "value"] == "http://127.0.0.1:8081/idb"
    assert urls.loc["OTC_INTERNETDB_URL", "from"] == "override"


def test_sources_page_masks_a_password_in_a_url_override(local_mode, monkeypatch):
    monkeypatch.setenv("OTC_RDAP_URL", "http://analyst:hunter2pw@127.0.0.1:3128/rdap")
    at = open_app("pages/sources.py")
    urls = table_with(at, "setting", "from").value.set_index("setting")
    assert urls.loc["OTC_RDAP_URL", "value"] == "http://analyst:***@127.0.0.1:3128/rdap"
    assert "hunter2pw" not in page_text(at)


def test_sources_page_shows_and_exports_the_audit_log(local_mode):
    settings = load_settings()
    source = next(s for s in all_sources() if s.name == "internetdb")
    AuditLog.for_settings(settings).record(source, parse_indicator("1.1.1.1"), Status.OK, 1_700_000_000.0)
    at = open_app("pages/sources.py")
    audit = table_with(at, "source", "indicator", "status").value
    assert list(audit["source"]) == ["internetdb"]
    assert list(audit["indicator"]) == ["1.1.1.1"]
    assert list(audit["status"]) == ["ok"]
    assert [b.label for b in at.get("download_button")] == ["Export audit log (CSV)"]


# -- Sources: feeds ------------------------------------------------------------------------------------
ET_FILE = b"# compromised hosts\n185.220.101.78\n45.148.10.9\n10.0.0.1\n"


def test_feeds_update_disabled_in_local_mode_and_import_then_lookup_matches(local_mode):
    at = open_app("pages/sources.py")
    assert at.button(key="update_feeds").disabled
    assert any("local-only mode forbids" in c.value for c in at.caption)
    assert at.button(key="import_feeds").disabled  # nothing chosen yet
    at.file_uploader(key="feed_files").upload("et_compromised-ips.txt", ET_FILE, "text/plain")
    at.run()
    at.button(key="import_feeds").click().run()
    assert not at.exception, [e.value for e in at.exception]
    outcome = table_with(at, "name", "status", "entries", "message").value.set_index("name")
    assert outcome.loc["et_compromised", "status"] == "imported"
    assert outcome.loc["et_compromised", "entries"] == 2  # the private address is never evidence
    feeds = table_with(at, "title", "entries", "age").value.set_index("title")
    assert feeds.loc["ET compromised IPs", "entries"] == 2
    assert feeds.loc["ET compromised IPs", "age"] == "just now"
    # the snapshot answers a lookup with no network at all, and names the list in the score's reasons
    at.switch_page("pages/lookup.py").run()
    lookup(at, "185.220.101.78")
    feed_source = next(s for s in all_sources() if s.name == "feeds")
    assert panels(at)[feed_source.title] == "ok"
    labels = plotly_spec(at)["layout"]["yaxis"]["ticktext"]
    assert any("ET compromised IPs" in label for label in labels)


def test_feeds_update_button_downloads_from_the_configured_mirror(monkeypatch, httpserver):
    monkeypatch.setenv("OTC_MODE", "keyless")
    monkeypatch.setenv("OTC_FEEDS_URL", httpserver.url_for("/mirror"))
    httpserver.expect_request("/mirror/blockrules/compromised-ips.txt").respond_with_data(ET_FILE)
    at = open_app("pages/sources.py")
    assert not at.button(key="update_feeds").disabled
    at.button(key="update_feeds").click().run()
    assert not at.exception, [e.value for e in at.exception]
    outcome = table_with(at, "name", "status", "entries", "message").value.set_index("name")
    assert outcome.loc["et_compromised", "status"] == "updated"
    assert outcome.loc["et_compromised", "entries"] == 2
    assert (outcome.drop(index="et_compromised")["status"] == "failed").all()  # the mirror has nothing else
    assert {request.path for request, _ in httpserver.log} >= {"/mirror/blockrules/compromised-ips.txt"}


# -- page helpers ----------------------------------------------------------------------------------------
_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


@given(st_.text())
def test_md_escape_leaves_no_markdown_syntax_and_loses_no_text(text):
    escaped = md_escape(text)
    # every punctuation character is escaped, so no link, image, HTML, directive or emphasis can form
    shown, n = [], 0
    while n < len(escaped):
        if escaped[n] == "\\":
            assert escaped[n + 1] in _PUNCTUATION, escaped
            shown.append(escaped[n + 1])
            n += 2
            continue
        assert escaped[n] not in _PUNCTUATION, escaped
        shown.append(escaped[n])
        n += 1
    assert "".join(shown) == " ".join(text.split())  # what the analyst reads is the text itself


def test_md_escape_examples():
    assert md_escape("![x](http://203.0.113.7/p.png)") == "\\!\\[x\\]\\(http\\:\\/\\/203\\.0\\.113\\.7\\/p\\.png\\)"
    assert md_escape("a\nb  c") == "a b c"


def test_chart_escapes_plotly_html_and_keeps_repeated_reasons_apart():
    lines = (
        Contribution("otx", "pulses", 20.0, 20.0, '+20 OTX: pulse <a href="http://203.0.113.7">x</a>'),
        Contribution("otx", "pulses", 20.0, 20.0, '+20 OTX: pulse <a href="http://203.0.113.7">x</a>'),
        Contribution("greynoise", "riot", -25.0, -25.0, "−25 GreyNoise: RIOT known benign service"),
    )
    figure = contributions_figure(lines)
    bar = figure.data[0]
    assert list(bar.x) == [20.0, 20.0, -25.0]
    assert list(bar.marker.color) == [POSITIVE_COLOR, POSITIVE_COLOR, NEGATIVE_COLOR]
    ticks = list(figure.layout.yaxis.ticktext)
    assert ticks[0] == ticks[1] == '+20 OTX: pulse &lt;a href="http://203.0.113.7"&gt;x&lt;/a&gt;'
    assert list(figure.layout.yaxis.tickvals) == [0, 1, 2]
    assert contributions_figure(()) is None


@pytest.mark.parametrize(("seconds", "text"), [(5, "just now"), (125, "2 min ago"), (7300, "2 h ago"),
                                                (86400, "1 day ago"), (3 * 86400, "3 days ago")])
def test_format_age(seconds, text):
    assert format_age(seconds) == text


def test_shown_url_masks_only_the_password():
    assert shown_url("http://127.0.0.1:8080/idb") == "http://127.0.0.1:8080/idb"
    assert shown_url("https://u:secret@proxy.local:3128/x?y=1") == "https://u:***@proxy.local:3128/x?y=1"
