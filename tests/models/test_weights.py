"""Saving and loading the denoiser (diffusion_core.models.weights): a round trip gives the same network, and
every way a weights folder can be broken gives a WeightsError that names the file, never a pickle load."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from diffusion_core import WeightsError, generate, load_denoiser, sample
from diffusion_core.models.unet import UNet, UNetConfig
from diffusion_core.models.weights import CONFIG_NAME, WEIGHTS_NAME, DenoiserConfig, save_denoiser

TINY = UNetConfig(channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16, attention=False)


@pytest.fixture
def saved(tmp_path):
    """A tiny random denoiser saved in tmp_path; returns the network."""
    torch.manual_seed(0)
    net = UNet(TINY).eval()
    save_denoiser(net, DenoiserConfig(unet=TINY, schedule="cosine", T=100), tmp_path)
    return net


def test_round_trip_gives_the_same_network_and_schedule(saved, tmp_path):
    model = load_denoiser("cpu", tmp_path)
    assert not model.training and model.config.T == 100 and model.schedule.T == 100
    assert model.schedule.kind == "cosine"
    x, t, y = torch.randn(3, 1, 28, 28), torch.tensor([1, 50, 100]), torch.tensor([0, 9, -1])
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, y), saved(x, t, y), rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["unet"]["channels"] == [8, 16]
    # the public API of the package works on it
    assert generate(model, [1, 2], steps=3, generator=torch.Generator().manual_seed(0)).shape == (2, 1, 28, 28)
    assert len(list(sample(model, [1], steps=4))) == 4


def test_missing_files_name_the_file(tmp_path):
    with pytest.raises(WeightsError, match="not found") as err:
        load_denoiser("cpu", tmp_path)
    assert str(tmp_path / CONFIG_NAME) in str(err.value)
    (tmp_path / CONFIG_NAME).write_text(json.dumps(DenoiserConfig(unet=TINY, schedule="cosine", T=100).to_dict()))
    with pytest.raises(WeightsError, match="not found") as err:
        load_denoiser("cpu", tmp_path)
    assert str(tmp_path / WEIGHTS_NAME) in str(err.value)


def test_truncated_weights_name_the_file(saved, tmp_path):
    weights = tmp_path / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:1000])  # an interrupted copy
    with pytest.raises(WeightsError, match="damaged or truncated") as err:
        load_denoiser("cpu", tmp_path)
    assert str(weights) in str(err.value)


def test_a_pickle_is_never_loaded(saved, tmp_path):
    """A pickled state dict under the weights' name is refused as damaged, and its code never runs."""
    ran = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (ran.touch, ())

    (tmp_path / WEIGHTS_NAME).write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(WeightsError, match="damaged or truncated"):
        load_denoiser("cpu", tmp_path)
    assert not ran.exists()


def test_weights_of_another_network_name_both_files(saved, tmp_path):
    other = UNetConfig(channels=(16, 32), blocks_per_level=(1, 1), emb_dim=16, attention=False)
    (tmp_path / CONFIG_NAME).write_text(json.dumps(DenoiserConfig(unet=other, schedule="cosine", T=100).to_dict()))
    with pytest.raises(WeightsError, match="do not match") as err:
        load_denoiser("cpu", tmp_path)
    assert str(tmp_path / WEIGHTS_NAME) in str(err.value) and str(tmp_path / CONFIG_NAME) in str(err.value)


@pytest.mark.parametrize("change", [
    lambda c: c.update(schedule="quadratic"),  # no such schedule
    lambda c: c.update(T=5),  # out of make_schedule's range
    lambda c: c.pop("T"),  # a key missing
    lambda c: c["unet"].update(channels=[8, 16, 32]),  # the UNet has two levels
    lambda c: c["unet"].update(groups=3),  # GroupNorm groups must divide the widths
    lambda c: c["unet"].update(colour=True),  # an unknown field
    lambda c: c.update(unet=7),  # not an object
], ids=["schedule", "T", "no-T", "three-levels", "groups", "unknown-field", "not-an-object"])
def test_invalid_configs_name_the_file(saved, tmp_path, change):
    config_path = tmp_path / CONFIG_NAME
    config = json.loads(config_path.read_text())
    change(config)
    config_path.write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="invalid") as err:
        load_denoiser("cpu", tmp_path)
    assert str(config_path) in str(err.value)


def test_config_that_is_not_json(saved, tmp_path):
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(WeightsError, match="invalid") as err:
        load_denoiser("cpu", tmp_path)
    assert str(tmp_path / CONFIG_NAME) in str(err.value)


def test_load_denoiser_by_name(monkeypatch):
    """Names resolve through weights.DENOISERS to a loader; a model with its own generate is sampled by it."""
    from diffusion_core.models import weights

    class Sampling(torch.nn.Module):
        def generate(self, labels, **kwargs):
            return torch.full((len(labels), 1, 28, 28), float(kwargs["steps"]))

    monkeypatch.setitem(weights.DENOISERS, "toy", lambda device, directory: Sampling())
    model = load_denoiser("cpu", name="toy")
    assert isinstance(model, Sampling)
    assert torch.equal(generate(model, [1, 2], steps=3), torch.full((2, 1, 28, 28), 3.0))
    with pytest.raises(ValueError, match="unknown model 'nothing'"):
        load_denoiser("cpu", name="nothing")
