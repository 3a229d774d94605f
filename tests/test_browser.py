"""End to end in a real browser: the dashboard served by ``streamlit run app.py``, driven by headless
Chromium (Debian's /usr/bin/chromium through Playwright), every source pointed at a local fake upstream.

The browser may load nothing but loopback: every other request is aborted and recorded, and the test
fails if there was any. The Streamlit server runs under the network guard (tests/netguard_site).
Set OTC_REQUIRE_BROWSER=1 (CI does) to make a missing Chromium a failure instead of a skip.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import PROJECT_DIR
from fake_upstream import BAD_DOMAIN, BAD_IP, FakeUpstream
from fakedns import FakeDnsServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
# The README's picture is docs/lookup.png, a copy of this file: set OTC_UPDATE_SCREENSHOT=1 to refresh it.
SCREENSHOT = PROJECT_DIR / "test-artifacts" / "lookup.png"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
]
ALL_SOURCE_RATES = ("internetdb", "rdap", "abuseipdb", "virustotal", "otx", "greynoise", "shodan", "urlhaus",
                    "threatfox", "malwarebazaar", "crtsh", "dnsbl", "dns")


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("OTC_REQUIRE_BROWSER") == "1":
        pytest.fail("OTC_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install chromium)")
    pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); `make test` installs it as root")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_dashboard(work: Path, fake: FakeUpstream, dns: FakeDnsServer):
    """``streamlit run app.py`` under the network guard, every source at ``fake`` and DNS at ``dns``;
    yields the base URL once ``/_stcore/health`` answers ``ok``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTC_")}
    env.update(fake.env())
    env.update({f"OTC_{name.upper()}_RATE": "0" for name in ALL_SOURCE_RATES})  # a mirror: no free-tier pacing
    env.update({
        "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR / "tests" / "netguard_site"), str(PROJECT_DIR)]),
        "OTC_NETGUARD_LOG": os.environ["OTC_NETGUARD_LOG"],
        "OTC_DNS_SERVER": dns.address,
        "OTC_DATA_DIR": str(work / "data"),
        "OTC_SECRETS_FILE": str(work / "none.toml"),
        "OTC_TIMEOUT": "4",
    })
    log = (work / "streamlit.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the dashboard did not start:\n" + (work / "streamlit.log").read_text())
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A running dashboard whose every source answers from the local fake upstream and fake DNS."""
    require_chromium()
    work = tmp_path_factory.mktemp("dashboard")
    fake = FakeUpstream().start()
    dns = FakeDnsServer()
    dns.start()
    dns.records[(BAD_DOMAIN, "A")] = [BAD_IP]
    try:
        with running_dashboard(work, fake, dns) as base:
            yield {"base": base, "fake": fake, "dns": dns, "work": work}
    finally:
        fake.stop()
        dns.stop()


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A page that can reach loopback only; anything else is aborted and listed in ``page.blocked``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
    blocked: list[str] = []

    def only_loopback(route):
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost", "::1"):
            return route.continue_()
        blocked.append(url)
        return route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.blocked = blocked
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()
    assert blocked == [], f"the page tried to load non-loopback resources: {blocked}"
    assert dialogs == [], f"a script from upstream text ran: {dialogs}"


def test_health_answers_ok(dashboard):
    with urllib.request.urlopen(f"{dashboard['base']}/_stcore/health", timeout=5) as response:
        assert response.read() == b"ok"


def test_lookup_shows_verdict_chart_map_and_a_panel_per_source(dashboard, page):
    from otc.sources import all_sources

    page.goto(f"{dashboard['base']}/lookup?ioc={BAD_IP}")
    page.get_by_text("MALICIOUS", exact=False).first.wait_for(timeout=60_000)
    # Every source's panel is there once all have reported.
    titles = [source.title for source in all_sources()]
    for title in titles:
        page.get_by_text(f"{title} — ", exact=False).first.wait_for(timeout=60_000)
    headers = page.locator("[data-testid='stExpander'] summary").all_inner_texts()
    panel_titles = sorted(h.split(" — ")[0].strip().split("\n")[-1] for h in headers if " — " in h)
    assert panel_titles == sorted(titles)
    # The contribution chart: one bar per contribution, labelled with its reason.
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=30_000)
    assert "AbuseIPDB: confidence 100" in chart.inner_text()
    # The map lives in streamlit-folium's iframe: at least one marker drawn by Leaflet.
    map_frame = page.frame_locator("iframe[title*='streamlit_folium']").first
    map_frame.locator(".leaflet-interactive").first.wait_for(timeout=30_000)
    assert map_frame.locator(".leaflet-interactive").count() >= 1
    # Upstream text is attacker-controlled: the fake RDAP name carries a <script> tag that must not run.
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)
    if os.environ.get("OTC_UPDATE_SCREENSHOT") == "1":
        (PROJECT_DIR / "docs").mkdir(exist_ok=True)
        (PROJECT_DIR / "docs" / "lookup.png").write_bytes(SCREENSHOT.read_bytes())
    rdap_panel = page.get_by_text("RDAP — ok", exact=False).first
    rdap_panel.click()
    page.get_by_text("window.__otc_xss__=1", exact=False).first.wait_for(state="attached", timeout=10_000)  # as text
    assert page.evaluate("window.__otc_xss__ === undefined")
    for frame in page.frames:
        assert frame.evaluate("window.__otc_xss__ === undefined")
    assert dashboard["fake"].counts["internetdb"] >= 1


def test_bulk_upload_enrich_and_download(dashboard, page, tmp_path):
    upload = tmp_path / "incident.csv"
    upload.write_text(
        "indicator,comment\n"
        f"{BAD_IP},firewall\n"
        "192.168.1.20,printer\n"
        "not an indicator,junk\n"
        f"hxxp://{BAD_DOMAIN.replace('.', '[.]')}/login,phish\n",
        encoding="utf-8",
    )
    page.goto(f"{dashboard['base']}/bulk")
    page.locator("input[type='file']").first.set_input_files(str(upload))
    page.get_by_text("Before you run: what leaves this machine").wait_for(timeout=30_000)
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Results", exact=True).wait_for(timeout=120_000)
    with page.expect_download(timeout=30_000) as download_info:
        page.get_by_role("button", name="Download enriched CSV").click()
    path = download_info.value.path()
    data = Path(path).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM so Excel shows accents
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["indicator"] for r in rows] == [BAD_IP, "192.168.1.20", "not an indicator",
                                              f"hxxp://{BAD_DOMAIN.replace('.', '[.]')}/login"]
    assert [r["comment"] for r in rows] == ["firewall", "printer", "junk", "phish"]
    by_input = {r["indicator"]: r for r in rows}
    assert by_input[BAD_IP]["otc_verdict"] == "malicious"
    assert by_input["192.168.1.20"]["otc_scope"] == "private"
    assert by_input["192.168.1.20"]["internetdb_status"] == "skipped_privacy"
    assert by_input["not an indicator"]["otc_row_status"] == "invalid"
    assert by_input[f"hxxp://{BAD_DOMAIN.replace('.', '[.]')}/login"]["otc_indicator"] == f"http://{BAD_DOMAIN}/login"
