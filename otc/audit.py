"""The egress audit log: one JSON line per request that left the machine — when, which source, which
indicator (kind and value) and how it ended. Never a key: entries are built from names and statuses only,
and any configured key value that still turns up (e.g. pasted inside an indicator) is replaced.

The file is ``<data_dir>/audit.jsonl``, append-only, shared by the dashboard and the CLI. The engine calls
:meth:`AuditLog.record` after every third-party attempt; results that never sent anything
(not applicable, skipped for privacy or a missing key) are not requests and are not recorded.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from otc.config import Settings
from otc.model import Indicator, Status
from otc.sources.base import Source

log = logging.getLogger(__name__)

AUDIT_FILE_NAME = "audit.jsonl"
CSV_COLUMNS = ("time", "source", "kind", "indicator", "status")
# statuses that mean "nothing was sent", so there is no request to record
NOT_SENT = frozenset({Status.NOT_APPLICABLE, Status.SKIPPED_PRIVACY, Status.SKIPPED_NO_KEY})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Append-only JSON-lines log of outgoing requests; implements :class:`otc.engine.AuditLog`."""

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self._secrets = [s for s in secrets if s]
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> "AuditLog":
        """The log under ``settings.data_dir``, redacting every configured key value."""
        return cls(Path(settings.data_dir) / AUDIT_FILE_NAME, secrets=settings.secret_values())

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def record(self, source: Source, indicator: Indicator, status: Status, when: float) -> None:
        """Append one entry. Thread-safe; creates the data directory on first use."""
        if status in NOT_SENT:
            return
        entry = {
            "time": _iso(when),
            "source": source.name,
            "kind": indicator.kind.value,
            "indicator": self._redact(indicator.value),
            "status": Status(status).value,
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)

    def read(self, limit: int | None = None) -> list[dict]:
        """Entries oldest first; with ``limit``, only the newest ``limit`` of them. No file: no entries."""
        entries: deque[dict] | list[dict] = deque(maxlen=limit) if limit is not None else []
        try:
            handle = self.path.open("r", encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    # a line cut short by a crash mid-write; the rest of the log is still good
                    log.warning("%s line %d is not a JSON entry; skipped", self.path.name, number)
                    continue
                if isinstance(entry, dict):
                    entries.append(entry)
        return list(entries)

    def export_csv(self) -> bytes:
        """The whole log as UTF-8 CSV (with BOM, so spreadsheets read it as UTF-8); cells that a spreadsheet
        would run as a formula are prefixed with ``'``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for entry in self.read():
            writer.writerow([_cell(entry.get(column)) for column in CSV_COLUMNS])
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
