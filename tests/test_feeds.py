"""Feed list, parsers and updates (download against a real local HTTP server, and --from DIR imports)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug import Response

from otc.config import ConfigError, Mode, Secret, Settings
from otc.errors import MalformedResponse
from otc.feeds import (
    CATEGORIES,
    LOCAL_MODE_REFUSAL,
    FeedUpdate,
    age_text,
    feed_definitions,
    feed_status,
    load_feeds,
    match_files,
    parse_feed,
    update_feeds,
)
from otc.store import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
FEEDS = feed_definitions()

DROP_V4 = (FIXTURES / "spamhaus_drop_v4.json").read_text()
FEODO_TXT = (FIXTURES / "feodo_ipblocklist_recommended.txt").read_text()


def entries_of(fmt: str, name: str, kinds=None):
    entry_set, report = parse_feed(fmt, (FIXTURES / name).read_text(), filename=name, kinds=kinds)
    return sorted(entry_set.entries()), report


# -- the feed list ----------------------------------------------------------------------------------

def test_feed_list_has_the_required_feeds():
    assert {"spamhaus_drop_v4", "spamhaus_drop_v6", "spamhaus_asndrop", "firehol_level1", "feodo", "tor_exits",
            "ipsum", "et_compromised", "openphish", "urlhaus", "threatfox"} <= set(FEEDS)
    for feed in FEEDS.values():
        assert feed.category in CATEGORIES, feed.name
        assert feed.title and feed.licence and feed.url.startswith(("https://", "http://"))
        assert feed.weight > 0 and feed.min_refresh_minutes >= 5
        assert feed.files, f"{feed.name} has no file globs for --from imports"
    for name in ("spamhaus_drop_v4", "spamhaus_drop_v6", "spamhaus_asndrop"):
        assert FEEDS[name].min_refresh_minutes >= 60  # Spamhaus firewalls clients fetching more than hourly
    for name in ("feodo", "urlhaus", "threatfox"):
        assert (FEEDS[name].key_setting, FEEDS[name].key_header) == ("OTC_ABUSECH_KEY", "Auth-Key")
    assert FEEDS["phishtank"].enabled is False
    paths = [urlsplit(feed.url).path for feed in FEEDS.values()]
    assert len(set(paths)) == len(paths)  # one mirror (OTC_FEEDS_URL) can serve every feed at its own path


def test_adding_a_keyless_list_is_a_change_to_the_toml_only(tmp_path):
    extra = tmp_path / "feeds.toml"
    extra.write_text(
        '[my_blocklist]\ntitle = "My list"\nurl = "https://lists.example.org/bad.txt"\nformat = "plain_ip"\n'
        'kinds = ["ip", "cidr"]\ncategory = "scanner"\nweight = 15\nmin_refresh_minutes = 60\n'
        'licence = "ours"\nfiles = ["my_blocklist*.txt"]\n')
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "my_blocklist.txt").write_text("# mine\n45.9.20.1\n45.9.21.0/24\n")
    settings = Settings(mode=Mode.LOCAL, data_dir=tmp_path / "data")
    updates = update_feeds(settings, from_dir=tmp_path / "in", feeds=load_feeds(extra))
    assert updates == [FeedUpdate("my_blocklist", "imported", 2, "imported from my_blocklist.txt")]


def test_bad_feed_list_is_a_config_error(tmp_path):
    bad = tmp_path / "feeds.toml"
    bad.write_text('[x]\ntitle = "X"\nurl = "https://x/"\nformat = "no_such_format"\nkinds = ["ip"]\n'
                   'category = "C2"\nweight = 1\nmin_refresh_minutes = 1\nlicence = ""\n')
    with pytest.raises(ConfigError, match="unknown format 'no_such_format'"):
        load_feeds(bad)


# -- parsers ----------------------------------------------------------------------------------------

def test_spamhaus_drop_json_with_metadata_line():
    entries, report = entries_of("spamhaus_drop_json", "spamhaus_drop_v4.json")
    assert entries == [("cidr", "103.77.0.0/20", None, "SBL500002"), ("cidr", "45.8.24.0/22", None, "SBL500001"),
                       ("cidr", "5.188.10.0/23", None, "SBL402741")]
    assert (report.declared, report.rows, report.list_date) == (3, 3, 1764763200.0)


def test_spamhaus_drop_json_records_mismatch_is_a_truncated_download():
    lines = DROP_V4.splitlines()
    cut = "\n".join(lines[:1] + lines[-1:])  # one row lost, metadata still says 3
    with pytest.raises(MalformedResponse, match="says 3 entries but 1 arrived"):
        parse_feed("spamhaus_drop_json", cut)
    with pytest.raises(MalformedResponse, match="no trailing metadata line"):
        parse_feed("spamhaus_drop_json", "\n".join(lines[:-1]))


def test_spamhaus_drop_v6_and_asndrop():
    assert entries_of("spamhaus_drop_json", "spamhaus_drop_v6.json")[0] == [
        ("cidr", "2a06:e480::/29", None, "SBL500003"), ("cidr", "2a14:7c3::/32", None, "SBL500004")]
    assert entries_of("spamhaus_asndrop_json", "spamhaus_asndrop.json")[0] == [
        ("asn", "400992", None, "BADHOST-AS (RU)"), ("asn", "64999", None, "OTHER-AS (NL)")]


def test_spamhaus_legacy_drop_txt():
    entries, report = entries_of("spamhaus_drop_legacy", "drop.txt")
    assert entries == [("cidr", "185.0.0.0/22", None, "SBL500005"), ("cidr", "5.188.10.0/23", None, "SBL402741")]
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(report.list_date)) == "2025-12-03 09:53"


def test_firehol_netset_skips_bogons_and_private_space():
    entries, report = entries_of("netset", "firehol_level1.netset")
    assert entries == [("cidr", "31.184.192.0/19", None, None), ("cidr", "46.29.160.0/21", None, None)]
    assert report.non_global == 7
    assert time.strftime("%Y-%m-%d", time.gmtime(report.list_date)) == "2025-12-03"


def test_feodo_txt_csv_json():
    assert entries_of("feodo_txt", "feodo_ipblocklist_recommended.txt")[0] == [
        ("ip", "162.243.103.246", None, None), ("ip", "50.16.16.211", None, None)]
    assert entries_of("feodo_csv", "feodo_ipblocklist.csv")[0] == [
        ("ip", "162.243.103.246", None, "Emotet, C2 offline, last online 2025-11-07"),
        ("ip", "34.204.119.63", None, "QakBot, C2 offline, last online 2025-12-01"),
        ("ip", "50.16.16.211", None, "QakBot, C2 online, last online 2025-12-03"),
    ]
    assert entries_of("feodo_json", "feodo_ipblocklist.json")[0] == [
        ("ip", "51.161.81.190", None, "Pikabot, C2 offline, last online 2024-01-23")]


def test_feodo_end_count_mismatch_is_a_truncated_download():
    truncated = FEODO_TXT.replace("162.243.103.246\n", "")
    with pytest.raises(MalformedResponse, match="says 2 entries but 1 arrived"):
        parse_feed("feodo_txt", truncated)


def test_tor_bulk_and_exit_addresses():
    assert entries_of("tor_bulk", "torbulkexitlist.txt")[0] == [
        ("ip", "101.99.92.179", None, None), ("ip", "185.220.101.4", None, None), ("ip", "2a0b:f4c2::1", None, None)]
    assert entries_of("tor_exit_addresses", "tor_exit-addresses.txt")[0] == [
        ("ip", "185.220.101.4", None, None), ("ip", "93.95.230.253", None, None)]


def test_ipsum_counts_and_levels():
    entries, report = entries_of("ipsum", "ipsum.txt")
    assert entries == [("ip", "45.148.10.240", 4, None), ("ip", "80.82.77.33", 10, None),
                       ("ip", "92.118.39.49", 1, None)]
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(report.list_date)) == "2025-12-03 02:00"
    assert entries_of("ipsum_level", "ipsum_level3.txt")[0] == [
        ("ip", "45.148.10.240", 3, None), ("ip", "71.6.135.131", 3, None), ("ip", "80.82.77.33", 3, None)]


def test_et_plain_skips_private_and_junk():
    entries, report = entries_of("et_plain", "et_compromised-ips.txt")
    assert entries == [("ip", "193.47.62.69", None, None), ("ip", "80.82.77.33", None, None)]
    assert (report.non_global, report.invalid) == (1, 1)


def test_openphish_urls_are_canonical():
    assert entries_of("openphish", "openphish.txt")[0] == [
        ("url", "http://send-usdt-9999.netlify.app/", None, None),
        ("url", "https://login-secure-paypa1.example-phish.com/signin", None, None),
        ("url", "https://www.rest-facebook.blogspot.com/", None, None),
    ]


def test_urlhaus_csv_and_text():
    entries, report = entries_of("urlhaus_csv", "urlhaus_csv_recent.csv")
    assert entries == [
        ("url", "http://89.248.165.74/bins/arm7", None, "malware_download (elf,mirai), online"),
        ("url", "http://89.248.165.74/bins/mips", None, "malware_download (elf,mirai), online"),
        ("url", "http://vektorex-files.com/jobs/cgi/86010322.jpg", None, "malware_download, offline"),
    ]
    assert report.non_global == 1  # http://192.168.1.10/... is nobody's evidence
    assert entries_of("urlhaus_text", "urlhaus_text_online.txt")[0] == [
        ("url", "http://89.248.165.74/bins/mips", None, None), ("url", "http://89.248.165.74/bins/x86", None, None)]


def test_threatfox_csv_with_comma_space_separators():
    entries, report = entries_of("threatfox_csv", "threatfox_recent.csv")
    assert entries == [
        ("domain", "c2-panel.badcdn-example.com", None, "Cobalt Strike (botnet_cc, confidence 75)"),
        ("hash", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", None,
         "Emotet (payload, confidence 100)"),
        ("hash", "44d88612fea8a8f36de82e1278abb02f", None, "Emotet (payload, confidence 100)"),
        ("ip", "139.180.203.104", None, "Cobalt Strike (botnet_cc, confidence 75)"),
        ("url", "http://sskymedia-example.com/VMYB/", None, "Emotet (payload_delivery, confidence 80)"),
    ]
    assert (report.declared, report.rows) == (5, 5)


def test_threatfox_kinds_filter():
    entries, report = entries_of("threatfox_csv", "threatfox_recent.csv", kinds=["ip"])
    assert [e[1] for e in entries] == ["139.180.203.104"]
    assert report.other_kinds == 4


def test_phishtank_formats():
    assert entries_of("phishtank_csv", "phishtank_online-valid.csv")[0] == [
        ("url", "http://secure-bank-login.example-phish.net/", None, None)]
    assert entries_of("phishtank_json", "phishtank_online-valid.json")[0] == [
        ("url", "https://pay-verify.example-phish.org/index.php", None, "target PayPal")]
    assert entries_of("phishtank_checkurl", "phishtank_checkurl.json")[0] == [
        ("url", "http://secure-bank-login.example-phish.net/", None, None)]


def test_plain_domain_and_hosts_formats():
    entries, _ = parse_feed("plain_domain", "# x\nEvil.Example-Bad.com\nbad..name\n")
    assert list(entries.entries()) == [("domain", "evil.example-bad.com", None, None)]
    entries, _ = parse_feed("hosts", "127.0.0.1 localhost\n0.0.0.0 ads.tracker-example.net # ads\n")
    assert list(entries.entries()) == [("domain", "ads.tracker-example.net", None, None)]


def test_an_html_page_is_not_a_feed():
    with pytest.raises(MalformedResponse, match="HTML page"):
        parse_feed("plain_ip", "<!DOCTYPE html><html><body>Just a moment...</body></html>")


def test_a_file_with_no_valid_line_is_rejected():
    with pytest.raises(MalformedResponse, match="none of the 2 lines"):
        parse_feed("plain_ip", "hello\nworld\n")


# -- --from DIR ------------------------------------------------------------------------------------

EXPECTED_IMPORT = {
    "spamhaus_drop_v4": 4, "spamhaus_drop_v6": 2, "spamhaus_asndrop": 2, "firehol_level1": 2, "feodo": 4,
    "tor_exits": 4, "ipsum": 4, "et_compromised": 2, "openphish": 3, "urlhaus": 4, "threatfox": 5, "phishtank": 2,
}


def test_import_every_format_from_a_folder(tmp_path):
    settings = Settings(mode=Mode.LOCAL, data_dir=tmp_path / "data")  # an air-gapped machine
    seen = []
    updates = update_feeds(settings, from_dir=FIXTURES, progress=seen.append)
    assert {u.name: (u.status, u.entries) for u in updates} == {n: ("imported", c) for n, c in EXPECTED_IMPORT.items()}
    assert seen == updates
    store = open_store(settings.data_dir)
    assert store.integrity_check() == "ok"
    ipsum = dict((value, count) for _, value, count, _ in store.entries("ipsum"))
    assert ipsum == {"80.82.77.33": 10, "45.148.10.240": 4, "92.118.39.49": 1, "71.6.135.131": 3}
    feodo = {value: info for _, value, _, info in store.entries("feodo")}
    assert feodo["162.243.103.246"] == "Emotet, C2 offline, last online 2025-11-07"  # info kept across files
    firehol = next(u for u in updates if u.name == "firehol_level1")
    assert "7 non-global (private/reserved) entries skipped" in firehol.message


def test_files_are_matched_to_feeds_by_glob():
    matched, unmatched = match_files(FIXTURES, load_feeds())
    assert [p.name for p in unmatched] == ["README-notes.md"]
    assert [(p.name, fmt) for p, fmt in matched["spamhaus_drop_v4"]] == [
        ("drop.txt", "spamhaus_drop_legacy"), ("spamhaus_drop_v4.json", "spamhaus_drop_json")]
    assert [(p.name, fmt) for p, fmt in matched["ipsum"]] == [("ipsum.txt", "ipsum"),
                                                              ("ipsum_level3.txt", "ipsum_level")]


def test_import_of_a_broken_file_keeps_the_previous_snapshot(tmp_path):
    settings = Settings(mode=Mode.LOCAL, data_dir=tmp_path / "data")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(FIXTURES / "spamhaus_drop_v4.json", folder)
    assert update_feeds(settings, from_dir=folder)[0].entries == 3
    (folder / "spamhaus_drop_v4.json").write_text(DROP_V4.splitlines()[0] + "\n")  # cut before metadata
    update = update_feeds(settings, from_dir=folder)[0]
    assert update.status == "failed"
    assert "no trailing metadata line" in update.message and "previous snapshot kept" in update.message
    assert len(open_store(settings.data_dir).entries("spamhaus_drop_v4")) == 3


def test_import_names_restricts_the_feeds(tmp_path):
    settings = Settings(mode=Mode.LOCAL, data_dir=tmp_path / "data")
    updates = update_feeds(settings, from_dir=FIXTURES, names=["tor_exits"])
    assert [u.name for u in updates] == ["tor_exits"]
    with pytest.raises(ConfigError, match="no feed named nope"):
        update_feeds(settings, from_dir=FIXTURES, names=["nope"])


# -- downloads --------------------------------------------------------------------------------------

def online(httpserver, tmp_path, **extra) -> Settings:
    urls = {"OTC_FEEDS_URL": httpserver.url_for("/mirror")}
    urls.update(extra.pop("urls", {}))
    return Settings(mode=Mode.KEYLESS, urls=urls, data_dir=tmp_path / "data", **extra)


def test_url_overrides_keep_each_feeds_path(httpserver, tmp_path):
    settings = online(httpserver, tmp_path, urls={"OTC_FEED_FEODO_URL": httpserver.url_for("/feodo-mirror")})
    assert FEEDS["spamhaus_drop_v4"].source_url(settings) == httpserver.url_for("/mirror/drop/drop_v4.json")
    assert FEEDS["feodo"].source_url(settings) == httpserver.url_for(
        "/feodo-mirror/downloads/ipblocklist_recommended.txt")
    assert FEEDS["tor_exits"].source_url(Settings()) == "https://check.torproject.org/torbulkexitlist"


def test_download_then_conditional_request_answered_304(httpserver, tmp_path):
    settings = online(httpserver, tmp_path)
    httpserver.expect_ordered_request("/mirror/drop/drop_v4.json").respond_with_data(
        DROP_V4, headers={"ETag": '"drop-1"', "Last-Modified": "Wed, 03 Dec 2025 09:53:42 GMT"})
    first = update_feeds(settings, names=["spamhaus_drop_v4"])
    assert first == [FeedUpdate("spamhaus_drop_v4", "updated", 3, f"downloaded {len(DROP_V4):,} bytes")]

    httpserver.expect_ordered_request(
        "/mirror/drop/drop_v4.json",
        headers={"If-None-Match": '"drop-1"', "If-Modified-Since": "Wed, 03 Dec 2025 09:53:42 GMT"},
    ).respond_with_data("", status=304)
    second = update_feeds(settings, names=["spamhaus_drop_v4"], force=True)
    assert second[0].status == "not_modified" and second[0].entries == 3
    assert len(httpserver.log) == 2
    store = open_store(settings.data_dir)
    assert len(store.entries("spamhaus_drop_v4")) == 3
    assert store.feed_record("spamhaus_drop_v4").status == "not_modified"


def test_minimum_refresh_interval_is_respected(httpserver, tmp_path):
    settings = online(httpserver, tmp_path)
    httpserver.expect_request("/mirror/drop/drop_v4.json").respond_with_data(DROP_V4)
    now = [1_000_000.0]
    assert update_feeds(settings, names=["spamhaus_drop_v4"], clock=lambda: now[0])[0].status == "updated"
    now[0] += 59 * 60
    skipped = update_feeds(settings, names=["spamhaus_drop_v4"], clock=lambda: now[0])[0]
    assert skipped.status == "skipped_recent" and skipped.entries == 3
    assert "59 min ago" in skipped.message and "every 60 min" in skipped.message
    assert len(httpserver.log) == 1  # Spamhaus was not asked again within the hour
    now[0] += 2 * 60
    assert update_feeds(settings, names=["spamhaus_drop_v4"], clock=lambda: now[0])[0].status == "updated"
    assert len(httpserver.log) == 2


def test_a_download_broken_off_half_way_keeps_the_previous_snapshot(httpserver, tmp_path):
    settings = online(httpserver, tmp_path)
    httpserver.expect_ordered_request("/mirror/downloads/ipblocklist_recommended.txt").respond_with_data(FEODO_TXT)
    assert update_feeds(settings, names=["feodo"])[0].entries == 2

    def cut_off(request):
        def body():
            yield b"# abuse.ch Feodo Tracker\n34.204.119.63\n"
            raise ConnectionAbortedError("server went away")  # the connection drops mid-answer
        return Response(body(), headers={"Content-Length": "50000"}, mimetype="text/plain")

    httpserver.expect_ordered_request("/mirror/downloads/ipblocklist_recommended.txt").respond_with_handler(cut_off)
    failed = update_feeds(settings, names=["feodo"], force=True)[0]
    assert failed.status == "failed"
    assert "broke off its answer" in failed.message and "previous snapshot kept" in failed.message
    store = open_store(settings.data_dir)
    assert sorted(v for _, v, _, _ in store.entries("feodo")) == ["162.243.103.246", "50.16.16.211"]
    assert store.feed_record("feodo").status == "failed"
    assert store.integrity_check() == "ok"


def test_a_truncated_spamhaus_download_keeps_the_previous_snapshot(httpserver, tmp_path):
    settings = online(httpserver, tmp_path)
    httpserver.expect_ordered_request("/mirror/drop/drop_v4.json").respond_with_data(DROP_V4)
    httpserver.expect_ordered_request("/mirror/drop/drop_v4.json").respond_with_data(DROP_V4.splitlines()[0])
    update_feeds(settings, names=["spamhaus_drop_v4"])
    failed = update_feeds(settings, names=["spamhaus_drop_v4"], force=True)[0]
    assert failed.status == "failed" and "incomplete" in failed.message
    assert len(open_store(settings.data_dir).entries("spamhaus_drop_v4")) == 3


def test_http_errors_become_failed_updates(httpserver, tmp_path):
    settings = online(httpserver, tmp_path)
    httpserver.expect_request("/mirror/feed.txt").respond_with_data("busy", status=503)
    httpserver.expect_request("/mirror/data/online-valid.csv").respond_with_data(
        "<html>Bandwidth Limit Exceeded</html>", status=509, headers={"X-Request-Limit": "75"})
    updates = {u.name: u for u in update_feeds(settings, names=["openphish", "phishtank"])}
    assert updates["openphish"].status == "failed" and "HTTP 503" in updates["openphish"].message
    assert updates["phishtank"].status == "failed"
    assert "bandwidth limit exceeded (HTTP 509)" in updates["phishtank"].message


def test_an_unreachable_mirror_fails_without_restarting_the_interval(tmp_path):
    settings = Settings(mode=Mode.KEYLESS, urls={"OTC_FEEDS_URL": "http://127.0.0.1:9"}, data_dir=tmp_path / "d")
    update = update_feeds(settings, names=["tor_exits"])[0]
    assert update.status == "failed" and "could not connect" in update.message
    assert open_store(settings.data_dir).feed_record("tor_exits").checked_at is None


def test_abusech_key_is_sent_when_configured_and_never_shown(httpserver, tmp_path):
    key = "s3cr3t-abusech-key"
    settings = online(httpserver, tmp_path, keys={"OTC_ABUSECH_KEY": Secret(key)})
    httpserver.expect_request("/mirror/export/csv/recent/", headers={"Auth-Key": key}).respond_with_data(
        (FIXTURES / "threatfox_recent.csv").read_text())
    httpserver.expect_request("/mirror/downloads/csv_recent/", headers={"Auth-Key": key}).respond_with_data(
        f"error for key {key}", status=403)
    updates = {u.name: u for u in update_feeds(settings, names=["threatfox", "urlhaus"])}
    assert updates["threatfox"].status == "updated" and updates["threatfox"].entries == 5
    assert updates["urlhaus"].status == "failed" and key not in updates["urlhaus"].message


def test_a_feed_that_needs_a_key_is_not_downloaded_without_it(httpserver, tmp_path):
    keyed = tmp_path / "feeds.toml"
    keyed.write_text(
        '[private_list]\ntitle = "Private"\nurl = "https://lists.example.org/p.txt"\nformat = "plain_ip"\n'
        'kinds = ["ip"]\ncategory = "C2"\nweight = 10\nmin_refresh_minutes = 60\nlicence = "x"\n'
        'needs_key = true\nkey_setting = "OTC_PRIVATE_KEY"\nkey_header = "X-Key"\nfiles = ["p*.txt"]\n')
    httpserver.expect_request("/mirror/p.txt", headers={"X-Key": "k1"}).respond_with_data("45.9.20.1\n")
    without = update_feeds(online(httpserver, tmp_path), feeds=load_feeds(keyed))
    assert without == [
        FeedUpdate("private_list", "failed", 0, "no key configured (set OTC_PRIVATE_KEY); not downloaded")]
    assert httpserver.log == []
    with_key = update_feeds(online(httpserver, tmp_path, keys={"OTC_PRIVATE_KEY": Secret("k1")}),
                            feeds=load_feeds(keyed))
    assert (with_key[0].status, with_key[0].entries) == ("updated", 1)


def test_local_only_mode_refuses_downloads(httpserver, tmp_path):
    settings = online(httpserver, tmp_path).with_mode(Mode.LOCAL)
    updates = update_feeds(settings)
    assert {u.status for u in updates} == {"failed"} and updates[0].message == LOCAL_MODE_REFUSAL
    assert [u.name for u in updates] == [f.name for f in load_feeds() if f.enabled]
    assert httpserver.log == []


def test_default_update_skips_disabled_feeds(httpserver, tmp_path):
    settings = online(httpserver, tmp_path)
    httpserver.expect_request("/mirror/data/online-valid.csv").respond_with_data("never asked")
    for feed in load_feeds():
        if feed.enabled:
            httpserver.expect_request("/mirror" + urlsplit(feed.url).path).respond_with_data("", status=404)
    updates = update_feeds(settings)
    assert "phishtank" not in {u.name for u in updates}
    assert all(u.status == "failed" for u in updates)
    assert not any(req.path.endswith("online-valid.csv") for req, _ in httpserver.log)


# -- status for the Sources page ------------------------------------------------------------------------

def test_feed_status_rows(tmp_path):
    settings = Settings(mode=Mode.LOCAL, data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()
    before = {row["name"]: row for row in feed_status(settings)}
    assert before["feodo"]["age"] == "never" and before["feodo"]["entries"] == 0
    assert "phishtank" not in before  # disabled and not loaded
    assert not (tmp_path / "data").exists()  # showing the page creates no file

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(FIXTURES / "feodo_ipblocklist_recommended.txt", folder)
    shutil.copy(FIXTURES / "phishtank_online-valid.csv", folder)
    three_hours_ago = time.time() - 3 * 3600 - 60
    for path in folder.iterdir():
        os.utime(path, (three_hours_ago, three_hours_ago))
    update_feeds(settings, from_dir=folder)
    rows = {row["name"]: row for row in feed_status(settings)}
    feodo = rows["feodo"]
    assert (feodo["title"], feodo["category"], feodo["entries"], feodo["age"]) == ("Feodo Tracker", "C2", 2, "3 h ago")
    assert feodo["url"] == "https://feodotracker.abuse.ch/downloads/ipblocklist_recommended.txt"
    assert feodo["licence"].startswith("abuse.ch")
    assert feodo["list_date"] == "2025-12-03 10:05 UTC"
    assert rows["phishtank"]["entries"] == 1  # disabled, but loaded from a file: shown


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "never"), (5, "just now"), (12 * 60, "12 min ago"), (3 * 3600 + 5, "3 h ago"),
    (47 * 3600, "47 h ago"), (5 * 86400, "5 d ago"), (3 * 365 * 86400, "3 y ago"),
])
def test_age_text(seconds, text):
    assert age_text(seconds) == text
