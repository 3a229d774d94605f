"""Run every benchmark (``bench/p*.py``) in order, each in its own process: ``python -m bench``.

Each prints its measurements and ratios against the goals of issue 4; a missed goal is printed, not an
error. P1 saves its cold and warm runs for P2, so the 100 s rate-limited run happens once. Only
loopback servers started by the benchmarks themselves are used. Extra arguments after ``--only`` pick
benchmarks by prefix: ``python -m bench --only p3 p4``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent


def benchmarks() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("p*.py"))


def main(argv: list[str]) -> int:
    chosen = benchmarks()
    if argv[:1] == ["--only"]:
        chosen = [name for name in chosen if any(name.startswith(prefix) for prefix in argv[1:])]
    failed = []
    with tempfile.TemporaryDirectory(prefix="otc-bench-") as tmp:
        p1_state = Path(tmp) / "p1.json"
        for name in chosen:
            extra = []
            if name.startswith("p1_"):
                extra = ["--save", str(p1_state)]
            elif name.startswith("p2_") and any(n.startswith("p1_") for n in chosen):
                extra = ["--load", str(p1_state)]
            print(f"== {name} ==", flush=True)
            started = time.monotonic()
            code = subprocess.call([sys.executable, "-m", f"bench.{name}", *extra], cwd=PROJECT_DIR)
            print(f"== {name}: {time.monotonic() - started:.0f} s{'' if code == 0 else f', exit code {code}'}\n",
                  flush=True)
            if code != 0:
                failed.append(name)
    if failed:
        print(f"benchmarks that did not run to the end: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
