"""What the closed form q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (Ho et al. 2020, eq. 4)
predicts, in the shapes the pages check pictures and chains against."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .forward import q_mean_variance
from .schedules import Schedule


def marginal_curves(x0: float, schedule: Schedule) -> tuple[np.ndarray, np.ndarray]:
    """Mean sqrt(abar_t) x_0 and standard deviation sqrt(1 - abar_t) of one pixel's x_t for every
    t = 0..T (eq. 4, via forward.q_mean_variance), float64 [T + 1] each; at t = 0 they are x_0 and 0."""
    x = torch.full((schedule.T,), float(x0), dtype=torch.float64)
    mean, variance = q_mean_variance(x, torch.arange(1, schedule.T + 1), schedule)
    return (np.concatenate([[float(x0)], mean.numpy()]),
            np.concatenate([[0.0], variance.sqrt().numpy()]))


@dataclass(frozen=True)
class PixelMoments:
    """Expected mean and unbiased variance of the D pixel values of one x_t ~ q(x_t | x_0), with the
    standard deviations of those two statistics over the noise (for 'how close is close')."""

    mean: float  # sqrt(abar_t) m_0
    variance: float  # abar_t s_0^2 + (1 - abar_t)
    mean_se: float  # sqrt((1 - abar_t) / D)
    variance_se: float  # sqrt((4 abar_t (1 - abar_t) s_0^2 + 2 (1 - abar_t)^2) / (D - 1))


def xt_pixel_moments(x0: Tensor, t: int, schedule: Schedule) -> PixelMoments:
    """Statistics over the pixels of x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4), eps ~ N(0, I).

    With m_0, s_0^2 the mean and unbiased variance of x_0's D pixel values, a^2 = abar_t and
    b^2 = 1 - abar_t: the pixel mean of x_t is a m_0 + b eps_bar, so E = a m_0 and SD = b / sqrt(D);
    the pixel variance is a^2 s_0^2 + 2ab/(D-1) sum_i c_i eps_i + b^2 s_eps^2 (c = x_0 - m_0), so
    E = a^2 s_0^2 + b^2 and Var = (4 a^2 b^2 s_0^2 + 2 b^4) / (D - 1) (Gaussian eps; the terms are
    uncorrelated). x0: any shape with D >= 2 values; t in 0..T."""
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= schedule.T:
        raise ValueError(f"t must be an int in 0..{schedule.T}, got {t!r}")
    x = x0.detach().to(torch.float64).flatten()
    d = x.numel()
    if d < 2:
        raise ValueError("x0 needs at least 2 pixels")
    m0, s0 = float(x.mean()), float(x.var(unbiased=True))
    a2 = float(schedule.alpha_bars[t])
    b2 = 1.0 - a2
    return PixelMoments(
        mean=math.sqrt(a2) * m0,
        variance=a2 * s0 + b2,
        mean_se=math.sqrt(b2 / d),
        variance_se=math.sqrt((4 * a2 * b2 * s0 + 2 * b2 * b2) / (d - 1)),
    )
