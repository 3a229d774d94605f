"""Attacker-controlled text in a real browser (issue 5, group 3).

Every upstream value a source passes on — names, tags, links, reasons, raw answers — may have been written
by an attacker. Here every source answers from a local fake whose values carry ``<script>`` tags,
``<img onerror>``, HTML and ``javascript:`` links, Markdown links and images (pointing at a non-loopback
host), right-to-left overrides, ``${...}`` template text, ``=1+1`` and a 100 kB string; so do the
uploaded file and the URL indicators themselves. The real dashboard (``streamlit run app.py``) shows them
on the Lookup and Bulk pages in headless Chromium (Debian's /usr/bin/chromium through Playwright), and the
tests assert that

- no script ran: ``window.__otc_xss__`` (which every payload sets) is undefined in the page and in every
  frame, the map's iframe included; no dialog opened; no payload's console marker was logged; no
  uncaught error (a payload breaking out of a script would show as one);
- nothing but loopback was requested (the Markdown and HTML images would load from ``evil.example``);
- no element was made from upstream markup (no ``img[src=x]``, no ``javascript:`` or ``evil.example`` URL
  in any attribute, no inline ``on...`` handler), no raw bidi control reached the page's text, and the
  hostile text is shown literally — in the panels' text, field tables and raw JSON, the chart's labels,
  the Bulk table (every column, read from glide-data-grid's accessible table) and the map's tooltips and
  popups.

Map labels are the indicator and its location: the location's label comes from offline data
(``offline_geo``), never from an upstream answer, so the hostile map labels here are URL indicators.

Set OTC_REQUIRE_BROWSER=1 (CI does) to make a missing Chromium a failure instead of a skip.
"""

from __future__ import annotations

import csv
from urllib.parse import urlsplit

import pytest
from fake_upstream import BAD_DOMAIN, BAD_IP, BAD_MD5, BENIGN_IP, FakeUpstream
from fakedns import FakeDnsServer
from test_browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# -- the payloads ----------------------------------------------------------------------------------
# Each sets window.__otc_xss__ (or opens a dialog) if the browser ever runs it; EVIL_HOST is not loopback,
# so the page's route guard records any attempt to load from it.
EVIL_HOST = "evil.example"
HTML_LINK = f'<a href="http://{EVIL_HOST}/a">a</a>'  # a tag that Plotly's labels would honour
SCRIPT_TAG = "<script>window.__otc_xss__=1;console.log('otc-xss-1');alert(1)</script>"
IMG_ONERROR = "<img src=x onerror=\"window.__otc_xss__=2;console.log('otc-xss-2');alert(2)\">"
JS_URL = "javascript:window.__otc_xss__=3;alert(3)"
MD_LINK = "[click](javascript:window.__otc_xss__=4)"
MD_IMAGE = f"![x](http://{EVIL_HOST}/x.png)"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
TEMPLATE = "${window.__otc_xss__=6}"
FORMULA = "=1+1"
LONG_TEXT = "L" * 100_000


def hostile(where: str) -> str:
    """One upstream value carrying every payload, tagged with where it was planted (for the messages)."""
    return (f"{where.upper()}{HTML_LINK}{SCRIPT_TAG}{IMG_ONERROR} {MD_LINK} {MD_IMAGE} "
            f"<img src=http://{EVIL_HOST}/y.png> {TEMPLATE} {FORMULA} {RLO}gpj.exe")


# A URL indicator can carry hostile text itself (the parser stops at '<' and blanks, not at these), and
# with an IP host it gets a map pin: its label reaches the tooltip and the popup.
HOSTILE_URL = f"http://{BAD_IP}/{TEMPLATE}'&amp;{MD_LINK}"
RLO_URL = f"http://{BAD_IP}/{RLO}gpj.exe"


class HostileUpstream(FakeUpstream):
    """The usual fake upstream, with attacker-controlled text in every value a source passes on."""

    def answer(self, source: str, path: list[str], query: dict, form: dict) -> tuple[int, object]:
        status, payload = super().answer(source, path, query, form)
        if status == 200 and isinstance(payload, (dict, list)):
            plant(source, path, payload)
        return status, payload


def plant(source: str, path: list[str], payload) -> None:
    """Put hostile values where each service may carry free text (only into answers that have findings)."""
    last = path[-1] if path else ""
    if source == "internetdb":
        payload["hostnames"].append(hostile("internetdb hostname"))
        payload["tags"].append(hostile("internetdb tag"))
    elif source == "rdap" and payload.get("objectClassName") == "ip network":
        payload["name"] = hostile("rdap name")
        payload["remarks"] = [{"title": MD_LINK, "description": [LONG_TEXT]}]
        payload["entities"][0]["vcardArray"][1][1][3] = hostile("rdap entity")
    elif source == "rdap" and payload.get("objectClassName") == "domain":
        payload["entities"][0]["vcardArray"][1][1][3] = hostile("rdap registrar")
    elif source == "abuseipdb":
        payload["data"].update({"isp": LONG_TEXT, "domain": MD_IMAGE, "usageType": hostile("abuseipdb usage"),
                                "isWhitelisted": False})  # so the verdict's reason quotes GreyNoise's name
    elif source == "virustotal" and "data" in payload:
        payload["data"]["attributes"]["tags"] = [hostile("virustotal tag")]
        if last == BAD_MD5:
            payload["data"]["attributes"]["popular_threat_classification"] = {
                "suggested_threat_label": hostile("virustotal label")}
    elif source == "otx" and payload.get("pulse_info", {}).get("pulses"):
        payload["pulse_info"]["pulses"][0]["name"] = hostile("otx pulse")
        payload["pulse_info"]["pulses"][0]["tags"] = [MD_LINK]
    elif source == "greynoise" and last == BAD_IP:
        payload.update({"name": hostile("greynoise name"), "link": JS_URL})
    elif source == "greynoise" and last == BENIGN_IP:
        payload.update({"name": hostile("greynoise riot"), "link": JS_URL})
    elif source == "shodan":
        payload.update({"org": hostile("shodan org"), "hostnames": [MD_LINK],
                        "country_name": hostile("shodan country")})
    elif source == "urlhaus" and payload.get("query_status") == "ok":
        payload.update({"urlhaus_reference": JS_URL, "tags": [hostile("urlhaus tag")], "threat": MD_LINK})
        payload["urls"][0].update({"urlhaus_reference": JS_URL, "tags": [hostile("urlhaus url tag")]})
    elif source == "threatfox" and payload.get("query_status") == "ok":
        payload["data"][0].update({"malware_printable": hostile("threatfox malware"), "malware_alias": MD_IMAGE,
                                   "reporter": JS_URL, "threat_type": LONG_TEXT})  # a 100 kB score line
    elif source == "malwarebazaar" and payload.get("query_status") == "ok":
        payload["data"][0].update({"signature": hostile("malwarebazaar signature"),
                                   "file_name": f"invoice{RLO}fdp.exe"})
    elif source == "crtsh" and payload:
        payload[0]["issuer_name"] = hostile("crtsh issuer")


# -- the dashboard and the browser ----------------------------------------------------------------
@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """The dashboard with every source answering from :class:`HostileUpstream` and a fake DNS whose TXT
    record is hostile too."""
    require_chromium()
    work = tmp_path_factory.mktemp("hostile_dashboard")
    fake = HostileUpstream().start()
    dns = FakeDnsServer()
    dns.start()
    dns.records[(BAD_DOMAIN, "A")] = [BAD_IP]
    dns.records[(BAD_DOMAIN, "TXT")] = [hostile("dns txt")]
    try:
        with running_dashboard(work, fake, dns) as base:
            yield {"base": base, "fake": fake, "work": work}
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
    """A page that can reach loopback only: anything else is aborted and listed in ``page.blocked``;
    dialogs are dismissed and listed in ``page.dialogs``; console messages and uncaught errors are kept."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    blocked: list[str] = []
    requested: list[str] = []

    def only_loopback(route):
        url = route.request.url
        requested.append(url)
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost", "::1"):
            return route.continue_()
        blocked.append(url)
        return route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.blocked = blocked
    page.requested = requested
    page.dialogs = []
    page.console = []
    page.errors = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: page.console.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()
    assert page.blocked == [], f"the page tried to load non-loopback resources: {page.blocked}"
    assert page.dialogs == [], f"a script from upstream text opened a dialog: {page.dialogs}"


# -- what the browser shows ------------------------------------------------------------------------
# Run in every frame: what the page made of the payloads. Script and style text is not looked at (the
# map's script holds the labels as JSON string literals, which is how they should travel).
AUDIT_JS = r"""() => {
    const found = [];
    const urlAttributes = ["src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data"];
    for (const element of document.querySelectorAll("*")) {
        for (const attr of element.attributes) {
            const name = attr.name.toLowerCase();
            const squeezed = attr.value.replace(/[\s\u0000-\u001f]/g, "").toLowerCase();
            const where = `<${element.tagName.toLowerCase()} ${attr.name}="${attr.value.slice(0, 80)}">`;
            if (name.startsWith("on")) found.push("inline handler " + where);
            if (squeezed.startsWith("javascript:")) found.push("javascript: URL " + where);
            if (urlAttributes.includes(name) && (attr.value.trim() === "x" || squeezed.includes("evil.example")))
                found.push("upstream URL " + where);
            if (name === "style" && squeezed.includes("evil.example")) found.push("upstream URL " + where);
        }
    }
    const bidi = /[\u202a-\u202e\u2066-\u2069]/;
    const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const tag = node.parentElement ? node.parentElement.tagName : "";
        if (tag !== "SCRIPT" && tag !== "STYLE" && bidi.test(node.data))
            found.push("raw bidi control in text: " + JSON.stringify(node.data.slice(0, 80)));
    }
    return {marker: typeof window.__otc_xss__, found: found};
}"""


def audit_every_frame(page) -> None:
    """No payload ran or became markup in the page or any frame; nothing left loopback; no dialog."""
    frames = page.frames
    assert len(frames) >= 2, "the map's iframe should be among the frames"
    for frame in frames:
        outcome = frame.evaluate(AUDIT_JS)
        assert outcome["marker"] == "undefined", f"a payload ran in {frame.url[:80]}"
        assert outcome["found"] == [], f"upstream markup became page content in {frame.url[:80]}"
    assert page.dialogs == [], f"a script from upstream text opened a dialog: {page.dialogs}"
    assert [m for m in page.console if "otc-xss" in m] == [], "a script from upstream text logged its marker"
    # a payload that broke out of a script (a template literal, say) shows as a syntax error instead
    assert page.errors == [], f"uncaught errors in the page: {page.errors}"
    assert page.blocked == [], f"the page tried to load non-loopback resources: {page.blocked}"
    assert not [u for u in page.requested if urlsplit(u).path.endswith("/x")], "an <img src=x> was requested"


def expand_everything(page) -> None:
    """Open every collapsed expander and every collapsed node of every raw-JSON view, so all upstream
    text is in the DOM."""
    for _ in range(50):
        opened = page.evaluate("""() => {
            const closed = [...document.querySelectorAll(
                "[data-testid='stExpander'] details:not([open]) > summary")];
            const nodes = [...document.querySelectorAll("[data-testid='stJson'] .collapsed-icon")];
            closed.forEach(summary => summary.click());
            nodes.forEach(icon => icon.click());
            return closed.length + nodes.length;
        }""")
        if not opened:
            return
        page.wait_for_timeout(200)
    pytest.fail("panels or JSON nodes kept collapsing")


def texts(page, selector: str) -> list[str]:
    """The text content of every element matching ``selector`` (also those a canvas hides)."""
    return page.locator(selector).evaluate_all("elements => elements.map(e => e.textContent)")


def grid_cells(grid) -> dict[str, list[str]]:
    """Every cell of a Streamlit dataframe, by column title (a repeated title gets " (2)"), read from the
    accessible table that glide-data-grid keeps behind its canvas. That table holds the columns in view
    only, so the grid is scrolled sideways a screen at a time until every column has been in view."""
    grid = grid.element_handle(timeout=30_000)  # pinned: scrolling changes which headers a locator sees
    read = """grid => [
        [...grid.querySelectorAll("th[role='columnheader']")].map(
            th => [Number(th.getAttribute("aria-colindex")), th.textContent]),
        [...grid.querySelectorAll("td[role='gridcell']")].map(td => [Number(td.getAttribute("aria-colindex")),
            Number(td.closest("tr").getAttribute("aria-rowindex")), td.textContent])]"""
    first_column = """grid => Number(grid.querySelector("th[role='columnheader']").getAttribute("aria-colindex"))"""
    scroll_to = """(grid, left) => {
        const scroller = grid.querySelector(".dvn-scroller");
        scroller.scrollLeft = left;
        return scroller.scrollLeft;
    }"""
    titles: dict[int, str] = {}
    cells: dict[int, dict[int, str]] = {}
    width, step = grid.evaluate("""grid => {
        const scroller = grid.querySelector(".dvn-scroller");
        return [scroller.scrollWidth, scroller.clientWidth];
    }""")
    position = 0
    while True:
        columns, rows = grid.evaluate(read)
        titles.update(dict(columns))
        for column, row, text in rows:
            cells.setdefault(column, {})[row] = text
        if position >= width - step:
            break
        before = grid.evaluate(first_column)
        position = grid.evaluate(scroll_to, position + step)
        # glide refills its accessible table a moment after the scrolling stops
        grid.owner_frame().wait_for_function(
            f"([grid, before]) => ({first_column})(grid) !== before", arg=[grid, before], timeout=10_000)
    table: dict[str, list[str]] = {}
    for column in sorted(cells):
        title = titles[column]
        while title in table:
            title += " (2)"
        table[title] = [cells[column][row] for row in sorted(cells[column])]
    return table


def shown(text: str) -> str:
    """How the page should show upstream text: literally, with bidi controls made visible."""
    return text.replace(RLO, "[U+202E]")


# -- the tests ----------------------------------------------------------------------------------------
def test_lookup_shows_hostile_upstream_text_as_text(dashboard, page):
    page.goto(f"{dashboard['base']}/lookup?ioc={BAD_IP}")
    page.get_by_text("MALICIOUS", exact=False).first.wait_for(timeout=60_000)
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=30_000)
    map_frame = page.frame_locator("iframe[title*='streamlit_folium']").first
    map_frame.locator(".leaflet-interactive").first.wait_for(timeout=30_000)
    expand_everything(page)

    # Source panels: the score lines quote upstream names literally.
    reasons = "\n".join(texts(page, "[data-testid='stText']"))
    for where in ("greynoise name", "otx pulse", "threatfox malware"):
        assert shown(hostile(where)) in reasons, where
    # ... the fields tables (one row per field) ...
    cells = texts(page, "[data-testid='stDataFrame'] td[role='gridcell']")
    for where in ("rdap name", "greynoise name", "shodan org", "abuseipdb usage"):
        assert shown(hostile(where)) in cells, where
    assert JS_URL in cells  # GreyNoise's link: a text cell, not a link
    assert MD_IMAGE in cells  # AbuseIPDB's domain: not an image
    assert LONG_TEXT in cells  # AbuseIPDB's ISP, all 100 kB of it
    # ... and the raw answers.
    raw = "\n".join(texts(page, "[data-testid='stJson']"))
    assert shown(hostile("rdap name")) in raw
    assert JS_URL in raw and LONG_TEXT in raw

    # The chart: each bar's label is the reason as text, and every label stays readable: it starts
    # with the points and the source, inside the chart, however long the upstream text is.
    labels = chart.evaluate("""plot => [...plot.querySelectorAll('.ytick text')].map(t => {
        const box = t.getBoundingClientRect(), frame = plot.getBoundingClientRect();
        return {text: t.textContent, left: box.left - frame.left};
    })""")
    label_texts = [label["text"] for label in labels]
    for start in ("+35 GreyNoise: classified malicious (GREYNOISE NAME",
                  "+20 AlienVault OTX: in 7 pulse(s) (e.g. 'OTX PULSE",
                  "+30 ThreatFox: IOC listed (THREATFOX MALWARE"):
        assert any(text.startswith(start + HTML_LINK) for text in label_texts), (start, label_texts)
    cut_off = [label for label in labels if label["left"] < 0]
    assert cut_off == [], f"chart labels run off the chart: {[c['text'][:60] for c in cut_off]}"

    audit_every_frame(page)

    # A benign verdict's reason quotes an upstream name: shown as text — no link (Markdown would make one of
    # the bare http:// URL even fully backslash-escaped), no image.
    page.goto(f"{dashboard['base']}/lookup?ioc={BENIGN_IP}")
    page.get_by_text("LIKELY BENIGN", exact=False).first.wait_for(timeout=60_000)
    caption = page.get_by_text("benign evidence (", exact=False).first
    caption.wait_for(timeout=30_000)
    assert shown(hostile("greynoise riot")) in caption.inner_text()
    assert caption.locator("a, img").count() == 0
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    map_frame.locator(".leaflet-interactive").first.wait_for(timeout=30_000)
    audit_every_frame(page)


def test_bulk_shows_hostile_upstream_text_as_text(dashboard, page, tmp_path):
    # The uploaded file is attacker-controlled too: its header, its other columns, a cell that is no indicator.
    # (No URL in the header: a first row with an indicator in it would be read as data, not as a header.)
    header = f"ioc {SCRIPT_TAG}{IMG_ONERROR} {MD_LINK} {TEMPLATE} {RLO}gpj"
    rows = [
        (BAD_IP, hostile("upload comment")),
        (BENIGN_IP, FORMULA),
        (BAD_DOMAIN, MD_LINK),
        (BAD_MD5, MD_IMAGE),
        (HOSTILE_URL, TEMPLATE),
        (RLO_URL, f"invoice{RLO}fdp.exe"),
        (IMG_ONERROR, "not an indicator"),
    ]
    upload = tmp_path / "hostile.csv"
    with upload.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([header, "comment"])
        writer.writerows(rows)
    page.set_viewport_size({"width": 2800, "height": 1800})  # a wide results table: fewer screens to read
    page.goto(f"{dashboard['base']}/bulk")
    page.locator("input[type='file']").first.set_input_files(str(upload))
    page.get_by_text("Before you run: what leaves this machine").wait_for(timeout=30_000)
    assert page.locator("[data-testid='stSelectbox'] input").first.input_value() == shown(header)
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Results", exact=True).wait_for(timeout=120_000)
    map_frame = page.frame_locator("iframe[title*='streamlit_folium']").first
    map_frame.locator(".leaflet-interactive").first.wait_for(timeout=30_000)
    expand_everything(page)

    # The results table: upstream values, links included, are plain text cells.
    results = page.locator("[data-testid='stDataFrame']").filter(has=page.locator("th", has_text="row status"))
    table = grid_cells(results)
    assert table[shown(header)] == [shown(indicator) for indicator, _ in rows]  # the upload's own columns
    assert table["comment"] == [shown(comment) for _, comment in rows]
    assert table["indicator"][4:6] == [HOSTILE_URL, shown(RLO_URL)]  # the normalized indicator
    assert table["greynoise_link"][:2] == [JS_URL, JS_URL]
    assert table["urlhaus_reference"][0] == JS_URL
    assert table["greynoise_name"][0] == shown(hostile("greynoise name"))
    assert shown(hostile("greynoise riot")) in table["why"][1]
    assert table["abuseipdb_isp"][0] == LONG_TEXT
    assert table["abuseipdb_domain"][0] == MD_IMAGE
    assert table["threatfox_malware_family"][0] == shown(hostile("threatfox malware"))
    assert table["dns_txt"][2] == shown(hostile("dns txt"))
    assert table["malwarebazaar_file_name"][3] == shown(f"invoice{RLO}fdp.exe")
    assert table["malwarebazaar_malware_family"][3] == shown(hostile("malwarebazaar signature"))
    assert shown(hostile("otx pulse")) in table["otc_reasons"][0]
    rejected = texts(page, "[data-testid='stExpander'] [data-testid='stDataFrame'] td[role='gridcell']")
    assert IMG_ONERROR in rejected

    # The map: every pin's tooltip and popup, opened through Leaflet, show the pin's label as text.
    frame = page.locator("iframe[title*='streamlit_folium']").first.element_handle().content_frame()
    shown_on_map = frame.evaluate("""() => {
        const markers = Object.values(window).filter(v => v instanceof L.CircleMarker);
        return markers.map(marker => {
            marker.openTooltip();
            marker.openPopup();
            const tooltip = marker.getTooltip().getElement().textContent;
            const popup = marker.getPopup().getElement().querySelector(".leaflet-popup-content").textContent;
            marker.closeTooltip();
            marker.closePopup();
            return [tooltip, popup];
        });
    }""")
    assert len(shown_on_map) == 4  # the two addresses and the two URLs on an address
    tooltips = sorted(tooltip for tooltip, _ in shown_on_map)
    popups = [popup for _, popup in shown_on_map]
    approximate = " · approximate (country-level)"
    assert tooltips == sorted([f"{BAD_IP}malicious{approximate}", f"{BENIGN_IP}likely benign{approximate}",
                               f"{HOSTILE_URL}malicious{approximate}", f"{shown(RLO_URL)}malicious{approximate}"])
    for label in (HOSTILE_URL, shown(RLO_URL)):
        assert [p for p in popups if p.startswith(label + "approximate (country-level)kindurl")], (label, popups)

    audit_every_frame(page)
