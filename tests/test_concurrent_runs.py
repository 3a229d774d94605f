"""Two bulk runs at once on one data directory (issue 5 group 7: "two dashboard sessions running bulk jobs
at once"): two processes share the SQLite cache and the audit log. Both finish every row, no row carries a
"database is locked" error, the file passes ``PRAGMA integrity_check`` and the audit log has one whole JSON
line per request the fake upstream counted.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import PROJECT_DIR
from fake_upstream import FakeUpstream
from fakedns import FakeDnsServer
from otc.sources import all_sources

pytestmark = pytest.mark.slow

# two overlapping sets of global addresses: 40 only in A, 40 in both, 40 only in B
RUN_A = [f"93.185.{n}.9" for n in range(0, 80)]
RUN_B = [f"93.185.{n}.9" for n in range(40, 120)]


@pytest.fixture
def upstream(subprocess_env):
    fake = FakeUpstream(latency=0.01).start()
    dns = FakeDnsServer()
    dns.start()
    env = dict(subprocess_env)
    env.update(fake.env())
    env.update({f"OTC_{s.name.upper()}_RATE": "0" for s in all_sources()})
    env["OTC_DNS_SERVER"] = dns.address
    env["OTC_TIMEOUT"] = "10"
    yield fake, env
    fake.stop()
    dns.stop()


def test_two_bulk_runs_at_once_share_cache_and_audit_log(upstream, tmp_path):
    fake, env = upstream
    runs = []
    for name, addresses in (("a", RUN_A), ("b", RUN_B)):
        source = tmp_path / f"{name}.csv"
        source.write_text("indicator\n" + "".join(f"{ip}\n" for ip in addresses))
        out = tmp_path / f"{name}-out.csv"
        process = subprocess.Popen([sys.executable, "-m", "otc", "enrich", str(source), "-o", str(out)], env=env,
                                   cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((process, out, addresses))

    for process, out, addresses in runs:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "Traceback" not in err and "locked" not in err
        text = out.read_bytes().decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["indicator"] for r in rows] == addresses
        assert "database is locked" not in text
        assert "engine error" not in text  # an exception inside the engine (e.g. sqlite3.OperationalError)

    data_dir = Path(env["OTC_DATA_DIR"])
    conn = sqlite3.connect(data_dir / "otc.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        cached = conn.execute("SELECT source, value, status, result FROM result_cache").fetchall()
    finally:
        conn.close()
    distinct = set(RUN_A) | set(RUN_B)
    cached_per_source = Counter(source for source, *_ in cached)
    for source, value, status, result in cached:
        data = json.loads(result)
        assert data["source"] == source and data["status"] == status
    # every address once per HTTP source (DNS sources are cached too, but the fake does not count them)
    assert set(fake.counts) <= set(cached_per_source)
    assert {cached_per_source[name] for name in fake.counts} == {len(distinct)}

    # One whole JSON line per request, from both processes interleaved: none lost, none torn.
    lines = (data_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines]
    assert all(set(e) == {"time", "source", "kind", "indicator", "status"} for e in entries)
    audited = Counter(e["source"] for e in entries if e["source"] in fake.counts)
    assert audited == fake.counts, (audited, fake.counts)  # every HTTP IP source asks once per lookup
    # the overlap was asked by one run or both, never more; the rest exactly once
    for name, count in fake.counts.items():
        assert len(distinct) <= count <= len(RUN_A) + len(RUN_B), (name, count)
    print(f"\nrequests per source (two runs at once): {dict(fake.counts)}")


def test_two_bulk_jobs_in_one_process_like_two_dashboard_sessions(upstream, monkeypatch):
    """The dashboard runs each session's bulk job in a thread of one process: one shared Store connection."""
    import threading

    from otc.bulk import run_bulk
    from otc.config import load_settings
    from otc.csvio import read_table
    from otc.engine import default_enricher

    fake, env = upstream
    for name, value in env.items():
        if name.startswith("OTC_"):
            monkeypatch.setenv(name, value)
    outputs: dict[str, str] = {}
    failures: list[BaseException] = []

    def job(name: str, addresses: list[str]) -> None:
        try:
            table = read_table(("indicator\n" + "".join(f"{ip}\n" for ip in addresses)).encode(), filename=f"{name}.csv")
            result = run_bulk(table, "indicator", default_enricher(load_settings()))
            outputs[name] = result.to_csv().decode("utf-8-sig")
        except BaseException as exc:  # reported below: a thread's exception must fail the test
            failures.append(exc)

    threads = [threading.Thread(target=job, args=("a", RUN_A)), threading.Thread(target=job, args=("b", RUN_B))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    for name, addresses in (("a", RUN_A), ("b", RUN_B)):
        rows = list(csv.DictReader(io.StringIO(outputs[name])))
        assert [r["indicator"] for r in rows] == addresses
        assert "database is locked" not in outputs[name] and "engine error" not in outputs[name]
    data_dir = Path(env["OTC_DATA_DIR"])
    conn = sqlite3.connect(data_dir / "otc.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    entries = [json.loads(line) for line in (data_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert Counter(e["source"] for e in entries if e["source"] in fake.counts) == fake.counts
