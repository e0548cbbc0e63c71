"""Section 2 of the continuous-time page: the three dynamics' clouds over the exact p_t (read from the benchmark's
file, bench/continuous_2d.py), their energy distances, and the Fokker-Planck equation on a grid (live, cached).
The math is in diffusion_core.toy2d (density, dynamics)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core import toy2d
from diffusion_core.models.weights import PRETRAINED_DIR
from diffusion_core.process.paths import vp_linear
from diffusion_core.toy2d.density import fokker_planck_terms, marginal_log_density

from .. import charts
from ..playground import lab as pg
from .steps import plain_layout

BENCH_PATH = Path(os.environ.get("DIFFUSION_CONTINUOUS_2D_PATH", PRETRAINED_DIR / "continuous_2d.json"))
LIMIT = 3.0  # the plots show [-3, 3]^2 (the data have unit variance per axis)
GRID = 40  # contour grid per side
FP_GRID = 30  # Fokker-Planck grid per side (the benchmark checks 60 x 60)
DYNAMICS = ("forward", "reverse", "ode")
COLORS = {"forward": charts.PALETTE[0], "reverse": charts.PALETTE[3], "ode": charts.PALETTE[2]}


class BenchError(ValueError):
    """The benchmark's file exists but cannot be read."""


def load_bench() -> dict | None:
    """pretrained/continuous_2d.json (``BENCH_PATH``), or None when it is missing; BenchError when it is damaged."""
    return _load_bench(str(BENCH_PATH))


@st.cache_data(show_spinner=False)
def _load_bench(path: str) -> dict | None:
    p = Path(path)
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
        meta, sets = data["meta"], data["datasets"]
        for r in sets.values():
            if {"clouds", "energy", "noise", "noise_mean", "z", "likelihood"} - set(r) or len(r["noise"]) != len(meta["times"]):
                raise KeyError("a data set lacks its clouds, energies, noise or likelihood")
        return data
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BenchError(f"{p}: {e}") from e


@st.cache_resource(show_spinner=False, max_entries=8)
def training_points(name: str, points: int, seed: int) -> torch.Tensor:
    """The empirical distribution the benchmark used: ``points`` draws of the data set with ``seed``."""
    return toy2d.distribution(name).sample(points, torch.Generator().manual_seed(seed)).double()


def _axis() -> np.ndarray:
    return np.linspace(-LIMIT, LIMIT, GRID)


@st.cache_data(show_spinner=False, max_entries=128)
def density_grid(name: str, points: int, seed: int, t: float) -> np.ndarray:
    """p_t on the contour grid, [GRID, GRID] (rows y, columns x)."""
    grid = toy2d.grid(LIMIT, GRID).double()
    return marginal_log_density(grid, t, training_points(name, points, seed), vp_linear()).exp().reshape(GRID, GRID).numpy()


_warm: set[tuple] = set()  # (name, points, seed, times) whose grids are cached at every time


def is_warm(name: str, points: int, seed: int, times: list[float]) -> bool:
    return (name, points, seed, tuple(times)) in _warm


def warm(name: str, points: int, seed: int, times: list[float]) -> None:
    """p_t and the Fokker-Planck terms at every time of the slider, computed once per server and data set (about
    0.2 s per time), so that a step of t only reads them."""
    for t in times:
        density_grid(name, points, seed, t)
        fokker_planck_grid(name, points, seed, t)
    _warm.add((name, points, seed, tuple(times)))


@st.cache_resource(show_spinner=False, max_entries=256)  # a figure only read by st.plotly_chart: no copy per step
def clouds_figure(name: str, index: int, dynamic: str, title: str, axis_x: str, axis_y: str, cloud_name: str,
                  contour_name: str) -> go.Figure:
    """One dynamic's cloud at the benchmark's time number ``index`` over the contours of p_t (built once per data
    set, time, dynamic and language)."""
    bench = load_bench()
    meta = bench["meta"]
    xy = np.asarray(bench["datasets"][name]["clouds"][dynamic][index], dtype=np.float64)
    z = density_grid(name, meta["points"], meta["seed"], meta["times"][index])
    data = [dict(type="contour", x=_axis(), y=_axis(), z=z, name=contour_name, showscale=False, ncontours=7,
                 contours=dict(coloring="lines"), line=dict(width=1.5), colorscale="Greys", showlegend=False,
                 hoverinfo="skip"),
            # the particles as small filled diamonds, one SVG path (a step of t redraws it, not 300 markers)
            pg.filled_trace(pg.dots_xy(xy, 0.04), cloud_name, COLORS[dynamic], opacity=0.6, showlegend=False)]
    # equal scales by narrowing the plot, not by widening a range: Plotly.react at a step of t finds the axes unchanged
    axis = dict(range=[-LIMIT, LIMIT], zeroline=False, constrain="domain")
    layout = plain_layout(axis_x, axis_y, 340, title=dict(text=title, x=0.0, font=dict(size=14)))
    layout.update(margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", yanchor="top", y=-0.2, x=0.0),
                  xaxis=dict(axis, title=dict(text=axis_x)),
                  yaxis=dict(axis, title=dict(text=axis_y), scaleanchor="x", scaleratio=1))
    return go.Figure(data=data, layout=layout)


@st.cache_data(show_spinner=False, max_entries=128)
def fokker_planck_grid(name: str, points: int, seed: int, t: float) -> dict:
    """The terms of the Fokker-Planck equation on the FP grid at t, and the relative residual with the path's
    g^2 and with g^2 halved (a wrong diffusion coefficient)."""
    data, path = training_points(name, points, seed), vp_linear()
    grid = toy2d.grid(LIMIT, FP_GRID).double()
    fp = fokker_planck_terms(grid, t, data, path)
    shape = (FP_GRID, FP_GRID)
    return {"dp_dt": fp.dp_dt.reshape(shape).numpy(), "rhs": (fp.transport + fp.diffusion).reshape(shape).numpy(),
            "largest": {k: float(v.abs().max()) for k, v in (("dp_dt", fp.dp_dt), ("transport", fp.transport),
                                                            ("diffusion", fp.diffusion))},
            "residual": fp.relative_residual, "wrong": fp.relative_residual_with(0.5)}


@st.cache_resource(show_spinner=False, max_entries=256)
def fokker_planck_figure(name: str, points: int, seed: int, t: float, side: str, title: str, axis_x: str,
                         axis_y: str, colorbar: str) -> go.Figure:
    """The heat map of one side ("dp_dt" or "rhs") of the Fokker-Planck equation at t (built once per language)."""
    return heatmap(fokker_planck_grid(name, points, seed, t)[side], title, axis_x, axis_y, colorbar)


def heatmap(z: np.ndarray, title: str, axis_x: str, axis_y: str, colorbar: str) -> go.Figure:
    axis = np.linspace(-LIMIT, LIMIT, FP_GRID)
    bound = float(np.abs(z).max()) or 1.0
    data = [dict(type="heatmap", x=axis, y=axis, z=z, zmin=-bound, zmax=bound, colorscale="RdBu", reversescale=True,
                 colorbar=dict(title=dict(text=colorbar), thickness=12), hovertemplate="%{z:.3g}<extra></extra>")]
    layout = plain_layout(axis_x, axis_y, 320, title=dict(text=title, x=0.0, font=dict(size=14)))
    edge = [-LIMIT - LIMIT / (FP_GRID - 1), LIMIT + LIMIT / (FP_GRID - 1)]  # the outer cells' edges: fixed axes
    layout.update(margin=dict(l=10, r=10, t=40, b=10),
                  xaxis=dict(title=dict(text=axis_x), range=edge, constrain="domain"),
                  yaxis=dict(title=dict(text=axis_y), range=edge, scaleanchor="x", scaleratio=1, constrain="domain"))
    return go.Figure(data=data, layout=layout)
