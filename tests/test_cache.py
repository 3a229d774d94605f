"""The persistent result cache: TTL per status, never-cached statuses, configuration fingerprints, and the
engine asking nothing twice (counted by a real local server)."""

from __future__ import annotations

import json

import pytest

from otc.config import Mode, Secret, Settings
from otc.engine import Enricher
from otc.http import raise_for_common_status
from otc.model import Contribution, Indicator, Kind, Location, SourceResult, Status
from otc.sources.base import Source
from otc.sources.feeds import SOURCE as FEEDS
from otc.store import (
    SqliteResultCache,
    open_store,
    result_cache,
    result_from_json,
    result_to_json,
)

HOUR = 3600.0
T0 = 1_764_770_000.0


class EchoSource(Source):
    """A keyed-optional network source answering from the local test server."""

    name = "echo"
    title = "Echo reputation"
    kinds = frozenset({Kind.IPV4})
    base_url = "https://echo.invalid/api"
    third_party = True
    key_optional = True
    max_concurrency = 2

    def lookup(self, indicator, ctx):
        headers = {"Key": ctx.key.reveal()} if ctx.key else {}
        response = ctx.http.get(ctx.url(f"/{indicator.value}"), timeout=ctx.timeout, headers=headers)
        if response.status == 404:
            return self.result(Status.NOT_FOUND, message="Echo has never seen it")
        raise_for_common_status(response, self.title)
        data = response.json_object()
        return self.result(Status.OK, {"tags": data["tags"], "reports": data["reports"]}, raw=data,
                           location=Location(48.85, 2.35, "Paris, FR", False))

    def score(self, fields, weights):
        return [Contribution(self.name, "reports", 12.5, 25.0, f"+12.5 {self.title}: {fields['reports']} reports")]


ECHO = EchoSource()


def ip(value: str) -> Indicator:
    return Indicator(Kind.IPV4, value, value, value)


@pytest.fixture
def clock():
    now = [T0]
    return now


@pytest.fixture
def cache(tmp_path, clock) -> SqliteResultCache:
    return SqliteResultCache(open_store(tmp_path / "data"), clock=lambda: clock[0])


def echo_settings(httpserver, tmp_path, **kwargs) -> Settings:
    urls = {"OTC_ECHO_URL": httpserver.url_for("/echo")}
    return Settings(mode=Mode.ALL, urls=urls, data_dir=tmp_path / "data", timeout=5, **kwargs)


def requests_for(httpserver, path: str) -> int:
    return sum(1 for request, _ in httpserver.log if request.path == path)


# -- serialization ----------------------------------------------------------------------------------

def test_result_round_trips_through_json():
    result = SourceResult(
        source="echo", status=Status.OK, fields={"tags": ("scanner", "tor"), "reports": 3},
        raw={"tags": ["scanner", "tor"], "nested": {"a": [1, 2]}}, message="", latency_ms=101.5,
        contributions=(Contribution("echo", "reports", 12.5, 25.0, "+12.5 Echo: 3 reports"),),
        location=Location(48.85, 2.35, "Paris, FR", False), fetched_at=T0, data_date="2025-12-01",
    )
    back = result_from_json(result_to_json(result))
    assert back.contributions == result.contributions
    assert back.location == result.location
    assert back.fields == {"tags": ["scanner", "tor"], "reports": 3}
    assert (back.raw, back.fetched_at, back.data_date, back.latency_ms) == (result.raw, T0, "2025-12-01", 101.5)
    assert back.status is Status.OK and back.cached is True


def test_a_huge_raw_answer_is_not_kept(cache):
    big = SourceResult("echo", Status.OK, {"n": 1}, raw={"certs": ["x" * 1000] * 2000}, fetched_at=T0)
    cache.put(ECHO, ip("8.8.4.4"), "fp", big)
    got = cache.get(ECHO, ip("8.8.4.4"), "fp")
    assert got.fields == {"n": 1} and "not kept in the cache" in got.raw["note"]


# -- TTLs -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "ttl"), [
    (Status.OK, 24 * HOUR), (Status.NOT_FOUND, HOUR), (Status.ERROR, 600.0), (Status.AUTH_ERROR, 600.0),
])
def test_ttl_per_status(cache, clock, status, ttl):
    cache.put(ECHO, ip("8.8.4.4"), "fp", SourceResult("echo", status, message="m", fetched_at=T0))
    clock[0] = T0 + ttl - 1
    assert cache.get(ECHO, ip("8.8.4.4"), "fp").status is status
    clock[0] = T0 + ttl + 1
    assert cache.get(ECHO, ip("8.8.4.4"), "fp") is None


@pytest.mark.parametrize("status", [Status.RATE_LIMITED, Status.TIMEOUT, Status.SKIPPED_NO_KEY,
                                    Status.SKIPPED_PRIVACY, Status.NOT_APPLICABLE])
def test_never_cached_statuses(cache, status):
    cache.put(ECHO, ip("8.8.4.4"), "fp", SourceResult("echo", status, message="try later"))
    assert cache.get(ECHO, ip("8.8.4.4"), "fp") is None
    assert cache.store.cache_read("echo", "ipv4", "8.8.4.4", "fp") is None


def test_a_source_can_set_its_own_ttl(cache, clock):
    class Slow(EchoSource):
        name = "slow"
        cache_ttl = {"ok": 7 * 24 * HOUR, Status.NOT_FOUND: 0}

    slow = Slow()
    cache.put(slow, ip("8.8.4.4"), "fp", SourceResult("slow", Status.OK, fetched_at=T0))
    cache.put(slow, ip("8.8.8.8"), "fp", SourceResult("slow", Status.NOT_FOUND, fetched_at=T0))
    clock[0] = T0 + 6 * 24 * HOUR
    assert cache.get(slow, ip("8.8.4.4"), "fp") is not None
    assert cache.get(slow, ip("8.8.8.8"), "fp") is None


def test_local_sources_are_never_cached(cache):
    # the feed source must reflect a feed update at once, and is cheaper than the cache anyway
    cache.put(FEEDS, ip("8.8.4.4"), "fp", SourceResult("feeds", Status.OK, fetched_at=T0))
    assert cache.get(FEEDS, ip("8.8.4.4"), "fp") is None


def test_key_includes_kind_value_and_fingerprint(cache):
    cache.put(ECHO, ip("8.8.4.4"), "fp-a", SourceResult("echo", Status.OK, {"x": 1}, fetched_at=T0))
    assert cache.get(ECHO, ip("8.8.4.4"), "fp-b") is None
    assert cache.get(ECHO, ip("8.8.8.8"), "fp-a") is None
    assert cache.get(ECHO, Indicator(Kind.DOMAIN, "8.8.4.4", "8.8.4.4", "8.8.4.4"), "fp-a") is None
    assert cache.get(ECHO, ip("8.8.4.4"), "fp-a").fields == {"x": 1}


def test_expired_rows_are_purged(cache, clock):
    cache.put(ECHO, ip("8.8.4.4"), "fp", SourceResult("echo", Status.ERROR, message="x", fetched_at=T0))
    cache.put(ECHO, ip("8.8.8.8"), "fp", SourceResult("echo", Status.OK, fetched_at=T0))
    clock[0] = T0 + HOUR
    assert cache.purge_expired() == 1
    assert cache.get(ECHO, ip("8.8.8.8"), "fp") is not None


def test_expired_rows_are_dropped_when_the_cache_is_first_opened(tmp_path, clock):
    store = open_store(tmp_path / "other")
    store.cache_write("echo", "ipv4", "8.8.4.4", "fp", "ok", T0, T0 + 10, "{}")
    store.cache_write("echo", "ipv4", "8.8.8.8", "fp", "ok", T0, T0 + HOUR, "{}")
    clock[0] = T0 + 60
    SqliteResultCache(store, clock=lambda: clock[0])
    assert store.cache_read("echo", "ipv4", "8.8.4.4", "fp") is None
    assert store.cache_read("echo", "ipv4", "8.8.8.8", "fp") is not None


def test_unreadable_row_is_a_miss(cache):
    cache.store.cache_write("echo", "ipv4", "8.8.4.4", "fp", "ok", T0, T0 + HOUR, "{not json")
    assert cache.get(ECHO, ip("8.8.4.4"), "fp") is None


# -- through the engine -----------------------------------------------------------------------------

def answer(httpserver, value: str, reports: int = 3) -> None:
    httpserver.expect_request(f"/echo/api/{value}").respond_with_json({"tags": ["scanner"], "reports": reports})


def test_second_run_asks_nothing_and_says_cached(httpserver, tmp_path, clock):
    settings = echo_settings(httpserver, tmp_path)
    answer(httpserver, "8.8.4.4")
    cache = result_cache(settings, clock=lambda: clock[0])
    first = Enricher(settings, sources=[ECHO], cache=cache, clock=lambda: clock[0]).enrich(ip("8.8.4.4"))
    clock[0] = T0 + 2 * HOUR
    second = Enricher(settings, sources=[ECHO], cache=cache, clock=lambda: clock[0]).enrich(ip("8.8.4.4"))
    assert requests_for(httpserver, "/echo/api/8.8.4.4") == 1
    result = second.result("echo")
    assert result.cached is True and first.result("echo").cached is False
    assert result.fetched_at == T0  # so the panel can say "cached 2 h ago"
    assert result.location == Location(48.85, 2.35, "Paris, FR", False)
    assert second.contributions == first.contributions and second.score == first.score == 12


def test_refresh_bypasses_the_cache_and_stores_the_new_answer(httpserver, tmp_path, clock):
    settings = echo_settings(httpserver, tmp_path)
    answer(httpserver, "8.8.4.4")
    cache = result_cache(settings, clock=lambda: clock[0])
    Enricher(settings, sources=[ECHO], cache=cache, clock=lambda: clock[0]).enrich(ip("8.8.4.4"))
    clock[0] = T0 + 60
    refreshed = Enricher(settings, sources=[ECHO], cache=cache, refresh=True,
                         clock=lambda: clock[0]).enrich(ip("8.8.4.4")).result("echo")
    assert requests_for(httpserver, "/echo/api/8.8.4.4") == 2
    assert refreshed.cached is False
    assert cache.get(ECHO, ip("8.8.4.4"), Enricher(settings, sources=[ECHO]).fingerprints["echo"]).fetched_at == T0 + 60


def test_a_change_of_key_or_url_is_a_miss(httpserver, tmp_path, clock):
    answer(httpserver, "8.8.4.4")
    httpserver.expect_request("/other/api/8.8.4.4").respond_with_json({"tags": [], "reports": 0})
    plain = echo_settings(httpserver, tmp_path)
    keyed = echo_settings(httpserver, tmp_path, keys={"OTC_ECHO_KEY": Secret("k-one")})
    rekeyed = echo_settings(httpserver, tmp_path, keys={"OTC_ECHO_KEY": Secret("k-two")})
    moved = Settings(mode=Mode.ALL, urls={"OTC_ECHO_URL": httpserver.url_for("/other")},
                     data_dir=tmp_path / "data", timeout=5)
    cache = result_cache(plain, clock=lambda: clock[0])
    for settings in (plain, keyed, rekeyed, moved, plain, keyed):
        Enricher(settings, sources=[ECHO], cache=cache).enrich(ip("8.8.4.4"))
    assert requests_for(httpserver, "/echo/api/8.8.4.4") == 3  # plain, k-one, k-two; then both from cache
    assert requests_for(httpserver, "/other/api/8.8.4.4") == 1
    stored = open_store(tmp_path / "data")
    rows = stored._conn.execute("SELECT fingerprint, result FROM result_cache").fetchall()
    assert len(rows) == 4
    assert not any("k-one" in fp or "k-one" in payload for fp, payload in rows)  # the key is never stored


def test_rate_limited_answers_are_asked_again_next_run(httpserver, tmp_path, clock):
    settings = echo_settings(httpserver, tmp_path)
    httpserver.expect_ordered_request("/echo/api/8.8.4.4").respond_with_data(
        json.dumps({"detail": "quota"}), status=429, headers={"Retry-After": "3600"})
    httpserver.expect_ordered_request("/echo/api/8.8.4.4").respond_with_json({"tags": [], "reports": 1})
    cache = result_cache(settings, clock=lambda: clock[0])
    first = Enricher(settings, sources=[ECHO], cache=cache).enrich(ip("8.8.4.4")).result("echo")
    assert first.status is Status.RATE_LIMITED
    from otc.engine import _GATES

    _GATES.clear()  # a later run (new process): the quota block is over
    second = Enricher(settings, sources=[ECHO], cache=cache).enrich(ip("8.8.4.4")).result("echo")
    assert second.status is Status.OK and second.cached is False
    assert requests_for(httpserver, "/echo/api/8.8.4.4") == 2


def test_a_run_stopped_half_way_resumes_without_asking_again(httpserver, tmp_path, clock):
    settings = echo_settings(httpserver, tmp_path)
    addresses = [f"45.9.20.{n}" for n in range(1, 41)]
    for address in addresses:
        answer(httpserver, address)
    cache = result_cache(settings, clock=lambda: clock[0])
    done_first = []
    for enrichment in Enricher(settings, sources=[ECHO], cache=cache).enrich_many([ip(a) for a in addresses]):
        done_first.append(enrichment.indicator.value)
        if len(done_first) == 15:
            break  # the analyst stops the run (or the page reruns)
    httpserver.clear_log()
    second = list(Enricher(settings, sources=[ECHO], cache=cache).enrich_many([ip(a) for a in addresses]))
    assert len(second) == 40 and all(e.result("echo").status is Status.OK for e in second)
    asked_again = {request.path.rsplit("/", 1)[1] for request, _ in httpserver.log}
    assert not asked_again & set(done_first)
    assert all(e.result("echo").cached for e in second if e.indicator.value in done_first)
    assert cache.store.integrity_check() == "ok"
