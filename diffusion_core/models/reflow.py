"""The reflowed digit generator: the shipped UNet fine-tuned into a 2-rectified flow (Liu et al. 2023).

    model = load_denoiser(name="reflow")
    digits = generate(model, [3, 1, 4], steps=2)   # two network calls, Euler on its own flow

The student is a velocity field u(x_t, t, y) on the rectified-flow path x_t = (1 - t) x_0 + t x_1
(t = 0 data, t = 1 noise, the course's direction: Liu et al. run time the other way, their velocity is
minus ours). It reuses the teacher's UNet and its weights as they are, read at the teacher's own inputs:

- the input is scaled to unit variance and the time mapped to the teacher's timestep of the same SNR
  (Kingma et al. 2021, sec. 5.1): x_vp = x_t / r, r = sqrt((1 - t)^2 + t^2), alpha = (1 - t) / r,
  sigma = t / r, tau = T t_schedule(log SNR = 2 log((1 - t) / t)), fractional (the sinusoidal embedding
  takes any tau);
- the network's output F is read as a v-prediction (Salimans & Ho 2022, sec. 4), v = alpha eps - sigma x_0,
  well conditioned at both ends (an eps-prediction cannot give x_0 at t = 1); then
  eps_hat = sigma x_vp + alpha F, x0_hat = alpha x_vp - sigma F, and u = eps_hat - x0_hat
  = (sigma - alpha) x_vp + (alpha + sigma) F.

The pairs it learnt from were drawn with classifier-free guidance (Ho & Salimans 2022) at the page's scale,
so the guidance is in the flow itself (guidance distillation, Meng et al. 2023): one call is one pass of the
conditional network, not the two of a guided teacher. Its default sampler is Euler on its flow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor, nn

from ..process.paths import expand, from_schedule
from ..process.schedules import Schedule, make_schedule
from ..samplers.flow import FLOW_METHODS, flow_times, integrate_flow
from .unet import UNet
from .weights import PRETRAINED_DIR, DenoiserConfig, WeightsError, load_matching_state, load_state

WEIGHTS_NAME = "reflow.safetensors"
CONFIG_NAME = "reflow.json"
DEFAULT_STEPS = 2  # Euler steps = network calls of generate() when the caller names none


@dataclass(frozen=True)
class StudentConfig:
    """The student's architecture (that of its teacher), the teacher's schedule (for the time map) and how
    its pairs were drawn (for the model card)."""

    teacher: DenoiserConfig
    guidance: float  # the classifier-free guidance of the pairs, now part of the flow
    pairs: dict  # {"count", "sampler", "steps", "spacing", "seed"}
    stage: str  # "reflow" (2-rectified flow) or "reflow+distill"

    def to_dict(self) -> dict:
        return {"teacher": self.teacher.to_dict(), "guidance": self.guidance, "pairs": self.pairs,
                "stage": self.stage}

    @classmethod
    def from_dict(cls, d: dict) -> "StudentConfig":
        return cls(teacher=DenoiserConfig.from_dict(d["teacher"]), guidance=float(d["guidance"]),
                   pairs=dict(d["pairs"]), stage=str(d["stage"]))


def teacher_time(t: Tensor, schedule: Schedule) -> Tensor:
    """The teacher's (fractional) timestep tau in [0, T] with the SNR of time t of the rectified-flow path:
    log SNR = 2 log((1 - t) / t); t = 1 maps to T and t = 0 to 0."""
    t = torch.as_tensor(t, dtype=torch.float64)
    log_snr = 2 * (torch.log1p(-t) - torch.log(t))
    return schedule.T * from_schedule(schedule).t_at_log_snr(log_snr)


@lru_cache(maxsize=256)
def _teacher_time_of(t: float, kind: str, T: int) -> float:
    """``teacher_time`` of one time, kept: a sampler asks the same few times again and again, and the bisection
    (60 rounds of small tensor operations) costs a third of a network call of 16 digits on one core."""
    return float(teacher_time(torch.tensor([t], dtype=torch.float64), make_schedule(kind, T)))  # type: ignore[arg-type]


def student_velocity(net: nn.Module, x_t: Tensor, t: Tensor, labels: Tensor, schedule: Schedule) -> Tensor:
    """u(x_t, t, y) of the module docstring: x_t [N, 1, 28, 28], t [N] in (0, 1] (float64), labels [N]."""
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(x_t.shape[0])
    r = torch.sqrt((1 - t) ** 2 + t**2)
    alpha, sigma = expand((1 - t) / r, x_t), expand(t / r, x_t)
    x_vp = x_t / expand(r, x_t)
    if bool((t == t[0]).all()):  # one time for every row, as in a sampler: the kept value
        tau = torch.full((len(t),), _teacher_time_of(float(t[0]), schedule.kind, schedule.T), device=x_t.device)
    else:
        tau = teacher_time(t, schedule).to(x_t.device, torch.float32)
    v_hat = net(x_vp, tau, labels)
    return (sigma - alpha) * x_vp + (alpha + sigma) * v_hat


class ReflowStudent(nn.Module):
    """The student network with what it needs to sample itself: ``model.velocity(x_t, t, labels)`` and
    ``model.generate(labels, steps=k)`` (k Euler steps from t = 1 to 0, k network calls)."""

    def __init__(self, net: UNet, config: StudentConfig):
        super().__init__()
        self.net, self.config = net, config
        self.schedule = config.teacher.make_schedule()

    def velocity(self, x_t: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        return student_velocity(self.net, x_t, t, labels, self.schedule)

    def forward(self, x_t: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        return self.velocity(x_t, t, labels)

    @torch.inference_mode()
    def generate(self, labels: Tensor | list[int], *, steps: int = DEFAULT_STEPS, generator: torch.Generator | None = None,
                 x_start: Tensor | None = None, method: str = "euler", guidance: float | None = None,
                 clip: bool = True) -> Tensor:
        """Digits [N, 1, 28, 28] in [-1, 1] for ``labels`` (0-9): x_1 ~ N(0, I) drawn with ``generator`` on the
        CPU (or ``x_start``), then ``steps`` equal Euler (or Heun) steps of the flow to t = 0. ``guidance``:
        None or the scale the pairs were drawn with (it is part of the flow; another cannot be chosen)."""
        if guidance is not None and abs(guidance - self.config.guidance) > 1e-9:
            raise ValueError(f"the reflowed student's guidance is built in (s = {self.config.guidance:g}); "
                             f"got guidance={guidance}")
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {FLOW_METHODS}")
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if len(labels) == 0 or bool(((labels < 0) | (labels > 9)).any()):
            raise ValueError("labels must be one or more digits 0-9 (the student has no unconditional mode)")
        if x_start is None:
            x_start = torch.randn((len(labels), 1, 28, 28), generator=generator)
        elif x_start.shape[0] != len(labels):
            raise ValueError(f"x_start holds {x_start.shape[0]} images for {len(labels)} labels")
        p = next(self.parameters())
        y = labels.to(p.device)

        def velocity_fn(x: Tensor, t: Tensor) -> Tensor:
            return self.velocity(x, t, y)

        x = integrate_flow(velocity_fn, x_start.to(p.device, p.dtype), flow_times(steps), method=method)
        return (x.clamp(-1, 1) if clip else x).float().cpu()


def build_student(teacher_net: UNet, teacher_config: DenoiserConfig, guidance: float, pairs: dict,
                  stage: str = "reflow") -> ReflowStudent:
    """A student that starts from the teacher's weights (a copy; the teacher is left as it is)."""
    net = UNet(teacher_config.unet)
    net.load_state_dict(teacher_net.state_dict())
    return ReflowStudent(net, StudentConfig(teacher=teacher_config, guidance=guidance, pairs=pairs, stage=stage))


def save_student(student: ReflowStudent, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``reflow.safetensors`` (the UNet's weights) and ``reflow.json`` (its config, plus ``extra``)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in student.net.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    (directory / CONFIG_NAME).write_text(json.dumps(student.config.to_dict() | (extra or {}), indent=2) + "\n")
    return directory / WEIGHTS_NAME


def load_reflow(device: str | torch.device = "cpu", directory: str | Path = PRETRAINED_DIR) -> ReflowStudent:
    """The shipped student (``weights.DENOISERS["reflow"]``), in eval mode on ``device``; WeightsError names
    the file if it is missing, damaged or does not fit."""
    from .devices import resolve_device

    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    try:
        config = StudentConfig.from_dict(json.loads(config_path.read_text()))
        config.teacher.make_schedule()
        net = UNet(config.teacher.unet)
    except FileNotFoundError:
        raise WeightsError(f"reflow config not found: {config_path}") from None
    except (ValueError, KeyError, TypeError, AttributeError, RuntimeError) as e:
        raise WeightsError(f"reflow config {config_path} is invalid: {e}") from None
    weights_path = directory / WEIGHTS_NAME
    load_matching_state(net, load_state(weights_path, "reflow"), weights_path, config_path, "reflow")
    target = device if isinstance(device, torch.device) else resolve_device(device)
    model = ReflowStudent(net, config).to(target).eval()
    if target.type == "cpu":
        model = model.to(memory_format=torch.channels_last)  # as load_denoiser: faster convolutions on oneDNN
    return model

