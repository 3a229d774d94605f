"""Showing :mod:`otc.mapping`'s offline folium map on a page.

``otc.mapping`` builds the map with Leaflet as ``data:`` URLs and an offline base layer (no tiles, no
CDN); as its docstring says, ``st_folium`` then loads those from the page itself, so drawing the map makes
no request at all. Country-level pins are labelled approximate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from otc import mapping
from otc.model import Enrichment
from ui.common import reveal_bidi

MAP_HEIGHT = 420


def located_frame(points: list[mapping.MapPoint]) -> pd.DataFrame:
    rows = []
    for point in points:
        details = dict(point.details)
        rows.append({"indicator": point.label, "location": details.get("location", ""),
                     "verdict": point.verdict_text, "latitude": round(point.latitude, 4),
                     "longitude": round(point.longitude, 4)})
    return pd.DataFrame(rows, columns=["indicator", "location", "verdict", "latitude", "longitude"])


def shown_point(point: mapping.MapPoint) -> mapping.MapPoint:
    """The point with bidi controls in its label and details revealed (``mapping`` escapes the HTML)."""
    return replace(point, label=reveal_bidi(point.label),
                   details=tuple((reveal_bidi(name), reveal_bidi(value)) for name, value in point.details))


def show_map(enrichments: Iterable[Enrichment], key: str) -> list[mapping.MapPoint]:
    """Draw the located indicators; returns the points drawn (none: a sentence instead of a map)."""
    points = [shown_point(p) for p in mapping.map_points_from_enrichments(enrichments)]
    if not points:
        st.caption("No location to show: private, reserved and unlocated indicators have no place on the map.")
        return points
    approximate = sum(1 for p in points if p.approximate)
    if approximate:
        st.caption(f"{approximate} of {len(points)} location(s) {mapping.APPROXIMATE_LABEL}: "
                   "a country centroid, not where the host is.")
    # The same points as text: readable without the map, and the labels stay plain text.
    with st.expander(f"Located indicators ({len(points)})", expanded=len(points) == 1):
        st.dataframe(located_frame(points), hide_index=True, width="stretch", key=f"{key}_points")
    folium_map = mapping.build_map(points)
    # returned_objects=[]: the map is for reading; panning or zooming must not rerun the page.
    st_folium(folium_map, key=key, height=MAP_HEIGHT, use_container_width=True, returned_objects=[])
    return points
