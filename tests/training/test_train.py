"""The training script (diffusion_core.training.denoiser) on a few hundred fake MNIST digits: the loss goes down,
a run stopped part-way and resumed ends with exactly the weights of an uninterrupted one, and a resume
with other arguments is refused. The real data set is not needed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from diffusion_core import load_denoiser
from diffusion_core.training import denoiser as train
from diffusion_core.process.forward import q_sample
from diffusion_core.data.mnist import load_mnist, to_model_range
from diffusion_core.process.schedules import make_schedule
from diffusion_core.models.unet import UNet, UNetConfig
from tests.bench.test_bench import fake_mnist

STEPS = 120
ARGS = ["--steps", str(STEPS), "--batch", "32", "--warmup", "10", "--channels", "8", "16", "--blocks", "1", "1",
        "--T", "100", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mnist")
    fake_mnist(directory, n=300)
    return directory


def run(data, out, *extra: str) -> None:
    train.main(["--data", str(data), "--out", str(out), *ARGS, *extra])


def simple_loss(model: torch.nn.Module, data, seed: int = 1) -> float:
    """L_simple (Ho et al. 2020, eq. 14) of ``model`` on 256 fixed (x_0, t, eps, label) draws."""
    images, labels = load_mnist(data, "train")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(images), (256,), generator=g)
    x0 = torch.from_numpy(to_model_range(images))[idx]
    y = torch.from_numpy(labels.astype("int64"))[idx]
    t = torch.randint(1, 101, (256,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        return F.mse_loss(model(q_sample(x0, t, noise, make_schedule("cosine", 100)), t, y), noise).item()


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    """One uninterrupted run; its output folder."""
    out = tmp_path_factory.mktemp("run")
    run(data, out, "--quiet")
    return out


def test_the_loss_goes_down(finished, data, capsys):
    torch.manual_seed(0)  # the run's initial weights (train.py seeds them with --seed, 0 by default)
    initial = UNet(UNetConfig(channels=(8, 16), blocks_per_level=(1, 1))).eval()
    trained = load_denoiser("cpu", finished)
    before, after = simple_loss(initial, data), simple_loss(trained, data)
    assert before == pytest.approx(1.0, abs=0.1)  # the zero-initialised output predicts eps = 0: E[eps^2] = 1
    assert after < 0.7 * before, (before, after)
    rows = [line.split(",") for line in (finished / train.LOSS_LOG).read_text().splitlines()]
    assert rows[0] == ["step", "loss", "lr", "seconds"]
    assert [int(r[0]) for r in rows[1:]] == [50, 100, 120]
    assert float(rows[-1][1]) < float(rows[1][1])  # the logged (smoothed) loss falls too


def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(finished, data, tmp_path, monkeypatch):
    """Stop the run at step 70 (as a closed session would), resume it: same final weights, bit for bit,
    and a loss log with each row once, its training time going on from the checkpoint's."""
    real_update = train.update_ema
    calls = {"n": 0}

    def update_then_stop(ema, model, decay):
        real_update(ema, model, decay)
        calls["n"] += 1
        if calls["n"] == 70:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "update_ema", update_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run(data, tmp_path, "--quiet", "--checkpoint-minutes", "0.0001")  # a checkpoint at (almost) every step
    monkeypatch.setattr(train, "update_ema", real_update)
    assert (tmp_path / train.CHECKPOINT).is_file() and not (tmp_path / "denoiser.safetensors").exists()

    run(data, tmp_path, "--resume")
    resumed, uninterrupted = load_denoiser("cpu", tmp_path), load_denoiser("cpu", finished)
    for (name, a), (_, b) in zip(resumed.state_dict().items(), uninterrupted.state_dict().items()):
        assert torch.equal(a, b), name
    rows = [line.split(",") for line in (tmp_path / train.LOSS_LOG).read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [50, 100, 120]
    assert [float(r[3]) for r in rows] == sorted(float(r[3]) for r in rows)


def test_progress_bar_shows_the_loss(data, tmp_path, capsys):
    run(data, tmp_path, "--steps", "3", "--warmup", "1")
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=" in err


def test_resume_with_other_arguments_is_refused(finished, data):
    with pytest.raises(SystemExit, match=r"--batch was 32, now 64"):
        run(data, finished, "--resume", "--batch", "64")
