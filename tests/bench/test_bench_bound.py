"""``bench/bound.py`` runs end to end on a tiny random denoiser (T = 30) and a fake MNIST, resumes from its
checkpoint, and its curves file holds what the bound page reads."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.bench.test_bench import ROOT, tiny_bench_files


def test_bench_bound_runs_and_resumes(tmp_path):
    tiny_bench_files(tmp_path, T=30, digits=10, classifier=False)
    curves = tmp_path / "curves.json"
    common = [sys.executable, "bench/bound.py", "--weights", str(tmp_path / "denoiser"), "--data",
              str(tmp_path / "mnist"), "--out", str(tmp_path / "run"), "--curves", str(curves), "--batch", "2"]
    first = subprocess.run(common + ["--digits", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-3000:]
    second = subprocess.run(common + ["--digits", "4"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming after 2 digits" in second.stderr
    assert "first 4 MNIST test digits, all T = 30 terms" in second.stdout
    assert second.stdout.count("| conditional") == 2 and second.stdout.count("| unconditional") == 2
    data = json.loads(curves.read_text())
    assert data["digits"] == 4 and data["T"] == 30
    for key in ("terms_cond_beta", "terms_uncond_beta_tilde", "eps_mse_cond", "eps_mse_uncond_se"):
        assert len(data[key]) == 30
    mean, se = data["total_cond_beta_tilde"]
    assert mean > 0 and se > 0
