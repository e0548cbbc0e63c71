"""The DDIM step (Song et al. 2021, eq. 12); with eta = 0 it is the first-order exponential integrator of
the probability-flow ODE in lambda, x0_hat held fixed (Lu et al. 2022, DPM-Solver, sec. 4.1; Euler's method
for x / sigma against e^lambda, not for the ODE in lambda), the first-order member of ``dpm_solver``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..process.schedules import Schedule
from .coefficients import StepOutput, check_pair, step_coefficients, x0_and_eps


def ddim_sigma(alpha_bar_t: float, alpha_bar_prev: float, eta: float) -> float:
    """sigma = eta sqrt((1 - abar_{t_prev}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t_prev}) (Song et al. 2021, eq. 16)."""
    return eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * math.sqrt(1 - alpha_bar_t / alpha_bar_prev)


def ddim_step(
    x_t: Tensor, eps_hat: Tensor, t: int, t_prev: int, schedule: Schedule, *,
    eta: float = 0.0, noise: Tensor | None = None, clip: bool = False,
) -> StepOutput:
    """Song et al. (2021), eq. 12:
    x_{t_prev} = sqrt(abar_{t_prev}) x0_hat + sqrt(1 - abar_{t_prev} - sigma^2) eps + sigma z,
    with sigma from eq. 16; eta = 0 is deterministic, eta = 1 over all T steps is DDPM with sigma^2 = beta~."""
    check_pair(t, t_prev, schedule)
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    abar_t, abar_prev = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[t_prev])
    sigma = ddim_sigma(abar_t, abar_prev, eta)
    c = step_coefficients(schedule, t, t_prev, sigma)
    x0_hat, eps = x0_and_eps(x_t, eps_hat, abar_t, clip)
    mean = c.ddim_coef_x0 * x0_hat + c.ddim_coef_eps * eps
    if sigma > 0 and noise is None:
        raise ValueError("ddim_step needs noise when eta > 0")
    added = sigma * noise if sigma > 0 else torch.zeros_like(x_t)
    return StepOutput(x_prev=mean + added, x0_hat=x0_hat, eps=eps, mean=mean, noise=added,
                      sigma=sigma, alpha=c.alpha, beta=c.beta)
