"""Consistency distillation in 2-D (Song et al. 2023): a one-step map f(x_t, t) -> x_0 learnt from a teacher's ODE.

On the rectified-flow path x_t = (1 - t) x_0 + t x_1 (t = 0 data, t = 1 noise; Song et al. use the VE path
x_0 + t z with the data at t = eps, so their boundary is f(x, eps) = x, ours f(x, 0) = x):

- the consistency function maps every point of one ODE path to the path's data end: f(x_t, t) = x_0 for all t;
- the boundary condition is built in (Song et al. 2023, sec. 3): f(x, t) = c_skip(t) x + c_out(t) F_theta(x, t)
  with c_skip(0) = 1 and c_out(0) = 0, so f(x, 0) = x exactly whatever F_theta is. c_skip and c_out are chosen as
  in Karras et al. (2022, app. B.6) for unit-variance targets, here on our path with data variance sigma_d^2:
  c_skip = (1 - t) sigma_d^2 / r^2, c_out = t sigma_d / r, r^2 = (1 - t)^2 sigma_d^2 + t^2;
- consistency distillation (alg. 2): times 0 = t_0 < t_1 < ... < t_N = 1; pick n, x_{t_{n+1}} from the path, one
  step of the teacher's ODE solver back to t_n, and pull f_theta(x_{t_{n+1}}, t_{n+1}) towards the target network
  f_theta-(x_hat_{t_n}, t_n) (an EMA of theta with rate mu, no gradient), squared L2 distance, lambda = 1;
- multistep consistency sampling (alg. 1): x_0 = f(x_1, 1); then for each tau_i: x_tau = (1 - tau) x_0 + tau z
  (fresh noise z), x_0 = f(x_tau, tau). One network call per step.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..samplers.flow import FlowMethod, VelocityFn
from ..training.denoiser import optimiser_step, update_ema
from .fit import LossLog, Progress
from .flow import VelocityMLP, VelocityMLPConfig
from .mlp import one_thread


def boundary_coefficients(t: Tensor, sigma_data: float = 1.0) -> tuple[Tensor, Tensor]:
    """c_skip(t), c_out(t) of the module docstring, float64 like t: c_skip(0) = 1, c_out(0) = 0 exactly."""
    t = torch.as_tensor(t, dtype=torch.float64)
    r2 = (1 - t) ** 2 * sigma_data**2 + t**2
    return (1 - t) * sigma_data**2 / r2, t * sigma_data / r2.sqrt()


class ConsistencyMLP(nn.Module):
    """f_theta(x, t) = c_skip(t) x + c_out(t) F_theta(x, t), F_theta the 2-D MLP body of ``flow.VelocityMLP``."""

    def __init__(self, config: VelocityMLPConfig = VelocityMLPConfig(), sigma_data: float = 1.0):
        super().__init__()
        self.body, self.sigma_data = VelocityMLP(config), sigma_data

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).reshape(-1).expand(x.shape[0])
        c_skip, c_out = boundary_coefficients(t, self.sigma_data)
        return c_skip[:, None].to(x.dtype) * x + c_out[:, None].to(x.dtype) * self.body(x, t)


@dataclass(frozen=True)
class ConsistencyConfig:
    """How consistency distillation trains (Song et al. 2023, alg. 2; mu as they chose it for CIFAR-10)."""

    steps: int = 2000  # optimiser steps
    batch: int = 256  # points per step
    lr: float = 2e-3  # Adam's learning rate, constant (as in Song et al.)
    intervals: int = 18  # N: the time grid t_n = n / N (Song et al. took N = 18 for CIFAR-10)
    mu: float = 0.95  # EMA rate of the target network theta- (0.95, as Song et al. for CIFAR-10)
    ema: float = 0.995  # EMA of the weights kept for sampling
    solver: FlowMethod = "heun"  # the teacher's one-step ODE solver Phi (Heun, as Song et al.)
    seed: int = 0


@dataclass
class ConsistencyResult:
    model: ConsistencyMLP  # the EMA weights, eval mode, no gradients
    steps: list[int]
    losses: list[float]  # smoothed distillation loss (EMA 0.98 of the batch losses)
    seconds: float


def train_consistency(data: Tensor, teacher: VelocityFn, model_config: VelocityMLPConfig = VelocityMLPConfig(),
                      config: ConsistencyConfig = ConsistencyConfig(), progress: Progress | None = None,
                      every: int = 50) -> ConsistencyResult:
    """Consistency distillation (Song et al. 2023, alg. 2) of the ODE of ``teacher`` on the points ``data`` [M, 2]
    (x_0 from its rows, sigma_data from their spread). One thread; all randomness from ``config.seed``."""
    if config.steps < 1 or config.intervals < 1:
        raise ValueError("steps and intervals must be at least 1")
    with one_thread():
        data = data.detach().double().cpu()
        generator = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            model = ConsistencyMLP(model_config, sigma_data=float(data.std()))
        target = copy.deepcopy(model).requires_grad_(False)  # theta-
        ema = copy.deepcopy(model).requires_grad_(False)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        grid = torch.linspace(0, 1, config.intervals + 1, dtype=torch.float64)
        log = LossLog(config.steps, every, progress)
        for step in range(config.steps):
            idx = torch.randint(0, len(data), (config.batch,), generator=generator)
            n = torch.randint(0, config.intervals, (config.batch,), generator=generator)
            z = torch.randn(config.batch, 2, generator=generator, dtype=torch.float64)
            t_next, t_now = grid[n + 1], grid[n]  # t_{n+1} > t_n
            x_next = (1 - t_next)[:, None] * data[idx] + t_next[:, None] * z
            with torch.no_grad():
                x_now = ode_step(teacher, x_next, t_next, t_now, config.solver)
                goal = target(x_now.float(), t_now)
            loss = ((model(x_next.float(), t_next) - goal) ** 2).sum(1).mean()  # d = squared L2, lambda = 1
            value = optimiser_step(model, ema, opt, loss, step, config)  # Adam at its constant rate
            update_ema(target, model, config.mu)  # theta- <- stopgrad(mu theta- + (1 - mu) theta)
            log.record(step, value)
        ema.eval()
        return ConsistencyResult(model=ema, steps=log.steps, losses=log.losses, seconds=log.seconds)


def ode_step(teacher: VelocityFn, x: Tensor, t: Tensor, t_next: Tensor, method: FlowMethod) -> Tensor:
    """One step of the teacher's ODE from t to t_next < t, one time per row (rows may differ): Euler, or Heun
    (Karras et al. 2022, alg. 1) except where t_next = 0, where Heun's second slope is not taken."""
    h = (t_next - t)[:, None]
    u = teacher(x, t)
    x_euler = x + h * u
    if method == "euler":
        return x_euler
    inside = t_next > 0
    u2 = teacher(x_euler, torch.where(inside, t_next, t))  # at rows ending at 0: unused
    return torch.where(inside[:, None], x + h * 0.5 * (u + u2), x_euler)


def consistency_times(steps: int) -> Tensor:
    """The times 1 = tau_0 > tau_1 > ... > tau_{k-1} > 0 of k-step sampling: tau_i = 1 - i / k, float64 [k]."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return 1 - torch.arange(steps, dtype=torch.float64) / steps


@torch.inference_mode()
def consistency_sample(model: nn.Module, x1: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
    """Multistep consistency sampling (Song et al. 2023, alg. 1) from x1 [N, 2] at t = 1: ``steps`` network calls.
    Between calls the prediction goes back onto the path with fresh noise: x_tau = (1 - tau) x_0 + tau z."""
    with one_thread():
        times = consistency_times(steps)
        x0 = model(x1.float(), times[0].expand(len(x1))).double()
        for tau in times[1:]:
            z = torch.randn(x1.shape, generator=generator, dtype=torch.float64)
            x_tau = (1 - tau) * x0 + tau * z
            x0 = model(x_tau.float(), tau.expand(len(x1))).double()
        return x0

