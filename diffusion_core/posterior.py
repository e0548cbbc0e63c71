"""The forward-process posterior q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eqs. 6-7).

q(x_{t-1} | x_t, x_0) = N(x_{t-1}; mu~_t(x_t, x_0), beta~_t I) with
    mu~_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
    beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t.
At t = 1, abar_0 = 1 gives mu~_1 = x_0 and beta~_1 = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .forward import check_timesteps, extract
from .schedules import Schedule


@dataclass(frozen=True)
class PosteriorCoefficients:
    """float64 tensors [T + 1] (index 0 unused, set to 0) of eqs. 6-7."""

    coef_x0: Tensor  # sqrt(abar_{t-1}) beta_t / (1 - abar_t)
    coef_xt: Tensor  # sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t)
    variance: Tensor  # beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t


def posterior_coefficients(schedule: Schedule) -> PosteriorCoefficients:
    """Coefficients of Ho et al. (2020), eq. 7, for every t = 1..T."""
    abar = schedule.alpha_bars
    abar_prev = abar.clone()
    abar_prev[1:] = abar[:-1]  # abar_{t-1}; abar_prev[1] = abar_0 = 1
    denom = (1 - abar).clone()
    denom[0] = 1.0  # t = 0 is not a step; avoid 0/0
    coef_x0 = abar_prev.sqrt() * schedule.betas / denom
    coef_xt = schedule.alphas.sqrt() * (1 - abar_prev) / denom
    variance = (1 - abar_prev) / denom * schedule.betas
    coef_x0[0] = coef_xt[0] = variance[0] = 0.0
    return PosteriorCoefficients(coef_x0=coef_x0, coef_xt=coef_xt, variance=variance)


def q_posterior_mean_variance(x0: Tensor, xt: Tensor, t: int | Tensor, schedule: Schedule) -> tuple[Tensor, Tensor]:
    """Mean mu~_t(x_t, x_0) and variance beta~_t of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eqs. 6-7).

    x0, xt: [N, C, H, W]; t: int or LongTensor [N] in 1..T. The variance is
    returned with x's shape (it is the same for every pixel)."""
    t = check_timesteps(t, schedule, xt.shape[0])
    c = posterior_coefficients(schedule)
    mean = extract(c.coef_x0, t, xt) * x0 + extract(c.coef_xt, t, xt) * xt
    variance = extract(c.variance, t, xt).expand_as(xt)
    return mean, variance
