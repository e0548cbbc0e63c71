"""The latent diffusion pipeline (models/latent.py) through the public calls the acceptance check uses:
``load_denoiser(name="latent")`` and ``generate(model, labels, steps=10)``, on the shipped files and on a tiny
random pipeline written to a temporary folder; the sampling goes through the core's samplers (same result as
running ``sample_eps`` by hand on the pipeline's eps_fn)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from diffusion_core import generate, load_denoiser
from diffusion_core.models.autoencoder import Autoencoder, AutoencoderConfig
from diffusion_core.models.latent import (LATENT_DIR, LatentConfig, LatentPipeline, sample_cost,
                                          save_latent_denoiser)
from diffusion_core.models.unet import UNet, UNetConfig
from diffusion_core.models.weights import DENOISERS, WeightsError
from diffusion_core.samplers import sample_eps

SHIPPED = (LATENT_DIR / "latent_denoiser.safetensors").is_file()


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny networks on a shared 2-core machine run many times slower with two."""
    from diffusion_core.toy2d import one_thread

    with one_thread():
        yield


def tiny_latent_dir(directory: Path, *, T: int = 100, scale_factor: float = 0.5) -> Path:
    """A complete pipeline folder with tiny random networks (for tests of code, not of quality)."""
    torch.manual_seed(0)
    autoencoder = Autoencoder(AutoencoderConfig(channels=(8, 8, 16), groups=4)).eval()
    unet = UNetConfig(image_size=7, in_channels=4, channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16, groups=4,
                      unshuffle=1)
    net = UNet(unet)
    for p in net.out_conv.parameters():  # a zero-initialised output layer would predict eps = 0 everywhere
        torch.nn.init.normal_(p, std=0.1)
    save_latent_denoiser(net, LatentConfig(unet=unet, schedule="cosine", T=T, scale_factor=scale_factor), directory,
                         autoencoder)
    return directory


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_denoiser("cpu", tiny_latent_dir(tmp_path_factory.mktemp("latent")), name="latent")


def test_generate_returns_decoded_digits_and_is_deterministic(tiny):
    labels = [0, 3, -1, 9]
    a = generate(tiny, labels, steps=10, generator=torch.Generator().manual_seed(7))
    b = generate(tiny, labels, steps=10, generator=torch.Generator().manual_seed(7))
    c = generate(tiny, labels, steps=10, generator=torch.Generator().manual_seed(8))
    assert a.shape == (4, 1, 28, 28) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_generate_is_the_core_sampler_on_the_pipelines_eps_fn(tiny):
    """The same z_T through samplers.sample_eps (DPM-Solver++, log-SNR spacing, no clipping) and the decoder."""
    labels = torch.tensor([1, 2])
    g = torch.Generator().manual_seed(3)
    z_T = torch.randn((2, 4, 7, 7), generator=torch.Generator().manual_seed(3))
    *_, last = sample_eps(tiny.eps_fn(labels, 2.0), z_T, tiny.schedule, sampler="dpm_solver++", steps=6,
                          spacing="logsnr", clip=False)
    by_hand = tiny.autoencoder.decode(last.x_prev / tiny.scale_factor, clip=True)
    assert torch.allclose(generate(tiny, labels, steps=6, guidance=2.0, generator=g), by_hand, atol=1e-6)
    steps = list(tiny.sample(labels, steps=6, sampler="ddim", generator=torch.Generator().manual_seed(3)))
    assert len(steps) == 6 and steps[0].x_t.shape == (2, 4, 7, 7) and steps[-1].t_prev == 0


def test_encode_decode_use_the_scale_factor(tiny):
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    z = tiny.encode(x)
    assert torch.allclose(z, tiny.scale_factor * tiny.autoencoder.encode(x)[0])
    assert torch.allclose(tiny.decode(z), tiny.autoencoder.decode(z / tiny.scale_factor, clip=True))


def test_bad_labels_names_and_files_are_refused(tiny, tmp_path):
    with pytest.raises(ValueError):
        generate(tiny, [10], steps=2)
    with pytest.raises(ValueError):
        generate(tiny, [], steps=2)
    with pytest.raises(ValueError, match="unknown model"):
        load_denoiser("cpu", name="nope")
    with pytest.raises(WeightsError, match="latent_denoiser.json"):
        load_denoiser("cpu", tmp_path, name="latent")
    assert set(DENOISERS) >= {"denoiser", "latent"}
    with pytest.raises(ValueError):  # a 2-D autoencoder cannot feed a 4-channel UNet
        LatentPipeline(Autoencoder(AutoencoderConfig(latent_shape=(2,), channels=(8, 8, 16), groups=4)), tiny.net,
                       tiny.config)


def test_sampling_starts_where_abar_reaches_stable_diffusions_last_value():
    """t_start: the first t with abar_t <= 0.0047 (abar_T of Stable Diffusion's scaled linear schedule, betas
    from 0.00085 to 0.012, computed here), 956 of the cosine schedule with T = 1000."""
    import numpy as np

    from diffusion_core.models.latent import FINAL_ALPHA_BAR, start_timestep
    from diffusion_core.process.schedules import make_schedule

    sd_betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2
    assert np.prod(1 - sd_betas) == pytest.approx(FINAL_ALPHA_BAR, rel=0.03)
    s = make_schedule("cosine", 1000)
    t = start_timestep(s)
    assert t == 956 and s.alpha_bars[t] <= FINAL_ALPHA_BAR < s.alpha_bars[t - 1]
    assert start_timestep(s, 1e-12) == 1000


def test_sample_cost_counts_both_passes_of_a_guided_step():
    assert sample_cost(10, 1.5) == sample_cost(10, 3.0)
    c = sample_cost(10, 1.5)
    assert (c.denoiser_passes, c.network_calls, c.decoder_passes) == (20, 10, 1)
    assert sample_cost(10, 1.0).denoiser_passes == 10 and sample_cost(10, 0.0).denoiser_passes == 10


@pytest.mark.skipif(not SHIPPED, reason="pretrained/latent/ is not there yet")
def test_the_shipped_pipeline_through_the_public_calls():
    model = load_denoiser("cpu", name="latent")
    labels = list(range(10))
    x = generate(model, labels, steps=10, generator=torch.Generator().manual_seed(0))
    assert x.shape == (10, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, generate(model, labels, steps=10, generator=torch.Generator().manual_seed(0)))
    assert model.config.sampler == "dpm_solver++" and model.latent_shape == (4, 7, 7) and model.config.t_start == 956
    from diffusion_core.models.classifier import embed, load_classifier

    judged = embed(load_classifier(), x).predictions
    assert (judged == torch.tensor(labels).numpy()).mean() >= 0.8  # the bench measures 1000 samples; this is a smoke check
