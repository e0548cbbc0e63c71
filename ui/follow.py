"""Markers and frames that follow a slider in the browser, before the server answers.

A slider step used to rebuild every plotly chart whose only change was the marker at t: the server sent a new
figure and plotly.js drew it from nothing (hundreds of milliseconds of the browser's time per chart). Here the
chart's figure depends only on the settings, so a step sends it unchanged and Streamlit leaves it alone; a
small custom component (``st.components.v2``, ``ui/assets/follow_slider.js``) listens to the slider's range
input and moves the marker with ``Plotly.relayout`` (layout shapes only: no trace is redrawn) the moment the
key is pressed. The server still reruns the slider's fragment for the numbers beside the chart.

The marker is drawn as layout shapes (a dashed line at x, a dot on each curve, a label) and described in
``layout.meta.follow`` (see ``marker_layout``), so the same figure is right with or without the script: the
server draws it at the slider's value of the run that built it, the script moves it from there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

_JS = (Path(__file__).parent / "assets" / "follow_slider.js").read_text(encoding="utf-8")
_component = st.components.v2.component("course_follow_slider", js=_JS, isolate_styles=False)


def figure_json(figure: go.Figure | dict) -> dict:
    """A figure as the JSON the browser's plotly reads, without its template: the browser keeps the chart's own
    (Streamlit's theme, which it put there), and plotly.py's default template is ten kilobytes a step."""
    if isinstance(figure, _Serialised):
        out = figure.to_dict()
    else:
        out = json.loads(figure.to_json()) if isinstance(figure, go.Figure) else figure
    if "template" in out.get("layout", {}):
        out = {**out, "layout": {k: v for k, v in out["layout"].items() if k != "template"}}
    return out


def follow_slider(
    slider: str,
    *,
    charts: Sequence[str] = (),
    figures: Mapping[str, go.Figure | dict] | None = None,
    value: float,
    xs: Sequence[float] | None = None,
    texts: Sequence[str] | None = None,
    label: str | None = "t = {v}",
    minimum: float = 0,
    step: float = 1,
    key: str | None = None,
) -> None:
    """Make the markers of the plotly charts with keys ``charts`` follow the slider with key ``slider``.

    ``value`` is the slider's position in this run (its value; for a select_slider, the index of its option).
    Position p is the chart's x = p, or ``xs[(p - minimum) / step]`` when given; the label's ``{v}`` is the shown
    value (``texts[...]`` when given). Everything passed must depend only on the settings, not on the slider's
    value, except ``value`` itself (a few bytes): then the charts are sent unchanged at each step.

    ``figures`` (chart key -> figure) are charts whose data change with the slider (a histogram at t): the page
    shows each with ``st.plotly_chart`` at a figure that depends only on the settings (``show_in_place``), and
    the browser applies the figure of this run to it with ``Plotly.react``, which redraws the traces that
    changed instead of building the chart again.
    """
    data = {
        "id": key or f"{slider}:{','.join(charts)}", "slider": slider, "charts": list(charts), "value": value,
        "xs": None if xs is None else [float(x) for x in xs], "texts": None if texts is None else list(texts),
        "label": label, "min": minimum, "step": step,
        "figures": {k: figure_json(fig) for k, fig in (figures or {}).items()},
    }
    _component(data=data, key=key or f"follow_{slider}_{'_'.join(charts)}", height=0, width="stretch")


class _Serialised(go.Figure):
    """A figure that keeps its plain JSON form (``frozen``)."""

    def to_dict(self) -> dict:
        if self.__dict__.get("_course_json") is None:
            self._course_json = json.loads(pio.to_json(go.Figure.to_dict(self), validate=False))
        return self._course_json


def frozen(figure: go.Figure) -> go.Figure:
    """The same figure, keeping its serialised form once made. Streamlit serialises a chart at every run of its
    fragment (a deep copy, then base64 of every array: 5-10 ms a chart), although a chart whose figure depends
    only on the settings is the same at every step; this copy does it once. For figures kept in a cache and
    never changed afterwards (the JSON is made at the first use, later changes to the figure are not seen): the
    figure itself becomes one (no copy, which would cost as much as the serialisation it saves)."""
    if type(figure) is go.Figure:
        figure.__class__ = _Serialised
    return figure


def show_in_place(container, settings_figure: go.Figure | dict, key: str, **kwargs) -> None:
    """``st.plotly_chart`` of the figure that depends only on the settings, for ``follow_slider(figures=...)``
    to update in the browser: the element is the same at every step, so Streamlit never rebuilds it."""
    container.plotly_chart(settings_figure, key=key, **kwargs)


def update_in_place(figures: Mapping[str, go.Figure | dict], *, key: str) -> None:
    """Apply these figures in the browser to the charts shown with ``show_in_place`` (chart key -> figure),
    for charts that no slider position describes (several sliders drive them): ``follow_slider`` without a marker."""
    data = {"id": key, "slider": None, "charts": [], "frames": [], "value": 0, "xs": None, "texts": None,
            "label": None, "min": 0, "step": 1, "figures": {k: figure_json(f) for k, f in figures.items()}}
    _component(data=data, key=key, height=0, width="stretch")
