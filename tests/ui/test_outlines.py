"""The light 2-D figures (ui/playground/lab.py): arrows and dots as closed polygons in one outline without gaps,
which a filled plotly trace draws as one SVG path. Checked against the shapes' own geometry: tips where the arrows
end, and the outline's area equal to the polygons' areas added up (the connecting edges enclose nothing)."""

from __future__ import annotations

import numpy as np
import pytest

from ui.playground import lab as pg


def shoelace(x: np.ndarray, y: np.ndarray) -> float:
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def test_arrows_are_one_outline_with_their_tips_and_areas():
    rng = np.random.default_rng(0)
    base, arrows = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    x, y = pg.arrows_xy(base, arrows)
    assert len(x) == 9 * 30 - 1 and np.isfinite(x).all() and np.isfinite(y).all()  # no gap: one SVG path
    corners = np.stack([x, y], axis=1)[: 8 * 30].reshape(30, 8, 2)
    np.testing.assert_allclose(corners[:, 3], base + arrows)  # the head's point is the arrow's end
    np.testing.assert_allclose(corners[:, 7], corners[:, 0])  # each polygon is closed
    areas = [shoelace(*c[:7].T) for c in corners]
    assert all(a < 0 for a in areas)  # one orientation (clockwise): overlapping arrows fill, never cancel
    assert shoelace(x, y) == pytest.approx(sum(areas))  # the connecting edges add no area


def test_a_zero_arrow_is_a_point_and_dots_are_diamonds():
    x, y = pg.arrows_xy(np.array([[1.0, 2.0]]), np.zeros((1, 2)))
    assert np.isfinite(x).all() and np.allclose(x, 1.0) and np.allclose(y, 2.0)
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, -1.0]])
    x, y = pg.dots_xy(points, radius=0.1)
    assert len(x) == 6 * 3 - 1 and np.isfinite(x).all()
    assert shoelace(x, y) == pytest.approx(3 * 2 * 0.1**2)  # a diamond of radius r has area 2 r^2
    np.testing.assert_allclose(np.stack([x, y], 1)[:15].reshape(3, 5, 2)[:, :4].mean(axis=1), points)


def test_field_figure_is_two_filled_traces_on_fixed_axes():
    grid = np.stack(np.meshgrid(np.linspace(-3, 3, 5), np.linspace(-3, 3, 5)), -1).reshape(-1, 2)
    fig = pg.field_figure(grid, 0.1 * grid, grid[:7], color="red", title="t = 3", arrows_name="a", cloud_name="c",
                          x_title="x", y_title="y")
    assert [(t.mode, t.fill, t.name) for t in fig.data] == [("none", "toself", "c"), ("none", "toself", "a")]
    assert tuple(fig.layout.xaxis.range) == (-3, 3) == tuple(fig.layout.yaxis.range)
    assert fig.layout.xaxis.constrain == "domain" and fig.layout.yaxis.scaleanchor == "x"
