"""The 2-D playground's state and figures: a bounded store of trained labs shared by every session, the
field on a grid per t (cached), and the plotly figures. The math lives in ``diffusion_core.toy2d``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core import toy2d
from diffusion_core.process.forward import q_sample
from diffusion_core.process.schedules import Schedule

from .. import charts
from ..i18n import Translator
from ..shared_store import SharedStore, shared_store

LIMIT = 3.0  # the plots show [-3, 3]^2: the data have unit variance per axis, x_T ~ N(0, I)
GRID = 17  # arrows per side of the field
CLOUD_MAX = 500  # points of q(x_t) drawn at most (SVG: WebGL is slow where there is no GPU)
PATH_POINTS = 60  # states drawn per trajectory
MAX_LABS = 12  # trained networks kept in memory (each a few hundred kB)
COLORS = {"data": "rgba(120, 120, 120, 0.35)", "cloud": "rgba(31, 119, 180, 0.35)",
          "cloud_fill": "rgba(31, 119, 180, 0.5)",  # the cloud as one filled path: overlaps do not darken
          "learned": charts.PALETTE[0], "exact": charts.PALETTE[1], "diff": charts.PALETTE[3], "fresh": charts.PALETTE[2]}


@dataclass
class Lab:
    """Everything computed for one setting: the training set, the trained network, and (lazily) the
    trajectories and the memorisation samples."""

    key: tuple  # (data id, points, seed, steps, width, schedule kind, T)
    data: torch.Tensor  # training points [M, 2]
    schedule: Schedule
    trained: toy2d.TrainResult
    cloud_noise: torch.Tensor  # one fixed eps per shown point of q(x_t), [min(M, CLOUD_MAX), 2]
    extras: dict = field(default_factory=dict)  # "paths", "memo": computed once, on first view


def lab_store() -> SharedStore:
    """The trained labs, at most MAX_LABS, shared by every session (``ui.shared_store``)."""
    return shared_store("playground", MAX_LABS)


@st.cache_data(max_entries=4000, show_spinner=False)
def field_at(key: tuple, t: int, _lab: Lab) -> dict[str, np.ndarray]:
    """The noised cloud and both score fields at step t on the grid; cached per (lab, t), shared by sessions."""
    lab, points = _lab, toy2d.grid(LIMIT, GRID)
    shown = lab.data[: len(lab.cloud_noise)]
    with toy2d.one_thread():
        exact = toy2d.optimal_score(points, t, lab.data, lab.schedule)
        learned = toy2d.score_from_eps(toy2d.mlp_eps_fn(lab.trained.model)(points, torch.full((len(points),), t)),
                                       t, lab.schedule)
    cloud = q_sample(shown, t, lab.cloud_noise, lab.schedule)
    return {"grid": points.numpy(), "exact": exact.numpy(), "learned": learned.numpy(), "cloud": cloud.numpy()}


PANELS = ("learned", "exact", "diff")  # the three field plots, left to right


@st.cache_resource(max_entries=256, show_spinner=False)  # read-only figures (about 40 kB each): no copy per step
def field_figures(key: tuple, t: int, lang: str, _lab: Lab) -> tuple[dict[str, go.Figure], float]:
    """The three panels at step t (the network's score, the exact one, their difference; one arrow scale for
    all three) and the mean length of the difference relative to the exact arrows; once per lab, t and language."""
    tr = Translator(lang)  # type: ignore[arg-type]
    f = field_at(key, t, _lab)
    scale = arrow_scale(f["exact"], f["learned"])
    arrows = {"learned": f["learned"], "exact": f["exact"], "diff": f["learned"] - f["exact"]}
    common = dict(cloud_name=tr("playground.cloud_name"), x_title=tr("playground.x_axis"), y_title=tr("playground.y_axis"))
    figures = {w: field_figure(f["grid"], scale * arrows[w], f["cloud"], color=COLORS[w], title=tr(f"playground.panel_{w}", t=t),
                               arrows_name=tr(f"playground.arrows_{w}"), **common) for w in PANELS}
    gap = np.linalg.norm(arrows["diff"], axis=1).mean() / np.linalg.norm(f["exact"], axis=1).mean()
    return figures, float(gap)


def _square_layout(x_title: str, y_title: str, title: str, height: int) -> dict:
    # Equal scales by narrowing the plot (constrain="domain"), not by widening the x range: the ranges stay the
    # given ones, so Plotly.react at a slider step finds the axes unchanged and does not redraw them.
    axis = dict(range=[-LIMIT, LIMIT], zeroline=False, constrain="domain")
    return dict(title=dict(text=title, x=0.0, font=dict(size=14)), height=height, margin=dict(l=10, r=10, t=40, b=10),
                separators=charts.SEPARATORS,
                showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.18, x=0.0),
                xaxis=dict(axis, title=dict(text=x_title)),
                yaxis=dict(axis, title=dict(text=y_title), scaleanchor="x", scaleratio=1))


def _square(fig: go.Figure, x_title: str, y_title: str, title: str, height: int) -> go.Figure:
    return fig.update_layout(_square_layout(x_title, y_title, title, height))


def _one_outline(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed polygons [n, k, 2] (same orientation) as one outline without gaps: each polygon closed on its first
    corner, then on to the next one's, and back through the first corners at the end. Filled (nonzero rule), the
    connecting edges, each walked once each way, enclose nothing, so the picture is the polygons; plotly draws
    one SVG path for it. (A trace with NaN gaps is one path per piece in plotly.js, even with mode "none".)"""
    closed = np.concatenate([polygons, polygons[:, :1]], axis=1).reshape(-1, 2)
    back = polygons[-2::-1, 0] if len(polygons) > 1 else polygons[:0, 0]
    pts = np.concatenate([closed, back])
    return pts[:, 0], pts[:, 1]


def arrows_xy(base: np.ndarray, arrows: np.ndarray, head: float = 0.35, angle: float = 0.45,
              shaft: float = 0.012) -> tuple[np.ndarray, np.ndarray]:
    """Every arrow as one closed polygon (a shaft ``2 shaft`` wide, then a head of ``head`` times its length and
    half-angle ``angle``), all in one outline (``_one_outline``): x, y [9 G - 1]. Drawn with fill="toself" it is
    one SVG path, which the browser redraws in a few milliseconds when a slider changes the field; arrows drawn
    as line segments were two paths each (578 on a 17 x 17 grid)."""
    length = np.linalg.norm(arrows, axis=1, keepdims=True)
    along = np.divide(arrows, length, out=np.zeros_like(arrows, dtype=np.float64), where=length > 0)
    across = np.stack([-along[:, 1], along[:, 0]], axis=1)
    tip = base + arrows
    neck = tip - head * arrows
    thin = shaft  # half-width of the shaft: about 1.5 px wide, as the lines were
    wide = np.maximum(head * length * np.tan(angle), 1.5 * thin)  # half-width of the head
    return _one_outline(np.stack([base + thin * across, neck + thin * across, neck + wide * across, tip,
                                  neck - wide * across, neck - thin * across, base - thin * across], axis=1))


def dots_xy(points: np.ndarray, radius: float = 0.035) -> tuple[np.ndarray, np.ndarray]:
    """Every point as a small diamond (``radius`` in data units: about 3 px across on the [-3, 3] plots), all in one
    outline: x, y [6 K - 1]. Filled, they are one SVG path; markers are one path each, all moved at a step."""
    p = np.asarray(points, dtype=np.float64)
    offsets = radius * np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    return _one_outline(p[:, None, :] + offsets[None])


def filled_trace(xy: tuple[np.ndarray, np.ndarray], name: str, color: str, **extra) -> dict:
    """A trace of closed shapes (``arrows_xy``, ``dots_xy``) filled with one colour, as one SVG path (the outline
    is not simplified: plotly would merge the connecting edges)."""
    x, y = (v.astype(np.float32) for v in xy)  # float32: half the bytes to the browser
    return dict(type="scatter", x=x, y=y, mode="none", fill="toself", fillcolor=color, name=name, hoverinfo="skip",
                line=dict(simplify=False), **extra)


def field_figure(grid: np.ndarray, arrows: np.ndarray, cloud: np.ndarray | None, *, color: str, title: str,
                 arrows_name: str, cloud_name: str, x_title: str, y_title: str, height: int = 400) -> go.Figure:
    """Arrows [G, 2] at the grid points [G, 2] (already scaled for display) over the cloud [K, 2], each trace one
    filled SVG path and both axes fixed to [-LIMIT, LIMIT]: a step of t redraws two paths and the title
    (``ui.follow.follow_slider(figures=...)``). Built in one go.Figure call from a layout dict."""
    data = []
    if cloud is not None:  # drawn first, under the arrows; listed second
        data.append(filled_trace(dots_xy(cloud), cloud_name, COLORS["cloud_fill"], legendrank=2))
    data.append(filled_trace(arrows_xy(grid, arrows), arrows_name, color, legendrank=1))
    return go.Figure(data=data, layout=_square_layout(x_title, y_title, title, height))


def arrow_scale(*fields: np.ndarray) -> float:
    """One factor for every panel: the longest arrow becomes 1.5 grid spacings."""
    longest = max(float(np.linalg.norm(f, axis=1).max()) for f in fields)
    spacing = 2 * LIMIT / (GRID - 1)
    return 1.5 * spacing / longest if longest > 0 else 1.0


def paths_figure(data: np.ndarray, paths: dict[str, np.ndarray], colors: dict[str, str], *, title: str,
                 data_name: str, start_name: str, x_title: str, y_title: str, height: int = 420) -> go.Figure:
    """Trajectories [S + 1, n, 2] (x_T first) per name, over the training points; x_T marked once; the first
    name is drawn thin and faint (the stochastic sampler), the others bold, or dotted with a dot per state when
    they are few (a solver's). Each path is drawn through at most PATH_POINTS of its states (the first and last
    kept): a DDPM path over 1000 steps would otherwise be a scribble that hides the shape."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name=data_name,
                             marker=dict(size=3, color=COLORS["data"]), hoverinfo="skip"))
    for i, (name, p) in enumerate(paths.items()):
        p = p[charts.downsample_for_plot(np.arange(len(p)), PATH_POINTS)]
        xs = np.concatenate([np.append(p[:, k, 0], np.nan) for k in range(p.shape[1])])
        ys = np.concatenate([np.append(p[:, k, 1], np.nan) for k in range(p.shape[1])])
        few = p.shape[0] <= 30  # a solver's few steps: a dot per state on a dotted line
        width = 0.8 if i == 0 else (1.0 if few else 1.8)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers" if few else "lines", name=name, hoverinfo="skip",
                                 marker=dict(size=6), opacity=0.5 if i == 0 else 1.0,
                                 line=dict(color=colors[name], width=width, dash="dot" if few else "solid")))
        fig.add_trace(go.Scatter(x=p[-1, :, 0], y=p[-1, :, 1], mode="markers", showlegend=False, hoverinfo="skip",
                                 marker=dict(size=8, color=colors[name], symbol="circle")))
    first = next(iter(paths.values()))
    fig.add_trace(go.Scatter(x=first[0, :, 0], y=first[0, :, 1], mode="markers", name=start_name,
                             marker=dict(size=9, color="black", symbol="x")))
    return _square(fig, x_title, y_title, title, height)


def samples_figure(data: np.ndarray, layers: dict[str, tuple[np.ndarray, str]], *, title: str, data_name: str,
                   x_title: str, y_title: str, height: int = 440) -> go.Figure:
    """Training points and sets of samples (name -> (points [n, 2], colour)) in one square plot."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name=data_name,
                             marker=dict(size=4, color=COLORS["data"])))
    for name, (points, color) in layers.items():
        fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name=name,
                                 marker=dict(size=6, color=color, opacity=0.8, line=dict(width=0))))
    return _square(fig, x_title, y_title, title, height)


def dots_figure(data: np.ndarray, layers: dict[str, tuple[np.ndarray, str]], *, title: str, data_name: str,
                x_title: str, y_title: str, height: int = 440) -> go.Figure:
    """``samples_figure`` for a chart that a slider changes: the training points and each set of samples as small
    filled diamonds, one SVG path per set (``dots_xy``), on the fixed square axes; no hover."""
    traces = [filled_trace(dots_xy(data), data_name, COLORS["data"])]
    traces += [filled_trace(dots_xy(points, 0.05), name, color) for name, (points, color) in layers.items()]
    return go.Figure(data=traces, layout=_square_layout(x_title, y_title, title, height))


def loss_figure(steps: list[int], losses: list[float], *, x_title: str, y_title: str, name: str,
                height: int = 260) -> go.Figure:
    """The smoothed training loss against the step."""
    return charts.curves_figure(np.asarray(steps), {name: np.asarray(losses)}, x_title, y_title, height=height)
