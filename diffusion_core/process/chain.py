"""Running the forward Markov chain step by step (Ho et al. 2020, eqs. 1-2).

q(x_{1:T} | x_0) = prod_{t=1}^T q(x_t | x_{t-1}),  q(x_t | x_{t-1}) = N(x_t; sqrt(1 - beta_t) x_{t-1}, beta_t I).

Two ways to run it, both built on ``forward.q_step``:

* one image, resumable: the noise of step t is ``step_noise(seed, t)``, a function of (seed, t)
  only, so x_t can be recomputed from any stored x_s (s < t) and comes out identical. A page can
  keep a few frames and step from the nearest one instead of storing all T frames;
* many independent chains of one pixel value x_0, vectorised over the chains, to compare the
  chain's marginal with the closed form q(x_t | x_0) = N(sqrt(abar_t) x_0, 1 - abar_t) (eq. 4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .forward import q_step
from .schedules import T_MAX, Schedule


def step_noise(seed: int, t: int, like: Tensor) -> Tensor:
    """eps_t ~ N(0, I) for step t of the chain with this seed, with like's shape, dtype and device.

    Drawn from a generator seeded with seed * (T_MAX + 1) + t (distinct for every (seed, t)),
    on the CPU in float32, so the same (seed, t) gives the same eps_t everywhere."""
    if not 0 <= seed < 2**52 or not 1 <= t <= T_MAX:
        raise ValueError(f"need 0 <= seed < 2**52 and 1 <= t <= {T_MAX}, got seed={seed}, t={t}")
    g = torch.Generator().manual_seed(int(seed) * (T_MAX + 1) + int(t))
    eps = torch.randn(tuple(like.shape), generator=g, dtype=torch.float32)
    return eps.to(device=like.device, dtype=like.dtype)


def _check_range(t_from: int, t_to: int, schedule: Schedule) -> None:
    for name, v in (("t_from", t_from), ("t_to", t_to)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an int, got {v!r}")
    if not 0 <= t_from <= t_to <= schedule.T:
        raise ValueError(f"need 0 <= t_from <= t_to <= {schedule.T}, got t_from={t_from}, t_to={t_to}")


def q_chain(x_from: Tensor, t_from: int, t_to: int, schedule: Schedule, seed: int) -> Tensor:
    """x_{t_to} from x_{t_from} by t_to - t_from steps of q(x_t | x_{t-1}) (Ho et al. 2020, eq. 2),
    x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps_t with eps_t = step_noise(seed, t).

    x_from: [N, ...] (e.g. [1, C, H, W]); t_from = 0 starts from the data x_0. Result keeps
    x_from's shape, dtype and device. q_chain(q_chain(x, 0, s), s, t) == q_chain(x, 0, t)."""
    _check_range(t_from, t_to, schedule)
    x = x_from
    for t in range(t_from + 1, t_to + 1):
        x = q_step(x, t, step_noise(seed, t, x), schedule)
    return x


def q_chain_frames(x0: Tensor, ts: Sequence[int], schedule: Schedule, seed: int) -> Tensor:
    """Run the chain once from x_0 (t = 0) and keep only the frames x_t for t in ts (sorted, 0..T).

    Returns [len(ts), *x0.shape]; the same frames as calling q_chain(x0, 0, t) for each t."""
    ts = [int(t) for t in ts]
    if ts != sorted(ts):
        raise ValueError(f"ts must be sorted, got {ts}")
    frames, x, t_now = [], x0, 0
    for t in ts:
        x = q_chain(x, t_now, t, schedule, seed)
        t_now = t
        frames.append(x)
    return torch.stack(frames) if frames else x0.new_empty((0, *x0.shape))


def pixel_chains(
    x0: float, schedule: Schedule, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> Tensor:
    """n independent chains of one pixel that starts at x0, all T steps (Ho et al. 2020, eq. 2).

    Returns [T + 1, n]: row t holds the n values of x_t (row 0 is x_0 itself), to compare with
    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t)) (eq. 4). One vectorised q_step per t."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    out = torch.empty((schedule.T + 1, n), dtype=dtype)
    # The n chains are the n pixels of one sample [1, n]: independent noise per pixel, as in eq. 2,
    # and one scalar beta_t per step (a per-chain beta [n] costs an n-element sqrt at every step).
    x = torch.full((1, n), float(x0), dtype=dtype)
    out[0] = x[0]
    for t in range(1, schedule.T + 1):
        x = q_step(x, t, torch.randn((1, n), generator=generator, dtype=dtype), schedule)
        out[t] = x[0]
    return out
