"""The ancestral DDPM step (Ho et al. 2020, eq. 11 / algorithm 2), on the full chain or a sub-sequence."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from ..process.schedules import Schedule
from .coefficients import StepOutput, check_pair, step_coefficients, x0_and_eps

DdpmVariance = Literal["beta", "beta_tilde"]


def ddpm_sigma(alpha_bar_t: float, alpha_bar_prev: float, variance: DdpmVariance) -> float:
    """sigma with sigma^2 = beta or beta~ = (1 - abar_{t_prev}) / (1 - abar_t) beta, where
    beta = 1 - abar_t / abar_{t_prev} (Ho et al. 2020, sec. 3.2)."""
    beta = 1 - alpha_bar_t / alpha_bar_prev
    if variance == "beta":
        return math.sqrt(beta)
    if variance == "beta_tilde":
        return math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta)
    raise ValueError(f"unknown DDPM variance {variance!r}; expected 'beta' or 'beta_tilde'")


def ddpm_step(
    x_t: Tensor, eps_hat: Tensor, t: int, t_prev: int, schedule: Schedule, *,
    variance: DdpmVariance = "beta_tilde", noise: Tensor | None = None, clip: bool = False,
) -> StepOutput:
    """Ancestral step of Ho et al. (2020), eq. 11 / algorithm 2:
    x_{t_prev} = 1/sqrt(alpha) (x_t - beta / sqrt(1 - abar_t) eps) + sigma z,
    sigma^2 = beta or beta~ = (1 - abar_{t_prev}) / (1 - abar_t) beta (sec. 3.2).
    No noise is added on the last step (t_prev = 0), as in algorithm 2."""
    check_pair(t, t_prev, schedule)
    abar_t, abar_prev = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[t_prev])
    sigma = 0.0 if t_prev == 0 else ddpm_sigma(abar_t, abar_prev, variance)
    c = step_coefficients(schedule, t, t_prev, sigma)
    x0_hat, eps = x0_and_eps(x_t, eps_hat, abar_t, clip)
    mean = (x_t - c.ddpm_coef_eps * eps) / math.sqrt(c.alpha)  # = ddpm_coef_xt (...), as the page prints it
    added = sigma * noise if (sigma > 0 and noise is not None) else torch.zeros_like(x_t)
    if sigma > 0 and noise is None:
        raise ValueError("ddpm_step needs noise when sigma > 0")
    return StepOutput(x_prev=mean + added, x0_hat=x0_hat, eps=eps, mean=mean, noise=added,
                      sigma=sigma, alpha=c.alpha, beta=c.beta)
