"""``bench/run.py --quick`` runs end to end, on a tiny random denoiser and classifier and a fake MNIST,
so that the benchmark command cannot rot (no shipped weights or data set needed)."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from diffusion_core.models.classifier import Classifier, ClassifierConfig, save_classifier
from diffusion_core.models.unet import UNet, UNetConfig
from diffusion_core.models.weights import DenoiserConfig, save_denoiser

ROOT = Path(__file__).resolve().parents[2]


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """A gzip IDX file (big-endian magic, then one 32-bit size per dimension, then the uint8 bytes)."""
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def fake_mnist(directory: Path, n: int = 300) -> None:
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)), 2051)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n), 2049)


def tiny_bench_files(directory: Path, *, T: int = 100, digits: int = 300, classifier: bool = True) -> None:
    """What a benchmark reads, tiny and random: ``denoiser/`` (a small UNet with T steps), ``classifier/``
    and ``mnist/`` (``fake_mnist`` with ``digits`` images per split), under ``directory``."""
    torch.manual_seed(0)
    unet = UNetConfig(channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16, attention=False)
    save_denoiser(UNet(unet), DenoiserConfig(unet=unet, schedule="cosine", T=T), directory / "denoiser")
    if classifier:
        save_classifier(Classifier(ClassifierConfig(channels=(4, 8, 16))), directory / "classifier")
    (directory / "mnist").mkdir()
    fake_mnist(directory / "mnist", n=digits)


def test_bench_quick_runs_end_to_end(tmp_path):
    tiny_bench_files(tmp_path)
    grid = tmp_path / "grid.png"
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--weights", str(tmp_path / "denoiser"),
         "--classifier", str(tmp_path / "classifier"), "--data", str(tmp_path / "mnist"),
         "--guidances", "2", "--threads", "1", "--grid", str(grid)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for heading in ("# Denoiser benchmark", "## Speed", "## Quality", "## Guidance sweep", "## Unconditional"):
        assert heading in out, out
    assert "DDIM-5, 16 digits" in out and "DDPM-10, 16 digits" in out and "floor" in out
    assert grid.is_file() and grid.stat().st_size > 0
