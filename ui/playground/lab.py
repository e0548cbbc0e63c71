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
from ..shared_store import SharedStore, shared_store

LIMIT = 3.0  # the plots show [-3, 3]^2: the data have unit variance per axis, x_T ~ N(0, I)
GRID = 17  # arrows per side of the field
CLOUD_MAX = 500  # points of q(x_t) drawn at most (SVG: WebGL is slow where there is no GPU)
PATH_POINTS = 60  # states drawn per trajectory
MAX_LABS = 12  # trained networks kept in memory (each a few hundred kB)
COLORS = {"data": "rgba(120, 120, 120, 0.35)", "cloud": "rgba(31, 119, 180, 0.35)", "learned": charts.PALETTE[0],
          "exact": charts.PALETTE[1], "diff": charts.PALETTE[3], "fresh": charts.PALETTE[2]}


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


def _square_layout(x_title: str, y_title: str, title: str, height: int) -> dict:
    axis = dict(range=[-LIMIT, LIMIT], zeroline=False)
    return dict(title=dict(text=title, x=0.0, font=dict(size=14)), height=height, margin=dict(l=10, r=10, t=40, b=10),
                separators=charts.SEPARATORS,
                showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.18, x=0.0),
                xaxis=dict(axis, title=dict(text=x_title)),
                yaxis=dict(axis, title=dict(text=y_title), scaleanchor="x", scaleratio=1))


def _square(fig: go.Figure, x_title: str, y_title: str, title: str, height: int) -> go.Figure:
    return fig.update_layout(_square_layout(x_title, y_title, title, height))


def arrows_xy(base: np.ndarray, arrows: np.ndarray, head: float = 0.3, angle: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """One polyline for every arrow (shaft, then a two-stroke head), NaN between arrows: x, y [7 G]."""
    tip = base + arrows
    c, s = np.cos(angle), np.sin(angle)
    back = -head * arrows
    left = tip + np.stack([c * back[:, 0] - s * back[:, 1], s * back[:, 0] + c * back[:, 1]], axis=1)
    right = tip + np.stack([c * back[:, 0] + s * back[:, 1], -s * back[:, 0] + c * back[:, 1]], axis=1)
    gap = np.full_like(base, np.nan)
    pts = np.stack([base, tip, gap, left, tip, right, gap], axis=1).reshape(-1, 2)
    return pts[:, 0], pts[:, 1]


def field_figure(grid: np.ndarray, arrows: np.ndarray, cloud: np.ndarray | None, *, color: str, title: str,
                 arrows_name: str, cloud_name: str, x_title: str, y_title: str, height: int = 400) -> go.Figure:
    """Arrows [G, 2] at the grid points [G, 2] (already scaled for display) over the cloud [K, 2]. Built in one
    go.Figure call from a layout dict: plotly's per-call validation made the three panels cost half a second."""
    x, y = (v.astype(np.float32) for v in arrows_xy(grid, arrows))  # float32: half the bytes to the browser
    data = [go.Scatter(x=x, y=y, mode="lines", name=arrows_name, line=dict(color=color, width=1.3), hoverinfo="skip")]
    if cloud is not None:
        cloud = cloud.astype(np.float32)
        data.append(go.Scatter(x=cloud[:, 0], y=cloud[:, 1], mode="markers", name=cloud_name,
                               marker=dict(size=3, color=COLORS["cloud"]), hoverinfo="skip"))
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


def loss_figure(steps: list[int], losses: list[float], *, x_title: str, y_title: str, name: str,
                height: int = 260) -> go.Figure:
    """The smoothed training loss against the step."""
    return charts.curves_figure(np.asarray(steps), {name: np.asarray(losses)}, x_title, y_title, height=height)
