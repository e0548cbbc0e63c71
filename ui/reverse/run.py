"""The live player of the reverse-process page: its state machine and its recorded frames.

No math here: the steps are ``diffusion_core.samplers.ReverseProcess``; this module decides when
to take one, keeps what the page shows of it, and stops when asked.

How it works in Streamlit: the run lives in ``st.session_state`` (a ``PlayerRun``), never in the
script's local variables. The buttons only change its status (``PlayerRun.command``, from an
``on_click`` callback, before the script body runs). The page takes steps while the status is
"running" (``run_loop``), drawing as it goes: inside the player's fragment when only the fragment
runs (after a click on its buttons), at the end of the script when the whole page runs. A click
outside the fragment makes Streamlit stop the script at its next ``st`` call; a click inside it is
queued until the run ends, so the loop looks for one after every step and returns. Either way the
script runs again with the new status; because every step is stored in the session before anything
is drawn, nothing is lost or computed twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from diffusion_core.samplers import ReverseProcess

# The settings live in ui.reverse.settings; the page and the tests read them through this module too.
from ui.reverse.settings import (  # noqa: F401
    ANY_DIGIT,
    COMMANDS,
    DEFAULTS,
    EPS_RANGE,
    KEY_DIGIT,
    KEY_ETA,
    KEY_GUIDANCE,
    KEY_MODE,
    KEY_N,
    KEY_SAMPLER,
    KEY_STEPS,
    KEY_VARIANCE,
    LABEL_MODES,
    MAX_FRAMES,
    MAX_SAMPLES,
    PANELS,
    SAMPLER_CHOICES,
    STATE_KEY,
    STEP_CHOICES,
    Command,
    LabelMode,
    RunSettings,
    Status,
    custom_label_key,
    labels_for,
    nearest_choice,
    settings_from_state,
    step_choices,
)
from ui.reverse.frames import Frame, grid, record_every, to_uint8  # noqa: F401  (streamlit-free: the worker uses them)
from ui.script_run import rerun_waiting, session_connected


@dataclass
class PlayerRun:
    """The state of the player, kept in st.session_state between script runs."""

    status: Status = "idle"
    settings: RunSettings | None = None
    process: ReverseProcess | None = None  # the live stepper, while running or paused
    timesteps: list[int] = field(default_factory=list)  # t of every step of the run
    x_T: np.ndarray | None = None  # uint8 [N, H, W]: the start, shown before the first step
    latest: Frame | None = None  # the last step taken
    frames: list[Frame] = field(default_factory=list)  # the recorded steps (at most ~MAX_FRAMES)
    sigmas: list[float] = field(default_factory=list)  # sigma of every step taken
    final: np.ndarray | None = None  # uint8 [N, H, W]: x_0, once done
    pending_step: bool = False  # "step" was pressed: take one step at the next script run
    compute_seconds: float = 0.0  # time spent in steps (pauses not counted)
    version: int = 0  # changes whenever something new is recorded
    ticket: object | None = None  # the run's job on the denoiser worker while one is queued or running (ui.worker)
    notice: str | None = None  # why the run stopped by itself ("worker_died", "worker_error"), shown until the next button

    # ---------------------------------------------------------------- commands
    def command(self, cmd: Command, settings: RunSettings) -> None:
        """Apply a button: play, pause, step, stop or reset. ``settings`` are used when a new run starts.
        Anything but Play on a running run takes back its job on the worker: the steps it would still
        send are not wanted (Pause keeps the state of the last step received, and Play goes on from it)."""
        self.notice = None
        if cmd != "play" or self.status != "running":
            self.drop_ticket()
        if cmd == "play":
            if self.status == "paused":
                self.status = "running"
            elif self.status in ("idle", "stopped", "done"):
                self._new(settings, "running")
        elif cmd == "pause":
            if self.status == "running":
                self.status = "paused"
        elif cmd == "step":
            if self.status in ("idle", "stopped", "done"):
                self._new(settings, "paused")
            else:
                self.status = "paused"
            self.pending_step = True
        elif cmd == "stop":
            if self.status in ("running", "paused"):
                self.status = "stopped"
                self.process = None  # frees x and the generator; the frames stay for the timeline
                self.pending_step = False
        elif cmd == "reset":
            self.__init__()  # type: ignore[misc]
        else:
            raise ValueError(f"unknown command {cmd!r}; expected one of {COMMANDS}")

    def _new(self, settings: RunSettings, status: Status) -> None:
        self.__init__()  # type: ignore[misc]
        self.settings, self.status = settings, status

    def drop_ticket(self) -> None:
        """Cancel the run's job on the worker, if it has one."""
        if self.ticket is not None:
            self.ticket.cancel()
            self.ticket = None

    # ---------------------------------------------------------------- stepping
    @property
    def active(self) -> bool:
        """A run is under way (running or paused): its settings cannot change."""
        return self.status in ("running", "paused")

    @property
    def needs_start(self) -> bool:
        return self.active and self.process is None

    def start(self, model: torch.nn.Module) -> None:
        """Create the reverse process (draws x_T) for a run that has none yet."""
        assert self.settings is not None
        self.process = self.settings.start(model)
        self.timesteps = list(self.process.timesteps)
        self.x_T = to_uint8(self.process.x)
        self.version += 1

    @property
    def steps_done(self) -> int:
        return len(self.sigmas)

    @property
    def total_steps(self) -> int:
        return len(self.timesteps) if self.timesteps else (self.settings.steps if self.settings else 0)

    def advance(self, lock: AbstractContextManager = nullcontext()) -> Frame:
        """Take one step (the network call under ``lock``), record it, and finish the run after the last one."""
        assert self.process is not None and self.active
        with lock:
            t0 = time.perf_counter()
            step = self.process.step()
            seconds = time.perf_counter() - t0
        return self.record(Frame.from_step(step), to_uint8(step.x_prev) if step.t_prev == 0 else None, seconds)

    def record(self, frame: Frame, final: np.ndarray | None, seconds: float) -> Frame:
        """Keep a step taken here (``advance``) or by the worker (ui.reverse.remote): ``final`` is x_0 as
        uint8 [N, H, W] on the last step; the run is done then."""
        self.compute_seconds += seconds
        self.latest = frame
        self.sigmas.append(frame.sigma)
        every = record_every(len(self.timesteps))
        last = frame.t_prev == 0
        if frame.index % every == 0 or last:
            self.frames.append(frame)
        if last:
            self.final = final
            self.status, self.process, self.ticket = "done", None, None
        self.version += 1
        return frame

    def take_pending_step(self, lock: AbstractContextManager = nullcontext()) -> Frame | None:
        """The step asked for with the "step" button, if any."""
        if not (self.pending_step and self.process is not None):
            return None
        self.pending_step = False
        return self.advance(lock)

    def timeline(self) -> list[Frame]:
        """The steps the timeline slider scrubs through: the recorded ones, and the latest step if it
        was not recorded (a run paused between two recorded steps)."""
        if self.latest is not None and (not self.frames or self.frames[-1] is not self.latest):
            return [*self.frames, self.latest]
        return list(self.frames)

    @property
    def nbytes(self) -> int:
        """Memory held by the recorded pictures."""
        extra = sum(a.nbytes for a in (self.x_T, self.final) if a is not None)
        return sum(f.nbytes for f in self.frames) + extra + (self.latest.nbytes if self.latest else 0)

    def gif_frames(self, ncols: int = 8) -> list[np.ndarray]:
        """x_t of every recorded step, then x_0 held for a while: the pictures of the animated GIF."""
        pictures = [grid(f.x_t, ncols) for f in self.frames]
        if self.final is not None:
            pictures += [grid(self.final, ncols)] * 5
        return pictures


RunEnd = Literal["done", "paused", "stopped", "idle", "disconnected", "interrupted"]


def run_loop(
    run: PlayerRun,
    lock: AbstractContextManager,
    on_step: Callable[[Frame], None],
    *,
    connected: Callable[[], bool] = session_connected,
    waiting: Callable[[], bool] = rerun_waiting,
) -> RunEnd:
    """Take steps while the run is "running". After each step ``on_step`` draws it (its ``st`` calls are
    where a click outside a fragment interrupts the loop). Returns why it ended: "done"; "paused",
    "stopped" or "idle" (the status was changed); "disconnected" (the tab closed: the run is paused,
    nothing computes on); or "interrupted" (a click inside a fragment is waiting for this script run to
    end, ``waiting``: the run stays "running" and the click's own rerun decides what comes next)."""
    while run.status == "running":
        if not connected():
            run.status = "paused"
            return "disconnected"
        if waiting():
            return "interrupted"
        frame = run.advance(lock)
        on_step(frame)
    return run.status  # type: ignore[return-value]


class Disconnected(Exception):
    """The browser tab went away during a computation."""


def run_to_end(
    process: ReverseProcess,
    lock: AbstractContextManager,
    on_step: Callable[[int, int], None],
    *,
    connected: Callable[[], bool] = session_connected,
) -> tuple[torch.Tensor, float]:
    """Run ``process`` to x_0, one locked network call at a time, calling ``on_step(done, total)`` after
    each step (a progress bar: its ``st`` call lets a click interrupt). Returns x_0 and the seconds spent
    in steps. Raises Disconnected if the tab closes."""
    total, seconds = len(process.timesteps), 0.0
    x0 = process.x
    while not process.done:
        if not connected():
            raise Disconnected
        with lock:
            began = time.perf_counter()
            x0 = process.step().x_prev
            seconds += time.perf_counter() - began
        on_step(process.position, total)
    return x0, seconds


@dataclass(frozen=True)
class Comparison:
    """DDPM and DDIM from the same x_T, the same labels and the same number of steps."""

    steps: int
    settings: RunSettings  # labels, s, sigma^2 choice, eta, seed of both runs
    ddpm: np.ndarray  # uint8 [N, H, W]
    ddim: np.ndarray  # uint8 [N, H, W]
    ddpm_seconds: float
    ddim_seconds: float


@dataclass(frozen=True)
class SdeditResult:
    """One SDEdit run: a digit noised to t0 several times, and each denoised from t0."""

    source: str  # "digit_3", ... or "upload"
    t0: int
    steps: int
    label: int  # the digit it is guided towards, or ANY_DIGIT
    original: np.ndarray  # uint8 [H, W]
    noised: np.ndarray  # uint8 [K, H, W]: x_{t0}
    result: np.ndarray  # uint8 [K, H, W]: x_0
