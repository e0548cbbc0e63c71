"""diffusion_core.process.correlation: the closed form of corr(x_t, x_0) against sampled x_t and numpy's corrcoef."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion_core.process.correlation import correlation_curve, first_t_below, pixel_correlation
from diffusion_core.process.forward import q_sample
from diffusion_core.process.schedules import make_schedule


def picture(seed: int = 0, shape=(1, 3, 96, 96)) -> torch.Tensor:
    """A smooth picture with a gradient and blobs, values in [-1, 1] (std about 0.5)."""
    g = torch.Generator().manual_seed(seed)
    _, c, h, w = shape
    y, x = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    base = 0.6 * x + 0.3 * torch.sin(4 * y)
    return (base + 0.2 * torch.rand(shape, generator=g)).clamp(-1, 1)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_closed_form_matches_sampled_x_t(kind):
    """corrcoef of one draw of x_t with x_0 (27,648 pixels) against the closed form. The standard error of
    a sample correlation is about (1 - rho^2) / sqrt(D) <= 0.006; allow four of them."""
    schedule = make_schedule(kind, 1000)
    x0 = picture()
    curve = correlation_curve(x0, schedule)
    g = torch.Generator().manual_seed(1)
    d = x0.numel()
    for t in (1, 10, 100, 250, 500, 750, 1000):
        xt = q_sample(x0, t, torch.randn(x0.shape, generator=g), schedule)
        empirical = np.corrcoef(xt.flatten().numpy(), x0.flatten().numpy())[0, 1]
        assert abs(empirical - curve[t]) < 4 * (1 - curve[t] ** 2) / math.sqrt(d) + 1e-3, (t, empirical, curve[t])


def test_closed_form_shape_and_ends():
    schedule = make_schedule("linear", 1000)
    x0 = picture()
    curve = correlation_curve(x0, schedule)
    assert curve.shape == (1001,) and curve.dtype == np.float64
    assert curve[0] == pytest.approx(1.0)  # x_0 against itself
    assert np.all(np.diff(curve) < 0)  # abar_t falls, so does the correlation
    # At t = T: sqrt(abar_T) std / sqrt(abar_T var + 1 - abar_T) ~ sqrt(abar_T) std, and abar_T ~ 4e-5 (linear).
    std = float(x0.to(torch.float64).std(unbiased=False))
    assert curve[-1] == pytest.approx(math.sqrt(float(schedule.alpha_bars[-1])) * std, rel=1e-3)


def test_closed_form_is_a_function_of_snr_times_variance():
    """corr_t = sqrt(s / (1 + s)), s = SNR_t Var(x_0): the docstring's last line, checked independently."""
    schedule = make_schedule("cosine", 1000)
    x0 = picture(seed=3)
    s = schedule.snr[1:].numpy() * float(x0.to(torch.float64).var(unbiased=False))
    np.testing.assert_allclose(correlation_curve(x0, schedule)[1:], np.sqrt(s / (1 + s)), rtol=1e-12)


def test_flat_picture_has_no_correlation():
    schedule = make_schedule("linear", 1000)
    assert np.isnan(correlation_curve(torch.full((1, 1, 8, 8), 0.3), schedule)).all()
    assert math.isnan(pixel_correlation(torch.zeros(4, 4), torch.randn(4, 4)))


def test_pixel_correlation_is_pearson():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    expected = np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1]
    assert pixel_correlation(a, b) == pytest.approx(expected, abs=1e-12)
    assert pixel_correlation(a, 2 * a + 1) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        pixel_correlation(a, b.flatten())


def test_first_t_below():
    curve = np.array([1.0, 0.8, 0.5, 0.3, 0.05])
    assert first_t_below(curve, 0.5) == 3 and first_t_below(curve, 0.1) == 4 and first_t_below(curve, 0.01) is None
