"""``python -m bench.latent --quick`` runs end to end on tiny random networks and a fake MNIST, so the benchmark
command cannot rot (no shipped weights or data set needed), and writes the JSON the latent page reads."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from diffusion_core.models.autoencoder import Autoencoder, AutoencoderConfig, save_autoencoder
from diffusion_core.models.latent2d import save_codes
from tests.bench.test_bench import ROOT, tiny_bench_files
from tests.models.test_latent import tiny_latent_dir


def test_bench_latent_quick_runs_end_to_end(tmp_path):
    tiny_bench_files(tmp_path)
    latent = tiny_latent_dir(tmp_path / "latent")
    torch.manual_seed(0)
    save_autoencoder(Autoencoder(AutoencoderConfig(latent_shape=(2,), channels=(8, 8, 16), groups=4)), latent,
                     "autoencoder_2d")
    g = torch.Generator().manual_seed(0)
    save_codes(latent, 1.0, (torch.randn(50, 2, generator=g), torch.arange(50) % 10),
               (torch.randn(20, 2, generator=g), torch.arange(20) % 10))
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.latent", "--quick", "--latent", str(latent), "--weights", str(tmp_path / "denoiser"),
         "--classifier", str(tmp_path / "classifier"), "--data", str(tmp_path / "mnist"), "--out", str(out),
         "--nfe", "3", "--guidances", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "## Latent diffusion against the pixel network" in result.stdout and "latent guidance s" in result.stdout
    data = json.loads(out.read_text())
    assert {r["latent"] for r in data["autoencoder"]} == {"-", "image latent 4x7x7", "2-D latent"}
    whats = [r["what"] for r in data["samples"]]
    assert "latent diffusion (image latent)" in whats and "pixel-space network" in whats
    assert len(data["speed"]) == 2 and len(data["guidance"]) == 2
