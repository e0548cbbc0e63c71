"""What a student reads off a run of the reverse process: the coefficients of one step, the noise
level along the run, how far each predicted clean image is from the final one, and the start of
SDEdit (Meng et al. 2022).

The steps themselves are computed in ``samplers.py`` (``ddpm_step``, ``ddim_step``); the
coefficients here are the numbers in front of x_t, eps_hat and x0_hat in those formulas, for
display, and a test checks that they rebuild the means the steps return.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .forward import q_sample
from .images import uint8_to_unit
from .schedules import Schedule


@dataclass(frozen=True)
class StepCoefficients:
    """The numbers in the formulas of one step x_t -> x_{t_prev} (t_prev = 0 on the last step)."""

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
    steps); ``sigma`` is the one the step used (``SampleStep.sigma``)."""
    if not 0 <= t_prev < t <= schedule.T:
        raise ValueError(f"need 0 <= t_prev < t <= {schedule.T}, got t = {t}, t_prev = {t_prev}")
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


def noise_level(schedule: Schedule, t: Sequence[int] | np.ndarray) -> np.ndarray:
    """sqrt(1 - abar_t) for each t: the standard deviation of the noise in x_t (Ho et al. 2020, eq. 4);
    1 at t = T (pure noise) down to 0 at t = 0 (data). float64 array of t's length."""
    return schedule.sqrt_one_minus_alpha_bars[torch.as_tensor(np.asarray(t), dtype=torch.long)].numpy()


def rms_distance(images: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Root-mean-square distance, in the model's units (pixels in [-1, 1]), between each batch of
    ``images`` and ``target``: images uint8 [K, N, H, W] (K snapshots of N pictures), target uint8
    [N, H, W]. Returns float64 [K]; 0 means identical, 2 is white against black everywhere."""
    diff = uint8_to_unit(images).astype(np.float64) - uint8_to_unit(target).astype(np.float64)[None]
    return np.sqrt((diff**2).reshape(len(images), -1).mean(axis=1))


def sdedit_start(x0: Tensor, t0: int, schedule: Schedule, generator: torch.Generator | None = None) -> Tensor:
    """x_{t0} ~ q(x_{t0} | x_0) in one jump (Ho et al. 2020, eq. 4), the start of SDEdit (Meng et al.
    2022, sec. 3): the reverse process run from here keeps what the noise has not hidden.
    x0: [N, C, H, W] in [-1, 1] on the CPU; the noise is drawn with ``generator``."""
    noise = torch.randn(x0.shape, generator=generator)
    return q_sample(x0, t0, noise, schedule)
