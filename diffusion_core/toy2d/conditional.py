"""Class-conditional 2-D diffusion: the exact denoiser of each class's points, and an MLP that also takes the
label, trained with label dropout. Both are called as ``model(x_t, t, labels)`` with label -1 for "no label",
like the MNIST network, so classifier-free guidance is the core's own (``samplers.guided_eps_fn``,
Ho & Salimans 2022). Shapes: points [N, 2]; labels LongTensor [N] of 0..num_classes-1 or -1."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.unet import NULL_LABEL, timestep_embedding
from ..process.forward import q_sample
from ..process.schedules import Schedule
from ..samplers import EpsFn, guided_eps_fn
from .exact import optimal_eps
from ..training.denoiser import learning_rate, optimiser_step
from .fit import LossLog, Progress
from .mlp import MLPConfig, TrainConfig, TrainResult, one_thread


class ExactConditionalDenoiser(nn.Module):
    """The exact noise prediction of the empirical distribution of the points of class y (all points for -1):
    E[eps | x_t, y], the exact denoiser (``exact.optimal_eps``) of that class's points. No parameters."""

    def __init__(self, data: Tensor, data_labels: Tensor, schedule: Schedule):
        super().__init__()
        if data.ndim != 2 or data.shape[1] != 2 or data_labels.shape != (len(data),):
            raise ValueError(f"need data [M, 2] and labels [M], got {tuple(data.shape)} and {tuple(data_labels.shape)}")
        self.data, self.data_labels, self.schedule = data.detach().float().cpu(), data_labels.long().cpu(), schedule
        self._classes = {int(y): self.data[self.data_labels == y] for y in self.data_labels.unique()}

    def forward(self, x_t: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        out = torch.empty_like(x_t)
        labels, t = labels.cpu(), t.cpu()
        for y in labels.unique().tolist():
            rows = labels == y
            points = self.data if y == NULL_LABEL else self._classes.get(y)
            if points is None:
                raise ValueError(f"no training point has label {y}")
            out[rows] = optimal_eps(x_t[rows], t[rows], points, self.schedule)
        return out


@dataclass(frozen=True)
class CondMLPConfig:
    """The conditional 2-D noise predictor: ``MLPConfig``'s MLP with a learned class embedding at its input."""

    mlp: MLPConfig = MLPConfig()
    num_classes: int = 10  # labels 0..num_classes-1; index num_classes is "no label"
    class_dim: int = 16  # size of the class embedding


class CondEpsMLP(nn.Module):
    """eps_theta(x_t, t, y): an MLP on [x_t, emb(t), emb(y)] (as ``mlp.EpsMLP``, plus the label's embedding)."""

    def __init__(self, config: CondMLPConfig = CondMLPConfig()):
        super().__init__()
        self.config = config
        m = config.mlp
        self.register_buffer("time_table", timestep_embedding(torch.arange(m.T + 1), m.time_dim), persistent=False)
        self.class_emb = nn.Embedding(config.num_classes + 1, config.class_dim)
        layers: list[nn.Module] = []
        size = 2 + m.time_dim + config.class_dim
        for _ in range(m.depth):
            layers += [nn.Linear(size, m.width), nn.SiLU()]
            size = m.width
        layers.append(nn.Linear(size, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        index = torch.where(labels < 0, torch.full_like(labels, self.config.num_classes), labels)
        return self.net(torch.cat([x, self.time_table[t], self.class_emb(index)], dim=1))


def guided_eps_2d(model: nn.Module, labels: Tensor | list[int], guidance: float) -> EpsFn:
    """eps_fn(x_t, t) of a conditional 2-D predictor for ``labels``, with guidance scale s (the core's
    ``guided_eps_fn``: eps_none + s (eps_y - eps_none)); inference mode."""
    fn = guided_eps_fn(model, torch.as_tensor(labels, dtype=torch.long), guidance)

    @torch.inference_mode()
    def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
        return fn(x_t.float(), t)
    return eps_fn


def train_conditional_mlp(data: Tensor, data_labels: Tensor, schedule: Schedule,
                          config: CondMLPConfig = CondMLPConfig(), train: TrainConfig = TrainConfig(),
                          p_uncond: float = 0.1, progress: Progress | None = None, every: int = 50) -> TrainResult:
    """Train eps_theta(x_t, t, y) on points [M, 2] with labels [M] by L_simple (Ho et al. 2020, eq. 14), the label
    replaced by "no label" with probability ``p_uncond`` (Ho & Salimans 2022, algorithm 1): ``mlp.train_mlp``'s
    recipe (AdamW, warm-up and cosine decay, EMA, all randomness from ``train.seed``), on one thread."""
    if config.mlp.T != schedule.T:
        raise ValueError(f"the network embeds t = 0..{config.mlp.T} but the schedule has T = {schedule.T}")
    with one_thread():
        data, data_labels = data.detach().float().cpu(), data_labels.long().cpu()
        generator = torch.Generator().manual_seed(train.seed)
        with torch.random.fork_rng():
            torch.manual_seed(train.seed)
            model = CondEpsMLP(config)
        ema = copy.deepcopy(model).requires_grad_(False)
        opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
        log = LossLog(train.steps, every, progress)
        for step in range(train.steps):
            idx = torch.randint(0, len(data), (train.batch,), generator=generator)
            t = torch.randint(1, schedule.T + 1, (train.batch,), generator=generator)
            noise = torch.randn(train.batch, 2, generator=generator)
            drop = torch.rand(train.batch, generator=generator) < p_uncond
            y = torch.where(drop, torch.full_like(data_labels[idx], NULL_LABEL), data_labels[idx])
            loss = F.mse_loss(model(q_sample(data[idx], t, noise, schedule), t, y), noise)  # L_simple, eq. 14
            log.record(step, optimiser_step(model, ema, opt, loss, step, train, lr=learning_rate(step, train)))
        ema.eval()
        return TrainResult(model=ema, steps=log.steps, losses=log.losses, seconds=log.seconds)
