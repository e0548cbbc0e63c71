"""What every 2-D training loop shares, whatever its loss: one optimiser step followed by the EMA of the weights
(the habits of ``training.denoiser`` at a 2-D scale), and the smoothed loss logged every few steps."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor, nn

from ..training.denoiser import learning_rate, update_ema

Progress = Callable[[int, int, float], None]  # progress(step, steps, smoothed loss)


def optimiser_step(model: nn.Module, ema: nn.Module, opt, loss: Tensor, step: int, config, *,
                   schedule_lr: bool = True) -> float:
    """Back-propagate ``loss`` and take one step of ``opt`` (0-based ``step``), at the warm-up then cosine learning
    rate of ``config`` (``training.denoiser.learning_rate``) unless ``schedule_lr`` is False; then move ``ema``
    towards the weights with decay min(config.ema, (2 + step) / (11 + step)). Returns the loss as a number."""
    if schedule_lr:
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, config)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    update_ema(ema, model, min(config.ema, (2 + step) / (11 + step)))
    return loss.item()


@dataclass
class LossLog:
    """The loss of a training run as the pages draw it: an EMA (0.98) of the batch losses, kept every ``every``
    steps and at the last one, each time also handed to ``progress``."""

    total: int  # the run's number of steps
    every: int
    progress: Progress | None = None
    steps: list[int] = field(default_factory=list)  # steps at which the loss was kept
    losses: list[float] = field(default_factory=list)  # the smoothed loss at those steps
    running: float | None = None
    started: float = field(default_factory=time.perf_counter)

    def record(self, step: int, value: float) -> None:
        """The batch loss ``value`` of 0-based ``step``."""
        self.running = value if self.running is None else 0.98 * self.running + 0.02 * value
        done = step + 1
        if done % self.every == 0 or done == self.total:
            self.steps.append(done)
            self.losses.append(self.running)
            if self.progress is not None:
                self.progress(done, self.total, self.running)

    @property
    def seconds(self) -> float:
        """Wall time since the log was opened."""
        return time.perf_counter() - self.started
