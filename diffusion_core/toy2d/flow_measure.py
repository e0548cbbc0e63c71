"""Measuring 2-D flows: trajectories of the flow ODE, the conditional and marginal losses of a velocity field at
one t (and their gap, Lipman et al. 2023, thm 2), the gap over t, and the energy distance of Euler and Heun at a
given number of velocity calls. The exact field and the MLP live in ``toy2d.flow``; the ODE in ``samplers.flow``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..process.losses import velocity_target
from ..process.paths import GaussianPath
from ..samplers.flow import FlowMethod, VelocityFn, flow_ode, flow_times, network_calls
from .flow import expected_velocity_variance, optimal_velocity
from .measure import energy_distance
from .mlp import one_thread


def flow_paths(velocity_fn: VelocityFn, x1: Tensor, steps: int, method: FlowMethod = "euler") -> Tensor:
    """Every state of the flow ODE from x1 [n, 2] at t = 1 to t = 0 over ``steps`` equal steps:
    [steps + 1, n, 2], x1 first. One thread (many small products)."""
    states = [x1]
    with one_thread():
        for step in flow_ode(velocity_fn, x1, flow_times(steps), method=method):
            states.append(step.x_next)
    return torch.stack(states)


@dataclass(frozen=True)
class LossGap:
    """The two flow-matching losses of one field at one t, per coordinate, on the same n pairs."""

    conditional: float  # E||u_theta(x_t) - (alpha' x0 + sigma' eps)||^2 / 2: what training minimises (eq. 9)
    marginal: float  # E||u_theta(x_t) - u(x_t)||^2 / 2, u the exact marginal field (eq. 5): what we want small
    gap: float  # conditional - marginal
    variance: float  # E Var(target | x_t) by the exact posterior (toy2d.flow.expected_velocity_variance)
    standard_error: float  # of that variance's Monte Carlo mean over x_t


def loss_gap(velocity_fn: VelocityFn, data: Tensor, path: GaussianPath, t: float, *, n: int = 4000,
             generator: torch.Generator | None = None) -> LossGap:
    """Both losses of ``velocity_fn`` at t on n pairs (x0 from data, eps ~ N(0, I)), and E Var(target | x_t):
    the gap equals that variance for every field (Lipman et al. 2023, thm 2), up to Monte Carlo error."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    d = data.detach().double().cpu()
    x0 = d[torch.randint(0, len(d), (n,), generator=g)]
    noise = torch.randn(n, 2, generator=g, dtype=torch.float64)
    with one_thread():
        x_t = path.sample(x0, t, noise)
        tt = torch.full((n,), t, dtype=torch.float64)
        guess = velocity_fn(x_t, tt).double()
        exact = optimal_velocity(x_t, t, d, path)
        target = velocity_target(x0, noise, t, path)
        conditional = float(((guess - target) ** 2).mean())
        marginal = float(((guess - exact) ** 2).mean())
        var = expected_velocity_variance(t, d, path, n=n, generator=g)
    return LossGap(conditional=conditional, marginal=marginal, gap=conditional - marginal, variance=var.mean,
                   standard_error=var.standard_error)


def variance_curve(data: Tensor, path: GaussianPath, times: Tensor, *, n: int = 1000,
                   generator: torch.Generator | None = None) -> Tensor:
    """E Var(alpha' x0 + sigma' eps | x_t) at each of ``times`` (float64 [K] in (0, 1]): the floor of the
    conditional loss at each t, which no network goes below. float64 [K]."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    with one_thread():
        return torch.tensor([expected_velocity_variance(float(t), data, path, n=n, generator=g).mean for t in times],
                            dtype=torch.float64)


@dataclass(frozen=True)
class CallsPoint:
    """One run of a flow sampler: its cost and how far its samples lie from the reference cloud."""

    method: str  # "euler" or "heun"
    steps: int
    calls: int  # velocity evaluations (samplers.flow.network_calls)
    energy: float  # energy distance to the reference samples (measure.energy_distance)


def energy_by_calls(velocity_fn: VelocityFn, x1: Tensor, reference: Tensor, steps: dict[str, tuple[int, ...]]) -> list[CallsPoint]:
    """Euler and Heun (``steps`` maps a method to its step counts) from x1 [n, 2] at t = 1 to t = 0, each end
    cloud scored by its energy distance to ``reference`` [m, 2]."""
    out = []
    with one_thread():
        for method, counts in steps.items():
            for k in counts:
                x = x1
                for step in flow_ode(velocity_fn, x1, flow_times(k), method=method):  # type: ignore[arg-type]
                    x = step.x_next
                out.append(CallsPoint(method, k, network_calls(method, k), energy_distance(x, reference)))  # type: ignore[arg-type]
    return out
