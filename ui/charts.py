"""The score's explanation as a chart: one horizontal bar per contribution, red adds, green subtracts."""

from __future__ import annotations

import html
from typing import Sequence

import plotly.graph_objects as go

from otc.model import Contribution, Verdict
from ui.common import reveal_bidi

POSITIVE_COLOR = "#d62728"  # evidence of harm
NEGATIVE_COLOR = "#2ca02c"  # benign evidence

VERDICT_COLORS = {
    Verdict.MALICIOUS: "red",
    Verdict.SUSPICIOUS: "orange",
    Verdict.UNKNOWN: "gray",
    Verdict.LIKELY_BENIGN: "green",
}
VERDICT_ICONS = {
    Verdict.MALICIOUS: ":material/dangerous:",
    Verdict.SUSPICIOUS: ":material/warning:",
    Verdict.UNKNOWN: ":material/help:",
    Verdict.LIKELY_BENIGN: ":material/verified_user:",
}


# A reason quotes upstream text, which can be 100 kB long: a longer label would push the bars (and the
# label's own start, the points and the source) out of the chart. The panels show the whole reason.
LABEL_MAX_CHARS = 90


def plotly_text(value: str) -> str:
    """Plotly renders a subset of HTML in labels (``<a href>``, ``<b>``…); reasons may quote upstream text."""
    return html.escape(reveal_bidi(value), quote=False)


def bar_label(reason: str) -> str:
    """A reason as a bar's label: escaped, bidi controls revealed, cut to :data:`LABEL_MAX_CHARS`."""
    text = reveal_bidi(" ".join(reason.split()))
    if len(text) > LABEL_MAX_CHARS:
        text = text[: LABEL_MAX_CHARS - 1] + "…"
    return html.escape(text, quote=False)


def contributions_figure(contributions: Sequence[Contribution]) -> go.Figure | None:
    """The bar chart, or ``None`` when there is nothing to draw (the page says so instead)."""
    if not contributions:
        return None
    # Positions rather than category labels: two contributions with the same reason stay two bars.
    positions = list(range(len(contributions)))
    labels = [bar_label(c.reason) for c in contributions]
    figure = go.Figure(
        go.Bar(
            x=[c.points for c in contributions],
            y=positions,
            orientation="h",
            marker_color=[POSITIVE_COLOR if c.points >= 0 else NEGATIVE_COLOR for c in contributions],
            text=[f"{c.points:+g}" for c in contributions],
            textposition="auto",
            customdata=[[plotly_text(c.source), plotly_text(c.rule), c.weight] for c in contributions],
            hovertemplate="%{customdata[0]} · %{customdata[1]} (weight %{customdata[2]})<br>%{x:+g} points<extra></extra>",
        )
    )
    figure.update_layout(
        height=max(160, 60 + 34 * len(contributions)),
        margin=dict(l=10, r=10, t=10, b=30),
        xaxis_title="points",
        showlegend=False,
    )
    figure.update_yaxes(tickmode="array", tickvals=positions, ticktext=labels, autorange="reversed", automargin=True)
    figure.update_xaxes(zeroline=True, zerolinewidth=2)
    return figure
