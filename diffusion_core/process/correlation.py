"""How much of the picture is left in x_t: the correlation between x_t and x_0.

Ho et al. (2020), eq. 4: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, eps ~ N(0, I).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .schedules import Schedule


def correlation_curve(x0: Tensor, schedule: Schedule) -> np.ndarray:
    """corr(x_t, x_0) over the pixels of one picture, for every t = 0..T (float64 [T + 1]).

    Take the D values of x_0 (all pixels, all channels) as a population with variance
    v = Var(x_0), and x_t = a x_0 + b eps with a = sqrt(abar_t), b = sqrt(1 - abar_t) (eq. 4),
    eps independent of x_0 with mean 0 and variance 1. Then

        Cov(x_t, x_0) = a Var(x_0) + b Cov(eps, x_0) = a v          (eps independent of x_0)
        Var(x_t)      = a^2 v + b^2 Var(eps)        = abar_t v + 1 - abar_t

    and so

        corr_t = Cov(x_t, x_0) / sqrt(Var(x_t) Var(x_0))
               = sqrt(abar_t) std(x_0) / sqrt(abar_t Var(x_0) + 1 - abar_t)
               = sqrt(s / (1 + s)),  s = SNR_t Var(x_0),  SNR_t = abar_t / (1 - abar_t).

    It is 1 at t = 0 and falls to about sqrt(abar_T) std(x_0) at t = T. One draw of x_t has
    an empirical correlation close to this, closer the more pixels the picture has
    (``pixel_correlation``). A flat picture (v = 0) has no pattern to correlate with: NaN.
    """
    x = x0.detach().to(torch.float64).flatten()
    var = float(x.var(unbiased=False)) if x.numel() > 0 else 0.0
    if not var > 0.0:
        return np.full(schedule.T + 1, math.nan)
    abar = schedule.alpha_bars.numpy()
    return np.sqrt(abar) * math.sqrt(var) / np.sqrt(abar * var + 1.0 - abar)


def pixel_correlation(a: Tensor, b: Tensor) -> float:
    """Pearson's correlation between the values of two pictures of one shape (all pixels and
    channels pooled): sum (a - mean a)(b - mean b) / sqrt(sum (a - mean a)^2 sum (b - mean b)^2).
    NaN when either picture is flat."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    x = a.detach().to(torch.float64).flatten()
    y = b.detach().to(torch.float64).flatten()
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return float((x * y).sum()) / denom if denom > 0 else math.nan


def first_t_below(curve: np.ndarray, level: float) -> int | None:
    """The first t at which ``curve[t]`` (indexed by t = 0..T) is below ``level``; None if never."""
    below = np.nonzero(np.asarray(curve) < level)[0]
    return int(below[0]) if below.size else None
