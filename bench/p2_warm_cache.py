"""P2: the P1 run again with a warm SQLite result cache: wall time ÷ the first run ≤ 0.02, and zero
requests reach the fake upstreams (counted by the servers).

The warm run needs P1's cold run (about 100 s: 1,000 requests to the 10 req/s source). ``python -m
bench`` runs P1 with ``--save`` and this with ``--load`` so the cold run is not repeated; alone, this
script runs both. Run: ``python -m bench.p2_warm_cache [--indicators N] [--load FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.p1_throughput import GOAL_P2, make_source, scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indicators", type=int, default=1000)
    parser.add_argument("--load", type=Path, help="P1's saved measurements (python -m bench.p1_throughput --save)")
    args = parser.parse_args(argv)

    if args.load and args.load.exists():
        saved = json.loads(args.load.read_text())
        outcome = saved["p1"]
        print(f"(cold and warm runs measured in the P1 process, {saved['indicators']:,} indicators; "
              f"saved in {args.load})")
    else:
        sources = [make_source(n, 8, None) for n in range(1, 5)] + [make_source(5, 4, 10.0)]
        with tempfile.TemporaryDirectory(prefix="otc-bench-p2-") as tmp:
            outcome = scenario(args.indicators, sources, Path(tmp) / "data", with_cache=True, warm_again=True)
    cold, warm = outcome["cold"], outcome["warm"]
    ratio = warm["wall"] / cold["wall"]
    upstream = sum(warm["requests"].values())
    results = sum(warm["statuses"].values())
    print(f"P2 cold run {cold['wall']:.2f} s ({sum(cold['requests'].values()):,} upstream requests); "
          f"warm run {warm['wall']:.3f} s, {upstream} upstream requests, "
          f"{warm['cached_results']:,}/{results:,} results from the cache")
    ok = ratio <= GOAL_P2 and upstream == 0
    print(f"P2 ratio={ratio:.4f} goal={GOAL_P2} upstream_requests={upstream} {'OK' if ok else 'GOAL MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
