"""The MLP noise predictor of the playground, trained on L_simple in seconds on a CPU, on one thread."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.unet import timestep_embedding
from ..process.forward import q_sample
from ..process.schedules import Schedule
from ..samplers import EpsFn
from ..training.denoiser import learning_rate, optimiser_step
from .fit import LossLog, Progress


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
    """How the MLP trains: the habits of ``diffusion_core.training.denoiser`` at a 2-D scale."""

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
    log = LossLog(config.steps, every, progress)
    model.train()
    for step in range(config.steps):
        idx = torch.randint(0, len(data), (config.batch,), generator=generator)
        t = torch.randint(1, schedule.T + 1, (config.batch,), generator=generator)
        noise = torch.randn(config.batch, 2, generator=generator)
        loss = F.mse_loss(model(q_sample(data[idx], t, noise, schedule), t), noise)  # L_simple, eq. 14
        log.record(step, optimiser_step(model, ema, opt, loss, step, config, lr=learning_rate(step, config)))
    ema.eval()
    return TrainResult(model=ema, steps=log.steps, losses=log.losses, seconds=log.seconds)
