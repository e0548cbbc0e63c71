"""Gaussian probability paths in continuous time: x_t = alpha(t) x_0 + sigma(t) eps, t in [0, 1].

**t = 0 is data and t = 1 is noise**, the direction of the rest of the course (Ho et al.'s chain runs
x_0 -> x_T) and of Esser et al. (2024). Lipman et al. (2023) and Liu et al. (2023) run time the other
way (t = 0 noise, t = 1 data): their velocity is minus ours.

Three paths and the discrete schedules of pages 1-8 as a fourth:
- ``rectified_flow``: alpha = 1 - t, sigma = t (Liu et al. 2023; Lipman et al. 2023 with sigma_min = 0);
- ``vp_cosine``: alpha = sqrt(abar(t)), sigma = sqrt(1 - abar(t)), abar the cosine schedule of
  Nichol & Dhariwal (2021), eq. 17, in continuous time;
- ``vp_linear``: the VP-SDE of Song et al. (2021), eq. 11, with beta(t) = beta_min + t (beta_max - beta_min),
  the continuous limit of Ho et al.'s linear betas (beta_min = 0.1, beta_max = 20);
- ``from_schedule``: a discrete schedule, exact at t = k / T (see there how it interpolates).

Every method takes and returns float64 tensors of any shape (t is converted with ``torch.as_tensor``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch import Tensor

from .schedules import COSINE_OFFSET, Schedule

BETA_MIN, BETA_MAX = 0.1, 20.0  # the VP-SDE of Song et al. (2021), sec. 3.4 / app. C


def as_time(t: Tensor | float) -> Tensor:
    """t as a float64 tensor, checked to lie in [0, 1]."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if not bool(((t >= 0) & (t <= 1)).all()):
        raise ValueError(f"continuous time must lie in [0, 1] (0 = data, 1 = noise), got {t}")
    return t


@dataclass(frozen=True)
class GaussianPath:
    """x_t = alpha(t) x_0 + sigma(t) eps with its time derivatives; build one with the constructors below."""

    name: str  # "rectified_flow", "vp_cosine", "vp_linear", "linear_T1000", ...
    _alpha: Callable[[Tensor], Tensor] = field(repr=False)
    _sigma: Callable[[Tensor], Tensor] = field(repr=False)
    _d_alpha: Callable[[Tensor], Tensor] = field(repr=False)
    _d_sigma: Callable[[Tensor], Tensor] = field(repr=False)

    def alpha(self, t: Tensor | float) -> Tensor:
        """alpha(t): how much of x_0 is left in x_t."""
        return self._alpha(as_time(t))

    def sigma(self, t: Tensor | float) -> Tensor:
        """sigma(t): the standard deviation of the noise in x_t."""
        return self._sigma(as_time(t))

    def d_alpha(self, t: Tensor | float) -> Tensor:
        """alpha'(t) = d alpha / dt."""
        return self._d_alpha(as_time(t))

    def d_sigma(self, t: Tensor | float) -> Tensor:
        """sigma'(t) = d sigma / dt."""
        return self._d_sigma(as_time(t))

    def log_snr(self, t: Tensor | float) -> Tensor:
        """lambda(t) = log(alpha^2 / sigma^2) (Kingma et al. 2021): +inf at t = 0, falls with t."""
        t = as_time(t)
        return 2 * (torch.log(self._alpha(t)) - torch.log(self._sigma(t)))

    def t_at_log_snr(self, log_snr: Tensor | float, iterations: int = 60) -> Tensor:
        """The t in [0, 1] where log_snr(t) equals ``log_snr`` (the path's SNR falls strictly with t), by
        bisection in float64: 60 halvings take [0, 1] below 1e-18, so the result is exact to float64."""
        target = torch.as_tensor(log_snr, dtype=torch.float64)
        lo, hi = torch.zeros_like(target), torch.ones_like(target)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            above = self.log_snr(mid) > target  # SNR still too high: the answer lies later
            lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
        t = (lo + hi) / 2
        return torch.where(target == math.inf, 0.0, torch.where(target == -math.inf, 1.0, t))  # the two ends exactly

    def sample(self, x0: Tensor, t: Tensor | float, noise: Tensor) -> Tensor:
        """x_t = alpha(t) x_0 + sigma(t) eps, t a number or one per row of x0 [N, ...]."""
        return expand(self.alpha(t), x0) * x0 + expand(self.sigma(t), x0) * noise


def expand(c: Tensor, x: Tensor) -> Tensor:
    """A coefficient per row ([N] or a number) broadcast against x [N, ...], in x's dtype and device."""
    c = torch.as_tensor(c, dtype=torch.float64)
    if c.ndim == 1 and x.ndim > 1:
        c = c.reshape(-1, *([1] * (x.ndim - 1)))
    return c.to(dtype=x.dtype, device=x.device)


# ------------------------------------------------------------------ the paths
def rectified_flow() -> GaussianPath:
    """alpha = 1 - t, sigma = t: the straight line from data to noise (Liu et al. 2023; Esser et al. 2024)."""
    return GaussianPath("rectified_flow", lambda t: 1 - t, lambda t: t.clone(),
                        lambda t: -torch.ones_like(t), lambda t: torch.ones_like(t))


def _vp(name: str, abar: Callable[[Tensor], Tensor], d_abar: Callable[[Tensor], Tensor]) -> GaussianPath:
    """A variance-preserving path (alpha^2 + sigma^2 = 1) from abar(t) and its derivative:
    alpha' = abar' / (2 alpha), sigma' = -abar' / (2 sigma)."""
    return GaussianPath(name, lambda t: abar(t).sqrt(), lambda t: (1 - abar(t)).sqrt(),
                        lambda t: d_abar(t) / (2 * abar(t).sqrt()), lambda t: -d_abar(t) / (2 * (1 - abar(t)).sqrt()))


def vp_cosine(s: float = COSINE_OFFSET) -> GaussianPath:
    """Nichol & Dhariwal (2021), eq. 17 in continuous time: abar(t) = f(t) / f(0),
    f(t) = cos^2((t + s) / (1 + s) pi / 2). Unlike the discrete schedule, nothing is clipped: abar(1) = 0."""
    def angle(t: Tensor) -> Tensor:
        return (t + s) / (1 + s) * math.pi / 2

    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    # abar(1) = cos^2(pi / 2) is 3.7e-33 in float64, not 0: the end of the path is set to exactly 0.
    abar = lambda t: torch.where(t == 1, 0.0, torch.cos(angle(t)) ** 2 / f0)  # noqa: E731
    d_abar = lambda t: -torch.sin(2 * angle(t)) * math.pi / (2 * (1 + s)) / f0  # noqa: E731
    return _vp("vp_cosine", abar, d_abar)


def vp_linear(beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> GaussianPath:
    """The VP-SDE of Song et al. (2021), eq. 11 and app. C: beta(t) = beta_min + t (beta_max - beta_min),
    abar(t) = exp(-int_0^t beta) = exp(-beta_min t - (beta_max - beta_min) t^2 / 2); abar' = -beta(t) abar."""
    integral = lambda t: beta_min * t + 0.5 * (beta_max - beta_min) * t**2  # noqa: E731
    abar = lambda t: torch.exp(-integral(t))  # noqa: E731
    return _vp("vp_linear", abar, lambda t: -(beta_min + t * (beta_max - beta_min)) * abar(t))


def from_schedule(schedule: Schedule) -> GaussianPath:
    """The discrete schedule as a path, exact at t = k / T: alpha(k / T) = sqrt(abar_k), sigma = sqrt(1 - abar_k).

    Between the grid points log abar is linear in t (a constant beta per step in continuous time), so
    abar(t) = abar_{k-1} (abar_k / abar_{k-1})^u with u = T t - (k - 1): monotone, and exact at every k.
    The derivatives are those of that interpolation: d log abar / dt = T log(abar_k / abar_{k-1}) on step k
    (at a grid point t = k / T, the step that ends there)."""
    T = schedule.T
    log_abar = torch.log(schedule.alpha_bars)  # [T + 1], log_abar[0] = 0

    def step_and_fraction(t: Tensor) -> tuple[Tensor, Tensor]:
        k = torch.clamp(torch.ceil(t * T), 1, T).long()  # t in ((k - 1) / T, k / T] lies on step k
        return k, t * T - (k - 1)

    def abar(t: Tensor) -> Tensor:
        k, u = step_and_fraction(t)
        return torch.exp(log_abar[k - 1] + u * (log_abar[k] - log_abar[k - 1]))

    def d_abar(t: Tensor) -> Tensor:
        k, _ = step_and_fraction(t)
        return T * (log_abar[k] - log_abar[k - 1]) * abar(t)

    return _vp(f"{schedule.kind}_T{T}", abar, d_abar)


# ------------------------------------------------------------------ one prediction, five faces
Prediction = Literal["eps", "x0", "score", "v", "velocity"]
PREDICTIONS: tuple[str, ...] = get_args(Prediction)


class UndefinedConversion(ValueError):
    """A conversion divides by a coefficient that is zero (or infinite) at this t: alpha = 0 at the noise
    end of a VP path, sigma = 0 at the data end, alpha sigma' - sigma alpha' at neither end of a sane path."""


def _divide(numerator: Tensor, denominator: Tensor, what: str) -> Tensor:
    if not bool(torch.isfinite(denominator).all()) or bool((denominator == 0).any()):
        raise UndefinedConversion(f"the conversion divides by {what}, which is 0 or not finite at this t")
    return numerator / denominator


def convert(pred: Tensor, *, source: Prediction, target: Prediction, x_t: Tensor, t: Tensor | float,
            path: GaussianPath) -> Tensor:
    """Turn one prediction at (x_t, t) into another, for x_t = alpha x_0 + sigma eps:

    - eps and x0:  x0_hat = (x_t - sigma eps_hat) / alpha (Ho et al. 2020, eq. 15, with alpha = sqrt(abar));
    - score:       grad log p_t(x_t) = -eps_hat / sigma (Tweedie; Song et al. 2021, eq. 7 with Vincent 2011);
    - v:           v = alpha eps - sigma x0 (Salimans & Ho 2022, sec. 4; diffusers' ``get_velocity``);
    - velocity:    u = alpha' x0 + sigma' eps, the time derivative of the path; with the posterior means
      E[x0 | x_t], E[eps | x_t] plugged in, the marginal velocity of the flow ODE dx/dt = u (Lipman et al. 2023).

    The source is first solved for the pair (x0_hat, eps_hat) that it fixes together with x_t: v gives
    x0 = (alpha x_t - sigma v) / (alpha^2 + sigma^2), eps = (sigma x_t + alpha v) / (alpha^2 + sigma^2);
    the velocity gives x0 = (sigma' x_t - sigma u) / D, eps = (alpha u - alpha' x_t) / D, D = alpha sigma' - sigma alpha'.
    Only what the target needs is computed, so e.g. eps -> score never divides by alpha. Raises
    UndefinedConversion where a needed coefficient is 0 or infinite (sigma = 0 at t = 0, alpha = 0 at the end of
    a VP path), never a silent inf. Arithmetic in the dtype of ``pred`` (exact round trips in float64)."""
    for name in (source, target):
        if name not in PREDICTIONS:
            raise ValueError(f"unknown prediction {name!r}; expected one of {PREDICTIONS}")
    t = as_time(t)
    a, s = expand(path.alpha(t), pred), expand(path.sigma(t), pred)
    x_t = x_t.to(pred.dtype)
    derivatives = source == "velocity" or target == "velocity"
    if derivatives:
        da, ds = expand(path.d_alpha(t), pred), expand(path.d_sigma(t), pred)
    if source == target:
        return pred

    def eps() -> Tensor:
        if source == "eps":
            return pred
        if source == "x0":
            return _divide(x_t - a * pred, s, "sigma")
        if source == "score":
            return -s * pred
        if source == "v":
            return (s * x_t + a * pred) / (a**2 + s**2)
        return _divide(a * pred - da * x_t, a * ds - s * da, "alpha sigma' - sigma alpha'")

    def x0() -> Tensor:
        if source == "x0":
            return pred
        if source == "eps":
            return _divide(x_t - s * pred, a, "alpha")
        if source == "score":
            return _divide(x_t + s**2 * pred, a, "alpha")
        if source == "v":
            return (a * x_t - s * pred) / (a**2 + s**2)
        return _divide(ds * x_t - s * pred, a * ds - s * da, "alpha sigma' - sigma alpha'")

    if target == "eps":
        return eps()
    if target == "x0":
        return x0()
    if target == "score":
        return _divide(-eps(), s, "sigma")
    if target == "v":
        return a * eps() - s * x0()
    return da * x0() + ds * eps()
