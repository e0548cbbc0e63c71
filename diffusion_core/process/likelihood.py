"""The exact likelihood of the probability-flow ODE (Chen et al. 2018; Grathwohl et al. 2019; Song et al. 2021,
app. D.2), and bits per dimension of 8-bit images under uniform dequantisation.

Along a solution of dx/dt = u(x, t) the log density changes by the instantaneous change of variables
(Chen et al. 2018, thm. 1):  d log p_t(x_t) / dt = -div u(x_t, t).  Integrating the pair (x, int div u) from
t_start to t_end and adding the prior,

    log p_{t_start}(x) = log p_{t_end}(x_{t_end}) + int_{t_start}^{t_end} div u(x_t, t) dt,

with u the PF-ODE drift f x - 1/2 g^2 s of process/sde.py and p_{t_end} = N(0, sigma(t_end)^2 I) by default (the
path's prior: exact when alpha(t_end) = 0, within alpha(t_end) of it otherwise; pass ``prior_log_p`` for an
exact one). This is the exact log density of the ODE's own model (the prior carried back by the network's
flow), up to the solver's error and, with Hutchinson's estimator, an unbiased random error:
div u = E_v[v^T (du/dx) v] for Rademacher probes v (Hutchinson 1989; Grathwohl et al. 2019), the same k probes
for the whole solve. Without it the divergence is exact, by one backward pass per dimension (for 2-D).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..samplers.ode_solvers import DormandPrince, Progress, Solver, solve
from .paths import GaussianPath
from .sde import PathEpsFn, pf_ode_drift

LEVELS = 256  # an 8-bit pixel takes k = 0..255
SCALE = 127.5  # x = k / 127.5 - 1: the grid of the data in [-1, 1] (elbo.BIN_HALF_WIDTH = 1 / 255)
LogDensity = Callable[[Tensor], Tensor]  # log p(x) [N] of x [N, ...]


@dataclass(frozen=True)
class OdeLikelihood:
    """log p_{t_start}(x) by the ODE, with its parts and its cost."""

    log_p: Tensor  # [N] nats: prior_log_p + delta_log_p
    prior_log_p: Tensor  # [N] log p_{t_end}(x_{t_end})
    delta_log_p: Tensor  # [N] int_{t_start}^{t_end} div u dt
    z: Tensor  # [N, ...] x_{t_end}, the latent code of x
    nfe: int  # evaluations of the drift (each one network call, plus its backward pass)
    steps: int  # accepted solver steps


def gaussian_log_density(x: Tensor, std: float | Tensor) -> Tensor:
    """log N(x; 0, std^2 I) summed over the dimensions of each row: [N]."""
    d = x[0].numel()
    std = torch.as_tensor(std, dtype=torch.float64)
    sq = x.double().reshape(x.shape[0], -1).pow(2).sum(1)
    return -0.5 * d * torch.log(2 * math.pi * std**2) - sq / (2 * std**2)


def rademacher(shape: tuple[int, ...], generator: torch.Generator | None = None) -> Tensor:
    """Entries +1 or -1 with probability 1/2 each, float64 (drawn on the CPU)."""
    return torch.randint(0, 2, shape, generator=generator).double() * 2 - 1


def _exact_divergence(u: Tensor, x: Tensor) -> Tensor:
    """sum_i du_i / dx_i, one backward pass per dimension: [N]."""
    flat_u = u.reshape(u.shape[0], -1)
    div = torch.zeros(u.shape[0], dtype=torch.float64, device=u.device)
    for i in range(flat_u.shape[1]):
        (grad,) = torch.autograd.grad(flat_u[:, i].sum(), x, retain_graph=True)
        div = div + grad.reshape(grad.shape[0], -1)[:, i].double()
    return div


def divergence(drift: Callable[[Tensor, Tensor], Tensor], x: Tensor, t: float, probes: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
    """(u, div u) of the field u = drift(x, t) at x [N, ...], both detached: div u exact (one backward pass per
    dimension) when ``probes`` is None, else Hutchinson's estimate mean_j v_j^T (du/dx) v_j with the probes
    [k, N, ...]: the k copies of x go through the drift as one batch of k N rows, and one backward pass gives
    every v_j^T du/dx (Hutchinson 1989; Grathwohl et al. 2019). Works inside torch.inference_mode."""
    shape = tuple(x.shape)
    n = shape[0]
    with torch.inference_mode(False), torch.enable_grad():
        x = x.clone().detach()
        if probes is None:
            x.requires_grad_(True)
            u = drift(x, torch.full((n,), t, dtype=torch.float64))
            div = _exact_divergence(u, x)
        else:
            k = probes.shape[0]
            xs = x.unsqueeze(0).expand(k, *shape).reshape(k * n, *shape[1:]).clone().requires_grad_(True)
            v = probes.reshape(k * n, *shape[1:]).to(xs.dtype)
            u_all = drift(xs, torch.full((k * n,), t, dtype=torch.float64))
            (vjp,) = torch.autograd.grad((u_all * v.to(u_all.dtype)).sum(), xs)
            div = (vjp.double() * v.double()).reshape(k, n, -1).sum(2).mean(0)
            u = u_all[:n]
    return u.detach(), div.detach()


def augmented_fn(eps_fn: PathEpsFn, path: GaussianPath, shape: tuple[int, ...],
                 probes: Tensor | None) -> Callable[[float, Tensor], Tensor]:
    """F(t, y) for y = [x flattened | int div u] of N rows: dy/dt = [u(x, t) | div u(x, t)], u the PF-ODE drift,
    the divergence exact or by the fixed ``probes`` [k, N, ...] (``divergence``)."""
    drift = pf_ode_drift(eps_fn, path)
    n, d = shape[0], math.prod(shape[1:])

    def fn(t: float, y: Tensor) -> Tensor:
        u, div = divergence(drift, y[:, :d].reshape(shape), t, probes)
        return torch.cat([u.double().reshape(n, d), div.reshape(n, 1)], dim=1)

    return fn


def ode_likelihood(eps_fn: PathEpsFn, x: Tensor, path: GaussianPath, *, t_start: float, t_end: float = 1.0,
                   solver: Solver = DormandPrince(), hutchinson: int | None = None,
                   generator: torch.Generator | None = None, prior_log_p: LogDensity | None = None,
                   progress: Progress | None = None) -> OdeLikelihood:
    """log p_{t_start}(x) in nats for each row of x [N, ...] by the instantaneous change of variables (module
    docstring), with every part. eps_fn(x_t, t) is a noise predictor in the path's time (t float64 [N]); x is the
    state at t_start, integrated forward to t_end by ``solver`` (DormandPrince(rtol, atol) or FixedHeun(steps))
    in float64. hutchinson: None for the exact divergence, or k Rademacher probes drawn with ``generator``.
    ``progress(fraction of [t_start, t_end] done)`` after each accepted step."""
    if not 0 < t_start < t_end <= 1:
        raise ValueError(f"need 0 < t_start < t_end <= 1, got t_start={t_start}, t_end={t_end}")
    if hutchinson is not None and (isinstance(hutchinson, bool) or not isinstance(hutchinson, int) or hutchinson < 1):
        raise ValueError(f"hutchinson must be None or a number of probes >= 1, got {hutchinson!r}")
    shape = tuple(x.shape)
    n, d = shape[0], math.prod(shape[1:])
    probes = None if hutchinson is None else rademacher((hutchinson, *shape), generator).to(x.device)
    y0 = torch.cat([x.detach().double().reshape(n, d), torch.zeros(n, 1, dtype=torch.float64, device=x.device)], 1)
    sol = solve(augmented_fn(eps_fn, path, shape, probes), y0, float(t_start), float(t_end), solver, progress=progress)
    z = sol.y[:, :d].reshape(shape)
    delta = sol.y[:, d]
    prior = (prior_log_p(z) if prior_log_p is not None else gaussian_log_density(z, path.sigma(t_end))).double()
    return OdeLikelihood(log_p=prior + delta, prior_log_p=prior, delta_log_p=delta, z=z, nfe=sol.nfe, steps=sol.steps)


def ode_log_likelihood(eps_fn: PathEpsFn, x: Tensor, path: GaussianPath, *, t_start: float, t_end: float = 1.0,
                       solver: Solver = DormandPrince(), hutchinson: int | None = None,
                       generator: torch.Generator | None = None, prior_log_p: LogDensity | None = None,
                       progress: Progress | None = None) -> Tensor:
    """log p_{t_start}(x) [N] in nats: ``ode_likelihood(...).log_p``."""
    return ode_likelihood(eps_fn, x, path, t_start=t_start, t_end=t_end, solver=solver, hutchinson=hutchinson,
                          generator=generator, prior_log_p=prior_log_p, progress=progress).log_p


# ------------------------------------------------------------------ bits per dimension of 8-bit images
def dequantize(x0: Tensor, u: Tensor) -> Tensor:
    """Uniform dequantisation on the data's grid: x0 = k / 127.5 - 1 (k = 0..255) and u ~ U[0, 1)^D give
    x = (k + u - 1/2) / 127.5 - 1, uniform over the bin of width 1 / 127.5 centred on x0 (in level space
    y = k + u - 1/2, the bins [k - 1/2, k + 1/2) tile the line). Song et al. (2021) use x = (k + u) / 128 - 1
    instead, whose bins start at the grid points; any tiling gives a valid bound (Theis et al. 2016)."""
    return x0.double() + (u.double() - 0.5) / SCALE


def bits_per_dim(log_p: Tensor, dims: int) -> Tensor:
    """bits/dim of 8-bit data from log p(x) [N] in nats of the dequantised x in [-1, 1] space:

        bpd = -(log p(x) - D log 127.5) / (D ln 2) = -log p(x) / (D ln 2) + log2 127.5.

    The terms: x = y / 127.5 - 1 maps level space y (bins of width 1) to [-1, 1], so the density of y is
    p_y = p_x 127.5^(-D): log p_y = log p(x) - D log 127.5, the Jacobian of the scaling. The discrete model
    P(k) = int_bin p_y >= exp(E_u log p_y(k + u - 1/2)) (Jensen, each bin of volume 1), so the expected value over
    u of this bpd bounds -log2 P(k) / D from above. A uniform density on the 256 bins gives exactly 8; Song
    et al.'s scaling by 128 gives their offset log2 128 = 7 (score_sde's likelihood.py)."""
    return -(log_p.double() - dims * math.log(SCALE)) / (dims * math.log(2.0))
