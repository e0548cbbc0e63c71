"""Euler-Maruyama and the Langevin corrector against closed forms for Gaussian data N(m, v): the forward SDE's
particles have the path's mean and variance; the reverse SDE (with and without the corrector) and the PF-ODE
from p_1 reach p_t (Monte Carlo within its error); the ODE is deterministic, the SDE is not; a fixed generator
pins a run; the corrector keeps p_t and pulls a wrong variance towards it."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.process.paths import vp_linear
from diffusion_core.process.sde import pf_ode_drift
from diffusion_core.samplers.flow import flow_times, integrate_flow
from diffusion_core.samplers.sde import (LangevinCorrector, forward_sde, increasing_times, langevin_step,
                                         reverse_sde, run_reverse_sde, score_calls)

M, V = 0.7, 0.25  # data N(M, V) per coordinate
N = 4000
PATH = vp_linear()


def marginal(t):
    a, s = float(PATH.alpha(t)), float(PATH.sigma(t))
    return a * M, a**2 * V + s**2


def eps_fn(x, t):
    a, s = float(PATH.alpha(t[0])), float(PATH.sigma(t[0]))  # every row at one time
    return s * (x - a * M) / (a**2 * V + s**2)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def assert_gaussian(x, mean, var):
    """Sample mean and variance within 4 standard errors (var of the sample variance: 2 var^2 / n)."""
    n = x.numel()
    assert abs(float(x.mean()) - mean) < 4 * math.sqrt(var / n), (float(x.mean()), mean)
    assert abs(float(x.var()) - var) < 4 * var * math.sqrt(2 / n) + 2e-3 * var, (float(x.var()), var)


def test_forward_sde_reaches_the_path_s_marginal():
    x0 = M + math.sqrt(V) * torch.randn(N, 1, generator=gen(0), dtype=torch.float64)
    x = x0
    for step in forward_sde(x0, PATH, increasing_times(400, 0.0, 0.6), generator=gen(1)):
        x = step.x_next
    assert_gaussian(x, *marginal(0.6))


@pytest.mark.parametrize("corrector", [None, LangevinCorrector()])
def test_reverse_sde_reaches_p_t(corrector):
    mean1, var1 = marginal(1.0)
    x1 = mean1 + math.sqrt(var1) * torch.randn(N, 1, generator=gen(2), dtype=torch.float64)
    x = run_reverse_sde(eps_fn, x1, PATH, flow_times(500, 1.0, 0.05), generator=gen(3), corrector=corrector,
                        noise_last=True)
    assert_gaussian(x, *marginal(0.05))


def test_the_ode_is_deterministic_and_the_sde_is_not():
    mean1, var1 = marginal(1.0)
    x1 = mean1 + math.sqrt(var1) * torch.randn(N, 1, generator=gen(4), dtype=torch.float64)
    times = flow_times(200, 1.0, 0.05)
    ode = [integrate_flow(pf_ode_drift(eps_fn, PATH), x1, times, method="heun") for _ in range(2)]
    assert torch.equal(ode[0], ode[1])
    assert_gaussian(ode[0], *marginal(0.05))
    sde = [run_reverse_sde(eps_fn, x1, PATH, times, generator=gen(s)) for s in (5, 6)]
    assert float((sde[0] - sde[1]).abs().mean()) > 0.05
    torch.testing.assert_close(run_reverse_sde(eps_fn, x1[:5], PATH, times, generator=gen(5)),
                               run_reverse_sde(eps_fn, x1[:5], PATH, times, generator=gen(5)), rtol=0, atol=0)


def test_steps_count_calls_and_the_last_step_is_noise_free():
    x1 = torch.zeros(3, 1, dtype=torch.float64)
    steps = list(reverse_sde(eps_fn, x1, PATH, flow_times(4, 1.0, 0.1), generator=gen(7),
                             corrector=LangevinCorrector(steps=2)))
    assert [s.calls for s in steps] == [3, 6, 9, 12] == [score_calls(k, LangevinCorrector(steps=2)) for k in range(1, 5)]
    last = steps[-1]
    # without noise the last step is the drift alone: the same for every run
    again = list(reverse_sde(eps_fn, last.x, PATH, torch.tensor([last.t, last.t_next], dtype=torch.float64),
                             generator=gen(99)))
    torch.testing.assert_close(again[0].x_next, last.x_next)


def test_langevin_keeps_p_t_and_corrects_a_wrong_variance():
    """Langevin dynamics with the exact score of N(m_t, v_t) leaves it invariant (up to its step's bias) and
    pulls a cloud of twice the variance towards v_t."""
    t = 0.3
    mean, var = marginal(t)
    score = lambda x: -(x - mean) / var  # noqa: E731
    g = gen(8)
    x = mean + math.sqrt(2 * var) * torch.randn(N, 1, generator=g, dtype=torch.float64)
    for _ in range(200):
        x = langevin_step(score(x), x, torch.randn(x.shape, generator=g, dtype=torch.float64), 0.16, 1.0)
    assert abs(float(x.var()) / var - 1) < 0.08  # the step's own bias is about e / (2 v) = 2.6 %
    assert abs(float(x.mean()) - mean) < 4 * math.sqrt(var / N)
