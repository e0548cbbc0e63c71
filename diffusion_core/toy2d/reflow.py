"""Reflow in 2-D (Liu et al. 2023): pairs (eps, ODE(eps)) of a teacher flow, the 2-rectified flow trained on
them, and the straightness of a flow's paths. t = 0 data, t = 1 noise (``process.paths``); Liu et al. run time
the other way (their X_0 is the noise, X_1 the data): here x_1 is the noise end, x_0 the data end.

- Pairs: x_1 ~ N(0, I), x_0 = ODE(x_1), the teacher's flow from t = 1 to t = 0 (Liu et al. 2023, alg. 1: the
  coupling (Z_0, Z_1) of the flow). A deterministic coupling: each noise point has one partner.
- The 2-rectified flow: min E || (x_1 - x_0) - u(x_t, t) ||^2 over t ~ U(0, 1), x_t = (1 - t) x_0 + t x_1, on
  those pairs (eq. 1 with the new coupling). Its paths are straighter, so few Euler steps follow them.
- Straightness (def. 3.1): S(Z) = int_0^1 E || (Z_1 - Z_0) - dZ_t/dt ||^2 dt, along the flow's own paths Z
  (in our direction dZ_t/dt = u(Z_t, t) and Z_1 - Z_0 is the noise end minus the data end). S = 0 exactly when
  every path is a straight line run at constant speed; then one Euler step is exact.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..process.losses import sample_flow_times
from ..samplers.flow import FlowMethod, VelocityFn, flow_ode, flow_times, integrate_flow
from ..training.denoiser import learning_rate, optimiser_step
from .fit import LossLog, Progress
from .flow import FlowTrainConfig, FlowTrainResult, VelocityMLP, VelocityMLPConfig
from .mlp import one_thread


@dataclass(frozen=True)
class Pairs:
    """A deterministic coupling of noise and data: row i of x0 is the teacher's ODE from row i of x1."""

    x1: Tensor  # [N, 2] the noise end (t = 1)
    x0: Tensor  # [N, 2] the data end (t = 0)


def draw_pairs(velocity_fn: VelocityFn, n: int, *, steps: int = 100, method: FlowMethod = "euler",
               generator: torch.Generator | None = None, progress: Callable[[int, int], None] | None = None) -> Pairs:
    """x_1 ~ N(0, I) [n, 2] (float64, drawn with ``generator``) and x_0 = the teacher's ODE from t = 1 to 0 in
    ``steps`` equal steps of ``method`` (``samplers.flow``). ``progress(i, steps)`` after each step. One thread."""
    x1 = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    x = x1
    with one_thread():
        for step in flow_ode(velocity_fn, x1, flow_times(steps), method=method):
            x = step.x_next
            if progress is not None:
                progress(step.index + 1, steps)
    return Pairs(x1=x1, x0=x)


def flow_paths(velocity_fn: VelocityFn, x1: Tensor, steps: int, method: FlowMethod = "euler") -> Tensor:
    """Every state of the flow from x_1 [N, 2] at t = 1 to t = 0 in ``steps`` equal steps: [steps + 1, N, 2]."""
    states = [x1]
    with one_thread():
        for step in flow_ode(velocity_fn, x1, flow_times(steps), method=method):
            states.append(step.x_next)
    return torch.stack(states)


def straightness(velocity_fn: VelocityFn, x1: Tensor, steps: int = 100) -> float:
    """S of Liu et al. (2023, def. 3.1) for the paths of ``velocity_fn`` from the noise points x1 [N, 2].

    The path is the Euler polyline of ``steps`` equal steps from t = 1 to 0: on step k it moves at the constant
    velocity u_k = u(z_k, t_k), so S = sum_k h || (z_1 - z_0) - u_k ||^2 is the exact S of that polyline
    (h = 1 / steps), and z_1 - z_0 = sum_k h u_k is its mean velocity: S is the spread of the velocity along each
    path, averaged over paths (a sum over the 2 coordinates, as ||.||^2 in def. 3.1). It tends to the flow's S as
    steps grow."""
    h = 1.0 / steps
    velocities = []
    x = x1
    with one_thread():
        for step in flow_ode(velocity_fn, x1, flow_times(steps), method="euler"):
            velocities.append(step.velocity.double())
            x = step.x_next
    u = torch.stack(velocities)  # [steps, N, 2]
    chord = (x1.double() - x.double())[None]  # z_1 - z_0: the noise end minus the data end
    return float((h * ((chord - u) ** 2).sum(-1)).sum(0).mean())


def pairs_straightness(pairs: Pairs, velocity_fn: VelocityFn, n_times: int = 64) -> float:
    """E int_0^1 || (x_1 - x_0) - u(x_t, t) ||^2 dt along the straight lines x_t = (1 - t) x_0 + t x_1 of the pairs
    (midpoint rule in t): how far a velocity field is from the lines of a coupling; for the coupling's own flow
    after training, what the reflow loss has left (Liu et al. 2023, eq. 1)."""
    x0, x1 = pairs.x0.double(), pairs.x1.double()
    total = 0.0
    with one_thread():
        for k in range(n_times):
            t = (k + 0.5) / n_times
            x_t = (1 - t) * x0 + t * x1
            u = velocity_fn(x_t, torch.full((len(x0),), t, dtype=torch.float64)).double()
            total += float((((x1 - x0) - u) ** 2).sum(-1).mean()) / n_times
    return total


def train_reflow_mlp(pairs: Pairs, model_config: VelocityMLPConfig = VelocityMLPConfig(),
                     config: FlowTrainConfig = FlowTrainConfig(), progress: Progress | None = None, every: int = 50,
                     init: VelocityMLP | None = None) -> FlowTrainResult:
    """The 2-rectified flow: a velocity MLP trained on || u(x_t, t) - (x_1 - x_0) ||^2 (Liu et al. 2023, eq. 1) over
    the pairs, x_t = (1 - t) x_0 + t x_1, t from ``config.time_sampling``; started from ``init`` (the teacher's
    weights, as Liu et al. do) or from ``config.seed``. The habits of ``flow.train_velocity_mlp``: AdamW, warm-up
    then cosine decay, EMA of the weights, all randomness from the seed; one thread."""
    if config.steps < 1:
        raise ValueError(f"steps must be at least 1, got {config.steps}")
    with one_thread():
        generator = torch.Generator().manual_seed(config.seed)
        if init is not None:
            model = copy.deepcopy(init).float().train().requires_grad_(True)
        else:
            with torch.random.fork_rng():
                torch.manual_seed(config.seed)
                model = VelocityMLP(model_config)
        ema = copy.deepcopy(model).requires_grad_(False)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        x0, x1 = pairs.x0.float(), pairs.x1.float()
        log = LossLog(config.steps, every, progress)
        for step in range(config.steps):
            idx = torch.randint(0, len(x0), (config.batch,), generator=generator)
            t = sample_flow_times(config.batch, config.time_sampling, generator=generator,
                                  mean=config.logit_mean, std=config.logit_std).float()
            a, b = x0[idx], x1[idx]
            x_t = (1 - t)[:, None] * a + t[:, None] * b
            loss = F.mse_loss(model(x_t, t), b - a)  # eq. 1 of Liu et al. in our time direction
            log.record(step, optimiser_step(model, ema, opt, loss, step, config, lr=learning_rate(step, config)))
        ema.eval()
        return FlowTrainResult(model=ema, steps=log.steps, losses=log.losses, seconds=log.seconds)


def euler_samples(velocity_fn: VelocityFn, x1: Tensor, steps: int) -> Tensor:
    """The end of ``steps`` equal Euler steps from x1 at t = 1 to t = 0: [N, 2] (``steps`` network calls)."""
    with one_thread():
        return integrate_flow(velocity_fn, x1, flow_times(steps))
