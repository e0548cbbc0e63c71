"""Reflow and consistency distillation in 2-D (toy2d.reflow, toy2d.consistency), against closed forms of a Gaussian
data set, where the flow of the independent coupling is known exactly: for x_0 ~ N(mu, s^2 I) and x_1 ~ N(0, I) on
x_t = (1 - t) x_0 + t x_1, the marginal law is N((1 - t) mu, sigma_t^2 I), sigma_t^2 = (1 - t)^2 s^2 + t^2, and the
flow's paths are Z_t = (1 - t) mu + sigma_t z (a linear field carries Gaussians to Gaussians), so ODE(x_1) =
mu + s x_1 and Liu et al.'s straightness is d (int_0^1 sigma_t'^2 dt - (1 - s)^2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusion_core.samplers.flow import integrate_flow
from diffusion_core.toy2d.consistency import (ConsistencyConfig, ConsistencyMLP, boundary_coefficients,
                                              consistency_sample, consistency_times, ode_step, train_consistency)
from diffusion_core.toy2d.flow import FlowTrainConfig, mlp_velocity_fn
from diffusion_core.toy2d.reflow import Pairs, draw_pairs, euler_samples, flow_paths, straightness, train_reflow_mlp

MU, S = torch.tensor([1.0, -0.5], dtype=torch.float64), 0.3


def sigma_t(t):
    return np.sqrt((1 - t) ** 2 * S**2 + t**2)


def gaussian_velocity(x, t):
    """u(x, t) = -mu + (sigma_t' / sigma_t)(x - (1 - t) mu): E[x_1 - x_0 | x_t = x] for the Gaussian data."""
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
    var = (1 - t) ** 2 * S**2 + t**2
    return -MU + (t - (1 - t) * S**2) / var * (x - (1 - t) * MU)


def gaussian_map(x1):
    return MU + S * x1


def test_a_straight_flow_has_straightness_zero():
    x1 = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    c = torch.tensor([0.7, -1.2], dtype=torch.float64)
    assert straightness(lambda x, t: c.expand_as(x), x1, steps=16) == pytest.approx(0.0, abs=1e-24)


def test_straightness_of_the_independent_coupling_is_the_closed_form():
    t = np.linspace(0, 1, 200_001)
    d_sigma = (t - (1 - t) * S**2) / sigma_t(t)
    closed = 2 * (np.trapezoid(d_sigma**2, t) - (1 - S) ** 2)  # d = 2
    x1 = torch.randn(4000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # the sample mean over x_1 has a relative spread of sqrt(2 / 4000) ~ 2 %, E z^2 = 1 in each coordinate
    assert straightness(gaussian_velocity, x1, steps=400) == pytest.approx(closed, rel=0.06)
    assert closed > 0.1  # the paths do bend: the test could fail


def test_pairs_are_ode_solutions():
    # Heun's last step, to t = 0, is an Euler step (Karras et al. 2022, alg. 1): its error is O(h^2) = 1e-4 here
    pairs = draw_pairs(gaussian_velocity, 100, steps=200, method="heun", generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(pairs.x0, gaussian_map(pairs.x1), atol=3e-4, rtol=0)
    paths = flow_paths(gaussian_velocity, pairs.x1, 200, method="heun")
    assert paths.shape == (201, 100, 2) and torch.equal(paths[0], pairs.x1) and torch.equal(paths[-1], pairs.x0)


def test_reflow_learns_a_straight_coupling_for_one_step():
    """The rectified flow of a straight coupling is that coupling again (Liu et al. 2023, sec. 3): one Euler step of the
    trained 2-rectified flow lands near each pair's partner, which one step of the curved teacher does not."""
    x1 = torch.randn(2000, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    trained = train_reflow_mlp(Pairs(x1=x1, x0=gaussian_map(x1)), config=FlowTrainConfig(steps=400, seed=0))
    test = torch.randn(500, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    student = (euler_samples(mlp_velocity_fn(trained.model), test, 1) - gaussian_map(test)).norm(dim=1).mean()
    teacher = (euler_samples(gaussian_velocity, test, 1) - gaussian_map(test)).norm(dim=1).mean()
    assert float(student) < 0.1 < float(teacher)


def test_the_boundary_condition_is_exact():
    torch.manual_seed(0)
    model = ConsistencyMLP(sigma_data=0.8)
    x = torch.randn(100, 2)
    assert torch.equal(model(x, torch.zeros(100)), x)
    c_skip, c_out = boundary_coefficients(torch.tensor([0.0, 1.0]), 0.8)
    assert c_skip.tolist() == [1.0, 0.0] and c_out[0] == 0 and float(c_out[1]) == pytest.approx(0.8)


@pytest.mark.parametrize("t", [0.1, 0.5, 0.9, 1.0])
def test_the_coefficients_give_a_unit_variance_target(t):
    """(x_0 - c_skip x_t) / c_out, the network's regression target, has variance 1 per coordinate (Monte Carlo)."""
    g = torch.Generator().manual_seed(5)
    sigma_data = 0.8
    x0 = sigma_data * torch.randn(200_000, generator=g, dtype=torch.float64)
    x_t = (1 - t) * x0 + t * torch.randn(200_000, generator=g, dtype=torch.float64)
    c_skip, c_out = boundary_coefficients(torch.tensor(t), sigma_data)
    assert float(((x0 - c_skip * x_t) / c_out).var()) == pytest.approx(1.0, abs=0.01)


def test_one_ode_step_per_row_is_the_flow_solver():
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    for t, t_next in ((0.8, 0.5), (0.3, 0.0)):
        got = ode_step(gaussian_velocity, x, torch.full((6,), t, dtype=torch.float64),
                       torch.full((6,), t_next, dtype=torch.float64), "heun")
        want = integrate_flow(gaussian_velocity, x, torch.tensor([t, t_next], dtype=torch.float64), method="heun")
        torch.testing.assert_close(got, want)


class Oracle(torch.nn.Module):
    """The exact consistency function of the Gaussian data: the path through x_t at t ends at mu + s z."""

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
        return (MU + S * (x.double() - (1 - t) * MU) / torch.sqrt((1 - t) ** 2 * S**2 + t**2)).float()


def test_multistep_consistency_sampling_with_the_exact_function():
    assert consistency_times(4).tolist() == [1.0, 0.75, 0.5, 0.25]
    x1 = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    torch.testing.assert_close(consistency_sample(Oracle(), x1, 1), gaussian_map(x1), atol=1e-6, rtol=0)
    x = consistency_sample(Oracle(), x1, 4, generator=torch.Generator().manual_seed(8))  # re-noised 3 times
    torch.testing.assert_close(x.mean(0), MU, atol=0.01, rtol=0)
    torch.testing.assert_close(x.std(0), torch.full((2,), S, dtype=torch.float64), atol=0.01, rtol=0)
    assert float((x - gaussian_map(x1)).abs().mean()) > 0.05  # fresh noise: not the 1-step map


def test_consistency_distillation_learns_the_one_step_map():
    data = gaussian_map(torch.randn(2000, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
    result = train_consistency(data, gaussian_velocity, config=ConsistencyConfig(steps=600, intervals=8))
    test = torch.randn(500, 2, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    error = (consistency_sample(result.model, test, 1) - gaussian_map(test)).norm(dim=1).mean()
    untrained = (consistency_sample(ConsistencyMLP(), test, 1) - gaussian_map(test)).norm(dim=1).mean()
    assert float(error) < 0.15 < float(untrained)
