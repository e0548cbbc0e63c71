"""Paths of the samplers along the probability-flow ODE, in the variable lambda = log(alpha_t / sigma_t).

With alpha_t = sqrt(abar_t) and sigma_t = sqrt(1 - abar_t) (so alpha^2 + sigma^2 = 1), Lu et al. (2022a,
DPM-Solver, sec. 3.1) change the time variable of the probability-flow ODE (Song et al. 2021b, eq. 13) to
lambda_t = log(alpha_t / sigma_t), half the log signal-to-noise ratio, which grows from lambda_T (pure
noise) to +inf at t = 0. In data-prediction form its exact solution from (lambda_s, x_s) is
(Lu et al. 2022b, DPM-Solver++, proposition 4.1)

    x_lambda = sigma_lambda / sigma_s x_s + sigma_lambda int_{lambda_s}^{lambda} e^l x0_hat(x_l, l) dl.

Holding x0_hat fixed at some prediction P over a step gives the first-order solver

    x_lambda = sigma_lambda / sigma_s x_s + alpha_lambda (1 - e^{-(lambda - lambda_s)}) P,

which at the step's end is DDIM with eta = 0 (Song et al. 2021a, eq. 12; Lu et al. 2022a, sec. 4.1):
DDIM is the first-order exponential integrator in lambda (x0_hat held fixed, the rest exact), not Euler's
method on this ODE in lambda; it is Euler's method for x / sigma against e^lambda, d(x / sigma) / d(e^lambda)
= x0_hat (Song et al. 2021a, sec. 4.3, in eps form). DPM-Solver++(2M) takes the same step with
P = D, a combination of the last two predictions (Lu et al. 2022b, algorithm 2). Everything here is
float64 numpy: these are the curves and numbers the "How many steps?" page draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..process.schedules import Schedule
from ..samplers import (
    DpmSolverCoefficients,
    Spacing,
    dpm_solver_coefficients,
    dpm_solver_order,
    half_log_snr,
    step_coefficients,
    timesteps,
)


def lambdas(schedule: Schedule, t: Sequence[int] | np.ndarray | int) -> np.ndarray:
    """lambda_t = log(alpha_t / sigma_t) (samplers.half_log_snr) at the timesteps t; +inf at t = 0.
    float64, t's shape."""
    t = np.asarray(t, dtype=np.int64)
    if t.size and (t.min() < 0 or t.max() > schedule.T):
        raise ValueError(f"t must lie in 0..{schedule.T}")
    return half_log_snr(schedule).numpy()[t]


def alpha_sigma(lam: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """alpha and sigma of a variance-preserving process at lambda: alpha^2 + sigma^2 = 1 and
    alpha / sigma = e^lambda, so alpha^2 = sigmoid(2 lambda), sigma^2 = sigmoid(-2 lambda).
    lambda = +inf (t = 0) gives alpha = 1, sigma = 0."""
    lam = np.asarray(lam, dtype=np.float64)
    with np.errstate(over="ignore"):  # exp(+large) = inf gives the right limit 0 below
        return np.sqrt(1 / (1 + np.exp(-2 * lam))), np.sqrt(1 / (1 + np.exp(2 * lam)))


def first_order_path(x_s: np.ndarray, prediction: np.ndarray, lam_s: float, lam: np.ndarray) -> np.ndarray:
    """x at each lambda in ``lam`` (shape [L]) of the step that leaves x_s at lambda_s holding the clean-image
    prediction fixed: x = sigma/sigma_s x_s + alpha (1 - e^{-(lambda - lambda_s)}) P (module docstring).
    x_s, prediction: [...] (any shape, e.g. a few pixels); returns [L, ...]. At lambda = +inf it is P."""
    lam = np.asarray(lam, dtype=np.float64)
    alpha, sigma = alpha_sigma(lam)
    _, sigma_s = alpha_sigma(lam_s)
    shape = (len(lam),) + (1,) * np.ndim(x_s)
    with np.errstate(over="ignore"):
        decay = np.exp(-(lam - lam_s))
    return (sigma / sigma_s).reshape(shape) * x_s + (alpha * (1 - decay)).reshape(shape) * prediction


def prediction_used(x_s: np.ndarray, x_next: np.ndarray, lam_s: float, lam_next: float) -> np.ndarray:
    """The clean-image prediction P with which a first-order-form step went from x_s (lambda_s) to x_next
    (lambda_next): ``first_order_path`` solved for P. x0_hat for a DDIM step (eta = 0, after clipping),
    D for a DPM-Solver++(2M) step; for a noisy step (DDPM) it also holds the added noise."""
    if not lam_next > lam_s:
        raise ValueError(f"a reverse step goes to a larger lambda, got {lam_s} -> {lam_next}")
    alpha, sigma = alpha_sigma(lam_next)
    _, sigma_s = alpha_sigma(lam_s)
    with np.errstate(over="ignore"):
        weight = alpha * (1 - np.exp(-(lam_next - lam_s)))
    return (np.asarray(x_next, np.float64) - sigma / sigma_s * np.asarray(x_s, np.float64)) / weight


def ddim_in_x0_form(schedule: Schedule, t: int, t_prev: int) -> tuple[float, float]:
    """DDIM's step (Song et al. 2021a, eq. 12, eta = 0) written with x0_hat alone, as x_prev = a x_t + b x0_hat:
    substituting eps_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) gives a = sqrt(1 - abar_prev) /
    sqrt(1 - abar_t) and b = sqrt(abar_prev) - a sqrt(abar_t). The first-order solver's sigma_prev / sigma_t
    and alpha_prev (1 - e^{-h}) (samplers.dpm_solver_coefficients) are these two numbers."""
    c = step_coefficients(schedule, t, t_prev, 0.0)
    a = c.ddim_coef_eps / c.sqrt_one_minus_alpha_bar_t
    return a, c.ddim_coef_x0 - a * c.sqrt_alpha_bar_t


def dpm_solver_plan(schedule: Schedule, steps: int, spacing: Spacing = "linear",
                    lower_order_final: bool = False) -> list[DpmSolverCoefficients]:
    """The coefficients of every step of a DPM-Solver++(2M) run of ``steps`` steps, known before it runs:
    the timesteps (samplers.timesteps), each step's order (samplers.dpm_solver_order) and, on second-order
    steps, the previous step's timestep as t_last (Lu et al. 2022, algorithm 2)."""
    ts = timesteps(schedule, steps, spacing=spacing)
    plan = []
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else 0
        order = dpm_solver_order(i, len(ts), t_prev, lower_order_final=lower_order_final)
        plan.append(dpm_solver_coefficients(schedule, t, t_prev, ts[i - 1] if order == 2 else None))
    return plan


@dataclass(frozen=True)
class PixelPath:
    """A run of the reverse process seen through a few pixels of one image, against lambda."""

    t: np.ndarray  # int64 [K + 1]: the timesteps visited, from the start to 0
    lam: np.ndarray  # float64 [K + 1]: lambda of each (the last is +inf: x_0)
    x: np.ndarray  # float64 [K + 1, P]: the pixels' values at each point
    x0_hat: np.ndarray  # float64 [K, P]: the network's clean-image prediction at each step's start
    used: np.ndarray  # float64 [K, P]: the prediction each step moved with (prediction_used)


def pixel_path(schedule: Schedule, t: Sequence[int], x: np.ndarray, x0_hat: np.ndarray) -> PixelPath:
    """The path of P pixels through a run of K steps: ``t`` [K + 1] the timesteps from the start to 0,
    ``x`` [K + 1, P] the pixels' values at them (x_T ... x_0), ``x0_hat`` [K, P] the prediction of each step."""
    t = np.asarray(t, dtype=np.int64)
    x, x0_hat = np.asarray(x, np.float64), np.asarray(x0_hat, np.float64)
    k = len(t) - 1
    if k < 1 or t[-1] != 0 or np.any(np.diff(t) >= 0) or x.shape[0] != k + 1 or x0_hat.shape != (k, *x.shape[1:]):
        raise ValueError(f"need decreasing t down to 0 [K + 1], x [K + 1, P], x0_hat [K, P]; got {t.shape}, "
                         f"{x.shape}, {x0_hat.shape}")
    lam = lambdas(schedule, t)
    used = np.stack([prediction_used(x[i], x[i + 1], lam[i], lam[i + 1]) for i in range(k)])
    return PixelPath(t=t, lam=lam, x=x, x0_hat=x0_hat, used=used)


def step_curves(path: PixelPath, lam_end: float, points: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The curve of every step, sampled at ``points`` lambdas from its start to its end, the last step
    ending at ``lam_end`` (a finite stand-in for lambda = +inf: there sigma ~ e^{-lam_end}, and the value
    drawn is x_0 itself). Returns lambda [K, points], the curve with the prediction the step used
    [K, points, P], and the first-order (DDIM) curve from the same start with the network's own x0_hat [K, points, P]:
    where they differ, the step corrected its prediction (DPM-Solver++(2M)'s second order)."""
    if not lam_end > path.lam[-2]:
        raise ValueError(f"lam_end must exceed the last finite lambda {path.lam[-2]}")
    k = len(path.t) - 1
    lams = np.stack([np.linspace(path.lam[i], min(path.lam[i + 1], lam_end), points) for i in range(k)])
    used = np.stack([first_order_path(path.x[i], path.used[i], path.lam[i], lams[i]) for i in range(k)])
    euler = np.stack([first_order_path(path.x[i], path.x0_hat[i], path.lam[i], lams[i]) for i in range(k)])
    if np.isinf(path.lam[-1]):  # draw the true end point x_0 (and the first-order step's) at lam_end
        used[-1, -1], euler[-1, -1] = path.x[-1], path.x0_hat[-1]
    return lams, used, euler


def pick_pixels(reference: np.ndarray, others: Sequence[np.ndarray] = ()) -> list[tuple[int, int]]:
    """Three pixels (row, col) of a [H, W] image worth following: the brightest pixel of ``reference``
    (on the stroke), the one closest to grey 0 (the stroke's edge), and the one where ``others``
    (images [H, W] from other runs) differ most from it (or the darkest, if none). Distinct pixels."""
    ref = np.asarray(reference, np.float64)
    if ref.ndim != 2:
        raise ValueError(f"reference must be [H, W], got {ref.shape}")
    scores = [ref, -np.abs(ref)]
    scores.append(sum((np.abs(np.asarray(o, np.float64) - ref) for o in others), np.zeros_like(ref))
                  if len(others) else -ref)
    picked: list[tuple[int, int]] = []
    for score in scores:
        order = np.argsort(-score.ravel(), kind="stable")
        idx = next(int(i) for i in order if divmod(int(i), ref.shape[1]) not in picked)
        picked.append(divmod(idx, ref.shape[1]))
    return picked
