"""What a student reads off a run of the reverse process: the noise level along the run, how far each
predicted clean image is from the final one, and the start of SDEdit (Meng et al. 2022).

The coefficients of one step, which the page prints, are ``samplers.step_coefficients``: the very
numbers ``ddpm_step`` and ``ddim_step`` compute with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..data.images import uint8_to_unit
from ..process.forward import q_sample
from ..process.schedules import Schedule


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
