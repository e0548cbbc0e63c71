"""ui/charts builds each figure in one go (dicts validated once): what the pages rely on is there."""

from __future__ import annotations

import numpy as np
import pytest

from ui import charts


def test_curves_figure_marker_line_label_dots_and_gaps():
    y = np.array([np.inf, 1.0, 2.0, 4.0, 8.0])
    fig = charts.curves_figure(np.arange(5), {"a": y, "b": -y}, "t", "y", marker_x=3, marker_label="t = 3",
                               title="T", log_y=True, height=250)
    lines = [tr for tr in fig.data if tr.mode == "lines"]
    dots = [tr for tr in fig.data if tr.mode == "markers"]
    assert [list(tr.x) for tr in lines] == [[1, 2, 3, 4]] * 2  # the infinite value is left out
    assert [(tr.x[0], tr.y[0]) for tr in dots] == [(3, 4.0), (3, -4.0)] and not any(tr.showlegend for tr in dots)
    (shape,) = fig.layout.shapes
    assert (shape.x0, shape.x1, shape.yref, shape.line.dash, shape.line.color) == (3, 3, "y domain", "dash", charts.MARKER_COLOR)
    (label,) = fig.layout.annotations
    assert (label.text, label.x, label.yref, label.xanchor) == ("t = 3", 3, "y domain", "left")
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.title.text == "y" and fig.layout.xaxis.title.text == "t"
    assert fig.layout.title.text == "T" and fig.layout.height == 250
    assert fig.layout.legend.y == -0.22  # under the axis title when there is a title


def test_histogram_density_is_a_density_and_keeps_the_axis_range():
    samples = np.random.default_rng(0).normal(size=10_000)
    grid = np.linspace(-4, 4, 9)
    fig = charts.histogram_density_figure(samples, grid, np.ones(9), "x", "p", hist_name="h", density_name="d",
                                          bins=40, hist_range=(-5, 5), x_range=(-6, 6))
    bars, curve = fig.data
    assert np.sum(np.array(bars.y) * np.array(bars.width)) == pytest.approx(1.0)  # every sample is inside
    assert list(curve.x) == list(grid) and tuple(fig.layout.xaxis.range) == (-6, 6) and fig.layout.bargap == 0
    assert not fig.layout.shapes and fig.layout.legend.y == 1.02  # no title: the legend above


def test_scatter_contour_has_equal_scales_and_paths_one_legend_entry():
    fig = charts.scatter_contour_figure(np.zeros((3, 2)), np.arange(3.0), np.arange(4.0), np.ones((4, 3)), "x1", "x2",
                                        points_name="p", contour_name="c")
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.title.text == "x2"
    fig = charts.paths_figure(np.arange(4.0), np.zeros((4, 3)), np.zeros(4), np.ones(4), "t", "x",
                              paths_name="p", band_name="b", center_name="c", marker_x=2)
    assert [tr.name for tr in fig.data] == ["b", "p", "p", "p", "c"]
    assert [bool(tr.showlegend) for tr in fig.data if tr.name == "p"] == [True, False, False]
    assert fig.layout.shapes[0].x0 == 2 and not fig.layout.annotations
