"""Section 4 of the continuous-time page, in 2-D: the ODE's log density against the exact one for each tolerance
(read from bench/continuous_2d.py's file), and Hutchinson's estimate of the divergence against the exact one
(live, cached). Math in diffusion_core.process.likelihood and toy2d.density."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.process.likelihood import divergence, rademacher
from diffusion_core.process.paths import vp_linear
from diffusion_core.process.sde import pf_ode_drift
from diffusion_core.toy2d.density import marginal_eps_fn

from .. import charts
from .dynamics import load_bench, training_points
from .steps import plain_layout

PROBES = (1, 4, 16, 64)


def errors(name: str) -> tuple[np.ndarray, np.ndarray]:
    """|ODE - exact| per tolerance and point [R, P], and the tolerances [R]."""
    bench = load_bench()
    lik = bench["datasets"][name]["likelihood"]
    return (np.abs(np.asarray(lik["ode"]) - np.asarray(lik["exact"])[None]),
            np.asarray(bench["meta"]["tolerances"], dtype=np.float64))


def scatter_figure(tr, name: str, index: int) -> go.Figure:
    lik = load_bench()["datasets"][name]["likelihood"]
    exact, ode = np.asarray(lik["exact"]), np.asarray(lik["ode"][index])
    lo, hi = float(exact.min()), float(exact.max())
    data = [dict(type="scatter", x=[lo, hi], y=[lo, hi], mode="lines", name=tr("continuous.ll_diagonal"),
                 line=dict(color=charts.MARKER_COLOR, dash="dash", width=1)),
            dict(type="scatter", x=exact, y=ode, mode="markers", name=tr("continuous.ll_points"),
                 marker=dict(size=6, color=charts.PALETTE[0], opacity=0.7))]
    return go.Figure(data=data, layout=plain_layout(tr("continuous.ll_axis_exact"), tr("continuous.ll_axis_ode"), 330))


def error_figure(tr, name: str, index: int) -> go.Figure:
    err, tols = errors(name)
    largest, median = np.maximum(err.max(1), 1e-12), np.maximum(np.median(err, 1), 1e-12)  # log axis: no zeros
    data = [dict(type="scatter", x=tols, y=largest, mode="lines+markers", name=tr("continuous.ll_max"),
                 line=dict(color=charts.PALETTE[1])),
            dict(type="scatter", x=tols, y=median, mode="lines+markers", name=tr("continuous.ll_median"),
                 line=dict(color=charts.PALETTE[0])),
            dict(type="scatter", x=[tols[index]], y=[largest[index]], mode="markers", showlegend=False,
                 marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(color="black", width=2)), hoverinfo="skip"),
            dict(type="scatter", x=[tols[0], tols[-1]], y=[0.01, 0.01], mode="lines", name=tr("continuous.ll_goal"),
                 line=dict(color=charts.MARKER_COLOR, dash="dot", width=1))]
    log = dict(type="log", exponentformat="power")
    layout = plain_layout(tr("continuous.ll_axis_tol"), tr("continuous.ll_axis_error"), 330)
    layout["xaxis"] = dict(log, title=dict(text=tr("continuous.ll_axis_tol")), autorange="reversed")  # tighter: right
    layout["yaxis"] = dict(log, title=dict(text=tr("continuous.ll_axis_error")))
    return go.Figure(data=data, layout=layout)


@st.cache_data(show_spinner=False, max_entries=64)
def hutchinson(name: str, k: int, seed: int) -> dict:
    """Exact divergence of the PF-ODE drift at the benchmark's points at t_start, and one estimate per point with k
    Rademacher probes (seeded), in the page's units (1 / unit time)."""
    bench = load_bench()
    meta = bench["meta"]
    data, path = training_points(name, meta["points"], meta["seed"]), vp_linear()
    x = torch.tensor(bench["datasets"][name]["likelihood"]["points"], dtype=torch.float64)
    drift = pf_ode_drift(marginal_eps_fn(data, path), path)
    _, exact = divergence(drift, x, meta["t_start"])
    probes = rademacher((k, *x.shape), torch.Generator().manual_seed(seed))
    _, estimate = divergence(drift, x, meta["t_start"], probes)
    one = rademacher((1, *x.shape), torch.Generator().manual_seed(seed + 1))
    _, single = divergence(drift, x, meta["t_start"], one)
    return {"exact": exact.numpy(), "estimate": estimate.numpy(), "single_spread": float((single - exact).std())}


def hutchinson_figure(tr, result: dict, k: int) -> go.Figure:
    exact, est = result["exact"], result["estimate"]
    lo, hi = float(exact.min()), float(exact.max())
    data = [dict(type="scatter", x=[lo, hi], y=[lo, hi], mode="lines", name=tr("continuous.hutch_diagonal"),
                 line=dict(color=charts.MARKER_COLOR, dash="dash", width=1)),
            dict(type="scatter", x=exact, y=est, mode="markers", name=tr("continuous.hutch_points", k=k),
                 marker=dict(size=6, color=charts.PALETTE[3], opacity=0.7))]
    return go.Figure(data=data, layout=plain_layout(tr("continuous.hutch_axis_exact"), tr("continuous.hutch_axis_est"),
                                                    330))
