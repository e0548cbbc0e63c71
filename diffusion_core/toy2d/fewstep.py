"""The few-step lab of page 12 in 2-D: a teacher flow, its reflow and its consistency distillation, measured on one
meter. Each stage is a function of the settings (and the stages before it) so that a page can cache and show
progress per stage; the math is in ``reflow``, ``consistency`` and ``flow``.

Meter: the energy distance (Székely & Rizzo 2013; ``measure.energy_distance``) between 2000 samples and 2000 fresh
points of the data distribution, every sampler starting from the same noise points x_1. The teacher at 100 Euler
steps is the reference the students are distilled from; its own distance is the floor the students can approach.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, get_args

import torch
from torch import Tensor

from ..process.paths import rectified_flow
from ..samplers.flow import VelocityFn
from .consistency import ConsistencyConfig, ConsistencyResult, consistency_sample, train_consistency
from .datasets import distribution
from .flow import FlowTrainConfig, FlowTrainResult, exact_velocity_fn, mlp_velocity_fn, train_velocity_mlp
from .measure import energy_distance
from .reflow import Pairs, draw_pairs, euler_samples, straightness, train_reflow_mlp

TeacherKind = Literal["exact", "mlp"]
TEACHERS: tuple[str, ...] = get_args(TeacherKind)
FEW_STEPS = (1, 2, 4)  # the step counts of the meter
TEACHER_STEPS = 100  # the teacher's own Euler steps: its pairs and the reference
N_POINTS = 500  # training points of the data set (the playground's default)
N_PAIRS = 2000  # reflow pairs
N_EVAL = 2000  # samples per sampler on the meter, and fresh data points to compare with
TEACHER_TRAINING = FlowTrainConfig(steps=1000)
REFLOW_TRAINING = FlowTrainConfig(steps=1000)
CONSISTENCY_TRAINING = ConsistencyConfig(steps=1000, intervals=8, lr=5e-3)
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class Teacher:
    """The flow to be straightened or distilled: the exact marginal velocity of the training points on the
    rectified-flow path (``flow.optimal_velocity``), or a velocity MLP trained on them (``trained``)."""

    kind: TeacherKind
    data: Tensor  # the training points [M, 2]
    velocity: VelocityFn
    trained: FlowTrainResult | None  # the MLP and its training, None for the exact teacher


def make_teacher(dataset: str, kind: TeacherKind, seed: int, progress: Progress | None = None) -> Teacher:
    """The training points (``N_POINTS`` of ``dataset`` drawn with ``seed``) and the teacher flow on them."""
    if kind not in TEACHERS:
        raise ValueError(f"unknown teacher {kind!r}; expected one of {TEACHERS}")
    data = distribution(dataset).sample(N_POINTS, torch.Generator().manual_seed(seed))
    path = rectified_flow()
    if kind == "exact":
        return Teacher(kind, data, exact_velocity_fn(data.double(), path), None)
    config = replace(TEACHER_TRAINING, seed=seed)
    trained = train_velocity_mlp(data, path, config=config, progress=progress)
    return Teacher(kind, data, mlp_velocity_fn(trained.model), trained)


def make_pairs(teacher: Teacher, seed: int, progress: Callable[[int, int], None] | None = None) -> Pairs:
    """``N_PAIRS`` pairs (x_1, ODE(x_1)) of the teacher, ``TEACHER_STEPS`` Euler steps each."""
    return draw_pairs(teacher.velocity, N_PAIRS, steps=TEACHER_STEPS, generator=torch.Generator().manual_seed(seed + 1),
                      progress=progress)


def make_reflow(teacher: Teacher, pairs: Pairs, seed: int, progress: Progress | None = None) -> FlowTrainResult:
    """The 2-rectified flow on the pairs, started from the teacher's weights when it has some (Liu et al. 2023)."""
    config = replace(REFLOW_TRAINING, seed=seed)
    init = teacher.trained.model if teacher.trained is not None else None
    return train_reflow_mlp(pairs, config=config, progress=progress, init=init)


def make_consistency(teacher: Teacher, seed: int, progress: Progress | None = None) -> ConsistencyResult:
    """Consistency distillation of the teacher's ODE (Song et al. 2023, alg. 2)."""
    config = replace(CONSISTENCY_TRAINING, seed=seed)
    return train_consistency(teacher.data, teacher.velocity, config=config, progress=progress)


@dataclass(frozen=True)
class Meter:
    """Energy distances to fresh data of every sampler, and the samples themselves (for the clouds)."""

    distances: dict[tuple[str, int], float]  # (method, steps) -> energy distance; methods: teacher, reflow, consistency
    samples: dict[tuple[str, int], Tensor]  # the same keys -> [N_EVAL, 2]
    fresh: Tensor  # the fresh data points [N_EVAL, 2]
    straightness: dict[str, float]  # "teacher", "reflow": S of Liu et al. (2023, def. 3.1) over 500 paths

    def ratio(self, method: str, steps: int, to: tuple[str, int]) -> float:
        return self.distances[method, steps] / self.distances[to]


def measure(dataset: str, teacher: Teacher, reflow: FlowTrainResult, consistency: ConsistencyResult, seed: int,
            progress: Callable[[int, int], None] | None = None) -> Meter:
    """Every sampler of the page from the same x_1 (``N_EVAL`` points drawn with seed + 2), against fresh data
    (seed + 3); the straightness of the teacher's and the 2-rectified flow's paths from the first 500 of them."""
    x1 = torch.randn(N_EVAL, 2, generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64)
    fresh = distribution(dataset).sample(N_EVAL, torch.Generator().manual_seed(seed + 3)).double()
    student = mlp_velocity_fn(reflow.model)
    jobs: list[tuple[str, int, Callable[[], Tensor]]] = [("teacher", TEACHER_STEPS, lambda: euler_samples(
        teacher.velocity, x1, TEACHER_STEPS))]
    for k in FEW_STEPS:
        jobs += [("teacher", k, lambda k=k: euler_samples(teacher.velocity, x1, k)),
                 ("reflow", k, lambda k=k: euler_samples(student, x1, k)),
                 ("consistency", k, lambda k=k: consistency_sample(consistency.model, x1, k,
                                                                 torch.Generator().manual_seed(seed + 4)))]
    samples, distances = {}, {}
    for i, (method, k, run) in enumerate(jobs):
        samples[method, k] = run().double()
        distances[method, k] = energy_distance(samples[method, k], fresh)
        if progress is not None:
            progress(i + 1, len(jobs) + 1)
    s = {"teacher": straightness(teacher.velocity, x1[:500]), "reflow": straightness(student, x1[:500])}
    if progress is not None:
        progress(len(jobs) + 1, len(jobs) + 1)
    return Meter(distances=distances, samples=samples, fresh=fresh, straightness=s)
