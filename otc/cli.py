"""Command line: ``python -m otc lookup INDICATOR``, ``python -m otc enrich IN.csv -o OUT.csv``, ``feeds update``.

Exit codes: 0 done; 2 the input or a setting is unusable (a plain message on stderr, never a traceback),
or a lookup input is not one unambiguous indicator; 130 interrupted; 1 an unexpected error (``--debug``
shows its traceback) or a feed that failed to update. The privacy mode comes from ``OTC_MODE``/``OTC_OFFLINE`` (see :mod:`otc.config`);
``--mode`` and ``--offline`` (= ``--mode local``) override them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from pathlib import Path
from typing import Any, Sequence

from otc.config import Mode, Settings, load_settings
from otc.errors import ConfigError, InputError
from otc.model import Enrichment, Indicator, Rejection, SourceResult

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Bidirectional overrides can make upstream text read differently from what it is ("trojan source").
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


class UsageError(Exception):
    """A command-line mistake the argument parser cannot see (exit 2 with the message)."""


# -- argument parsing ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    privacy = common.add_argument_group("privacy")
    privacy.add_argument("--mode", choices=[m.value for m in Mode],
                         help="which sources may see indicators (default: OTC_MODE, else all)")
    privacy.add_argument("--offline", action="store_true",
                         help="same as --mode local: nothing leaves this machine, not even a DNS query")
    common.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")

    parser = argparse.ArgumentParser(
        prog="python -m otc",
        description="Open Threat Correlation: enrich IPs, domains, URLs and hashes and explain one verdict.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    lookup = commands.add_parser("lookup", parents=[common], help="look up one indicator",
                                 description="Look up one indicator in every applicable source.")
    lookup.add_argument("indicator", help="an IP, CIDR, domain, URL, e-mail, hash or ASN (defanged is fine)")
    lookup.add_argument("--json", action="store_true", help="print JSON instead of text")
    lookup.set_defaults(handler=cmd_lookup)

    enrich = commands.add_parser("enrich", parents=[common], help="enrich every row of a CSV",
                                 description="Enrich a CSV of indicators; every input row is kept.")
    enrich.add_argument("input", type=Path, help="CSV (UTF-8, UTF-16 or Windows-1252; , ; TAB or |)")
    enrich.add_argument("-o", "--output", type=Path, help="where to write the enriched table")
    enrich.add_argument("--column", help="the indicator column (default: detected)")
    enrich.add_argument("--format", choices=["csv", "json"],
                        help="format of --output (default: from its extension, else csv)")
    enrich.add_argument("--json", dest="json_output", type=Path, metavar="OUT.json",
                        help="also write the records as JSON here")
    enrich.set_defaults(handler=cmd_enrich)

    feeds = commands.add_parser("feeds", help="threat feed snapshots for local-only mode")
    feed_commands = feeds.add_subparsers(dest="feeds_command", metavar="ACTION")
    update = feed_commands.add_parser("update", parents=[common], help="download or import feed snapshots")
    update.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                        help="import snapshots from this directory instead of downloading")
    update.add_argument("--force", action="store_true", help="refresh even snapshots that are still fresh")
    update.set_defaults(handler=cmd_feeds_update)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """``load_settings()`` with ``--mode``/``--offline`` winning over ``OTC_MODE``/``OTC_OFFLINE``."""
    flag_mode = Mode.LOCAL if getattr(args, "offline", False) else (
        Mode(args.mode) if getattr(args, "mode", None) else None)
    environ: dict[str, str] = dict(os.environ)
    if flag_mode is not None:
        # The flag decides, so a stale or malformed mode in the environment must not stop the run.
        environ.pop("OTC_MODE", None)
        environ.pop("OTC_OFFLINE", None)
    settings = load_settings(environ=environ)
    return settings.with_mode(flag_mode) if flag_mode is not None else settings


def make_enricher(settings: Settings):
    from otc.engine import default_enricher

    return default_enricher(settings)


# -- lookup ---------------------------------------------------------------------------------------------
def cmd_lookup(args: argparse.Namespace) -> int:
    from otc.indicators import parse_indicator

    settings = settings_from(args)
    outcome = parse_indicator(args.indicator)
    if isinstance(outcome, Rejection):
        if args.json:
            _print_json({"input": args.indicator, "mode": settings.mode.value, "rejection": rejection_json(outcome)})
        else:
            print(rejection_text(outcome))
        return EXIT_USAGE
    enrichment = make_enricher(settings).enrich(outcome)
    if args.json:
        _print_json(lookup_json(args.indicator, enrichment, settings.mode))
    else:
        print(lookup_text(enrichment, settings.mode))
    return EXIT_OK


def rejection_json(rejection: Rejection) -> dict[str, Any]:
    return {"status": rejection.status, "reason": rejection.reason, "candidates": list(rejection.candidates)}


def rejection_text(rejection: Rejection) -> str:
    line = f"{rejection.status}: {safe_text(rejection.original)!s} — {safe_text(rejection.reason)}"
    if rejection.candidates:
        line += "\nIt could be: " + " or ".join(safe_text(c) for c in rejection.candidates)
        line += "\nNot looked up: give the reading you mean."
    return line


def indicator_json(indicator: Indicator) -> dict[str, Any]:
    return {
        "kind": indicator.kind.value, "value": indicator.value, "display": indicator.display,
        "original": indicator.original, "notes": list(indicator.notes), "scope": indicator.scope.value,
        "port": indicator.port, "host": indicator.host,
        "host_kind": indicator.host_kind.value if indicator.host_kind else None,
        "registered_domain": indicator.registered_domain, "wildcard": indicator.wildcard,
    }


def source_json(result: SourceResult) -> dict[str, Any]:
    return {
        "status": result.status.value, "message": result.message, "latency_ms": result.latency_ms,
        "data": dict(result.fields), "data_date": result.data_date, "cached": result.cached,
        "fetched_at": result.fetched_at,
    }


def lookup_json(text: str, enrichment: Enrichment, mode: Mode) -> dict[str, Any]:
    location = enrichment.location
    return {
        "input": text,
        "mode": mode.value,
        "indicator": indicator_json(enrichment.indicator),
        "score": enrichment.score,
        "verdict": enrichment.verdict.value,
        "verdict_reason": enrichment.verdict_reason,
        "contributions": [
            {"source": c.source, "rule": c.rule, "points": c.points, "weight": c.weight, "reason": c.reason}
            for c in enrichment.contributions
        ],
        "sources": {r.source: source_json(r) for r in enrichment.results},
        "location": None if location is None else {
            "latitude": location.latitude, "longitude": location.longitude, "label": location.label,
            "approximate": location.approximate,
        },
    }


def lookup_text(enrichment: Enrichment, mode: Mode) -> str:
    indicator = enrichment.indicator
    lines = [f"Indicator  {safe_text(indicator.display)}  ({indicator.kind.value}, {indicator.scope.value})"]
    if indicator.value != indicator.display:
        lines.append(f"  looked up as {safe_text(indicator.value)}")
    if indicator.port is not None:
        lines.append(f"  port {indicator.port}")
    for note in indicator.notes:
        lines.append(f"  note: {safe_text(note)}")
    lines.append(f"Verdict    {enrichment.verdict.value}  (score {enrichment.score}/100: "
                 f"{safe_text(enrichment.verdict_reason)})")
    lines.append(f"Mode       {mode.value}")
    if enrichment.contributions:
        lines.append("Contributions")
        lines += [f"  {safe_text(c.reason)}" for c in enrichment.contributions]
    location = enrichment.location
    if location is not None:
        approx = ", approximate" if location.approximate else ""
        lines.append(f"Location   {safe_text(location.label)} ({location.latitude:.4f}, {location.longitude:.4f}{approx})")
    lines.append("Sources")
    width = max((len(r.source) for r in enrichment.results), default=0)
    for result in enrichment.results:
        latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "-"
        detail = _fields_summary(result) if result.fields else ""
        message = "; ".join(x for x in (safe_text(result.message), detail) if x)
        dated = f" [data {result.data_date}]" if result.data_date else ""
        lines.append(f"  {result.source:<{width}}  {result.status.value:<15} {latency:>8}  {message}{dated}".rstrip())
    return "\n".join(lines)


def _fields_summary(result: SourceResult, limit: int = 160) -> str:
    from otc.csvio import cell_text

    parts = [f"{name}={cell_text(value)}" for name, value in result.fields.items() if cell_text(value) != ""]
    text = safe_text("; ".join(parts))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_text(value: Any) -> str:
    """Text for a terminal: control characters (ANSI escapes!) and bidi overrides shown as escapes.

    Upstream answers are attacker-controlled; printed raw, ``\\x1b]...`` could rewrite the terminal.
    """
    text = "" if value is None else str(value)
    if text.isprintable() and not (_BIDI_CONTROLS & set(text)):
        return text
    out = []
    for ch in text:
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u200d":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# -- enrich ---------------------------------------------------------------------------------------------
def cmd_enrich(args: argparse.Namespace) -> int:
    from otc.bulk import BulkProgress, run_bulk
    from otc.csvio import DELIMITER_NAMES, detect_indicator_column, read_table

    if args.output is None and args.json_output is None:
        raise UsageError("say where to write the result: -o OUT.csv (and/or --json OUT.json)")
    output_format = args.format or ("json" if args.output and args.output.suffix.lower() == ".json" else "csv")
    for target in (args.output, args.json_output):
        if target is not None and _same_file(target, args.input):
            raise UsageError(f"refusing to overwrite the input file {args.input}")

    settings = settings_from(args)
    try:
        data = args.input.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{args.input}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{args.input} is a directory, not a CSV file") from None
    except OSError as exc:
        raise InputError(f"{args.input}: cannot read it ({exc.strerror or exc})") from None
    table = read_table(data, filename=args.input.name)
    column = args.column if args.column is not None else detect_indicator_column(table)
    table.column_index(column)  # an unknown --column is an InputError naming the real columns
    _err(f"otc: {safe_text(args.input.name)}: {len(table.rows)} rows, {table.encoding}, "
         f"delimiter {DELIMITER_NAMES.get(table.delimiter, table.delimiter)}, "
         f"indicator column {column!r}{'' if args.column else ' (detected)'}, mode {settings.mode.value}")

    enricher = make_enricher(settings)
    bar = _progress_bar()

    def on_progress(progress: BulkProgress) -> None:
        if bar is None:
            return
        bar.total = progress.total
        bar.update(progress.done - bar.n)
        shown = {k: v for k, v in progress.status_counts.items() if k != "not_applicable"}
        bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in sorted(shown.items())), refresh=False)

    try:
        result = run_bulk(table, column, enricher, on_progress=on_progress)
    finally:
        if bar is not None:
            bar.close()

    if args.output is not None:
        _write(args.output, result.to_json() if output_format == "json" else result.to_csv())
    if args.json_output is not None:
        _write(args.json_output, result.to_json())
    for note in result.summary["notes"]:
        if not note.startswith("delimiter:"):
            _err(f"otc: note: {note}")
    for line in result.summary["skipped"]:
        _err(f"otc: {safe_text(line)}")
    written = " and ".join(str(p) for p in (args.output, args.json_output) if p is not None)
    _err(f"otc: {result.summary_line()}; written to {written}")
    return EXIT_OK


def _progress_bar():
    """A tqdm bar on stderr when stderr is a terminal; otherwise nothing (the summary line still comes)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=0, unit="indicator", file=sys.stderr, dynamic_ncols=True, leave=True)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _write(path: Path, content: bytes) -> None:
    """Write via a temporary file, so an interrupted run never leaves half a CSV under the real name."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- feeds ----------------------------------------------------------------------------------------------
def cmd_feeds_update(args: argparse.Namespace) -> int:
    try:
        from otc import feeds
    except ModuleNotFoundError as exc:
        if exc.name != "otc.feeds":  # the module is there but something it needs is not: a real error
            raise
        _err("otc: feeds support not installed")
        return EXIT_USAGE
    settings = settings_from(args)
    updates = feeds.update_feeds(settings, from_dir=args.from_dir, force=args.force) or []
    for update in updates:
        print(f"{update.name:<20} {update.status:<10} {update.entries:>8} entries  {safe_text(update.message)}".rstrip())
    if not updates:
        print("no feed updated" + (f" (no feed file found in {args.from_dir})" if args.from_dir else ""))
    return EXIT_ERROR if any(u.status == "failed" for u in updates) else EXIT_OK


# -- entry point ----------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except (InputError, ConfigError, UsageError) as exc:
        _err(f"otc: {safe_text(exc)}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("\notc: interrupted — no output written")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head`: not an error worth a traceback
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        _err(f"otc: unexpected error ({type(exc).__name__}: {safe_text(exc)}); run again with --debug for details")
        return EXIT_ERROR
