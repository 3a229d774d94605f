"""P5: ``python -m otc enrich`` of a generated 10,000-row CSV in local-only mode, as a subprocess:
rows per second and the child's peak memory.

The store holds feed snapshots generated like P3's (200,000 entries by default, imported before the
timed run) so the feed source has real work; about a third of the rows are on a list. Nothing leaves
the machine (``--offline``). Run: ``python -m bench.p5_enrich_csv [--rows N] [--entries N]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.p3_match import Generator, make_indicators, write_feeds
from otc.config import Mode, Settings
from otc.feeds import update_feeds

PROJECT_DIR = Path(__file__).resolve().parent.parent


def write_csv(path: Path, gen: Generator, listed: dict[str, list[str]], rows: int) -> None:
    items = make_indicators(gen, listed, rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["indicator", "comment"])
        for number, item in enumerate(items):
            writer.writerow([item.value, f"row {number}"])


NETGUARD_SITE = PROJECT_DIR / "tests" / "netguard_site"  # the tests' loopback-only guard, when present


def child_env(data_dir: Path, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTC_")}
    paths = [str(NETGUARD_SITE)] if NETGUARD_SITE.is_dir() else []
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(PROJECT_DIR)])
    env["OTC_NETGUARD_LOG"] = str(tmp / "netguard.log")
    env["OTC_DATA_DIR"] = str(data_dir)
    env["OTC_SECRETS_FILE"] = str(tmp / "no-secrets.toml")  # a developer's keys stay out of the run
    env["OTC_OFFLINE"] = "1"
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=200_000)
    args = parser.parse_args(argv)
    gen = Generator(seed=5)
    with tempfile.TemporaryDirectory(prefix="otc-bench-p5-") as tmp_text:
        tmp = Path(tmp_text)
        feeds_dir = tmp / "feeds"
        feeds_dir.mkdir()
        listed = write_feeds(feeds_dir, gen, args.entries)
        source = tmp / "iocs.csv"
        write_csv(source, gen, listed, args.rows)
        data_dir = tmp / "data"
        updates = update_feeds(Settings(mode=Mode.LOCAL, data_dir=data_dir), from_dir=feeds_dir)
        print(f"P5 {args.rows:,}-row CSV; store with {sum(u.entries for u in updates):,} feed entries (not timed)")

        output = tmp / "out.csv"
        command = [sys.executable, "-m", "otc", "enrich", str(source), "-o", str(output), "--offline"]
        started = time.monotonic()
        with (tmp / "stderr.txt").open("wb") as errors:
            child = subprocess.Popen(command, cwd=PROJECT_DIR, env=child_env(data_dir, tmp),
                                     stdout=subprocess.DEVNULL, stderr=errors)
            _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0 or not output.exists():
            tail = (tmp / "stderr.txt").read_text(errors="replace")[-2000:]
            print(f"P5 FAILED: `python -m otc enrich` exited {child.returncode}\n{tail}")
            return 1
        with output.open(encoding="utf-8-sig", newline="") as handle:
            out_rows = sum(1 for _ in csv.reader(handle)) - 1
        rate = args.rows / wall
        guard_log = tmp / "netguard.log"
        leaks = guard_log.read_text().strip() if guard_log.exists() else ""
        guard = ("network guard: nothing left loopback" if NETGUARD_SITE.is_dir() and not leaks
                 else f"NETWORK GUARD: {leaks}" if leaks else "network guard not available")
        print(f"enrich --offline: {wall:.2f} s for {args.rows:,} rows -> {rate:,.0f} rows/s; "
              f"output rows {out_rows:,}; child peak memory {usage.ru_maxrss / 1024:,.0f} MB "
              f"(user {usage.ru_utime:.1f} s, system {usage.ru_stime:.1f} s); {guard}")
    print(f"P5 rows_per_s={rate:.0f} peak_mb={usage.ru_maxrss / 1024:.0f} wall_s={wall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
