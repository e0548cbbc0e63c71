"""Save and load the denoiser: safetensors weights plus a JSON config beside them.

Never pickle: a weights file is data, not code. Every failure names the file.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..process.schedules import Schedule, ScheduleKind, make_schedule
from .unet import UNet, UNetConfig

PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "pretrained"
WEIGHTS_NAME = "denoiser.safetensors"
CONFIG_NAME = "denoiser.json"


class WeightsError(RuntimeError):
    """The weights or their config are missing, damaged or do not fit the network."""


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


def load_state(path: Path, what: str = "denoiser") -> dict[str, torch.Tensor]:
    """Read a safetensors file, with an error that names the file (``what``: whose weights)."""
    if not path.is_file():
        raise WeightsError(f"{what} weights not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{what} weights {path} are damaged or truncated: {e}") from None


def load_matching_state(model: nn.Module, state: dict[str, torch.Tensor], weights_path: Path,
                        config_path: Path, what: str = "denoiser") -> None:
    """Load ``state`` into ``model`` (floating tensors as float32) after checking that every name and shape fits."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        raise WeightsError(
            f"{what} weights {weights_path} do not match the network in {config_path}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong_shape[:3]}"
        )
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


def save_state(model: nn.Module, path: Path) -> None:
    """Write ``model``'s state dict as safetensors (contiguous CPU tensors, no pickle)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})


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


# Shipped networks other than the pixel denoiser: name -> "module:function" of a loader(device) -> nn.Module.
# A loaded model that samples itself has ``generate(labels, *, steps, generator, ...)``, which
# ``samplers.generate`` calls (its own default sampler and guidance; the model card lists the names).
SHIPPED: dict[str, str] = {
    "reflow": "diffusion_core.models.reflow:load_reflow",  # the 2-rectified flow student (models/reflow.py)
}


def load_denoiser(device: str | torch.device = "auto", directory: str | Path = PRETRAINED_DIR, *,
                  name: str = "denoiser") -> nn.Module:
    """A shipped network, by ``name``: "denoiser" (the default) is the pretrained pixel denoiser from
    ``directory`` (``pretrained/`` by default), in eval mode on ``device`` ("auto": CUDA when there is one);
    the other names are those of ``SHIPPED``. Raises WeightsError naming the file if it is missing,
    truncated or does not fit the network; never unpickles anything."""
    from .devices import resolve_device

    if name != "denoiser":
        if name not in SHIPPED:
            raise WeightsError(f"no shipped network is called {name!r}; the names are {['denoiser', *SHIPPED]}")
        module, function = SHIPPED[name].split(":")
        return getattr(importlib.import_module(module), function)(device)
    net, config = build_denoiser(directory)
    target = device if isinstance(device, torch.device) else resolve_device(device)
    model = Denoiser(net, config).to(target).eval()
    if target.type == "cpu":
        # oneDNN's convolutions skip a layout reorder per call with NHWC weights: 15-30 % faster
        # here on 2 cores, same numbers to float rounding (bench/run.py measures it).
        model = model.to(memory_format=torch.channels_last)
    return model
