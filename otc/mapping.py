"""Folium maps of located indicators that work with no internet at all.

How the map stays offline — folium, out of the box, makes the browser fetch Leaflet, jQuery, Bootstrap,
Awesome Markers and Font Awesome from five CDNs and draws OpenStreetMap tiles; here nothing is fetched:

- **Leaflet** comes from the ``XStatic-Leaflet`` package (1.9.3, the version folium asks for). The map's
  ``default_js``/``default_css`` — the only asset lists folium *and* streamlit-folium read — are replaced by
  ``data:`` URLs holding ``leaflet.js`` and ``leaflet.css`` (whose four images are inlined in turn); every
  other asset (jQuery, Bootstrap, Awesome Markers, Font Awesome, ...) is dropped, since nothing here needs
  it: markers are ``L.circleMarker`` vectors, tooltips and popups are bound by our own script.
  streamlit-folium does *not* bundle Leaflet in its frontend: it adds a ``<script src>`` per ``default_js``
  entry and a ``<link>`` per ``default_css`` entry inside its component iframe, so with ``data:`` URLs
  those load from the page itself. :func:`render_html` goes one step further for
  ``st.components.v1.html``: Leaflet's code and CSS are inlined as ``<script>``/``<style>`` text.
- **No tiles.** The base layer is an offline GeoJSON of country outlines built once from ``countryinfo``
  (coordinates rounded to 0.01°, ~170 kB; a few countries — Hungary, Serbia, Myanmar, Singapore and some
  small islands — have no outline in that data set) on a plain sea-coloured background.
- **Escaping.** Labels and details come from upstream services (attacker-controlled): they are
  HTML-escaped and then handed to ``bindTooltip``/``bindPopup`` as JSON string literals (``tojson``, so a
  backtick, ``${`` or ``</script>`` cannot break out of the script either). folium's own ``Tooltip`` puts
  text raw into a JS template literal, which is why it is not used.

Use :func:`map_points_from_enrichments` -> :func:`build_map` -> ``st_folium`` (or :func:`render_html`).
This module never imports streamlit.
"""

from __future__ import annotations

import base64
import html
import ipaddress
import json
import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

import folium
from folium.elements import JSCSSMixin
from folium.template import Template

from otc.model import Enrichment, Verdict

log = logging.getLogger(__name__)

APPROXIMATE_LABEL = "approximate (country-level)"

VERDICT_COLOURS = {
    Verdict.MALICIOUS.value: "#c62828",
    Verdict.SUSPICIOUS.value: "#ef6c00",
    Verdict.UNKNOWN.value: "#546e7a",
    Verdict.LIKELY_BENIGN.value: "#2e7d32",
}
SEA_COLOUR = "#dbe8f0"
LAND_STYLE = {"color": "#8a9aa6", "weight": 0.6, "fillColor": "#f4f1ea", "fillOpacity": 1.0}
WORLD_CENTER = (20.0, 0.0)
OUTLINE_DECIMALS = 2  # 0.01° ≈ 1 km, finer than the outlines themselves; more digits only add bytes
SPREAD_STEP_DEGREES = 0.8  # approximate pins sharing one centroid are fanned out by this much


@dataclass(frozen=True, slots=True)
class MapPoint:
    """One pin. ``label`` and ``details`` are plain text (escaped when drawn); ``details`` are
    (name, value) rows for the popup. ``approximate`` marks a country-level centroid."""

    latitude: float
    longitude: float
    label: str
    details: tuple[tuple[str, str], ...] = ()
    verdict: Verdict | str = Verdict.UNKNOWN
    approximate: bool = False

    @property
    def verdict_text(self) -> str:
        return self.verdict.value if isinstance(self.verdict, Verdict) else str(self.verdict)


def has_real_coordinates(latitude: object, longitude: object) -> bool:
    """Finite, in range, and not the 0,0 that broken geo data uses for "unknown"."""
    try:
        lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and not (lat == 0.0 and lon == 0.0)


def map_points_from_enrichments(enrichments: Iterable[Enrichment]) -> list[MapPoint]:
    """One point per enrichment that has real coordinates (``Enrichment.location``); the rest are skipped
    (private addresses, addresses without a record, broken coordinates)."""
    points: list[MapPoint] = []
    for enrichment in enrichments:
        location = enrichment.location
        if location is None or not has_real_coordinates(location.latitude, location.longitude):
            continue
        details: list[tuple[str, str]] = [
            ("kind", enrichment.indicator.kind.value),
            ("verdict", f"{enrichment.verdict.value} (score {enrichment.score})"),
            ("location", location.label + (f" — {APPROXIMATE_LABEL}" if location.approximate else "")),
        ]
        geo = enrichment.result("offline_geo")
        if geo is not None and geo.fields.get("as_name"):
            details.append(("AS", str(geo.fields["as_name"])))
        points.append(MapPoint(
            latitude=float(location.latitude), longitude=float(location.longitude),
            label=enrichment.indicator.display, details=tuple(details),
            verdict=enrichment.verdict, approximate=location.approximate,
        ))
    return points


# -- local assets -----------------------------------------------------------------------------------
def leaflet_dir() -> Path:
    from xstatic.pkg import leaflet

    return Path(leaflet.BASE_DIR)


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@lru_cache(maxsize=1)
def leaflet_js() -> str:
    """Leaflet 1.9.3's code, without its source-map comment (a devtools request for a file we do not serve)."""
    code = (leaflet_dir() / "leaflet.js").read_text(encoding="utf-8")
    return re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", code)


@lru_cache(maxsize=1)
def leaflet_css() -> str:
    """Leaflet's CSS with its ``url(images/...)`` references inlined as data URLs."""
    css = (leaflet_dir() / "leaflet.css").read_text(encoding="utf-8")
    images = leaflet_dir() / "images"

    def inline(match: re.Match[str]) -> str:
        return f"url({_data_url('image/png', (images / match.group(1)).read_bytes())})"

    return re.sub(r"url\(images/([A-Za-z0-9_.-]+\.png)\)", inline, css)


@lru_cache(maxsize=1)
def leaflet_js_url() -> str:
    return _data_url("text/javascript", leaflet_js().encode("utf-8"))


@lru_cache(maxsize=1)
def leaflet_css_url() -> str:
    return _data_url("text/css", leaflet_css().encode("utf-8"))


def is_local_url(url: str) -> bool:
    """May the browser load this without leaving the machine? (data:, relative, or loopback)."""
    parts = urlsplit(url.strip())
    if parts.scheme == "data":
        return True
    if not parts.scheme and not parts.netloc:
        return True  # relative: comes from whatever served the page
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def strip_remote_assets(folium_map: folium.Map) -> list[str]:
    """Point Leaflet at the local copy and drop every other remote JS/CSS asset of every element in the
    map's tree. Returns the names dropped. Idempotent; :func:`build_map` and :func:`render_html` call it,
    and a page that adds its own folium elements must call it again before ``st_folium``."""
    dropped: list[str] = []
    for element in _walk(folium_map):
        if not isinstance(element, JSCSSMixin):
            continue
        js: list[tuple[str, str]] = []
        for name, url in element.default_js:
            if name == "leaflet":
                js.append((name, leaflet_js_url()))
            elif is_local_url(url):
                js.append((name, url))
            else:
                dropped.append(name)
        css: list[tuple[str, str]] = []
        for name, url in element.default_css:
            if name == "leaflet_css":
                css.append((name, leaflet_css_url()))
            elif is_local_url(url):
                css.append((name, url))
            else:
                dropped.append(name)
        # instance attributes: folium's lists are shared class attributes of every Map in the process
        element.default_js = js
        element.default_css = css
    if dropped:
        log.debug("offline map: dropped remote assets %s", sorted(set(dropped)))
    return dropped


def _walk(element: object) -> Iterable[object]:
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


# -- offline base layer ---------------------------------------------------------------------------
def _rounded_ring(ring: list, decimals: int) -> list[list[float]]:
    out: list[list[float]] = []
    for point in ring:
        rounded = [round(float(point[0]), decimals), round(float(point[1]), decimals)]
        if not out or out[-1] != rounded:
            out.append(rounded)
    return out


@lru_cache(maxsize=1)
def country_outlines_json() -> str:
    """A GeoJSON FeatureCollection (as compact JSON text) of every country outline in ``countryinfo``."""
    from countryinfo import CountryInfo

    features = []
    seen: set[str] = set()
    for info in CountryInfo.all().values():
        for feature in (info.get("geoJSON") or {}).get("features", []):
            geometry = feature.get("geometry") or {}
            ident = str(feature.get("id") or "")
            if ident and ident in seen:
                continue
            if geometry.get("type") == "Polygon":
                polygons = [geometry.get("coordinates") or []]
            elif geometry.get("type") == "MultiPolygon":
                polygons = geometry.get("coordinates") or []
            else:
                continue
            kept = []
            for polygon in polygons:
                rings = [r for r in (_rounded_ring(ring, OUTLINE_DECIMALS) for ring in polygon) if len(r) >= 4]
                if rings:
                    kept.append(rings)
            if kept:
                seen.add(ident)
                features.append({"type": "Feature", "properties": {},
                                 "geometry": {"type": "MultiPolygon", "coordinates": kept}})
    return json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":"))


class OfflineBaseLayer(folium.MacroElement):
    """Country outlines on a plain background, instead of remote tiles."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.getContainer().style.background = {{ this.background|tojson }};
            if ({{ this._parent.get_name() }}.attributionControl) {
                {{ this._parent.get_name() }}.attributionControl.setPrefix("Leaflet");
            }
            var {{ this.get_name() }} = L.geoJSON({{ this.outlines }}, {
                style: {{ this.style|tojson }},
                interactive: false,
                attribution: "Country outlines: countryinfo (offline)"
            }).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "OfflineBaseLayer"
        self.background = SEA_COLOUR
        self.style = LAND_STYLE
        self.outlines = country_outlines_json()


class EscapedText(folium.MacroElement):
    """Binds a tooltip and a popup to its parent marker; both are escaped HTML passed as JSON strings."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.bindTooltip({{ this.tooltip|tojson }}, {"sticky": true});
            {{ this._parent.get_name() }}.bindPopup({{ this.popup|tojson }}, {"maxWidth": 360});
        {% endmacro %}
        """
    )

    def __init__(self, tooltip_html: str, popup_html: str) -> None:
        super().__init__()
        self._name = "EscapedText"
        self.tooltip = tooltip_html
        self.popup = popup_html


def tooltip_html(point: MapPoint) -> str:
    extra = f" · {APPROXIMATE_LABEL}" if point.approximate else ""
    return f"<b>{html.escape(point.label)}</b><br>{html.escape(point.verdict_text)}{extra}"


def popup_html(point: MapPoint) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:8px'>{html.escape(str(name))}</th>"
        f"<td>{html.escape(str(value))}</td></tr>"
        for name, value in point.details
    )
    note = f"<div><i>{APPROXIMATE_LABEL}</i></div>" if point.approximate else ""
    return f"<div><b>{html.escape(point.label)}</b></div>{note}<table>{rows}</table>"


def _spread(points: list[MapPoint]) -> list[tuple[float, float]]:
    """Where to draw each point: approximate pins that share one centroid are fanned out on a small
    golden-angle spiral so each stays visible and clickable; precise pins are never moved."""
    seen: dict[tuple[float, float], int] = defaultdict(int)
    placed: list[tuple[float, float]] = []
    for point in points:
        lat, lon = point.latitude, point.longitude
        if point.approximate:
            key = (round(lat, 4), round(lon, 4))
            n = seen[key]
            seen[key] += 1
            if n:
                radius = SPREAD_STEP_DEGREES * math.sqrt(n)
                angle = n * 2.399963  # golden angle, radians
                lat = max(-85.0, min(85.0, lat + radius * math.sin(angle)))
                lon = ((lon + radius * math.cos(angle) + 180.0) % 360.0) - 180.0
        placed.append((lat, lon))
    return placed


def build_map(points: Iterable[MapPoint]) -> folium.Map:
    """A folium map with one circle marker per point with real coordinates, coloured by verdict, on the
    offline base layer, with Leaflet from the local copy. Renders (an empty world) with no points."""
    located = [p for p in points if has_real_coordinates(p.latitude, p.longitude)]
    folium_map = folium.Map(location=WORLD_CENTER, zoom_start=2, tiles=None, min_zoom=1, max_zoom=9,
                            world_copy_jump=True)
    OfflineBaseLayer().add_to(folium_map)
    for point, (lat, lon) in zip(located, _spread(located)):
        colour = VERDICT_COLOURS.get(point.verdict_text, VERDICT_COLOURS[Verdict.UNKNOWN.value])
        marker = folium.CircleMarker(
            location=[lat, lon], radius=9 if point.approximate else 7, color=colour, weight=2,
            fill=True, fill_color=colour, fill_opacity=0.45 if point.approximate else 0.85,
            dash_array="4 3" if point.approximate else None,
        )
        EscapedText(tooltip_html(point), popup_html(point)).add_to(marker)
        marker.add_to(folium_map)
    if located:
        lats = [p.latitude for p in located]
        lons = [p.longitude for p in located]
        folium_map.fit_bounds([[min(lats), min(lons)], [max(lats), max(lons)]], padding=(40, 40), max_zoom=4)
    strip_remote_assets(folium_map)
    return folium_map


class _AssetRefs(HTMLParser):
    """Collects what a page makes the browser fetch: script src, link href, img/iframe src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def asset_urls(page: str) -> list[str]:
    """Every URL the HTML's tags would load (for checks: a script's *text* is not looked at)."""
    parser = _AssetRefs()
    parser.feed(page)
    return parser.urls


def render_html(folium_map: folium.Map) -> str:
    """The map as one self-contained HTML document (Leaflet's code and CSS inlined, no remote URL), for
    ``st.components.v1.html(render_html(m), height=...)`` or a download."""
    strip_remote_assets(folium_map)
    page = folium_map.get_root().render()
    page = page.replace(f'<script src="{leaflet_js_url()}"></script>', f"<script>{leaflet_js()}</script>")
    page = page.replace(f'<link rel="stylesheet" href="{leaflet_css_url()}"/>', f"<style>{leaflet_css()}</style>")
    remote = [url for url in asset_urls(page) if not is_local_url(url)]
    if remote:  # a folium element added something we do not know how to serve: never ship it
        raise ValueError(f"map still references remote assets: {remote}")
    return page
