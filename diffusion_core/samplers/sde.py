"""Euler-Maruyama for the forward and reverse-time SDEs of a Gaussian path, and the Langevin corrector of
predictor-corrector sampling (Song et al. 2021, sec. 4.2 and algorithm 2; the coefficients are process/sde.py's).

Forward, t -> t + h (h > 0):      x' = x + f(t) x h + g(t) sqrt(h) z
Reverse, t -> t - h (h > 0):      x' = x - [f x - g^2 s(x, t)] h + g(t) sqrt(h) z      (Song et al. 2021, eq. 6)
Langevin corrector at time t:     x' = x + e s(x, t) + sqrt(2 e) z,   e = 2 a (r |z| / |s|)^2

with z ~ N(0, I) drawn on the CPU with the caller's generator, r the target signal-to-noise ratio
(Song et al. 2021, app. G, algorithm 5: r = 0.16) and a = alpha(t)^2 / alpha(t_next)^2, the alpha_i = 1 - beta_i of
their VP corrector. As in their code (score_sde's LangevinCorrector), |z| and |s| are the norms per sample averaged
over the batch: one step size for the batch. As there, the corrector runs at each grid time before the predictor's
step, and the last predictor step adds no noise (their "noise removal": the mean of the last step).

The ODE with the same marginals (the PF-ODE, process.sde.pf_ode_drift) is integrated by samplers/flow.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from ..process.paths import GaussianPath
from ..process.sde import PathEpsFn, diffusion_squared, drift_coefficient, reverse_drift, score_fn
from .flow import check_times

LANGEVIN_SNR = 0.16  # r of Song et al. (2021), the default of their configs (sampling.snr)


@dataclass(frozen=True)
class LangevinCorrector:
    """M Langevin steps at each grid time (Song et al. 2021, algorithm 5), each one score evaluation."""

    snr: float = LANGEVIN_SNR  # target signal-to-noise ratio r
    steps: int = 1  # M


@dataclass(frozen=True)
class SdeStep:
    """One step of a run, from t to t_next."""

    index: int  # 0-based
    t: float
    t_next: float
    x: Tensor  # the state at t (after the corrector, if any)
    x_next: Tensor  # the state at t_next
    calls: int  # score evaluations so far (predictor and corrector)


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.dtype).to(x.device)


def _rows(t: Tensor, x: Tensor) -> Tensor:
    return t.reshape(-1).expand(x.shape[0])


def increasing_times(steps: int, t_start: float = 0.0, t_end: float = 1.0) -> Tensor:
    """``steps`` equal steps from t_start up to t_end: float64 [steps + 1], increasing (the forward SDE's grid)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 <= t_start < t_end <= 1.0:
        raise ValueError(f"need 0 <= t_start < t_end <= 1, got t_start={t_start}, t_end={t_end}")
    return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


def forward_sde(x0: Tensor, path: GaussianPath, times: Tensor, *, generator: torch.Generator | None = None,
                noise: Tensor | None = None) -> Iterator[SdeStep]:
    """Euler-Maruyama for dx = f x dt + g dW over the increasing grid ``times`` from x0 at times[0]. ``noise``
    [K, N, ...] gives the z of each step (to run a chain beside it with the same draws), else they are drawn."""
    times = check_times(torch.as_tensor(times, dtype=torch.float64).flip(0)).flip(0)  # increasing, in [0, 1]
    x = x0
    for i in range(len(times) - 1):
        t, t_next = times[i], times[i + 1]
        h = float(t_next - t)
        f, g2 = drift_coefficient(path, t), diffusion_squared(path, t)
        z = noise[i] if noise is not None else _noise(x, generator)
        x_next = x + float(f) * h * x + math.sqrt(float(g2) * h) * z.to(x.dtype)
        yield SdeStep(index=i, t=float(t), t_next=float(t_next), x=x, x_next=x_next, calls=0)
        x = x_next


def langevin_step(score: Tensor, x: Tensor, z: Tensor, snr: float, a: float) -> Tensor:
    """One corrector step x + e s + sqrt(2 e) z with e = 2 a (r |z| / |s|)^2, norms per sample averaged over the
    batch (score_sde's LangevinCorrector)."""
    z_norm = z.reshape(z.shape[0], -1).norm(dim=1).mean()
    s_norm = score.reshape(score.shape[0], -1).norm(dim=1).mean().clamp(min=1e-30)
    e = 2 * a * (snr * z_norm / s_norm) ** 2
    return x + e * score + torch.sqrt(2 * e) * z


def reverse_sde(eps_fn: PathEpsFn, x: Tensor, path: GaussianPath, times: Tensor, *,
                generator: torch.Generator | None = None, corrector: LangevinCorrector | None = None,
                noise_last: bool = False) -> Iterator[SdeStep]:
    """Euler-Maruyama for the reverse-time SDE over the decreasing grid ``times`` from x at times[0], driven by the
    noise predictor eps_fn(x_t, t) in the path's time; with ``corrector``, M Langevin steps at each grid time before
    the step (predictor-corrector, Song et al. 2021, algorithm 2). The last step adds no noise unless
    ``noise_last``. Score evaluations: K (1 + M) for K steps."""
    times = check_times(times)
    drift, score = reverse_drift(eps_fn, path), score_fn(eps_fn, path)
    calls, last = 0, len(times) - 2
    for i in range(len(times) - 1):
        t, t_next = times[i], times[i + 1]
        if corrector is not None:
            a = float(path.alpha(t) ** 2 / path.alpha(t_next) ** 2)
            for _ in range(corrector.steps):
                x = langevin_step(score(x, _rows(t, x)), x, _noise(x, generator), corrector.snr, a)
                calls += 1
        h = float(t - t_next)
        x_next = x - h * drift(x, _rows(t, x))
        calls += 1
        if i < last or noise_last:
            g = math.sqrt(float(diffusion_squared(path, t)) * h)
            x_next = x_next + g * _noise(x, generator)
        yield SdeStep(index=i, t=float(t), t_next=float(t_next), x=x, x_next=x_next, calls=calls)
        x = x_next


def run_reverse_sde(eps_fn: PathEpsFn, x: Tensor, path: GaussianPath, times: Tensor, **kwargs) -> Tensor:
    """The end state of ``reverse_sde``: x at times[-1]."""
    for step in reverse_sde(eps_fn, x, path, times, **kwargs):
        x = step.x_next
    return x


def score_calls(steps: int, corrector: LangevinCorrector | None = None) -> int:
    """Score (network) evaluations of ``steps`` reverse steps: 1 + M each."""
    return steps * (1 + (corrector.steps if corrector is not None else 0))

