"""Bulk runs: every input row comes out, duplicates share one lookup, exports stay safe.

The sources here are tiny fakes defined in this file (no network): what is tested is the row keeping,
the columns and the summary, not any real service.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import threading
from typing import Any, Mapping

import pytest

from conftest import FIXTURES_DIR
from otc.bulk import OTC_COLUMNS, BulkProgress, distinct_indicators, parse_rows, run_bulk
from otc.config import Mode, Settings
from otc.csvio import Table, read_table
from otc.engine import Enricher
from otc.errors import InputError
from otc.model import Contribution, HASH_KINDS, IP_KINDS, Indicator, Kind, Location, SourceResult, Status
from otc.sources.base import Source, SourceContext

EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f"
UNKNOWN_SHA256 = "a" * 64
TEST_MD5 = "098f6bcd4621d373cade4e832627b4f6"


class FakeHashReputation(Source):
    """Knows the two EICAR hashes; answers not_found for anything else. Counts its lookups."""

    name = "fakerep"
    title = "Fake Reputation"
    kinds = HASH_KINDS
    third_party = False
    known = {EICAR_SHA256: 62, EICAR_MD5: 60}

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        with self.lock:
            self.asked.append(indicator.value)
        engines = self.known.get(indicator.value)
        if engines is None:
            return self.result(Status.NOT_FOUND, message="not found in Fake Reputation")
        return self.result(Status.OK, {"malicious": engines, "names": ["EICAR-Test-File", "Eicar"],
                                       "threat_label": "=1+1"})

    def score(self, fields: Mapping[str, Any], weights) -> list[Contribution]:
        return [Contribution(self.name, "engines", 80.0, 80.0, f"+80 Fake Reputation: {fields['malicious']} engines")]


class FakeGeo(Source):
    """Puts every IP at a fixed spot with a negative longitude; says a registrant name an attacker chose."""

    name = "fakegeo"
    title = "Fake Geo"
    kinds = IP_KINDS
    third_party = False

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        return self.result(Status.OK, {"country": "US", "registrant": "=1+1", "asn": 15169},
                           location=Location(37.751, -97.822, "United States", approximate=True))


class FakeQuota(Source):
    """A third-party source whose quota is spent."""

    name = "fakequota"
    title = "Fake Quota"
    kinds = HASH_KINDS | IP_KINDS
    third_party = True

    def lookup(self, indicator: Indicator, ctx: SourceContext) -> SourceResult:
        return self.result(Status.RATE_LIMITED, message="quota exceeded — not checked")


def make_enricher(*sources: Source, mode: Mode = Mode.LOCAL) -> Enricher:
    return Enricher(Settings(mode=mode), sources=list(sources))


def table_of(column: str, values: list[str], extra: str | None = None) -> Table:
    columns = (column,) if extra is None else (column, extra)
    rows = tuple((v,) if extra is None else (v, f"note {n}") for n, v in enumerate(values, start=1))
    return Table(columns, rows, "utf-8", ",", True)


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# -- PARSE-04: duplicates ------------------------------------------------------------------------------
@pytest.mark.parametrize("cells", [[TEST_MD5, TEST_MD5.upper()]], ids=["PARSE-04-hash-double-hashed"])
def test_PARSE_04_hash_cases_dedupe_to_one_lookup_and_two_rows(cells):
    source = FakeHashReputation()
    source.known = {TEST_MD5: 3}
    table = table_of("md5", cells)

    parsed = parse_rows(table, "md5")
    assert [p.outcome.kind for p in parsed] == [Kind.MD5, Kind.MD5]
    assert [p.outcome.value for p in parsed] == [TEST_MD5, TEST_MD5]
    assert [p.duplicate_of for p in parsed] == [None, 1]
    assert distinct_indicators(parsed) == [parsed[0].outcome]

    result = run_bulk(table, "md5", make_enricher(source))
    assert source.asked == [TEST_MD5]  # one lookup, with the lower-case hash
    assert len(result.enrichments) == 1
    assert [r["md5"] for r in result.records] == [TEST_MD5, TEST_MD5.upper()]  # the md5 column equals the input
    assert [r["otc_indicator"] for r in result.records] == [TEST_MD5, TEST_MD5]
    assert [r["otc_row_status"] for r in result.records] == ["ok", "ok"]
    assert [r["otc_message"] for r in result.records] == [None, "duplicate of row 1"]
    assert [r["otc_duplicate_of"] for r in result.records] == [None, 1]
    assert [r["fakerep_malicious"] for r in result.records] == [3, 3]  # the duplicate shares the enrichment
    assert result.summary["rows"] == 2
    assert result.summary["distinct_indicators"] == 1
    assert result.summary["duplicates"] == 1


# -- API-01: a not-found indicator keeps its row --------------------------------------------------------
@pytest.mark.parametrize("hashes", [[EICAR_SHA256, UNKNOWN_SHA256, EICAR_MD5]], ids=["API-01-unknown-indicator-in-batch"])
def test_API_01_three_rows_kept_when_one_is_not_found(hashes):
    source = FakeHashReputation()
    table = table_of("hash", hashes, extra="comment")
    result = run_bulk(table, "hash", make_enricher(source))

    assert sorted(source.asked) == sorted([EICAR_SHA256, UNKNOWN_SHA256, EICAR_MD5])
    assert [r["hash"] for r in result.records] == [EICAR_SHA256, UNKNOWN_SHA256, EICAR_MD5]
    assert [r["comment"] for r in result.records] == ["note 1", "note 2", "note 3"]
    assert [r["otc_row_status"] for r in result.records] == ["ok", "ok", "ok"]
    assert [r["fakerep_status"] for r in result.records] == ["ok", "not_found", "ok"]
    assert result.records[1]["fakerep_message"] == "not found in Fake Reputation"
    assert result.records[1]["otc_verdict"] == "unknown"  # not clean, not an error
    assert result.records[1]["otc_score"] == 0
    assert [r["otc_verdict"] for r in result.records[::2]] == ["malicious", "malicious"]
    assert result.records[0]["otc_reasons"] == "+80 Fake Reputation: 62 engines"
    assert [r["fakerep_malicious"] for r in result.records] == [62, None, 60]
    assert result.records[0]["fakerep_names"] == "EICAR-Test-File, Eicar"  # lists joined with ", "
    assert result.summary["source_status"]["fakerep"] == {"ok": 2, "not_found": 1}
    assert result.summary["verdicts"] == {"malicious": 2, "unknown": 1}


# -- rejected rows ----------------------------------------------------------------------------------------
def test_rejected_and_empty_rows_are_kept_with_their_reason():
    table = table_of("indicator", [EICAR_MD5, "not an indicator!", "", "   "], extra="comment")
    result = run_bulk(table, "indicator", make_enricher(FakeHashReputation()))
    assert len(result.records) == 4
    assert [r["otc_row_status"] for r in result.records] == ["ok", "invalid", "empty", "empty"]
    assert result.records[1]["otc_message"]  # the parser's reason, for the analyst
    assert result.records[1]["fakerep_status"] is None  # never looked up
    assert result.records[1]["otc_verdict"] is None
    assert [r["comment"] for r in result.records] == ["note 1", "note 2", "note 3", "note 4"]
    assert result.summary["row_status"] == {"ok": 1, "empty": 2, "invalid": 1}


def test_ambiguous_row_shows_both_readings_and_is_not_looked_up():
    geo = FakeGeo()
    table = table_of("indicator", ["010.1.1.1", "8.8.8.8"])
    result = run_bulk(table, "indicator", make_enricher(geo))
    row = result.records[0]
    assert row["otc_row_status"] == "ambiguous"
    assert "8.1.1.1" in row["otc_message"] and "10.1.1.1" in row["otc_message"]
    assert row["fakegeo_status"] is None
    assert list(result.enrichments) == [("ipv4", "8.8.8.8")]


@pytest.mark.parametrize("fixture", ["excel_western_cp1252.csv", "excel_unicode_text.txt"],
                         ids=["CSV-02-cp1252-idn-lookup", "CSV-02-utf16-idn-lookup"])
def test_CSV_02_idn_from_excel_files_is_looked_up_as_a_label(fixture):
    table = read_table((FIXTURES_DIR / "csv" / fixture).read_bytes())
    parsed = parse_rows(table, "indicator")
    assert parsed[0].cell == "münchen.de"
    assert parsed[0].outcome.kind is Kind.DOMAIN
    assert parsed[0].outcome.value == "xn--mnchen-3ya.de"
    assert parsed[0].outcome.display == "münchen.de"


# -- columns ------------------------------------------------------------------------------------------------
def test_columns_are_original_then_otc_then_per_source():
    table = table_of("ip", ["8.8.8.8"], extra="comment")
    result = run_bulk(table, "ip", make_enricher(FakeGeo(), FakeHashReputation()))
    assert result.columns == ["ip", "comment", *OTC_COLUMNS, "fakegeo_status", "fakegeo_message", "fakegeo_country",
                              "fakegeo_registrant", "fakegeo_asn", "fakerep_status", "fakerep_message"]
    row = result.records[0]
    assert list(row) == result.columns
    assert row["otc_kind"] == "ipv4" and row["otc_scope"] == "global"
    assert (row["otc_latitude"], row["otc_longitude"], row["otc_location"]) == (37.751, -97.822, "United States")
    assert row["otc_location_approximate"] is True
    assert row["fakegeo_asn"] == 15169
    assert row["fakerep_status"] == "not_applicable"
    assert row["fakerep_message"] is None  # "does not handle ipv4" on every row is noise
    assert result.map_points() == [{
        "indicator": "8.8.8.8", "kind": "ipv4", "latitude": 37.751, "longitude": -97.822, "label": "United States",
        "approximate": True, "score": 0, "verdict": "unknown",
    }]


def test_input_column_named_like_an_otc_column_is_renamed_and_noted():
    table = Table(("indicator", "otc_score", "fakegeo_status"), (("8.8.8.8", "99", "mine"),), "utf-8", ",", True)
    result = run_bulk(table, "indicator", make_enricher(FakeGeo()))
    row = result.records[0]
    assert row["otc_score_input"] == "99"
    assert row["fakegeo_status_input"] == "mine"
    assert row["otc_score"] == 0
    assert row["fakegeo_status"] == "ok"
    assert result.columns[:3] == ["indicator", "otc_score_input", "fakegeo_status_input"]
    assert any("'otc_score' renamed 'otc_score_input'" in note for note in result.summary["notes"])


def test_unknown_column_is_an_input_error_naming_the_columns():
    with pytest.raises(InputError, match="no column named 'ioc'. The columns are: indicator, comment"):
        run_bulk(table_of("indicator", ["8.8.8.8"], extra="comment"), "ioc", make_enricher(FakeGeo()))


# -- CSV-05 through a whole run ------------------------------------------------------------------------------
@pytest.mark.parametrize("cells", [["8.8.8.8", "=1+1", EICAR_MD5]], ids=["CSV-05-upstream-rdap-name"])
def test_CSV_05_upstream_text_is_neutralized_in_the_export_and_numbers_stay_numbers(cells):
    table = table_of("indicator", cells)
    result = run_bulk(table, "indicator", make_enricher(FakeGeo(), FakeHashReputation()))
    rows = csv_rows(result.to_csv())
    assert rows[0]["indicator"] == "8.8.8.8"  # indicator values unchanged
    assert rows[0]["otc_indicator"] == "8.8.8.8"
    assert rows[0]["fakegeo_registrant"] == "'=1+1"  # an RDAP-like name from upstream
    assert rows[1]["indicator"] == "'=1+1"  # the input cell itself
    assert rows[2]["fakerep_threat_label"] == "'=1+1"
    assert rows[2]["otc_indicator"] == EICAR_MD5
    lines = result.to_csv().decode("utf-8-sig").split("\r\n")
    first = next(csv.reader([lines[1]]))
    assert first[result.columns.index("otc_longitude")] == "-97.822"
    assert ",-97.822," in lines[1]  # unquoted: a number, not text
    assert ",0," in lines[1]  # otc_score


def test_json_export_and_dataframe():
    table = table_of("indicator", ["8.8.8.8", "bogus!"])
    result = run_bulk(table, "indicator", make_enricher(FakeGeo()))
    records = json.loads(result.to_json())
    assert [r["otc_row_status"] for r in records] == ["ok", "invalid"]
    assert records[0]["fakegeo_registrant"] == "=1+1"  # JSON is not a spreadsheet: no prefix
    assert records[1]["otc_score"] is None
    frame = result.dataframe()
    assert list(frame.columns) == result.columns
    assert frame.shape == (2, len(result.columns))
    assert frame["otc_score"].iloc[0] == 0


# -- progress, summary, stopping ----------------------------------------------------------------------
def test_progress_reports_every_distinct_indicator():
    events: list[BulkProgress] = []
    table = table_of("hash", [EICAR_SHA256, UNKNOWN_SHA256, EICAR_MD5, EICAR_MD5.upper()])
    run_bulk(table, "hash", make_enricher(FakeHashReputation()), on_progress=events.append)
    assert [(e.done, e.total) for e in events] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert events[0].eta_seconds is None
    assert events[-1].eta_seconds == 0.0
    assert events[-1].status_counts == {"ok": 2, "not_found": 1}


def test_summary_lists_lookups_that_were_not_checked():
    table = table_of("hash", [EICAR_SHA256, EICAR_MD5, "8.8.8.8"])
    result = run_bulk(table, "hash", make_enricher(FakeQuota(), mode=Mode.ALL))
    assert result.summary["source_status"]["fakequota"] == {"rate_limited": 3}
    assert result.summary["skipped"] == ["Fake Quota: 3 rate_limited — not checked (quota exceeded — not checked)"]
    assert [r["fakequota_message"] for r in result.records] == ["quota exceeded — not checked"] * 3
    assert [r["otc_verdict"] for r in result.records] == ["unknown"] * 3  # never a 0 taken for clean


def test_summary_groups_sources_held_back_by_local_mode():
    table = table_of("hash", [EICAR_SHA256, "8.8.8.8"])
    result = run_bulk(table, "hash", make_enricher(FakeQuota(), FakeHashReputation(), mode=Mode.LOCAL))
    assert result.summary["skipped"] == ["local mode — not asked: Fake Quota"]
    assert [r["fakequota_status"] for r in result.records] == ["skipped_privacy", "skipped_privacy"]
    assert result.summary["mode"] == "local"


def test_stop_leaves_unfinished_rows_marked_not_checked():
    stop = threading.Event()

    def on_progress(progress: BulkProgress) -> None:
        if progress.done == 1:
            stop.set()

    table = table_of("hash", [EICAR_SHA256, UNKNOWN_SHA256, EICAR_MD5])
    result = run_bulk(table, "hash", make_enricher(FakeHashReputation()), on_progress=on_progress, stop=stop)
    statuses = [r["otc_row_status"] for r in result.records]
    assert len(statuses) == 3
    assert statuses.count("ok") == 1 and statuses.count("not_checked") == 2
    assert result.summary["stopped"] is True
    unchecked = [r for r in result.records if r["otc_row_status"] == "not_checked"]
    assert all("stopped before this indicator was checked" in r["otc_message"] for r in unchecked)


def test_a_table_with_no_valid_indicator_still_gives_every_row():
    source = FakeHashReputation()
    table = table_of("indicator", ["", "nope"])
    result = run_bulk(table, "indicator", make_enricher(source))
    assert [r["otc_row_status"] for r in result.records] == ["empty", "invalid"]
    assert source.asked == []
    assert result.summary["distinct_indicators"] == 0


def test_utf16_upload_end_to_end_keeps_accents_in_the_export():
    table = read_table(codecs.BOM_UTF16_LE + "indicator\tcomment\r\n8.8.8.8\tgrün\r\n".encode("utf-16-le"))
    result = run_bulk(table, "indicator", make_enricher(FakeGeo()))
    assert csv_rows(result.to_csv())[0]["comment"] == "grün"
