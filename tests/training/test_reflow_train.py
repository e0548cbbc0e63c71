"""The reflow scripts on a tiny teacher: pairs are the teacher's DPM-Solver++ digits from seeded x_1 whoever draws
them, the loss goes down, a run stopped and resumed (and lengthened) ends with exactly the weights of an
uninterrupted one, and the export loads through the student's loader."""

from __future__ import annotations

import argparse

import pytest
import torch
from safetensors.torch import load_file

from diffusion_core import generate, load_denoiser
from diffusion_core.models.reflow import load_reflow
from diffusion_core.models.unet import UNet, UNetConfig
from diffusion_core.models.weights import DenoiserConfig, save_denoiser
from diffusion_core.training import reflow as train
from diffusion_core.training import reflow_pairs as pairs

TINY = UNetConfig(channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16, attention=False)
ARGS = ["--batch", "16", "--warmup", "5", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    directory = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(0)
    save_denoiser(UNet(TINY), DenoiserConfig(unet=TINY, schedule="cosine", T=100), directory)
    return directory


@pytest.fixture(scope="module")
def shards(teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs")
    common = ["--out", str(out), "--shards", "3", "--shard-size", "8", "--steps", "3", "--weights", str(teacher)]
    pairs.main(common + ["--worker", "1", "--workers", "2"])  # shard 1
    pairs.main(common)  # shards 0 and 2 (1 is on disk already)
    return out


def test_a_shard_is_the_teachers_ode_from_its_own_seed(teacher, shards):
    shard = load_file(str(shards / pairs.SHARD_PATTERN.format(1)))
    x1 = torch.randn((8, 1, 28, 28), generator=pairs.shard_generator(0, 1))
    assert torch.equal(shard["x1"], x1) and torch.equal(shard["labels"], torch.arange(8) % 10)
    expected = generate(load_denoiser("cpu", teacher), list(range(8)), sampler="dpm_solver++", steps=3,
                        spacing="logsnr", x_start=x1)
    torch.testing.assert_close(shard["x0"], expected)
    assert len(pairs.load_pairs(shards)["x0"]) == 24


def test_times_follow_the_mixture():
    args = argparse.Namespace(p_one=0.4, p_half=0.2)
    t = train.sample_times(20_000, args, torch.Generator().manual_seed(0))
    assert float((t == 1).double().mean()) == pytest.approx(0.4, abs=0.015)
    assert float((t == 0.5).double().mean()) == pytest.approx(0.2, abs=0.015)
    rest = t[(t != 1) & (t != 0.5)]
    assert float(rest.mean()) == pytest.approx(0.5, abs=0.02) and float(rest.min()) > 0


def run(shards, teacher, out, steps: int, *extra: str) -> None:
    train.main(["--data", str(shards), "--out", str(out), "--teacher", str(teacher), "--steps", str(steps), *ARGS,
                *extra])


def test_resumed_and_lengthened_run_is_the_uninterrupted_one(shards, teacher, tmp_path):
    run(shards, teacher, tmp_path / "straight", 12)
    run(shards, teacher, tmp_path / "resumed", 5)
    run(shards, teacher, tmp_path / "resumed", 12, "--resume")  # --steps may grow: the learning rate is constant
    a = load_file(str(tmp_path / "straight" / train.CHECKPOINT))
    b = load_file(str(tmp_path / "resumed" / train.CHECKPOINT))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = (tmp_path / "resumed" / train.LOSS_LOG).read_text().splitlines()
    assert rows[0] == "step,loss,lr,seconds" and [r.split(",")[0] for r in rows[1:]] == ["5", "12"]
    student = load_reflow("cpu", tmp_path / "straight")  # the export of the finished run
    assert student.config.pairs["count"] == 24 and student.config.guidance == 1.5
    with pytest.raises(SystemExit, match="--batch was 16"):
        run(shards, teacher, tmp_path / "resumed", 14, "--resume", "--batch", "8")


def test_the_loss_goes_down(shards, teacher, tmp_path):
    """The reflow loss (Liu et al. 2023, eq. 1) of the exported EMA student on fixed draws, against the student
    the run started from (the teacher's weights read as a v-prediction)."""
    from diffusion_core.models.reflow import build_student
    from diffusion_core.models.weights import build_denoiser

    run(shards, teacher, tmp_path / "long", 60, "--lr", "2e-3")
    pool = pairs.load_pairs(shards)
    t = train.sample_times(len(pool["x0"]), argparse.Namespace(p_one=0.4, p_half=0.2), torch.Generator().manual_seed(3))

    def loss(student) -> float:
        with torch.no_grad():
            return float(train.reflow_loss(student, pool["x0"], pool["x1"], pool["labels"], t))

    start = build_student(*build_denoiser(teacher), guidance=1.5, pairs={})
    assert loss(load_reflow("cpu", tmp_path / "long")) < 0.9 * loss(start)  # 0.79 measured
