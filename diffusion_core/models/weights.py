"""Save and load the denoiser: safetensors weights plus a JSON config beside them.

Never pickle: a weights file is data, not code. Every failure names the file.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..process.schedules import Schedule, ScheduleKind, make_schedule
from .files import PRETRAINED_DIR, WeightsError, load_matching_state, load_state, save_state
from .latent import LATENT_DIR, load_latent_pipeline
from .unet import UNet, UNetConfig

__all__ = ["CONFIG_NAME", "DENOISERS", "PRETRAINED_DIR", "WEIGHTS_NAME", "Denoiser", "DenoiserConfig", "WeightsError",
           "build_denoiser", "load_denoiser", "load_pixel_denoiser", "load_matching_state", "load_state", "read_config", "save_denoiser",
           "save_state"]

WEIGHTS_NAME = "denoiser.safetensors"
CONFIG_NAME = "denoiser.json"


@dataclass(frozen=True)
class DenoiserConfig:
    """Everything needed to rebuild the denoiser and its diffusion."""

    unet: UNetConfig  # the architecture
    schedule: ScheduleKind  # noise schedule it was trained with
    T: int  # number of diffusion steps it was trained with

    def to_dict(self) -> dict:
        return {"unet": self.unet.to_dict(), "schedule": self.schedule, "T": self.T}

    @classmethod
    def from_dict(cls, d: dict) -> "DenoiserConfig":
        return cls(unet=UNetConfig.from_dict(d["unet"]), schedule=d["schedule"], T=int(d["T"]))

    def make_schedule(self) -> Schedule:
        return make_schedule(self.schedule, self.T)


def save_denoiser(model: nn.Module, config: DenoiserConfig, directory: str | Path) -> Path:
    """Write ``denoiser.safetensors`` and ``denoiser.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_state(model, directory / WEIGHTS_NAME)
    (directory / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return directory / WEIGHTS_NAME


def read_config(path: Path) -> DenoiserConfig:
    """Parse the JSON config and check its schedule, with an error that names the file."""
    try:
        config = DenoiserConfig.from_dict(json.loads(path.read_text()))
        config.make_schedule()
        return config
    except FileNotFoundError:
        raise WeightsError(f"denoiser config not found: {path}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise WeightsError(f"denoiser config {path} is invalid: {e}") from None


def build_denoiser(directory: str | Path = PRETRAINED_DIR) -> tuple[UNet, DenoiserConfig]:
    """Rebuild the network from ``directory`` on the CPU, in eval mode."""
    directory = Path(directory)
    config = read_config(directory / CONFIG_NAME)
    weights_path = directory / WEIGHTS_NAME
    state = load_state(weights_path)
    try:
        model = UNet(config.unet)
    except (ValueError, TypeError, RuntimeError) as e:  # e.g. three widths, or groups that do not divide them
        raise WeightsError(f"denoiser config {directory / CONFIG_NAME} is invalid: {e}") from None
    load_matching_state(model, state, weights_path, directory / CONFIG_NAME)
    return model.eval(), config


class Denoiser(nn.Module):
    """The trained network with what it was trained with: ``model(x_t, t, labels)`` gives eps_hat;
    ``model.config`` and ``model.schedule`` say how to sample from it."""

    def __init__(self, net: UNet, config: DenoiserConfig):
        super().__init__()
        self.net = net
        self.config = config
        self.schedule = config.make_schedule()

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(x_t, t, labels)


def load_pixel_denoiser(device: torch.device, directory: str | Path | None = None) -> Denoiser:
    """The pixel-space denoiser of ``directory`` (``pretrained/`` by default) on ``device``, in eval mode."""
    net, config = build_denoiser(PRETRAINED_DIR if directory is None else directory)
    model = Denoiser(net, config).to(device).eval()
    if device.type == "cpu":
        # oneDNN's convolutions skip a layout reorder per call with NHWC weights: 15-30 % faster
        # here on 2 cores, same numbers to float rounding (bench/run.py measures it).
        model = model.to(memory_format=torch.channels_last)
    return model


def _load_latent(device: torch.device, directory: str | Path | None = None) -> nn.Module:
    return load_latent_pipeline(LATENT_DIR if directory is None else directory, device)


def _load_reflow(device: torch.device, directory: str | Path | None = None) -> nn.Module:
    # models/reflow builds on this module (the teacher's config and files), so it is imported only when asked for
    load_reflow = importlib.import_module(".reflow", __package__).load_reflow
    return load_reflow(device) if directory is None else load_reflow(device, directory)


# name -> loader(device, directory or None for its own folder). Each model samples with
# ``samplers.generate(model, labels, steps=...)``: a model with a ``generate`` method of its own (the latent
# pipeline) is sampled by it. Another model is added here the same way.
DENOISERS: dict[str, Callable[[torch.device, str | Path | None], nn.Module]] = {
    "denoiser": load_pixel_denoiser,  # the shipped pixel-space network (pretrained/denoiser.*)
    "latent": _load_latent,  # latent diffusion: autoencoder + latent UNet (pretrained/latent/, models/latent.py)
    "reflow": _load_reflow,  # the 2-rectified flow student of the pixel network (pretrained/reflow.*, models/reflow.py)
}


def load_denoiser(device: str | torch.device = "auto", directory: str | Path | None = None,
                  name: str = "denoiser") -> nn.Module:
    """The pretrained model ``name`` (a key of DENOISERS: "denoiser", the pixel network, or "latent", the latent
    diffusion pipeline) from ``directory`` (its own folder under ``pretrained/`` by default), in eval mode on
    ``device`` ("auto": CUDA when there is one). Raises WeightsError naming the file if it is missing,
    truncated or does not fit the network; never unpickles anything."""
    from .devices import resolve_device

    if name not in DENOISERS:
        raise ValueError(f"unknown model {name!r}; expected one of {tuple(DENOISERS)}")
    target = device if isinstance(device, torch.device) else resolve_device(device)
    return DENOISERS[name](target, directory)


WARM_UP_BATCH = 32  # the page's default run: 16 digits, guided, so two passes batched as one


def warm_up(model: Denoiser, batch: int = WARM_UP_BATCH) -> None:
    """One network call on zeros, so that the first Play does not pay for building the convolution
    kernels of that batch size (oneDNN builds them at the first call of each shape)."""
    device = next(model.parameters()).device
    x_t = torch.zeros(batch, 1, 28, 28, device=device)
    t = torch.full((batch,), model.config.T // 2, device=device)
    no_label = torch.full((batch,), -1, device=device)
    with torch.inference_mode():
        model(x_t, t, no_label)
