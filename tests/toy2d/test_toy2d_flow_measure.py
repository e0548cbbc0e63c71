"""toy2d.flow_measure: the flow's trajectories, the conditional and marginal losses of a field at one t and their gap
(Lipman et al. 2023, thm 2), the variance curve at its ends, and the energy distance against calls."""

from __future__ import annotations

import pytest
import torch

from diffusion_core import toy2d
from diffusion_core.process.paths import rectified_flow
from diffusion_core.samplers.flow import flow_times, integrate_flow, network_calls
from diffusion_core.toy2d.flow_measure import energy_by_calls, flow_paths, loss_gap, variance_curve

PATH = rectified_flow()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_flow_paths_hold_every_state():
    data = toy2d.distribution("moons").sample(50, gen(0))
    fn = toy2d.exact_velocity_fn(data, PATH)
    x1 = torch.randn(7, 2, generator=gen(1), dtype=torch.float64)
    states = flow_paths(fn, x1, 12)
    assert states.shape == (13, 7, 2) and torch.equal(states[0], x1)
    torch.testing.assert_close(states[-1], integrate_flow(fn, x1, flow_times(12)), rtol=0, atol=1e-12)


def test_the_gap_is_the_variance_and_the_exact_field_has_no_marginal_loss():
    data = toy2d.distribution("mixture").sample(100, gen(2))
    exact = loss_gap(toy2d.exact_velocity_fn(data, PATH), data, PATH, 0.4, n=3000, generator=gen(3))
    assert exact.marginal < 1e-20 and exact.gap == pytest.approx(exact.conditional)
    assert abs(exact.gap - exact.variance) < 4 * exact.standard_error + 0.02 * exact.variance
    zero = loss_gap(lambda x, t: torch.zeros_like(x), data, PATH, 0.4, n=3000, generator=gen(3))
    assert zero.marginal > 0.1  # a wrong field has a real marginal loss, and the same gap
    assert abs(zero.gap - zero.variance) < 4 * zero.standard_error + 0.05 * zero.variance


def test_the_variance_curve_at_its_ends():
    """At t = 1 x_t = eps says nothing about x0: V = the data's variance per coordinate (population), exactly;
    near t = 0 the posterior is one point and V vanishes."""
    data = toy2d.distribution("checkerboard").sample(300, gen(4)).double()
    v = variance_curve(data, PATH, torch.tensor([0.001, 1.0], dtype=torch.float64), n=500, generator=gen(5))
    assert float(v[1]) == pytest.approx(float(data.var(0, unbiased=False).mean()), rel=1e-9)
    assert float(v[0]) < 1e-3 * float(v[1])


def test_energy_falls_with_calls_and_calls_are_counted():
    data = toy2d.distribution("mixture").sample(200, gen(6))
    x1 = torch.randn(300, 2, generator=gen(7), dtype=torch.float64)
    points = energy_by_calls(toy2d.exact_velocity_fn(data, PATH), x1, data, {"euler": (2, 30), "heun": (2, 15)})
    assert [(p.method, p.steps, p.calls) for p in points] == [
        ("euler", 2, 2), ("euler", 30, 30), ("heun", 2, network_calls("heun", 2)), ("heun", 15, 29)]
    assert points[1].energy < points[0].energy and points[3].energy < points[2].energy
    assert points[2].energy < points[0].energy  # Heun at 3 calls beats Euler at 2 on this smooth field
