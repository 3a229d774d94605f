"""The egress audit log: what it records, what it never records, reading, CSV export, concurrency."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

from otc.audit import AUDIT_FILE_NAME, AuditLog
from otc.config import Secret, Settings
from otc.engine import AuditLog as AuditLogProtocol
from otc.engine import Enricher
from otc.model import Indicator, Kind, Scope, Status
from otc.sources.abuseipdb import SOURCE as ABUSEIPDB
from otc.sources.greynoise import SOURCE as GREYNOISE
from otc.sources.internetdb import SOURCE as INTERNETDB

KEY = "dummy-abuse-key-123"
WHEN = 1764500000.25  # 2025-11-30T10:53:20.250Z


def ip(value: str, scope: Scope = Scope.GLOBAL) -> Indicator:
    return Indicator(Kind.IPV4, value, value, value, scope=scope)


def test_record_appends_one_json_line_and_creates_the_directory(tmp_path):
    log = AuditLog(tmp_path / "new" / "dir" / AUDIT_FILE_NAME)
    log.record(ABUSEIPDB, ip("185.220.101.78"), Status.OK, WHEN)
    log.record(GREYNOISE, ip("185.220.101.78"), Status.RATE_LIMITED, WHEN + 1)
    lines = (tmp_path / "new" / "dir" / AUDIT_FILE_NAME).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"time": "2025-11-30T10:53:20.250Z", "source": "abuseipdb", "kind": "ipv4", "indicator": "185.220.101.78", "status": "ok"},
        {"time": "2025-11-30T10:53:21.250Z", "source": "greynoise", "kind": "ipv4", "indicator": "185.220.101.78",
         "status": "rate_limited"},
    ]


def test_it_implements_the_engine_protocol(tmp_path):
    log: AuditLogProtocol = AuditLog(tmp_path / AUDIT_FILE_NAME)
    log.record(ABUSEIPDB, ip("8.8.4.4"), Status.ERROR, WHEN)
    assert AuditLog(tmp_path / AUDIT_FILE_NAME).read()[0]["status"] == "error"


def test_results_that_sent_nothing_are_not_requests(tmp_path):
    log = AuditLog(tmp_path / AUDIT_FILE_NAME)
    for status in (Status.NOT_APPLICABLE, Status.SKIPPED_PRIVACY, Status.SKIPPED_NO_KEY):
        log.record(ABUSEIPDB, ip("8.8.4.4"), status, WHEN)
    assert log.read() == []
    assert not (tmp_path / AUDIT_FILE_NAME).exists()


def test_read_limit_gives_the_newest_in_order(tmp_path):
    log = AuditLog(tmp_path / AUDIT_FILE_NAME)
    for n in range(5):
        log.record(ABUSEIPDB, ip(f"8.8.8.{n}"), Status.OK, WHEN + n)
    assert [e["indicator"] for e in log.read(limit=2)] == ["8.8.8.3", "8.8.8.4"]
    assert len(log.read()) == 5
    assert AuditLog(tmp_path / "missing.jsonl").read() == []


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    path = tmp_path / AUDIT_FILE_NAME
    log = AuditLog(path)
    log.record(ABUSEIPDB, ip("8.8.8.1"), Status.OK, WHEN)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"time": "2025-11-30T10:53:21Z", "source": "abu\n')
    log.record(ABUSEIPDB, ip("8.8.8.2"), Status.OK, WHEN)
    assert [e["indicator"] for e in log.read()] == ["8.8.8.1", "8.8.8.2"]


def test_concurrent_writers_never_interleave_lines(tmp_path):
    log = AuditLog(tmp_path / AUDIT_FILE_NAME)

    def write(worker: int) -> None:
        for n in range(100):
            log.record(ABUSEIPDB, ip(f"10.{worker}.0.{n}"), Status.OK, WHEN)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (tmp_path / AUDIT_FILE_NAME).read_text().splitlines()
    assert len(lines) == 800
    assert len({json.loads(line)["indicator"] for line in lines}) == 800


def test_export_csv(tmp_path):
    log = AuditLog(tmp_path / AUDIT_FILE_NAME)
    log.record(ABUSEIPDB, ip("185.220.101.78"), Status.OK, WHEN)
    log.record(GREYNOISE, Indicator(Kind.DOMAIN, "=cmd.example", "=cmd.example", "=cmd.example"), Status.ERROR, WHEN)
    data = log.export_csv()
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [
        ["time", "source", "kind", "indicator", "status"],
        ["2025-11-30T10:53:20.250Z", "abuseipdb", "ipv4", "185.220.101.78", "ok"],
        ["2025-11-30T10:53:20.250Z", "greynoise", "domain", "'=cmd.example", "error"],  # not run as a formula
    ]


def test_for_settings_uses_the_data_dir_and_redacts_keys(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", keys={"OTC_ABUSEIPDB_KEY": Secret(KEY)})
    log = AuditLog.for_settings(settings)
    assert log.path == tmp_path / "data" / "audit.jsonl"
    pasted = f"https://example.com/?apikey={KEY}"  # an analyst pasting a URL that happens to hold the key
    log.record(ABUSEIPDB, Indicator(Kind.URL, pasted, pasted, pasted), Status.OK, WHEN)
    assert KEY not in log.path.read_text()
    assert log.read()[0]["indicator"] == "https://example.com/?apikey=***"


def test_the_engine_records_each_request_that_left_and_nothing_else(httpserver, tmp_path):
    httpserver.expect_request("/abuseipdb/api/v2/check").respond_with_json(
        {"errors": [{"detail": f"bad key {KEY}", "status": 401}]}, status=401)
    httpserver.expect_request("/internetdb/8.8.4.4").respond_with_json({"detail": "No information available"}, status=404)
    settings = Settings(urls={"OTC_ABUSEIPDB_URL": httpserver.url_for("/abuseipdb"),
                              "OTC_INTERNETDB_URL": httpserver.url_for("/internetdb")},
                        keys={"OTC_ABUSEIPDB_KEY": Secret(KEY)}, timeout=3, data_dir=tmp_path / "data")
    audit = AuditLog.for_settings(settings)
    enricher = Enricher(settings, sources=[ABUSEIPDB, INTERNETDB], audit=audit, clock=lambda: WHEN)
    list(enricher.enrich_many([ip("8.8.4.4"), ip("192.168.1.20", Scope.PRIVATE)]))
    entries = sorted(audit.read(), key=lambda e: e["source"])
    assert entries == [
        {"time": "2025-11-30T10:53:20.250Z", "source": "abuseipdb", "kind": "ipv4", "indicator": "8.8.4.4", "status": "auth_error"},
        {"time": "2025-11-30T10:53:20.250Z", "source": "internetdb", "kind": "ipv4", "indicator": "8.8.4.4", "status": "not_found"},
    ]
    assert len(httpserver.log) == 2
    assert KEY not in Path(audit.path).read_text()
