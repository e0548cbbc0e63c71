"""The settings of a reverse-process run: the page's widget keys and defaults, the labels of the
samples, and ``RunSettings``, fixed when a run starts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from diffusion_core.samplers import (
    DEFAULT_GUIDANCE,
    DdpmVariance,
    ReverseProcess,
    Sampler,
)

Status = Literal["idle", "running", "paused", "stopped", "done"]
Command = Literal["play", "pause", "step", "stop", "reset"]
COMMANDS: tuple[str, ...] = get_args(Command)
LabelMode = Literal["cycle", "same", "any", "custom"]
LABEL_MODES: tuple[str, ...] = get_args(LabelMode)
ANY_DIGIT = -1  # the label of an unconditional sample (diffusion_core.models.unet.NULL_LABEL)

MAX_SAMPLES = 16
MAX_FRAMES = 100  # steps kept for the timeline: at most this many, evenly spread, first and last included
EPS_RANGE = 3.0  # eps_hat ~ N(0, I) is shown on [-3, 3]; every other panel on the data range [-1, 1]
STEP_CHOICES: tuple[int, ...] = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)  # for T = 1000
PANELS: tuple[str, ...] = ("x_t", "eps_hat", "x0_hat", "mean", "noise")
SAMPLER_CHOICES: tuple[str, ...] = ("ddim", "ddpm", "dpm_solver++")  # in the order the page offers them

# Widget keys of the page's settings, read by the buttons' callbacks.
KEY_N, KEY_MODE, KEY_DIGIT = "reverse_n", "reverse_label_mode", "reverse_digit"
KEY_SAMPLER, KEY_VARIANCE, KEY_ETA = "reverse_sampler", "reverse_variance", "reverse_eta"
KEY_STEPS, KEY_GUIDANCE = "reverse_steps", "reverse_guidance"
DEFAULTS: dict[str, object] = {
    KEY_N: 16, KEY_MODE: "cycle", KEY_DIGIT: 7, KEY_SAMPLER: "ddim", KEY_VARIANCE: "beta_tilde",
    KEY_ETA: 0.0, KEY_STEPS: 50, KEY_GUIDANCE: DEFAULT_GUIDANCE,
}
STATE_KEY = "reverse_run"  # the PlayerRun in st.session_state


def step_choices(T: int) -> tuple[int, ...]:
    """The numbers of steps offered for a network trained with T steps: those of STEP_CHOICES below T,
    then T itself (every timestep)."""
    return tuple(c for c in STEP_CHOICES if c < T) + (T,)


def nearest_choice(choices: tuple[int, ...], wanted: int) -> int:
    """The choice closest to ``wanted`` (a default that a network with a small T does not offer)."""
    return min(choices, key=lambda c: (abs(c - wanted), c))


def custom_label_key(i: int) -> str:
    return f"reverse_label_{i}"


def labels_for(mode: LabelMode, n: int, digit: int = 0, custom: list[int] | None = None) -> tuple[int, ...]:
    """The label of each of the n samples: 0, 1, 2, ... ("cycle"), one digit for all ("same"),
    no label ("any": unconditional), or the list ``custom`` (-1 = any digit)."""
    if mode == "cycle":
        return tuple(i % 10 for i in range(n))
    if mode == "same":
        return (digit,) * n
    if mode == "any":
        return (ANY_DIGIT,) * n
    if mode == "custom":
        custom = list(custom or [])
        return tuple(custom[i] if i < len(custom) else i % 10 for i in range(n))
    raise ValueError(f"unknown label mode {mode!r}; expected one of {LABEL_MODES}")


@dataclass(frozen=True)
class RunSettings:
    """What a run generates, fixed when it starts."""

    labels: tuple[int, ...]  # one per sample, 0-9 or -1 (any digit)
    sampler: Sampler  # "ddpm", "ddim" or "dpm_solver++"
    steps: int  # number of reverse steps
    eta: float  # DDIM's eta (Song et al. 2021, eq. 16)
    guidance: float  # guidance scale s
    variance: DdpmVariance  # DDPM's sigma^2: "beta" or "beta_tilde"
    seed: int  # seed of the generator that draws x_T and every z
    device: str  # where the network runs ("cpu", "cuda")

    def start(self, model: torch.nn.Module, **kwargs: object) -> ReverseProcess:
        """A new reverse process for these settings; x_T is drawn now from the seeded generator."""
        generator = torch.Generator().manual_seed(self.seed)
        return ReverseProcess(model, list(self.labels), sampler=self.sampler, steps=self.steps, eta=self.eta,
                              guidance=self.guidance, variance=self.variance, generator=generator, **kwargs)


def settings_from_state(state: Mapping[str, object], seed: int, device: str, T: int = 1000) -> RunSettings:
    """The settings the page's widgets hold now (their defaults for widgets not drawn yet); T: the
    network's number of timesteps, which the default number of steps must not exceed."""
    get = lambda key: state.get(key, DEFAULTS[key])  # noqa: E731
    n = int(get(KEY_N))
    custom = [int(state.get(custom_label_key(i), i % 10)) for i in range(n)]
    labels = labels_for(get(KEY_MODE), n, int(get(KEY_DIGIT)), custom)
    steps = int(state.get(KEY_STEPS, nearest_choice(step_choices(T), DEFAULTS[KEY_STEPS])))
    return RunSettings(labels=labels, sampler=get(KEY_SAMPLER), steps=steps, eta=float(get(KEY_ETA)),
                       guidance=float(get(KEY_GUIDANCE)), variance=get(KEY_VARIANCE), seed=seed, device=device)
