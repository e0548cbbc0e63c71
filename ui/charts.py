"""Plotly figure builders and image display helpers shared by the pages.

Generic on purpose: every title and label comes in as an argument (already translated),
so any page can reuse them. No math here beyond binning a histogram for display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from diffusion_core.data.images import encode_png

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")
MARKER_COLOR = "#444444"
SEPARATORS = ". "  # plotly: decimal point, and a space (never a comma) between thousands in ticks and hovers


# Each builder assembles the whole figure as plain dicts and validates it once in go.Figure(...): the same
# figure as add_trace / update_layout / add_vline called one by one, in a tenth of the time (those calls
# re-validate the figure at every step; a slider step rebuilds several figures).
def fmt(v: float) -> str:
    """A number for a table or a sentence: 4 significant digits, scientific below 1e-3 and from 1e4 on."""
    return f"{v:.4g}" if v == 0 or 1e-3 <= abs(v) < 1e4 else f"{v:.3e}"


def layout_of(x_title: str, y_title: str, title: str | None, height: int, **extra: object) -> dict:
    # With a title on top, the legend goes under the x-axis title so that the two never overlap.
    legend = (dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0.0) if title
              else dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1.0))
    layout = dict(
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=15)) if title else {},
        xaxis=dict(title=dict(text=x_title)),
        yaxis=dict(title=dict(text=y_title)),
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=legend,
        hovermode="closest",
        separators=SEPARATORS,
    )
    for key, value in extra.items():  # axis options are merged into the axis, anything else is set
        if key in ("xaxis", "yaxis"):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


def _vline(x: float, label: str | None = None) -> dict:
    """A dashed vertical line at x across the plot (and its label at the top right), as fig.add_vline makes it."""
    out: dict = dict(shapes=[dict(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="y domain",
                                  line=dict(color=MARKER_COLOR, dash="dash", width=1))])
    if label is not None:
        out["annotations"] = [dict(showarrow=False, text=label, x=x, xanchor="left", xref="x", y=1, yanchor="top",
                                   yref="y domain")]
    return out


def _dot(x: float, y: float, color: str, visible: bool) -> dict:
    """A dot of 10 px at (x, y) as a layout shape (moving a shape redraws no trace: ui/follow.py)."""
    return dict(type="circle", xref="x", yref="y", xsizemode="pixel", ysizemode="pixel", xanchor=x, yanchor=y,
                x0=-5, x1=5, y0=-5, y1=5, fillcolor=color, line=dict(color="white", width=1), visible=visible,
                layer="above")


def marker_layout(x: float, label: str | None, dots: Sequence[tuple[int, float, str]] = (), log_y: bool = False) -> dict:
    """The marker at x as layout: the dashed line, its label, and a dot on each curve (trace index, y, colour),
    described in ``meta.follow`` for the script that moves it in the browser (ui/follow.py). A dot whose y is
    not finite (a gap in its curve) is hidden."""
    out = _vline(x, label)
    finite = [bool(np.isfinite(y)) and (y > 0 or not log_y) for _, y, _ in dots]
    out["shapes"] += [_dot(x, float(y) if ok else 0.0, color, ok) for (_, y, color), ok in zip(dots, finite)]
    out["meta"] = dict(follow=dict(line=0, label=0 if label is not None else None, log_y=log_y,
                                   dots=[[1 + k, trace] for k, (trace, _, _) in enumerate(dots)]))
    return out


def _curve_at(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """The curve's y at ``at`` by linear interpolation (the script does the same), NaN outside it."""
    if not len(x) or at < x[0] or at > x[-1]:
        return float("nan")
    return float(np.interp(at, x, y))


def curves_figure(
    x: np.ndarray,
    curves: Mapping[str, np.ndarray],
    x_title: str,
    y_title: str,
    *,
    marker_x: float | None = None,
    marker_label: str | None = None,
    title: str | None = None,
    log_y: bool = False,
    height: int = 300,
) -> go.Figure:
    """Line curves y(x), one per entry of ``curves`` (name -> values), with a dashed vertical
    line and a dot on every curve at ``marker_x`` (``marker_layout``). Non-finite values are left out (gaps)."""
    x = np.asarray(x, dtype=np.float64)
    data, dots = [], []
    for i, (name, y) in enumerate(curves.items()):
        y = np.asarray(y, dtype=np.float64)
        finite = np.isfinite(y)
        color = PALETTE[i % len(PALETTE)]
        data.append(dict(type="scatter", x=x[finite], y=y[finite], mode="lines", name=name, line=dict(color=color)))
        if marker_x is not None:
            j = int(np.argmin(np.abs(x - marker_x)))
            at = _curve_at(x[finite], y[finite], marker_x) if finite[j] else float("nan")
            dots.append((len(data) - 1, at, color))
    extra: dict = marker_layout(marker_x, marker_label, dots, log_y) if marker_x is not None else {}
    if marker_x is not None and len(x):
        extra["xaxis"] = fixed_range(x)
    if log_y:
        extra["yaxis"] = dict(type="log", exponentformat="power")
    return go.Figure(data=data, layout=layout_of(x_title, y_title, title, height, **extra))


def fixed_range(x: np.ndarray) -> dict:
    """The x-axis from the first to the last x of the curves, for a chart with a marker: plotly's autorange
    counts the marker's dots and label, so that a marker at an end would widen the axis under it (and a marker
    moved in the browser, ui/follow.py, would then sit where the axis was). On a log axis, set the range in
    log10 units instead."""
    return dict(range=[float(np.min(x)), float(np.max(x))])


def histogram_density_figure(
    samples: np.ndarray,
    x_grid: np.ndarray,
    density: np.ndarray,
    x_title: str,
    y_title: str,
    *,
    hist_name: str,
    density_name: str,
    bins: int = 40,
    hist_range: tuple[float, float] | None = None,
    x_range: tuple[float, float] | None = None,
    title: str | None = None,
    height: int = 320,
) -> go.Figure:
    """Histogram of ``samples`` scaled as a density (bar areas sum to the fraction of samples
    inside ``hist_range``), with the curve ``density`` over ``x_grid`` drawn on top.

    The bars are one filled step line (x at the bin edges, each height held across its bin) rather than a bar
    per bin: the same picture as one SVG path, which the browser redraws in a few milliseconds when a slider
    changes the samples (ui/follow.py), instead of a path per bar."""
    samples = np.asarray(samples, dtype=np.float64).ravel()
    lo, hi = hist_range if hist_range is not None else (float(samples.min()), float(samples.max()))
    if not hi > lo:  # every sample equal: one narrow bar around the value
        lo, hi = lo - 0.5e-3, hi + 0.5e-3
    counts, edges = np.histogram(samples, bins=bins, range=(lo, hi))
    heights = counts / (samples.size * np.diff(edges))
    data = [
        dict(type="scatter", x=np.concatenate([edges[:1], edges, edges[-1:]]),
             y=np.concatenate([[0.0], heights, heights[-1:], [0.0]]), mode="lines", line=dict(shape="hv",
             color="rgba(31, 119, 180, 0.9)", width=0.8), fill="tozeroy", fillcolor="rgba(31, 119, 180, 0.45)",
             name=hist_name, hoverinfo="skip"),
        dict(type="scatter", x=x_grid, y=density, mode="lines", name=density_name,
             line=dict(color=PALETTE[1], width=2.5)),
    ]
    extra: dict = {}
    if x_range is not None:
        extra["xaxis"] = dict(range=list(x_range))
    return go.Figure(data=data, layout=layout_of(x_title, y_title, title, height, **extra))


def scatter_contour_figure(
    points: np.ndarray,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    z: np.ndarray,
    x_title: str,
    y_title: str,
    *,
    points_name: str,
    contour_name: str,
    title: str | None = None,
    height: int = 420,
) -> go.Figure:
    """2-D points [n, 2] as a scatter, with contour lines of z [len(grid_y), len(grid_x)] over them;
    equal scales on both axes so circles look round."""
    data = [
        dict(type="contour", x=grid_x, y=grid_y, z=z, name=contour_name, showscale=False, ncontours=8,
             contours=dict(coloring="lines"), line=dict(width=2), colorscale="Reds", showlegend=True),
        dict(type="scatter", x=points[:, 0], y=points[:, 1], mode="markers", name=points_name,
             marker=dict(size=4, color="rgba(31, 119, 180, 0.45)")),
    ]
    return go.Figure(data=data, layout=layout_of(x_title, y_title, title, height,
                                               yaxis=dict(scaleanchor="x", scaleratio=1)))


def paths_figure(
    t: np.ndarray,
    paths: np.ndarray,
    band_center: np.ndarray,
    band_half_width: np.ndarray,
    x_title: str,
    y_title: str,
    *,
    paths_name: str,
    band_name: str,
    center_name: str,
    marker_x: float | None = None,
    title: str | None = None,
    height: int = 320,
) -> go.Figure:
    """A few sample paths [len(t), k] as thin lines over a shaded band center +- half_width."""
    data = [dict(
        type="scatter", x=np.concatenate([t, t[::-1]]),
        y=np.concatenate([band_center + band_half_width, (band_center - band_half_width)[::-1]]),
        fill="toself", fillcolor="rgba(214, 39, 40, 0.15)", line=dict(width=0), name=band_name, hoverinfo="skip",
    )]
    for i in range(paths.shape[1]):
        data.append(dict(
            type="scatter", x=t, y=paths[:, i], mode="lines", line=dict(width=0.8, color="rgba(31, 119, 180, 0.5)"),
            name=paths_name, showlegend=i == 0, legendgroup="paths", hoverinfo="skip",
        ))
    data.append(dict(type="scatter", x=t, y=band_center, mode="lines", name=center_name,
                     line=dict(color=PALETTE[1], width=2)))
    extra = marker_layout(marker_x, None) if marker_x is not None else {}
    if marker_x is not None and len(t):
        extra["xaxis"] = fixed_range(t)
    return go.Figure(data=data, layout=layout_of(x_title, y_title, title, height, **extra))


def enlarge(image: np.ndarray, min_side: int = 280) -> np.ndarray:
    """Repeat every pixel k x k times, k = min_side // (shorter side), so that small pictures such as
    28x28 digits show crisp pixels instead of the browser's blur; pictures already that big are unchanged."""
    factor = max(1, min_side // min(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def show_image(image: np.ndarray, caption: str, min_side: int = 280) -> None:
    """st.image of a uint8 picture [H, W] or [H, W, 3], enlarged to crisp pixels, with a caption."""
    st.image(enlarge(image, min_side), caption=caption, clamp=True, output_format="PNG")  # JPEG would blur the noise


def png_bytes(image: np.ndarray, min_side: int = 280) -> bytes:
    """The PNG file of a uint8 picture, enlarged as ``show_image`` does, encoded fast (zlib level 1: about
    3 times faster than Streamlit's default, and noise does not compress anyway). Pages cache these bytes
    so that a picture shown again (another student, the same t) is not encoded again."""
    return encode_png(enlarge(image, min_side), compress_level=1)


def show_png(data: bytes, caption: str) -> None:
    """st.image of PNG bytes from ``png_bytes`` (Streamlit passes them on without decoding them)."""
    st.image(data, caption=caption, output_format="PNG")


def downsample_for_plot(values: Sequence[float] | np.ndarray, max_points: int = 1500) -> np.ndarray:
    """Indices 0..len-1 thinned to at most ``max_points`` (always keeping the last), for long curves."""
    n = len(values)
    step = max(1, -(-n // max_points))
    idx = np.arange(0, n, step)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)
