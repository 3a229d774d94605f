"""The engine: concurrency, dedupe, circuit breaker, quotas, privacy checks and error statuses."""

from __future__ import annotations

import threading
import time

import pytest

from otc.config import Mode, Secret, Settings
from otc.engine import Enricher, RateGate
from otc.errors import RateLimited, SourceTimeout, SourceUnreachable
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.base import RateLimit, Source


def ip(value: str, scope: Scope = Scope.GLOBAL) -> Indicator:
    return Indicator(Kind.IPV4, value, value, value, scope=scope)


class ScriptedSource(Source):
    """A source whose behaviour per indicator value is given by a function; counts its calls."""

    kinds = frozenset({Kind.IPV4})
    base_url = "http://127.0.0.1:9"
    max_concurrency = 4

    def __init__(self, name: str, behaviour, **attrs):
        self.name = name
        self.title = name.title()
        self.behaviour = behaviour
        self.calls: list[str] = []
        self.lock = threading.Lock()
        for key, value in attrs.items():
            setattr(self, key, value)

    def lookup(self, indicator, ctx):
        with self.lock:
            self.calls.append(indicator.value)
        return self.behaviour(self, indicator, ctx)


def ok(source, indicator, ctx):
    return source.result(Status.OK, {"seen": True})


def test_duplicates_are_looked_up_once():
    source = ScriptedSource("alpha", ok)
    enrichments = list(Enricher(Settings(), sources=[source]).enrich_many([ip("1.2.3.4"), ip("1.2.3.4"), ip("5.6.7.8")]))
    assert sorted(e.indicator.value for e in enrichments) == ["1.2.3.4", "5.6.7.8"]
    assert sorted(source.calls) == ["1.2.3.4", "5.6.7.8"]


def test_slow_source_does_not_hold_back_the_others():
    release = threading.Event()

    def slow(source, indicator, ctx):
        release.wait(5)
        return source.result(Status.OK, {})

    fast, slow_source = ScriptedSource("fast", ok), ScriptedSource("slow", slow)
    enricher = Enricher(Settings(), sources=[slow_source, fast])
    events = enricher.iter_results([ip("1.1.1.1"), ip("2.2.2.2")])
    first_two = [next(events), next(events)]
    assert {result.source for _, result, _ in first_two} == {"fast"}
    release.set()
    rest = list(events)
    assert [complete for _, _, complete in first_two + rest].count(True) == 2


def test_circuit_breaker_stops_asking_an_unreachable_source():
    def refused(source, indicator, ctx):
        raise SourceUnreachable("could not connect to 127.0.0.1:9 (connection refused)")

    dead = ScriptedSource("dead", refused, max_concurrency=1)
    indicators = [ip(f"8.8.8.{n}") for n in range(1, 21)]
    enrichments = list(Enricher(Settings(), sources=[dead]).enrich_many(indicators))
    assert len(dead.calls) == 3
    statuses = [e.result("dead").status for e in enrichments]
    assert statuses == [Status.ERROR] * 20
    assert sum("not tried" in e.result("dead").message for e in enrichments) == 17
    assert all(e.verdict is Verdict.UNKNOWN for e in enrichments)


def test_timeouts_open_the_breaker_too_and_keep_their_status():
    def slow(source, indicator, ctx):
        raise SourceTimeout("127.0.0.1:9 did not answer within 1 s")

    source = ScriptedSource("sleepy", slow, max_concurrency=1)
    enrichments = list(Enricher(Settings(), sources=[source]).enrich_many([ip(f"9.9.9.{n}") for n in range(10)]))
    assert len(source.calls) == 3
    assert {e.result("sleepy").status for e in enrichments} == {Status.TIMEOUT}


def test_short_retry_after_is_waited_out_and_retried_once():
    attempts = {"n": 0}

    def limited_once(source, indicator, ctx):
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RateLimited("slow down", retry_after=0.2)
        return source.result(Status.OK, {})

    source = ScriptedSource("pacey", limited_once, max_concurrency=1)
    started = time.monotonic()
    result = Enricher(Settings(), sources=[source]).enrich(ip("4.4.4.4")).result("pacey")
    assert result.status is Status.OK
    assert time.monotonic() - started >= 0.2
    assert attempts["n"] == 2


def test_long_retry_after_marks_the_rest_rate_limited_without_asking():
    served = {"n": 0}

    def quota(source, indicator, ctx):
        served["n"] += 1
        if served["n"] > 5:
            raise RateLimited("daily limit", retry_after=86400)
        return source.result(Status.OK, {})

    source = ScriptedSource("quota", quota, max_concurrency=1)
    enrichments = list(Enricher(Settings(), sources=[source]).enrich_many([ip(f"7.7.7.{n}") for n in range(30)]))
    statuses = [e.result("quota").status for e in enrichments]
    assert statuses.count(Status.OK) == 5
    assert statuses.count(Status.RATE_LIMITED) == 25
    assert len(source.calls) == 6  # the 6th got the 429; nothing asked after it
    assert all(e.score == 0 and e.verdict is Verdict.UNKNOWN for e in enrichments if e.result("quota").status is Status.RATE_LIMITED)
    assert "quota exceeded — not checked" in enrichments[-1].result("quota").message


def test_daily_quota_is_counted_before_sending():
    source = ScriptedSource("tiny", ok, max_concurrency=1)
    enricher = Enricher(Settings(), sources=[source], rate_limits={"tiny": RateLimit(per_day=3)})
    enrichments = list(enricher.enrich_many([ip(f"6.6.6.{n}") for n in range(5)]))
    assert len(source.calls) == 3
    assert [e.result("tiny").status for e in enrichments].count(Status.RATE_LIMITED) == 2
    assert enricher.gates["tiny"].remaining_today() == 0


def test_pacing_spaces_requests():
    slept: list[float] = []
    clock = {"t": 100.0}
    gate = RateGate(RateLimit(per_minute=60), sleep=lambda s: slept.append(s), monotonic=lambda: clock["t"])
    for _ in range(3):
        assert gate.acquire() is None
    assert slept == [1.0, 2.0]


def test_privacy_and_mode_are_checked_before_anything_is_sent():
    source = ScriptedSource("remote", ok)
    local = ScriptedSource("local", ok, third_party=False)
    enricher = Enricher(Settings(), sources=[source, local])
    private = enricher.enrich(ip("192.168.1.20", Scope.PRIVATE))
    assert private.result("remote").status is Status.SKIPPED_PRIVACY
    assert private.result("local").status is Status.OK
    assert source.calls == []
    offline = Enricher(Settings(mode=Mode.LOCAL), sources=[source, local]).enrich(ip("8.8.8.8"))
    assert offline.result("remote").status is Status.SKIPPED_PRIVACY
    assert "local-only mode" in offline.result("remote").message
    assert source.calls == []


def test_local_mode_has_no_resolver():
    assert Enricher(Settings(mode=Mode.LOCAL, dns_server=("127.0.0.1", 53)), sources=[]).resolver is None


def test_missing_key_and_keyless_mode():
    keyed = ScriptedSource("keyed", ok, needs_key=True, key_url="https://example.invalid/keys")
    result = Enricher(Settings(), sources=[keyed]).enrich(ip("1.1.1.1")).result("keyed")
    assert result.status is Status.SKIPPED_NO_KEY
    assert "OTC_KEYED_KEY" in result.message
    with_key = Settings(mode=Mode.KEYLESS, keys={"OTC_KEYED_KEY": Secret("k")})
    assert Enricher(with_key, sources=[keyed]).enrich(ip("1.1.1.1")).result("keyed").status is Status.SKIPPED_PRIVACY
    assert keyed.calls == []


def test_a_crashing_source_is_an_error_row_and_keys_are_redacted():
    def crash(source, indicator, ctx):
        raise ValueError("boom with key " + ctx.key.reveal())

    def leaky(source, indicator, ctx):
        return source.result(Status.OK, {"echo": ctx.key.reveal()}, raw={"url": "x?key=" + ctx.key.reveal()},
                             message="used " + ctx.key.reveal())

    settings = Settings(keys={"OTC_CRASHY_KEY": Secret("s3cr3t-value"), "OTC_LEAKY_KEY": Secret("s3cr3t-value")})
    crashy = ScriptedSource("crashy", crash, key_optional=True)
    leaky_source = ScriptedSource("leaky", leaky, key_optional=True)
    enrichment = Enricher(settings, sources=[crashy, leaky_source]).enrich(ip("3.3.3.3"))
    assert enrichment.result("crashy").status is Status.ERROR
    assert enrichment.result("crashy").message == "Crashy failed unexpectedly (ValueError)"
    text = repr(enrichment)
    assert "s3cr3t-value" not in text
    assert enrichment.result("leaky").fields["echo"] == "***"


def test_not_applicable_kinds_are_not_called():
    source = ScriptedSource("iponly", ok)
    md5 = Indicator(Kind.MD5, "d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427e", "x",
                    scope=Scope.NOT_APPLICABLE)
    assert Enricher(Settings(), sources=[source]).enrich(md5).result("iponly").status is Status.NOT_APPLICABLE
    assert source.calls == []


def test_egress_plan_counts_what_would_leave():
    remote = ScriptedSource("remote", ok, rate_limit=RateLimit(per_day=500))
    local = ScriptedSource("local", ok, third_party=False)
    plan = Enricher(Settings(), sources=[remote, local]).egress_plan(
        [ip("8.8.8.8"), ip("8.8.8.8"), ip("1.1.1.1"), ip("10.0.0.1", Scope.PRIVATE)])
    by_name = {row["source"]: row for row in plan}
    assert by_name["remote"]["indicators_sent"] == 2
    assert by_name["remote"]["remaining_quota_today"] == 500
    assert by_name["local"]["indicators_sent"] == 0
    assert by_name["local"]["indicators_checked_locally"] == 3


def test_burst_goes_at_once_then_the_pace_applies():
    slept: list[float] = []
    clock = {"t": 0.0}
    gate = RateGate(RateLimit(per_minute=60, burst=3), sleep=lambda s: slept.append(s), monotonic=lambda: clock["t"])
    for _ in range(5):
        gate.acquire()
    assert slept == [1.0, 2.0]
    clock["t"] = 10.0  # a quiet spell refills the bucket up to the burst, not beyond
    slept.clear()
    for _ in range(4):
        gate.acquire()
    assert slept == [1.0]


def test_rate_setting_overrides_a_sources_pace():
    from otc.config import load_settings

    settings = load_settings(environ={"OTC_RDAP_RATE": "0", "OTC_VIRUSTOTAL_RATE": "120"}, secrets={})
    limits = settings.rate_limits()
    assert limits["rdap"].interval == 0.0
    assert limits["virustotal"].interval == 0.5
