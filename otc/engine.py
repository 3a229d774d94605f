"""The enrichment engine: every applicable source for every indicator, concurrently, honestly reported.

- Each source has its own worker pool (``Source.max_concurrency``), so a slow source never holds back
  the others; results are yielded as they complete.
- Pacing and quotas are shared by every lookup in the process (:class:`RateGate`): a free tier's
  per-minute pace is kept, a 429 with a short ``Retry-After`` is waited out and retried once, a long one
  marks the source ``rate_limited`` for what is left ("quota exceeded — not checked").
- A source found unreachable (connection refused, timeouts) three times in a row is not waited on again
  in this run (:class:`CircuitBreaker`); its remaining rows say so.
- Indicators are de-duplicated by ``Indicator.key``.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Protocol, Sequence

import dns.resolver
import requests

from otc.config import Mode, Settings
from otc.errors import RateLimited, SourceTimeout, SourceUnreachable
from otc.http import HttpClient
from otc.model import Enrichment, Indicator, SourceResult, Status
from otc.scoring import ScoringRules, combine, load_rules
from otc.sources import all_sources
from otc.sources.base import RateLimit, Source, SourceContext, attempt_source, context_for, precheck

CIRCUIT_FAILURES = 3  # consecutive unreachable/timeout answers before a source is given up for the run
MAX_RETRY_WAIT = 30.0  # a Retry-After longer than this is not waited out inside a run


class ResultCache(Protocol):
    """Where answers are kept between runs (implemented by the SQLite store)."""

    def get(self, source: Source, indicator: Indicator, fingerprint: str) -> SourceResult | None: ...

    def put(self, source: Source, indicator: Indicator, fingerprint: str, result: SourceResult) -> None: ...


class AuditLog(Protocol):
    """Every request that left the machine: when, which source, which indicator, how it ended."""

    def record(self, source: Source, indicator: Indicator, status: Status, when: float) -> None: ...


@dataclass(frozen=True)
class ProgressEvent:
    done: int  # indicators finished
    total: int  # distinct indicators in the run
    enrichment: Enrichment | None
    status_counts: Counter  # source statuses so far


def make_resolver(settings: Settings) -> dns.resolver.Resolver | None:
    """The DNS resolver sources use; ``None`` in local-only mode so not even a DNS query can leave."""
    if settings.mode is Mode.LOCAL:
        return None
    if settings.dns_server is not None:
        resolver = dns.resolver.Resolver(configure=False)
        host, port = settings.dns_server
        resolver.nameservers = [host]
        resolver.port = port
    else:
        resolver = dns.resolver.Resolver()
    # SERVFAIL must come back promptly, not be retried until the lifetime runs out.
    resolver.retry_servfail = False
    resolver.timeout = min(settings.timeout, 3.0)
    resolver.lifetime = min(settings.timeout, 5.0)
    return resolver


class RateGate:
    """Pace and quota for one source, shared by all lookups in the process."""

    def __init__(self, limit: RateLimit, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._sleep, self._monotonic, self._wall = sleep, monotonic, wall
        self._lock = threading.Lock()
        # Token bucket: ``_tokens`` may go negative, which is how later callers queue behind earlier ones.
        self._tokens = float(max(1, limit.burst))
        self._refilled_at = monotonic()
        self._blocked_until = 0.0  # wall clock
        self._blocked_reason = ""
        self._day = ""
        self._used_today = 0

    def remaining_today(self) -> int | None:
        if self.limit.per_day is None:
            return None
        with self._lock:
            self._roll_day()
            return max(0, self.limit.per_day - self._used_today)

    def _roll_day(self) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime(self._wall()))
        if day != self._day:
            self._day, self._used_today = day, 0

    def acquire(self) -> str | None:
        """Wait for this source's next slot; a reason string instead when its quota is spent."""
        with self._lock:
            if self._wall() < self._blocked_until:
                return self._blocked_reason
            self._roll_day()
            if self.limit.per_day is not None and self._used_today >= self.limit.per_day:
                return f"daily quota of {self.limit.per_day} requests used — not checked"
            self._used_today += 1
            interval = self.limit.interval
            if interval <= 0:
                return None
            now = self._monotonic()
            self._tokens = min(float(max(1, self.limit.burst)), self._tokens + (now - self._refilled_at) / interval)
            self._refilled_at = now
            self._tokens -= 1.0
            wait = -self._tokens * interval if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return None

    def block(self, seconds: float, reason: str) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._wall() + seconds)
            self._blocked_reason = reason


_GATES: dict[tuple[str, str], RateGate] = {}
_GATES_LOCK = threading.Lock()


def shared_gate(source: Source, fingerprint: str, limit: RateLimit | None = None) -> RateGate:
    """The process-wide gate of a source (per key, since quotas are per key)."""
    with _GATES_LOCK:
        gate = _GATES.get((source.name, fingerprint))
        if gate is None:
            gate = _GATES[(source.name, fingerprint)] = RateGate(limit or source.rate_limit)
        return gate


class CircuitBreaker:
    """Stops asking a source that has failed to answer ``threshold`` times in a row during one run."""

    def __init__(self, threshold: int = CIRCUIT_FAILURES) -> None:
        self.threshold = threshold
        self._lock = threading.Lock()
        self._failures = 0
        self._open: SourceResult | None = None

    def opened(self) -> SourceResult | None:
        with self._lock:
            return self._open

    def record(self, result: SourceResult, unreachable: bool, title: str) -> None:
        with self._lock:
            if not unreachable:
                self._failures = 0
                return
            self._failures += 1
            if self._failures >= self.threshold and self._open is None:
                self._open = replace(
                    result, raw=None, latency_ms=0.0,
                    message=f"not tried: {title} did not answer {self._failures} times in a row "
                            f"(last: {result.message})",
                )


def config_fingerprint(source: Source, ctx: SourceContext) -> str:
    """Identifies a source's configuration (service URL, key) without containing the key."""
    digest = hashlib.sha256()
    digest.update(source.name.encode())
    digest.update(ctx.base_url.encode())
    if ctx.key is not None:
        digest.update(hashlib.sha256(ctx.key.reveal().encode()).digest())
    if ctx.settings.dns_server:
        digest.update(repr(ctx.settings.dns_server).encode())
    return digest.hexdigest()[:16]


class Enricher:
    """Runs sources over indicators. Everything that reaches the network is injected here."""

    def __init__(
        self,
        settings: Settings,
        *,
        sources: Sequence[Source] | None = None,
        session: requests.Session | None = None,
        resolver: dns.resolver.Resolver | None = None,
        cache: ResultCache | None = None,
        audit: AuditLog | None = None,
        rules: ScoringRules | None = None,
        rate_limits: dict[str, RateLimit] | None = None,
        clock: Callable[[], float] = time.time,
        refresh: bool = False,
    ) -> None:
        self.settings = settings
        self.sources = tuple(sources if sources is not None else all_sources())
        # requests keeps 10 connections per host; a source with more workers would drop and reopen them.
        self.http = HttpClient(session, pool_maxsize=max([10] + [s.max_concurrency for s in self.sources]))
        self.resolver = resolver if resolver is not None else make_resolver(settings)
        if settings.mode is Mode.LOCAL:
            self.resolver = None
        self.cache = cache
        self.audit = audit
        self.rules = rules or load_rules()
        self.clock = clock
        self.refresh = refresh
        self.contexts = {s.name: context_for(s, settings, self.http, self.resolver, clock) for s in self.sources}
        self.fingerprints = {s.name: config_fingerprint(s, self.contexts[s.name]) for s in self.sources}
        rate_limits = {**settings.rate_limits(), **(rate_limits or {})}
        self.gates = {s.name: shared_gate(s, self.fingerprints[s.name], rate_limits.get(s.name)) for s in self.sources}

    # -- one source, one indicator ------------------------------------------------------------
    def _run_one(self, source: Source, indicator: Indicator, breaker: CircuitBreaker) -> SourceResult:
        ctx = self.contexts[source.name]
        skipped = precheck(source, indicator, self.settings)
        if skipped is not None:
            return replace(skipped, data_date=source.data_date())
        fingerprint = self.fingerprints[source.name]
        if self.cache is not None and not self.refresh:
            cached = self.cache.get(source, indicator, fingerprint)
            if cached is not None:
                return replace(cached, cached=True)
        opened = breaker.opened()
        if opened is not None:
            return opened
        weights = self.rules.for_source(source.name)
        gate = self.gates[source.name]
        for attempt in (1, 2):
            if source.third_party:
                spent = gate.acquire()
                if spent is not None:
                    return source.result(Status.RATE_LIMITED, message=spent)
            result, error = attempt_source(source, indicator, ctx, weights)
            if source.third_party and self.audit is not None:
                self.audit.record(source, indicator, result.status, self.clock())
            if isinstance(error, RateLimited):
                wait = error.retry_after
                if wait is not None and wait <= MAX_RETRY_WAIT and attempt == 1:
                    gate.block(wait, "rate limited — waiting for the service's Retry-After")
                    time.sleep(wait)
                    continue
                block_for = wait if wait is not None else 60.0
                until = time.strftime("%H:%M UTC", time.gmtime(self.clock() + block_for))
                gate.block(block_for, f"quota exceeded — not checked (service asked to wait until {until})")
            break
        breaker.record(result, isinstance(error, (SourceUnreachable, SourceTimeout)), source.title)
        if self.cache is not None and result.status not in (Status.RATE_LIMITED, Status.TIMEOUT):
            self.cache.put(source, indicator, fingerprint, result)
        return result

    # -- many ---------------------------------------------------------------------------------
    def iter_results(
        self, indicators: Iterable[Indicator]
    ) -> Iterator[tuple[Indicator, SourceResult, bool]]:
        """Yield ``(indicator, result, indicator_complete)`` as each source finishes, in completion order."""
        unique: dict[tuple[str, str], Indicator] = {}
        for indicator in indicators:
            unique.setdefault(indicator.key, indicator)
        if not unique:
            return
        pending = {key: len(self.sources) for key in unique}
        done_queue: queue.Queue = queue.Queue()
        breakers = {s.name: CircuitBreaker() for s in self.sources}
        pools = {s.name: ThreadPoolExecutor(max_workers=max(1, s.max_concurrency), thread_name_prefix=f"otc-{s.name}")
                 for s in self.sources}
        stop = threading.Event()

        def skipped_now(source: Source, indicator: Indicator) -> SourceResult | None:
            """A result that needs no lookup (kind, privacy, key): given at once, not via the pool —
            in local mode most sources skip most indicators, and a thread hop each adds up."""
            skipped = precheck(source, indicator, self.settings)
            return None if skipped is None else replace(skipped, data_date=source.data_date())

        def task(source: Source, indicator: Indicator) -> None:
            if stop.is_set():
                return
            try:
                result = self._run_one(source, indicator, breakers[source.name])
            except Exception as exc:  # the engine's own bug: still a row, never a lost indicator
                result = source.result(Status.ERROR, message=f"engine error ({type(exc).__name__})")
            done_queue.put((indicator, result))

        try:
            for indicator in unique.values():
                for source in self.sources:
                    skipped = skipped_now(source, indicator)
                    if skipped is not None:
                        done_queue.put((indicator, skipped))
                    else:
                        pools[source.name].submit(task, source, indicator)
            remaining = len(unique) * len(self.sources)
            while remaining:
                indicator, result = done_queue.get()
                remaining -= 1
                pending[indicator.key] -= 1
                yield indicator, result, pending[indicator.key] == 0
        finally:
            stop.set()  # a consumer that stops early (page rerun, Ctrl-C) cancels what has not started
            for pool in pools.values():
                pool.shutdown(wait=False, cancel_futures=True)

    def enrich_many(
        self, indicators: Iterable[Indicator], on_progress: Callable[[ProgressEvent], None] | None = None
    ) -> Iterator[Enrichment]:
        """Yield one :class:`Enrichment` per distinct indicator as soon as all its sources are done."""
        indicators = list(indicators)
        total = len({i.key for i in indicators})
        collected: dict[tuple[str, str], list[SourceResult]] = {}
        counts: Counter = Counter()
        done = 0
        order = {s.name: n for n, s in enumerate(self.sources)}
        for indicator, result, complete in self.iter_results(indicators):
            collected.setdefault(indicator.key, []).append(result)
            counts[result.status.value] += 1
            if complete:
                results = sorted(collected.pop(indicator.key), key=lambda r: order.get(r.source, 0))
                enrichment = combine(indicator, results, self.rules)
                done += 1
                if on_progress is not None:
                    on_progress(ProgressEvent(done, total, enrichment, counts.copy()))
                yield enrichment

    def enrich(self, indicator: Indicator) -> Enrichment:
        return next(iter(self.enrich_many([indicator])))

    def egress_plan(self, indicators: Iterable[Indicator]) -> list[dict]:
        """Before a run: which services would see how many indicators, against their remaining quota."""
        indicators = list({i.key: i for i in indicators}.values())
        plan = []
        for source in self.sources:
            would_send = sum(1 for i in indicators if precheck(source, i, self.settings) is None)
            gate = self.gates[source.name]
            plan.append({
                "source": source.name,
                "title": source.title,
                "third_party": source.third_party,
                "indicators_sent": would_send if source.third_party else 0,
                "indicators_checked_locally": 0 if source.third_party else would_send,
                "estimated_requests": would_send if source.third_party else 0,
                "remaining_quota_today": gate.remaining_today(),
                "min_seconds": round(would_send * source.rate_limit.interval / 1.0, 1) if source.third_party else 0.0,
            })
        return plan


def default_enricher(settings: Settings, *, refresh: bool = False, **overrides) -> Enricher:
    """The enricher the dashboard and CLI use: every registered source, the audit log of outgoing
    requests and the persistent cache under ``settings.data_dir``. Tests build :class:`Enricher` directly."""
    from otc.audit import AuditLog  # late: keeps `import otc.engine` free of file-system side effects
    from otc.store import result_cache

    overrides.setdefault("audit", AuditLog.for_settings(settings))
    overrides.setdefault("cache", result_cache(settings))
    return Enricher(settings, refresh=refresh, **overrides)
