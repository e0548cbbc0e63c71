"""Noise schedules beta_t, indexed by the paper's t in {0, 1, ..., T}.

Every array has length T + 1 with ``betas[0] = 0`` and ``alpha_bars[0] = 1``,
so ``alpha_bars[t]`` is abar_t of Ho et al. (2020) and x_0 is the data.
Schedules are computed in float64; cast at the point of use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

ScheduleKind = Literal["linear", "cosine"]
SCHEDULE_KINDS: tuple[str, ...] = get_args(ScheduleKind)

T_MIN = 25  # the scaled linear schedule needs T > 20 to keep beta_T < 1
T_MAX = 4000
COSINE_OFFSET = 0.008  # s of Nichol & Dhariwal (2021), eq. 17
MAX_BETA = 0.999  # clipping of Nichol & Dhariwal (2021), below eq. 17


@dataclass(frozen=True)
class Schedule:
    """A noise schedule; every tensor is float64 of shape [T + 1], indexed by t."""

    kind: ScheduleKind  # "linear" or "cosine"
    T: int  # number of diffusion steps
    betas: Tensor  # beta_t, betas[0] = 0
    alphas: Tensor  # alpha_t = 1 - beta_t
    alpha_bars: Tensor  # abar_t = prod_{s<=t} alpha_s, alpha_bars[0] = 1
    sqrt_alpha_bars: Tensor  # sqrt(abar_t): how much of x_0 survives in x_t
    sqrt_one_minus_alpha_bars: Tensor  # sqrt(1 - abar_t): std of the noise in x_t
    snr: Tensor  # SNR_t = abar_t / (1 - abar_t); snr[0] = inf

    @property
    def log_snr(self) -> Tensor:
        """log SNR_t = log abar_t - log(1 - abar_t); log_snr[0] = +inf."""
        return torch.log(self.snr)


def linear_betas(T: int) -> Tensor:
    """Ho et al. (2020), sec. 4: beta from 1e-4 to 0.02 over T = 1000 steps.

    For other T both ends are scaled by 1000 / T, as in Nichol & Dhariwal's
    ``get_named_beta_schedule``. What this keeps, for every T: T * beta_t runs linearly from 0.1 to 20
    (beta_min and beta_max of the VP SDE of Song et al. 2021, "Score-based generative modeling through
    stochastic differential equations"), so the sum of the betas is
    1000 * (1e-4 + 0.02) / 2 = 10.05. What it does not keep is abar_T: since log(1 - beta) < -beta,
    abar_T < exp(-10.05) = 4.3e-5, and the larger betas of a small T push it further below:
    abar_T = 2.4e-7 at T = 25, 2.0e-5 at T = 100, 4.0e-5 at T = 1000, 4.2e-5 at T = 4000.
    Returns beta_1..beta_T, float64 [T].
    """
    scale = 1000.0 / T
    return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)


def cosine_alpha_bar(t: Tensor, T: int, s: float = COSINE_OFFSET) -> Tensor:
    """Nichol & Dhariwal (2021), eq. 17: abar_t = f(t) / f(0),
    f(t) = cos^2(((t / T + s) / (1 + s)) * pi / 2)."""
    def f(u: Tensor) -> Tensor:
        return torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2

    t = torch.as_tensor(t, dtype=torch.float64)
    return f(t) / f(torch.zeros((), dtype=torch.float64))


def cosine_betas(T: int) -> Tensor:
    """Nichol & Dhariwal (2021), eq. 17 and below: beta_t = min(1 - abar_t / abar_{t-1}, 0.999).
    Returns beta_1..beta_T, float64 [T]."""
    t = torch.arange(T + 1, dtype=torch.float64)
    abar = cosine_alpha_bar(t, T)
    return torch.clamp(1 - abar[1:] / abar[:-1], max=MAX_BETA)


def make_schedule(kind: ScheduleKind = "linear", T: int = 1000) -> Schedule:
    """Build the schedule ``kind`` with T steps; arrays indexed by t = 0..T."""
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"unknown schedule kind {kind!r}; expected one of {SCHEDULE_KINDS}")
    if isinstance(T, bool) or not isinstance(T, int) or not T_MIN <= T <= T_MAX:
        raise ValueError(f"T must be an integer from {T_MIN} to {T_MAX}, got {T!r}")
    betas_1_to_T = linear_betas(T) if kind == "linear" else cosine_betas(T)
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas_1_to_T])
    alphas = 1.0 - betas
    alpha_bars = torch.cumprod(alphas, dim=0)
    return Schedule(
        kind=kind,
        T=T,
        betas=betas,
        alphas=alphas,
        alpha_bars=alpha_bars,
        sqrt_alpha_bars=alpha_bars.sqrt(),
        sqrt_one_minus_alpha_bars=(1.0 - alpha_bars).sqrt(),
        snr=alpha_bars / (1.0 - alpha_bars),
    )
