"""Sampling the 2-D toys with the project's samplers, and measuring the clouds: nearest distances,
the energy distance, the evaluation grid. Nothing here re-implements a sampler step."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..process.schedules import Schedule
from ..samplers import EpsFn, Sampler, sample_eps
from .mlp import one_thread


# ------------------------------------------------------------------ sampling and measuring
def reverse_paths(eps_fn: EpsFn, x_T: Tensor, schedule: Schedule, *, sampler: Sampler, steps: int,
                  generator: torch.Generator | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Tensor:
    """Run the project's sampler (``samplers.sample_eps``, no clipping: 2-D data are not in [-1, 1]) from
    x_T [N, 2]; returns every state, x_T first and x_0 last: [steps + 1, N, 2]; ``progress(i, steps)`` after each step. DDIM runs with eta = 0,
    the deterministic sampler that follows the probability-flow ODE (Song et al. 2021, sec. 4.3). One thread."""
    states = [x_T.float()]
    with one_thread():
        for s in sample_eps(eps_fn, x_T, schedule, sampler=sampler, steps=steps, eta=0.0, generator=generator,
                            clip=False):
            states.append(s.x_prev)
            if progress is not None:
                progress(s.index + 1, steps)
    return torch.stack(states)


def nearest_distance(points: Tensor, data: Tensor, chunk: int = 1024) -> Tensor:
    """Euclidean distance from each point [N, 2] to its nearest row of data [M, 2]: [N] float64."""
    d = data.double()
    return torch.cat([torch.cdist(p.double(), d).min(dim=1).values for p in points.split(chunk)])


def energy_distance(a: Tensor, b: Tensor) -> float:
    """Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| between samples a [N, 2] and b [M, 2]
    (Székely & Rizzo 2013, eq. 2.1), with unbiased within-sample means (the diagonal left out).
    Zero in expectation when both come from one distribution."""
    a, b = a.double(), b.double()
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        raise ValueError("energy_distance needs at least two points in each sample")
    ab = torch.cdist(a, b).mean()
    aa = torch.cdist(a, a).sum() / (n * (n - 1))
    bb = torch.cdist(b, b).sum() / (m * (m - 1))
    return float(2 * ab - aa - bb)


def grid(limit: float, n: int) -> Tensor:
    """n x n points [n * n, 2] evenly spaced over [-limit, limit]^2, x varying fastest."""
    axis = torch.linspace(-limit, limit, n)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
