"""Section 1 of the continuous-time page: the chain with beta_k = beta(k / T) / T against the VP-SDE, as a table
of abar and as one pixel's path beside an Euler-Maruyama path driven by the same draws. Math in process/sde.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.process.paths import vp_linear
from diffusion_core.process.sde import chain_alpha_bars, vp_beta, vp_chain_path, vp_integrated_beta
from diffusion_core.samplers.sde import forward_sde, increasing_times

from .. import charts

TABLE_T = (10, 100, 1000, 10_000)
PATH_T = (25, 50, 100, 1000)  # the pixel's chain: T = 10 is no chain (beta_k reaches 2)


@dataclass(frozen=True)
class ChainRow:
    """One T of the table."""

    T: int
    valid: bool  # every beta_k < 1
    first_bad: int | None  # the first k with beta_k >= 1
    max_error: float  # max_k |abar_k - exp(-int_0^{k/T} beta)| (NaN if not valid)
    end_chain: float  # abar_T of the chain
    end_sde: float  # exp(-int_0^1 beta)


@st.cache_data(show_spinner=False)
def chain_table(Ts: tuple[int, ...] = TABLE_T) -> list[ChainRow]:
    rows = []
    for T in Ts:
        chain = chain_alpha_bars(T)
        exact = torch.exp(-vp_integrated_beta(torch.arange(T + 1, dtype=torch.float64) / T))
        betas = vp_beta(torch.arange(1, T + 1, dtype=torch.float64) / T) / T
        bad = torch.nonzero(betas >= 1)
        valid = len(bad) == 0
        rows.append(ChainRow(T=T, valid=valid, first_bad=None if valid else int(bad[0]) + 1,
                             max_error=float((chain - exact).abs().max()) if valid else float("nan"),
                             end_chain=float(chain[-1]), end_sde=float(exact[-1])))
    return rows


@dataclass(frozen=True)
class PixelPaths:
    """The chain and Euler-Maruyama from x0 = 0 and x0 = 1 with the same draws: every x0 is a mix of the two
    (both are linear in x0)."""

    t: np.ndarray  # [T + 1] = k / T
    chain: np.ndarray  # [T + 1, 2]: from x0 = 0 and x0 = 1
    em: np.ndarray  # [T + 1, 2]
    alpha: np.ndarray  # [T + 1] of the SDE
    sigma: np.ndarray

    def value_range(self, x0_limit: float = 1.0) -> tuple[float, float]:
        """The y range that holds both paths and the 2-sigma band for every |x0| <= x0_limit (all three are linear
        in x0, so the ends decide): one fixed axis for every x0, which a step of x0 does not redraw."""
        ends = [np.concatenate([*self.at(x0), x0 * self.alpha + 2 * s * self.sigma])
                for x0 in (-x0_limit, x0_limit) for s in (-1, 1)]
        lo, hi = float(np.min(ends)), float(np.max(ends))
        pad = 0.05 * (hi - lo)
        return lo - pad, hi + pad

    def at(self, x0: float) -> tuple[np.ndarray, np.ndarray]:
        mix = lambda p: p[:, 0] + x0 * (p[:, 1] - p[:, 0])  # noqa: E731
        return mix(self.chain), mix(self.em)


@st.cache_data(show_spinner=False, max_entries=64)
def pixel_paths(T: int, seed: int) -> PixelPaths:
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(T, 1, generator=g, dtype=torch.float64).expand(T, 2)  # the same eps_k for both starts
    x0 = torch.tensor([0.0, 1.0], dtype=torch.float64)
    chain = vp_chain_path(x0, T, noise)
    path = vp_linear()
    states = [x0[:, None]]
    for s in forward_sde(x0[:, None], path, increasing_times(T), noise=noise[:, :, None]):
        states.append(s.x_next)
    t = torch.arange(T + 1, dtype=torch.float64) / T
    return PixelPaths(t=t.numpy(), chain=chain.numpy(), em=torch.cat(states, 1).T.numpy(),
                      alpha=path.alpha(t).numpy(), sigma=path.sigma(t).numpy())


def pixel_figure(tr, paths: PixelPaths, x0: float, T: int) -> go.Figure:
    """The chain's path and Euler-Maruyama's from x0 over the SDE's mean +- 2 sigma, on axes fixed for every x0
    (a step of x0 changes the three lines only: ui/follow.py applies them in the browser)."""
    chain, em = paths.at(x0)
    idx = charts.downsample_for_plot(paths.t, 1000)
    t, mean, half = paths.t[idx], x0 * paths.alpha[idx], 2 * paths.sigma[idx]
    data = [
        dict(type="scatter", x=np.concatenate([t, t[::-1]]), y=np.concatenate([mean + half, (mean - half)[::-1]]),
             mode="none", fill="toself", fillcolor="rgba(214, 39, 40, 0.12)", name=tr("continuous.band"),
             hoverinfo="skip"),
        dict(type="scatter", x=t, y=chain[idx], mode="lines", name=tr("continuous.chain_name", T=T),
             line=dict(color=charts.PALETTE[0], width=2)),
        dict(type="scatter", x=t, y=em[idx], mode="lines", name=tr("continuous.em_name"),
             line=dict(color=charts.PALETTE[4], width=1.5, dash="dot")),
    ]
    layout = plain_layout(tr("continuous.axis_t"), tr("continuous.axis_pixel"), 320)
    layout["xaxis"]["range"], layout["yaxis"]["range"] = [0, 1], list(paths.value_range())
    return go.Figure(data=data, layout=layout)


def plain_layout(x_title: str, y_title: str, height: int, **extra) -> dict:
    """Axis titles, a legend above the plot, the decimal point and no thousands comma (charts.SEPARATORS)."""
    return dict(xaxis=dict(title=dict(text=x_title)), yaxis=dict(title=dict(text=y_title)), height=height,
                margin=dict(l=10, r=10, t=10, b=10), separators=charts.SEPARATORS, hovermode="closest",
                legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0.0), **extra)
