"""The flow ODE dx/dt = u(x, t) of a Gaussian path, integrated from noise (t = 1) to data (t = 0).

Euler: x_{t'} = x_t + (t' - t) u(x_t, t). Heun (Karras et al. 2022, algorithm 1): an Euler step, then the
average of the velocities at both ends, except on a step that ends at t = 0, which stays Euler (the
velocity of a network is not asked at the data itself). Heun with N steps costs 2N - 1 calls.

Any ``velocity_fn(x_t, t)`` fits: the exact 2-D velocity, a flow-matching MLP, or an eps network of a
discrete schedule seen on another path (``velocity_fn_from_eps``, the change of variables at equal SNR:
Kingma et al. 2021, sec. 5.1; Gao et al. 2025). On the rectified-flow path an Euler step is exactly a DDIM
step: x_t = (1 - t) x0_hat + t eps_hat, and x_t + (t' - t)(eps_hat - x0_hat) = (1 - t') x0_hat + t' eps_hat,
the DDIM update (Song et al. 2021, eq. 12, eta = 0) with the same x0_hat and eps_hat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

from ..process.paths import GaussianPath, convert, expand, from_schedule
from ..process.schedules import Schedule
from .process import EpsFn

VelocityFn = Callable[[Tensor, Tensor], Tensor]  # velocity_fn(x_t [N, ...], t float64 [N] in [0, 1]) -> u, x_t's shape
FlowMethod = Literal["euler", "heun"]
FLOW_METHODS: tuple[str, ...] = get_args(FlowMethod)
INTEGER_TOLERANCE = 1e-6  # a timestep this close to an integer is passed to eps_fn as that integer


def flow_times(steps: int, t_start: float = 1.0, t_end: float = 0.0) -> Tensor:
    """``steps`` equal steps from t_start down to t_end: float64 [steps + 1], decreasing."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0.0 <= t_end < t_start <= 1.0:
        raise ValueError(f"need 0 <= t_end < t_start <= 1, got t_start={t_start}, t_end={t_end}")
    return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


def times_at_timesteps(schedule: Schedule, timesteps: Tensor, path: GaussianPath) -> Tensor:
    """The times of ``path`` with the log SNR of the schedule's integer ``timesteps`` (e.g. a DDIM grid
    T > ... > 0, float64 [K + 1]): the grid on which Euler on the path retraces those DDIM steps.
    t = 0 maps to 0 (abar_0 = 1: the data)."""
    return path.t_at_log_snr(schedule.log_snr[torch.as_tensor(timesteps, dtype=torch.long)])


def check_times(times: Tensor) -> Tensor:
    """A time grid: float64 [K + 1], K >= 1, strictly decreasing, inside [0, 1]."""
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if len(times) < 2 or not bool((times[1:] < times[:-1]).all()):
        raise ValueError("the time grid must hold at least two strictly decreasing times")
    if not bool(((times >= 0) & (times <= 1)).all()):
        raise ValueError("the time grid must lie in [0, 1] (1 = noise, 0 = data)")
    return times


def network_calls(method: FlowMethod, steps: int, ends_at_zero: bool = True) -> int:
    """Velocity evaluations of ``steps`` steps: Euler 1 per step; Heun 2 per step, 1 on a last step to t = 0."""
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {FLOW_METHODS}")
    return steps if method == "euler" else 2 * steps - int(ends_at_zero)


@dataclass(frozen=True)
class FlowStep:
    """One step of the flow ODE, from t to t_next."""

    index: int  # 0-based
    t: float
    t_next: float
    x: Tensor  # the state at t
    x_next: Tensor  # the state at t_next
    velocity: Tensor  # u(x, t), the first velocity of the step


def flow_ode(velocity_fn: VelocityFn, x: Tensor, times: Tensor, *, method: FlowMethod = "euler") -> Iterator[FlowStep]:
    """Integrate dx/dt = u(x, t) over the decreasing grid ``times`` from the state x at times[0], yielding
    every step. Euler or Heun (Karras et al. 2022, algorithm 1: the correction is skipped where t_next = 0)."""
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {FLOW_METHODS}")
    times = check_times(times)
    n = x.shape[0]
    for i in range(len(times) - 1):
        t, t_next = times[i], times[i + 1]
        h = float(t_next - t)  # negative: time runs back towards the data
        u = velocity_fn(x, t.expand(n))
        x_next = x + h * u  # Euler
        if method == "heun" and float(t_next) > 0:
            u_next = velocity_fn(x_next, t_next.expand(n))
            x_next = x + h * 0.5 * (u + u_next)  # the trapezoid of the two slopes
        yield FlowStep(index=i, t=float(t), t_next=float(t_next), x=x, x_next=x_next, velocity=u)
        x = x_next


def integrate_flow(velocity_fn: VelocityFn, x: Tensor, times: Tensor, *, method: FlowMethod = "euler") -> Tensor:
    """The end state of ``flow_ode``: x at times[-1]."""
    for step in flow_ode(velocity_fn, x, times, method=method):
        x = step.x_next
    return x


def eps_fn_on_path(eps_fn: EpsFn, schedule: Schedule, path: GaussianPath) -> VelocityFn:
    """The eps network of a discrete ``schedule`` asked at (x_t, t) of another ``path``: eps_hat(x_t, t).

    At time t of the path, find the schedule's (fractional) timestep tau with the same log SNR
    (``from_schedule(schedule)``, exact at the integers); x_t of the path and x_tau of the schedule then
    differ only by a scale, x_tau = x_t alpha_schedule(tau) / alpha_path(t), and hold the same noise eps
    (Kingma et al. 2021, sec. 5.1: the models are equivalent at equal SNR), so eps_hat = eps_fn(x_tau, tau).
    tau is passed as a LongTensor when every row is within 1e-6 of an integer (as on the grids of DDIM), else
    as float64 (a UNet's sinusoidal embedding takes any t). Undefined at t = 0 and where the path's alpha is 0."""
    discrete = from_schedule(schedule)

    def on_path(x_t: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(x_t.shape[0])
        t_schedule = discrete.t_at_log_snr(path.log_snr(t))
        tau = schedule.T * t_schedule
        rounded = tau.round()
        near = (tau - rounded).abs() < INTEGER_TOLERANCE
        tau = torch.where(near, rounded, tau).clamp(min=1)
        # alpha of the schedule at tau: its own sqrt(abar) at the integers (the interpolation is exact there
        # only up to rounding, which x0_hat = (x - sigma eps) / alpha would multiply by 1 / alpha near t = 1)
        on_grid = schedule.sqrt_alpha_bars[rounded.long().clamp(1, schedule.T)]
        alpha_schedule = torch.where(near, on_grid, discrete.alpha(tau / schedule.T))
        scale = expand(alpha_schedule / path.alpha(t), x_t)
        return eps_fn(x_t * scale, tau.long() if bool(near.all()) else tau)

    return on_path


def velocity_fn_from_eps(eps_fn: EpsFn, schedule: Schedule, path: GaussianPath, *, clip: bool = False) -> VelocityFn:
    """The eps network of a discrete ``schedule`` as a velocity field on another ``path``: eps_hat from
    ``eps_fn_on_path`` (the change of variables at equal SNR), and the velocity ``convert(eps_hat, eps ->
    velocity)`` on the path, alpha' x0_hat + sigma' eps_hat. Undefined at t = 0 and where the path's alpha is 0.

    ``clip`` clips x0_hat to [-1, 1] and takes eps from it (eq. 4 solved for eps), as the samplers' ``clip`` does
    (``coefficients.x0_and_eps``): the velocity of the clipped prediction, alpha' clip(x0_hat) + sigma' eps, so
    that Euler on the rectified flow retraces DDIM with clip=True. Without it, near t = 1 the velocity holds
    x0_hat = (x_t - sigma eps_hat) / alpha with alpha = 4.9e-5 at the shipped schedule's t = T: a network's error
    in eps_hat comes back 2e4 times larger, and the images leave [-1, 1] by three orders of magnitude."""
    eps_at = eps_fn_on_path(eps_fn, schedule, path)

    def velocity_fn(x_t: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(x_t.shape[0])
        eps_hat = eps_at(x_t, t)
        if not clip:
            return convert(eps_hat, source="eps", target="velocity", x_t=x_t, t=t, path=path)
        x0_hat = convert(eps_hat, source="eps", target="x0", x_t=x_t, t=t, path=path).clamp(-1, 1)
        return convert(x0_hat, source="x0", target="velocity", x_t=x_t, t=t, path=path)

    return velocity_fn
