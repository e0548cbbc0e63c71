"""The class-conditional eps network of a discrete schedule sampled as a flow, and the same x_T through DDIM.

The schedule's last timestep T has a finite log SNR (abar_T = 2.4e-9 for the shipped cosine schedule), so the
flow starts at the path's t_start with that log SNR (1 - 4.9e-5 on the rectified flow), from x_T rescaled to
the path: x = x_T alpha_path(t_start) / sqrt(abar_T) (the same noise, Kingma et al. 2021, sec. 5.1). On the
rectified flow, Euler at the times of a DDIM grid is DDIM (Gao et al. 2025; ``flow``'s docstring): ``same_coin``
runs both from one x_T, in the dtype of x_T (cast the network with ``.double()`` for float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..process.paths import GaussianPath, rectified_flow
from ..process.schedules import Schedule
from .ddim import ddim_step
from .flow import FlowMethod, flow_times, integrate_flow, times_at_timesteps, velocity_fn_from_eps
from .guidance import DEFAULT_GUIDANCE, guided_eps_fn
from .timesteps import timesteps

FlowGrid = Literal["uniform", "ddim"]  # equal steps in the path's t, or the times of DDIM's linear timesteps


def start_time(schedule: Schedule, path: GaussianPath) -> float:
    """The path's t with the log SNR of the schedule's t = T: where a flow of this network starts."""
    return float(path.t_at_log_snr(schedule.log_snr[schedule.T]))


def flow_start(x_T: Tensor, schedule: Schedule, path: GaussianPath) -> Tensor:
    """x_T of the schedule as the path's state at ``start_time``: x_T alpha_path(t_start) / sqrt(abar_T)."""
    t0 = torch.tensor(start_time(schedule, path), dtype=torch.float64)
    return x_T * float(path.alpha(t0) / schedule.sqrt_alpha_bars[schedule.T])


def flow_grid(schedule: Schedule, path: GaussianPath, steps: int, grid: FlowGrid = "uniform") -> Tensor:
    """The decreasing times of ``steps`` steps from ``start_time`` to 0: equal steps in t ("uniform", the grid of
    flow-matching samplers, e.g. diffusers' FlowMatchEulerDiscreteScheduler with shift 1), or the times with the
    log SNR of DDIM's linear timesteps ("ddim"), on which Euler retraces DDIM on the rectified flow."""
    if grid == "uniform":
        return flow_times(steps, start_time(schedule, path), 0.0)
    if grid == "ddim":
        return times_at_timesteps(schedule, torch.tensor(timesteps(schedule.T, steps) + [0]), path)
    raise ValueError(f"unknown grid {grid!r}; expected 'uniform' or 'ddim'")


@torch.inference_mode()
def sample_flow(model: nn.Module, labels: Tensor | list[int], x_T: Tensor, *, steps: int, method: FlowMethod = "euler",
                guidance: float = DEFAULT_GUIDANCE, clip: bool = True, path: GaussianPath | None = None,
                grid: FlowGrid = "uniform", schedule: Schedule | None = None) -> Tensor:
    """Digits for ``labels`` from x_T [N, 1, 28, 28] of the network's schedule, by ``method`` on the flow ODE of
    ``path`` (default the rectified flow) over ``steps`` steps of ``grid``; the guided eps (Ho & Salimans 2022)
    as a velocity (``velocity_fn_from_eps``, with ``clip`` as in the other samplers). Returns x_0 in x_T's dtype
    (with ``clip``, in [-1, 1] up to rounding: the last step lands on the clipped x0_hat)."""
    schedule = schedule if schedule is not None else model.schedule
    path = path if path is not None else rectified_flow()
    eps_fn = guided_eps_fn(model, torch.as_tensor(labels), guidance)
    velocity = velocity_fn_from_eps(eps_fn, schedule, path, clip=clip)
    return integrate_flow(velocity, flow_start(x_T, schedule, path), flow_grid(schedule, path, steps, grid),
                          method=method)


@dataclass(frozen=True)
class SameCoin:
    """One x_T through DDIM and through Euler on the rectified flow at the matching times."""

    ddim: Tensor  # x_0 of DDIM (eta = 0), [N, 1, 28, 28]
    euler: Tensor  # x_0 of Euler on the rectified-flow ODE
    max_difference: float  # max |ddim - euler| over every pixel


@torch.inference_mode()
def same_coin(model: nn.Module, labels: Tensor | list[int], x_T: Tensor, *, steps: int,
              guidance: float = DEFAULT_GUIDANCE, clip: bool = True, schedule: Schedule | None = None) -> SameCoin:
    """DDIM over ``timesteps(T, steps)`` (Song et al. 2021, eq. 12, eta = 0) and Euler on the rectified flow over
    the same log SNRs, from one x_T, both in x_T's dtype (the network must be cast to it). Equal up to rounding:
    about 1e-9 in float64, about 1e-3 in float32, where x0_hat = (x - sigma eps_hat) / alpha multiplies a
    rounding of x by sigma / alpha = 2e4 at t = T."""
    schedule = schedule if schedule is not None else model.schedule
    eps_fn = guided_eps_fn(model, torch.as_tensor(labels), guidance)
    grid = timesteps(schedule.T, steps) + [0]
    x = x_T
    for t, t_prev in zip(grid[:-1], grid[1:]):
        x = ddim_step(x, eps_fn(x, torch.full((len(x),), t)), t, t_prev, schedule, clip=clip).x_prev
    euler = sample_flow(model, labels, x_T, steps=steps, guidance=guidance, clip=clip, grid="ddim", schedule=schedule)
    return SameCoin(ddim=x, euler=euler, max_difference=float((x - euler).abs().max()))
