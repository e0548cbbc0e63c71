"""ui/charts builds each figure in one go (dicts validated once): what the pages rely on is there."""

from __future__ import annotations

import numpy as np
import pytest

from ui import charts


def test_curves_figure_marker_line_label_dots_and_gaps():
    y = np.array([np.inf, 1.0, 2.0, 4.0, 8.0])
    fig = charts.curves_figure(np.arange(5), {"a": y, "b": -y}, "t", "y", marker_x=3, marker_label="t = 3",
                               title="T", log_y=True, height=250)
    assert [list(tr.x) for tr in fig.data] == [[1, 2, 3, 4]] * 2  # the infinite value is left out
    shape, *dots = fig.layout.shapes
    assert (shape.x0, shape.x1, shape.yref, shape.line.dash, shape.line.color) == (3, 3, "y domain", "dash", charts.MARKER_COLOR)
    # A dot on each curve at x = 3, as a shape; -4 cannot be drawn on a log axis, so that dot is hidden.
    assert [(d.type, d.xanchor, d.yanchor, d.visible) for d in dots] == [("circle", 3, 4.0, True), ("circle", 3, 0.0, False)]
    assert fig.layout.meta["follow"] == {"line": 0, "label": 0, "log_y": True, "dots": [[1, 0], [2, 1]]}
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
    steps, curve = fig.data
    x, y = np.array(steps.x), np.array(steps.y)  # a step line: y[i] held from x[i] to x[i + 1]
    assert steps.line.shape == "hv" and x[0] == x[1] == -5 and x[-1] == x[-2] == 5 and y[0] == y[-1] == 0
    assert np.sum(y[:-1] * np.diff(x)) == pytest.approx(1.0)  # every sample is inside: the bars' area is 1
    counts, _ = np.histogram(samples, bins=40, range=(-5, 5))
    np.testing.assert_allclose(y[1:-2] * 10_000 * 0.25, counts)  # each bin's height is its count / (n width)
    assert list(curve.x) == list(grid) and tuple(fig.layout.xaxis.range) == (-6, 6)
    assert not fig.layout.shapes and fig.layout.legend.y == 1.02  # no title: the legend above


def test_scatter_contour_has_equal_scales_and_paths_one_legend_entry():
    fig = charts.scatter_contour_figure(np.zeros((3, 2)), np.arange(3.0), np.arange(4.0), np.ones((4, 3)), "x1", "x2",
                                        points_name="p", contour_name="c")
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.title.text == "x2"
    fig = charts.paths_figure(np.arange(4.0), np.zeros((4, 3)), np.zeros(4), np.ones(4), "t", "x",
                              paths_name="p", band_name="b", center_name="c", marker_x=2)
    assert [tr.name for tr in fig.data] == ["b", "p", "p", "p", "c"]
    assert [bool(tr.showlegend) for tr in fig.data if tr.name == "p"] == [True, False, False]
    assert fig.layout.shapes[0].x0 == 2 and not fig.layout.annotations and fig.layout.meta["follow"]["label"] is None


def test_a_dot_between_grid_points_is_interpolated_as_the_script_does():
    fig = charts.curves_figure(np.array([0.0, 10.0]), {"a": np.array([0.0, 5.0])}, "t", "y", marker_x=4)
    assert fig.layout.shapes[1].yanchor == pytest.approx(2.0) and fig.layout.shapes[1].visible
