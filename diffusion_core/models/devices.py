"""Choose the torch device from the user's setting."""

from __future__ import annotations

import os
import platform
from pathlib import Path
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


def describe_hardware(device: torch.device | str = "cpu", threads: int | None = None) -> str:
    """The machine in words for benchmark reports: CPU model, cores, PyTorch threads (this process's,
    or ``threads`` when the work runs elsewhere, e.g. in the app's server) and the GPU."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = threads or torch.get_num_threads()
    text = f"CPU {name}, {os.cpu_count()} cores, {threads} PyTorch thread(s), torch {torch.__version__}"
    if torch.device(device).type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(torch.device(device))}"
    return text
