"""The SDE of a Gaussian path: f and g^2 against the VP-SDE of Song et al. (2021, eq. 11) and against the
rectified flow's closed form, the PF-ODE drift as the flow-matching velocity, and the chain with
beta_t = beta(t / T) / T tending to exp(-int beta) at the rate 1/T."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.process.paths import convert, from_schedule, rectified_flow, vp_cosine, vp_linear
from diffusion_core.process.schedules import make_schedule
from diffusion_core.process.sde import (chain_alpha_bars, diffusion_squared, drift_coefficient, path_eps_fn,
                                        pf_ode_drift, reverse_drift, score_fn, vp_beta, vp_integrated_beta)
from diffusion_core.samplers.flow import velocity_fn_from_eps

TIMES = torch.tensor([0.01, 0.2, 0.5, 0.77, 0.99], dtype=torch.float64)


def test_vp_linear_is_song_et_al_eq_11():
    """f = -beta(t) / 2 and g^2 = beta(t) with beta(t) = 0.1 + 19.9 t (Song et al. 2021, eq. 11, app. C)."""
    path = vp_linear()
    beta = 0.1 + 19.9 * TIMES
    torch.testing.assert_close(drift_coefficient(path, TIMES), -beta / 2, rtol=1e-12, atol=0)
    torch.testing.assert_close(diffusion_squared(path, TIMES), beta, rtol=1e-10, atol=0)
    torch.testing.assert_close(vp_beta(TIMES), beta)
    torch.testing.assert_close(torch.exp(-vp_integrated_beta(TIMES)), path.alpha(TIMES) ** 2, rtol=1e-12, atol=0)


@pytest.mark.parametrize("make", [vp_cosine, lambda: from_schedule(make_schedule("cosine", 1000))])
def test_every_vp_path_has_g2_equal_beta(make):
    """On any VP path (alpha^2 + sigma^2 = 1), g^2 = -2 f = -d log abar / dt = beta(t)."""
    path = make()
    f, g2 = drift_coefficient(path, TIMES), diffusion_squared(path, TIMES)
    torch.testing.assert_close(g2, -2 * f, rtol=1e-9, atol=0)
    assert bool((g2 > 0).all())


def test_rectified_flow_coefficients():
    """alpha = 1 - t, sigma = t: f = -1 / (1 - t), g^2 = 2 t + 2 t^2 / (1 - t) = 2 t / (1 - t) (by hand)."""
    path = rectified_flow()
    torch.testing.assert_close(drift_coefficient(path, TIMES), -1 / (1 - TIMES))
    torch.testing.assert_close(diffusion_squared(path, TIMES), 2 * TIMES / (1 - TIMES))


def test_the_variance_of_the_forward_sde_is_the_path_s():
    """For dx = f x dt + g dW from x_0 = 0, Var(x_t) solves dV/dt = 2 f V + g^2 (Ito); integrated numerically
    (midpoint rule, fine grid) from V(0) = 0 it must reach sigma(t)^2 of the path."""
    for path in (vp_linear(), rectified_flow(), vp_cosine()):
        ts = torch.linspace(1e-9, 0.9, 20001, dtype=torch.float64)
        mid = (ts[1:] + ts[:-1]) / 2
        h = float(ts[1] - ts[0])
        f, g2 = drift_coefficient(path, mid), diffusion_squared(path, mid)
        v = torch.zeros((), dtype=torch.float64)
        for fi, gi in zip(f, g2):
            # exact for f and g held constant over the step
            v = v * math.exp(2 * float(fi) * h) + float(gi) * math.expm1(2 * float(fi) * h) / (2 * float(fi))
        assert float(v) == pytest.approx(float(path.sigma(0.9) ** 2), rel=1e-5), path.name


def gaussian_eps(mean: float, std: float, path):
    """E[eps | x_t] for data N(mean, std^2) per coordinate: sigma (x - alpha mean) / (alpha^2 std^2 + sigma^2)."""
    def eps_fn(x, t):
        a, s = path.alpha(t).reshape(-1, 1), path.sigma(t).reshape(-1, 1)
        return s * (x - a * mean) / (a**2 * std**2 + s**2)
    return eps_fn


def test_pf_ode_drift_is_the_flow_matching_velocity():
    """f x - 1/2 g^2 s = alpha' x0_hat + sigma' eps_hat: the same field as paths.convert(eps -> velocity)."""
    g = torch.Generator().manual_seed(0)
    for path in (vp_linear(), vp_cosine(), rectified_flow()):
        x = torch.randn(6, 3, generator=g, dtype=torch.float64)
        t = TIMES[1:4].repeat(2)
        eps_fn = gaussian_eps(0.3, 0.8, path)
        u = convert(eps_fn(x, t), source="eps", target="velocity", x_t=x, t=t, path=path)
        torch.testing.assert_close(pf_ode_drift(eps_fn, path)(x, t), u, rtol=1e-10, atol=1e-10)
        # the reverse SDE's drift differs from the ODE's by the other half of g^2 s
        half = 0.5 * diffusion_squared(path, t).reshape(-1, 1) * score_fn(eps_fn, path)(x, t)
        torch.testing.assert_close(reverse_drift(eps_fn, path)(x, t), u - half, rtol=1e-10, atol=1e-10)


def test_the_score_of_a_gaussian_marginal():
    """score = -(x - alpha mean) / (alpha^2 std^2 + sigma^2), the gradient of the log density of N(alpha mean, v)."""
    path = vp_linear()
    x = torch.linspace(-2, 2, 9, dtype=torch.float64).reshape(-1, 1)
    t = torch.full((9,), 0.3, dtype=torch.float64)
    a, s = float(path.alpha(0.3)), float(path.sigma(0.3))
    expected = -(x - a * 0.5) / (a**2 * 0.64 + s**2)
    torch.testing.assert_close(score_fn(gaussian_eps(0.5, 0.8, path), path)(x, t), expected)


def test_path_eps_fn_gives_the_velocity_of_velocity_fn_from_eps():
    """The helper that the SDE code shares with samplers/flow: at equal SNR, convert(eps -> velocity) of it is
    velocity_fn_from_eps, and at the schedule's own times the network is asked at its integer timesteps."""
    schedule = make_schedule("cosine", 1000)
    seen = []

    def eps_fn(x, t):
        seen.append(t)
        return torch.tanh(x) * 0.3
    path = vp_linear()
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.full((4,), 0.4, dtype=torch.float64)
    eps = path_eps_fn(eps_fn, schedule, path)(x, t)
    u = velocity_fn_from_eps(eps_fn, schedule, path)(x, t)
    torch.testing.assert_close(convert(eps, source="eps", target="velocity", x_t=x, t=t, path=path), u)
    own = from_schedule(schedule)
    path_eps_fn(eps_fn, schedule, own)(x, torch.full((4,), 0.25, dtype=torch.float64))
    assert seen[-1].dtype == torch.long and int(seen[-1][0]) == 250


def test_chain_tends_to_the_sde_at_rate_one_over_T():
    """abar of the chain with beta_t = beta(t / T) / T against exp(-int_0^{t/T} beta): the largest error falls
    tenfold per tenfold T (first order), and T = 10 is no chain at all (beta_t reaches 2)."""
    errors = {}
    for T in (100, 1000, 10_000):
        chain = chain_alpha_bars(T)
        exact = torch.exp(-vp_integrated_beta(torch.arange(T + 1, dtype=torch.float64) / T))
        errors[T] = float((chain - exact).abs().max())
    assert errors[100] / errors[1000] == pytest.approx(10, rel=0.1)
    assert errors[1000] / errors[10_000] == pytest.approx(10, rel=0.05)
    ten = chain_alpha_bars(10)
    assert bool(torch.isfinite(ten[:5]).all()) and bool(torch.isnan(ten[5:]).all())  # beta_k = 1.005 at k = 5
    # at T = 1000 the chain's betas are Ho et al.'s range: 1e-4 ... 0.02
    assert float(vp_beta(1 / 1000)) / 1000 == pytest.approx(1.199e-4, rel=1e-3)
    assert float(vp_beta(1.0)) / 1000 == pytest.approx(0.02)
