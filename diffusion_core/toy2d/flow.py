"""Flow matching in 2-D: the exact marginal velocity of a finite data set on any Gaussian path, the conditional
variance that separates the conditional loss from the marginal one, and a velocity MLP trained on the conditional
flow-matching loss in seconds on one thread. Continuous t in [0, 1], t = 0 data, t = 1 noise (``process.paths``).

For x_t = alpha(t) x_0 + sigma(t) eps with x_0 uniform over the rows x_1..x_M of ``data`` and eps ~ N(0, I):
- the conditional velocity of one pair is d x_t / dt = alpha' x_0 + sigma' eps (Lipman et al. 2023, eq. 9 and
  sec. 4.1, in our direction of time);
- the marginal velocity is its posterior mean, u(x, t) = E[alpha' x_0 + sigma' eps | x_t = x] (Lipman et al. 2023,
  eq. 8; Liu et al. 2023, eq. 1), whose ODE dx/dt = u carries p_0 to p_1 and back;
- the conditional loss E||u_theta - (alpha' x_0 + sigma' eps)||^2 and the marginal loss E||u_theta - u||^2 differ by
  E Var(alpha' x_0 + sigma' eps | x_t), a constant in theta, so they have the same gradient (Lipman et al. 2023, thm 2).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.unet import timestep_embedding
from ..process.losses import TimeSampling, sample_flow_times, velocity_target
from ..process.paths import GaussianPath
from ..samplers.flow import VelocityFn
from ..training.denoiser import learning_rate, optimiser_step
from .fit import LossLog, Progress
from .mlp import one_thread

_CHUNK_ELEMENTS = 2**20  # query-data pairs per chunk, as in exact.optimal_x0: 8 MB per float64 [rows, M] matrix
TIME_SAMPLINGS: tuple[str, ...] = get_args(TimeSampling)


# ------------------------------------------------------------------ the exact field of a finite data set
def _path_coefficients(t: Tensor | float, path: GaussianPath, n: int) -> tuple[Tensor, ...]:
    """alpha, sigma, alpha', sigma' at t for each of n rows, float64 [n, 1]; t must lie in (0, 1]."""
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"t must be a number or hold one time per row ({n}), got shape {tuple(t.shape)}")
    if not bool(((t > 0) & (t <= 1)).all()):
        raise ValueError("t must lie in (0, 1]: at t = 0 (the data) sigma = 0 and the posterior is a point")
    return tuple(c.reshape(n, 1) for c in (path.alpha(t), path.sigma(t), path.d_alpha(t), path.d_sigma(t)))


def _posterior_moments(x_t: Tensor, t: Tensor | float, data: Tensor, path: GaussianPath) -> tuple[Tensor, ...]:
    """E[x_0 | x_t] [N, 2], E[||x_0||^2 | x_t] [N] and the coefficients [N, 1] each, all float64.

    Bayes with q(x_t | x_0 = x_i) = N(alpha x_i, sigma^2 I): w = softmax_i(-||x_t - alpha x_i||^2 / (2 sigma^2)),
    the weights of ``exact.optimal_x0`` with sqrt(abar) -> alpha and 1 - abar -> sigma^2. ||x_t||^2 cancels in the
    softmax, so the logits are (alpha <x_t, x_i> - alpha^2 ||x_i||^2 / 2) / sigma^2; chunked over the queries."""
    n = x_t.shape[0]
    if x_t.ndim != 2 or x_t.shape[1] != 2 or data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
        raise ValueError(f"need x_t [N, 2] and data [M, 2] with M >= 1, got {tuple(x_t.shape)} and {tuple(data.shape)}")
    a, s, da, ds = _path_coefficients(t, path, n)
    x = x_t.detach().double().cpu()
    d = data.detach().double().cpu()
    sq = (d**2).sum(1)  # [M]
    mean, second = torch.empty_like(x), torch.empty(n, dtype=torch.float64)
    rows = max(1, _CHUNK_ELEMENTS // len(d))
    for i in range(0, n, rows):
        ai, si = a[i:i + rows], s[i:i + rows]
        logits = (ai * (x[i:i + rows] @ d.T) - ai**2 * 0.5 * sq) / si**2  # [r, M]
        w = torch.softmax(logits, dim=1)
        mean[i:i + rows] = w @ d
        second[i:i + rows] = w @ sq
    return mean, second, a, s, da, ds


def optimal_x0_on_path(x_t: Tensor, t: Tensor | float, data: Tensor, path: GaussianPath) -> Tensor:
    """E[x_0 | x_t] on ``path`` when x_0 is uniform over the rows of ``data`` [M, 2]: [N, 2] in x_t's dtype."""
    return _posterior_moments(x_t, t, data, path)[0].to(x_t.dtype).to(x_t.device)


def optimal_velocity(x_t: Tensor, t: Tensor | float, data: Tensor, path: GaussianPath) -> Tensor:
    """The exact marginal velocity u(x_t, t) = E[alpha' x_0 + sigma' eps | x_t] of the empirical distribution of
    ``data`` [M, 2] (Lipman et al. 2023, eq. 8): alpha' x0_hat + sigma' eps_hat with x0_hat = E[x_0 | x_t] and
    eps_hat = (x_t - alpha x0_hat) / sigma. x_t [N, 2]; t a number or float64 [N] in (0, 1]. Returns x_t's dtype."""
    mean, _, a, s, da, ds = _posterior_moments(x_t, t, data, path)
    eps_hat = (x_t.detach().double().cpu() - a * mean) / s
    return (da * mean + ds * eps_hat).to(x_t.dtype).to(x_t.device)


def exact_velocity_fn(data: Tensor, path: GaussianPath) -> VelocityFn:
    """velocity_fn(x_t, t) of the exact marginal field, for ``samplers.flow``."""
    return lambda x_t, t: optimal_velocity(x_t, t, data, path)


def velocity_variance(x_t: Tensor, t: Tensor | float, data: Tensor, path: GaussianPath) -> Tensor:
    """Var(alpha' x_0 + sigma' eps | x_t) per coordinate (the trace over 2), float64 [N]: what no network can
    predict at x_t. Given x_t, eps = (x_t - alpha x_0) / sigma, so the target is (alpha' - alpha sigma' / sigma) x_0
    plus a function of x_t, and its variance is (alpha' - alpha sigma' / sigma)^2 tr Cov(x_0 | x_t) / 2.
    On the rectified flow (alpha' = -1, sigma' = 1) the factor is 1 / t^2."""
    mean, second, a, s, da, ds = _posterior_moments(x_t, t, data, path)
    trace_cov = (second - (mean**2).sum(1)).clamp(min=0)  # E||x0||^2 - ||E x0||^2, >= 0 up to rounding
    return (da - a * ds / s).reshape(-1) ** 2 * trace_cov / 2


@dataclass(frozen=True)
class VarianceEstimate:
    """E over x_t of ``velocity_variance`` at one t: a Monte Carlo mean over x_t of the exact posterior variance."""

    mean: float  # per coordinate, the scale of a mean-squared-error loss
    standard_error: float  # of the Monte Carlo mean over the n draws of x_t


def expected_velocity_variance(t: float, data: Tensor, path: GaussianPath, *, n: int = 4000,
                               generator: torch.Generator | None = None) -> VarianceEstimate:
    """E_{x_t} Var(alpha' x_0 + sigma' eps | x_t) at t: the gap between the conditional and the marginal
    flow-matching losses at t, for every network (Lipman et al. 2023, thm 2). The posterior variance is exact;
    the outer mean is over n draws x_t = alpha x_0 + sigma eps from the path (a Rao-Blackwellised estimate)."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    d = data.detach().double().cpu()
    x0 = d[torch.randint(0, len(d), (n,), generator=g)]
    x_t = path.sample(x0, t, torch.randn(n, 2, generator=g, dtype=torch.float64))
    v = velocity_variance(x_t, t, d, path)
    return VarianceEstimate(mean=float(v.mean()), standard_error=float(v.std() / n**0.5) if n > 1 else float("nan"))


# ------------------------------------------------------------------ the velocity MLP
@dataclass(frozen=True)
class VelocityMLPConfig:
    """Architecture of the 2-D velocity network (the same body as ``mlp.EpsMLP``)."""

    width: int = 128  # hidden units per layer
    depth: int = 3  # hidden layers
    time_dim: int = 32  # size of the sinusoidal embedding of t
    time_scale: float = 1000.0  # the embedding sees time_scale * t, so t in [0, 1] spans the frequencies of t = 0..1000


class VelocityMLP(nn.Module):
    """u_theta(x_t, t): an MLP on [x_t, emb(t)], emb the sinusoidal embedding (Vaswani et al. 2017, sec. 3.5) of
    the continuous time_scale * t (SD3 feeds 1000 t likewise: Esser et al. 2024). x [N, 2], t float [N] in [0, 1]."""

    def __init__(self, config: VelocityMLPConfig = VelocityMLPConfig()):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        size = 2 + config.time_dim
        for _ in range(config.depth):
            layers += [nn.Linear(size, config.width), nn.SiLU()]
            size = config.width
        layers.append(nn.Linear(size, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(x.shape[0])
        emb = timestep_embedding(t.float() * self.config.time_scale, self.config.time_dim)
        return self.net(torch.cat([x, emb.to(x.dtype)], dim=1))


def mlp_velocity_fn(model: VelocityMLP) -> VelocityFn:
    """velocity_fn(x_t, t) of a trained velocity MLP, for ``samplers.flow``: float32 inside, x_t's dtype out."""
    @torch.inference_mode()
    def velocity_fn(x_t: Tensor, t: Tensor) -> Tensor:
        return model(x_t.float(), torch.as_tensor(t, dtype=torch.float64).float()).to(x_t.dtype)
    return velocity_fn


@dataclass(frozen=True)
class FlowTrainConfig:
    """How the velocity MLP trains: the habits of ``mlp.TrainConfig`` (and of training.denoiser)."""

    steps: int = 2000  # optimiser steps
    batch: int = 256  # points per step
    lr: float = 3e-3  # peak learning rate of AdamW
    warmup: int = 100  # steps of linear warm-up, then cosine decay (training.denoiser.learning_rate)
    min_lr_ratio: float = 0.05  # final lr / peak lr
    weight_decay: float = 0.01  # AdamW weight decay
    ema: float = 0.995  # EMA decay of the weights
    seed: int = 0  # initial weights, and the draws of points, t and noise
    time_sampling: TimeSampling = "uniform"  # t ~ U(0, 1), or logit-normal (Esser et al. 2024, sec. 3.1)
    logit_mean: float = 0.0  # m of the logit-normal: t = sigmoid(m + s n), n ~ N(0, 1) (SD3 uses m = 0, s = 1)
    logit_std: float = 1.0  # s of the logit-normal


@dataclass
class FlowTrainResult:
    """A trained velocity network and how it got there."""

    model: VelocityMLP  # the EMA weights, in eval mode, no gradients
    steps: list[int]  # steps at which the loss was logged
    losses: list[float]  # smoothed conditional flow-matching loss at those steps (EMA 0.98 of the batch losses)
    seconds: float  # wall time of the training loop


def train_velocity_mlp(data: Tensor, path: GaussianPath, model_config: VelocityMLPConfig = VelocityMLPConfig(),
                       config: FlowTrainConfig = FlowTrainConfig(), progress: Progress | None = None,
                       every: int = 50) -> FlowTrainResult:
    """Train u_theta on the points ``data`` [M, 2] with the conditional flow-matching loss (Lipman et al. 2023,
    eq. 9): || u_theta(x_t, t) - (alpha'(t) x_0 + sigma'(t) eps) ||^2 (mean over coordinates), x_t = alpha x_0 +
    sigma eps, x_0 from the rows of data, eps ~ N(0, I), t ~ U(0, 1) or logit-normal. AdamW, warm-up then cosine
    decay, EMA of the weights, all randomness from ``config.seed``; ``progress(step, steps, loss)`` every ``every``
    steps and at the end. One thread (``mlp.one_thread``)."""
    if config.steps < 1:
        raise ValueError(f"steps must be at least 1, got {config.steps}")
    if config.time_sampling not in TIME_SAMPLINGS:
        raise ValueError(f"unknown time sampling {config.time_sampling!r}; expected one of {TIME_SAMPLINGS}")
    with one_thread():
        return _train(data.detach().float().cpu(), path, model_config, config, progress, every)


def _train(data: Tensor, path: GaussianPath, model_config: VelocityMLPConfig, config: FlowTrainConfig,
           progress: Progress | None, every: int) -> FlowTrainResult:
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng():  # initial weights from the seed, without touching the global generator
        torch.manual_seed(config.seed)
        model = VelocityMLP(model_config)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    log = LossLog(config.steps, every, progress)
    model.train()
    for step in range(config.steps):
        idx = torch.randint(0, len(data), (config.batch,), generator=generator)
        t = sample_flow_times(config.batch, config.time_sampling, generator=generator,
                              mean=config.logit_mean, std=config.logit_std)  # float64 [B] in [0, 1)
        noise = torch.randn(config.batch, 2, generator=generator)
        x0 = data[idx]
        x_t = path.sample(x0, t, noise)
        target = velocity_target(x0, noise, t, path)  # eq. 9's target
        loss = F.mse_loss(model(x_t, t.float()), target)
        log.record(step, optimiser_step(model, ema, opt, loss, step, config, lr=learning_rate(step, config)))
    ema.eval()
    return FlowTrainResult(model=ema, steps=log.steps, losses=log.losses, seconds=log.seconds)
