"""Crashes (issue 4 "Done when" 3; issue 5 group 7): a bulk run and a feed update killed with SIGKILL half-way.

Afterwards the SQLite store passes ``PRAGMA integrity_check``, no cached result is half-written, the
previous feed snapshot is still the one served, and a rerun completes — asking the fake upstream again only
for what the killed run had not finished (counted per source by tests/fake_upstream.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import PROJECT_DIR
from fake_upstream import FakeUpstream
from fakedns import FakeDnsServer
from otc.model import Kind
from otc.sources import all_sources

pytestmark = pytest.mark.slow

ROWS = 60
# distinct global addresses (none of them the fake's BAD_IP or BENIGN_IP), one per row
ADDRESSES = [f"93.184.{n}.7" for n in range(ROWS)]
IP_SOURCES = {s.name: s for s in all_sources() if Kind.IPV4 in s.kinds}


def store_file(env: dict[str, str]) -> Path:
    return Path(env["OTC_DATA_DIR"]) / "otc.sqlite"


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` on the file itself, through a connection of our own (not otc's)."""
    conn = sqlite3.connect(path)
    try:
        return "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check").fetchall())
    finally:
        conn.close()


def cached_rows(path: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT source, value, status, result FROM result_cache").fetchall()
    finally:
        conn.close()


def kill_when(process: subprocess.Popen, ready, timeout: float = 60.0) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` holds (fail if it never does or the process ends first)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"process ended (exit {process.returncode}) before the kill point: {err[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("kill point never reached")
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def otc(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otc", *args], env=env, cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=timeout)


def start_otc(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "otc", *args], env=env, cwd=PROJECT_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def upstream(subprocess_env):
    fake = FakeUpstream().start()
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


def write_input(tmp_path: Path) -> Path:
    path = tmp_path / "iocs.csv"
    path.write_text("indicator,note\n" + "".join(f"{ip},row {n}\n" for n, ip in enumerate(ADDRESSES)))
    return path


def read_output(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def test_bulk_run_killed_half_way_resumes_without_asking_again(upstream, tmp_path):
    fake, env = upstream
    source_csv = write_input(tmp_path)

    # Reference: what one complete run asks each source for these indicators (own data dir: cold cache).
    reference_env = dict(env, OTC_DATA_DIR=str(tmp_path / "reference-data"))
    done = otc(reference_env, "enrich", str(source_csv), "-o", str(tmp_path / "reference.csv"))
    assert done.returncode == 0, done.stderr
    full_run = Counter(fake.counts)
    fake.counts.clear()
    per_indicator = {name: count / ROWS for name, count in full_run.items()}
    assert full_run["internetdb"] == ROWS  # one request per address: the yardstick below relies on it

    # Run 1: slow upstream, SIGKILL once about half the addresses have been asked of InternetDB.
    fake.latency = 0.1
    out = tmp_path / "out.csv"
    process = start_otc(env, "enrich", str(source_csv), "-o", str(out))
    kill_when(process, lambda: fake.counts["internetdb"] >= ROWS // 2 - 5)
    time.sleep(0.3)  # requests the dead process had sent are still being answered; let the counts settle
    first = Counter(fake.counts)
    fake.counts.clear()
    assert not out.exists(), "a killed run must not leave an output file"
    assert integrity(store_file(env)) == "ok"
    assert 0 < first["internetdb"] < ROWS

    # Run 2: to completion.
    done = otc(env, "enrich", str(source_csv), "-o", str(out))
    second = Counter(fake.counts)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    rows = read_output(out)
    assert [r["indicator"] for r in rows] == ADDRESSES
    assert [r["note"] for r in rows] == [f"row {n}" for n in range(ROWS)]

    # Rows already done were not asked again: over both runs, each source got at most one complete run's
    # requests plus those in flight at the kill (at most its worker count, each one lookup's requests).
    for name, full in full_run.items():
        in_flight = IP_SOURCES[name].max_concurrency * per_indicator[name]
        assert first[name] + second[name] <= full + in_flight, (name, first[name], second[name], full)
        assert second[name] <= full - first[name] + in_flight, (name, first[name], second[name], full)
    assert second["internetdb"] < ROWS  # the resumed run really used what run 1 had stored
    print(f"\nrequests per source: full run {dict(full_run)}\n  run 1 (killed) {dict(first)}\n"
          f"  run 2 (resumed) {dict(second)}")

    # The store survived the kill: sound file, every cached answer whole.
    path = store_file(env)
    assert integrity(path) == "ok"
    cached = cached_rows(path)
    assert cached
    for source, value, status, result in cached:
        data = json.loads(result)  # a half-written row would not parse
        assert data["source"] == source and data["status"] == status
    # after the rerun, every third-party answer of every address is cached once per source
    third_party = {name for name in full_run}
    cached_per_source = Counter(source for source, *_ in cached)
    for name in third_party:
        assert cached_per_source[name] == ROWS, (name, cached_per_source[name])


# -- feed update killed ---------------------------------------------------------------------------------
OLD_IP = "45.155.205.233"  # on the snapshot imported before the kill
NEW_IP = "45.155.205.234"  # only on the list the rerun downloads
IPSUM_PATH = "/stamparm/ipsum/master/ipsum.txt"  # feeds.toml's path, kept when OTC_FEEDS_URL rebases it


def ipsum_body(lines: int, first_ip: str) -> bytes:
    """An IPsum-format list: a header, ``first_ip`` reported on 5 lists, then ``lines`` more addresses."""
    filler = "".join(f"81.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}\t{n % 9 + 1}\n" for n in range(1, lines + 1))
    return (f"# IPsum Threat Intelligence Feed\n# Last update: Wed, 03 Dec 2025 03:00:29 +0100\n"
            f"{first_ip}\t5\n{filler}").encode()


class FeedServer:
    """Serves the IPsum path of the feeds (every other feed: 404). ``mode``: ``trickle`` sends a big list a
    little at a time (a download that takes minutes), ``fast`` sends ``body`` at once."""

    def __init__(self) -> None:
        self.mode = "fast"
        self.body = b""
        self.sent = 0  # bytes of the trickled body sent so far
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != IPSUM_PATH:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.body
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if server.mode == "fast":
                        self.wfile.write(body)
                        return
                    for start in range(0, len(body), 4096):
                        self.wfile.write(body[start:start + 4096])
                        self.wfile.flush()
                        server.sent += 4096
                        if server.closing.wait(0.05):
                            return
                except (BrokenPipeError, ConnectionResetError):  # the killed client
                    return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def feeds_on(env: dict[str, str], ip: str) -> dict:
    done = otc(env, "lookup", ip, "--json", "--offline")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["sources"]["feeds"]


def ipsum_row(path: Path) -> tuple:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT snapshot_id, entry_count, status FROM feeds WHERE name = 'ipsum'").fetchone()
    finally:
        conn.close()


@pytest.mark.parametrize("kill_point", ["mid_download", "mid_import"])
def test_feed_update_killed_keeps_previous_snapshot_and_rerun_completes(subprocess_env, tmp_path, kill_point):
    env = dict(subprocess_env)
    feed_dir = tmp_path / "feed-files"
    feed_dir.mkdir()
    (feed_dir / "ipsum.txt").write_text(f"# IPsum\n{OLD_IP}\t7\n")
    done = otc(env, "feeds", "update", "--from", str(feed_dir))
    assert done.returncode == 0, done.stderr
    before = feeds_on(env, OLD_IP)
    assert before["status"] == "ok" and before["data"]["lists"] == ["ipsum"]
    path = store_file(env)
    snapshot_before = ipsum_row(path)
    assert snapshot_before[1] == 1

    server = FeedServer()
    try:
        env["OTC_FEEDS_URL"] = server.base
        wal = path.with_name(path.name + "-wal")
        wal_before = wal.stat().st_size if wal.exists() else 0
        if kill_point == "mid_download":
            # ~3 MB at 80 kB/s: the download would take half a minute; it is killed after 100 kB of it
            server.mode, server.body = "trickle", ipsum_body(150_000, NEW_IP)
            process = start_otc(env, "feeds", "update", "--force")
            kill_when(process, lambda: server.sent >= 100_000)
        else:
            # a big list sent at once: killed while its snapshot is being written (the WAL has grown by
            # several MB, the transaction that would swap it in not yet committed)
            server.mode, server.body = "fast", ipsum_body(400_000, NEW_IP)
            process = start_otc(env, "feeds", "update", "--force")
            kill_when(process, lambda: wal.exists() and wal.stat().st_size > wal_before + 4_000_000)
        assert integrity(path) == "ok"
        assert ipsum_row(path) == snapshot_before  # the interrupted update changed nothing
        after = feeds_on(env, OLD_IP)
        assert after["status"] == "ok" and after["data"]["lists"] == ["ipsum"]
        assert feeds_on(env, NEW_IP)["status"] == "not_found"

        # Rerun: completes and swaps the new list in.
        server.mode, server.body = "fast", ipsum_body(1_000, NEW_IP)
        done = otc(env, "feeds", "update", "--force")
        assert "Traceback" not in done.stderr
        ipsum_line = [line for line in done.stdout.splitlines() if line.startswith("ipsum ")]
        assert ipsum_line and ipsum_line[0].split()[1:3] == ["updated", "1001"], done.stdout
        assert integrity(path) == "ok"
        assert ipsum_row(path)[1:] == (1001, "updated")
        assert feeds_on(env, NEW_IP)["data"]["ipsum_count"] == 5
        assert feeds_on(env, OLD_IP)["status"] == "not_found"
    finally:
        server.stop()
