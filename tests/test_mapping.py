"""The offline map: no remote asset, Leaflet served from the page, one marker per located point, escaping.

The browser tests (marker ``browser``) draw the map in headless Chromium — as a standalone page and inside
a real Streamlit server through ``st_folium`` — with every non-loopback request aborted and recorded.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from html.parser import HTMLParser
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

import folium
import folium.plugins
import pytest
import requests

from otc.config import Mode, Settings
from otc.engine import Enricher
from otc.indicators import parse_indicator
from otc.mapping import (
    APPROXIMATE_LABEL,
    MapPoint,
    build_map,
    leaflet_css,
    leaflet_js,
    map_points_from_enrichments,
    is_local_url,
    render_html,
    strip_remote_assets,
)
from otc.model import Enrichment, Location, SourceResult, Status, Verdict
from otc.scoring import combine
from otc.sources.offline_geo import SOURCE as OFFLINE_GEO

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
HOSTILE_LABEL = "<script>alert(1)</script>"
HOSTILE_DETAIL = "<img src=x onerror=alert(2)>"
TEMPLATE_LABEL = "`${alert(3)}`</script><b>"


class TagUrls(HTMLParser):
    """What the page's tags make a browser fetch (script text is CDATA to this parser, so not looked at)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src"):
            self.inline_scripts += 1
        for name in ("src", "href"):
            if attrs.get(name):
                self.urls.append((tag, attrs[name]))


def tag_urls(page: str) -> TagUrls:
    parser = TagUrls()
    parser.feed(page)
    return parser


def bound_texts(page: str, method: str) -> list[str]:
    """The JSON string literals passed to ``.bindTooltip(`` / ``.bindPopup(`` in the page's script."""
    return [json.loads(m) for m in re.findall(rf"\.{method}\((\"(?:[^\"\\]|\\.)*\")", page)]


def sample_points() -> list[MapPoint]:
    return [
        MapPoint(38.0, -97.0, HOSTILE_LABEL, details=(("AS", HOSTILE_DETAIL),), verdict=Verdict.MALICIOUS,
                 approximate=True),
        MapPoint(38.0, -97.0, TEMPLATE_LABEL, verdict="suspicious", approximate=True),
        MapPoint(48.8566, 2.3522, "paris.example", verdict=Verdict.LIKELY_BENIGN),
        MapPoint(0.0, 0.0, "null island"),
        MapPoint(float("nan"), 10.0, "nan"),
        MapPoint(10.0, float("inf"), "inf"),
        MapPoint(95.0, 10.0, "out of range"),
    ]


# -- the standalone HTML ---------------------------------------------------------------------------
def test_rendered_html_references_no_remote_asset_and_carries_leaflet():
    page = render_html(build_map(sample_points()))
    refs = tag_urls(page)
    assert refs.urls == []  # no script src, no stylesheet link, no image: everything is inline
    assert "L.tileLayer" not in page and "{z}" not in page  # no tile layer at all
    assert "Leaflet 1.9.3, a JS library for interactive maps" in page
    assert leaflet_js() in page and leaflet_css() in page
    assert "url(images/" not in page  # Leaflet's CSS images are inlined too
    # Apart from Leaflet's own code (its attribution link text, the SVG namespace), not one http(s) string.
    rest = page.replace(leaflet_js(), "").replace(leaflet_css(), "")
    assert re.findall(r"https?://", rest) == []
    assert len(page) < 500_000  # measured ~340 kB: Leaflet 147 kB, country outlines ~167 kB


def test_one_marker_per_point_with_real_coordinates():
    points = sample_points()
    page = render_html(build_map(points))
    assert page.count("L.circleMarker(") == 3  # 0,0 / NaN / inf / out-of-range are never drawn
    coordinates = [tuple(json.loads(m)) for m in re.findall(r"L\.circleMarker\(\s*(\[[^\]]*\])", page)]
    assert (48.8566, 2.3522) in coordinates  # a precise pin stays exactly where it is
    assert coordinates[0] == (38.0, -97.0)
    assert coordinates[1] != (38.0, -97.0) and math.dist(coordinates[1], (38.0, -97.0)) < 1.0  # fanned out
    assert all(c != (0.0, 0.0) for c in coordinates)


def test_labels_and_details_come_out_escaped():
    page = render_html(build_map(sample_points()))
    assert "<script>alert(1)" not in page
    assert "<img src=x" not in page
    assert "`${alert(3)}`</script>" not in page
    tooltips = bound_texts(page, "bindTooltip")
    popups = bound_texts(page, "bindPopup")
    assert len(tooltips) == len(popups) == 3
    assert tooltips[0] == f"<b>&lt;script&gt;alert(1)&lt;/script&gt;</b><br>malicious · {APPROXIMATE_LABEL}"
    assert "<td>&lt;img src=x onerror=alert(2)&gt;</td>" in popups[0]
    assert tooltips[1].startswith("<b>`${alert(3)}`&lt;/script&gt;&lt;b&gt;</b>")
    assert tooltips[2] == "<b>paris.example</b><br>likely benign"
    assert f"<i>{APPROXIMATE_LABEL}</i>" in popups[0] and APPROXIMATE_LABEL not in popups[2]


def test_empty_map_still_renders_the_offline_world():
    page = render_html(build_map([]))
    assert "L.circleMarker(" not in page
    assert "L.geoJSON(" in page and '"type":"FeatureCollection"' in page
    assert tag_urls(page).urls == []


def test_markers_are_coloured_by_verdict():
    page = render_html(build_map([
        MapPoint(10.0, 10.0, "a", verdict=Verdict.MALICIOUS),
        MapPoint(20.0, 20.0, "b", verdict=Verdict.LIKELY_BENIGN),
    ]))
    options = [json.loads(m) for m in re.findall(r"L\.circleMarker\(\s*\[[^\]]*\],\s*(\{.*?\})\s*\)", page, re.S)]
    assert [o["fillColor"] for o in options] == ["#c62828", "#2e7d32"]


def test_elements_added_later_lose_their_cdn_assets_and_folium_defaults_stay_untouched():
    folium_map = build_map([MapPoint(10.0, 10.0, "a")])
    folium.plugins.MarkerCluster().add_to(folium_map)  # brings jsdelivr/cdnjs links with it
    dropped = strip_remote_assets(folium_map)
    assert {"markerclusterjs", "markerclustercss"} <= set(dropped)
    assert tag_urls(render_html(folium_map)).urls == []
    # only this map's instance lists changed; a plain folium map elsewhere is as folium made it
    assert folium.Map.default_js[0][1].startswith("https://cdn.jsdelivr.net/")


@pytest.mark.parametrize(
    ("url", "local"),
    [("data:text/javascript;base64,AA==", True), ("leaflet.js", True), ("/component/x/leaflet.js", True),
     ("http://127.0.0.1:8501/a.js", True), ("http://[::1]/a.js", True), ("http://localhost/a.js", True),
     ("//cdn.jsdelivr.net/a.js", False), ("https://cdn.jsdelivr.net/a.js", False), ("http://10.0.0.5/a.js", False)],
)
def test_which_asset_urls_count_as_local(url, local):
    assert is_local_url(url) is local


# -- what st_folium sends to its component -------------------------------------------------------------
def test_st_folium_is_handed_only_local_assets(monkeypatch):
    import streamlit_folium

    sent: dict = {}
    monkeypatch.setattr(streamlit_folium, "_component_func", lambda **kwargs: sent.update(kwargs))
    streamlit_folium.st_folium(build_map(sample_points()), height=400, returned_objects=[], key="t")
    assert sent["js_links"] and sent["css_links"]
    assert all(link.startswith("data:text/javascript;base64,") for link in sent["js_links"])
    assert all(link.startswith("data:text/css;base64,") for link in sent["css_links"])
    assert len(sent["js_links"]) == 1  # Leaflet only: no jQuery, Bootstrap, Awesome Markers
    assert re.findall(r"https?://", sent["header"] + sent["html"] + sent["script"]) == []
    assert sent["script"].count("L.circleMarker(") == 3


# -- MAP-01 through the engine -----------------------------------------------------------------------
def test_map01_only_located_rows_reach_the_map_and_it_still_renders():
    enricher = Enricher(Settings(mode=Mode.LOCAL), sources=[OFFLINE_GEO])
    enrichments = list(enricher.enrich_many(
        parse_indicator(t) for t in ("10.0.0.5", "8.8.8.8", "162.159.24.224", "2c0f:ffff::1")))
    by_value = {e.indicator.value: e for e in enrichments}
    assert by_value["10.0.0.5"].result("offline_geo").message == "N/A (private address)"
    assert by_value["2c0f:ffff::1"].result("offline_geo").status is Status.NOT_FOUND
    points = map_points_from_enrichments(enrichments)
    assert sorted(p.label for p in points) == ["162.159.24.224", "8.8.8.8"]
    for point in points:
        assert (point.latitude, point.longitude) == (38.0, -97.0) and point.approximate
        assert point.verdict is Verdict.UNKNOWN
        assert ("location", f"United States (US) — {APPROXIMATE_LABEL}") in point.details
    assert dict(points[0].details)["AS"] in ("GOOGLE", "CLOUDFLARENET")
    page = render_html(build_map(points))
    assert page.count("L.circleMarker(") == 2
    assert render_html(build_map(map_points_from_enrichments([by_value["10.0.0.5"]]))).count("L.circleMarker(") == 0


@pytest.mark.parametrize(
    "location",
    [Location(0.0, 0.0, "null island", True), Location(float("nan"), 5.0, "nan", True),
     Location(5.0, float("-inf"), "inf", False), Location(-91.0, 5.0, "off the globe", False)],
    ids=["MAP-01-zero", "MAP-01-nan", "MAP-01-inf", "MAP-01-range"],
)
def test_map01_broken_coordinates_from_any_source_are_skipped(location):
    indicator = parse_indicator("9.9.9.9")
    result = SourceResult(source="somegeo", status=Status.OK, location=location)
    enrichment: Enrichment = combine(indicator, [result])
    assert map_points_from_enrichments([enrichment]) == []


# -- in a real browser ---------------------------------------------------------------------------------
def chromium_or_skip() -> str:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("OTC_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is required (OTC_REQUIRE_BROWSER is set)")
        pytest.skip(f"{CHROMIUM} not installed")
    return CHROMIUM


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "file"):
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class OfflineBrowser:
    """Headless Chromium that cannot resolve any name but localhost and aborts every non-loopback request."""

    def __init__(self, playwright) -> None:
        self.browser = playwright.chromium.launch(
            executable_path=chromium_or_skip(),
            args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
                  "--disable-background-networking", "--no-first-run"],
        )
        self.context = self.browser.new_context(viewport={"width": 1000, "height": 800})
        self.blocked: list[str] = []
        self.requested: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)

    def _route(self, route) -> None:
        url = route.request.url
        self.requested.append(url)
        if is_loopback_url(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def page(self):
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def close(self) -> None:
        self.browser.close()


@pytest.fixture
def offline_browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    chromium_or_skip()
    with playwright_api.sync_playwright() as playwright:
        browser = OfflineBrowser(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.browser
def test_browser_standalone_html_draws_markers_offline_and_escapes(offline_browser, tmp_path):
    page_file = tmp_path / "map.html"
    points = [  # apart from each other, so a click lands on the marker meant
        MapPoint(38.0, -97.0, HOSTILE_LABEL, details=(("AS", HOSTILE_DETAIL),), verdict="malicious", approximate=True),
        MapPoint(-25.0, 133.0, TEMPLATE_LABEL, approximate=True),
        MapPoint(48.8566, 2.3522, "paris.example", verdict=Verdict.LIKELY_BENIGN),
    ]
    page_file.write_text(render_html(build_map(points)), encoding="utf-8")
    page = offline_browser.page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(page_file.as_uri())
    markers = page.locator("path.leaflet-interactive")
    markers.first.wait_for(timeout=10_000)
    assert markers.count() == 3
    assert page.locator("path").count() > 100  # the country outlines were drawn
    markers.first.hover(force=True)
    tooltip = page.locator(".leaflet-tooltip")
    tooltip.wait_for(timeout=5_000)
    assert tooltip.inner_text().startswith(HOSTILE_LABEL)  # shown as text, not run
    assert page.locator(".leaflet-tooltip img, .leaflet-tooltip script").count() == 0
    markers.first.click(force=True)
    page.locator(".leaflet-popup-content").wait_for(timeout=5_000)
    assert HOSTILE_DETAIL in page.locator(".leaflet-popup-content").inner_text()
    assert page.locator(".leaflet-popup-content img").count() == 0
    assert dialogs == [] and offline_browser.errors == []
    assert offline_browser.blocked == []
    assert offline_browser.requested == [page_file.as_uri()]


APP_USING_ST_FOLIUM = textwrap.dedent(
    """
    import streamlit as st
    from streamlit_folium import st_folium

    from otc.mapping import MapPoint, build_map

    points = [
        MapPoint(38.0, -97.0, "<img src=x onerror=alert(1)>", verdict="malicious", approximate=True),
        MapPoint(48.8566, 2.3522, "paris.example", verdict="likely benign"),
    ]
    st.write("offline map test")
    st_folium(build_map(points), height=400, use_container_width=True, returned_objects=[], key="otc_map")
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.browser
@pytest.mark.slow
def test_browser_st_folium_in_streamlit_makes_no_request_off_the_machine(offline_browser, tmp_path, subprocess_env):
    app = tmp_path / "map_app.py"
    app.write_text(APP_USING_ST_FOLIUM, encoding="utf-8")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app), f"--server.port={port}", "--server.address=127.0.0.1",
         "--server.headless=true", "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
        cwd=tmp_path, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/_stcore/health", timeout=1).text == "ok":
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("streamlit did not start")
            time.sleep(0.3)
        page = offline_browser.page()
        page.goto(base + "/")
        frame_element = page.locator("iframe[src*='streamlit_folium']")
        frame_element.wait_for(timeout=30_000)
        frame = frame_element.content_frame
        markers = frame.locator("path.leaflet-interactive")
        markers.first.wait_for(timeout=30_000)
        assert markers.count() == 2
        assert frame.locator("path").count() > 100  # offline outlines instead of tiles
        markers.first.hover(force=True)
        frame.locator(".leaflet-tooltip").wait_for(timeout=5_000)
        assert frame.locator(".leaflet-tooltip img").count() == 0
        page.wait_for_timeout(500)
        assert offline_browser.blocked == []
        assert any("/component/streamlit_folium" in url for url in offline_browser.requested)
        assert all(is_loopback_url(url) for url in offline_browser.requested)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    output = server.stdout.read().decode(errors="replace") if server.stdout else ""
    assert "blocked non-loopback" not in output, output
