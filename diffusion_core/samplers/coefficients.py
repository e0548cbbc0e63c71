"""What every reverse step shares: the conversions between eps_hat and x0_hat, the per-step output,
and the coefficients of the DDPM and DDIM steps that the reverse-process page prints.

A step goes from x_t to x_{t_prev} (t_prev < t; t_prev = t - 1 for the full chain, or the previous
element of a sub-sequence, Song et al. 2021, sec. 4.2). For a sub-sequence the one-step quantities
use abar only: alpha = abar_t / abar_{t_prev}, beta = 1 - alpha; for t_prev = t - 1 these are
alpha_t and beta_t of Ho et al. (2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..process.schedules import Schedule


@dataclass(frozen=True)
class StepOutput:
    """One reverse step x_t -> x_{t_prev}; tensors have x_t's shape."""

    x_prev: Tensor  # x_{t_prev} = mean + sigma z
    x0_hat: Tensor  # predicted clean image (Ho et al. 2020, eq. 15), clipped if asked
    eps: Tensor  # the noise prediction the step used (recomputed from x0_hat after clipping)
    mean: Tensor  # mean of p_theta(x_{t_prev} | x_t)
    noise: Tensor  # sigma z, the noise added
    sigma: float  # standard deviation of the added noise
    alpha: float  # abar_t / abar_{t_prev} (alpha_t for a single step)
    beta: float  # 1 - alpha


def predict_x0_from_eps(x_t: Tensor, eps: Tensor, alpha_bar_t: float | Tensor) -> Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (Ho et al. 2020, eq. 15).
    abar_t: a float, or a tensor that broadcasts against x_t (e.g. [N, 1, 1, 1], one t per image)."""
    sqrt = torch.sqrt if isinstance(alpha_bar_t, Tensor) else math.sqrt
    return (x_t - sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_bar_t)


def predict_eps_from_x0(x_t: Tensor, x0: Tensor, alpha_bar_t: float) -> Tensor:
    """eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t): eq. 4 solved for eps."""
    return (x_t - math.sqrt(alpha_bar_t) * x0) / math.sqrt(1 - alpha_bar_t)


def check_pair(t: int, t_prev: int, schedule: Schedule) -> None:
    """Refuse a step that does not go down in time inside 0..T."""
    if not (0 <= t_prev < t <= schedule.T):
        raise ValueError(f"need 0 <= t_prev < t <= {schedule.T}, got t = {t}, t_prev = {t_prev}")


@dataclass(frozen=True)
class StepCoefficients:
    """The numbers in the formulas of one step x_t -> x_{t_prev} (t_prev = 0 on the last step): the
    steps below compute with them, and the reverse-process page prints them."""

    t: int  # current timestep
    t_prev: int  # timestep the step reaches
    alpha_bar_t: float  # abar_t
    alpha_bar_prev: float  # abar_{t_prev}
    sqrt_alpha_bar_t: float  # sqrt(abar_t): divides in x0_hat (Ho et al. 2020, eq. 15)
    sqrt_one_minus_alpha_bar_t: float  # sqrt(1 - abar_t): std of the noise in x_t (eq. 4)
    alpha: float  # abar_t / abar_{t_prev}: alpha_t for a single step
    beta: float  # 1 - alpha: beta_t for a single step
    sigma: float  # std of the noise the step adds
    ddpm_coef_xt: float  # 1 / sqrt(alpha), in front of x_t in eq. 11
    ddpm_coef_eps: float  # beta / sqrt(1 - abar_t), in front of eps_hat inside the bracket of eq. 11
    ddim_coef_x0: float  # sqrt(abar_{t_prev}), in front of x0_hat in Song et al. (2021), eq. 12
    ddim_coef_eps: float  # sqrt(1 - abar_{t_prev} - sigma^2), in front of eps_hat in eq. 12


def step_coefficients(schedule: Schedule, t: int, t_prev: int, sigma: float) -> StepCoefficients:
    """The coefficients of Ho et al. (2020), eqs. 11 and 15, and Song et al. (2021), eq. 12, for the
    step t -> t_prev, with alpha = abar_t / abar_{t_prev} (sec. 4.2 of Song et al. for strided
    steps); ``sigma`` is the one the step uses (``SampleStep.sigma``)."""
    check_pair(t, t_prev, schedule)
    abar_t, abar_prev = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[t_prev])
    alpha = abar_t / abar_prev
    beta = 1 - alpha
    return StepCoefficients(
        t=t, t_prev=t_prev, alpha_bar_t=abar_t, alpha_bar_prev=abar_prev,
        sqrt_alpha_bar_t=math.sqrt(abar_t), sqrt_one_minus_alpha_bar_t=math.sqrt(1 - abar_t),
        alpha=alpha, beta=beta, sigma=sigma,
        ddpm_coef_xt=1 / math.sqrt(alpha), ddpm_coef_eps=beta / math.sqrt(1 - abar_t),
        ddim_coef_x0=math.sqrt(abar_prev), ddim_coef_eps=math.sqrt(max(1 - abar_prev - sigma**2, 0.0)),
    )


def x0_and_eps(x_t: Tensor, eps_hat: Tensor, alpha_bar_t: float, clip: bool) -> tuple[Tensor, Tensor]:
    """x0_hat from eps_hat (eq. 15); with ``clip``, x0_hat is clipped to [-1, 1] and eps recomputed from
    it (eq. 4 solved for eps), so that the step stays consistent with the clipped prediction."""
    x0_hat = predict_x0_from_eps(x_t, eps_hat, alpha_bar_t)
    if not clip:
        return x0_hat, eps_hat
    x0_hat = x0_hat.clamp(-1, 1)
    return x0_hat, predict_eps_from_x0(x_t, x0_hat, alpha_bar_t)
