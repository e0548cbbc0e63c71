"""What a page hands to ui/follow.py's component in an AppTest run: the figure of this run for a chart whose
data change with a slider (``follow_slider(figures=...)``; the chart element itself shows the settings' figure)."""

from __future__ import annotations

import json


def followed_figure(at, chart_key: str) -> dict:
    """The figure (plotly JSON) that the follow component of this run applies to the chart with key ``chart_key``."""
    for element in at.get("bidi_component"):
        data = json.loads(element.proto.json)
        if chart_key in data.get("figures", {}):
            return data["figures"][chart_key]
    raise AssertionError(f"no follow_slider figure for {chart_key}")


def followed_title(at, chart_key: str) -> str:
    return followed_figure(at, chart_key)["layout"]["title"]["text"]
