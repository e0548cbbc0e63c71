"""``bench/flow_sweep.py`` runs end to end on a tiny random denoiser and classifier and a fake MNIST: it writes the
JSON file page 10 reads (bench/sweep.py's fields, plus the DDIM-Euler identity), counts Heun's calls, and resumes."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.bench.test_bench import ROOT, tiny_bench_files
from tests.bench.test_sweep import SCHEMA


def test_flow_sweep_writes_and_resumes(tmp_path):
    tiny_bench_files(tmp_path)
    out = tmp_path / "flow.json"
    common = ["--weights", str(tmp_path / "denoiser"), "--classifier", str(tmp_path / "classifier"),
              "--data", str(tmp_path / "mnist"), "--out", str(out), "--threads", "1", "--test-images", "100",
              "--samples", "20"]

    def run(*args: str) -> str:
        result = subprocess.run([sys.executable, "bench/flow_sweep.py", *common, *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout + result.stderr

    text = run("--configs", "euler:2", "heun:3", "ddim:2", "dpm_solver++:2")
    assert "| heun | 3 | 5 | 20 |" in text  # Heun with 3 steps to t = 0: 2 * 3 - 1 calls
    data = json.loads(out.read_text())
    assert [(r["sampler"], r["nfe"]) for r in data["rows"]] == [("euler", 2), ("heun", 5), ("ddim", 2), ("dpm_solver++", 2)]
    for row in data["rows"]:
        assert set(SCHEMA) - {"spacing", "seconds_16"} <= set(row)
        assert 0 <= row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"] <= 1 and row["fd_floor"] > 0
    assert data["identity"]["max_difference_float64"] < 1e-6  # DDIM is Euler on the rectified flow, any network
    assert data["meta"]["path"] == "rectified_flow" and data["meta"]["seconds_total"] > 0
    before = out.read_text()
    run("--configs", "euler:2")  # resumes: the row is there, nothing is drawn again
    assert json.loads(out.read_text())["rows"] == json.loads(before)["rows"]
