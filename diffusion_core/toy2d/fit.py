"""The smoothed loss that every 2-D training loop logs, whatever its loss (the loops take their optimiser step
from ``training.denoiser.optimiser_step``, as the MNIST scripts do)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


Progress = Callable[[int, int, float], None]  # progress(step, steps, smoothed loss)


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
