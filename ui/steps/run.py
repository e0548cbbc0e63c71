"""The computations of the "How many steps?" page: two samplers from the same x_T, a fine DDIM run as the
ODE's reference path, the quality meter (N digits judged by the shipped classifier), and the benchmark's
sweep read from its file. No Streamlit widgets here; the math is in diffusion_core (ode_paths, metrics).

Runs are kept in a store shared by every session (``ui.shared_store``), keyed by their settings and
seed: a second student asking for the same settings gets them at once.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from diffusion_core.data.images import unit_to_uint8
from diffusion_core.models.classifier import embed, load_classifier
from diffusion_core.models.metrics import (
    label_probability,
    wilson_interval,
    worst_judged,
)
from diffusion_core.models.weights import PRETRAINED_DIR
from diffusion_core.samplers import DEFAULT_GUIDANCE, ReverseProcess
from diffusion_core.samplers.ode_paths import PixelPath, pixel_path
from ui.model import SharedDenoiser
from ui.shared_store import SharedStore, shared_store

STEP_CHOICES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 25, 50, 100)
N_COMPARE = 8  # digits in the side-by-side comparison
REFERENCE_STEPS = 250  # DDIM steps of the ODE's reference path, even in lambda (about 0.06 apart): far below what the chart shows
REFERENCE_SPACING = "logsnr"
JUDGE_CHOICES: tuple[int, ...] = (10, 20, 50, 100, 200)  # digits the quality meter may draw
JUDGE_BATCH = 50  # digits drawn at once by the quality meter
WORST_SHOWN = 8
GUIDANCE = DEFAULT_GUIDANCE  # the page runs at the default guidance, as the benchmark does
# The benchmark's sweep; $DIFFUSION_SWEEP_PATH (or a test's monkeypatch) points elsewhere.
SWEEP_PATH = Path(os.environ.get("DIFFUSION_SWEEP_PATH", PRETRAINED_DIR / "sampler_sweep.json"))
MEMO_ENTRIES = 24  # runs kept in the shared memo (a run of 8 digits x 100 steps holds ~5 MB)

Progress = Callable[[int, int], None]  # (steps done, steps in all)


def shared_memo() -> SharedStore:
    """The page's runs, shared by every session (``ui.shared_store``)."""
    return shared_store("steps", MEMO_ENTRIES)


@st.cache_resource(show_spinner=False)
def shared_classifier(directory: str = str(PRETRAINED_DIR)) -> torch.nn.Module:
    """The shipped evaluation classifier (on the CPU: it is small), loaded once per server process."""
    return load_classifier(directory)


@dataclass(frozen=True)
class RunKey:
    """What a run computes: labels, sampler, steps and spacing, from the seed's x_T."""

    labels: tuple[int, ...]
    sampler: str
    steps: int
    spacing: str
    seed: int
    device: str
    guidance: float = GUIDANCE


@dataclass(frozen=True)
class RunRecord:
    """One run of N digits, with every step kept (float32 numpy, [.., N, 28, 28])."""

    key: RunKey
    t: np.ndarray  # int64 [K + 1], the timesteps from T down to 0
    x: np.ndarray  # float32 [K + 1, N, 28, 28]: x_T, ..., x_0
    x0_hat: np.ndarray  # float32 [K, N, 28, 28]: the network's prediction at each step
    seconds: float  # time spent in the steps

    @property
    def final(self) -> np.ndarray:
        """uint8 [N, 28, 28]: x_0 for display."""
        return unit_to_uint8(self.x[-1, :, 0])

    def path(self, schedule, digit: int, pixels: list[tuple[int, int]]) -> PixelPath:
        """The path of a few pixels (row, col) of one digit, against lambda."""
        rows, cols = np.array([p[0] for p in pixels]), np.array([p[1] for p in pixels])
        return pixel_path(schedule, self.t, self.x[:, digit, 0, rows, cols], self.x0_hat[:, digit, 0, rows, cols])


@dataclass(frozen=True)
class SolverCheck:
    """One DPM-Solver++(2M) step of a run redone by hand at one pixel: D from the two predictions, then
    x_prev = a x_t + b D (Lu et al. 2022, algorithm 2), beside the value the run reached."""

    step: int  # 0-based index of the step
    pixel: tuple[int, int]  # (row, col)
    x0_hat: float  # the network's prediction at this step
    x0_last: float  # the one at the previous step
    d: float  # w x0_hat - w_last x0_last
    x_t: float
    x_prev: float  # a x_t + b D
    x_run: float  # what the run reached


def solver_check(rec: RunRecord, plan: list, digit: int) -> SolverCheck | None:
    """The second-order step and pixel of ``digit`` where D differs most from x0_hat (the correction is
    largest), redone from the plan's coefficients (ode_paths.dpm_solver_plan); None if no step is second order."""
    second = [i for i, c in enumerate(plan) if c.order == 2]
    if not second:
        return None
    # |D - x0_hat| = w_last |x0_hat - x0_last|
    corr = np.stack([-plan[i].d_coef_x0_last * np.abs(rec.x0_hat[i, digit, 0] - rec.x0_hat[i - 1, digit, 0])
                     for i in second])
    j, row, col = np.unravel_index(int(np.argmax(corr)), corr.shape)
    i, c = second[int(j)], plan[second[int(j)]]
    x0, x0_last, x_t = (float(v) for v in (rec.x0_hat[i, digit, 0, row, col], rec.x0_hat[i - 1, digit, 0, row, col],
                                           rec.x[i, digit, 0, row, col]))
    d = c.d_coef_x0 * x0 + c.d_coef_x0_last * x0_last
    return SolverCheck(step=i, pixel=(int(row), int(col)), x0_hat=x0, x0_last=x0_last, d=d, x_t=x_t,
                       x_prev=c.coef_xt * x_t + c.coef_d * d, x_run=float(rec.x[i + 1, digit, 0, row, col]))


def _process(shared: SharedDenoiser, labels: list[int], sampler: str, steps: int, spacing: str, seed: int,
             x_start: torch.Tensor | None = None, guidance: float = GUIDANCE) -> ReverseProcess:
    return ReverseProcess(shared.model, labels, sampler=sampler, steps=steps, spacing=spacing, guidance=guidance,
                          generator=torch.Generator().manual_seed(seed), x_start=x_start)


def _record(shared: SharedDenoiser, process: ReverseProcess, key: RunKey, on_step: Progress) -> RunRecord:
    xs, preds, seconds = [process.x.numpy()], [], 0.0
    total = len(process.timesteps)
    while not process.done:
        with shared.lock:
            began = time.perf_counter()
            step = process.step()
            seconds += time.perf_counter() - began
        xs.append(step.x_prev.numpy())
        preds.append(step.x0_hat.numpy())
        on_step(process.position, total)
    return RunRecord(key=key, t=np.array([*process.timesteps, 0], dtype=np.int64), x=np.stack(xs),
                     x0_hat=np.stack(preds), seconds=seconds)


def run(shared: SharedDenoiser, key: RunKey, on_step: Progress = lambda i, n: None) -> RunRecord:
    """The run ``key`` (from the memo, or computed now, calling ``on_step`` after each step)."""
    def compute() -> RunRecord:
        process = _process(shared, list(key.labels), key.sampler, key.steps, key.spacing, key.seed,
                           guidance=key.guidance)
        return _record(shared, process, key, on_step)
    return shared_memo().get(("run", network_id(shared), key), compute)


def reference_steps(T: int) -> int:
    return min(REFERENCE_STEPS, T)


def reference(shared: SharedDenoiser, key: RunKey, digit: int, on_step: Progress = lambda i, n: None) -> RunRecord:
    """The ODE's path for digit ``digit`` of ``key``'s batch: DDIM over REFERENCE_STEPS (every t if the network
    has fewer) from the same x_T."""
    steps = reference_steps(shared.model.schedule.T)
    ref_key = RunKey(labels=(key.labels[digit],), sampler="ddim", steps=steps, spacing=REFERENCE_SPACING,
                     seed=key.seed, device=key.device, guidance=key.guidance)

    def compute() -> RunRecord:
        x_T = torch.randn((len(key.labels), 1, 28, 28), generator=torch.Generator().manual_seed(key.seed))
        process = _process(shared, [key.labels[digit]], "ddim", steps, REFERENCE_SPACING, key.seed,
                           x_start=x_T[digit:digit + 1], guidance=key.guidance)
        return _record(shared, process, ref_key, on_step)
    return shared_memo().get(("reference", network_id(shared), ref_key, len(key.labels), digit), compute)


def network_id(shared: SharedDenoiser) -> tuple[int, int]:
    """Which loaded network a memo entry belongs to (other weights, e.g. after a fix, never reuse its runs)."""
    return id(shared.model), shared.model.schedule.T


# ------------------------------------------------------------------ the quality meter
@dataclass(frozen=True)
class Judgement:
    """N digits of one setting, as the classifier judges them."""

    sampler: str
    steps: int
    spacing: str
    n: int
    correct: int  # digits read as the label asked for
    low: float  # Wilson 95 % interval of the accuracy
    high: float
    worst: np.ndarray  # uint8 [k, 28, 28]: the digits whose asked label got the lowest probability
    worst_labels: np.ndarray  # int64 [k]: asked
    worst_read: np.ndarray  # int64 [k]: what the classifier read
    worst_p: np.ndarray  # float64 [k]: the probability it gave the asked label
    seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.n


def judge(shared: SharedDenoiser, sampler: str, steps: int, spacing: str, n: int, seed: int,
          on_step: Progress = lambda i, n: None) -> Judgement:
    """Draw n digits (labels 0, 1, ..., 9, 0, ...) with these settings in batches of JUDGE_BATCH and score
    them with the shipped classifier, as bench/run.py does (accuracy = share read as asked)."""
    def compute() -> Judgement:
        labels = np.arange(n) % 10
        generator = torch.Generator().manual_seed(seed)
        batches = math.ceil(n / JUDGE_BATCH)
        images, seconds, done = [], 0.0, 0
        for b in range(batches):
            chunk = labels[b * JUDGE_BATCH:(b + 1) * JUDGE_BATCH].tolist()
            process = ReverseProcess(shared.model, chunk, sampler=sampler, steps=steps, spacing=spacing,
                                     guidance=GUIDANCE, generator=generator)
            total = batches * len(process.timesteps)
            while not process.done:
                with shared.lock:
                    began = time.perf_counter()
                    process.step()
                    seconds += time.perf_counter() - began
                done += 1
                on_step(done, total)
            images.append(process.x)
        x = torch.cat(images)
        out = embed(shared_classifier(), x)
        worst = worst_judged(out.probabilities, labels, WORST_SHOWN)
        low, high = wilson_interval(int((out.predictions == labels).sum()), n)
        return Judgement(sampler=sampler, steps=steps, spacing=spacing, n=n,
                         correct=int((out.predictions == labels).sum()), low=low, high=high,
                         worst=unit_to_uint8(x[worst, 0].numpy()), worst_labels=labels[worst],
                         worst_read=out.predictions[worst], worst_p=label_probability(out.probabilities, labels)[worst],
                         seconds=seconds)
    return shared_memo().get(("judge", network_id(shared), sampler, steps, spacing, n, seed, str(shared.device), GUIDANCE),
                             compute)


# ------------------------------------------------------------------ the benchmark's sweep
SWEEP_FIELDS = ("sampler", "nfe", "spacing", "n_samples", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "fd",
                "fd_floor", "seconds_16")


class SweepError(ValueError):
    """The sweep file exists but cannot be read."""


@dataclass(frozen=True)
class SweepRow:
    sampler: str
    nfe: int  # network evaluations (steps; a guided step batches its two passes as one call)
    spacing: str
    n_samples: int
    accuracy: float
    accuracy_ci_low: float
    accuracy_ci_high: float
    fd: float
    fd_floor: float
    seconds_16: float  # time for 16 digits on the benchmark's machine
    lower_order_final: bool = False  # DPM-Solver++: first order also on the step before x_0 (Lu et al.'s option)


@dataclass(frozen=True)
class Sweep:
    rows: list[SweepRow]
    machine: str  # where it was measured (the file's meta.machine), "" if it does not say


def load_sweep(path: Path | None = None) -> Sweep | None:
    """The benchmark's sweep (bench/sweep.py: {"meta": {...}, "rows": [...]}, or a bare list of rows), or
    None when the file is not there. Raises SweepError naming the file when it is there but unreadable."""
    path = Path(path or SWEEP_PATH)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        rows, meta = (data["rows"], data.get("meta", {})) if isinstance(data, dict) else (data, {})
        parsed = [SweepRow(sampler=str(r["sampler"]), nfe=int(r["nfe"]), spacing=str(r.get("spacing", "linear")),
                           n_samples=int(r["n_samples"]), accuracy=float(r["accuracy"]),
                           accuracy_ci_low=float(r["accuracy_ci_low"]), accuracy_ci_high=float(r["accuracy_ci_high"]),
                           fd=float(r["fd"]), fd_floor=float(r["fd_floor"]), seconds_16=float(r["seconds_16"]),
                           lower_order_final=bool(r.get("lower_order_final", False)))
                  for r in rows]
        return Sweep(rows=parsed, machine=str(meta.get("machine", "")) if isinstance(meta, dict) else "")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SweepError(f"{path}: {e!r}") from None
