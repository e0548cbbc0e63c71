"""What the app's server and its denoiser worker say to each other: small frozen dataclasses of numbers
and numpy arrays, pickled over a multiprocessing queue (server -> worker) and a pipe (worker -> server).
No tensors cross: torch would pass them through shared-memory files, which a killed worker can leak.

The server sends a ``Job`` (a ``RunSpec``: which reverse process; a ``WireState``: where it stands) and
``Cancel``s; the worker answers ``Ready`` once its network is loaded, one ``StepMsg`` per step (the
frame the player draws and the state after the step) and one ``JobEnd`` per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from diffusion_core.samplers import DEFAULT_GUIDANCE, DdpmVariance, ReverseProcess, Sampler, StepperState
from ui.reverse.frames import Frame

EndReason = Literal["done", "max_steps", "slice", "cancelled", "error"]


@dataclass(frozen=True)
class RunSpec:
    """The reverse process of a job: the arguments of ``samplers.ReverseProcess`` (x_T, the noise generator
    and the position come with the ``WireState``), and where the worker finds the network."""

    labels: tuple[int, ...]  # one per sample, 0-9 or -1 (any digit)
    sampler: Sampler
    steps: int
    eta: float = 0.0
    guidance: float = DEFAULT_GUIDANCE
    variance: DdpmVariance = "beta_tilde"
    t_start: int | None = None  # SDEdit starts below T
    device: str = "cpu"  # where the worker runs the network (the sidebar's device)
    weights_dir: str = ""  # the folder of the denoiser's weights (ui.model.WEIGHTS_DIR)

    def new(self, model: nn.Module, generator: torch.Generator | None = None,
            x_start: torch.Tensor | None = None) -> ReverseProcess:
        """A fresh stepper of this job on ``model`` (x_T drawn with ``generator`` unless ``x_start``)."""
        return ReverseProcess(model, list(self.labels), sampler=self.sampler, steps=self.steps, eta=self.eta,
                              guidance=self.guidance, variance=self.variance, generator=generator,
                              x_start=x_start, t_start=self.t_start)

    def build(self, model: nn.Module, state: "WireState") -> ReverseProcess:
        """The stepper of this job on ``model``, standing where ``state`` says (the same steps follow as
        in the server's own ``ReverseProcess`` with these arguments)."""
        generator = torch.Generator() if state.generator_state is not None else None
        process = self.new(model, generator, torch.from_numpy(state.x.copy()))
        process.restore(state.to_state())
        return process


@dataclass(frozen=True)
class WireState:
    """``samplers.StepperState`` as numpy arrays and bytes."""

    position: int
    x: np.ndarray  # float32 [N, 1, H, W]
    generator_state: bytes | None
    last_t: int | None = None  # DPM-Solver++'s memory: t and x0_hat of the previous step
    last_x0: np.ndarray | None = None

    @classmethod
    def of(cls, state: StepperState) -> "WireState":
        gen = None if state.generator_state is None else state.generator_state.numpy().tobytes()
        last_t, last_x0 = (None, None) if state.last is None else (state.last[0], state.last[1].numpy().copy())
        return cls(position=state.position, x=state.x.numpy().copy(), generator_state=gen, last_t=last_t, last_x0=last_x0)

    def to_state(self) -> StepperState:
        gen = None if self.generator_state is None else torch.frombuffer(bytearray(self.generator_state), dtype=torch.uint8)
        last = None if self.last_t is None else (self.last_t, torch.from_numpy(self.last_x0.copy()))
        return StepperState(position=self.position, x=torch.from_numpy(self.x.copy()), generator_state=gen, last=last)


@dataclass(frozen=True)
class Job:
    run_id: int
    spec: RunSpec
    state: WireState
    max_steps: int | None  # stop after this many steps (the Step button: 1); None: to the end
    frames: bool  # send the player's frame of every step (the comparison and SDEdit need only the end)
    slice_s: float | None  # give the worker back after this many seconds of steps (the pool queues the rest)


@dataclass(frozen=True)
class Cancel:
    run_id: int


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class Ready:
    pid: int
    threads: int  # torch's intra-op threads in the worker


@dataclass(frozen=True)
class StepMsg:
    run_id: int
    frame: Frame | None  # what the player draws (None when the job asked for no frames)
    sigma: float
    final: np.ndarray | None  # uint8 [N, H, W]: x_0, on the last step
    state: WireState  # after this step
    seconds: float  # the step's computing time in the worker


@dataclass(frozen=True)
class JobEnd:
    run_id: int
    reason: EndReason
    detail: str = ""  # the error, for the server's log (the page shows a translated message)
