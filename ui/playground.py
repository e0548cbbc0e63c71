"""The 2-D playground's state and figures: a bounded store of trained labs shared by every session, the
field on a grid per t (cached), and the plotly figures. The math lives in ``diffusion_core.toy2d``."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import plotly.figure_factory as ff
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core import toy2d
from diffusion_core.forward import q_sample
from diffusion_core.schedules import Schedule

from . import charts

LIMIT = 3.0  # the plots show [-3, 3]^2: the data have unit variance per axis, x_T ~ N(0, I)
GRID = 17  # arrows per side of the field
CLOUD_MAX = 2000  # points of q(x_t) drawn at most
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


class LabStore:
    """At most MAX_LABS labs, least recently used dropped first; safe across sessions."""

    def __init__(self) -> None:
        self._labs: OrderedDict[tuple, Lab] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Lab | None:
        with self._lock:
            lab = self._labs.get(key)
            if lab is not None:
                self._labs.move_to_end(key)
            return lab

    def put(self, lab: Lab) -> None:
        with self._lock:
            self._labs[lab.key] = lab
            while len(self._labs) > MAX_LABS:
                self._labs.popitem(last=False)


@st.cache_resource(show_spinner=False)
def lab_store() -> LabStore:
    return LabStore()


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


def _square(fig: go.Figure, x_title: str, y_title: str, title: str, height: int) -> go.Figure:
    fig.update_xaxes(range=[-LIMIT, LIMIT], title=x_title, zeroline=False)
    fig.update_yaxes(range=[-LIMIT, LIMIT], title=y_title, scaleanchor="x", scaleratio=1, zeroline=False)
    fig.update_layout(title=dict(text=title, x=0.0, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10), showlegend=True,
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0.0))
    return fig


def field_figure(grid: np.ndarray, arrows: np.ndarray, cloud: np.ndarray | None, *, color: str, title: str,
                 arrows_name: str, cloud_name: str, x_title: str, y_title: str, height: int = 400) -> go.Figure:
    """Arrows [G, 2] at the grid points [G, 2] (already scaled for display) over the cloud [K, 2]."""
    fig = ff.create_quiver(grid[:, 0], grid[:, 1], arrows[:, 0], arrows[:, 1], scale=1.0, arrow_scale=0.3,
                           name=arrows_name, line=dict(color=color, width=1.3))
    if cloud is not None:
        fig.add_trace(go.Scattergl(x=cloud[:, 0], y=cloud[:, 1], mode="markers", name=cloud_name,
                                   marker=dict(size=3, color=COLORS["cloud"]), hoverinfo="skip"))
    return _square(fig, x_title, y_title, title, height)


def arrow_scale(*fields: np.ndarray) -> float:
    """One factor for every panel: the longest arrow becomes 1.5 grid spacings."""
    longest = max(float(np.linalg.norm(f, axis=1).max()) for f in fields)
    spacing = 2 * LIMIT / (GRID - 1)
    return 1.5 * spacing / longest if longest > 0 else 1.0


def paths_figure(data: np.ndarray, paths: dict[str, np.ndarray], colors: dict[str, str], *, title: str,
                 data_name: str, start_name: str, x_title: str, y_title: str, height: int = 420) -> go.Figure:
    """Trajectories [S + 1, n, 2] (x_T first) per name, over the training points; x_T marked once."""
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=data[:, 0], y=data[:, 1], mode="markers", name=data_name,
                               marker=dict(size=3, color=COLORS["data"]), hoverinfo="skip"))
    for i, (name, p) in enumerate(paths.items()):
        xs = np.concatenate([np.append(p[:, k, 0], np.nan) for k in range(p.shape[1])])
        ys = np.concatenate([np.append(p[:, k, 1], np.nan) for k in range(p.shape[1])])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip",
                                 line=dict(color=colors[name], width=1.4, dash="solid" if i else "dot")))
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
    fig.add_trace(go.Scattergl(x=data[:, 0], y=data[:, 1], mode="markers", name=data_name,
                               marker=dict(size=4, color=COLORS["data"])))
    for name, (points, color) in layers.items():
        fig.add_trace(go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", name=name,
                                   marker=dict(size=6, color=color, opacity=0.8, line=dict(width=0))))
    return _square(fig, x_title, y_title, title, height)


def loss_figure(steps: list[int], losses: list[float], *, x_title: str, y_title: str, name: str,
                height: int = 260) -> go.Figure:
    """The smoothed training loss against the step."""
    return charts.curves_figure(np.asarray(steps), {name: np.asarray(losses)}, x_title, y_title, height=height)
