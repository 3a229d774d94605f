"""The SQLite store: atomic snapshot swaps, the matching index, value normalization, integrity."""

from __future__ import annotations

import sqlite3

import pytest

from otc.model import Indicator, Kind, Scope
from otc.store import (
    FeedMatch,
    Store,
    best_per_feed,
    canonical_url,
    normalize_domain,
    normalize_ip,
    url_host,
)


def make_store(tmp_path, **kwargs) -> Store:
    return Store(tmp_path / "otc.sqlite", **kwargs)


def put(store: Store, name: str, entries, **kwargs) -> int:
    defaults = dict(title=name.title(), category="C2", weight=40.0, url=f"https://feeds.example/{name}",
                    fetched_at=1_000_000.0)
    defaults.update(kwargs)
    return store.replace_snapshot(name, entries, **defaults)


def match(index, indicator: Indicator) -> list[FeedMatch]:
    return list(index.match(indicator))


def ind(kind: Kind, value: str, **kwargs) -> Indicator:
    return Indicator(kind, value, value, value, **kwargs)


# -- normalization --------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("1.2.3.4", ("ip", "1.2.3.4")),
    ("1.2.3.4/32", ("ip", "1.2.3.4")),
    ("5.188.10.7/23", ("cidr", "5.188.10.0/23")),  # host bits cleared
    ("2A06:E480:0::/29", ("cidr", "2a06:e480::/29")),
    ("2001:678:738::1", ("ip", "2001:678:738::1")),
    ("010.1.1.1", None),  # ambiguous octal-looking notation is not an entry
    ("1.2.3", None),
    ("1.2.3.4/33", None),
    ("not-an-ip", None),
])
def test_normalize_ip(text, expected):
    assert normalize_ip(text) == expected


@pytest.mark.parametrize("text", [
    "10.0.0.0/8", "192.168.1.1", "172.16.0.0/12", "127.0.0.1", "100.64.0.1", "169.254.1.1", "0.0.0.0/8",
    "192.0.2.0/24", "198.51.100.7", "203.0.113.9", "224.0.0.251", "224.0.0.0/3", "240.0.0.0/4",
    "249.176.139.93", "255.255.255.255", "0.0.0.0/0", "8.0.0.0/5",  # the last two contain private space
    "fc00::/7", "fd12::1", "fe80::1", "::1", "2001:db8::/32", "ff02::1", "::ffff:1.2.3.4",
])
def test_non_global_space_is_never_an_entry(text):
    assert normalize_ip(text) is False


@pytest.mark.parametrize(("text", "expected"), [
    ("HTTP://Example.COM", "http://example.com/"),
    ("https://example.com:443/a?b=1#frag", "https://example.com/a?b=1"),
    ("http://user:pw@example.com:8080/x", "http://example.com:8080/x"),
    ("http://example.com.?q", "http://example.com/?q"),
    ("http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"),
    ("example.com/path", None),
    ("http:///nohost", None),
])
def test_canonical_url(text, expected):
    assert canonical_url(text) == expected


def test_url_host_strips_port_and_brackets():
    assert url_host("http://example.com:8080/x") == "example.com"
    assert url_host("http://[2001:db8::1]/x") == "2001:db8::1"


@pytest.mark.parametrize(("text", "expected"), [
    ("Evil.Example.COM.", "evil.example.com"),
    ("*.evil.example.com", "evil.example.com"),
    ("münchen.de", "xn--mnchen-3ya.de"),
    ("1.2.3.4", None),
    ("no_dot", None),
    ("-bad-.com", None),
])
def test_normalize_domain(text, expected):
    assert normalize_domain(text) == expected


# -- snapshots ------------------------------------------------------------------------------------

def test_replace_snapshot_swaps_and_drops_the_old_rows(tmp_path):
    store = make_store(tmp_path)
    assert put(store, "feodo", [("ip", "50.16.16.211", None, "QakBot")]) == 1
    assert put(store, "feodo", [("ip", "34.204.119.63", None, None), ("ip", "51.161.81.190", None, None)]) == 2
    assert store.entries("feodo") == [("ip", "34.204.119.63", None, None), ("ip", "51.161.81.190", None, None)]
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1
    record = store.feed_record("feodo")
    assert record.entry_count == 2 and record.loaded and record.status == "updated"
    assert store.integrity_check() == "ok"


def test_failure_half_way_keeps_the_previous_snapshot(tmp_path):
    store = make_store(tmp_path)
    put(store, "feodo", [("ip", "50.16.16.211", None, None)], fetched_at=111.0)
    index_before = store.index()
    generation = store.generation()

    def interrupted():
        yield "ip", "34.204.119.63", None, None
        yield "ip", "51.161.81.190", None, None
        raise OSError("connection reset while reading the feed")

    with pytest.raises(OSError):
        put(store, "feodo", interrupted(), fetched_at=222.0)
    assert store.entries("feodo") == [("ip", "50.16.16.211", None, None)]
    assert store.feed_record("feodo").fetched_at == 111.0
    assert store.generation() == generation
    with sqlite3.connect(store.path) as conn:  # no half-written snapshot left behind
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 1
    assert store.index() is index_before
    assert store.integrity_check() == "ok"


def test_record_check_keeps_the_snapshot_and_restarts_the_interval(tmp_path):
    store = make_store(tmp_path)
    put(store, "feodo", [("ip", "50.16.16.211", None, None)], etag='"v1"', checked_at=100.0)
    store.record_check("feodo", status="not_modified", checked_at=500.0, etag='"v1"')
    record = store.feed_record("feodo")
    assert (record.checked_at, record.etag, record.entry_count, record.status) == (500.0, '"v1"', 1, "not_modified")
    store.record_check("feodo", status="failed", message="could not connect")  # no answer: interval unchanged
    assert store.feed_record("feodo").checked_at == 500.0
    assert store.entries("feodo") == [("ip", "50.16.16.211", None, None)]


def test_index_is_rebuilt_when_another_process_swaps_a_snapshot(tmp_path):
    clock = [0.0]
    reader = make_store(tmp_path, monotonic=lambda: clock[0])
    writer = Store(reader.path)  # stands for the CLI updating feeds while the dashboard runs
    put(writer, "feodo", [("ip", "50.16.16.211", None, None)])
    assert match(reader.index(), ind(Kind.IPV4, "50.16.16.211"))[0].feed == "feodo"
    put(writer, "feodo", [("ip", "34.204.119.63", None, None)])
    clock[0] += 0.5  # within the recheck interval the old index may still answer
    assert match(reader.index(), ind(Kind.IPV4, "34.204.119.63")) == []
    clock[0] += 1.0
    assert match(reader.index(), ind(Kind.IPV4, "34.204.119.63"))[0].feed == "feodo"
    assert match(reader.index(), ind(Kind.IPV4, "50.16.16.211")) == []


def test_an_update_through_the_same_store_is_seen_at_once(tmp_path):
    store = make_store(tmp_path, monotonic=lambda: 0.0)
    put(store, "tor_exits", [("ip", "93.95.230.253", None, None)])
    assert store.index().size == 1
    put(store, "tor_exits", [("ip", "93.95.230.253", None, None), ("ip", "185.220.101.4", None, None)])
    assert store.index().size == 2


# -- matching -------------------------------------------------------------------------------------

@pytest.fixture
def loaded(tmp_path) -> Store:
    store = make_store(tmp_path)
    put(store, "feodo", [("ip", "162.243.103.246", None, "Emotet")])
    put(store, "drop", [("cidr", "5.188.10.0/23", None, "SBL402741"), ("cidr", "2a06:e480::/29", None, "SBL1")])
    put(store, "firehol", [("cidr", "5.188.0.0/16", None, None)])
    put(store, "ipsum", [("ip", "80.82.77.33", 4, None), ("ip", "5.188.10.9", 9, None)])
    put(store, "threatfox", [("domain", "c2.badcdn-example.com", None, "Cobalt Strike"),
                             ("domain", "workers.dev", None, None),
                             ("domain", "evil-app.workers.dev", None, None),
                             ("hash", "44d88612fea8a8f36de82e1278abb02f", None, "Emotet"),
                             ("url", "http://sskymedia-example.com/vmyb/", None, None)])
    put(store, "urlhaus", [("url", "http://89.248.165.74/bins/mips", None, "malware_download"),
                           ("url", "http://89.248.165.74/bins/arm7", None, None),
                           ("url", "http://files.host-example.com/a.exe", None, None)])
    put(store, "asndrop", [("asn", "400992", None, "BADHOST-AS (RU)")])
    return store


def test_exact_ip(loaded):
    assert match(loaded.index(), ind(Kind.IPV4, "162.243.103.246")) == [
        FeedMatch("feodo", "exact", "162.243.103.246", None, "Emotet")]
    assert match(loaded.index(), ind(Kind.IPV4, "162.243.103.247")) == []


def test_ip_in_nested_ranges_of_several_feeds(loaded):
    matches = match(loaded.index(), ind(Kind.IPV4, "5.188.10.9"))
    assert matches == [
        FeedMatch("ipsum", "exact", "5.188.10.9", 9, None),
        FeedMatch("drop", "cidr", "5.188.10.0/23", None, "SBL402741"),
        FeedMatch("firehol", "cidr", "5.188.0.0/16", None, None),
    ]


def test_ipv6_in_listed_range(loaded):
    assert match(loaded.index(), ind(Kind.IPV6, "2a06:e487:1::5")) == [
        FeedMatch("drop", "cidr", "2a06:e480::/29", None, "SBL1")]


def test_cidr_indicator_inside_a_listed_range(loaded):
    assert [m.matched for m in match(loaded.index(), ind(Kind.CIDR, "5.188.10.0/24"))] == [
        "5.188.10.0/23", "5.188.0.0/16"]


def test_domain_and_parent_domain(loaded):
    index = loaded.index()
    assert match(index, ind(Kind.DOMAIN, "c2.badcdn-example.com")) == [
        FeedMatch("threatfox", "exact", "c2.badcdn-example.com", None, "Cobalt Strike")]
    assert match(index, ind(Kind.DOMAIN, "a.b.c2.badcdn-example.com")) == [
        FeedMatch("threatfox", "parent_domain", "c2.badcdn-example.com", None, "Cobalt Strike")]
    assert match(index, ind(Kind.DOMAIN, "badcdn-example.com")) == []  # a child's listing says nothing of the parent


def test_parents_stop_at_the_registrable_domain(loaded):
    # workers.dev is a public suffix (PSL private section): its listing must not taint every customer
    assert match(loaded.index(), ind(Kind.DOMAIN, "someone.workers.dev")) == []
    # ... while a customer's own name is registrable, so its subdomains match it
    assert match(loaded.index(), ind(Kind.DOMAIN, "x.evil-app.workers.dev")) == [
        FeedMatch("threatfox", "parent_domain", "evil-app.workers.dev")]


def test_url_exact_and_by_host(loaded):
    index = loaded.index()
    exact = match(index, ind(Kind.URL, "HTTP://89.248.165.74:80/bins/mips", host="89.248.165.74",
                            host_kind=Kind.IPV4))
    assert exact[0] == FeedMatch("urlhaus", "exact", "http://89.248.165.74/bins/mips", None, "malware_download")
    assert FeedMatch("urlhaus", "url_host", "89.248.165.74", 2, None, True) in exact
    other_path = match(index, ind(Kind.URL, "http://89.248.165.74/other", host="89.248.165.74"))
    assert other_path == [FeedMatch("urlhaus", "url_host", "89.248.165.74", 2, None, True)]
    on_listed_domain = match(index, ind(Kind.URL, "https://x.c2.badcdn-example.com/login"))
    assert on_listed_domain == [FeedMatch("threatfox", "parent_domain", "c2.badcdn-example.com", None,
                                          "Cobalt Strike", True)]
    # paths are case-sensitive: another spelling is only "a listed URL on this host"
    assert match(index, ind(Kind.URL, "http://sskymedia-example.com/VMYB/")) == [
        FeedMatch("threatfox", "url_host", "sskymedia-example.com", 1, None, True)]
    assert match(index, ind(Kind.URL, "http://sskymedia-example.com/vmyb/"))[0].how == "exact"


def test_ip_and_domain_hosting_listed_urls(loaded):
    index = loaded.index()
    assert match(index, ind(Kind.IPV4, "89.248.165.74")) == [FeedMatch("urlhaus", "url_host", "89.248.165.74", 2)]
    assert match(index, ind(Kind.DOMAIN, "files.host-example.com")) == [
        FeedMatch("urlhaus", "url_host", "files.host-example.com", 1)]


def test_email_matches_by_its_domain(loaded):
    matches = match(loaded.index(), ind(Kind.EMAIL, "boss@c2.badcdn-example.com", host="c2.badcdn-example.com"))
    assert matches == [FeedMatch("threatfox", "exact", "c2.badcdn-example.com", None, "Cobalt Strike", True)]


def test_hash_and_asn_exact(loaded):
    index = loaded.index()
    md5 = ind(Kind.MD5, "44D88612FEA8A8F36DE82E1278ABB02F", scope=Scope.NOT_APPLICABLE)
    assert match(index, md5) == [FeedMatch("threatfox", "exact", "44d88612fea8a8f36de82e1278abb02f", None, "Emotet")]
    assert match(index, ind(Kind.SHA256, "0" * 64, scope=Scope.NOT_APPLICABLE)) == []
    assert match(index, ind(Kind.ASN, "AS400992")) == [
        FeedMatch("asndrop", "exact", "AS400992", None, "BADHOST-AS (RU)")]
    assert match(index, ind(Kind.ASN, "400992"))[0].feed == "asndrop"


def test_best_per_feed_prefers_the_strongest_match():
    matches = [
        FeedMatch("urlhaus", "url_host", "h", 2, None, True),
        FeedMatch("urlhaus", "exact", "http://h/x"),
        FeedMatch("threatfox", "parent_domain", "p"),
        FeedMatch("threatfox", "url_host", "h", 1),
    ]
    assert best_per_feed(matches) == [FeedMatch("urlhaus", "exact", "http://h/x"),
                                      FeedMatch("threatfox", "parent_domain", "p")]


def test_empty_store_has_an_empty_index(tmp_path):
    index = make_store(tmp_path).index()
    assert index.empty and match(index, ind(Kind.IPV4, "1.2.3.4")) == []


def test_integrity_check_after_many_updates(tmp_path):
    store = make_store(tmp_path)
    for round_number in range(5):
        put(store, "ipsum", [("ip", f"45.{round_number}.{n // 250}.{n % 250 + 1}", n % 10 + 1, None)
                             for n in range(2000)])
    assert store.integrity_check() == "ok"
    assert store.feed_record("ipsum").entry_count == 2000
