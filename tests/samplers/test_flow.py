"""The flow ODE samplers: Euler against diffusers' FlowMatchEulerDiscreteScheduler.step, the orders of Euler
and Heun on an ODE with a known solution, the cost in calls, and DDIM as Euler on the rectified flow."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.process.paths import rectified_flow, vp_cosine
from diffusion_core.process.schedules import make_schedule
from diffusion_core.samplers import ddim_step, timesteps
from diffusion_core.samplers.flow import (flow_ode, flow_times, integrate_flow, network_calls, times_at_timesteps,
                                          velocity_fn_from_eps)


def wavy_velocity(x, t):
    """A smooth field that depends on both x and t (no closed form needed: both sides use it)."""
    return torch.sin(3 * x) * t[:, None] - 0.5 * x + t[:, None] ** 2


def test_euler_is_diffusers_flow_match_euler_step():
    from diffusers import FlowMatchEulerDiscreteScheduler

    reference = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)
    reference.set_timesteps(8)
    times = reference.sigmas.double()  # 1 -> 1/8 ... then 0: the flow's time, sigma = t (SD3's convention, ours)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    theirs = x.clone()
    for tau, sigma in zip(reference.timesteps, reference.sigmas[:-1]):
        u = wavy_velocity(theirs.double(), sigma.double().expand(4)).float()
        theirs = reference.step(u, tau, theirs).prev_sample
    ours = integrate_flow(lambda x_t, t: wavy_velocity(x_t.double(), t).float(), x, times, method="euler")
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("heun", 2)])
def test_the_order_of_each_method(method, order):
    """dx/dt = c x from t = 1 to t = 0.2 (Heun's last step is not Euler there): x(0.2) = x(1) exp(-0.8 c).
    Halving the step divides the error by 2^order."""
    c, x1 = 1.7, torch.ones(1, 1, dtype=torch.float64)
    exact = math.exp(-0.8 * c)
    errors = [abs(float(integrate_flow(lambda x, t: c * x, x1, flow_times(n, 1.0, 0.2), method=method)) - exact)
              for n in (20, 40)]
    assert errors[0] / errors[1] == pytest.approx(2**order, rel=0.05)


@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 2, 7])
def test_network_calls_are_counted(method, steps):
    calls = []
    integrate_flow(lambda x, t: calls.append(1) or -x, torch.zeros(2, 2), flow_times(steps), method=method)
    assert len(calls) == network_calls(method, steps)


def test_grids_and_states():
    steps = list(flow_ode(lambda x, t: -x, torch.ones(3, 2), flow_times(4)))
    assert [s.t for s in steps] == [1.0, 0.75, 0.5, 0.25] and steps[-1].t_next == 0.0
    assert torch.equal(steps[1].x, steps[0].x_next)
    with pytest.raises(ValueError, match="decreasing"):
        integrate_flow(lambda x, t: x, torch.zeros(1, 1), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="method"):
        integrate_flow(lambda x, t: x, torch.zeros(1, 1), flow_times(2), method="rk4")


def gaussian_eps_fn(mean: float, std: float, schedule):
    """The exact eps prediction for data N(mean, std^2) per coordinate: E[eps | x_t] in closed form."""
    def eps_fn(x_t, t):
        abar = schedule.alpha_bars[t.long()].to(x_t.dtype).reshape(-1, *[1] * (x_t.ndim - 1))
        var = abar * std**2 + 1 - abar
        return (1 - abar).sqrt() * (x_t - abar.sqrt() * mean) / var
    return eps_fn


@pytest.mark.parametrize("steps", [5, 20])
def test_ddim_is_euler_on_the_rectified_flow(steps):
    """The same x_T through DDIM (eta = 0, no clipping) and through Euler on the rectified-flow path at the
    matching times, with x rescaled by alpha_path / alpha_schedule: the same x_0 (Gao et al. 2025), to float64
    precision: t on the flow's grid is 1 - 4.9e-5 at t = T, where one float64 ulp of t moves log SNR by 2e-12,
    and x0_hat = x / alpha - (sigma / alpha) eps_hat multiplies that by sigma / alpha = 2e4. (In float32 the two drift apart by about 1e-4 at the first step: abar_T = 2.4e-9 for the cosine
    schedule, so x0_hat = (x_T - sqrt(1 - abar_T) eps_hat) / sqrt(abar_T) multiplies one rounding of x_T by 2e4.)"""
    schedule = make_schedule("cosine", 1000)
    eps_fn = gaussian_eps_fn(0.3, 0.5, schedule)
    x_T = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grid = timesteps(schedule.T, steps) + [0]
    ddim = x_T
    for t, t_prev in zip(grid[:-1], grid[1:]):
        ddim = ddim_step(ddim, eps_fn(ddim, torch.full((8,), t)), t, t_prev, schedule).x_prev
    path = rectified_flow()
    times = times_at_timesteps(schedule, torch.tensor(grid), path)
    start = x_T * float(path.alpha(times[0]) / schedule.sqrt_alpha_bars[grid[0]])
    flow = integrate_flow(velocity_fn_from_eps(eps_fn, schedule, path), start, times, method="euler")
    assert times[-1] == 0 and torch.allclose(flow, ddim, atol=1e-8, rtol=0)


def test_velocity_from_eps_on_another_path_at_equal_snr():
    """On vp_cosine the exact eps of Gaussian data gives the exact velocity alpha' E[x0|x] + sigma' E[eps|x]."""
    schedule, path = make_schedule("cosine", 1000), vp_cosine()
    mean, std = 0.3, 0.5
    t = torch.full((5,), 0.37, dtype=torch.float64)
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    a, s = path.alpha(t)[:, None], path.sigma(t)[:, None]
    e_x0 = mean + a * std**2 * (x - a * mean) / (a**2 * std**2 + s**2)  # the Gaussian posterior mean
    e_eps = (x - a * e_x0) / s
    expected = path.d_alpha(t)[:, None] * e_x0 + path.d_sigma(t)[:, None] * e_eps
    # the schedule's eps_fn at a fractional timestep: the closed form again, with abar from the path
    frac = velocity_fn_from_eps(lambda x_t, tau: (1 - path.alpha(tau / 1000)[:, None] ** 2).sqrt()
                                * (x_t - path.alpha(tau / 1000)[:, None] * mean)
                                / (path.alpha(tau / 1000)[:, None] ** 2 * std**2 + 1 - path.alpha(tau / 1000)[:, None] ** 2),
                                schedule, path)
    assert torch.allclose(frac(x, t), expected, atol=1e-4)  # from_schedule's abar is the clipped discrete one


def test_clipped_velocity_is_clipped_ddim_on_the_rectified_flow():
    """With clip, the velocity holds clip(x0_hat) and the eps that goes with it (coefficients.x0_and_eps): Euler at
    the matching times is DDIM with clip=True, to float64 precision, on data whose x0_hat leaves [-1, 1] early."""
    schedule = make_schedule("cosine", 1000)
    eps_fn = gaussian_eps_fn(0.9, 0.5, schedule)  # mean 0.9: x0_hat beyond 1 in many pixels
    x_T = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    grid = timesteps(schedule.T, 10) + [0]
    ddim, clipped = x_T, 0
    for t, t_prev in zip(grid[:-1], grid[1:]):
        out = ddim_step(ddim, eps_fn(ddim, torch.full((8,), t)), t, t_prev, schedule, clip=True)
        unclipped = ddim_step(ddim, eps_fn(ddim, torch.full((8,), t)), t, t_prev, schedule, clip=False)
        clipped += int((unclipped.x0_hat.abs() > 1).sum())
        ddim = out.x_prev
    assert clipped > 0  # the clip did act
    path = rectified_flow()
    times = times_at_timesteps(schedule, torch.tensor(grid), path)
    start = x_T * float(path.alpha(times[0]) / schedule.sqrt_alpha_bars[grid[0]])
    flow = integrate_flow(velocity_fn_from_eps(eps_fn, schedule, path, clip=True), start, times)
    assert torch.allclose(flow, ddim, atol=1e-8, rtol=0)
    unclipped_flow = integrate_flow(velocity_fn_from_eps(eps_fn, schedule, path), start, times)
    assert not torch.allclose(unclipped_flow, ddim, atol=1e-3)
