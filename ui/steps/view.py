"""The figures of the "How many steps?" page: pixel paths against lambda, and the benchmark's sweep.
Layout only: the curves come from diffusion_core.samplers.ode_paths, the numbers from ui.steps.run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from diffusion_core.samplers.ode_paths import PixelPath, step_curves
from ui import charts
from ui.charts import PALETTE
from ui.i18n import Translator
from ui.steps.run import SweepRow

SAMPLER_COLORS = {"ddpm": PALETTE[1], "ddim": PALETTE[0], "dpm_solver++": PALETTE[2]}
REFERENCE_COLOR = "#9a9a9a"


def pixel_color(i: int) -> str:
    """The colour of the i-th followed pixel, in the charts and on the digit."""
    return PALETTE[(i + 3) % len(PALETTE)]


def marked_digit(image: np.ndarray, pixels: Sequence[tuple[int, int]], scale: int = 10) -> np.ndarray:
    """A uint8 [H, W] digit enlarged ``scale`` times, RGB, with a frame in its colour around each followed pixel."""
    big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    rgb = np.stack([big] * 3, axis=-1)
    for i, (r, c) in enumerate(pixels):
        color = np.array([int(pixel_color(i)[k:k + 2], 16) for k in (1, 3, 5)], dtype=np.uint8)
        top, left, w = r * scale, c * scale, max(1, scale // 3)
        rgb[top:top + scale, left:left + w] = rgb[top:top + scale, left + scale - w:left + scale] = color
        rgb[top:top + w, left:left + scale] = rgb[top + scale - w:top + scale, left:left + scale] = color
    return rgb


def lam_end(paths: Sequence[PixelPath]) -> float:
    """Where the charts draw lambda = +inf (x_0): the largest finite lambda of the runs rounded up, plus 2,
    where sigma ~ e^{-lambda} is e^-2 to e^-3 (0.14 to 0.05) of the least noisy step's."""
    return float(np.ceil(max(float(p.lam[-2]) for p in paths))) + 2.0


def path_figure(tr: Translator, run: PixelPath, reference: PixelPath, sampler: str, title: str,
                height: int = 380) -> go.Figure:
    """Each followed pixel (one colour each): the ODE's path (the fine reference run, thin and grey), the
    run's steps (dots) joined by the curve each step follows, and, where the step moved with a corrected
    prediction (DPM-Solver++(2M)), the first-order (DDIM) step from the same point, dashed."""
    end = lam_end([run, reference])
    fig = go.Figure()
    _, ref_curve, _ = step_curves(reference, end, points=4)
    ref_lam = np.concatenate([np.linspace(a, b, 4) for a, b in zip(reference.lam[:-1], np.minimum(reference.lam[1:], end))])
    lams, used, euler = step_curves(run, end)
    corrected = np.abs(used - euler).max(axis=(1, 2)) > 1e-4  # steps whose prediction was not x0_hat
    n_pix = run.x.shape[1]
    point_lam = np.minimum(run.lam, end)
    for p in range(n_pix):
        color = pixel_color(p) if n_pix > 1 else SAMPLER_COLORS.get(sampler, PALETTE[0])
        name = tr("steps.pixel_name", i=p + 1)
        # the ODE's path: wide and pale, in the pixel's colour (the legend shows it once, in grey)
        fig.add_trace(go.Scatter(x=ref_lam, y=ref_curve[:, :, p].ravel(), mode="lines", name=tr("steps.curve_ode"),
                                 legendgroup="ode", showlegend=False, line=dict(color=color, width=7),
                                 opacity=0.25, hoverinfo="skip"))
        if p == 0:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=tr("steps.curve_ode"), legendgroup="ode",
                                     line=dict(color=REFERENCE_COLOR, width=7), opacity=0.5))
        if sampler == "ddpm":  # not an ODE solver: its steps add noise, so only the points are joined
            fig.add_trace(go.Scatter(x=point_lam, y=run.x[:, p], mode="lines+markers", name=name,
                                     line=dict(color=color, width=1.5, dash="dot"), marker=dict(size=7)))
            continue
        fig.add_trace(go.Scatter(x=lams.ravel(), y=used[:, :, p].ravel(), mode="lines", name=name, legendgroup=name,
                                 line=dict(color=color, width=2), hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=point_lam, y=run.x[:, p], mode="markers", name=name, legendgroup=name,
                                 showlegend=False, marker=dict(color=color, size=8, line=dict(color="white", width=1))))
        if corrected.any():
            xs = np.concatenate([np.append(lams[i], np.nan) for i in np.flatnonzero(corrected)])
            ys = np.concatenate([np.append(euler[i, :, p], np.nan) for i in np.flatnonzero(corrected)])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=tr("steps.curve_euler"), legendgroup="euler",
                                     showlegend=p == 0, line=dict(color=color, width=1.5, dash="dash"),
                                     hoverinfo="skip"))
    ticks = [v for v in range(int(np.floor(float(reference.lam[0]))), int(end) - 1) if v % 2 == 0]
    fig.update_xaxes(title=tr("steps.path_x"), tickvals=[*ticks, end], ticktext=[str(v) for v in ticks] + ["+∞ (x₀)"])
    fig.update_yaxes(title=tr("steps.path_y"))
    fig.update_layout(title=dict(text=title, x=0.0, xanchor="left", font=dict(size=15)), height=height,
                      margin=dict(l=10, r=10, t=40, b=10), hovermode="closest", separators=charts.SEPARATORS,
                      legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0))
    return fig


def path_frame(tr: Translator, height: int = 380) -> go.Figure:
    """The path chart without its runs (the axes' titles, its height): what Streamlit keeps in place while the
    browser applies each run's ``path_figure`` to it with Plotly.react (ui/follow.py), so that a step of a
    setting redraws the curves instead of building the chart again."""
    return go.Figure(layout=dict(xaxis=dict(title=dict(text=tr("steps.path_x"))),
                                 yaxis=dict(title=dict(text=tr("steps.path_y"))), height=height,
                                 margin=dict(l=10, r=10, t=40, b=10), separators=charts.SEPARATORS))


def sweep_series(rows: Sequence[SweepRow]) -> dict[tuple[str, str, bool], list[SweepRow]]:
    """The rows grouped into lines (sampler, spacing, lower_order_final), each sorted by network evaluations."""
    series: dict[tuple[str, str, bool], list[SweepRow]] = {}
    for r in rows:
        series.setdefault((r.sampler, r.spacing, r.lower_order_final), []).append(r)
    return {k: sorted(v, key=lambda r: r.nfe) for k, v in sorted(series.items())}


def series_name(tr: Translator, sampler: str, spacing: str, lower_order_final: bool = False) -> str:
    name = tr(f"steps.sampler_{sampler}") if tr.has(f"steps.sampler_{sampler}") else sampler
    name = tr("steps.series", sampler=name,
              spacing=tr(f"steps.spacing_{spacing}") if tr.has(f"steps.spacing_{spacing}") else spacing)
    return tr("steps.series_lof", name=name) if lower_order_final and sampler == "dpm_solver++" else name


def sweep_figures(tr: Translator, rows: Sequence[SweepRow], height: int = 360) -> tuple[go.Figure, go.Figure]:
    """Accuracy (with its 95 % interval) and Fréchet distance / floor against network evaluations, one line
    per sampler and spacing; the targets (99 %, 1.5 x floor) as dotted lines."""
    acc, fd = go.Figure(), go.Figure()
    for (sampler, spacing, lof), rs in sweep_series(rows).items():
        color = SAMPLER_COLORS.get(sampler, PALETTE[4])
        dash = "dot" if lof else "solid" if spacing == "linear" else "dash"
        name = series_name(tr, sampler, spacing, lof)
        x = [r.nfe for r in rs]
        acc.add_trace(go.Scatter(
            x=x, y=[100 * r.accuracy for r in rs], mode="lines+markers", name=name, line=dict(color=color, dash=dash),
            error_y=dict(type="data", symmetric=False, array=[100 * (r.accuracy_ci_high - r.accuracy) for r in rs],
                         arrayminus=[100 * (r.accuracy - r.accuracy_ci_low) for r in rs], thickness=1),
            hovertemplate="NFE %{x}: %{y:.1f} %<extra>" + name + "</extra>"))
        fd.add_trace(go.Scatter(x=x, y=[r.fd / r.fd_floor if r.fd_floor > 0 else np.nan for r in rs],
                                mode="lines+markers", name=name, line=dict(color=color, dash=dash),
                                hovertemplate="NFE %{x}: %{y:.2f}<extra>" + name + "</extra>"))
    acc.add_hline(y=99, line=dict(color="#444", dash="dot", width=1), annotation_text=tr("steps.target_accuracy"),
                  annotation_position="bottom right")
    # On a log axis Plotly places an annotation at log10 of its y: the lines' labels are added by hand.
    for value, key, dash, shift in ((1.5, "steps.target_fd", "dot", 8), (1.0, "steps.floor", "solid", -8)):
        fd.add_hline(y=value, line=dict(color="#444", dash=dash, width=1))
        fd.add_annotation(x=1, xref="paper", xanchor="right", y=float(np.log10(value)), yshift=shift,
                          text=tr(key), showarrow=False, font=dict(size=11, color="#444"))
    nfes = sorted({r.nfe for r in rows})
    ratios = [r.fd / r.fd_floor for r in rows if r.fd_floor > 0] or [1.0]
    fd_ticks = [v for v in (0.5, 1, 1.5, 2, 3, 5, 10, 20, 50, 100, 200, 500) if min(ratios) / 2 <= v <= max(ratios) * 2]
    for fig, title, y_title in ((acc, "steps.sweep_acc_title", "steps.sweep_acc_y"),
                                (fd, "steps.sweep_fd_title", "steps.sweep_fd_y")):
        fig.update_xaxes(title=tr("steps.sweep_x"), type="log", tickvals=nfes, ticktext=[str(n) for n in nfes])
        fig.update_yaxes(title=tr(y_title))
        fig.update_layout(title=dict(text=tr(title), x=0.0, xanchor="left", font=dict(size=15)), height=height,
                          margin=dict(l=10, r=10, t=40, b=10), separators=charts.SEPARATORS,
                          legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0))
    fd.update_yaxes(type="log", tickvals=fd_ticks, ticktext=[f"{v:g}" for v in fd_ticks])
    return acc, fd
