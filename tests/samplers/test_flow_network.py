"""samplers.flow_network: the shipped network as a rectified flow. DDIM and Euler at the matching times from one
x_T agree to float64 precision (and to float32's, which t = T amplifies); the flow's digits read as asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_core.models.classifier import embed, load_classifier
from diffusion_core.models.weights import load_denoiser
from diffusion_core.process.paths import rectified_flow
from diffusion_core.samplers.flow_network import flow_grid, flow_start, same_coin, sample_flow, start_time


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_denoiser("cpu")


def test_the_flow_starts_at_the_log_snr_of_t_equals_T(model):
    schedule, path = model.schedule, rectified_flow()
    t0 = start_time(schedule, path)
    # alpha / sigma = sqrt(abar_T / (1 - abar_T)) on the rectified flow: (1 - t0) / t0
    assert (1 - t0) / t0 == pytest.approx(float((schedule.alpha_bars[-1] / (1 - schedule.alpha_bars[-1])).sqrt()), rel=1e-9)
    x_T = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    assert float(flow_start(x_T, schedule, path)[0, 0, 0, 0]) == pytest.approx(t0 / float((1 - schedule.alpha_bars[-1]).sqrt()))
    grid = flow_grid(schedule, path, 4)
    assert float(grid[0]) == t0 and float(grid[-1]) == 0 and len(grid) == 5
    assert len(flow_grid(schedule, path, 4, "ddim")) == 5
    with pytest.raises(ValueError, match="grid"):
        flow_grid(schedule, path, 4, "karras")  # type: ignore[arg-type]


def test_ddim_is_euler_on_the_rectified_flow_for_the_shipped_network(model):
    x_T = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    exact = same_coin(model.double(), [1, 4, 7], x_T.double(), steps=5)
    assert exact.max_difference < 1e-7  # measured 1e-9
    model.float()
    single = same_coin(model, [1, 4, 7], x_T, steps=5)
    assert single.max_difference < 1e-2  # measured 2e-3: float32's rounding times sigma / alpha = 2e4 at t = T
    assert (single.ddim - exact.ddim.float()).abs().max() < 1e-2


def test_euler_and_heun_on_the_flow_draw_the_digits_asked_for(model):
    labels = list(range(10))
    x_T = torch.randn(10, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    classifier = load_classifier()
    for method, steps in (("euler", 10), ("heun", 5)):
        x = sample_flow(model, labels, x_T, steps=steps, method=method)
        assert x.shape == (10, 1, 28, 28) and x.abs().max() <= 1 + 1e-5
        assert (embed(classifier, x).predictions == np.array(labels)).sum() >= 9, method
