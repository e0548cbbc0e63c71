"""Reading and writing network files: safetensors weights (never pickle: a weights file is data, not code),
with errors that name the file. Shared by every network (denoisers, the autoencoder, the classifier)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "pretrained"


class WeightsError(RuntimeError):
    """The weights or their config are missing, damaged or do not fit the network."""


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
