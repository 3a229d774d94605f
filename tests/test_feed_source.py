"""The `feeds` source through the engine, in local-only mode: which lists, how old, and the score."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from otc.config import Mode, Settings
from otc.engine import Enricher
from otc.feeds import update_feeds
from otc.indicators import parse_indicator
from otc.model import Indicator, Kind, Scope, Status
from otc.sources import all_sources
from otc.sources.feeds import NO_FEEDS_MESSAGE, SOURCE as FEEDS
from otc.store import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
NOW = 1_764_770_000.0  # 2025-12-03 13:53 UTC
THREE_HOURS_AGO = NOW - 3 * 3600 - 120


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(mode=Mode.LOCAL, data_dir=tmp_path / "data")


@pytest.fixture
def loaded(settings, tmp_path) -> Settings:
    """Every fixture feed imported from files written three hours before NOW."""
    folder = tmp_path / "feeds-in"
    shutil.copytree(FIXTURES, folder)
    for path in folder.iterdir():
        os.utime(path, (THREE_HOURS_AGO, THREE_HOURS_AGO))
    update_feeds(settings, from_dir=folder)
    return settings


def enrich(settings: Settings, indicator):
    if isinstance(indicator, str):
        indicator = parse_indicator(indicator)
    return Enricher(settings, sources=[FEEDS], clock=lambda: NOW).enrich(indicator)


def test_the_source_is_registered_local_and_handles_every_kind():
    assert FEEDS in all_sources()
    assert (FEEDS.name, FEEDS.title, FEEDS.third_party) == ("feeds", "Local feed snapshots", False)
    assert FEEDS.kinds == frozenset(Kind)
    assert FEEDS.allowed_in(Mode.LOCAL)


def test_no_feeds_loaded_is_not_an_answer_and_says_how_to_load_them(settings):
    enrichment = enrich(settings, "162.243.103.246")
    result = enrichment.result("feeds")
    assert result.status is Status.NOT_APPLICABLE  # nothing was checked: never "not on any list"
    assert not result.status.answered
    assert "feeds update --from DIR" in result.message and "nothing was checked" in result.message
    assert not settings.data_dir.exists()  # a lookup does not create the store


def test_lookup_in_local_mode_names_the_list_and_its_age(loaded):
    enrichment = enrich(loaded, "162.243.103.246")
    result = enrichment.result("feeds")
    assert result.status is Status.OK
    assert result.fields["lists"] == ["feodo"]
    assert result.fields["categories"] == ["C2"]
    assert result.fields["details"] == [
        "Feodo Tracker (C2): listed — Emotet, C2 offline, last online 2025-11-07; list fetched 3 h ago, "
        "dated 2025-12-03 10:05 UTC"]
    assert [c.reason for c in enrichment.contributions] == ["+40 Feodo Tracker (C2): listed, list fetched 3 h ago"]
    assert enrichment.score == 40 and enrichment.verdict.value == "suspicious"
    assert result.data_date == "2025-12-03 10:51 UTC"  # newest snapshot (the files' time)
    assert FEEDS.data_date() == "2025-12-03 10:51 UTC"


def test_several_lists_add_up(loaded):
    enrichment = enrich(loaded, "80.82.77.33")
    result = enrichment.result("feeds")
    assert result.fields["lists"] == ["ipsum", "et_compromised"]
    assert result.fields["ipsum_count"] == 10
    assert [c.reason for c in enrichment.contributions] == [
        "+30 IPsum (scanner): reported on 10 lists, list fetched 3 h ago",
        "+25 ET compromised IPs (scanner): listed, list fetched 3 h ago",
    ]
    assert enrichment.score == 55


def test_ipsum_is_scaled_by_its_count(loaded):
    enrichment = enrich(loaded, "45.148.10.240")  # on 4 lists: 30 x 4/8
    assert [c.reason for c in enrichment.contributions] == [
        "+15 IPsum (scanner): reported on 4 lists, list fetched 3 h ago"]
    assert enrichment.contributions[0].weight == 30


def test_range_match_names_the_range(loaded):
    enrichment = enrich(loaded, "5.188.11.200")
    assert [c.reason for c in enrichment.contributions] == [
        "+40 Spamhaus DROP (IPv4) (drop): in listed range 5.188.10.0/23, list fetched 3 h ago"]


def test_ipv6_range(loaded):
    assert enrich(loaded, "2a06:e480::5").result("feeds").fields["lists"] == ["spamhaus_drop_v6"]


def test_parent_domain_scores_less_than_the_name_itself(loaded):
    exact = enrich(loaded, "c2-panel.badcdn-example.com")
    parent = enrich(loaded, "cdn.c2-panel.badcdn-example.com")
    assert [c.reason for c in exact.contributions] == ["+40 ThreatFox (malware): listed, list fetched 3 h ago"]
    assert [c.reason for c in parent.contributions] == [
        "+32 ThreatFox (malware): parent domain c2-panel.badcdn-example.com listed, list fetched 3 h ago"]


def test_url_exact_and_a_domain_hosting_listed_urls(loaded):
    url = Indicator(Kind.URL, "http://89.248.165.74/bins/mips", "http://89.248.165.74/bins/mips",
                    "http://89.248.165.74/bins/mips", host="89.248.165.74", host_kind=Kind.IPV4)
    assert [c.reason for c in enrich(loaded, url).contributions] == [
        "+40 URLhaus (malware): listed, list fetched 3 h ago"]
    host = enrich(loaded, "send-usdt-9999.netlify.app")
    assert [c.reason for c in host.contributions] == [
        "+20 OpenPhish community (phishing): 1 listed URL on send-usdt-9999.netlify.app, list fetched 3 h ago"]


def test_hash_and_asn(loaded):
    md5 = Indicator(Kind.MD5, "44d88612fea8a8f36de82e1278abb02f", "44d88612fea8a8f36de82e1278abb02f", "x",
                    scope=Scope.NOT_APPLICABLE)
    assert enrich(loaded, md5).result("feeds").fields["lists"] == ["threatfox"]
    asn = Indicator(Kind.ASN, "AS400992", "AS400992", "AS400992")
    assert [c.reason for c in enrich(loaded, asn).contributions] == [
        "+30 Spamhaus ASN-DROP (drop): listed, list fetched 3 h ago"]


def test_unlisted_is_not_found_not_clean(loaded):
    enrichment = enrich(loaded, "9.9.9.10")
    result = enrichment.result("feeds")
    assert result.status is Status.NOT_FOUND
    assert result.message == "not on any of the 12 loaded lists (newest fetched 3 h ago)"
    assert enrichment.verdict.value == "unknown"


@pytest.mark.parametrize("address", [
    pytest.param("10.1.2.3", id="IP-02-rfc1918-10"),
    pytest.param("192.168.0.7", id="IP-02-rfc1918-192.168"),
    pytest.param("127.0.0.1", id="IP-02-loopback"),
    pytest.param("100.64.0.1", id="IP-02-shared-cgnat"),
    pytest.param("192.0.2.1", id="IP-02-documentation-test-net-1"),
    pytest.param("224.0.0.251", id="IP-02-multicast"),
    pytest.param("249.176.139.93", id="IP-02-reserved-240-4"),
])
def test_special_purpose_space_listed_by_firehol_is_never_scored(loaded, address):
    """Edge case IP-02: FireHOL level1 lists these ranges as bogons; that is never evidence."""
    enrichment = enrich(loaded, address)
    result = enrichment.result("feeds")
    assert result.status is Status.NOT_APPLICABLE
    assert "never matched against blocklists" in result.message
    assert enrichment.score == 0 and enrichment.contributions == ()


def test_firehol_bogons_are_not_even_in_the_index(loaded):
    # even an indicator wrongly marked global finds nothing: the bogons were skipped at import
    index = open_store(loaded.data_dir).index()
    for address in ("10.1.2.3", "192.168.0.7", "127.0.0.1", "100.64.0.1", "0.1.2.3", "230.1.1.1"):
        assert index.match(Indicator(Kind.IPV4, address, address, address, scope=Scope.GLOBAL)) == ()
    firehol = open_store(loaded.data_dir).feed_record("firehol_level1")
    assert firehol.entry_count == 2


def test_a_feed_update_is_seen_by_the_next_lookup(loaded, tmp_path):
    assert enrich(loaded, "193.47.62.69").result("feeds").fields["lists"] == ["et_compromised"]
    folder = tmp_path / "newer"
    folder.mkdir()
    (folder / "et_compromised-ips.txt").write_text("80.82.77.33\n")
    update_feeds(loaded, from_dir=folder)
    assert enrich(loaded, "193.47.62.69").result("feeds").status is Status.NOT_FOUND


def test_stale_list_date_is_said_in_the_reason(settings, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "firehol_level1.netset").write_text(
        "# This File Date  : Fri Nov 13 17:18:59 UTC 2015\n31.184.192.0/19\n")
    os.utime(folder / "firehol_level1.netset", (THREE_HOURS_AGO, THREE_HOURS_AGO))
    update_feeds(settings, from_dir=folder)
    assert [c.reason for c in enrich(settings, "31.184.200.1").contributions] == [
        "+20 FireHOL level1 (drop): in listed range 31.184.192.0/19, list fetched 3 h ago "
        "(list dated 2015-11-13 17:18 UTC)"]
