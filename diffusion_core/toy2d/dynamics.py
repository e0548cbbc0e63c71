"""Three dynamics with one set of marginals, in 2-D with the exact score (Song et al. 2021, sec. 4.1 and 4.3): the
forward SDE run from the data, the reverse-time SDE and the probability-flow ODE run from p_1, each kept at a few
times and compared with fresh draws of the exact p_t by the energy distance (Székely & Rizzo 2013); and the ODE's
likelihood against the exact log density, point by point, for several tolerances of the solver.

The three runs share one time grid of ``steps`` equal steps (the forward SDE by Euler-Maruyama, the reverse SDE by
Euler-Maruyama, the ODE by Heun: samplers/sde.py and samplers/flow.py); the kept times must lie on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..process.likelihood import ode_likelihood
from ..process.paths import GaussianPath
from ..process.sde import pf_ode_drift
from ..samplers.flow import flow_ode, flow_times
from ..samplers.ode_solvers import DormandPrince
from ..samplers.sde import forward_sde, increasing_times, reverse_sde
from .density import marginal_eps_fn, marginal_log_density, sample_marginal
from .measure import energy_distance

DYNAMICS = ("forward", "reverse", "ode")  # forward SDE from data, reverse SDE from p_1, PF-ODE from p_1
FRESH = 4  # the fresh sample of p_t is FRESH times the cloud: its own noise then adds little to the distance


@dataclass(frozen=True)
class ThreeDynamics:
    """The clouds of the three dynamics and of fresh draws of p_t at the kept times, with their distances."""

    times: tuple[float, ...]  # the kept times, increasing
    clouds: dict[str, Tensor]  # dynamic -> [K, N, 2] float64, row k at times[k]
    fresh: Tensor  # [K, FRESH N, 2] fresh draws of the exact p_t
    energy: dict[str, Tensor]  # dynamic -> [K] energy distance to the fresh draws
    noise_mean: Tensor  # [K] mean of that distance when the cloud is itself a fresh sample of N points
    noise: Tensor  # [K] its standard deviation: the sampling noise of the energy distance

    def z(self, dynamic: str) -> Tensor:
        """(energy - noise_mean) / noise per kept time: about N(0, 1) when the cloud is a sample of p_t."""
        return (self.energy[dynamic] - self.noise_mean) / self.noise


def _on_grid(times: tuple[float, ...], steps: int) -> list[int]:
    index = [round(t * steps) for t in times]
    if any(abs(i / steps - t) > 1e-9 or i == 0 for t, i in zip(times, index)):
        raise ValueError(f"the kept times must be multiples of 1 / {steps} in (0, 1], got {times}")
    return index


def streams(seed: int) -> dict[str, torch.Generator]:
    """One generator per job, so that no draw depends on how many numbers another job took."""
    return {job: torch.Generator().manual_seed(seed * 16 + i) for i, job in
            enumerate(("forward", "start", "reverse", "fresh"))}


def three_dynamics(data: Tensor, path: GaussianPath, times: tuple[float, ...], *, n: int, steps: int, seed: int,
                   repeats: int = 40) -> ThreeDynamics:
    """Run the three dynamics with the exact score of ``data`` [M, 2] on ``path`` and keep them at ``times``
    (multiples of 1 / steps). The reverse SDE and the ODE start from the same exact draws of p_1 (the prior
    N(0, I) within alpha(1)); their last step is an ordinary one (noise included) since p_t at t > 0 is noisy.
    Each cloud is compared with FRESH n fresh draws of p_t; the noise of that energy distance is its mean and
    standard deviation over ``repeats`` fresh clouds of n points (what a cloud drawn exactly from p_t gives).
    The ODE is a deterministic map of x_1: its clouds carry x_1's own sampling noise to every t."""
    times = tuple(sorted(times))
    index = _on_grid(times, steps)
    g = streams(seed)
    eps_fn = marginal_eps_fn(data, path)
    x0 = data.double()[torch.randint(0, len(data), (n,), generator=g["forward"])]
    clouds = {k: torch.empty(len(times), n, 2, dtype=torch.float64) for k in DYNAMICS}
    wanted = {i: j for j, i in enumerate(index)}
    for s in forward_sde(x0, path, increasing_times(steps), generator=g["forward"]):
        if s.index + 1 in wanted:
            clouds["forward"][wanted[s.index + 1]] = s.x_next
    x1 = sample_marginal(data, 1.0, path, n, g["start"])
    down = flow_times(steps, 1.0, min(times))  # from 1 to the smallest kept time, the same grid
    back = {steps - i: j for i, j in wanted.items()}  # step index on the way down -> kept row
    if 1.0 in times:
        clouds["reverse"][-1] = x1
        clouds["ode"][-1] = x1
    for s in reverse_sde(eps_fn, x1, path, down, generator=g["reverse"], noise_last=True):
        if s.index + 1 in back:
            clouds["reverse"][back[s.index + 1]] = s.x_next
    for s in flow_ode(pf_ode_drift(eps_fn, path), x1, down, method="heun"):
        if s.index + 1 in back:
            clouds["ode"][back[s.index + 1]] = s.x_next
    fresh = torch.stack([sample_marginal(data, t, path, FRESH * n, g["fresh"]) for t in times])
    energy = {k: torch.tensor([energy_distance(clouds[k][j], fresh[j]) for j in range(len(times))]) for k in DYNAMICS}
    null = torch.tensor([[energy_distance(sample_marginal(data, t, path, n, g["fresh"]), fresh[j])
                          for _ in range(repeats)] for j, t in enumerate(times)])
    return ThreeDynamics(times=times, clouds=clouds, fresh=fresh, energy=energy, noise_mean=null.mean(1),
                         noise=null.std(1))


@dataclass(frozen=True)
class LikelihoodCheck:
    """log p_{t_start} at a few points by the ODE (exact divergence) for several tolerances, and the exact value."""

    t_start: float
    points: Tensor  # [P, 2], drawn from p_{t_start}
    exact: Tensor  # [P] the exact log density (nats)
    tolerances: tuple[float, ...]
    ode: Tensor  # [R, P] the ODE's log density at each tolerance
    nfe: tuple[int, ...]  # drift evaluations of each solve


def likelihood_check(data: Tensor, path: GaussianPath, t_start: float, points: Tensor,
                     tolerances: tuple[float, ...], progress=None) -> LikelihoodCheck:
    """The ODE's log p_{t_start}(x) at ``points`` with the exact score, the exact divergence and the exact prior
    p_1 (the mixture at t = 1), by Dormand-Prince at each rtol = atol in ``tolerances``. ``progress(fraction)``."""
    eps_fn = marginal_eps_fn(data, path)
    exact = marginal_log_density(points, t_start, data, path)
    prior = lambda z: marginal_log_density(z, 1.0, data, path)  # noqa: E731
    rows, nfe = [], []
    for i, tol in enumerate(tolerances):
        def step(fraction: float, i: int = i) -> None:
            if progress is not None:
                progress((i + fraction) / len(tolerances))
        out = ode_likelihood(eps_fn, points, path, t_start=t_start, solver=DormandPrince(tol, tol),
                             prior_log_p=prior, progress=step)
        rows.append(out.log_p)
        nfe.append(out.nfe)
    return LikelihoodCheck(t_start=t_start, points=points.double(), exact=exact, tolerances=tuple(tolerances),
                           ode=torch.stack(rows), nfe=tuple(nfe))
