"""The forward (diffusion) process q of Ho et al. (2020).

Shapes: x is [N, C, H, W] in [-1, 1]; t is an int or a LongTensor [N] with
values in 1..T. Results keep x's dtype and device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .schedules import Schedule


def check_timesteps(t: int | Tensor, schedule: Schedule, n: int) -> Tensor:
    """Turn t into a LongTensor [n] and check that 1 <= t <= T."""
    t = torch.as_tensor(t)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"t must be an integer timestep, got dtype {t.dtype}")
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"t must be a scalar or have shape [{n}], got {tuple(t.shape)}")
    if len(t) and (int(t.min()) < 1 or int(t.max()) > schedule.T):
        raise ValueError(f"t must lie in 1..{schedule.T}, got values from {int(t.min())} to {int(t.max())}")
    return t.long()


def extract(values: Tensor, t: Tensor, like: Tensor) -> Tensor:
    """values[t] as a [N, 1, 1, 1] tensor with like's dtype and device (float64 -> cast here)."""
    out = values.to(like.device)[t.to(like.device)]
    return out.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def check_noise(noise: Tensor, x: Tensor) -> None:
    """The noise must have x's shape: broadcasting would silently reuse one eps for many pixels."""
    if noise.shape != x.shape:
        raise ValueError(f"noise must have the shape of x, {tuple(x.shape)}, got {tuple(noise.shape)}")


def q_step(x_prev: Tensor, t: int | Tensor, noise: Tensor, schedule: Schedule) -> Tensor:
    """One step of the chain, x_t ~ q(x_t | x_{t-1}) (Ho et al. 2020, eq. 2):
    x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps."""
    t = check_timesteps(t, schedule, x_prev.shape[0])
    check_noise(noise, x_prev)
    beta_t = extract(schedule.betas, t, x_prev)
    return (1 - beta_t).sqrt() * x_prev + beta_t.sqrt() * noise


def q_sample(x0: Tensor, t: int | Tensor, noise: Tensor, schedule: Schedule) -> Tensor:
    """Sample x_t ~ q(x_t | x_0) in one jump (Ho et al. 2020, eq. 4):
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
    t = check_timesteps(t, schedule, x0.shape[0])
    check_noise(noise, x0)
    return extract(schedule.sqrt_alpha_bars, t, x0) * x0 + extract(schedule.sqrt_one_minus_alpha_bars, t, x0) * noise


def q_sample_weights(schedule: Schedule) -> Tensor:
    """The weights of x_0 and eps in x_t for t = 1..T (Ho et al. 2020, eq. 4), float64 [T, 2]: row t - 1 is
    (sqrt(abar_t), sqrt(1 - abar_t)), so that x_t = w[t - 1, 0] x_0 + w[t - 1, 1] eps, as q_sample draws it."""
    return torch.stack([schedule.sqrt_alpha_bars[1:], schedule.sqrt_one_minus_alpha_bars[1:]], dim=1).double()


def q_mean_variance(x0: Tensor, t: int | Tensor, schedule: Schedule) -> tuple[Tensor, Tensor]:
    """Mean sqrt(abar_t) x_0 and variance (1 - abar_t) of q(x_t | x_0) (Ho et al. 2020, eq. 4)."""
    t = check_timesteps(t, schedule, x0.shape[0])
    mean = extract(schedule.sqrt_alpha_bars, t, x0) * x0
    variance = extract(1 - schedule.alpha_bars, t, x0).expand_as(x0)
    return mean, variance
