"""CSV in and out: whatever an analyst's spreadsheet tool saved -> a :class:`Table`; results -> safe CSV/JSON.

Reading (:func:`read_table`):

- encodings: UTF-8 with or without BOM, UTF-16 LE/BE with BOM (Excel "Unicode Text"), UTF-32 with BOM;
  a UTF-8 file with some Windows-1252 lines (rows pasted together from two tools) line by line;
  otherwise Windows-1252 (Excel's "CSV" on Western Windows), and charset-normalizer only for multi-byte
  encodings (Shift-JIS, GBK, Big5...) — on short single-byte files it guesses wrong more often than not;
- delimiter: comma, semicolon, tab or pipe, chosen by parsing a sample with each (quotes respected):
  the one that splits nearly every record, and consistently, wins; none -> a single-column list;
- header: the first row is a header unless one of its cells is itself an indicator; missing or
  duplicate names become ``column_N`` / ``name_2``; BOMs and stray quotes are stripped from names;
- ragged rows are padded (or get extra ``column_N`` columns), never dropped;
- a spreadsheet, archive or other binary file renamed ``.csv``, NUL bytes, an empty file, a header with
  no data, a quote never closed (which would swallow every later line into one cell), a cell over 131,072
  characters, or more rows or columns than Excel holds (``MAX_DATA_ROWS``, ``MAX_COLUMNS``) raise
  :class:`otc.errors.InputError` with a message for the analyst — so memory stays bounded by those limits.

Writing (:func:`to_csv_bytes`): UTF-8 with BOM (so Excel shows accents), every text cell quoted, and every
text cell beginning with ``= + - @``, TAB or CR prefixed with ``'`` so a spreadsheet shows it as text
instead of running it as a formula (CSV injection). Numbers (Python ``int``/``float``) are written as
numbers, unquoted, so a negative longitude stays a number. Indicator values never begin with those
characters, so they come out unchanged. Both writers (:func:`to_json_bytes` too) encode row by row, so
an export holds little more than its own bytes.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import numbers
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from otc.errors import InputError
from otc.model import Indicator, Rejection

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")  # order breaks exact ties
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "": "none (one column)"}
SNIFF_CHARS = 64 * 1024  # enough records to judge the delimiter, little enough to stay fast on big files
SAMPLE_ROWS = 500  # rows looked at when choosing the indicator column
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Bounds on what one upload may hold, so a hostile file gets a message instead of exhausting memory.
# Excel's own sheet limits: a file larger than a spreadsheet can open is not an analyst's IOC list.
MAX_DATA_ROWS = 1_048_575  # 1,048,576 rows per sheet, less the header
MAX_COLUMNS = 16_384
MAX_CELL_CHARS = csv.field_size_limit()  # the csv module's per-cell limit (131,072 characters)
NOTE_LIST_ITEMS = 8  # names listed in one note before it says "... and N more"

# Names an indicator column is usually given, most telling first (used to break ties).
PREFERRED_COLUMN_NAMES = (
    "indicator", "ioc", "iocs", "indicator_value", "ioc_value", "observable", "observable_value", "value",
    "artifact", "ip", "ip_address", "address", "domain", "hostname", "host", "url", "hash", "sha256", "sha1",
    "md5", "email",
)

# Multi-byte encodings charset-normalizer is trusted with when a file is not UTF-8.
_MULTIBYTE_ENCODINGS = {
    "cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213", "euc_jp", "euc_jis_2004", "iso2022_jp",
    "gb18030", "gbk", "gb2312", "hz", "big5", "big5hkscs", "cp950", "cp949", "euc_kr", "johab",
}
_ENCODING_TITLES = {
    "utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16-le": "UTF-16 LE", "utf-16-be": "UTF-16 BE",
    "utf-32-le": "UTF-32 LE", "utf-32-be": "UTF-32 BE", "cp1252": "Windows-1252",
}
_NAME_JUNK = "\ufeff\u200b\u200c\u200d\u2060\xa0 \t\r\n"
UNENCODABLE_AS_REPLACEMENT = "otc.replacement-character"


def _replacement_character(error: UnicodeError) -> tuple[bytes, int]:
    """UTF-8 encoding error handler: a lone surrogate (an upstream JSON string may carry ``"\\ud800"``)
    cannot be written as UTF-8; it becomes U+FFFD instead of failing the whole export. (Bytes, because
    the UTF-8 encoder accepts only ASCII text from a handler.)"""
    return "\ufffd".encode("utf-8") * (error.end - error.start), error.end  # type: ignore[attr-defined]


codecs.register_error(UNENCODABLE_AS_REPLACEMENT, _replacement_character)


@dataclass(frozen=True)
class Table:
    """A decoded, split table. Every row has exactly ``len(columns)`` cells, as text.

    ``encoding`` and ``delimiter`` are what was detected (``delimiter`` is ``""`` for a single-column
    list); ``has_header`` tells whether the first line named the columns (else they are ``column_1``...);
    ``notes`` say in plain words what reading had to work around.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    encoding: str
    delimiter: str
    has_header: bool
    notes: tuple[str, ...] = ()

    def column_index(self, name: str) -> int:
        try:
            return self.columns.index(name)
        except ValueError:
            raise InputError(
                f"There is no column named {_short(name)!r}. The columns are: {_listed(self.columns, 50)}"
            ) from None

    def column_values(self, name: str) -> list[str]:
        index = self.column_index(name)
        return [row[index] for row in self.rows]


# -- reading ------------------------------------------------------------------------------------------
def read_table(data: bytes, filename: str = "") -> Table:
    """Decode and split an uploaded file. Raises :class:`InputError` with a message for the analyst."""
    label = f"{filename}: " if filename else ""
    try:
        return _read_table(data)
    except InputError as exc:
        raise InputError(f"{label}{exc}") from None


def _read_table(data: bytes) -> Table:
    _reject_non_text(data)
    text, encoding, notes = decode_bytes(data)
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError("The file is empty")
    if "\x00" in text:
        raise InputError(_nul_message(text.count("\x00"), text[: text.index("\x00")].count("\n") + 1))
    _reject_binary_text(text)

    delimiter = detect_delimiter(text)
    records, blank_lines = _split_records(text, delimiter)
    if not records:
        raise InputError("The file is empty")
    if blank_lines:
        notes.append(f"{blank_lines} blank line(s) skipped")
    if delimiter:
        notes.append(f"delimiter: {DELIMITER_NAMES[delimiter]}")
    else:
        notes.append("no delimiter found: read as a single-column list")

    has_header = not _row_has_indicator(records[0])
    if has_header:
        header, body = records[0], records[1:]
        if not body:
            raise InputError(
                f"The file has a header row ({_listed([_short(clean_header_name(h)) for h in header], 6)}) "
                "but no data rows"
            )
    else:
        header, body = [], records
        notes.append("no header row (the first row is an indicator): columns named column_1, column_2, ...")
        if len(body) > MAX_DATA_ROWS:
            raise InputError(f"The file has more than {MAX_DATA_ROWS:,} rows (Excel's limit): split it into "
                             "smaller files")

    width = max([len(header)] + [len(r) for r in body])
    columns = _column_names(header, width, notes)
    short = sum(1 for r in body if len(r) < width)
    long_rows = sum(1 for r in body if len(r) > len(header)) if has_header else 0
    if has_header and long_rows:
        notes.append(f"{long_rows} row(s) have more cells than the header: extra columns "
                     f"{_listed(columns[len(header):])} added")
    if short:
        notes.append(f"{short} row(s) have fewer cells than the widest row: padded with empty cells")
    rows = tuple(tuple(r) + ("",) * (width - len(r)) for r in body)
    return Table(tuple(columns), rows, encoding, delimiter, has_header, tuple(notes))


def _reject_non_text(data: bytes) -> None:
    """Files that are not text at all, recognised by their first bytes."""
    if not data or not data.strip(b" \t\r\n\x0b\x0c") or data.strip() in (codecs.BOM_UTF8, b"\xff\xfe", b"\xfe\xff"):
        raise InputError("The file is empty")
    head = data[:4096]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):  # a ZIP: entry, empty, spanned
        if b"xl/" in data[:65536] or b"[Content_Types].xml" in head:
            raise InputError("This looks like an Excel workbook (.xlsx), not a CSV: open it in Excel and "
                             "save it as CSV UTF-8 (File > Save As > CSV UTF-8), then upload that file")
        if b"opendocument.spreadsheet" in head:
            raise InputError("This looks like an OpenDocument spreadsheet (.ods), not a CSV: save it as "
                             "CSV (UTF-8) and upload that file")
        raise InputError("This is a ZIP archive, not a CSV: extract it and upload the CSV inside")
    if head.startswith(b"\xd0\xcf\x11\xe0"):  # OLE2 compound file (full magic D0 CF 11 E0 A1 B1 1A E1)
        raise InputError("This looks like an old Excel workbook (.xls), not a CSV: open it in Excel and "
                         "save it as CSV UTF-8 (File > Save As > CSV UTF-8), then upload that file")
    if head.startswith(b"%PDF-"):
        raise InputError("This is a PDF document, not a CSV")
    if head.startswith((b"\x1f\x8b", b"\xfd7zXZ\x00", b"7z\xbc\xaf", b"Rar!\x1a\x07")) or (
        head.startswith(b"BZh") and head[4:10] == b"1AY&SY"
    ):
        raise InputError("This is a compressed archive, not a CSV: extract it and upload the CSV inside")
    stripped = head.lstrip(codecs.BOM_UTF8 + b" \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<table")):
        raise InputError("This is a web page (HTML), not a CSV — some tools save HTML with an .xls or .csv "
                         "name: open it in Excel and save it as CSV UTF-8")


def _reject_binary_text(text: str) -> None:
    sample = text[:SNIFF_CHARS]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n\x0c")
    if controls > max(2, len(sample) // 100):
        raise InputError("This does not look like a text file (it contains binary data): upload a CSV "
                         "saved as CSV UTF-8")


def decode_bytes(data: bytes) -> tuple[str, str, list[str]]:
    """``(text, encoding, notes)``. BOMs decide; then UTF-8; then Windows-1252 or a multi-byte guess."""
    notes: list[str] = []
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(encoding.replace("-sig", ""))
            except UnicodeDecodeError:
                raise InputError(
                    f"The file starts with a {_ENCODING_TITLES[encoding].replace(' with BOM', '')} marker but "
                    "its text is damaged: save it again as CSV UTF-8"
                ) from None
            return text, encoding, notes
    if b"\x00" in data:
        guessed = _bomless_utf16(data)
        if guessed is None:
            raise InputError(_nul_message(data.count(b"\x00"), data[: data.index(b"\x00")].count(b"\n") + 1))
        try:
            text = data.decode(guessed)
        except UnicodeDecodeError:
            raise InputError("The file looks like UTF-16 without a byte-order mark but does not decode: "
                             "save it as CSV UTF-8") from None
        notes.append(f"read as {_ENCODING_TITLES[guessed]} (no byte-order mark)")
        return text, guessed, notes
    try:
        return data.decode("utf-8"), "utf-8", notes
    except UnicodeDecodeError:
        pass
    mixed = _decode_mixed_utf8(data)
    if mixed is not None:
        text, fallback_lines = mixed
        lines = _listed([str(n) for n in fallback_lines])
        notes.append(f"mixed encodings: line(s) {lines} are not UTF-8 and were read as Windows-1252; "
                     "the rest as UTF-8")
        return text, "utf-8+cp1252", notes
    guess = _charset_guess(data)
    if guess is not None and guess[1] in _MULTIBYTE_ENCODINGS:
        notes.append(f"not UTF-8: read as {guess[1]} (detected)")
        return guess[0], guess[1], notes
    try:
        text = data.decode("cp1252")
        notes.append("not UTF-8: read as Windows-1252 (Excel's CSV on Western Windows)")
        return text, "cp1252", notes
    except UnicodeDecodeError:
        pass
    if guess is not None:
        notes.append(f"not UTF-8: read as {guess[1]} (detected)")
        return guess[0], guess[1], notes
    raise InputError("The file's text encoding could not be recognised: save it as CSV UTF-8 and upload again")


def _nul_message(count: int, line: int) -> str:
    return (f"The file contains NUL bytes ({count:,}, the first on line {line:,}), which a text CSV never has: "
            "it may be a spreadsheet, a binary file or a damaged export — save it as CSV UTF-8 and upload again")


def _decode_mixed_utf8(data: bytes) -> tuple[str, list[int]] | None:
    """A UTF-8 file with some lines in Windows-1252 (rows pasted together from two tools): each line in
    its own encoding, and the numbers of the Windows-1252 lines. ``None`` unless at least one non-ASCII
    line is valid UTF-8 and every other line is valid Windows-1252 — then reading the whole file as
    Windows-1252 would garble the UTF-8 lines ("münchen" -> "mÃ¼nchen")."""
    lines = data.split(b"\n")
    utf8_non_ascii = 0
    decoded: list[str] = []
    fallback: list[int] = []
    for number, line in enumerate(lines, start=1):
        try:
            decoded.append(line.decode("utf-8"))
            if not line.isascii():
                utf8_non_ascii += 1
        except UnicodeDecodeError:
            try:
                decoded.append(line.decode("cp1252"))
            except UnicodeDecodeError:
                return None
            fallback.append(number)
    if not utf8_non_ascii:
        return None
    return "\n".join(decoded), fallback


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM shows as a NUL in every other byte (for mostly-ASCII text)."""
    sample = data[:4096]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even_nul = sum(1 for i in range(0, pairs * 2, 2) if sample[i] == 0)
    odd_nul = sum(1 for i in range(1, pairs * 2, 2) if sample[i] == 0)
    if odd_nul >= 0.4 * pairs and even_nul <= 0.05 * pairs:
        return "utf-16-le"
    if even_nul >= 0.4 * pairs and odd_nul <= 0.05 * pairs:
        return "utf-16-be"
    return None


def _charset_guess(data: bytes) -> tuple[str, str] | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # optional: Windows-1252 still covers the common case
        return None
    best = from_bytes(data).best()
    if best is None:
        return None
    return str(best), best.encoding


def detect_delimiter(text: str) -> str:
    """Comma, semicolon, tab or pipe — or ``""`` for a single-column list.

    Each candidate splits a sample with the csv module (so delimiters inside quotes do not count). The
    winner splits the largest share of records into two or more cells (at least half of them), then has
    the most consistent cell count; csv.Sniffer is not used because it misreads short files and
    semicolon files with commas in quoted comments.
    """
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    best: tuple[float, float, int] | None = None
    chosen = ""
    for rank, delimiter in enumerate(CANDIDATE_DELIMITERS):
        if delimiter not in sample:
            continue
        try:
            records = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
                       if any(cell.strip() for cell in r)]
        except csv.Error:
            continue
        if not records:
            continue
        counts = [len(r) for r in records]
        split_share = sum(1 for c in counts if c >= 2) / len(counts)
        consistency = Counter(counts).most_common(1)[0][1] / len(counts)
        score = (split_share, consistency, -rank)
        if split_share >= 0.5 and (best is None or score > best):
            best, chosen = score, delimiter
    return chosen


def _split_records(text: str, delimiter: str) -> tuple[list[list[str]], int]:
    """All records, and how many blank lines were skipped. Raises :class:`InputError` for a file that
    would need more than the ``MAX_*`` bounds, or whose rows would silently merge into one cell."""
    if not delimiter:
        # One column: each line is one cell; quotes around a cell are still removed.
        delimiter = next((ch for ch in "\x1f\x1e\x1d\x1c" if ch not in text), "\x1f")
    records: list[list[str]] = []
    blank = 0
    end_of_previous = 0
    last_start = 1  # line where the last record began
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for record in reader:
            start, end_of_previous = end_of_previous + 1, reader.line_num
            if not record:
                blank += 1
                continue
            if len(record) > MAX_COLUMNS:
                raise InputError(
                    f"Line {reader.line_num:,} has {len(record):,} cells; at most {MAX_COLUMNS:,} columns are read "
                    "(as in Excel): a list of indicators should have one indicator per line"
                )
            if len(records) > MAX_DATA_ROWS:  # the header may be one more row
                raise InputError(f"The file has more than {MAX_DATA_ROWS:,} rows (Excel's limit): split it into "
                                 "smaller files")
            records.append(record)
            last_start = start
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise InputError(
                f"Line {reader.line_num:,} has a cell longer than {MAX_CELL_CHARS:,} characters, so the file is not "
                "read: no indicator is that long. Often a quote (\") that is never closed makes the rest of the "
                "file one cell — check that line, or that this is the right file"
            ) from None
        raise InputError(f"Line {reader.line_num:,} cannot be read as CSV ({exc}): save the file as CSV UTF-8") from None
    if records and end_of_previous > last_start and _ends_inside_quotes(text, last_start, delimiter):
        raise InputError(
            f"Line {last_start:,} opens a quote (\") that is never closed, so the {end_of_previous - last_start:,} "
            "line(s) after it would all be read as one cell: close or remove that quote and upload again"
        )
    return records, blank


def _ends_inside_quotes(text: str, start_line: int, delimiter: str) -> bool:
    """Does the record beginning at ``start_line`` run to the end of the file inside a quote?

    The lenient reader takes an unclosed quote as a cell that goes on to the end of the file, silently
    swallowing every line after it; the strict reader says "unexpected end of data" for exactly that.
    """
    tail = "".join(io.StringIO(text, newline="").readlines()[start_line - 1:])
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _listed(names: Sequence[str], limit: int = NOTE_LIST_ITEMS) -> str:
    """Names for a message, at most ``limit`` of them ("a, b, c and 1,204 more")."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit:,} more"


def _row_has_indicator(row: Sequence[str]) -> bool:
    from otc.indicators import parse_indicator

    for cell in row:
        if not cell.strip():
            continue
        outcome = parse_indicator(cell)
        if isinstance(outcome, Indicator) or (isinstance(outcome, Rejection) and outcome.status == "ambiguous"):
            return True
    return False


def clean_header_name(name: str) -> str:
    """A header cell as a column name: no BOM, zero-width or surrounding whitespace, no stray quotes."""
    name = name.strip(_NAME_JUNK)
    while len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'`":
        name = name[1:-1].strip(_NAME_JUNK)
    return name


def _column_names(header: Sequence[str], width: int, notes: list[str]) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    renamed: list[str] = []
    for position in range(width):
        original = clean_header_name(header[position]) if position < len(header) else ""
        name = original or f"column_{position + 1}"
        if name in taken:
            suffix = 2
            while f"{name}_{suffix}" in taken:
                suffix += 1
            renamed.append(f"{name!r} -> {name}_{suffix}")
            name = f"{name}_{suffix}"
        taken.add(name)
        names.append(name)
    if renamed:
        notes.append("duplicate column names renamed: " + ", ".join(renamed))
    return names


def detect_indicator_column(table: Table) -> str:
    """The column whose cells most often parse as indicators; on a tie, the one named like one."""
    from otc.indicators import parse_indicator

    sample = table.rows[:SAMPLE_ROWS]
    cache: dict[str, bool] = {}

    def is_indicator(cell: str) -> bool:
        if cell not in cache:
            cache[cell] = bool(cell.strip()) and isinstance(parse_indicator(cell), Indicator)
        return cache[cell]

    def name_rank(name: str) -> int:
        key = re.sub(r"[\s\-./]+", "_", name.strip().lower())
        return PREFERRED_COLUMN_NAMES.index(key) if key in PREFERRED_COLUMN_NAMES else len(PREFERRED_COLUMN_NAMES)

    scored = []
    for position, name in enumerate(table.columns):
        hits = sum(1 for row in sample if is_indicator(row[position]))
        scored.append((-hits, name_rank(name), position, name))
    return min(scored)[3]


# -- writing ------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def cell_text(value: Any) -> str:
    """A value as the text of one cell: lists joined with ", ", mappings as JSON, ``None`` as empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        if isinstance(value, float) and math.isnan(value):
            return ""
        return str(value)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return ", ".join(cell_text(v) for v in items)
    return str(value)


def neutralize_cell(value: Any) -> str:
    """The cell's text, with ``'`` in front when a spreadsheet would read it as a formula.

    Numbers are left alone (``-3.5`` is a number, not a formula); any text — including text an upstream
    service sent, like an RDAP name ``=1+1`` — that begins with ``= + - @``, TAB or CR is prefixed.
    """
    text = cell_text(value)
    if not _is_number(value) and text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def to_csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> bytes:
    """A CSV for spreadsheets: UTF-8 with BOM, CRLF, text quoted and neutralized, numbers as numbers.
    A lone surrogate, which UTF-8 cannot hold, is written as U+FFFD.

    ``rows`` are sequences in ``columns`` order or mappings keyed by column name. Rows are encoded as they
    are written (no whole-file text copy), so a 100,000-row export holds little more than its bytes.
    """
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8-sig", errors=UNENCODABLE_AS_REPLACEMENT, newline="",
                            write_through=True)
    writer = csv.writer(text, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    writer.writerow([neutralize_cell(c) for c in columns])
    for row in rows:
        values = [row.get(c) for c in columns] if isinstance(row, Mapping) else list(row)
        writer.writerow([_csv_value(v) for v in values])
    text.flush()
    data = buffer.getvalue()
    text.detach()
    return data


def _csv_value(value: Any) -> Any:
    if _is_number(value) and not (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return int(value) if isinstance(value, numbers.Integral) else float(value)
    return neutralize_cell(value)


def to_json_bytes(records: Iterable[Mapping[str, Any]]) -> bytes:
    """Records as a UTF-8 JSON array, one record per line (no neutralization: JSON is not opened by
    spreadsheets). Written record by record, so no second copy of every record is ever held. A record
    holding a lone surrogate (which UTF-8 cannot hold) is written with ``\\u`` escapes, so it still
    parses back to exactly the same value."""
    buffer = io.BytesIO()
    buffer.write(b"[")
    separator = b"\n"
    for record in records:
        buffer.write(separator)
        safe = _json_safe(dict(record))
        try:
            buffer.write(json.dumps(safe, ensure_ascii=False, default=str).encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate from upstream: \\u-escapes keep it exactly
            buffer.write(json.dumps(safe, ensure_ascii=True, default=str).encode("ascii"))
        separator = b",\n"
    buffer.write(b"]\n" if separator == b"\n" else b"\n]\n")
    return buffer.getvalue()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
