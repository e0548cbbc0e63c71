"""Page 1's two figures, drawn in standard units so that a move of mu or sigma redraws the axes only.

Every sample is x = mu + sigma eps with eps from the seed (``sample_normal``), so in standard units
z = (x - mu) / sigma the histogram (bins over mu +- 4 sigma), the density (N(x | mu, sigma^2) = phi(z) / sigma)
and the 2-D cloud are the same for every mu and sigma: only the axes' numbers change. The figures' data are
built once per sample size and seed (``datarevision`` tells Plotly.react that they did not change); each step
sends new axes whose ticks sit at round values of x (and of the density), converted to z. The picture is the
one the page drew before, point for point; hovering is off, since the chart's own coordinates are z.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import math

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from diffusion_core.process.gaussian import isotropic_level_radius, isotropic_normal_pdf, normal_pdf
from ui import charts

HIST_HALF_WIDTH = 4.0  # the histogram's bins cover mu +- 4 sigma
WINDOW_HALF_WIDTH = 4.5  # the x-axis shows at least [-4, 4], and mu +- 4.5 sigma
CLOUD_HALF_WIDTH = 3.5  # the 2-D axes show mu +- 3.5 sigma


def nice_ticks(lo: float, hi: float, target: int = 6) -> np.ndarray:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten apart) inside [lo, hi], about ``target`` of them."""
    raw = (hi - lo) / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + 1e-9 * step, step)
    return np.where(np.abs(ticks) < 1e-9 * step, 0.0, ticks)


def relabelled_axis(lo: float, hi: float, center: float, scale: float, **extra: object) -> dict:
    """An axis over data values [lo, hi] on a chart drawn in units z = (value - center) / scale: its range in z,
    with ticks at round data values, labelled with those values."""
    ticks = nice_ticks(lo, hi)
    return dict(range=[(lo - center) / scale, (hi - center) / scale], tickmode="array",
                tickvals=list((ticks - center) / scale), ticktext=[charts.fmt(float(v)) for v in ticks],
                zeroline=False, **extra)  # plotly's zero line would sit at z = 0, which is not x = 0


def one_d_data(eps: np.ndarray, bins: int, x_title: str, y_title: str, hist_name: str, density_name: str) -> dict:
    """The histogram of eps over [-4, 4] and phi(z), as a figure's JSON (built once per n and seed)."""
    z = np.union1d(np.linspace(-5.0, 5.0, 401), np.concatenate([np.linspace(-160, -5, 32), np.linspace(5, 160, 32)]))
    fig = charts.histogram_density_figure(eps, z, normal_pdf(z, 0.0, 1.0), x_title, y_title, hist_name=hist_name,
                                          density_name=density_name, bins=bins,
                                          hist_range=(-HIST_HALF_WIDTH, HIST_HALF_WIDTH), height=380)
    out = json.loads(fig.to_json())
    heights = np.asarray(fig.data[0].y)
    out["layout"]["meta"] = {"y_max": float(max(heights.max(), normal_pdf(0.0, 0.0, 1.0))) * 1.05}
    for trace in out["data"]:
        trace["hoverinfo"] = "skip"
    out["layout"]["hovermode"] = False
    return out


def one_d_at(data: dict, mu: float, sigma: float, revision: str) -> dict:
    """The 1-D figure for mu and sigma: the same data, new axes (x in units of sigma about mu, the density
    N(x | mu, sigma^2) = phi(z) / sigma, so a density value p sits at phi = p sigma)."""
    x_lo, x_hi = min(-4.0, mu - WINDOW_HALF_WIDTH * sigma), max(4.0, mu + WINDOW_HALF_WIDTH * sigma)
    y_max = data["layout"]["meta"]["y_max"]
    fig = {"data": data["data"], "layout": copy.deepcopy(data["layout"])}
    layout = fig["layout"]
    layout["xaxis"] = {**layout["xaxis"], **relabelled_axis(x_lo, x_hi, mu, sigma)}
    layout["yaxis"] = {**layout["yaxis"], **relabelled_axis(0.0, y_max / sigma, 0.0, 1.0 / sigma)}
    layout["datarevision"] = revision
    return fig


def dots_picture(points: np.ndarray, half_width: float, size: int = 600, radius: float = 2.2) -> str:
    """The points [n, 2] (inside +-half_width) drawn as dots on a transparent picture, as a data URL for a
    plotly layout image: one element in the page, where markers would be one element per point, each
    restyled at every redraw (measured: ~3500 DOM changes per step for 1000 points). Drawn 3 times larger
    and shrunk, so that the dots' edges are smooth."""
    big = size * 3
    canvas = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    scale = big / (2 * half_width)
    r = radius * 3 * big / (size * 3)
    for x, y in points:
        cx, cy = (x + half_width) * scale, (half_width - y) * scale
        draw.ellipse((cx - 3 * r, cy - 3 * r, cx + 3 * r, cy + 3 * r), fill=(31, 119, 180, 115))
    buffer = io.BytesIO()
    canvas.resize((size, size), Image.Resampling.LANCZOS).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def two_d_data(eps: np.ndarray, x_title: str, y_title: str, points_name: str, contour_name: str,
               n_levels: int = 8) -> dict:
    """The cloud eps [n, 2] and circles where N(z; 0, I) takes ``n_levels`` evenly spaced values (its contours:
    ``isotropic_level_radius``), as a figure's JSON (once per seed)."""
    h = CLOUD_HALF_WIDTH
    peak = float(isotropic_normal_pdf(np.zeros(2), np.zeros(2), 1.0))
    levels = peak * np.arange(1, n_levels + 1) / (n_levels + 1)
    angles = np.linspace(0.0, 2 * np.pi, 121)
    reds = ("#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15", "#67000d", "#4a0009")
    data = []
    for k, r in enumerate(isotropic_level_radius(levels, 1.0)):
        data.append(dict(type="scatter", x=r * np.cos(angles), y=r * np.sin(angles), mode="lines", name=contour_name,
                         legendgroup="contours", showlegend=k == n_levels // 2, hoverinfo="skip",
                         line=dict(color=reds[min(k, len(reds) - 1)], width=2)))
    # The points are a picture under the axes; the legend's entry is one dot far outside the fixed axis ranges.
    data.append(dict(type="scatter", x=[100 * h], y=[100 * h], mode="markers", name=points_name, hoverinfo="skip",
                     marker=dict(size=6, color="rgba(31, 119, 180, 0.45)")))
    layout = charts.layout_of(x_title, y_title, None, 460, yaxis=dict(scaleanchor="x", scaleratio=1))
    layout["hovermode"] = False
    layout["images"] = [dict(source=dots_picture(eps, h), xref="x", yref="y", x=-h, y=h, sizex=2 * h, sizey=2 * h,
                             sizing="stretch", layer="below")]
    return json.loads(go.Figure(data=data, layout=layout).to_json())


def two_d_at(data: dict, mu1: float, mu2: float, sigma: float, revision: str, with_picture: bool = True) -> dict:
    """The 2-D figure for mu and sigma: the same cloud and contours, axes mu_i +- 3.5 sigma. Without the
    picture of the points (``with_picture=False``: the browser keeps the one it has, ui/follow.py), a step
    sends a few kilobytes."""
    layout = {k: copy.deepcopy(v) for k, v in data["layout"].items() if k != "images" or with_picture}
    if not with_picture:
        layout["meta"] = {**layout.get("meta", {}), "keep_images": True}
    fig = {"data": data["data"], "layout": layout}
    h = CLOUD_HALF_WIDTH * sigma
    layout["xaxis"] = {**layout["xaxis"], **relabelled_axis(mu1 - h, mu1 + h, mu1, sigma)}
    layout["yaxis"] = {**layout["yaxis"], **relabelled_axis(mu2 - h, mu2 + h, mu2, sigma)}
    layout["datarevision"] = revision
    return fig
