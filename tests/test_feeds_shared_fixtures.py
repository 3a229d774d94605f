"""Replays the shared corpus of recorded feed files (../shared/fixtures/feeds): every file loads, and a
lookup with no network at all says which lists and how old they are."""

from __future__ import annotations

import pytest

from conftest import shared_path
from otc.config import Mode, Settings
from otc.engine import Enricher
from otc.feeds import load_feeds, match_files, parse_feed, update_feeds
from otc.indicators import parse_indicator
from otc.model import Indicator, Kind, Status
from otc.sources.feeds import SOURCE as FEEDS
from otc.store import open_store

# file -> (format it is read as, entries, data rows); the rows are what the files hold
PER_FILE = {
    "et_compromised-ips_RECONSTRUCTED.txt": ("et_plain", 20, 20),
    "feodo_ipblocklist_RECONSTRUCTED.csv": ("feodo_csv", 6, 6),
    "feodo_ipblocklist_intelowl_mock.json": ("feodo_json", 3, 3),
    "feodo_ipblocklist_recommended_RECONSTRUCTED.txt": ("feodo_txt", 3, 3),
    "firehol_level1_2015_head.netset": ("netset", 120, 122),  # 0.0.0.0/8 and 10.0.0.0/8 skipped
    "ipsum_head2000.txt": ("ipsum", 1993, 1993),
    "ipsum_levels_8.txt": ("ipsum_level", 23, 23),
    "openphish_feed.txt": ("openphish", 300, 300),
    "phishtank_checkurl_RECONSTRUCTED.json": ("phishtank_checkurl", 1, 1),
    "phishtank_online-valid_RECONSTRUCTED.csv": ("phishtank_csv", 2, 2),
    "phishtank_online-valid_RECONSTRUCTED.json": ("phishtank_json", 1, 1),
    "spamhaus_asndrop_RECONSTRUCTED.json": ("spamhaus_asndrop_json", 2, 2),
    "spamhaus_drop_legacy_RECONSTRUCTED.txt": ("spamhaus_drop_legacy", 4, 4),
    "spamhaus_drop_v4_RECONSTRUCTED.json": ("spamhaus_drop_json", 4, 4),
    "spamhaus_drop_v6_RECONSTRUCTED.json": ("spamhaus_drop_json", 3, 3),
    "threatfox_csv_recent_RECONSTRUCTED.csv": ("threatfox_csv", 3, 3),
    "tor_exit-addresses_sample.txt": ("tor_exit_addresses", 1, 1),
    "tor_exit_nodes_secops_mirror.lst": ("tor_bulk", 1746, 1746),
    "torbulkexitlist_sample_RECONSTRUCTED.txt": ("tor_bulk", 300, 300),
    "urlhaus_csv_recent_RECONSTRUCTED.csv": ("urlhaus_csv", 5, 5),
    "urlhaus_text_online_RECONSTRUCTED.txt": ("urlhaus_text", 4, 4),
}
# Recorded HTTP headers of a PhishTank refusal, not a list: replayed as a download below.
NOT_A_FEED_FILE = "phishtank_509_bandwidth_limit.headers.txt"

PER_FEED = {
    "spamhaus_drop_v4": 4, "spamhaus_drop_v6": 3, "spamhaus_asndrop": 2, "firehol_level1": 120, "feodo": 6,
    "tor_exits": 1747, "ipsum": 1993, "et_compromised": 20, "openphish": 300, "urlhaus": 7, "threatfox": 3,
    "phishtank": 2,
}


@pytest.fixture(scope="module")
def feeds_dir():
    return shared_path("fixtures", "feeds")


def test_every_shared_file_belongs_to_a_feed(feeds_dir):
    matched, unmatched = match_files(feeds_dir, load_feeds())
    assert [p.name for p in unmatched] == [NOT_A_FEED_FILE]
    formats = {p.name: fmt for files in matched.values() for p, fmt in files}
    assert formats == {name: fmt for name, (fmt, _, _) in PER_FILE.items()}


@pytest.mark.parametrize("name", sorted(PER_FILE))
def test_each_shared_file_parses(feeds_dir, name):
    fmt, entries, rows = PER_FILE[name]
    entry_set, report = parse_feed(fmt, (feeds_dir / name).read_text(), filename=name)
    assert (len(entry_set), report.rows, report.invalid) == (entries, rows, 0)
    if report.declared is not None:  # Spamhaus metadata "records", abuse.ch "# END n entries"
        assert report.declared == report.rows


def test_update_from_the_shared_folder_loads_every_feed(tmp_path, feeds_dir):
    settings = Settings(mode=Mode.LOCAL, data_dir=tmp_path / "data")
    updates = update_feeds(settings, from_dir=feeds_dir)
    assert {u.name: (u.status, u.entries) for u in updates} == {n: ("imported", c) for n, c in PER_FEED.items()}
    assert open_store(settings.data_dir).integrity_check() == "ok"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, feeds_dir) -> Settings:
    settings = Settings(mode=Mode.LOCAL, data_dir=tmp_path_factory.mktemp("shared") / "data")
    update_feeds(settings, from_dir=feeds_dir)
    return settings


def lists_for(settings: Settings, indicator) -> tuple[Status, list[str], list[str]]:
    if isinstance(indicator, str):
        indicator = parse_indicator(indicator)
    enrichment = Enricher(settings, sources=[FEEDS]).enrich(indicator)
    result = enrichment.result("feeds")
    return result.status, result.fields.get("lists", []), [c.reason for c in enrichment.contributions]


@pytest.mark.parametrize(("indicator", "lists"), [
    ("162.243.103.246", ["feodo"]),
    ("1.10.17.5", ["spamhaus_drop_v4", "firehol_level1"]),
    ("2a06:e480::5", ["spamhaus_drop_v6"]),
    ("93.95.230.253", ["tor_exits"]),
    ("77.90.185.20", ["ipsum", "et_compromised"]),
    ("mbond38982.workers.dev", ["threatfox"]),
    ("send-usdt-9999.netlify.app", ["openphish", "phishtank"]),
])
def test_lookup_offline_names_the_lists(loaded, indicator, lists):
    status, found, reasons = lists_for(loaded, indicator)
    assert status is Status.OK and found == lists
    assert all("list fetched" in reason and reason.endswith("ago") or "(list dated" in reason for reason in reasons)


def test_url_and_asn_from_the_shared_lists(loaded):
    url = Indicator(Kind.URL, "http://1.1.1.1/linux_mips", "http://1.1.1.1/linux_mips", "http://1.1.1.1/linux_mips",
                    host="1.1.1.1", host_kind=Kind.IPV4)
    assert lists_for(loaded, url)[1] == ["urlhaus"]
    assert lists_for(loaded, Indicator(Kind.ASN, "AS6517", "AS6517", "AS6517"))[1] == ["spamhaus_asndrop"]


def test_firehol_private_space_is_not_scored(loaded):
    assert lists_for(loaded, "10.11.12.13") == (Status.NOT_APPLICABLE, [], [])


def test_recorded_phishtank_509_is_a_failed_update(httpserver, tmp_path, feeds_dir):
    status_line, *header_lines = (feeds_dir / NOT_A_FEED_FILE).read_text().strip().splitlines()
    status = int(status_line.split()[1])
    headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    headers.pop("Date", None)
    httpserver.expect_request("/mirror/data/online-valid.csv").respond_with_data(
        "<html>509 Bandwidth Limit Exceeded</html>", status=status, headers=headers)
    settings = Settings(mode=Mode.KEYLESS, urls={"OTC_FEEDS_URL": httpserver.url_for("/mirror")},
                        data_dir=tmp_path / "data")
    update = update_feeds(settings, names=["phishtank"])[0]
    assert (update.status, update.entries) == ("failed", 0)
    assert update.message == "PhishTank bandwidth limit exceeded (HTTP 509); previous snapshot kept"
