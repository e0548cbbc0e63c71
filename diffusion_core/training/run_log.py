"""What a training script records as it goes, the same for every script: the smoothed loss on a progress bar, a
row of ``loss.csv`` every few steps, the training time over resumes, and when the next checkpoint is due."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm


class RunLog:
    """The record of one run from ``step`` (0, or the checkpoint's step on a resume) to ``args.steps``.

    The loss shown and logged is an EMA of the batch losses, ``smoothing`` = (weight of the old, weight of the newest), carried over
    a resume as ``running``; ``path`` (``loss.csv``, prepared by ``keep_loss_log``) gets a row step, loss, lr,
    seconds every ``log_every`` steps and at the last one; seconds count the training time of every session of
    the run (``seconds_before`` from the checkpoint). A checkpoint is due every ``args.checkpoint_minutes`` and
    at the last step."""

    def __init__(self, path: Path, args, step: int, seconds_before: float, running: float | None, *,
                 smoothing: tuple[float, float] = (0.99, 0.01), log_every: int = 50, loss_digits: int = 4):
        self.args, self.running, self.smoothing = args, running, smoothing
        self.log_every, self.loss_digits = log_every, loss_digits
        self.seconds_before = seconds_before
        self.file = path.open("a")
        self.bar = tqdm(total=args.steps, initial=step, disable=args.quiet, smoothing=0.05)
        self.last_checkpoint = self.started = time.monotonic()

    def elapsed(self) -> float:
        """Training seconds of the run so far, over resumes."""
        return self.seconds_before + time.monotonic() - self.started

    def record(self, step: int, value: float, lr: float, /, **postfix: str) -> None:
        """The batch loss ``value`` of the step that brought the run to ``step`` steps, at learning rate ``lr``;
        ``postfix``: more fields for the bar."""
        old, new = self.smoothing
        self.running = value if self.running is None else old * self.running + new * value
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{self.running:.{self.loss_digits}f}", **postfix)
        if step % self.log_every == 0 or step == self.args.steps:
            self.file.write(f"{step},{self.running:.5f},{lr:.3e},{self.elapsed():.1f}\n")
            self.file.flush()

    def checkpoint_due(self, step: int) -> bool:
        return time.monotonic() - self.last_checkpoint > 60 * self.args.checkpoint_minutes or step == self.args.steps

    def checkpointed(self) -> None:
        """A checkpoint was just written: the next is due ``checkpoint_minutes`` from now."""
        self.last_checkpoint = time.monotonic()

    def close(self) -> None:
        self.bar.close()
        self.file.close()
