"""process.losses: the loss weights against convert (each prediction's MSE divided by the eps-MSE, sample by
sample), the implied weights over log SNR against the closed forms of Kingma & Gao (2023, table 1) and against a
finite-difference density of lambda, the logit-normal density against torch.distributions, the velocity target
against the time derivative of the path."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.process.losses import (implied_weight, logit_normal_density, loss_weight, sample_flow_times,
                                           time_density, velocity_target, weighting_check)
from diffusion_core.process.paths import PREDICTIONS, convert, rectified_flow, vp_cosine, vp_linear

PATHS = {"rectified_flow": rectified_flow(), "vp_cosine": vp_cosine(), "vp_linear": vp_linear()}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", PATHS)
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_each_mse_is_the_eps_mse_times_its_weight(name, prediction):
    """For one (x0, eps) per row and a wrong eps_hat, convert both eps and eps_hat to the prediction at the same
    x_t: the squared error of the prediction over that of eps is loss_weight, row by row, in float64."""
    path = PATHS[name]
    g = gen(1)
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.9 + 0.05
    x0 = torch.randn(64, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(64, 3, generator=g, dtype=torch.float64)
    eps_hat = eps + 0.3 * torch.randn(64, 3, generator=g, dtype=torch.float64)
    x_t = path.sample(x0, t, eps)
    truth = convert(eps, source="eps", target=prediction, x_t=x_t, t=t, path=path)
    guess = convert(eps_hat, source="eps", target=prediction, x_t=x_t, t=t, path=path)
    ratio = ((guess - truth) ** 2).sum(1) / ((eps_hat - eps) ** 2).sum(1)
    torch.testing.assert_close(ratio, loss_weight(prediction, t, path), rtol=1e-10, atol=0)


def test_the_velocity_weight_on_the_rectified_flow_is_one_over_one_minus_t_squared():
    t = torch.linspace(0, 0.99, 100, dtype=torch.float64)
    torch.testing.assert_close(loss_weight("velocity", t, rectified_flow()), 1 / (1 - t) ** 2, rtol=1e-14, atol=0)
    assert loss_weight("eps", 0.3, rectified_flow()) == 1
    with pytest.raises(ValueError, match="unknown prediction"):
        loss_weight("noise", 0.3, rectified_flow())  # type: ignore[arg-type]


def test_velocity_target_is_the_time_derivative_of_the_path():
    """d/dt (alpha(t) x0 + sigma(t) eps) by central differences on a VP path, and eps - x0 on the rectified flow."""
    x0, eps = torch.randn(5, 2, generator=gen(2), dtype=torch.float64), torch.randn(5, 2, generator=gen(3), dtype=torch.float64)
    path, t, h = vp_cosine(), 0.4, 1e-6
    numeric = (path.sample(x0, t + h, eps) - path.sample(x0, t - h, eps)) / (2 * h)
    torch.testing.assert_close(velocity_target(x0, eps, t, path), numeric, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(velocity_target(x0, eps, 0.7, rectified_flow()), eps - x0, rtol=0, atol=1e-15)


def test_logit_normal_density_against_torch_distributions_and_samples():
    from torch.distributions import Normal, SigmoidTransform, TransformedDistribution

    for mean, std in ((0.0, 1.0), (0.5, 0.7)):
        reference = TransformedDistribution(Normal(torch.tensor(mean, dtype=torch.float64),
                                                   torch.tensor(std, dtype=torch.float64)), SigmoidTransform())
        t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
        torch.testing.assert_close(logit_normal_density(t, mean, std), reference.log_prob(t).exp(), rtol=1e-10, atol=0)
        draws = sample_flow_times(200_000, "logit_normal", generator=gen(4), mean=mean, std=std)
        edges = torch.linspace(0, 1, 11, dtype=torch.float64)
        counts = torch.histc(draws, bins=10, min=0, max=1) / len(draws)
        fine = torch.linspace(0, 1, 20001, dtype=torch.float64)
        dens = logit_normal_density(fine, mean, std)
        for i in range(10):
            inside = (fine >= edges[i]) & (fine <= edges[i + 1])
            p = float(torch.trapezoid(dens[inside], fine[inside]))
            assert abs(float(counts[i]) - p) < 4 * math.sqrt(p * (1 - p) / len(draws)) + 1e-4
    assert float(logit_normal_density(torch.tensor([0.0, 1.0]))[0]) == 0 == float(logit_normal_density(1.0))
    assert torch.equal(time_density(torch.tensor([0.2, 0.9])), torch.ones(2, dtype=torch.float64))
    uniform = sample_flow_times(50_000, generator=gen(5))
    assert uniform.dtype == torch.float64 and abs(float(uniform.mean()) - 0.5) < 0.005
    with pytest.raises(ValueError, match="time sampling"):
        sample_flow_times(3, "beta")  # type: ignore[arg-type]


def test_implied_weights_are_kingma_and_gaos_closed_forms():
    """Kingma & Gao (2023), table 1 (with s = 0 in the cosine schedule, abar = cos^2(pi t / 2)):
    eps on the cosine path sech(lambda / 2) / (2 pi); x0 there e^(-lambda) times that; v there e^(-lambda / 2) / pi;
    the velocity on the rectified flow e^(-lambda / 2) / 2, all with t ~ U(0, 1)."""
    lam = torch.linspace(-8, 8, 33, dtype=torch.float64)
    cosine = vp_cosine(s=0.0)
    sech = 1 / torch.cosh(lam / 2)
    expected = {("eps", "c"): sech / (2 * math.pi), ("x0", "c"): torch.exp(-lam) * sech / (2 * math.pi),
                ("v", "c"): torch.exp(-lam / 2) / math.pi, ("velocity", "r"): torch.exp(-lam / 2) / 2}
    for (prediction, which), value in expected.items():
        path = cosine if which == "c" else rectified_flow()
        torch.testing.assert_close(implied_weight(prediction, lam, path), value, rtol=1e-8, atol=0)


def test_implied_weight_with_logit_normal_times_against_a_finite_difference_density():
    """SD3's weighting: the density of lambda by differencing t(lambda), times the logit-normal density and the
    velocity's 1 / (1 - t)^2, against implied_weight's analytic d lambda / dt."""
    path, lam, h = rectified_flow(), torch.linspace(-6, 6, 25, dtype=torch.float64), 1e-5
    t = path.t_at_log_snr(lam)
    dt = (path.t_at_log_snr(lam - h) - path.t_at_log_snr(lam + h)) / (2 * h)
    expected = logit_normal_density(t) * dt / (1 - t) ** 2
    torch.testing.assert_close(implied_weight("velocity", lam, path, "logit_normal"), expected, rtol=1e-6, atol=0)


def test_weighting_check_holds_on_a_batch_and_would_notice_a_wrong_weight():
    path, g = rectified_flow(), gen(6)
    x0 = torch.randn(16, 1, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(16, 1, 4, 4, generator=g, dtype=torch.float64)
    t = torch.rand(16, generator=g, dtype=torch.float64) * 0.98 + 0.01
    eps_hat = eps + 0.2 * torch.randn(16, 1, 4, 4, generator=g, dtype=torch.float64)
    check = weighting_check(eps_hat, x0, eps, t, path)
    assert check.worst_relative_gap < 1e-10
    torch.testing.assert_close(check.weight, 1 / (1 - t) ** 2)
    wrong = type(check)(eps_mse=check.eps_mse, velocity_mse=check.velocity_mse, weight=1 / (1 - t))
    assert wrong.worst_relative_gap > 0.01
