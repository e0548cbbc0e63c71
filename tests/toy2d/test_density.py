"""The exact marginal of a finite data set in continuous time: its score against autograd of its log density and
against toy2d.optimal_score at the discrete grid, its log density against a brute-force sum, t = 0 refused, and
the Fokker-Planck equation: the closed-form terms against autograd, the residual ~0 with the path's f and g^2 and
large with a wrong g^2."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core import toy2d
from diffusion_core.process.paths import from_schedule, rectified_flow, vp_linear
from diffusion_core.process.schedules import make_schedule
from diffusion_core.process.sde import diffusion_squared, drift_coefficient
from diffusion_core.toy2d.density import (fokker_planck_terms, marginal_eps_fn, marginal_log_density, marginal_score,
                                          sample_marginal)


def gen(seed):
    return torch.Generator().manual_seed(seed)


DATA = toy2d.distribution("moons").sample(60, gen(0)).double()
X = torch.randn(50, 2, generator=gen(1), dtype=torch.float64) * 1.5


def test_log_density_is_the_mixture_summed_by_hand():
    path = vp_linear()
    a, s = float(path.alpha(0.3)), float(path.sigma(0.3))
    brute = torch.stack([torch.log(torch.stack([
        torch.exp(-((x - a * d) ** 2).sum() / (2 * s**2)) / (2 * math.pi * s**2) for d in DATA]).mean()) for x in X[:10]])
    torch.testing.assert_close(marginal_log_density(X[:10], 0.3, DATA, path), brute, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("t", [0.02, 0.3, 0.9])
@pytest.mark.parametrize("make", [vp_linear, rectified_flow])
def test_score_is_the_gradient_of_the_log_density(t, make):
    path = make()
    x = X.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(marginal_log_density(x, t, DATA, path).sum(), x)
    torch.testing.assert_close(marginal_score(X, t, DATA, path), grad, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_score_is_optimal_score_at_the_grid(kind):
    """from_schedule(schedule) at t = k / T holds abar_k exactly, so the continuous score is the discrete one."""
    schedule = make_schedule(kind, 1000)
    path = from_schedule(schedule)
    for k in (1, 10, 500, 999):
        torch.testing.assert_close(marginal_score(X, k / 1000, DATA, path),
                                   toy2d.optimal_score(X, k, DATA, schedule), rtol=1e-6, atol=1e-6)


def test_eps_fn_and_sampling():
    path = vp_linear()
    eps = marginal_eps_fn(DATA, path)(X.float(), torch.full((50,), 0.4, dtype=torch.float64))
    assert eps.dtype == torch.float32
    torch.testing.assert_close(eps.double(), -float(path.sigma(0.4)) * marginal_score(X, 0.4, DATA, path),
                               rtol=1e-5, atol=1e-6)
    fresh = sample_marginal(DATA, 0.4, path, 20000, gen(3))
    # mean alpha E[x0], variance alpha^2 Var(x0) + sigma^2 per axis
    a, s = float(path.alpha(0.4)), float(path.sigma(0.4))
    torch.testing.assert_close(fresh.mean(0), a * DATA.mean(0), atol=0.03, rtol=0)
    torch.testing.assert_close(fresh.var(0), a**2 * DATA.var(0, unbiased=False) + s**2, atol=0.05, rtol=0)


def test_t_zero_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="t = 0"):
        marginal_log_density(X, 0.0, DATA, vp_linear())
    with pytest.raises(ValueError, match="t = 0"):
        marginal_score(X, 0, DATA, vp_linear())
    with pytest.raises(ValueError, match="x"):
        marginal_score(X[:, :1], 0.5, DATA, vp_linear())


def test_fokker_planck_terms_match_autograd():
    path = vp_linear()
    t = 0.35
    x = X[:6]
    fp = fokker_planck_terms(x, t, DATA, path)
    # time derivative, one point at a time
    dp = []
    for xi in x:
        tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(marginal_log_density(xi[None], tt, DATA, path).exp().sum(), tt)
        dp.append(g)
    torch.testing.assert_close(fp.dp_dt, torch.stack(dp), rtol=1e-8, atol=1e-12)
    # space: div(f x p) and the Laplacian from the Hessian of p
    f, g2 = float(drift_coefficient(path, t)), float(diffusion_squared(path, t))
    transport, lap = [], []
    for xi in x:
        p = lambda z: marginal_log_density(z[None], t, DATA, path).exp()[0]  # noqa: E731
        grad = torch.autograd.functional.jacobian(p, xi)
        hess = torch.autograd.functional.hessian(p, xi)
        transport.append(-f * (2 * p(xi) + (xi * grad).sum()))
        lap.append(torch.trace(hess))
    torch.testing.assert_close(fp.transport, torch.stack(transport), rtol=1e-8, atol=1e-12)
    torch.testing.assert_close(fp.diffusion, 0.5 * g2 * torch.stack(lap), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("make", [vp_linear, rectified_flow])
def test_fokker_planck_holds_and_the_check_can_fail(make):
    path = make()
    grid = toy2d.grid(3.0, 40).double()
    for t in (0.05, 0.5, 0.95):
        assert fokker_planck_terms(grid, t, DATA, path).relative_residual < 1e-10
        assert fokker_planck_terms(grid, t, DATA, path, g2_scale=0.5).relative_residual > 0.05


def test_the_residual_with_a_scaled_g2_is_that_of_the_scaled_equation():
    grid = toy2d.grid(3.0, 20).double()
    fp = fokker_planck_terms(grid, 0.3, DATA, vp_linear())
    assert fp.relative_residual_with(0.5) == pytest.approx(
        fokker_planck_terms(grid, 0.3, DATA, vp_linear(), g2_scale=0.5).relative_residual, rel=1e-9)
