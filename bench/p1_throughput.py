"""P1: 1,000 distinct indicators through 5 fake network sources (100 ms per request, one limited to
10 requests/s); prints wall time ÷ the ideal bound. Goal ≤ 1.15. Also measures P2 (the same run again
with the warm SQLite cache: ÷ first run ≤ 0.02, zero upstream requests) since it needs this cold run.

The ideal bound of a source is ``requests × latency ÷ its concurrency`` or ``requests ÷ its rate``; the
run's bound is the slowest source's. The upstreams are ThreadingHTTPServers on 127.0.0.1 started in
this process (nothing leaves loopback). A second, shorter run without the rate limit (all sources at
``--wide`` concurrency) shows the engine's own overhead against a 3.1 s bound.

Run: ``python -m bench.p1_throughput [--indicators N] [--save FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from otc.config import Mode, Settings
from otc.engine import _GATES, Enricher
from otc.model import Indicator, Kind, Status
from otc.sources.base import RateLimit, Source
from otc.store import SqliteResultCache, Store

LATENCY = 0.100
GOAL_P1 = 1.15
GOAL_P2 = 0.02


class CountingServer(ThreadingHTTPServer):
    """A fake upstream: answers every GET after ``latency`` seconds, counts requests."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, latency: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.latency = latency
        self.lock = threading.Lock()
        self.count = 0
        self.last_done = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.count = 0
            self.last_done = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real services

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        time.sleep(self.server.latency)
        body = json.dumps({"value": self.path.rsplit("/", 1)[-1], "tags": ["bench"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.count += 1
            self.server.last_done = time.monotonic()

    def log_message(self, *args) -> None:
        pass


class BenchSource(Source):
    """A network source asking its fake upstream ``GET /<ip>``."""

    kinds = frozenset({Kind.IPV4})
    third_party = True

    def lookup(self, indicator, ctx):
        data = ctx.http.get(ctx.url(f"/{indicator.value}"), timeout=ctx.timeout).json_object()
        return self.result(Status.OK, {"tags": data["tags"]}, raw=data)


def make_source(number: int, concurrency: int, rate: float | None) -> Source:
    attrs = {
        "name": f"bench{number}", "title": f"Bench {number}", "base_url": f"https://bench{number}.invalid",
        "max_concurrency": concurrency, "rate_limit": RateLimit(per_second=rate) if rate else RateLimit(),
    }
    return type(f"Bench{number}Source", (BenchSource,), attrs)()


def indicators(count: int) -> list[Indicator]:
    """``count`` distinct global IPv4 addresses (45.0.0.0/8 is ordinary allocated space)."""
    values = [f"45.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" for n in range(1, count + 1)]
    return [Indicator(Kind.IPV4, v, v, v) for v in values]


def ideal_bound(sources: list[Source], requests_each: int, latency: float) -> dict[str, float]:
    bounds = {}
    for source in sources:
        bound = requests_each * latency / source.max_concurrency
        rate = source.rate_limit.per_second
        if rate:
            bound = max(bound, requests_each / rate)
        bounds[source.name] = bound
    return bounds


def session_for(sources: list[Source]) -> requests.Session:
    """A session whose connection pool holds every worker's connection (the default keeps 10 per host)."""
    session = requests.Session()
    size = max(s.max_concurrency for s in sources)
    adapter = HTTPAdapter(pool_connections=len(sources), pool_maxsize=size)
    session.mount("http://", adapter)
    return session


def timed_run(settings: Settings, sources: list[Source], items: list[Indicator], servers: list[CountingServer],
              cache) -> dict:
    for server in servers:
        server.reset()
    enricher = Enricher(settings, sources=sources, session=session_for(sources), cache=cache)
    started = time.monotonic()
    results = list(enricher.enrich_many(items))
    wall = time.monotonic() - started
    statuses: dict[str, int] = {}
    cached = 0
    for enrichment in results:
        for result in enrichment.results:
            statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
            cached += result.cached
    return {
        "wall": wall,
        "statuses": statuses,
        "cached_results": cached,
        "requests": {s.name: server.count for s, server in zip(sources, servers)},
        "finished_after": {s.name: (server.last_done - started) if server.last_done else 0.0
                           for s, server in zip(sources, servers)},
    }


def start_servers(count: int) -> list[CountingServer]:
    servers = [CountingServer(LATENCY) for _ in range(count)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers


def stop_servers(servers: list[CountingServer]) -> None:
    for server in servers:
        server.shutdown()
        server.server_close()


def scenario(count: int, sources: list[Source], data_dir: Path, with_cache: bool, warm_again: bool) -> dict:
    servers = start_servers(len(sources))
    try:
        settings = Settings(mode=Mode.ALL, urls={s.url_setting: srv.url for s, srv in zip(sources, servers)},
                            data_dir=data_dir, timeout=30.0)
        _GATES.clear()
        cache = SqliteResultCache(Store(data_dir / "otc.sqlite")) if with_cache else None
        items = indicators(count)
        bounds = ideal_bound(sources, count, LATENCY)
        cold = timed_run(settings, sources, items, servers, cache)
        outcome = {"bounds": bounds, "bound": max(bounds.values()), "cold": cold,
                   "concurrency": {s.name: s.max_concurrency for s in sources},
                   "rate": {s.name: s.rate_limit.per_second for s in sources}}
        if warm_again:
            outcome["warm"] = timed_run(settings, sources, items, servers, cache)
        return outcome
    finally:
        stop_servers(servers)


def plain_client(count: int, concurrency: int) -> float:
    """Wall time of a plain thread pool of ``requests`` calls against the same kind of server: what the
    machine allows at all (requests + urllib3 cost about a millisecond of CPU per call)."""
    from concurrent.futures import ThreadPoolExecutor

    [server] = start_servers(1)
    try:
        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=concurrency))
        urls = [f"{server.url}/{item.value}" for item in indicators(count)]
        started = time.monotonic()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda url: session.get(url, timeout=30).content, urls))
        return time.monotonic() - started
    finally:
        stop_servers([server])


def report_run(label: str, outcome: dict, goal: float) -> float:
    cold = outcome["cold"]
    ratio = cold["wall"] / outcome["bound"]
    print(f"{label}: wall {cold['wall']:.2f} s, ideal bound {outcome['bound']:.2f} s -> ratio {ratio:.3f} "
          f"(goal <= {goal}) {'OK' if ratio <= goal else 'GOAL MISSED'}")
    for name, bound in outcome["bounds"].items():
        rate = outcome["rate"][name]
        finished = cold["finished_after"][name]
        print(f"  {name}: concurrency {outcome['concurrency'][name]:>3}"
              f"{f', {rate:g} req/s' if rate else '':<12} requests {cold['requests'][name]:>5}  "
              f"bound {bound:7.2f} s  last answer at {finished:7.2f} s  ({finished / bound:.3f}x)")
    print(f"  statuses: {cold['statuses']}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indicators", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="workers of each unlimited fake source")
    parser.add_argument("--limited-concurrency", type=int, default=4, help="workers of the 10 req/s source")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--wide", type=int, default=32, help="concurrency of the unlimited comparison run (0: skip)")
    parser.add_argument("--save", type=Path, help="write the measurements (P2 reads them) as JSON here")
    args = parser.parse_args(argv)

    sources = [make_source(n, args.concurrency, None) for n in range(1, 5)]
    sources.append(make_source(5, args.limited_concurrency, args.rate))
    with tempfile.TemporaryDirectory(prefix="otc-bench-p1-") as tmp:
        outcome = scenario(args.indicators, sources, Path(tmp) / "data", with_cache=True, warm_again=True)
    ratio = report_run(f"P1 {args.indicators:,} indicators x 5 sources, {LATENCY * 1000:.0f} ms latency", outcome,
                       GOAL_P1)
    warm = outcome["warm"]
    p2_ratio = warm["wall"] / outcome["cold"]["wall"]
    upstream = sum(warm["requests"].values())
    print(f"P2 (same run, warm cache): wall {warm['wall']:.3f} s -> ratio {p2_ratio:.4f} of the first run "
          f"(goal <= {GOAL_P2}), upstream requests {upstream} (goal 0), "
          f"{warm['cached_results']:,} results from the cache "
          f"{'OK' if p2_ratio <= GOAL_P2 and upstream == 0 else 'GOAL MISSED'}")
    if args.save:
        args.save.write_text(json.dumps({"indicators": args.indicators, "p1": outcome, "p1_ratio": ratio,
                                         "p2_ratio": p2_ratio, "p2_upstream_requests": upstream}))
    if args.wide:
        with tempfile.TemporaryDirectory(prefix="otc-bench-p1w-") as tmp:
            wide = scenario(args.indicators, [make_source(1, args.wide, None)], Path(tmp) / "data",
                            with_cache=False, warm_again=False)
        wide_ratio = wide["cold"]["wall"] / wide["bound"]
        plain = plain_client(args.indicators, args.wide)
        print(f"Engine overhead, one unlimited source at concurrency {args.wide}: engine {wide['cold']['wall']:.2f} s, "
              f"plain {args.wide}-thread requests client {plain:.2f} s, ideal bound {wide['bound']:.2f} s -> "
              f"engine/bound {wide_ratio:.3f}, plain/bound {plain / wide['bound']:.3f}, "
              f"engine/plain {wide['cold']['wall'] / plain:.3f}")
    print(f"P1 ratio={ratio:.3f} goal={GOAL_P1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
