"""Quotas and pacing of the keyed reputation sources in bulk runs (API-02 and the 100-indicator run of issue 3)."""

from __future__ import annotations

import json
import re
import threading
import time

from werkzeug import Request, Response

from otc.audit import AuditLog
from otc.config import Secret, Settings
from otc.engine import Enricher, RateGate
from otc.model import Indicator, Kind, Scope, Status, Verdict
from otc.sources.abuseipdb import SOURCE as ABUSEIPDB
from otc.sources.base import RateLimit
from otc.sources.greynoise import SOURCE as GREYNOISE
from otc.sources.shodan import SOURCE as SHODAN
from otc.sources.virustotal import SOURCE as VIRUSTOTAL

ABUSE_KEY = "dummy-abuse-key-123"
KEYS = {"OTC_ABUSEIPDB_KEY": Secret(ABUSE_KEY), "OTC_VIRUSTOTAL_KEY": Secret("dummy-vt-key-456"),
        "OTC_SHODAN_KEY": Secret("dummy-shodan-key-321"), "OTC_GREYNOISE_KEY": Secret("dummy-greynoise-key-000")}


def ip(value: str) -> Indicator:
    return Indicator(Kind.IPV4, value, value, value, scope=Scope.GLOBAL)


def settings(httpserver, tmp_path) -> Settings:
    urls = {f"OTC_{name.upper()}_URL": httpserver.url_for(f"/{name}") for name in ("abuseipdb", "virustotal", "greynoise", "shodan")}
    return Settings(urls=urls, keys=KEYS, timeout=5, data_dir=tmp_path / "data")


class QuotaAbuseIpDb:
    """A fake AbuseIPDB /check that answers 200 for the first ``quota`` requests and then 429 with a Retry-After."""

    def __init__(self, quota: int, retry_after: str = "86400") -> None:
        self.quota, self.retry_after = quota, retry_after
        self.lock = threading.Lock()
        self.requests = 0
        self.served_ok = 0

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.requests += 1
            over = self.requests > self.quota
            if not over:
                self.served_ok += 1
        if over:
            body = {"errors": [{"detail": "Daily rate limit of 1000 requests exceeded for this endpoint.", "status": 429}]}
            return Response(json.dumps(body), status=429, content_type="application/json",
                            headers={"Retry-After": self.retry_after, "X-RateLimit-Remaining": "0"})
        address = request.args["ipAddress"]
        body = {"data": {"ipAddress": address, "abuseConfidenceScore": 50, "totalReports": 7, "numDistinctUsers": 3,
                         "isWhitelisted": False, "isTor": False, "usageType": "ISP", "isp": "Example ISP",
                         "lastReportedAt": "2026-11-30T00:00:00+00:00"}}
        return Response(json.dumps(body), content_type="application/json")


def greynoise_answer(request: Request) -> Response:
    address = request.path.rsplit("/", 1)[-1]
    body = {"ip": address, "noise": True, "riot": False, "classification": "unknown", "name": "unknown",
            "last_seen": "2026-11-30", "message": "Success"}
    return Response(json.dumps(body), content_type="application/json")


def test_bulk_of_100_against_abuseipdb_answering_429_after_10(httpserver, tmp_path):
    abuse = QuotaAbuseIpDb(quota=10)
    httpserver.expect_request("/abuseipdb/api/v2/check").respond_with_handler(abuse)
    httpserver.expect_request(re.compile(r"^/greynoise/v3/community/.*$")).respond_with_handler(greynoise_answer)
    httpserver.expect_request(re.compile(r"^/shodan/shodan/host/.*$")).respond_with_json(
        {"error": "No information available for that IP."}, status=404)
    config = settings(httpserver, tmp_path)
    audit = AuditLog.for_settings(config)
    # the free tiers' real pace (GreyNoise 10/min, Shodan 1/s) would make this a long test; the quota is the subject
    fast = {"greynoise": RateLimit(per_second=500), "shodan": RateLimit(per_second=500)}
    enricher = Enricher(config, sources=[ABUSEIPDB, GREYNOISE, SHODAN], audit=audit, rate_limits=fast)
    indicators = [ip(f"8.8.{n}.8") for n in range(100)]
    rows = list(enricher.enrich_many(indicators))

    assert len(rows) == 100
    abuse_results = [row.result("abuseipdb") for row in rows]
    statuses = [r.status for r in abuse_results]
    assert set(statuses) <= {Status.OK, Status.RATE_LIMITED}
    assert abuse.served_ok == 10
    assert statuses.count(Status.OK) == abuse.served_ok
    assert statuses.count(Status.RATE_LIMITED) == 90
    assert abuse.requests <= 10 + ABUSEIPDB.max_concurrency
    not_sent = [r for r in abuse_results if r.message.startswith("quota exceeded — not checked")]
    assert len(not_sent) == 100 - abuse.requests
    # a row AbuseIPDB could not check carries no AbuseIPDB score and is never called clean
    for row in rows:
        if row.result("abuseipdb").status is Status.RATE_LIMITED:
            assert not any(c.source == "abuseipdb" for c in row.contributions)
            assert row.verdict is not Verdict.LIKELY_BENIGN
    # the other sources' columns are filled for every row
    assert all(row.result("greynoise").status is Status.OK and row.result("greynoise").fields["noise"] for row in rows)
    assert all(row.result("shodan").status is Status.NOT_FOUND for row in rows)
    # every AbuseIPDB request that left is in the audit log; the key is nowhere
    logged = [e for e in audit.read() if e["source"] == "abuseipdb"]
    assert len(logged) == abuse.requests
    assert sum(e["status"] == "ok" for e in logged) == 10
    everything = json.dumps([[r.message, r.raw, dict(r.fields)] for row in rows for r in row.results], default=str)
    assert ABUSE_KEY not in everything
    assert ABUSE_KEY not in audit.path.read_text()


def test_api_02_quota_429_paces_virustotal_and_marks_abuseipdb_rows(httpserver, tmp_path):
    """API-02: 10 indicators; VirusTotal paced to its (injected, faster) rate; AbuseIPDB 429 after its quota."""
    stamps: list[float] = []

    def virustotal_answer(request: Request) -> Response:
        stamps.append(time.monotonic())
        address = request.path.rsplit("/", 1)[-1]
        flagged = address.endswith(".1")
        stats = {"harmless": 70, "malicious": 6 if flagged else 0, "suspicious": 0, "undetected": 20, "timeout": 0}
        body = {"data": {"type": "ip_address", "id": address, "attributes": {"last_analysis_stats": stats, "reputation": 0}}}
        return Response(json.dumps(body), content_type="application/json")

    abuse = QuotaAbuseIpDb(quota=3)
    httpserver.expect_request("/abuseipdb/api/v2/check").respond_with_handler(abuse)
    httpserver.expect_request(re.compile(r"^/virustotal/api/v3/ip_addresses/.*$")).respond_with_handler(virustotal_answer)
    pace = RateLimit(per_second=20)  # stands in for 4/min: same gate, 0.05 s apart instead of 15 s
    enricher = Enricher(settings(httpserver, tmp_path), sources=[ABUSEIPDB, VIRUSTOTAL], rate_limits={"virustotal": pace})
    events = []
    rows = list(enricher.enrich_many([ip(f"9.9.{n}.{1 + n % 2}") for n in range(10)], on_progress=events.append))

    assert len(rows) == 10
    # paced: ten requests, one slot apart (a little jitter allowed), not a burst
    assert len(stamps) == 10
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert stamps[-1] - stamps[0] >= 9 * pace.interval * 0.9
    assert sorted(gaps)[len(gaps) // 2] >= pace.interval * 0.9  # median: robust to one late thread on a busy machine
    # VirusTotal filled every row
    assert all(row.result("virustotal").status is Status.OK for row in rows)
    abuse_statuses = [row.result("abuseipdb").status for row in rows]
    assert abuse_statuses.count(Status.OK) == 3
    assert abuse_statuses.count(Status.RATE_LIMITED) == 7
    assert sum(row.result("abuseipdb").message.startswith("quota exceeded — not checked") for row in rows) == 10 - abuse.requests
    for row in rows:
        if row.result("abuseipdb").status is Status.RATE_LIMITED and row.result("virustotal").fields["malicious"] == 0:
            # nothing found by VT and AbuseIPDB unchecked: score 0, but unknown, never clean
            assert row.score == 0 and row.verdict is Verdict.UNKNOWN
    # the run ends with a summary that counts the skipped lookups
    assert events[-1].done == 10
    assert events[-1].status_counts["rate_limited"] == 7
    assert events[-1].status_counts["ok"] == 13


def test_declared_free_tier_paces():
    """The gates built from the declared limits: VT 15 s apart and 500 a day; AbuseIPDB 1,000 a day."""
    sleeps: list[float] = []
    gate = RateGate(VIRUSTOTAL.rate_limit, sleep=sleeps.append, monotonic=lambda: 0.0, wall=lambda: 1764500000.0)
    answers = [gate.acquire() for _ in range(501)]
    assert sleeps[:3] == [15.0, 30.0, 45.0]
    assert answers[:500] == [None] * 500
    assert answers[500] == "daily quota of 500 requests used — not checked"
    abuse_gate = RateGate(ABUSEIPDB.rate_limit, sleep=sleeps.append, monotonic=lambda: 0.0, wall=lambda: 1764500000.0)
    assert abuse_gate.remaining_today() == 1000
    assert SHODAN.rate_limit.interval == 1.0
    assert GREYNOISE.rate_limit.per_day == 100
