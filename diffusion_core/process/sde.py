"""The stochastic differential equation behind a Gaussian path, its reverse in time, and its probability-flow ODE.

Time runs t = 0 (data) -> t = 1 (noise), as in paths.py. For x_t = alpha(t) x_0 + sigma(t) eps the forward SDE

    dx = f(t) x dt + g(t) dW,   f = alpha' / alpha,   g^2 = 2 sigma sigma' - 2 (alpha' / alpha) sigma^2

has the marginals q(x_t | x_0) = N(alpha x_0, sigma^2 I) (Kingma et al. 2021, app. A; for the VP path of
Song et al. 2021, eq. 11: f = -beta(t) / 2, g^2 = beta(t)). With the score s = grad log p_t, the same marginals
p_t are those of the reverse-time SDE (Anderson 1982; Song et al. 2021, eq. 6), run from t = 1 back to 0,

    dx = [f x - g^2 s(x, t)] dt + g dW_bar,

and of the probability-flow ODE (Song et al. 2021, eq. 13)

    dx / dt = f x - 1/2 g^2 s(x, t).

With s = -eps_hat / sigma and x = alpha x0_hat + sigma eps_hat, the PF-ODE drift is alpha' x0_hat + sigma' eps_hat:
the velocity u of flow matching (paths.convert(..., target="velocity")). So the PF-ODE of a Gaussian path, VP
paths included, IS its flow-matching ODE dx/dt = u, and samplers/flow.py integrates it.

Every drift here is driven by a noise predictor in the path's own time, ``PathEpsFn``: eps_fn(x_t, t) with
t float64 [N] in (0, 1]. A network of a discrete schedule (t = 1..T) becomes one with ``path_eps_fn``, the
equal-SNR change of variables of samplers.flow (Kingma et al. 2021, sec. 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..samplers.flow import eps_fn_on_path
from .paths import BETA_MAX, BETA_MIN, GaussianPath, expand, vp_linear
from .schedules import Schedule

PathEpsFn = Callable[[Tensor, Tensor], Tensor]  # eps_fn(x_t [N, ...], t float64 [N] in (0, 1]) -> eps_hat
T_ZERO = 1e-12  # where g^2 is evaluated for t = 0 (its limit there)
DriftFn = Callable[[Tensor, Tensor], Tensor]  # drift(x_t [N, ...], t float64 [N]) -> dx/dt, x_t's shape


# ------------------------------------------------------------------ the coefficients
def drift_coefficient(path: GaussianPath, t: Tensor | float) -> Tensor:
    """f(t) = alpha'(t) / alpha(t) (Kingma et al. 2021, app. A); -beta(t) / 2 on a VP path. float64, t's shape.
    Undefined (infinite) where alpha = 0, at t = 1 of vp_cosine and of the rectified flow."""
    return path.d_alpha(t) / path.alpha(t)


def diffusion_squared(path: GaussianPath, t: Tensor | float) -> Tensor:
    """g(t)^2 = 2 sigma sigma' - 2 f sigma^2 = d sigma^2 / dt - 2 f sigma^2 (Kingma et al. 2021, app. A);
    beta(t) on a VP path (Song et al. 2021, eq. 11). float64, t's shape. At t = 0 sigma = 0 and sigma' may be
    infinite (on a VP path sigma ~ sqrt(beta_min t)): there the value at t = 1e-12 is taken, the limit to 12 digits."""
    t = torch.as_tensor(t, dtype=torch.float64).clamp(min=T_ZERO)
    sigma = path.sigma(t)
    return 2 * sigma * path.d_sigma(t) - 2 * drift_coefficient(path, t) * sigma**2


def vp_beta(t: Tensor | float, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> Tensor:
    """beta(t) = beta_min + t (beta_max - beta_min), the VP-SDE's rate (Song et al. 2021, eq. 11 and app. C)."""
    return beta_min + torch.as_tensor(t, dtype=torch.float64) * (beta_max - beta_min)


def vp_integrated_beta(t: Tensor | float, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> Tensor:
    """int_0^t beta(s) ds = beta_min t + (beta_max - beta_min) t^2 / 2, so abar(t) = exp(-int_0^t beta)."""
    t = torch.as_tensor(t, dtype=torch.float64)
    return beta_min * t + 0.5 * (beta_max - beta_min) * t**2


def chain_alpha_bars(T: int, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> Tensor:
    """abar_k = prod_{j <= k} (1 - beta_j) of the chain with beta_j = beta(j / T) / T, k = 0..T: float64 [T + 1],
    abar_0 = 1. As T grows it tends to exp(-int_0^{k/T} beta), the VP-SDE's abar, with an error of order 1/T
    (a right Riemann sum, and log(1 - b) = -b - b^2/2 - ...). Where some beta_j >= 1 the chain is not defined:
    those entries and all after them are NaN (T = 10 with beta_max = 20 gives beta_j up to 2)."""
    if T < 1:
        raise ValueError(f"T must be at least 1, got {T}")
    betas = vp_beta(torch.arange(1, T + 1, dtype=torch.float64) / T, beta_min, beta_max) / T
    log_alpha = torch.where(betas < 1, torch.log1p(-betas), torch.nan)  # log(1 - beta) is NaN or -inf past 1
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.exp(torch.cumsum(log_alpha, 0))])


def vp_chain_path(x0: Tensor, T: int, noise: Tensor, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX) -> Tensor:
    """The chain x_k = sqrt(1 - beta_k) x_{k-1} + sqrt(beta_k) eps_k (Ho et al. 2020, eq. 2) with
    beta_k = beta(k / T) / T, from x0 [N] with the draws noise [T, N]: every state, [T + 1, N] float64."""
    betas = vp_beta(torch.arange(1, T + 1, dtype=torch.float64) / T, beta_min, beta_max) / T
    if bool((betas >= 1).any()):
        raise ValueError(f"T = {T} is too few steps: beta_k = beta(k / T) / T reaches {float(betas.max()):.2f} >= 1")
    states = [x0.double()]
    for k in range(T):
        states.append(torch.sqrt(1 - betas[k]) * states[-1] + torch.sqrt(betas[k]) * noise[k].double())
    return torch.stack(states)


# ------------------------------------------------------------------ predictions
def path_eps_fn(eps_fn: Callable[[Tensor, Tensor], Tensor], schedule: Schedule, path: GaussianPath) -> PathEpsFn:
    """A noise network of a discrete ``schedule`` as a PathEpsFn on ``path``, at equal SNR (samplers.flow)."""
    return eps_fn_on_path(eps_fn, schedule, path)


def score_fn(eps_fn: PathEpsFn, path: GaussianPath) -> DriftFn:
    """s(x, t) = grad log p_t(x) = -eps_hat(x, t) / sigma(t) (Song et al. 2021, eq. 7 with Vincent 2011)."""
    def score(x: Tensor, t: Tensor) -> Tensor:
        t = _rows(t, x)
        return -eps_fn(x, t) / _per_row(path.sigma, t, x)
    return score


def _rows(t: Tensor | float, x: Tensor) -> Tensor:
    return torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(x.shape[0])


def _per_row(coefficient: Callable[[Tensor], Tensor], t: Tensor, x: Tensor) -> Tensor:
    """coefficient(t) broadcast against x: computed once when every row has the same t (the samplers' case)."""
    if bool((t == t[0]).all()):
        return expand(coefficient(t[:1]), x)
    return expand(coefficient(t), x)


def forward_drift(path: GaussianPath) -> DriftFn:
    """f(t) x, the drift of the forward SDE."""
    return lambda x, t: _per_row(lambda s: drift_coefficient(path, s), _rows(t, x), x) * x


def reverse_drift(eps_fn: PathEpsFn, path: GaussianPath) -> DriftFn:
    """f x - g^2 s(x, t), the drift of the reverse-time SDE (Song et al. 2021, eq. 6), as dx/dt: a step back in
    time of size h moves x by -h times it, plus g sqrt(h) z."""
    score = score_fn(eps_fn, path)

    def drift(x: Tensor, t: Tensor) -> Tensor:
        t = _rows(t, x)
        f = _per_row(lambda s: drift_coefficient(path, s), t, x)
        g2 = _per_row(lambda s: diffusion_squared(path, s), t, x)
        return f * x - g2 * score(x, t)
    return drift


def pf_ode_drift(eps_fn: PathEpsFn, path: GaussianPath) -> DriftFn:
    """f x - 1/2 g^2 s(x, t), the probability-flow ODE (Song et al. 2021, eq. 13): the same field as the path's
    flow-matching velocity u = alpha' x0_hat + sigma' eps_hat (module docstring), so it is a VelocityFn for
    samplers.flow.flow_ode."""
    score = score_fn(eps_fn, path)

    def drift(x: Tensor, t: Tensor) -> Tensor:
        t = _rows(t, x)
        f = _per_row(lambda s: drift_coefficient(path, s), t, x)
        g2 = _per_row(lambda s: diffusion_squared(path, s), t, x)
        return f * x - 0.5 * g2 * score(x, t)
    return drift


# ------------------------------------------------------------------ where a discrete network's SDE runs
@dataclass(frozen=True)
class NetworkOde:
    """The path on which a discrete-time network is run in continuous time, and the two ends of the run."""

    path: GaussianPath
    t_start: float  # the time with the log SNR of the schedule's t = 1: the least noise the network was trained at
    t_end: float  # 1: the prior N(0, sigma(1)^2 I), which leaves out alpha(1) = 0.0066 of signal


def network_ode(schedule: Schedule) -> NetworkOde:
    """The VP-SDE path of Song et al. (2021) (beta from 0.1 to 20) for a network of ``schedule``: the network is
    asked at equal SNR (``path_eps_fn``), from t_start (its t = 1) to t_end = 1 (beta = 20, so Euler-Maruyama
    with 20 or more steps stays stable; any VP path gives the same ODE up to a change of time)."""
    path = vp_linear()
    return NetworkOde(path=path, t_start=float(path.t_at_log_snr(schedule.log_snr[1])), t_end=1.0)
