"""Which timesteps a reverse process with fewer than T steps visits.

Two spacings, both giving ``steps`` integers t_start = tau_S > ... > tau_1 >= 1; the last step
goes from tau_1 to x_0 (t = 0):
- "linear": Song et al. (2021), appendix D.2, tau_i = floor(i t_start / S), evenly spaced in t.
- "logsnr": evenly spaced in lambda = log(alpha_t / sigma_t) = 1/2 log SNR_t (the half-log-SNR of
  Lu et al. 2022, DPM-Solver, sec. 3.3, and DPM-Solver++, sec. 5; alpha_t = sqrt(abar_t),
  sigma_t = sqrt(1 - abar_t)), which their code recommends for low-resolution images in pixel space
  (time-uniform for high-resolution or latent models). S + 1 points lambda_0 < ... < lambda_S
  run evenly from lambda(t_start) to lambda(1) (the least noisy timestep); the first S are used and the
  step to x_0 takes the place of the last interval (as t = 0 does in the linear grid, whose
  lambda is +infinity). Each point is mapped to the integer t whose lambda is nearest; where two
  would coincide (near t = T the cosine schedule's lambda falls steeply) the later one moves to the
  next free t, so the sequence stays strictly decreasing and starts at t_start.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from ..process.schedules import Schedule

Spacing = Literal["linear", "logsnr"]
SPACINGS: tuple[str, ...] = ("linear", "logsnr")


def half_log_snr(schedule: Schedule) -> torch.Tensor:
    """lambda_t = log(alpha_t / sigma_t) = 1/2 log(abar_t / (1 - abar_t)) (Lu et al. 2022, DPM-Solver,
    sec. 2), float64 [T + 1]; lambda_0 = +inf (abar_0 = 1)."""
    return 0.5 * schedule.log_snr


def _check(T: int, steps: int, t_start: int | None) -> int:
    t_start = T if t_start is None else t_start
    if not 1 <= t_start <= T:
        raise ValueError(f"t_start must lie in 1..{T}, got {t_start}")
    if not 1 <= steps <= t_start:
        raise ValueError(f"steps must lie in 1..{t_start}, got {steps}")
    return t_start


def timesteps(
    T: int | Schedule, steps: int, t_start: int | None = None, spacing: Spacing = "linear",
    schedule: Schedule | None = None,
) -> list[int]:
    """Decreasing timesteps tau_S > ... > tau_1 >= 1 to visit, the last step going to x_0.

    "linear" (default): Song et al. (2021), appendix D.2, linear sub-sequence tau_i = floor(c i), with
    c = t_start / S so that tau_S = t_start (T by default): the first step starts
    from exactly the x_T (or x_{t_start}) that was drawn. steps = t_start gives every t.
    "logsnr": evenly spaced in lambda = 1/2 log SNR (module docstring); needs the schedule, given as
    ``schedule=`` or in place of T (``timesteps(schedule, 10, spacing="logsnr")``)."""
    if isinstance(T, Schedule):
        schedule, T = T, T.T
    t_start = _check(T, steps, t_start)
    if spacing == "linear":
        return [math.floor(i * t_start / steps) for i in range(steps, 0, -1)]
    if spacing != "logsnr":
        raise ValueError(f"unknown spacing {spacing!r}; expected one of {SPACINGS}")
    if schedule is None:
        raise ValueError("spacing='logsnr' needs the schedule")
    if schedule.T != T:
        raise ValueError(f"the schedule has T = {schedule.T}, not {T}")
    lam = half_log_snr(schedule)[1:t_start + 1]  # lambda_1 .. lambda_{t_start}, decreasing in t
    lo, hi = float(lam[-1]), float(lam[0])
    targets = torch.tensor([lo + (hi - lo) * i / steps for i in range(steps)], dtype=torch.float64)
    # nearest integer t for each target: lambda decreases in t, so search on -lambda (increasing)
    neg = -lam
    idx = torch.searchsorted(neg, -targets).clamp(1, len(lam) - 1)
    nearer_left = (neg[idx - 1] - (-targets)).abs() <= (neg[idx] - (-targets)).abs()
    t_near = (torch.where(nearer_left, idx - 1, idx) + 1).tolist()  # back to t (lam[0] is t = 1)
    seq = [t_start]
    for i in range(1, steps):  # keep t strictly decreasing and leave room below for the rest
        seq.append(min(max(t_near[i], steps - i), seq[-1] - 1))
    return seq
