"""The forward-process posterior q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eqs. 6-7).

q(x_{t-1} | x_t, x_0) = N(x_{t-1}; mu~_t(x_t, x_0), beta~_t I) with
    mu~_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t,
    beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t.
At t = 1, abar_0 = 1 gives mu~_1 = x_0 and beta~_1 = 0.

The network's step p_theta(x_{t-1} | x_t) (sec. 3.2) follows: it plugs its predicted clean image x0_hat
(eq. 15) into mu~_t, and eps, x_0 and mu are three faces of one prediction (eqs. 10-11, 15).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..samplers import DdpmVariance, EpsFn, predict_x0_from_eps, step_coefficients
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


def posterior_variance_ratio(schedule: Schedule) -> Tensor:
    """beta~_t / beta_t = (1 - abar_{t-1}) / (1 - abar_t) for t = 1..T, float64 [T + 1] (index 0 set to 0)
    (Ho et al. 2020, eq. 7). It is 0 at t = 1 (abar_0 = 1: x_0 is known exactly) and below 1 for every t;
    it tends to 1 when abar_t -> 0, where the two choices sigma_t^2 = beta_t and beta~_t of sec. 3.2 agree."""
    ratio = posterior_coefficients(schedule).variance / schedule.betas.clamp(min=torch.finfo(torch.float64).tiny)
    ratio[0] = 0.0
    return ratio


def model_variances(schedule: Schedule, variance: DdpmVariance) -> Tensor:
    """sigma_t^2 of p_theta(x_{t-1} | x_t), float64 [T + 1] indexed by t: beta_t or beta~_t for t >= 2
    (Ho et al. 2020, sec. 3.2), beta~_2 at t = 1 under either choice (beta~_1 = 0; the decoder's, eq. 13,
    as Ho et al.'s code does); 0 at t = 0."""
    if variance not in ("beta", "beta_tilde"):
        raise ValueError(f"unknown variance {variance!r}; expected 'beta' or 'beta_tilde'")
    beta_tilde = posterior_coefficients(schedule).variance
    out = (schedule.betas if variance == "beta" else beta_tilde).clone()
    out[1] = beta_tilde[2]
    out[0] = 0.0
    return out


def model_variance(schedule: Schedule, t: int, variance: DdpmVariance) -> float:
    """sigma_t^2 of ``model_variances`` at one t in 1..T."""
    if not 1 <= t <= schedule.T:
        raise ValueError(f"t must lie in 1..{schedule.T}, got {t}")
    return float(model_variances(schedule, variance)[t])


@dataclass(frozen=True)
class PMeanVariance:
    """One reverse step's Gaussian p_theta(x_{t-1} | x_t) = N(mean, variance I); tensors have x_t's shape."""

    eps_hat: Tensor  # the noise prediction eps_theta(x_t, t)
    x0_hat: Tensor  # predicted clean image (eq. 15), not clipped
    mean: Tensor  # mu_theta(x_t, t) = mu~_t(x_t, x0_hat) (eqs. 7 and 15, the same as eq. 11)
    variance: float  # sigma_t^2 (model_variance)


def p_mean_variance(eps_fn: EpsFn, x_t: Tensor, t: int, schedule: Schedule,
                    variance: DdpmVariance = "beta") -> PMeanVariance:
    """p_theta(x_{t-1} | x_t) of Ho et al. (2020), sec. 3.2: the network does not know x_0, so it plugs
    x0_hat = (x_t - sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(abar_t) (eq. 15) into the posterior mean
    mu~_t (eq. 7); the result is eq. 11. x_t: [N, C, H, W]; t: one timestep in 1..T for the whole batch."""
    if not 1 <= t <= schedule.T:
        raise ValueError(f"t must lie in 1..{schedule.T}, got {t}")
    eps_hat = eps_fn(x_t, torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)).to(x_t.dtype)
    x0_hat = predict_x0_from_eps(x_t, eps_hat, float(schedule.alpha_bars[t]))  # eq. 15
    mean, _ = q_posterior_mean_variance(x0_hat, x_t, t, schedule)  # eq. 7 with x0_hat for x_0
    return PMeanVariance(eps_hat=eps_hat, x0_hat=x0_hat, mean=mean, variance=model_variance(schedule, t, variance))


def mean_from_eps(x_t: Tensor, eps: Tensor, t: int, schedule: Schedule) -> Tensor:
    """mu = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) (Ho et al. 2020, eqs. 10-11). With the true
    eps of x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps this is mu~_t(x_t, x_0) (eq. 10); with eps_theta, mu_theta."""
    c = step_coefficients(schedule, t, t - 1, 0.0)  # the coefficients ddpm_step uses, one copy
    return c.ddpm_coef_xt * (x_t - c.ddpm_coef_eps * eps)


def eps_from_mean(x_t: Tensor, mean: Tensor, t: int, schedule: Schedule) -> Tensor:
    """Eq. 11 of Ho et al. (2020) solved for eps: eps = (x_t - sqrt(alpha_t) mu) sqrt(1 - abar_t) / beta_t."""
    c = step_coefficients(schedule, t, t - 1, 0.0)
    return (x_t - mean / c.ddpm_coef_xt) / c.ddpm_coef_eps


def x0_from_mean(x_t: Tensor, mean: Tensor, t: int, schedule: Schedule) -> Tensor:
    """Eq. 7 of Ho et al. (2020) solved for x_0: x_0 = (mu - coef_xt x_t) / coef_x0 (coef_x0 > 0 for every t)."""
    c = posterior_coefficients(schedule)
    return (mean - float(c.coef_xt[t]) * x_t) / float(c.coef_x0[t])
