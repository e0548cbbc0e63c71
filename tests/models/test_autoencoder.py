"""The KL autoencoder (models/autoencoder.py) and the scale factor (models/latent.py), against references we did
not write: the KL term against a Monte Carlo estimate from torch.distributions, the scale factor against numpy's
standard deviation, the compression factor against the numbers of the papers, FLOPs against a hand count."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from diffusion_core.models.autoencoder import (Autoencoder, AutoencoderConfig, autoencoder_loss, compression_factor,
                                               kl_to_standard_normal, load_autoencoder, save_autoencoder)
from diffusion_core.models.files import WeightsError
from diffusion_core.models.flops import decoder_flops, pipeline_flops, unet_flops
from diffusion_core.models.latent import latent_scale_factor
from diffusion_core.models.unet import UNet, UNetConfig

TINY = dict(channels=(8, 8, 16), groups=4)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny networks on a shared 2-core machine run many times slower with two."""
    from diffusion_core.toy2d import one_thread

    with one_thread():
        yield


def test_kl_term_matches_a_monte_carlo_estimate():
    """KL(q || N(0, I)) = E_q[log q(z) - log p(z)], estimated with 100 000 draws per sample (torch.distributions):
    within four standard errors of the estimate, and equal to torch's own closed form."""
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64) - 1.0
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    z = q.sample((100_000,))
    log_ratio = (q.log_prob(z) - p.log_prob(z)).flatten(2).sum(2)  # [draws, 3]
    monte_carlo, standard_error = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(log_ratio))
    exact = kl_to_standard_normal(mean, logvar)
    assert ((exact - monte_carlo).abs() < 4 * standard_error).all(), (exact, monte_carlo, standard_error)
    assert torch.allclose(torch.distributions.kl_divergence(q, p).flatten(1).sum(1), exact)


def test_kl_is_zero_for_the_prior_itself():
    zeros = torch.zeros(2, 2)
    assert torch.equal(kl_to_standard_normal(zeros, zeros), torch.zeros(2))


@pytest.mark.parametrize("shape", [(4, 7, 7), (2,)])
def test_encode_decode_shapes_and_range(shape):
    torch.manual_seed(0)
    model = Autoencoder(AutoencoderConfig(latent_shape=shape, **TINY)).eval()
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    mean, logvar = model.encode(x)
    assert mean.shape == logvar.shape == (5, *shape)
    out = model.decode(mean, clip=True)
    assert out.shape == (5, 1, 28, 28) and out.min() >= -1 and out.max() <= 1
    loss, rec, kl = autoencoder_loss(model, x, torch.zeros(5, *shape))
    assert torch.isclose(loss, rec + model.config.kl_weight * kl)
    assert torch.isclose(rec, (model.decode(mean) - x).abs().flatten(1).sum(1).mean())


def test_bad_latent_shapes_are_refused():
    for shape in [(4, 8, 8), (4, 7), ()]:
        with pytest.raises(ValueError):
            AutoencoderConfig(latent_shape=shape)


def test_compression_factor():
    assert compression_factor((4, 7, 7)) == 4.0  # 784 / 196
    assert compression_factor((2,)) == 392.0
    assert compression_factor((4, 64, 64), (3, 512, 512)) == 48.0  # Stable Diffusion v1 (Rombach et al. 2022, f = 8)


def test_scale_factor_is_one_over_the_standard_deviation():
    g = torch.Generator().manual_seed(1)
    z = 4.7 * torch.randn(300, 4, 7, 7, generator=g) + 0.3
    s = latent_scale_factor(z)
    assert s == pytest.approx(1 / np.std(z.numpy().astype(np.float64), ddof=1), rel=1e-9)
    assert float((s * z).std()) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError):
        latent_scale_factor(torch.ones(10))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Autoencoder(AutoencoderConfig(latent_shape=(2,), kl_weight=0.1, **TINY)).eval()
    save_autoencoder(model, tmp_path, "ae")
    again = load_autoencoder(tmp_path, "ae")
    assert again.config == model.config and json.loads((tmp_path / "ae.json").read_text())["kl_weight"] == 0.1
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(again.encode(x)[0], model.encode(x)[0])
    with pytest.raises(WeightsError, match="ae.safetensors"):
        (tmp_path / "ae.safetensors").write_bytes(b"not safetensors")
        load_autoencoder(tmp_path, "ae")
    with pytest.raises(WeightsError, match="not found"):
        load_autoencoder(tmp_path, "missing")


def test_the_unet_takes_a_7x7_latent_and_keeps_the_pixel_network_unchanged():
    torch.manual_seed(0)
    latent = UNet(UNetConfig(image_size=7, in_channels=4, channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16,
                             groups=4, unshuffle=1))
    assert latent(torch.randn(3, 4, 7, 7), torch.tensor([1, 5, 9]), torch.tensor([0, -1, 9])).shape == (3, 4, 7, 7)
    assert "unshuffle" not in json.loads((__import__("diffusion_core").models.weights.PRETRAINED_DIR
                                          / "denoiser.json").read_text())["unet"]  # old configs default to 2
    assert UNetConfig.from_dict({"channels": [8, 16], "blocks_per_level": [1, 1]}).unshuffle == 2
    with pytest.raises(ValueError):
        UNet(UNetConfig(unshuffle=3))


def test_flops_are_counted_like_a_hand_count_and_like_torchs_counter():
    """The hooks' count against a hand count of one convolution (2 * 9 * 4 * 8 * 49), against the model card's
    71.8 M for the pixel UNet, and against torch.utils.flop_counter on the latent UNet and the decoder."""
    from torch.utils.flop_counter import FlopCounterMode

    from diffusion_core.models.flops import count_flops

    with torch.device("meta"):
        conv = torch.nn.Conv2d(4, 8, 3, padding=1)
        x = torch.empty(1, 4, 7, 7)
    assert count_flops(conv, lambda: conv(x)) == 2 * 9 * 4 * 8 * 49
    assert unet_flops(UNetConfig(), 28) == pytest.approx(71.8e6, rel=1e-3)  # pretrained/MODEL_CARD.md
    ae = AutoencoderConfig(**TINY)
    latent = UNetConfig(in_channels=4, channels=(8, 16), blocks_per_level=(1, 1), groups=4, unshuffle=1)
    net, decoder = UNet(latent), Autoencoder(ae)
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            net(torch.zeros(1, 4, 14, 14), torch.ones(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    assert unet_flops(latent, 14) == counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            decoder.decode(torch.zeros(1, 4, 14, 14))
    assert decoder_flops(ae, 14) == counter.get_total_flops()

    f = pipeline_flops(UNetConfig(channels=(8, 16), blocks_per_level=(1, 1)), latent, ae, 56)
    assert f.latent_side == 14 and f.decoder == decoder_flops(ae, 14) and f.latent_call == unet_flops(latent, 14)
    assert f.latent_sample(20) == 20 * f.latent_call + f.decoder and f.ratio(20) == f.pixel_sample(20) / f.latent_sample(20)
    with pytest.raises(ValueError):
        pipeline_flops(UNetConfig(), UNetConfig(), ae, 30)
    assert math.isfinite(f.ratio(2))
