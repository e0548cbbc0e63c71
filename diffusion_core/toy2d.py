"""Diffusion in two dimensions: point clouds, the exact denoiser of a finite data set, and a small
MLP noise predictor that trains in seconds on a CPU.

Shapes: points are [N, 2]; t is an int or a LongTensor [N] with values in 1..T.

The data sets are distributions, not fixed clouds: ``Distribution2D.sample(n, generator)`` draws n
points, standardised by constants of the distribution (mean 0 and variance 1 per axis), so that a
second draw (the "fresh points" of the memorisation test) is on the same scale as the first.

The exact denoiser treats the training points x_1..x_M as the whole data distribution
(x_0 uniform over them) and computes E[x_0 | x_t] in closed form; from it the exact noise
prediction and the exact score. Sampling uses the project's samplers (``samplers.sample_eps``)
with either predictor; nothing here re-implements a sampler step.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from .forward import check_timesteps, q_sample
from .samplers import EpsFn, Sampler, sample_eps
from .schedules import Schedule
from .train import learning_rate, update_ema
from .unet import timestep_embedding
from .uploads import read_image

DatasetName = Literal["mixture", "moons", "swiss_roll", "checkerboard", "picture"]
DATASETS: tuple[str, ...] = get_args(DatasetName)
MAX_POINTS = 10_000  # largest training set: the exact denoiser compares every query with every point
DARK_LEVEL = 128  # a picture's pixel is "dark" (part of the shape) when its gray level is below this
PICTURE_PATH = Path(__file__).resolve().parent.parent / "assets" / "drawings" / "smiley.png"  # the bundled drawing
_REFERENCE_DRAW = 200_000  # points drawn once to find the mean and spread of the shapes without a closed form
_CHUNK_ELEMENTS = 2**20  # query-data pairs per chunk of optimal_x0: 8 MB per float64 [rows, M] matrix


class BlankPictureError(ValueError):
    """The picture has no dark pixel (or nothing but dark pixels is fine: a filled rectangle)."""


def check_n_points(n: int) -> int:
    """n must be an integer from 1 to MAX_POINTS."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_POINTS:
        raise ValueError(f"the number of points must be an integer from 1 to {MAX_POINTS}, got {n!r}")
    return int(n)


# ------------------------------------------------------------------ data sets
def _mixture(n: int, g: torch.Generator) -> Tensor:
    """Eight Gaussians (std 0.1) at the corners of a regular octagon of radius 1."""
    k = torch.randint(0, 8, (n,), generator=g).double()
    centres = torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], dim=1)
    return centres + 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _moons(n: int, g: torch.Generator) -> Tensor:
    """Two interleaved half circles (as scikit-learn's make_moons), noise std 0.06."""
    theta = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    lower = torch.rand(n, generator=g) < 0.5
    x = torch.where(lower, 1 - torch.cos(theta), torch.cos(theta))
    y = torch.where(lower, 0.5 - torch.sin(theta), torch.sin(theta))
    return torch.stack([x, y], dim=1) + 0.06 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _swiss_roll(n: int, g: torch.Generator) -> Tensor:
    """A spiral r = theta, theta in [1.5 pi, 4.5 pi] (the 2-D swiss roll), noise std 0.3."""
    theta = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    spiral = torch.stack([theta * torch.cos(theta), theta * torch.sin(theta)], dim=1)
    return spiral + 0.3 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _checkerboard(n: int, g: torch.Generator) -> Tensor:
    """Uniform over the 8 black squares of a 4 x 4 board on [-2, 2]^2."""
    cell = torch.randint(0, 8, (n,), generator=g)
    row = cell // 2
    col = 2 * (cell % 2) + row % 2  # the squares with row + col even
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([col + u[:, 0], row + u[:, 1]], dim=1) - 2.0


_SHAPES: dict[str, Callable[[int, torch.Generator], Tensor]] = {
    "mixture": _mixture, "moons": _moons, "swiss_roll": _swiss_roll, "checkerboard": _checkerboard,
}


@dataclass(frozen=True)
class Distribution2D:
    """A 2-D distribution, standardised by its own mean and standard deviation per axis."""

    name: str  # one of DATASETS
    raw: Callable[[int, torch.Generator], Tensor] = field(repr=False)  # draws [n, 2] float64 before scaling
    mean: tuple[float, float]  # mean of the raw distribution, per axis
    std: tuple[float, float]  # its standard deviation, per axis

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n points [n, 2] float32, mean 0 and variance 1 per axis (over the distribution)."""
        x = self.raw(check_n_points(n), generator)
        return ((x - torch.tensor(self.mean, dtype=torch.float64)) / torch.tensor(self.std, dtype=torch.float64)).float()


@lru_cache(maxsize=None)
def _shape_distribution(name: str) -> Distribution2D:
    # No closed form for every shape's spread: measure it once on a large draw with a fixed generator.
    x = _SHAPES[name](_REFERENCE_DRAW, torch.Generator().manual_seed(0))
    mean, std = x.mean(0), x.std(0)
    return Distribution2D(name, _SHAPES[name], (float(mean[0]), float(mean[1])), (float(std[0]), float(std[1])))


def picture_distribution(pixels: np.ndarray, dark_level: int = DARK_LEVEL) -> Distribution2D:
    """Uniform over the dark pixels of a picture (uint8 [H, W] or [H, W, C]): a pixel is dark when the mean of
    its channels is below ``dark_level``; each point falls uniformly inside its pixel square. x runs to the
    right and y upwards, so the cloud stands the way the picture does. Raises BlankPictureError without one."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(f"expected uint8 [H, W] or [H, W, C], got {pixels.dtype} {pixels.shape}")
    gray = pixels.astype(np.float64) if pixels.ndim == 2 else pixels.astype(np.float64).mean(axis=2)
    rows, cols = np.nonzero(gray < dark_level)
    if len(rows) == 0:
        raise BlankPictureError("the picture has no dark pixel")
    corners = torch.from_numpy(np.stack([cols, -rows - 1], axis=1).astype(np.float64))  # lower-left corner

    def raw(n: int, g: torch.Generator) -> Tensor:
        pick = torch.randint(0, len(corners), (n,), generator=g)
        return corners[pick] + torch.rand(n, 2, generator=g, dtype=torch.float64)

    # Mixture of unit squares: mean = mean corner + 1/2, variance = variance of the corners + 1/12 per axis.
    mean = corners.mean(0) + 0.5
    var = corners.var(0, unbiased=False) + 1 / 12
    return Distribution2D("picture", raw, (float(mean[0]), float(mean[1])), tuple(float(s) for s in var.sqrt()))


def bundled_picture() -> np.ndarray:
    """The bundled drawing (a smiley, black on white), uint8 [128, 128]."""
    with Image.open(PICTURE_PATH) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()


def picture_from_bytes(data: bytes) -> Distribution2D:
    """An uploaded file -> the distribution of its dark pixels, decoded by the safe loader of the upload page
    (``uploads.read_image``: ImageLoadError with its code for a hostile or broken file; longest side 256 px);
    BlankPictureError when no pixel is dark."""
    return picture_distribution(read_image(data).pixels)


def distribution(name: DatasetName, pixels: np.ndarray | None = None) -> Distribution2D:
    """The data set ``name``; "picture" takes the dark pixels of ``pixels`` (uint8 [H, W] or [H, W, C]),
    by default those of the bundled drawing."""
    if name == "picture":
        return picture_distribution(bundled_picture() if pixels is None else pixels)
    if name not in _SHAPES:
        raise ValueError(f"unknown data set {name!r}; expected one of {DATASETS}")
    return _shape_distribution(name)


# ------------------------------------------------------------------ the exact denoiser
def _alpha_bar(t: int | Tensor, schedule: Schedule, n: int) -> Tensor:
    """abar_t for each of n rows, float64 [n, 1]."""
    return schedule.alpha_bars[check_timesteps(t, schedule, n)].reshape(n, 1)


def optimal_x0(x_t: Tensor, t: int | Tensor, data: Tensor, schedule: Schedule) -> Tensor:
    """E[x_0 | x_t] when x_0 is uniform over the rows of ``data`` [M, 2]: the exact denoiser [N, 2].

    By Bayes with q(x_t | x_0 = x_i) = N(sqrt(abar_t) x_i, (1 - abar_t) I) (Ho et al. 2020, eq. 4):
    E[x_0 | x_t] = sum_i w_i x_i,  w = softmax_i(-||x_t - sqrt(abar_t) x_i||^2 / (2 (1 - abar_t))).
    The softmax subtracts its largest logit (log-sum-exp) in float64, in chunks of queries so that memory
    stays bounded (a few tens of MB) for any N and M up to MAX_POINTS. Returns x_t's dtype."""
    n = x_t.shape[0]
    if x_t.ndim != 2 or x_t.shape[1] != 2 or data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
        raise ValueError(f"need x_t [N, 2] and data [M, 2] with M >= 1, got {tuple(x_t.shape)} and {tuple(data.shape)}")
    abar = _alpha_bar(t, schedule, n)
    x = x_t.detach().double().cpu()
    d = data.detach().double().cpu()
    # ||x_t - s x_i||^2 = ||x_t||^2 - 2 s <x_t, x_i> + s^2 ||x_i||^2 (s = sqrt(abar_t)); the first term is the
    # same for every i and cancels in the softmax, so one matrix product gives the logits.
    half_sq = 0.5 * (d**2).sum(1)  # [M]
    out = torch.empty_like(x)
    rows = max(1, _CHUNK_ELEMENTS // len(d))
    for i in range(0, n, rows):
        a = abar[i:i + rows]  # [r, 1]
        s = a.sqrt()
        logits = (s * (x[i:i + rows] @ d.T) - a * half_sq) / (1 - a)  # [r, M]
        out[i:i + rows] = torch.softmax(logits, dim=1) @ d
    return out.to(x_t.dtype).to(x_t.device)


def eps_from_x0(x_t: Tensor, x0: Tensor, t: int | Tensor, schedule: Schedule) -> Tensor:
    """eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t): Ho et al. (2020), eq. 4 solved for eps, row by row."""
    abar = _alpha_bar(t, schedule, x_t.shape[0]).to(x_t.dtype).to(x_t.device)
    return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()


def score_from_eps(eps: Tensor, t: int | Tensor, schedule: Schedule) -> Tensor:
    """grad log q_t(x_t) = -E[eps | x_t] / sqrt(1 - abar_t) (Vincent 2011; Song et al. 2021, eq. 7 with
    the variance-preserving q of Ho et al. 2020, eq. 4)."""
    abar = _alpha_bar(t, schedule, eps.shape[0]).to(eps.dtype).to(eps.device)
    return -eps / (1 - abar).sqrt()


def optimal_eps(x_t: Tensor, t: int | Tensor, data: Tensor, schedule: Schedule) -> Tensor:
    """The exact noise prediction E[eps | x_t] of the empirical distribution of ``data``."""
    return eps_from_x0(x_t, optimal_x0(x_t, t, data, schedule), t, schedule)


def optimal_score(x_t: Tensor, t: int | Tensor, data: Tensor, schedule: Schedule) -> Tensor:
    """The exact score grad log q_t(x_t) of the empirical distribution of ``data`` noised to step t."""
    return score_from_eps(optimal_eps(x_t, t, data, schedule), t, schedule)


def exact_eps_fn(data: Tensor, schedule: Schedule) -> EpsFn:
    """eps_fn(x_t, t) of the exact denoiser, for the samplers."""
    return lambda x_t, t: optimal_eps(x_t, t, data, schedule)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run PyTorch on one thread inside the block, then restore the count. The 2-D work is many tiny operations:
    a second thread only adds synchronisation, and on a shared, busy CPU its waiting made a training run 20 times
    slower (measured: 300 steps in 3.5 s on one thread, 80 s on two). The count is process-wide, and a server
    runs blocks of several sessions at once: the first block in records the count, the last one out restores it."""
    global _one_thread_depth, _threads_before
    with _one_thread_lock:
        if _one_thread_depth == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _one_thread_depth += 1
    try:
        yield
    finally:
        with _one_thread_lock:
            _one_thread_depth -= 1
            if _one_thread_depth == 0:
                torch.set_num_threads(_threads_before)


_one_thread_lock = threading.Lock()
_one_thread_depth = 0  # blocks of one_thread running now, in any thread
_threads_before = 1  # the count to restore when the last block ends


# ------------------------------------------------------------------ the MLP noise predictor
@dataclass(frozen=True)
class MLPConfig:
    """Architecture of the 2-D noise predictor."""

    T: int = 1000  # number of diffusion steps of its schedule (the time embedding covers t = 0..T)
    width: int = 128  # hidden units per layer
    depth: int = 3  # hidden layers
    time_dim: int = 32  # size of the sinusoidal time embedding


class EpsMLP(nn.Module):
    """eps_theta(x_t, t): an MLP on [x_t, emb(t)], emb the sinusoidal embedding of Ho et al. (2020),
    appendix B (Vaswani et al. 2017), looked up in a table for t = 0..T. Input [N, 2], t LongTensor [N]."""

    def __init__(self, config: MLPConfig = MLPConfig()):
        super().__init__()
        self.config = config
        self.register_buffer("time_table", timestep_embedding(torch.arange(config.T + 1), config.time_dim), persistent=False)
        layers: list[nn.Module] = []
        size = 2 + config.time_dim
        for _ in range(config.depth):
            layers += [nn.Linear(size, config.width), nn.SiLU()]
            size = config.width
        layers.append(nn.Linear(size, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.net(torch.cat([x, self.time_table[t]], dim=1))


def mlp_eps_fn(model: EpsMLP) -> EpsFn:
    """eps_fn(x_t, t) of a trained MLP, for the samplers."""
    @torch.inference_mode()
    def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
        return model(x_t.float(), t)
    return eps_fn


@dataclass(frozen=True)
class TrainConfig:
    """How the MLP trains: the habits of ``diffusion_core.train`` at a 2-D scale."""

    steps: int = 2000  # optimiser steps
    batch: int = 256  # points per step
    lr: float = 3e-3  # peak learning rate of AdamW
    warmup: int = 100  # steps of linear warm-up, then cosine decay (train.learning_rate)
    min_lr_ratio: float = 0.05  # final lr / peak lr
    weight_decay: float = 0.01  # AdamW weight decay
    ema: float = 0.995  # EMA decay of the weights
    seed: int = 0  # initial weights, and the draws of points, t and noise


@dataclass
class TrainResult:
    """A trained predictor and how it got there."""

    model: EpsMLP  # the EMA weights, in eval mode, no gradients
    steps: list[int]  # steps at which the loss was logged
    losses: list[float]  # smoothed L_simple at those steps (EMA 0.98 of the batch losses)
    seconds: float  # wall time of the training loop


Progress = Callable[[int, int, float], None]  # progress(step, steps, smoothed loss)


def train_mlp(data: Tensor, schedule: Schedule, model_config: MLPConfig = MLPConfig(),
              config: TrainConfig = TrainConfig(), progress: Progress | None = None, every: int = 50) -> TrainResult:
    """Train eps_theta on the points ``data`` [M, 2] with L_simple (Ho et al. 2020, eq. 14, algorithm 1):
    || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2, t ~ U{1..T}, x_0 from the rows of
    data; AdamW, warm-up then cosine decay, EMA of the weights, all randomness from ``config.seed``.
    ``progress`` is called every ``every`` steps and at the end. Runs on one thread (``one_thread``)."""
    if model_config.T != schedule.T:
        raise ValueError(f"the network embeds t = 0..{model_config.T} but the schedule has T = {schedule.T}")
    if config.steps < 1:
        raise ValueError(f"steps must be at least 1, got {config.steps}")
    with one_thread():
        return _train(data.detach().float().cpu(), schedule, model_config, config, progress, every)


def _train(data: Tensor, schedule: Schedule, model_config: MLPConfig, config: TrainConfig,
           progress: Progress | None, every: int) -> TrainResult:
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng():  # initial weights from the seed, without touching the global generator
        torch.manual_seed(config.seed)
        model = EpsMLP(model_config)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps, losses, running = [], [], None
    started = time.perf_counter()
    model.train()
    for step in range(config.steps):
        idx = torch.randint(0, len(data), (config.batch,), generator=generator)
        t = torch.randint(1, schedule.T + 1, (config.batch,), generator=generator)
        noise = torch.randn(config.batch, 2, generator=generator)
        loss = F.mse_loss(model(q_sample(data[idx], t, noise, schedule), t), noise)  # L_simple, eq. 14
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, config)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        update_ema(ema, model, min(config.ema, (2 + step) / (11 + step)))
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        done = step + 1
        if done % every == 0 or done == config.steps:
            steps.append(done)
            losses.append(running)
            if progress is not None:
                progress(done, config.steps, running)
    ema.eval()
    return TrainResult(model=ema, steps=steps, losses=losses, seconds=time.perf_counter() - started)


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
