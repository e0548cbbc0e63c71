"""ui.follow.frozen: a settings-only figure that Streamlit serialises at every run keeps its JSON, the same JSON
plotly makes of the figure, and Streamlit's plotly_chart sends that."""

from __future__ import annotations

import json

import numpy as np
import plotly
import plotly.graph_objects as go
from streamlit.testing.v1 import AppTest

from ui import charts
from ui.follow import frozen


def figure() -> go.Figure:
    x = np.linspace(0, 1, 500)
    return charts.curves_figure(x, {"a": x**2, "b": np.sqrt(x)}, "t", "y", marker_x=0.25, marker_label="t = 0.25",
                                log_y=True, title="T")


def streamlit_spec(fig) -> dict:
    """What st.plotly_chart puts in its element (plotly.tools + plotly.io, as streamlit/elements/plotly_chart.py)."""
    return json.loads(plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True),
                                        validate=False))


def test_a_frozen_figure_is_sent_as_plotly_sends_the_figure_and_serialised_once():
    fig = figure()
    expected = json.loads(fig.to_json())
    assert expected["data"][0]["y"]["bdata"]  # numpy arrays travel base64-packed: the costly part
    same = frozen(fig)
    assert same is fig and isinstance(same, go.Figure)
    assert streamlit_spec(same) == expected == json.loads(same.to_json())
    assert same.to_dict() is same.to_dict()  # made once
    assert streamlit_spec(figure()) == expected  # and an unfrozen one is unchanged


def test_plotly_chart_of_a_frozen_figure_in_a_script():
    def script():
        import numpy as np
        import streamlit as st

        from ui import charts
        from ui.follow import frozen

        x = np.linspace(0, 1, 50)
        st.plotly_chart(frozen(charts.curves_figure(x, {"a": x}, "t", "y", marker_x=0.5)), key="chart")

    at = AppTest.from_function(script).run()
    assert not at.exception
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["layout"]["shapes"][0]["x0"] == 0.5 and spec["layout"]["xaxis"]["range"] == [0.0, 1.0]
