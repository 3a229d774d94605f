"""Offline country & AS: real lookups in the data shipped with iptocc and geoip2fast, through the engine."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import threading
import time

import pytest

from otc.config import Mode, Settings
from otc.engine import Enricher
from otc.indicators import parse_indicator
from otc.model import Indicator, Kind, Location, Scope, Status, Verdict
from otc.sources import offline_geo
from otc.sources.offline_geo import SOURCE as OFFLINE_GEO


def enrich_local(*texts: str):
    enricher = Enricher(Settings(mode=Mode.LOCAL), sources=[OFFLINE_GEO])
    enrichments = {e.indicator.value: e for e in enricher.enrich_many(parse_indicator(t) for t in texts)}
    return enrichments


def ip_indicator(value: str, scope: Scope, kind: Kind = Kind.IPV4) -> Indicator:
    return Indicator(kind=kind, value=value, display=value, original=value, scope=scope)


def test_map01_private_unknown_and_located_through_the_engine_in_local_mode(monkeypatch):
    """MAP-01: 10.0.0.5 gets 'N/A (private)' without any lookup; 8.8.8.8 and 162.159.24.224 are located."""
    looked_up: list[str] = []
    real_lookup = offline_geo.lookup_address

    def recording_lookup(address: str):
        looked_up.append(address)
        return real_lookup(address)

    monkeypatch.setattr(offline_geo, "lookup_address", recording_lookup)
    found = enrich_local("10.0.0.5", "8.8.8.8", "162.159.24.224")

    private = found["10.0.0.5"].result("offline_geo")
    assert private.status is Status.NOT_APPLICABLE
    assert private.message == "N/A (private address)"
    assert private.fields == {} and private.location is None
    assert "10.0.0.5" not in looked_up
    assert sorted(looked_up) == ["162.159.24.224", "8.8.8.8"]

    google = found["8.8.8.8"].result("offline_geo")
    assert google.status is Status.OK
    assert google.fields == {
        "country_code": "US", "country_name": "United States", "rir_country_code": "US",
        "as_name": "GOOGLE", "asn_cidr": "8.8.8.0/24", "network_cidr": "8.8.0.0/15",
    }
    assert google.location == Location(38.0, -97.0, "United States (US)", approximate=True)

    cloudflare = found["162.159.24.224"].result("offline_geo")
    assert cloudflare.status is Status.OK
    assert (cloudflare.fields["country_code"], cloudflare.fields["rir_country_code"]) == ("US", "US")
    assert cloudflare.fields["as_name"] == "CLOUDFLARENET"
    assert cloudflare.fields["asn_cidr"] == "162.159.0.0/18"

    # context, not evidence: no score, and never "benign" for it
    for enrichment in found.values():
        assert enrichment.contributions == () and enrichment.score == 0
        assert enrichment.verdict is Verdict.UNKNOWN


def test_map01_global_address_without_any_record_is_not_found_without_location():
    """MAP-01: an address neither data set knows (unassigned AFRINIC space) is 'no offline record', no error."""
    result = enrich_local("2c0f:ffff::1")["2c0f:ffff::1"].result("offline_geo")
    assert result.status is Status.NOT_FOUND
    assert result.message == "no offline record"
    assert result.fields == {} and result.location is None
    assert result.raw["iptocc"] is None
    assert result.raw["geoip2fast"]["country_name"] == "<not found in database>"


@pytest.mark.parametrize(
    ("address", "country", "rir", "as_name"),
    [
        ("1.1.1.1", "AU", "AU", "CLOUDFLARENET"),
        ("41.0.0.1", "ZA", "ZA", "Vodacom-VB"),
        ("2001:4860:4860::8888", "US", "US", "GOOGLE"),
        ("::ffff:8.8.8.8", "US", "US", "GOOGLE"),  # IPv4-mapped: looked up as 8.8.8.8, not as 255.255.255.255
    ],
)
def test_known_addresses_give_country_rir_country_and_as(address, country, rir, as_name):
    enrichment = next(iter(enrich_local(address).values()))
    result = enrichment.result("offline_geo")
    assert result.status is Status.OK
    assert result.fields["country_code"] == country
    assert result.fields["rir_country_code"] == rir
    assert result.fields["as_name"] == as_name
    assert result.location is not None and result.location.approximate
    assert result.location.label.endswith(f"({country})")


@pytest.mark.parametrize(
    ("indicator", "message"),
    [
        (ip_indicator("10.0.0.5", Scope.PRIVATE), "N/A (private address)"),
        (ip_indicator("100.64.0.1", Scope.SHARED), "N/A (shared CGNAT address)"),
        (ip_indicator("192.0.2.7", Scope.DOCUMENTATION), "N/A (documentation address)"),
        (ip_indicator("127.0.0.1", Scope.LOOPBACK), "N/A (loopback address)"),
        (ip_indicator("fe80::1", Scope.LINK_LOCAL, Kind.IPV6), "N/A (link-local address)"),
        (ip_indicator("224.0.0.1", Scope.MULTICAST), "N/A (multicast address)"),
        (ip_indicator("240.0.0.1", Scope.RESERVED), "N/A (reserved address)"),
    ],
    ids=lambda v: v.value if isinstance(v, Indicator) else "",
)
def test_non_global_scopes_are_not_applicable_and_never_looked_up(monkeypatch, indicator, message):
    monkeypatch.setattr(offline_geo, "lookup_address", lambda address: pytest.fail(f"looked up {address}"))
    result = Enricher(Settings(mode=Mode.LOCAL), sources=[OFFLINE_GEO]).enrich(indicator).result("offline_geo")
    assert (result.status, result.message, result.location) == (Status.NOT_APPLICABLE, message, None)


def test_special_purpose_range_is_caught_even_if_the_scope_said_global():
    # belt and braces: geoip2fast knows TEST-NET-1 as special-purpose; it must not become a location
    result = Enricher(Settings(mode=Mode.LOCAL), sources=[OFFLINE_GEO]).enrich(
        ip_indicator("192.0.2.1", Scope.GLOBAL)).result("offline_geo")
    assert result.status is Status.NOT_APPLICABLE
    assert result.message == "N/A (special-purpose address: Reserved for TEST-NET)"
    assert result.location is None


def test_url_with_an_ip_host_is_looked_up_and_a_domain_url_is_not_applicable():
    ip_url = Indicator(kind=Kind.URL, value="http://8.8.8.8/x", display="http://8.8.8.8/x",
                       original="http://8.8.8.8/x", host="8.8.8.8", host_kind=Kind.IPV4)
    v6_url = Indicator(kind=Kind.URL, value="http://[2001:4860:4860::8888]/", display="x", original="x",
                       host="[2001:4860:4860::8888]", host_kind=Kind.IPV6)
    name_url = Indicator(kind=Kind.URL, value="https://example.com/", display="https://example.com/",
                         original="https://example.com/", host="example.com", host_kind=Kind.DOMAIN)
    enricher = Enricher(Settings(mode=Mode.LOCAL), sources=[OFFLINE_GEO])
    assert enricher.enrich(ip_url).result("offline_geo").fields["as_name"] == "GOOGLE"
    assert enricher.enrich(v6_url).result("offline_geo").fields["country_code"] == "US"
    assert enricher.enrich(name_url).result("offline_geo").status is Status.NOT_APPLICABLE
    domain = parse_indicator("example.com")
    assert enricher.enrich(domain).result("offline_geo").status is Status.NOT_APPLICABLE


def test_source_declares_local_keyless_and_dates_its_data():
    assert OFFLINE_GEO.name == "offline_geo" and OFFLINE_GEO.title == "Offline country & AS"
    assert OFFLINE_GEO.third_party is False and not OFFLINE_GEO.uses_key
    assert OFFLINE_GEO.allowed_in(Mode.LOCAL)
    assert offline_geo.geoip2fast_data_date() == "2024-06-18"
    date = OFFLINE_GEO.data_date()
    assert date.startswith("geoip2fast 2024-06-18 (MaxMind GeoLite2), iptocc ")
    assert re.search(r"iptocc \d+\.\d+\.\d+ \(RIR delegations", date)
    result = enrich_local("8.8.8.8")["8.8.8.8"].result("offline_geo")
    assert result.data_date == date  # every row says which data answered it


def test_country_centroids_are_real_coordinates_never_zero_or_nan():
    table = offline_geo.country_table()
    assert len(table) > 240
    for country in table.values():
        if country.latitude is None:
            assert country.longitude is None
            continue
        assert math.isfinite(country.latitude) and math.isfinite(country.longitude)
        assert (country.latitude, country.longitude) != (0.0, 0.0)
    assert table["GB"].name == "United Kingdom"  # not "Wales", which shares the code and has no centroid
    assert offline_geo.country_location("us") == Location(38.0, -97.0, "United States (US)", approximate=True)
    assert offline_geo.country_location("CW") == Location(12.116667, -68.933333, "Curaçao (CW)", approximate=True)
    assert offline_geo.country_location("AQ") is None  # Antarctica: no centroid, so no pin
    assert offline_geo.country_location("ZZ") is None


def test_geoip_database_is_loaded_once_under_concurrency(monkeypatch):
    constructed: list[str] = []

    class SlowGeoIP:
        def __init__(self, geoip2fast_data_file: str, verbose: bool) -> None:
            time.sleep(0.05)
            constructed.append(geoip2fast_data_file)

    monkeypatch.setattr(offline_geo, "_geoip", None)
    monkeypatch.setattr(offline_geo, "_import_geoip2fast", lambda: SlowGeoIP)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(offline_geo.geoip_database())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(constructed) == 1 and constructed[0].endswith("/geoip2fast/geoip2fast-asn-ipv6.dat.gz")
    assert len(seen) == 8 and all(obj is seen[0] for obj in seen)


def test_loading_geoip2fast_leaves_the_process_environment_alone(subprocess_env):
    # geoip2fast's import sets PYTHONWARNINGS=ignore for the process and all its children; we undo it
    code = ("import os; from otc.sources.offline_geo import geoip_database; geoip_database(); "
            "print(repr(os.environ.get('PYTHONWARNINGS')), repr(os.environ.get('PYTHONIOENCODING')))")
    env = {k: v for k, v in subprocess_env.items() if k not in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None None"
