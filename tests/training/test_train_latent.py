"""The latent diffusion training scripts on a few hundred fake MNIST digits (no real data needed): the
autoencoder's and the latent denoiser's losses go down, a run stopped part-way and resumed ends with exactly the
weights of an uninterrupted one, the latent denoiser's folder is a pipeline that ``load_denoiser(name="latent")``
loads, and the 2-D codes script writes points whose scale factor is 1 / std of the encoded latents."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from diffusion_core import generate, load_denoiser
from diffusion_core.data.mnist import load_mnist, to_model_range
from diffusion_core.models.autoencoder import (Autoencoder, AutoencoderConfig, autoencoder_loss, load_autoencoder,
                                               save_autoencoder)
from diffusion_core.models.latent2d import load_latent2d
from diffusion_core.models.unet import UNet
from diffusion_core.process.forward import q_sample
from diffusion_core.toy2d import one_thread
from diffusion_core.training import autoencoder as train_ae
from diffusion_core.training import latent_codes
from diffusion_core.training import latent_denoiser as train_ld
from tests.bench.test_bench import fake_mnist

AE_ARGS = ["--steps", "40", "--batch", "16", "--warmup", "5", "--channels", "8", "8", "16", "--threads", "1",
           "--device", "cpu", "--quiet"]
LD_ARGS = ["--steps", "40", "--batch", "32", "--warmup", "5", "--channels", "8", "16", "--blocks", "1", "1",
           "--T", "100", "--threads", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mnist")
    fake_mnist(directory, n=200)
    return directory


@pytest.fixture(scope="module")
def autoencoder_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ae")
    with one_thread():
        train_ae.main(["--data", str(data), "--out", str(out), *AE_ARGS])
    return out


def _stop_at(monkeypatch, module, n: int) -> None:
    """Make ``module``'s training loop raise KeyboardInterrupt after step n (as a closed session would): its
    optimiser step (``training.denoiser.optimiser_step``) ends with the EMA update, which is patched there."""
    from diffusion_core.training import denoiser

    assert module.optimiser_step is denoiser.optimiser_step
    module = denoiser
    real = module.update_ema
    calls = {"n": 0}

    def update_then_stop(ema, model, decay):
        real(ema, model, decay)
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt

    monkeypatch.setattr(module, "update_ema", update_then_stop)


def test_the_autoencoder_loss_goes_down(autoencoder_run, data):
    images, _ = load_mnist(data, "train")
    x = torch.from_numpy(to_model_range(images[:64]))
    torch.manual_seed(0)  # the run's initial weights (--seed 0)
    before = Autoencoder(AutoencoderConfig(channels=(8, 8, 16)))
    after = load_autoencoder(autoencoder_run)
    noise = torch.zeros(64, 4, 7, 7)
    with torch.no_grad():  # fake digits are uniform noise: the best an autoencoder can do is about 0.5 * 784
        assert autoencoder_loss(after, x, noise)[1] < 0.92 * autoencoder_loss(before, x, noise)[1]


def test_a_resumed_autoencoder_run_ends_like_an_uninterrupted_one(autoencoder_run, data, tmp_path, monkeypatch):
    _stop_at(monkeypatch, train_ae, 25)
    with pytest.raises(KeyboardInterrupt):
        train_ae.main(["--data", str(data), "--out", str(tmp_path), *AE_ARGS, "--checkpoint-minutes", "0.0001"])
    monkeypatch.undo()
    train_ae.main(["--data", str(data), "--out", str(tmp_path), *AE_ARGS, "--resume"])
    for (name, a), (_, b) in zip(load_autoencoder(tmp_path).state_dict().items(),
                                 load_autoencoder(autoencoder_run).state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(SystemExit, match="--kl-weight"):
        train_ae.main(["--data", str(data), "--out", str(tmp_path), *AE_ARGS, "--resume", "--kl-weight", "0.5"])


def test_the_latent_denoiser_trains_resumes_exactly_and_loads_as_a_pipeline(autoencoder_run, data, tmp_path,
                                                                              monkeypatch):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    common = ["--data", str(data), "--autoencoder", str(autoencoder_run), *LD_ARGS]
    train_ld.main([*common, "--out", str(whole)])
    _stop_at(monkeypatch, train_ld, 25)
    with pytest.raises(KeyboardInterrupt):
        train_ld.main([*common, "--out", str(parts), "--checkpoint-minutes", "0.0001"])
    monkeypatch.undo()
    train_ld.main([*common, "--out", str(parts), "--resume"])
    a, b = (load_denoiser("cpu", d, name="latent") for d in (whole, parts))
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), name
    assert a.scale_factor == b.scale_factor
    x = generate(a, [1, 2], steps=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 28, 28)

    # the scale factor: 1 / std of one posterior draw per training digit, over every number
    ae = load_autoencoder(autoencoder_run)
    images, labels = load_mnist(data, "train")
    means, stds = train_ld.encode_dataset(ae, torch.from_numpy(to_model_range(images)))
    draw = means + stds * torch.randn(means.shape, generator=torch.Generator().manual_seed(0))
    assert a.scale_factor == pytest.approx(1 / float(draw.double().std()), rel=1e-9)

    # L_simple (Ho et al. 2020, eq. 14) on 256 fixed draws of scaled latents: lower after training than at the
    # start, where the zero-initialised output layer predicts eps = 0 (loss E[eps^2] = 1)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, len(means), (256,), generator=g)
    z0, y = a.scale_factor * means[idx], torch.from_numpy(labels.astype("int64"))[idx]
    t = torch.randint(1, 101, (256,), generator=g)
    noise = torch.randn(z0.shape, generator=g)
    z_t = q_sample(z0, t, noise, a.schedule)
    torch.manual_seed(0)
    initial = UNet(a.net.config)
    with torch.no_grad():
        before, after = (F.mse_loss(net(z_t, t, y), noise).item() for net in (initial, a.net))
    assert before == pytest.approx(1.0, abs=0.1) and after < 0.95 * before, (before, after)


def test_the_2d_codes_script(data, tmp_path, autoencoder_run):
    ae_dir, out = tmp_path / "ae2d", tmp_path / "latent"
    train_ae.main(["--data", str(data), "--out", str(ae_dir), *AE_ARGS, "--steps", "10", "--latent-shape", "2",
                   "--kl-weight", "0.1", "--name", "autoencoder_2d"])
    latent_codes.main(["--data", str(data), "--autoencoder", str(ae_dir), "--out", str(out)])
    lat = load_latent2d(out)
    assert lat.train_points.shape == (200, 2) and lat.test_points.shape == (200, 2) and lat.test_labels.max() <= 9
    assert torch.allclose(lat.encode(torch.from_numpy(to_model_range(load_mnist(data, "test")[0][:5]))),
                          lat.test_points[:5], atol=1e-5)
    assert lat.decode(lat.test_points[:3]).shape == (3, 1, 28, 28)
    save_autoencoder(load_autoencoder(autoencoder_run), tmp_path / "image", "autoencoder_2d")  # a 4x7x7 latent
    with pytest.raises(SystemExit, match="2-D"):
        latent_codes.main(["--data", str(data), "--autoencoder", str(tmp_path / "image"), "--out", str(tmp_path / "x")])
