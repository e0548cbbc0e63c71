"""Page 10's charts: the three paths' alpha, sigma and log SNR, the weights over log SNR that each loss implies,
the training-time densities, the benchmark's Euler/Heun/DDIM/DPM-Solver++ sweep, energy against calls in 2-D, the
loss-weight check on a batch, and straight pair paths against curved marginal ones. Numbers come from the core."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.models.weights import PRETRAINED_DIR
from diffusion_core.process.losses import implied_weight, time_density
from ui import charts
from ui.flow import lab as fl
from ui.flow.digits import PATHS
from ui.playground import lab as pg
from ui.playground.lab import COLORS, LIMIT

FLOW_SWEEP = PRETRAINED_DIR / "flow_sweep.json"
SAMPLER_ORDER = ("euler", "heun", "ddim", "dpm_solver++")
SAMPLER_COLORS = dict(zip(SAMPLER_ORDER, charts.PALETTE))
CALL_TICKS = (1, 2, 3, 5, 10, 20, 50)  # ticks of the log axes of network calls
Tr = Callable[..., str]
# On a phone (390 px) a formula wider than the column scrolls sideways, its right edge fading out so that a
# student sees there is more (the reverse page's FORMULAS_CSS, for every formula of this page).
PHONE_CSS = ("<style>@media (max-width: 760px) { [data-testid='stMain'] .katex-display { overflow-x: auto;"
             " padding: 0 2rem 6px 0; scrollbar-width: thin; scrollbar-color: #9a9a9a transparent;"
             " mask-image: linear-gradient(to right, #000 calc(100% - 2rem), transparent); } }</style>")


def _layout(x_title: str, y_title: str, title: str | None = None, height: int = 300, **extra) -> dict:
    layout = dict(title=dict(text=title or "", x=0.0, font=dict(size=14)), height=height, separators=charts.SEPARATORS,
                  margin=dict(l=10, r=10, t=40 if title else 20, b=10),
                  legend=dict(orientation="h", yanchor="top", y=-0.34, x=0.0),
                  xaxis=dict(title=dict(text=x_title)), yaxis=dict(title=dict(text=y_title)))
    return {**layout, **extra}


@st.cache_resource(max_entries=4, show_spinner=False)  # read-only figures, sent unchanged at every step of t
def path_curves(lang: str, _tr: Tr, t_marker: float) -> tuple[go.Figure, go.Figure]:
    """alpha(t) and sigma(t) of the three paths, and their log SNR, with the marker (a dashed line, a dot on each
    curve) at ``t_marker``, the slider's first value: the browser moves it at each step (ui/follow.py)."""
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    inner = t[1:-1]
    coefficients, snr, dots_a, dots_b = [], [], [], []
    for i, (name, path) in enumerate(PATHS.items()):
        color, label = charts.PALETTE[i], _tr(f"flow.path_{name}")
        for symbol, curve, dash in (("α", path.alpha(t).numpy(), "solid"), ("σ", path.sigma(t).numpy(), "dash")):
            dots_a.append((len(coefficients), float(np.interp(t_marker, t.numpy(), curve)), color))
            coefficients.append(dict(type="scatter", x=t.numpy(), y=curve, name=f"{symbol} · {label}", mode="lines",
                                     line=dict(color=color, dash=dash)))
        y = path.log_snr(inner).numpy()
        inside = inner[0] <= t_marker <= inner[-1]
        dots_b.append((len(snr), float(np.interp(t_marker, inner.numpy(), y)) if inside else float("nan"), color))
        snr.append(dict(type="scatter", x=inner.numpy(), y=y, name=label, mode="lines", line=dict(color=color)))
    label = f"t = {t_marker:g}"
    a = go.Figure(coefficients, _layout(_tr("flow.t_axis"), _tr("flow.coef_axis"), _tr("flow.coef_title"), 320,
                                        **charts.marker_layout(t_marker, label, dots_a)))
    b = go.Figure(snr, _layout(_tr("flow.t_axis"), _tr("flow.log_snr_axis"), _tr("flow.log_snr_title"), 320,
                               **charts.marker_layout(t_marker, label, dots_b)))
    return a, b


@st.cache_resource(max_entries=256, show_spinner=False)  # read-only figures: no copy per step
def field_figures(key: tuple, t: float, lang: str, _tr: Tr, _lab: fl.FlowLab) -> tuple[dict[str, go.Figure], float]:
    """The trained and the exact velocity at t on the grid over x_t (one arrow scale for both; light figures, see
    ui/playground/lab.field_figure), and the mean length of their difference relative to the exact arrows."""
    f = fl.fields_at(key, t, _lab)
    scale = pg.arrow_scale(f["exact"], f["learned"])
    common = dict(cloud_name=_tr("flow.cloud_name"), x_title=_tr("flow.x_axis"), y_title=_tr("flow.y_axis"))
    figures = {w: pg.field_figure(f["grid"], scale * f[w], f["cloud"], color=pg.COLORS[w],
                                  title=_tr(f"flow.panel_{w}", t=f"{t:.4g}"), arrows_name=_tr(f"flow.arrows_{w}"),
                                  **common) for w in ("learned", "exact")}
    gap = np.linalg.norm(f["learned"] - f["exact"], axis=1).mean() / np.linalg.norm(f["exact"], axis=1).mean()
    return figures, float(gap)


SAMPLE_COLORS = {"flow": COLORS["learned"], "ddim": COLORS["fresh"], "exact": COLORS["exact"]}


@st.cache_resource(max_entries=64, show_spinner=False)
def samples_figures(key: tuple, n: int, lang: str, _tr: Tr, _lab: fl.FlowLab) -> dict[str, go.Figure]:
    """The samples of the velocity MLP (Euler), the eps-MLP (DDIM) and the exact field (Euler) at n steps over the
    training points, as light figures (ui/playground/lab.dots_figure) that a step of N applies with Plotly.react."""
    s = fl.samples_at(key, n, _lab)
    background = _lab.data[: fl.BACKGROUND].numpy()
    return {w: pg.dots_figure(background, {_tr(f"flow.samples_{w}", n=n): (s[w], SAMPLE_COLORS[w])},
                              title=_tr(f"flow.samples_title_{w}", n=n, e=f"{s[f'{w}_energy']:.4f}", m=len(s[w])),
                              data_name=_tr("flow.data_name"), x_title=_tr("flow.x_axis"), y_title=_tr("flow.y_axis"),
                              height=380) for w in SAMPLE_COLORS}


# (prediction, path, time sampling, label key): the losses of Kingma & Gao (2023), table 1, on our paths
WEIGHTED_LOSSES = (("eps", "vp_cosine", "uniform", "weight_eps"), ("x0", "vp_cosine", "uniform", "weight_x0"),
                   ("v", "vp_cosine", "uniform", "weight_v"), ("velocity", "rectified_flow", "uniform", "weight_fm"),
                   ("velocity", "rectified_flow", "logit_normal", "weight_sd3"))


@st.cache_data(max_entries=4, show_spinner=False)
def weights_figure(lang: str, _tr: Tr) -> go.Figure:
    """w(lambda) = k(t)^2 p(lambda) of each loss over the log SNR lambda (process.losses.implied_weight)."""
    lam = torch.linspace(-12, 12, 241, dtype=torch.float64)
    data = []
    for i, (pred, path, sampling, key) in enumerate(WEIGHTED_LOSSES):
        w = implied_weight(pred, lam, PATHS[path], sampling).numpy()  # type: ignore[arg-type]
        data.append(go.Scatter(x=lam.numpy(), y=w, mode="lines", name=_tr(f"flow.{key}"),
                               line=dict(color=charts.PALETTE[i], dash="dot" if sampling == "logit_normal" else "solid")))
    return go.Figure(data, _layout(_tr("flow.lambda_axis"), _tr("flow.weight_axis"), _tr("flow.weights_title"), 380,
                                   yaxis_type="log", yaxis_exponentformat="power"))


@st.cache_data(max_entries=4, show_spinner=False)
def density_figure(lang: str, _tr: Tr) -> go.Figure:
    """The training-time densities: U(0, 1) and SD3's logit-normal (m = 0, s = 1)."""
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    data = [go.Scatter(x=t.numpy(), y=time_density(t, s).numpy(), mode="lines", name=_tr(f"flow.sampling_{s}"),
                       line=dict(color=charts.PALETTE[i + 3])) for i, s in enumerate(("uniform", "logit_normal"))]
    return go.Figure(data, _layout(_tr("flow.t_axis"), _tr("flow.density_axis"), _tr("flow.density_title"), 300))


@st.cache_data(show_spinner=False)
def read_sweep(mtime: float) -> dict | None:
    """pretrained/flow_sweep.json (bench/flow_sweep.py), re-read when the file changes; None if absent or bad."""
    try:
        data = json.loads(FLOW_SWEEP.read_text())
        return data if data.get("rows") else None
    except (OSError, ValueError):
        return None


def sweep() -> dict | None:
    return read_sweep(FLOW_SWEEP.stat().st_mtime if FLOW_SWEEP.is_file() else 0.0)


def sweep_figures(tr: Tr, rows: list[dict]) -> tuple[go.Figure, go.Figure]:
    """Accuracy (with its 95 % interval) and FD / floor against network calls, one line per sampler."""
    acc, fd = [], []
    for sampler in SAMPLER_ORDER:
        r = sorted((r for r in rows if r["sampler"] == sampler), key=lambda r: r["nfe"])
        if not r:
            continue
        x, name, color = [q["nfe"] for q in r], tr(f"flow.sampler_{sampler}"), SAMPLER_COLORS[sampler]
        err = dict(type="data", symmetric=False, array=[100 * (q["accuracy_ci_high"] - q["accuracy"]) for q in r],
                   arrayminus=[100 * (q["accuracy"] - q["accuracy_ci_low"]) for q in r], thickness=1)
        acc.append(go.Scatter(x=x, y=[100 * q["accuracy"] for q in r], error_y=err, mode="lines+markers", name=name,
                              line=dict(color=color)))
        fd.append(go.Scatter(x=x, y=[q["fd"] / q["fd_floor"] for q in r], mode="lines+markers", name=name,
                             line=dict(color=color)))
    log_x = dict(xaxis=dict(type="log", tickvals=list(CALL_TICKS), title=dict(text=tr("flow.nfe_axis"))))  # replaces _layout's
    return (go.Figure(acc, _layout(tr("flow.nfe_axis"), tr("flow.accuracy_axis"), tr("flow.accuracy_title"), 340, **log_x)),
            go.Figure(fd, _layout(tr("flow.nfe_axis"), tr("flow.fd_axis"), tr("flow.fd_title"), 340, **log_x))
            .update_yaxes(type="log", dtick=1))


def energy_figure(tr: Tr, points: list[dict], floor: float) -> go.Figure:
    """Energy distance to the training points against velocity calls, Euler and Heun, and the fresh-draw level."""
    data = []
    for method in ("euler", "heun"):
        p = [q for q in points if q["method"] == method]
        data.append(go.Scatter(x=[q["calls"] for q in p], y=[q["energy"] for q in p], mode="lines+markers",
                               name=tr(f"flow.sampler_{method}"), line=dict(color=SAMPLER_COLORS[method])))
    data.append(go.Scatter(x=[2, 50], y=[floor, floor], mode="lines", name=tr("flow.energy_floor"),
                           line=dict(color="#888888", dash="dash")))
    layout = _layout(tr("flow.calls_axis"), tr("flow.energy_axis"), tr("flow.energy_title"), 340)
    layout["xaxis"] = dict(type="log", tickvals=list(CALL_TICKS), title=dict(text=tr("flow.calls_axis")))
    return go.Figure(data, layout)


def weight_check_figure(tr: Tr, batch: dict) -> go.Figure:
    """Each pair's velocity MSE against 1 / (1 - t)^2 times its eps-MSE: on the diagonal if the identity holds."""
    x = batch["weight"] * batch["eps_mse"]
    lo, hi = float(min(x.min(), batch["velocity_mse"].min())) / 1.5, float(max(x.max(), batch["velocity_mse"].max())) * 1.5
    text = [f"t = {t:.2f}" for t in batch["t"]]
    data = [go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name=tr("flow.diagonal"), line=dict(color="#888888", dash="dash")),
            go.Scatter(x=x, y=batch["velocity_mse"], mode="markers", name=tr("flow.pairs_name"), text=text,
                       hovertemplate="%{text}<br>%{x:.4g} → %{y:.4g}<extra></extra>", marker=dict(size=9, color=charts.PALETTE[0]))]
    return go.Figure(data, _layout(tr("flow.weighted_eps_axis"), tr("flow.velocity_mse_axis"), tr("flow.weight_check_title"),
                                   340)).update_xaxes(type="log", dtick=1).update_yaxes(type="log", dtick=1)


def lines_figure(tr: Tr, data: np.ndarray, paths: np.ndarray, *, title: str, color: str, height: int = 400) -> go.Figure:
    """Trajectories [S + 1, n, 2] (t = 1 first) over the training points, the start (noise) crossed, the end dotted."""
    xs = np.concatenate([np.append(paths[:, k, 0], np.nan) for k in range(paths.shape[1])]).astype(np.float32)
    ys = np.concatenate([np.append(paths[:, k, 1], np.nan) for k in range(paths.shape[1])]).astype(np.float32)
    traces = [go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name=tr("flow.data_name"), hoverinfo="skip",
                         marker=dict(size=3, color=COLORS["data"])),
              go.Scatter(x=xs, y=ys, mode="lines", name=tr("flow.trajectory_name"), hoverinfo="skip",
                         line=dict(color=color, width=1.2)),
              go.Scatter(x=paths[0, :, 0], y=paths[0, :, 1], mode="markers", name=tr("flow.noise_name"),
                         marker=dict(size=7, color="black", symbol="x")),
              go.Scatter(x=paths[-1, :, 0], y=paths[-1, :, 1], mode="markers", name=tr("flow.end_name"),
                         marker=dict(size=7, color=color))]
    axis = dict(range=[-LIMIT, LIMIT], zeroline=False)
    layout = _layout(tr("flow.x_axis"), tr("flow.y_axis"), title, height)
    layout["xaxis"] = dict(axis, title=dict(text=tr("flow.x_axis")))
    layout["yaxis"] = dict(axis, title=dict(text=tr("flow.y_axis")), scaleanchor="x", scaleratio=1)
    return go.Figure(traces, layout)
