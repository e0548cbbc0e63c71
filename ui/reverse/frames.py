"""The pictures of a reverse-process step as the player shows them (uint8, small enough to keep ~100 per
session) and which steps it keeps. No Streamlit here: the denoiser worker (ui.worker) builds these frames
in its own process and sends them to the page."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffusion_core.data.images import make_grid, uint8_to_unit, unit_to_uint8
from diffusion_core.samplers import DpmSolverCoefficients, SampleStep
from ui.reverse.settings import EPS_RANGE, MAX_FRAMES, PANELS


def to_uint8(x: torch.Tensor, value_range: float = 1.0) -> np.ndarray:
    """[N, 1, H, W] values in [-value_range, value_range] -> uint8 [N, H, W] for display (clipped)."""
    return unit_to_uint8(x[:, 0] / value_range)


def grid(images: np.ndarray, ncols: int | None = None) -> np.ndarray:
    """uint8 [N, H, W] -> one uint8 picture, tiles separated by white lines; ncols defaults to a square."""
    n = images.shape[0]
    ncols = ncols or math.ceil(math.sqrt(n))
    return make_grid(torch.from_numpy(uint8_to_unit(images))[:, None], ncols=ncols)


@dataclass(frozen=True)
class Frame:
    """One step as the page shows it: scalars, and every picture as uint8 [N, H, W]."""

    index: int  # 0 for the first step
    t: int
    t_prev: int
    alpha: float  # abar_t / abar_{t_prev}
    beta: float
    sigma: float
    x_t: np.ndarray  # on [-1, 1]
    eps_hat: np.ndarray  # on [-EPS_RANGE, EPS_RANGE]
    x0_hat: np.ndarray  # on [-1, 1]
    mean: np.ndarray  # on [-1, 1]
    noise: np.ndarray  # sigma z, on [-1, 1] (grey = 0)
    solver: DpmSolverCoefficients | None = None  # DPM-Solver++ only: the step's coefficients, order and t_last

    @classmethod
    def from_step(cls, step: SampleStep) -> "Frame":
        return cls(index=step.index, t=step.t, t_prev=step.t_prev, alpha=step.alpha, beta=step.beta,
                   sigma=step.sigma, x_t=to_uint8(step.x_t), eps_hat=to_uint8(step.eps_hat, EPS_RANGE),
                   x0_hat=to_uint8(step.x0_hat), mean=to_uint8(step.mean), noise=to_uint8(step.noise),
                   solver=getattr(step, "solver", None))

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, p).nbytes for p in PANELS)


def record_every(steps: int, max_frames: int = MAX_FRAMES) -> int:
    """Keep every k-th step so that at most about ``max_frames`` are kept (plus the last)."""
    return max(1, math.ceil(steps / max_frames))
