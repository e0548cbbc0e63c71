"""``bench/sweep.py`` runs end to end on a tiny random denoiser and classifier and a fake MNIST, writes the
JSON file the steps page reads (schema in its docstring), resumes, and re-times."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.bench.test_bench import ROOT, tiny_bench_files

SCHEMA = ("sampler", "nfe", "spacing", "n_samples", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "fd",
          "fd_floor", "seconds_16")


def test_sweep_writes_resumes_and_retimes(tmp_path):
    tiny_bench_files(tmp_path)
    out = tmp_path / "sweep.json"
    common = ["--weights", str(tmp_path / "denoiser"), "--classifier", str(tmp_path / "classifier"),
              "--data", str(tmp_path / "mnist"), "--out", str(out), "--cache", str(tmp_path / "cache"),
              "--threads", "1", "--batch", "10", "--test-images", "100"]

    def sweep(*args: str) -> str:
        result = subprocess.run([sys.executable, "bench/sweep.py", *common, *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout + result.stderr

    configs = ["--configs", "dpm_solver++:4:logsnr", "ddim:4:linear", "ddpm:3:linear", "dpm_solver++:4:logsnr:lof"]
    text = sweep("--samples", "20", *configs)
    assert "| dpm_solver++ | 4 | logsnr, lower-order final | 1.5 | 20 |" in text
    data = json.loads(out.read_text())
    rows = data["rows"] + data["extra_rows"]
    assert len(data["rows"]) == 3 and len(data["extra_rows"]) == 1 and data["meta"]["guidance"] == 1.5
    for row in rows:
        assert set(SCHEMA) <= set(row)
        assert row["n_samples"] == 20 and 0 <= row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"] <= 1
        assert row["fd"] > 0 and row["fd_floor"] > 0 and row["seconds_16"] > 0
    assert [r.get("lower_order_final") for r in rows] == [False, None, None, True]
    assert "already in" in sweep("--samples", "20", *configs[:2])  # resumes: nothing is drawn again
    sweep("--samples", "20", "--guidance", "1.25", *configs[:2])  # another guidance: extra rows
    data = json.loads(out.read_text())
    assert len(data["rows"]) == 3 and [r["guidance"] for r in data["extra_rows"]] == [1.5, 1.25]
    sweep("--retime", "--cpu-time")
    data = json.loads(out.read_text())
    assert all(r["seconds_16"] == r["cpu_seconds_16"] for r in data["rows"] + data["extra_rows"])
    assert "CPU time" in data["meta"]["seconds_16"]
