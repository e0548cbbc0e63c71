"""The ODE likelihood against closed forms: data that are exactly Gaussian (correlated, 3-D) have
p_t = N(alpha mu, alpha^2 Sigma + sigma^2 I) and an exact noise predictor, so log p_{t_start}(x) by the ODE must
match the Gaussian's log density; Hutchinson's estimate is unbiased with the spread its variance formula says;
and bits/dim count the Jacobian of the scaling: a uniform model on the 256 bins gives exactly 8."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.process.likelihood import (bits_per_dim, dequantize, gaussian_log_density, ode_likelihood,
                                               ode_log_likelihood, rademacher)
from diffusion_core.process.paths import vp_linear
from diffusion_core.samplers.ode_solvers import DormandPrince, FixedHeun

MU = torch.tensor([0.5, -1.0, 0.2], dtype=torch.float64)
L = torch.tensor([[0.8, 0.0, 0.0], [0.5, 0.6, 0.0], [-0.3, 0.4, 0.5]], dtype=torch.float64)
SIGMA = L @ L.T  # a full covariance: the drift's Jacobian is not diagonal, so Rademacher probes have variance


def marginal(t, path):
    """(mean, covariance) of p_t for data N(MU, SIGMA)."""
    a, s = float(path.alpha(t)), float(path.sigma(t))
    return a * MU, a**2 * SIGMA + s**2 * torch.eye(3, dtype=torch.float64)


def log_normal(x, mean, cov):
    return torch.distributions.MultivariateNormal(mean, cov).log_prob(x)


def exact_eps_fn(path):
    """E[eps | x_t] = sigma C_t^{-1} (x - alpha mu) for Gaussian data (Tweedie's formula with the marginal's score)."""
    def eps_fn(x, t):
        mean, cov = marginal(float(t[0]), path)
        return float(path.sigma(float(t[0]))) * torch.linalg.solve(cov, (x - mean).T).T
    return eps_fn


def exact_prior(path, t_end=1.0):
    mean, cov = marginal(t_end, path)
    return lambda z: log_normal(z, mean, cov)


@pytest.fixture(scope="module")
def points():
    path = vp_linear()
    mean, cov = marginal(0.01, path)
    return torch.distributions.MultivariateNormal(mean, cov).sample((40,)), path


def test_exact_divergence_gives_the_gaussian_log_density(points):
    x, path = points
    got = ode_likelihood(exact_eps_fn(path), x, path, t_start=0.01, solver=DormandPrince(1e-7, 1e-7),
                         prior_log_p=exact_prior(path))
    mean, cov = marginal(0.01, path)
    torch.testing.assert_close(got.log_p, log_normal(x, mean, cov), rtol=0, atol=1e-4)
    assert got.z.shape == x.shape and got.nfe > 0


def test_the_error_is_the_solver_s(points):
    """Looser tolerance, larger error; fixed-step Heun converges too."""
    x, path = points
    mean, cov = marginal(0.01, path)
    exact = log_normal(x, mean, cov)
    errors = [float((ode_log_likelihood(exact_eps_fn(path), x, path, t_start=0.01, solver=s,
                                        prior_log_p=exact_prior(path)) - exact).abs().max())
              for s in (DormandPrince(1e-3, 1e-3), DormandPrince(1e-6, 1e-6), FixedHeun(200))]
    assert errors[1] < errors[0] / 10 and errors[1] < 1e-3
    assert errors[2] < 0.01


def test_the_default_prior_is_the_path_s_gaussian(points):
    x, path = points
    got = ode_likelihood(exact_eps_fn(path), x[:5], path, t_start=0.01, solver=DormandPrince(1e-5, 1e-5))
    torch.testing.assert_close(got.prior_log_p, gaussian_log_density(got.z, path.sigma(1.0)))
    # by hand: N(z; 0, s^2 I) in 3-D
    s2 = float(path.sigma(1.0)) ** 2
    hand = -1.5 * math.log(2 * math.pi * s2) - (got.z**2).sum(1) / (2 * s2)
    torch.testing.assert_close(got.prior_log_p, hand)


def test_hutchinson_is_unbiased_with_the_spread_it_should_have(points):
    """Each single-probe estimate is log p + noise; the mean of 32 single-probe runs lands within 4 standard errors of the
    exact value, and a probe count of 16 shrinks the spread about 4 fold (1 / sqrt(k))."""
    x, path = points
    x = x[:4]
    mean, cov = marginal(0.01, path)
    exact = log_normal(x, mean, cov)
    singles = torch.stack([ode_log_likelihood(exact_eps_fn(path), x, path, t_start=0.01, solver=DormandPrince(1e-5, 1e-5),
                                              hutchinson=1, generator=torch.Generator().manual_seed(i),
                                              prior_log_p=exact_prior(path)) for i in range(32)])
    spread = singles.std(0)
    assert bool((spread > 1e-3).all())  # the probes do add noise here (the Jacobian is not diagonal)
    assert bool(((singles.mean(0) - exact).abs() < 4 * spread / math.sqrt(32)).all())
    sixteen = torch.stack([ode_log_likelihood(exact_eps_fn(path), x, path, t_start=0.01, solver=DormandPrince(1e-5, 1e-5),
                                              hutchinson=16, generator=torch.Generator().manual_seed(100 + i),
                                              prior_log_p=exact_prior(path)) for i in range(8)])
    ratio = float((spread / sixteen.std(0)).mean())
    assert 2.2 < ratio < 7.5  # 4 expected; the spread of 8 runs is itself uncertain


def test_rademacher_and_refusals(points):
    v = rademacher((1000,), torch.Generator().manual_seed(0))
    assert set(v.tolist()) == {-1.0, 1.0} and abs(float(v.mean())) < 0.1
    x, path = points
    for bad in (dict(t_start=0.0), dict(t_start=0.5, t_end=0.4), dict(t_start=0.1, hutchinson=0)):
        with pytest.raises(ValueError):
            ode_log_likelihood(exact_eps_fn(path), x[:2], path, **bad)


def test_bits_per_dim_of_a_uniform_model_is_eight():
    """A density uniform over the 256 bins of every pixel: each bin [k - 1/2, k + 1/2) / 127.5 - 1 of width
    1 / 127.5, so p(x) = (127.5 / 256)^D on [-1 - 1/255, 1 + 1/255)^D: exactly 8 bits per dimension."""
    D = 784
    log_p = torch.tensor([D * math.log(127.5 / 256)], dtype=torch.float64)
    assert float(bits_per_dim(log_p, D)[0]) == pytest.approx(8.0, abs=1e-12)


def test_dequantised_bits_bound_the_discrete_model():
    """1-D model p = N(0, s^2) on [-1, 1] space: the discrete model P(k) = its mass on bin k. The expected bpd over
    u of the dequantised density is at least -log2 P(k) (Jensen) and close to it when s spans many bins;
    dequantize puts x uniformly in the bin centred on k / 127.5 - 1."""
    s = 0.3
    k = torch.arange(0, 256, 15, dtype=torch.float64)
    x0 = k / 127.5 - 1
    u = torch.rand(4000, len(k), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = dequantize(x0.expand(4000, -1), u)
    assert float((x - x0).abs().max()) <= 0.5 / 127.5 + 1e-12
    log_p = -0.5 * math.log(2 * math.pi * s**2) - x**2 / (2 * s**2)
    bpd = bits_per_dim(log_p.reshape(-1), 1).reshape(4000, len(k)).mean(0)
    normal = torch.distributions.Normal(0.0, s)
    mass = normal.cdf((k + 0.5) / 127.5 - 1) - normal.cdf((k - 0.5) / 127.5 - 1)
    exact = -torch.log2(mass.double())
    assert bool((bpd >= exact - 1e-3).all()) and float((bpd - exact).abs().max()) < 0.01
