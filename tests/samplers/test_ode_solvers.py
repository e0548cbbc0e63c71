"""The ODE solvers on equations with known solutions: Dormand-Prince meets its tolerance and its error falls with
it; Heun is second order; both run backwards in time; rows are held to the tolerance one by one."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.samplers.ode_solvers import DormandPrince, FixedHeun, dormand_prince, heun, solve


def rotation(t, y):
    """y = (cos, sin) of a circle with angular speed 1 + t: y(t) = (cos(t + t^2/2), sin(t + t^2/2)) from (1, 0)."""
    w = 1 + t
    return torch.stack([-w * y[:, 1], w * y[:, 0]], dim=1)


def exact_rotation(t):
    phase = t + t**2 / 2
    return torch.tensor([[math.cos(phase), math.sin(phase)]], dtype=torch.float64)


@pytest.mark.parametrize("tol", [1e-4, 1e-6, 1e-8])
def test_dormand_prince_meets_its_tolerance(tol):
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    sol = dormand_prince(rotation, y0, 0.0, 3.0, DormandPrince(rtol=tol, atol=tol))
    error = float((sol.y - exact_rotation(3.0)).abs().max())
    assert error < 50 * tol  # the global error: the local tolerance times a modest factor over ~10 radians
    assert sol.nfe == 2 + 6 * (sol.steps + sol.rejected)  # the initial-step probe, then 6 per step (FSAL)


def test_dormand_prince_error_and_cost_follow_the_tolerance():
    """Fifth order: 100 times tighter costs about 100^(1/5) = 2.5 times the steps, and the error falls ~100 fold."""
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    runs = [dormand_prince(rotation, y0, 0.0, 3.0, DormandPrince(rtol=tol, atol=tol)) for tol in (1e-5, 1e-7)]
    errors = [float((r.y - exact_rotation(3.0)).abs().max()) for r in runs]
    assert 20 < errors[0] / errors[1] < 500
    assert 1.8 < runs[1].steps / runs[0].steps < 3.5


def test_backwards_in_time_and_row_by_row():
    """dy/dt = c y from t = 1 down to t = 0.2: y = y(1) exp(-0.8 c), each row with its own c; the stiffest row sets
    the step, so every row meets the tolerance."""
    c = torch.tensor([[0.5], [-2.0], [4.0]], dtype=torch.float64)
    y1 = torch.ones(3, 1, dtype=torch.float64)
    sol = dormand_prince(lambda t, y: c * y, y1, 1.0, 0.2, DormandPrince(rtol=1e-8, atol=1e-8))
    exact = torch.exp(-0.8 * c)
    torch.testing.assert_close(sol.y, exact, rtol=1e-6, atol=0)


def test_heun_is_second_order():
    y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    errors = [float((heun(rotation, y0, 0.0, 2.0, FixedHeun(n)).y - exact_rotation(2.0)).abs().max()) for n in (40, 80)]
    assert errors[0] / errors[1] == pytest.approx(4, rel=0.1)


def test_progress_and_refusals():
    seen = []
    solve(lambda t, y: -y, torch.ones(1, 1, dtype=torch.float64), 0.0, 1.0, DormandPrince(1e-6, 1e-6),
          progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(TypeError, match="DormandPrince"):
        solve(lambda t, y: y, torch.ones(1, 1), 0.0, 1.0, "rk45")
    with pytest.raises(RuntimeError, match="steps"):
        dormand_prince(lambda t, y: 1e6 * math.sin(1e6 * t) * y, torch.ones(1, 1, dtype=torch.float64), 0.0, 1.0,
                       DormandPrince(1e-10, 1e-10, max_steps=20))
