"""Integrating a general ODE dy/dt = F(t, y) from t0 to t1 in torch: the adaptive Dormand-Prince RK5(4) pair
(Dormand & Prince 1980; the "RK45" of scipy's solve_ivp that Song et al. 2021 use for the ODE likelihood) and
fixed-step Heun (the trapezoid of two slopes, second order).

The state y is one tensor [N, ...]: N independent systems integrated on one common grid (the batch of the ODE
likelihood). The adaptive step follows Hairer, Norsett & Wanner (1993), sec. II.4: the error of each row is the
RMS over its components of (y5 - y4) / (atol + rtol max(|y|, |y_new|)), and the step is accepted when the
largest row error is at most 1, so that every row meets the tolerance as if it were solved alone. Time may run
either way (t1 < t0 is allowed). Arithmetic in y's dtype (float64 for the likelihood).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

OdeFn = Callable[[float, Tensor], Tensor]  # F(t, y) -> dy/dt, y's shape
Progress = Callable[[float], None]  # progress(fraction of [t0, t1] done)

# Dormand & Prince (1980), Table 2 (also Hairer et al. 1993, Table 5.2): nodes, stages, 5th- and 4th-order weights.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(b5 - b4 for b5, b4 in zip(_B5, _B4))
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0  # step-size control of Hairer et al. (1993), eq. 4.13


@dataclass(frozen=True)
class DormandPrince:
    """The adaptive RK5(4) pair with its tolerances (Song et al. 2021 use rtol = atol = 1e-5)."""

    rtol: float = 1e-5  # relative tolerance per step
    atol: float = 1e-5  # absolute tolerance per step
    max_steps: int = 10_000  # accepted + rejected steps before giving up


@dataclass(frozen=True)
class FixedHeun:
    """Heun's method on ``steps`` equal steps: 2 evaluations per step, error of order h^2."""

    steps: int = 100


Solver = DormandPrince | FixedHeun


@dataclass(frozen=True)
class OdeSolution:
    """The state at t1 and what it cost."""

    y: Tensor  # y(t1), y0's shape
    nfe: int  # evaluations of F
    steps: int  # accepted steps
    rejected: int  # rejected steps (0 for Heun)


def _row_norm(e: Tensor) -> Tensor:
    """RMS over the components of each row: [N]."""
    return e.reshape(e.shape[0], -1).pow(2).mean(1).sqrt()


def _initial_step(fn: OdeFn, t0: float, y0: Tensor, f0: Tensor, direction: float, rtol: float, atol: float,
                  span: float) -> tuple[float, int]:
    """Hairer et al. (1993), sec. II.4, 'automatic step size control', steps (a)-(f) for order 5; one evaluation."""
    scale = atol + rtol * y0.abs()
    d0, d1 = float(_row_norm(y0 / scale).max()), float(_row_norm(f0 / scale).max())
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = fn(t0 + direction * h0, y0 + direction * h0 * f0)
    d2 = float(_row_norm((f1 - f0) / scale).max()) / h0
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 5)
    return min(100 * h0, h1, span), 1


def dormand_prince(fn: OdeFn, y0: Tensor, t0: float, t1: float, solver: DormandPrince = DormandPrince(), *,
                   progress: Progress | None = None) -> OdeSolution:
    """y(t1) for dy/dt = fn(t, y), y(t0) = y0, by the adaptive Dormand-Prince pair (7 stages, the last one reused
    as the first of the next step: 6 evaluations per step). Raises RuntimeError after ``max_steps`` steps."""
    span = abs(t1 - t0)
    if span == 0:
        return OdeSolution(y=y0, nfe=0, steps=0, rejected=0)
    direction = 1.0 if t1 > t0 else -1.0
    t, y = float(t0), y0
    k1 = fn(t, y)
    h, nfe = _initial_step(fn, t, y, k1, direction, solver.rtol, solver.atol, span)
    nfe += 1
    steps = rejected = 0
    while direction * (t1 - t) > 1e-12 * span:
        if steps + rejected >= solver.max_steps:
            raise RuntimeError(f"the ODE solver took {solver.max_steps} steps and reached t = {t} of [{t0}, {t1}]")
        h = min(h, abs(t1 - t))
        dt = direction * h
        ks = [k1]
        for i in range(1, 7):
            y_stage = y + dt * sum(a * k for a, k in zip(_A[i], ks) if a != 0.0)
            ks.append(fn(t + _C[i] * dt, y_stage))
        nfe += 6
        y_new = y + dt * sum(b * k for b, k in zip(_B5, ks) if b != 0.0)  # = y_stage of stage 7 (FSAL)
        err = dt * sum(e * k for e, k in zip(_E, ks) if e != 0.0)
        scale = solver.atol + solver.rtol * torch.maximum(y.abs(), y_new.abs())
        error = float(_row_norm(err / scale).max())
        if error <= 1.0:
            t, y, k1 = (t1 if abs(t1 - (t + dt)) < 1e-12 * span else t + dt), y_new, ks[6]
            steps += 1
            factor = MAX_FACTOR if error == 0 else min(MAX_FACTOR, SAFETY * error ** (-1 / 5))
            if progress is not None:
                progress(min(1.0, abs(t - t0) / span))
        else:
            rejected += 1
            factor = max(MIN_FACTOR, SAFETY * error ** (-1 / 5))
        h = h * max(MIN_FACTOR, factor)
    return OdeSolution(y=y, nfe=nfe, steps=steps, rejected=rejected)


def heun(fn: OdeFn, y0: Tensor, t0: float, t1: float, solver: FixedHeun = FixedHeun(), *,
         progress: Progress | None = None) -> OdeSolution:
    """y(t1) by ``solver.steps`` equal steps of Heun's method: y' = y + h F(t, y) (Euler), then
    y_next = y + h (F(t, y) + F(t + h, y')) / 2."""
    if solver.steps < 1:
        raise ValueError(f"steps must be at least 1, got {solver.steps}")
    times = torch.linspace(t0, t1, solver.steps + 1, dtype=torch.float64).tolist()
    y = y0
    for i in range(solver.steps):
        h = times[i + 1] - times[i]
        k1 = fn(times[i], y)
        k2 = fn(times[i + 1], y + h * k1)
        y = y + 0.5 * h * (k1 + k2)
        if progress is not None:
            progress((i + 1) / solver.steps)
    return OdeSolution(y=y, nfe=2 * solver.steps, steps=solver.steps, rejected=0)


def solve(fn: OdeFn, y0: Tensor, t0: float, t1: float, solver: Solver, *,
          progress: Progress | None = None) -> OdeSolution:
    """Integrate with ``solver``: a DormandPrince (adaptive) or a FixedHeun (fixed steps)."""
    if isinstance(solver, DormandPrince):
        return dormand_prince(fn, y0, t0, t1, solver, progress=progress)
    if isinstance(solver, FixedHeun):
        return heun(fn, y0, t0, t1, solver, progress=progress)
    raise TypeError(f"solver must be a DormandPrince or a FixedHeun, got {solver!r}")
