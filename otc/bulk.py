"""A bulk run: a :class:`~otc.csvio.Table` in, one enriched output row per input row out — none dropped.

Each cell of the chosen column is parsed; distinct valid indicators (by ``Indicator.key``) are enriched
once; every input row then gets its original cells followed by these columns (names are stable):

============================  ===================================================================
``otc_row_status``            ``ok`` (an indicator), ``invalid``, ``ambiguous``, ``empty``, or
                              ``not_checked`` (the run was stopped before its indicator finished)
``otc_message``               why a row was rejected (ambiguous: the possible readings), or
                              "duplicate of row N"
``otc_duplicate_of``          the data row number (1 = first row after the header) whose indicator
                              this row repeats; it shares that row's enrichment
``otc_kind``                  ipv4, ipv6, cidr, domain, url, email, md5, sha1, sha256, asn
``otc_indicator``             the normalized value that was looked up
``otc_display``               the form shown to analysts (Unicode domain names)
``otc_port``                  a port given with the indicator
``otc_notes``                 what normalization changed ("; "-separated)
``otc_scope``                 global, private, shared, documentation, loopback, ... (only global
                              indicators are ever sent to third parties)
``otc_score``                 0-100, the sum of the contributions (clamped)
``otc_verdict``               malicious, suspicious, unknown, likely benign
``otc_verdict_reason``        one line: why that verdict
``otc_reasons``               every contribution's reason, joined with " | "
``otc_latitude``,             the most precise location a source gave
``otc_longitude``,
``otc_location``,
``otc_location_approximate``  true for a country-level centroid
``<source>_status``           that source's status (ok, not_found, skipped_privacy, rate_limited, ...)
``<source>_message``          its explanation when it did not answer with data
``<source>_<field>``          each field the source returned (lists joined with ", ")
============================  ===================================================================

An input column whose name clashes with one of these gets the suffix ``_input`` (noted in the summary).
Row numbers count data rows from 1; the header is not a row.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from otc.csvio import Table, cell_text, to_csv_bytes, to_json_bytes
from otc.config import Mode
from otc.model import Enrichment, Indicator, Rejection, SourceResult, Status

if TYPE_CHECKING:
    import pandas

    from otc.engine import Enricher, ProgressEvent

OTC_COLUMNS = (
    "otc_row_status", "otc_message", "otc_duplicate_of", "otc_kind", "otc_indicator", "otc_display",
    "otc_port", "otc_notes", "otc_scope", "otc_score", "otc_verdict", "otc_verdict_reason", "otc_reasons",
    "otc_latitude", "otc_longitude", "otc_location", "otc_location_approximate",
)
ENGINE_BATCH = 2000  # distinct indicators handed to the engine per call (it queues all their lookups at once)
ROW_OK = "ok"
ROW_NOT_CHECKED = "not_checked"
# Statuses that mean the source did not check the indicator (for the "skipped lookups" summary).
NOT_CHECKED_STATUSES = (
    Status.SKIPPED_NO_KEY, Status.SKIPPED_PRIVACY, Status.RATE_LIMITED, Status.TIMEOUT, Status.AUTH_ERROR,
    Status.ERROR,
)


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One input row: its cells, the chosen cell, and what that cell is."""

    row_number: int  # 1 = first data row
    original: tuple[str, ...]
    cell: str
    outcome: Indicator | Rejection
    duplicate_of: int | None  # row number of the first row with the same indicator


@dataclass(frozen=True)
class BulkProgress:
    done: int  # distinct indicators finished
    total: int  # distinct indicators in the run
    status_counts: Mapping[str, int]  # source statuses so far ("ok": 120, "rate_limited": 30, ...)
    eta_seconds: float | None  # None until the first indicator is done


def parse_rows(table: Table, column: str) -> list[ParsedRow]:
    """Parse the chosen column of every row; later rows with an already seen indicator point at the first."""
    from otc.indicators import parse_indicator

    index = table.column_index(column)
    first_row: dict[tuple[str, str], int] = {}
    parsed_cells: dict[str, Indicator | Rejection] = {}
    parsed: list[ParsedRow] = []
    for number, row in enumerate(table.rows, start=1):
        cell = row[index]
        outcome = parsed_cells.get(cell)
        if outcome is None:
            outcome = parsed_cells[cell] = parse_indicator(cell)
        duplicate_of = None
        if isinstance(outcome, Indicator):
            duplicate_of = first_row.setdefault(outcome.key, number)
            if duplicate_of == number:
                duplicate_of = None
        parsed.append(ParsedRow(number, row, cell, outcome, duplicate_of))
    return parsed


def distinct_indicators(parsed: Sequence[ParsedRow]) -> list[Indicator]:
    """The indicators a run looks up, once each, in row order (e.g. for ``Enricher.egress_plan``)."""
    return [p.outcome for p in parsed if isinstance(p.outcome, Indicator) and p.duplicate_of is None]


def run_bulk(
    table: Table,
    column: str,
    enricher: "Enricher",
    on_progress: Callable[[BulkProgress], None] | None = None,
    stop: threading.Event | None = None,
    *,
    parsed: Sequence[ParsedRow] | None = None,
) -> "BulkResult":
    """Enrich the distinct valid indicators of ``column`` and build one output row per input row.

    ``on_progress`` is called once before the first lookup (done=0) and after each indicator. Setting
    ``stop`` ends the run early: rows whose indicator was not finished get ``not_checked``. ``parsed`` is
    ``parse_rows(table, column)`` when the caller already has it (the Bulk page shows counts before the
    run): passing it avoids a second parse and a second copy of every row.

    Memory stays bounded on large uploads: indicators go to the engine ``ENGINE_BATCH`` at a time (the
    engine queues every lookup of a call up front), and each kept enrichment drops the raw upstream
    responses and shares identical "did not run" results (see :func:`_kept_enrichment`). The engine's
    circuit breaker lives for one call, so a source that stops answering is probed again (up to its
    threshold) once per batch.
    """
    started = time.monotonic()
    if parsed is None:
        parsed = parse_rows(table, column)
    else:
        table.column_index(column)  # an unknown column is an InputError either way
        if len(parsed) != len(table.rows):
            raise ValueError("parsed rows do not belong to this table")
    distinct = distinct_indicators(parsed)
    total = len(distinct)
    if on_progress is not None:
        on_progress(BulkProgress(0, total, {}, None))

    enrichments: dict[tuple[str, str], Enrichment] = {}
    shared_results: dict[tuple, SourceResult] = {}
    finished_before = 0  # indicators finished in earlier batches
    counts_before: Counter = Counter()  # source statuses of earlier batches
    batch_counts: Counter = Counter()

    def forward(event: "ProgressEvent") -> None:
        nonlocal batch_counts
        batch_counts = event.status_counts
        if on_progress is None:
            return
        done = finished_before + event.done
        elapsed = time.monotonic() - started
        eta = elapsed / done * (total - done) if done else None
        on_progress(BulkProgress(done, total, dict(counts_before + event.status_counts), eta))

    stopped = False
    for start in range(0, total, ENGINE_BATCH):
        if stop is not None and stop.is_set():
            stopped = True
            break
        batch = distinct[start:start + ENGINE_BATCH]
        batch_counts = Counter()
        stream = enricher.enrich_many(batch, on_progress=forward)
        try:
            for enrichment in stream:
                enrichments[enrichment.indicator.key] = _kept_enrichment(enrichment, shared_results)
                if stop is not None and stop.is_set():
                    stopped = True
                    break
        finally:
            stream.close()  # cancels lookups not yet started
        if stopped:
            break
        finished_before += len(batch)
        counts_before += batch_counts
    return BulkResult.build(
        table, column, parsed, enrichments, [s for s in enricher.sources],
        elapsed=time.monotonic() - started, mode=str(enricher.settings.mode), stopped=stopped,
    )


def _kept_enrichment(enrichment: Enrichment, shared: dict[tuple, SourceResult]) -> Enrichment:
    """The enrichment as a bulk result keeps it: without raw upstream responses, and with one shared
    object for each distinct "did not run" result.

    Why: a 100,000-row run holds every enrichment until the export. Raw bodies (an RDAP or VirusTotal
    answer is tens of KB) are used only by the Lookup page's raw panel, and in local-only mode most
    results are identical ``skipped_privacy`` / ``not_applicable`` lines (no fields, no timing), which
    would otherwise be one object per source per indicator.
    """
    results = []
    for result in enrichment.results:
        if result.raw is not None:
            result = replace(result, raw=None)
        if not (result.fields or result.contributions or result.location is not None
                or result.latency_ms is not None or result.fetched_at is not None):
            key = (result.source, result.status, result.message, result.cached, result.data_date)
            result = shared.setdefault(key, result)
        results.append(result)
    return replace(enrichment, results=tuple(results))


def _flat(value: Any) -> Any:
    """A field value for one cell: scalars kept (numbers stay numbers), lists joined with ", "."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return cell_text(value)


class BulkRecords(Sequence[dict[str, Any]]):
    """The output rows, one per input row: each is handed out as a dict keyed by column name.

    Held as one tuple per row in ``columns`` order, because a dict per row costs three times as much and a
    100,000-row run keeps them all until the export. Read-only: a handed-out dict is a fresh copy.
    Compares equal to a list of the same dicts.
    """

    __slots__ = ("columns", "rows")

    def __init__(self, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        self.columns = tuple(columns)
        self.rows = rows  # tuples in ``columns`` order (the CSV export writes them as they are)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [dict(zip(self.columns, row)) for row in self.rows[index]]
        return dict(zip(self.columns, self.rows[index]))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        columns = self.columns
        for row in self.rows:
            yield dict(zip(columns, row))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BulkRecords):
            return self.columns == other.columns and self.rows == other.rows
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(mine == theirs for mine, theirs in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<BulkRecords: {len(self.rows)} rows x {len(self.columns)} columns>"


@dataclass(frozen=True)
class BulkResult:
    """The output of a run: ``records`` (one per input row) under ``columns``, a ``summary``, and the
    ``enrichments`` by indicator key (for the map and the per-indicator panels; without raw upstream
    responses — the Lookup page shows those)."""

    columns: list[str]
    records: BulkRecords
    summary: dict[str, Any]
    enrichments: dict[tuple[str, str], Enrichment]
    parsed: list[ParsedRow] = field(default_factory=list)

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        table: Table,
        column: str,
        parsed: Sequence[ParsedRow],
        enrichments: Mapping[tuple[str, str], Enrichment],
        sources: Sequence[Any],
        *,
        elapsed: float = 0.0,
        mode: str = "",
        stopped: bool = False,
    ) -> "BulkResult":
        source_columns, field_columns = _source_columns(parsed, enrichments, sources)
        output_names = set(OTC_COLUMNS) | set(source_columns)
        notes = list(table.notes)
        input_columns: list[str] = []
        for name in table.columns:
            new = name
            while new in output_names or new in input_columns:
                new = f"{new}_input"
            if new != name:
                notes.append(f"input column {name!r} renamed {new!r}: the name is an otc output column")
            input_columns.append(new)

        width = len(input_columns)
        rows: list[tuple[Any, ...]] = []
        row_status: Counter = Counter()
        for row in parsed:
            # Values in column order: the input cells, the otc_* cells, then per source (the order of
            # _source_columns) its status, message and fields.
            original = row.original
            values: list[Any] = list(original[:width]) + [None] * (width - len(original))
            cells = _otc_cells(row, enrichments)
            values.extend(cells[name] for name in OTC_COLUMNS)
            enrichment = _enrichment_of(row, enrichments)
            for source in sources:
                result = enrichment.result(source.name) if enrichment else None
                values.append(result.status.value if result else None)
                values.append(
                    result.message if result and result.status not in (Status.OK, Status.NOT_APPLICABLE) else None
                )
                fields = result.fields if result and result.status is Status.OK else None
                for field_name, _ in field_columns[source.name]:
                    values.append(_flat(fields.get(field_name)) if fields is not None else None)
            row_status[cells["otc_row_status"]] += 1
            rows.append(tuple(values))

        columns = input_columns + list(OTC_COLUMNS) + source_columns
        summary = _summary(table, column, parsed, enrichments, sources, row_status, notes, elapsed, mode, stopped)
        return cls(columns, BulkRecords(columns, rows), summary, dict(enrichments), list(parsed))

    # -- output ---------------------------------------------------------------------------------
    def to_csv(self) -> bytes:
        records = self.records
        if isinstance(records, BulkRecords) and list(records.columns) == list(self.columns):
            return to_csv_bytes(self.columns, records.rows)  # already in column order
        return to_csv_bytes(self.columns, records)

    def to_json(self) -> bytes:
        return to_json_bytes(self.records)

    def dataframe(self) -> "pandas.DataFrame":
        import pandas

        records = self.records
        if isinstance(records, BulkRecords) and list(records.columns) == list(self.columns):
            return pandas.DataFrame.from_records(records.rows, columns=self.columns)
        return pandas.DataFrame.from_records(list(records), columns=self.columns)

    def map_points(self) -> list[dict[str, Any]]:
        """One point per distinct located indicator (for the Bulk page's map)."""
        points = []
        for enrichment in self.enrichments.values():
            location = enrichment.location
            if location is None:
                continue
            points.append({
                "indicator": enrichment.indicator.display, "kind": enrichment.indicator.kind.value,
                "latitude": location.latitude, "longitude": location.longitude, "label": location.label,
                "approximate": location.approximate, "score": enrichment.score,
                "verdict": enrichment.verdict.value,
            })
        return points

    def summary_line(self) -> str:
        """The summary in one line of plain text (the CLI prints it; the page may show it)."""
        s = self.summary
        statuses = ", ".join(f"{n} {status}" for status, n in s["row_status"].items())
        verdicts = ", ".join(f"{n} {verdict}" for verdict, n in s["verdicts"].items())
        line = (f"{s['rows']} rows ({statuses}); {s['distinct_indicators']} distinct indicators, "
                f"{s['duplicates']} duplicate rows")
        if verdicts:
            line += f"; verdicts: {verdicts}"
        if s.get("stopped"):
            line += "; stopped early"
        return line + f"; {s['elapsed_seconds']:.1f} s"


def _enrichment_of(row: ParsedRow, enrichments: Mapping[tuple[str, str], Enrichment]) -> Enrichment | None:
    if isinstance(row.outcome, Indicator):
        return enrichments.get(row.outcome.key)
    return None


def _source_columns(parsed, enrichments, sources) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """Per source: status, message, then its fields in the order first seen (input-row order)."""
    seen: dict[str, dict[str, None]] = {s.name: {} for s in sources}
    for row in parsed:
        enrichment = _enrichment_of(row, enrichments)
        if enrichment is None or row.duplicate_of is not None:
            continue
        for result in enrichment.results:
            if result.status is Status.OK and result.source in seen:
                for name in result.fields:
                    seen[result.source].setdefault(str(name), None)
    columns: list[str] = []
    fields: dict[str, list[tuple[str, str]]] = {}
    for source in sources:
        fixed = [f"{source.name}_status", f"{source.name}_message"]
        columns += fixed
        fields[source.name] = []
        for name in seen[source.name]:
            column = f"{source.name}_{name}"
            while column in fixed or column in columns or column in OTC_COLUMNS:
                column += "_field"  # a field literally named "status" must not overwrite the status
            columns.append(column)
            fields[source.name].append((name, column))
    return columns, fields


def _otc_cells(row: ParsedRow, enrichments: Mapping[tuple[str, str], Enrichment]) -> dict[str, Any]:
    cells: dict[str, Any] = dict.fromkeys(OTC_COLUMNS)
    outcome = row.outcome
    if isinstance(outcome, Rejection):
        cells["otc_row_status"] = outcome.status
        message = outcome.reason
        if outcome.candidates:
            message += f" (could be: {' or '.join(outcome.candidates)})"
        cells["otc_message"] = message
        return cells
    cells.update({
        "otc_row_status": ROW_OK,
        "otc_kind": outcome.kind.value,
        "otc_indicator": outcome.value,
        "otc_display": outcome.display,
        "otc_port": outcome.port,
        "otc_notes": "; ".join(outcome.notes) or None,
        "otc_scope": outcome.scope.value,
    })
    messages = []
    if row.duplicate_of is not None:
        cells["otc_duplicate_of"] = row.duplicate_of
        messages.append(f"duplicate of row {row.duplicate_of}")
    enrichment = enrichments.get(outcome.key)
    if enrichment is None:
        cells["otc_row_status"] = ROW_NOT_CHECKED
        messages.append("the run was stopped before this indicator was checked")
    else:
        location = enrichment.location
        cells.update({
            "otc_score": enrichment.score,
            "otc_verdict": enrichment.verdict.value,
            "otc_verdict_reason": enrichment.verdict_reason,
            "otc_reasons": " | ".join(c.reason for c in enrichment.contributions) or None,
        })
        if location is not None:
            cells.update({
                "otc_latitude": location.latitude, "otc_longitude": location.longitude,
                "otc_location": location.label, "otc_location_approximate": location.approximate,
            })
    cells["otc_message"] = "; ".join(messages) or None
    return cells


def _summary(table, column, parsed, enrichments, sources, row_status, notes, elapsed, mode, stopped) -> dict[str, Any]:
    distinct = [p for p in parsed if isinstance(p.outcome, Indicator) and p.duplicate_of is None]
    verdicts: Counter = Counter()
    by_source: dict[str, Counter] = {s.name: Counter() for s in sources}
    messages: dict[tuple[str, str], Counter] = {}
    for row in distinct:
        enrichment = enrichments.get(row.outcome.key)
        if enrichment is None:
            continue
        verdicts[enrichment.verdict.value] += 1
        for result in enrichment.results:
            by_source.setdefault(result.source, Counter())[result.status.value] += 1
            messages.setdefault((result.source, result.status.value), Counter())[result.message] += 1
    skipped = []
    held_back = [s for s in sources if mode and not s.allowed_in(Mode(mode))
                 and by_source.get(s.name, Counter())[Status.SKIPPED_PRIVACY.value]]
    if held_back:
        # One line instead of one per source: the privacy mode, not the source, decided these.
        skipped.append(f"{mode} mode — not asked: " + ", ".join(s.title for s in held_back))
    for source in sources:
        for status in NOT_CHECKED_STATUSES:
            if source in held_back and status is Status.SKIPPED_PRIVACY:
                continue
            n = by_source.get(source.name, Counter())[status.value]
            if n:
                common = messages[(source.name, status.value)].most_common(1)[0][0]
                skipped.append(f"{source.title}: {n} {status.value} — not checked" + (f" ({common})" if common else ""))
    return {
        "rows": len(parsed),
        "distinct_indicators": len(distinct),
        "duplicates": sum(1 for p in parsed if p.duplicate_of is not None),
        "row_status": dict(row_status.most_common()),
        "verdicts": dict(verdicts.most_common()),
        "source_status": {name: dict(c.most_common()) for name, c in by_source.items()},
        "skipped": skipped,
        "notes": notes,
        "column": column,
        "encoding": table.encoding,
        "delimiter": table.delimiter,
        "mode": mode,
        "elapsed_seconds": round(elapsed, 2),
        "stopped": stopped,
    }

