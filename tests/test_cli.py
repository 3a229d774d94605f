"""``python -m otc``: lookup and enrich, run as the analyst runs them (subprocesses under the network guard).

Every run here is local-only (``--offline`` or ``OTC_MODE=local``): nothing may leave the machine, and the
guard loaded into each child process fails the session if anything tries.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from conftest import shared_path
from otc import cli
from otc.config import Mode
from otc.sources import all_sources

ANALYST_COLUMNS = ["indicator", "type", "source", "comment"]
ROW_STATUSES = {"ok", "invalid", "ambiguous", "empty"}


def run_otc(env: dict[str, str], cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otc", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM for Excel
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def assert_clean_exit(done: subprocess.CompletedProcess, code: int = 0) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == code, done.stderr


# -- lookup -------------------------------------------------------------------------------------------
def test_lookup_defanged_url_json_offline(subprocess_env, tmp_path):
    done = run_otc(subprocess_env, tmp_path, "lookup", "hxxps://example[.]com/login", "--json", "--offline")
    assert_clean_exit(done)
    data = json.loads(done.stdout)
    assert data["indicator"]["kind"] == "url"
    assert data["indicator"]["value"] == "https://example.com/login"
    assert any("refang" in note.lower() for note in data["indicator"]["notes"]), data["indicator"]["notes"]
    assert data["mode"] == "local"
    assert set(data["sources"]) == {s.name for s in all_sources()}
    for name, source in data["sources"].items():
        assert source["status"] in {"ok", "not_found", "not_applicable", "skipped_privacy"}, (name, source)
        assert set(source) >= {"status", "message", "latency_ms", "data", "data_date"}
    third_party = {s.name for s in all_sources() if s.third_party}
    assert all(data["sources"][n]["status"] in {"skipped_privacy", "not_applicable"} for n in third_party)
    assert data["score"] == round(min(100.0, max(0.0, sum(c["points"] for c in data["contributions"]))))
    assert data["verdict"] != "likely benign" or data["contributions"]


def test_lookup_ambiguous_input_is_not_looked_up_json(subprocess_env, tmp_path):
    done = run_otc(subprocess_env, tmp_path, "lookup", "010.1.1.1", "--json", "--offline")
    assert_clean_exit(done, code=2)
    data = json.loads(done.stdout)
    assert data["rejection"]["status"] == "ambiguous"
    assert set(data["rejection"]["candidates"]) >= {"8.1.1.1", "10.1.1.1"}
    assert "sources" not in data and "verdict" not in data


def test_lookup_ambiguous_input_text_names_both_readings(subprocess_env, tmp_path):
    done = run_otc(subprocess_env, tmp_path, "lookup", "010.1.1.1", "--offline")
    assert_clean_exit(done, code=2)
    assert done.stdout.startswith("ambiguous: 010.1.1.1")
    assert "8.1.1.1" in done.stdout and "10.1.1.1" in done.stdout
    assert "Not looked up" in done.stdout


def test_lookup_text_output_has_verdict_and_one_line_per_source(subprocess_env, tmp_path):
    done = run_otc(subprocess_env, tmp_path, "lookup", "8.8.8.8", "--offline")
    assert_clean_exit(done)
    lines = done.stdout.splitlines()
    assert lines[0] == "Indicator  8.8.8.8  (ipv4, global)"
    assert any(line.startswith("Verdict    ") for line in lines)
    assert "Mode       local" in lines
    source_lines = lines[lines.index("Sources") + 1:]
    assert [line.split()[0] for line in source_lines] == [s.name for s in all_sources()]
    for line in source_lines:
        assert line.split()[1] in {"ok", "not_found", "not_applicable", "skipped_privacy"}


def test_lookup_invalid_input_exits_2(subprocess_env, tmp_path):
    done = run_otc(subprocess_env, tmp_path, "lookup", "not an indicator at all", "--json", "--offline")
    assert_clean_exit(done, code=2)
    assert json.loads(done.stdout)["rejection"]["status"] == "invalid"


def test_mode_from_environment_and_flag_overrides_it(subprocess_env, tmp_path):
    env = dict(subprocess_env, OTC_MODE="local")
    done = run_otc(env, tmp_path, "lookup", "8.8.8.8", "--json")
    assert_clean_exit(done)
    assert json.loads(done.stdout)["mode"] == "local"

    env = dict(subprocess_env, OTC_OFFLINE="1")
    done = run_otc(env, tmp_path, "lookup", "8.8.8.8", "--json")
    assert json.loads(done.stdout)["mode"] == "local"

    env = dict(subprocess_env, OTC_MODE="keyless")
    done = run_otc(env, tmp_path, "lookup", "8.8.8.8", "--json", "--mode", "local")
    assert_clean_exit(done)
    assert json.loads(done.stdout)["mode"] == "local"


def test_malformed_mode_setting_is_a_plain_error(subprocess_env, tmp_path):
    env = dict(subprocess_env, OTC_MODE="paranoid")
    done = run_otc(env, tmp_path, "lookup", "8.8.8.8", "--json")
    assert_clean_exit(done, code=2)
    assert done.stderr.strip() == "otc: OTC_MODE must be one of local, keyless, all; got 'paranoid'"
    # The flag decides, so the stale setting does not stop a run that names its mode.
    assert_clean_exit(run_otc(env, tmp_path, "lookup", "8.8.8.8", "--json", "--offline"))


# -- enrich -------------------------------------------------------------------------------------------------
def test_enrich_analyst_file_offline_keeps_all_217_rows(subprocess_env, tmp_path):
    source = shared_path("iocs", "analyst_iocs.csv")
    done = run_otc(subprocess_env, tmp_path, "enrich", str(source), "-o", "out.csv", "--offline")
    assert_clean_exit(done)
    columns, rows = read_csv(tmp_path / "out.csv")
    assert len(rows) == 217
    assert columns[:4] == ANALYST_COLUMNS
    assert "otc_row_status" in columns
    with source.open(encoding="utf-8", newline="") as handle:
        original = list(csv.DictReader(handle))
    for before, after in zip(original, rows):
        assert {c: after[c] for c in ANALYST_COLUMNS} == {c: before[c] for c in ANALYST_COLUMNS}
        assert after["otc_row_status"] in ROW_STATUSES
    for row in rows:  # unknown for lack of data, never benign
        if row["otc_verdict"] == "likely benign":
            assert row["otc_reasons"], row
        if row["otc_row_status"] == "ok" and not row["otc_reasons"]:
            assert row["otc_verdict"] == "unknown", row

    if "offline_geo" in {s.name for s in all_sources()}:
        geo_fields = [c for c in columns if c.startswith("offline_geo_") and c not in
                      ("offline_geo_status", "offline_geo_message")]
        global_ips = [r for r in rows if r["otc_kind"] in ("ipv4", "ipv6") and r["otc_scope"] == "global"]
        assert len(global_ips) > 100
        for row in global_ips:
            assert row["offline_geo_status"] == "ok", row["indicator"]
            assert any(row[c] for c in geo_fields), row["indicator"]

    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("otc: 217 rows (")
    assert summary.endswith("written to out.csv")
    assert "\r" not in done.stderr  # no progress bar when stderr is not a terminal


@pytest.mark.slow
def test_enrich_with_every_service_at_a_closed_local_port_finishes_fast(subprocess_env, tmp_path):
    """Issue 2: every OTC_*_URL and OTC_DNS_SERVER at a closed port -> under a minute, statuses, no traceback."""
    source = shared_path("iocs", "analyst_iocs.csv")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))  # bound, never read: DNS queries time out
        env = dict(subprocess_env, OTC_DNS_SERVER=f"127.0.0.1:{port}")
        env.update({s.url_setting: f"http://127.0.0.1:{port}" for s in all_sources() if s.base_url})
        started = time.monotonic()
        done = run_otc(env, tmp_path, "enrich", str(source), "-o", "out.csv", timeout=90)
        elapsed = time.monotonic() - started
    assert_clean_exit(done)
    assert elapsed < 60
    columns, rows = read_csv(tmp_path / "out.csv")
    assert len(rows) == 217
    third_party = [s for s in all_sources() if s.third_party]
    failed = {"error", "timeout", "skipped_no_key", "skipped_privacy", "not_applicable"}
    for row in rows:
        for s in third_party:
            assert row[f"{s.name}_status"] in failed, (row["indicator"], s.name, row[f"{s.name}_status"])
            if row["otc_scope"] not in ("global", "not_applicable"):  # private addresses never offered
                assert row[f"{s.name}_status"] in ("skipped_privacy", "not_applicable"), (row["indicator"], s.name)
        assert row["otc_verdict"] != "likely benign" or row["otc_reasons"]
    assert any(row[f"{s.name}_status"] in ("error", "timeout") for row in rows for s in third_party)


def test_enrich_writes_json_too_and_format_json(subprocess_env, tmp_path):
    (tmp_path / "in.csv").write_bytes(b"ioc;note\n8.8.8.8;a\n8.8.8.8;b\nbogus!;c\n")
    done = run_otc(subprocess_env, tmp_path, "enrich", "in.csv", "-o", "out.csv", "--json", "out.json", "--offline")
    assert_clean_exit(done)
    _, rows = read_csv(tmp_path / "out.csv")
    records = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [r["note"] for r in rows] == [r["note"] for r in records] == ["a", "b", "c"]
    assert [r["otc_row_status"] for r in records] == ["ok", "ok", "invalid"]
    assert records[1]["otc_message"] == "duplicate of row 1"

    done = run_otc(subprocess_env, tmp_path, "enrich", "in.csv", "-o", "only", "--format", "json", "--offline")
    assert_clean_exit(done)
    assert len(json.loads((tmp_path / "only").read_text(encoding="utf-8"))) == 3


def test_enrich_with_named_column(subprocess_env, tmp_path):
    (tmp_path / "in.csv").write_text("first,second\nexample.com,8.8.8.8\n", encoding="utf-8")
    done = run_otc(subprocess_env, tmp_path, "enrich", "in.csv", "-o", "out.csv", "--column", "second", "--offline")
    assert_clean_exit(done)
    assert read_csv(tmp_path / "out.csv")[1][0]["otc_indicator"] == "8.8.8.8"
    assert "indicator column 'second'," in done.stderr


def _xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "otc: missing.csv: no such file"),
        (b"", [], "otc: in.csv: The file is empty"),
        (_xlsx(), [], "otc: in.csv: This looks like an Excel workbook (.xlsx), not a CSV"),
        (b"indicator,comment\n8.8.8.8,x\n", ["--column", "ioc"],
         "otc: There is no column named 'ioc'. The columns are: indicator, comment"),
    ],
    ids=["missing-file", "empty", "xlsx", "unknown-column"],
)
def test_enrich_input_errors_are_messages_with_exit_2(subprocess_env, tmp_path, content, args, message):
    name = "missing.csv" if content is None else "in.csv"
    if content is not None:
        (tmp_path / name).write_bytes(content)
    done = run_otc(subprocess_env, tmp_path, "enrich", name, "-o", "out.csv", "--offline", *args)
    assert_clean_exit(done, code=2)
    assert done.stderr.strip().splitlines()[-1].startswith(message)
    assert not (tmp_path / "out.csv").exists()


def test_enrich_refuses_to_overwrite_its_input(subprocess_env, tmp_path):
    (tmp_path / "in.csv").write_bytes(b"indicator\n8.8.8.8\n")
    done = run_otc(subprocess_env, tmp_path, "enrich", "in.csv", "-o", "in.csv", "--offline")
    assert_clean_exit(done, code=2)
    assert "refusing to overwrite the input file" in done.stderr
    assert (tmp_path / "in.csv").read_bytes() == b"indicator\n8.8.8.8\n"


def test_enrich_without_output_is_a_usage_error(subprocess_env, tmp_path):
    (tmp_path / "in.csv").write_bytes(b"indicator\n8.8.8.8\n")
    done = run_otc(subprocess_env, tmp_path, "enrich", "in.csv", "--offline")
    assert_clean_exit(done, code=2)
    assert "-o OUT.csv" in done.stderr


# -- in-process: interruption, unexpected errors, flags ---------------------------------------------------
def test_keyboard_interrupt_exits_130_with_a_note(monkeypatch, tmp_path, capsys):
    import otc.bulk

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(otc.bulk, "run_bulk", interrupted)
    (tmp_path / "in.csv").write_bytes(b"indicator\n8.8.8.8\n")
    code = cli.main(["enrich", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--offline"])
    assert code == 130
    assert "interrupted — no output written" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_unexpected_error_is_one_line_without_traceback(monkeypatch, capsys):
    def broken(settings):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "make_enricher", broken)
    assert cli.main(["lookup", "8.8.8.8", "--offline"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "otc: unexpected error (RuntimeError: boom); run again with --debug for details"
    with pytest.raises(RuntimeError):
        cli.main(["lookup", "8.8.8.8", "--offline", "--debug"])


def test_settings_from_flags_override_environment(monkeypatch):
    monkeypatch.setenv("OTC_OFFLINE", "1")
    args = cli.build_parser().parse_args(["lookup", "x", "--mode", "keyless"])
    assert cli.settings_from(args).mode is Mode.KEYLESS
    args = cli.build_parser().parse_args(["lookup", "x"])
    assert cli.settings_from(args).mode is Mode.LOCAL
    monkeypatch.delenv("OTC_OFFLINE")
    monkeypatch.setenv("OTC_MODE", "keyless")
    assert cli.settings_from(cli.build_parser().parse_args(["lookup", "x", "--offline"])).mode is Mode.LOCAL
    assert cli.settings_from(cli.build_parser().parse_args(["lookup", "x"])).mode is Mode.KEYLESS


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_summary_line(monkeypatch, tmp_path):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    (tmp_path / "in.csv").write_bytes(b"indicator\n8.8.8.8\n1.1.1.1\n8.8.8.8\n")
    assert cli.main(["enrich", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), "--offline"]) == 0
    err = terminal.getvalue()
    assert "2/2" in err and "indicator" in err  # tqdm's bar: distinct indicators done / total
    assert err.strip().splitlines()[-1].startswith("otc: 3 rows (3 ok); 2 distinct indicators, 1 duplicate rows")


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "lookup" in capsys.readouterr().err


def test_upstream_text_cannot_drive_the_terminal():
    assert cli.safe_text("evil\x1b]0;pwned\x07name") == "evil\\x1b]0;pwned\\x07name"
    assert cli.safe_text("abc\u202edcba") == "abc\\u202edcba"
    assert cli.safe_text("münchen.de") == "münchen.de"
