"""The core behind the posterior page (diffusion_core.process.posterior): q(x_{t-1} | x_t, x_0) against a Monte Carlo run
of the forward chain, beta~_t / beta_t at its limits, p_theta's mean with the true noise, the three faces of one
prediction (eqs. 10-11, 15), and the KL against its eq. 12 form."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.process.elbo import normal_kl
from diffusion_core.process.forward import q_sample, q_step
from diffusion_core.process.elbo import eps_mse_weight, posterior_kl_from_eps
from diffusion_core.process.posterior import (eps_from_mean, mean_from_eps, model_variance, p_mean_variance,
                                      posterior_coefficients, posterior_variance_ratio,
                                      q_posterior_mean_variance, x0_from_mean)
from diffusion_core.process.schedules import make_schedule

SCHEDULES = {kind: make_schedule(kind, 1000) for kind in ("linear", "cosine")}


@pytest.mark.parametrize("kind", SCHEDULES)
@pytest.mark.parametrize("t", [2, 10, 300, 999])
def test_posterior_against_the_forward_chain(kind, t):
    """Run the chain x_0 -> x_{t-1} (eq. 4) -> x_t (eq. 2) many times for one x_0: (x_{t-1}, x_t) is jointly Gaussian,
    so E[x_{t-1} | x_t, x_0] is the least-squares line of x_{t-1} on x_t and its residual variance is beta~_t."""
    s = SCHEDULES[kind]
    n, x0_value = 400_000, 0.6
    g = torch.Generator().manual_seed(t)
    x0 = torch.full((n, 1, 1, 1), x0_value, dtype=torch.float64)
    x_prev = q_sample(x0, t - 1, torch.randn(x0.shape, generator=g, dtype=torch.float64), s)
    x_t = q_step(x_prev, t, torch.randn(x0.shape, generator=g, dtype=torch.float64), s)
    a, b = x_t.flatten(), x_prev.flatten()
    slope = ((a - a.mean()) * (b - b.mean())).mean() / a.var()
    intercept = b.mean() - slope * a.mean()
    residual_var = (b - intercept - slope * a).var()
    c = posterior_coefficients(s)
    se = 5 / math.sqrt(n)  # a few standard errors of the regression, relative
    assert float(slope) == pytest.approx(float(c.coef_xt[t]), abs=se * max(1.0, float(c.coef_xt[t])))
    assert float(intercept) == pytest.approx(float(c.coef_x0[t]) * x0_value, abs=se)
    assert float(residual_var) == pytest.approx(float(c.variance[t]), rel=5 * math.sqrt(2 / n))
    # and q_posterior_mean_variance evaluates that line
    mean, var = q_posterior_mean_variance(x0[:3], x_t[:3], t, s)
    assert torch.allclose(mean, c.coef_x0[t] * x0[:3] + c.coef_xt[t] * x_t[:3])
    assert torch.allclose(var, torch.full_like(var, float(c.variance[t])))


@pytest.mark.parametrize("kind", SCHEDULES)
def test_variance_ratio_limits(kind):
    s = SCHEDULES[kind]
    r = posterior_variance_ratio(s)
    assert r.shape == (s.T + 1,) and r[0] == 0 and r[1] == 0  # beta~_1 = 0: x_0 is known at t = 1
    assert bool((r[1:] < 1).all()) and bool((r[2:] > 0).all())
    assert float(r[2]) == pytest.approx(float(s.betas[1] / (1 - s.alpha_bars[2])))  # (1 - abar_1) / (1 - abar_2)
    assert float(r[s.T]) > 0.99  # abar_T ~ 0: beta~_T ~ beta_T
    assert torch.allclose(r[1:] * s.betas[1:], posterior_coefficients(s).variance[1:])


def test_model_variance_at_t1_uses_beta_tilde_2():
    """beta~_1 = 0, so at t = 1 both choices use beta~_2, as Ho et al.'s code (and the bound's decoder) do."""
    s = SCHEDULES["cosine"]
    v = posterior_coefficients(s).variance
    assert model_variance(s, 1, "beta_tilde") == float(v[2]) and model_variance(s, 5, "beta_tilde") == float(v[5])
    assert model_variance(s, 1, "beta") == float(v[2]) and model_variance(s, 5, "beta") == float(s.betas[5])
    with pytest.raises(ValueError):
        model_variance(s, 0, "beta")
    with pytest.raises(ValueError):
        model_variance(s, 3, "sigma")  # type: ignore[arg-type]


@pytest.mark.parametrize("t", [1, 2, 500, 1000])
def test_true_noise_gives_the_posterior_mean(t):
    """With the true eps of x_t, x0_hat = x_0 (eq. 15) and mu_theta = mu~_t (eq. 10)."""
    s = SCHEDULES["cosine"]
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    x_t = q_sample(x0, t, eps, s)
    p = p_mean_variance(lambda x, tt: eps, x_t, t, s)
    mu_tilde, _ = q_posterior_mean_variance(x0, x_t, t, s)
    scale = 1 / math.sqrt(float(s.alpha_bars[t]))  # x0_hat divides by sqrt(abar_t)
    assert torch.allclose(p.x0_hat, x0, atol=1e-12 * scale)
    assert torch.allclose(p.mean, mu_tilde, atol=1e-12 * scale)
    assert torch.allclose(mean_from_eps(x_t, eps, t, s), mu_tilde, atol=1e-12 * scale)


@pytest.mark.parametrize("t", [1, 2, 37, 999, 1000])
def test_three_faces_of_one_prediction(t):
    """eps, x_0 and mu carry the same information: mu from eps_hat (eq. 11) = mu~ with x0_hat (eqs. 7, 15),
    and mu gives back eps_hat and x0_hat."""
    s = SCHEDULES["linear"]
    g = torch.Generator().manual_seed(1)
    x_t = torch.randn(3, 1, 5, 5, generator=g, dtype=torch.float64)
    p = p_mean_variance(lambda x, tt: 0.7 * x + 0.1 * tt.view(-1, 1, 1, 1) / 1000, x_t, t, s)
    assert torch.allclose(mean_from_eps(x_t, p.eps_hat, t, s), p.mean, atol=1e-10)
    assert torch.allclose(eps_from_mean(x_t, p.mean, t, s), p.eps_hat, atol=1e-8)
    assert torch.allclose(x0_from_mean(x_t, p.mean, t, s), p.x0_hat, atol=1e-8 * p.x0_hat.abs().max().item())


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
@pytest.mark.parametrize("t", [2, 100, 1000])
def test_kl_equals_its_eps_mse_form(variance, t):
    """sum_pixels KL(q || p_theta) with both Gaussians (eqs. 6-7 and sec. 3.2) = C + weight ||eps - eps_hat||^2 (eq. 12)."""
    s = SCHEDULES["cosine"]
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(2, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    x_t = q_sample(x0, t, eps, s)
    p = p_mean_variance(lambda x, tt: eps + 0.3 * torch.sin(x), x_t, t, s, variance)
    mu_tilde, var_tilde = q_posterior_mean_variance(x0, x_t, t, s)
    direct = normal_kl(mu_tilde, var_tilde, p.mean, torch.full_like(p.mean, p.variance)).flatten(1).sum(1)
    assert torch.allclose(posterior_kl_from_eps(eps, p.eps_hat, t, s, variance), direct, rtol=1e-9)
    if variance == "beta_tilde":  # C = 0 and the weight is 1/2 * beta_t / (alpha_t (1 - abar_{t-1}))
        w = float(eps_mse_weight(s, variance)[t])
        assert w == pytest.approx(float(s.betas[t] / (2 * s.alphas[t] * (1 - s.alpha_bars[t - 1]))))
    with pytest.raises(ValueError):
        posterior_kl_from_eps(eps, p.eps_hat, 1, s, variance)


def test_p_mean_variance_rejects_t_outside():
    s = SCHEDULES["linear"]
    with pytest.raises(ValueError):
        p_mean_variance(lambda x, t: x, torch.zeros(1, 1, 2, 2), 0, s)
    with pytest.raises(ValueError):
        p_mean_variance(lambda x, t: x, torch.zeros(1, 1, 2, 2), 1001, s)
