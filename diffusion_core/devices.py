"""Choose the torch device from the user's setting."""

from __future__ import annotations

from typing import Literal

import torch

DeviceChoice = Literal["auto", "cpu", "cuda"]


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(choice: str = "auto") -> torch.device:
    """"auto" means CUDA when there is one, else the CPU; "cuda" without a GPU is an error."""
    if choice == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda":
        if not cuda_available():
            raise ValueError("CUDA was requested but no CUDA device is available")
        return torch.device("cuda")
    raise ValueError(f"unknown device {choice!r}; expected 'auto', 'cpu' or 'cuda'")
