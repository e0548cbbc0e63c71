"""Gaussian paths and the conversions between predictions, against finite differences, the discrete
schedules, autograd and diffusers' DDPMScheduler.get_velocity (a test-only reference)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from diffusion_core.process.paths import (PREDICTIONS, UndefinedConversion, convert, from_schedule, rectified_flow,
                                          vp_cosine, vp_linear)
from diffusion_core.process.schedules import cosine_alpha_bar, make_schedule

PATHS = {"rectified_flow": rectified_flow(), "vp_cosine": vp_cosine(), "vp_linear": vp_linear(),
         "cosine_T1000": from_schedule(make_schedule("cosine", 1000)),
         "linear_T1000": from_schedule(make_schedule("linear", 1000))}
INTERIOR = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)


@pytest.mark.parametrize("name", PATHS)
def test_derivatives_are_those_of_alpha_and_sigma(name):
    path, h = PATHS[name], 1e-7
    t = INTERIOR + 0.3 / 1000  # off the grid points of the discrete paths, where the slope jumps
    for f, df in ((path.alpha, path.d_alpha), (path.sigma, path.d_sigma)):
        numeric = (f(t + h) - f(t - h)) / (2 * h)
        assert torch.allclose(df(t), numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["vp_cosine", "vp_linear", "cosine_T1000", "linear_T1000"])
def test_vp_paths_preserve_variance(name):
    path = PATHS[name]
    assert torch.allclose(path.alpha(INTERIOR) ** 2 + path.sigma(INTERIOR) ** 2, torch.ones(49, dtype=torch.float64),
                          atol=1e-14)


def test_the_ends_of_the_paths():
    for path in PATHS.values():
        assert float(path.alpha(0.0)) == 1.0 and float(path.sigma(0.0)) == 0.0
        assert float(path.log_snr(0.0)) == math.inf
    assert float(rectified_flow().alpha(1.0)) == 0.0 and float(vp_cosine().alpha(1.0)) == 0.0
    # vp_linear ends at abar(1) = exp(-(0.1 + 20) / 2) = exp(-10.05), the linear schedule's sum of betas
    assert float(vp_linear().alpha(1.0)) ** 2 == pytest.approx(math.exp(-10.05), rel=1e-12)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_from_schedule_is_exact_on_the_grid_and_monotone(kind):
    schedule = make_schedule(kind, 1000)
    path = from_schedule(schedule)
    k = torch.arange(0, 1001)
    assert torch.allclose(path.alpha(k.double() / 1000) ** 2, schedule.alpha_bars, rtol=1e-12, atol=0)
    fine = torch.linspace(0, 1, 20001, dtype=torch.float64)
    assert bool((path.alpha(fine)[1:] <= path.alpha(fine)[:-1]).all())


def test_vp_cosine_is_the_discrete_cosine_schedule_before_clipping():
    t = torch.arange(0, 1000, dtype=torch.float64)  # below T, where the clip of beta at 0.999 has not acted
    assert torch.allclose(vp_cosine().alpha(t / 1000) ** 2, cosine_alpha_bar(t, 1000), rtol=1e-12, atol=1e-15)


def test_vp_linear_is_the_limit_of_the_linear_chain():
    """log abar of the chain (a product of 1 - beta_k, beta_k = beta(k / T) / T) against -int beta: the
    gap, sum_k (-log(1 - beta_k) - beta_k) ~ sum beta_k^2 / 2, shrinks like 1 / T."""
    gaps = []
    for T in (100, 1000):
        schedule = make_schedule("linear", T)
        continuous = 2 * torch.log(vp_linear().alpha(torch.arange(T + 1) / T))
        gaps.append(float((torch.log(schedule.alpha_bars) - continuous).abs().max()))
    assert gaps[1] < 0.2 and gaps[0] / gaps[1] == pytest.approx(10, rel=0.15)


@pytest.mark.parametrize("name", PATHS)
def test_t_at_log_snr_inverts_log_snr(name):
    path = PATHS[name]
    assert torch.allclose(path.t_at_log_snr(path.log_snr(INTERIOR)), INTERIOR, atol=1e-12)
    assert float(path.t_at_log_snr(math.inf)) == 0.0 and float(path.t_at_log_snr(-math.inf)) == 1.0


def pair(path, t, seed=0, shape=(6, 3)):
    g = torch.Generator().manual_seed(seed)
    x0, eps = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)
    return x0, eps, path.sample(x0, t, eps)


@pytest.mark.parametrize("name", PATHS)
def test_each_prediction_is_its_definition(name):
    path = PATHS[name]
    t = torch.linspace(0.1, 0.9, 6, dtype=torch.float64) + 1e-4
    x0, eps, x_t = pair(path, t)
    a, s = path.alpha(t)[:, None], path.sigma(t)[:, None]
    da, ds = path.d_alpha(t)[:, None], path.d_sigma(t)[:, None]
    expected = {"eps": eps, "x0": x0, "score": -eps / s, "v": a * eps - s * x0, "velocity": da * x0 + ds * eps}
    for target, value in expected.items():
        assert torch.allclose(convert(eps, source="eps", target=target, x_t=x_t, t=t, path=path), value, atol=1e-12)


@pytest.mark.parametrize("name", PATHS)
def test_round_trips_are_exact_in_float64(name):
    path = PATHS[name]
    t = torch.linspace(0.05, 0.95, 6, dtype=torch.float64) + 1e-4
    x0, eps, x_t = pair(path, t, seed=1)
    faces = {p: convert(eps, source="eps", target=p, x_t=x_t, t=t, path=path) for p in PREDICTIONS}
    for source, target in itertools.permutations(PREDICTIONS, 2):
        there = convert(faces[source], source=source, target=target, x_t=x_t, t=t, path=path)
        back = convert(there, source=target, target=source, x_t=x_t, t=t, path=path)
        assert torch.allclose(there, faces[target], rtol=1e-10, atol=1e-10), (source, target)
        assert torch.allclose(back, faces[source], rtol=1e-10, atol=1e-10), (source, target)


def test_the_score_is_the_gradient_of_the_log_density():
    """For one data point x0, p_t(x) = N(alpha x0, sigma^2 I): its gradient by autograd is the score of eps."""
    path, t = vp_cosine(), torch.tensor(0.4, dtype=torch.float64)
    x0, eps, x_t = pair(path, t, seed=2, shape=(1, 5))
    x = x_t.clone().requires_grad_(True)
    log_p = torch.distributions.Normal(path.alpha(t) * x0, path.sigma(t)).log_prob(x).sum()
    (grad,) = torch.autograd.grad(log_p, x)
    assert torch.allclose(convert(eps, source="eps", target="score", x_t=x_t, t=t, path=path), grad, atol=1e-12)


def test_v_is_diffusers_get_velocity():
    from diffusers import DDPMScheduler

    schedule = make_schedule("cosine", 1000)
    reference = DDPMScheduler(num_train_timesteps=1000, trained_betas=schedule.betas[1:].numpy())
    k = torch.tensor([1, 10, 250, 500, 999])
    path = from_schedule(schedule)
    x0, eps, x_t = pair(path, k.double() / 1000, seed=3, shape=(5, 1, 4, 4))
    ours = convert(eps, source="eps", target="v", x_t=x_t, t=k.double() / 1000, path=path)
    theirs = reference.get_velocity(x0.float(), eps.float(), k - 1)  # diffusers counts t from 0: its k - 1 is our k
    assert torch.allclose(ours.float(), theirs, atol=1e-5)  # diffusers takes sqrt(1 - abar) in float32


def test_undefined_conversions_say_so():
    x = torch.ones(2, 3, dtype=torch.float64)
    with pytest.raises(UndefinedConversion, match="sigma"):
        convert(x, source="eps", target="score", x_t=x, t=0.0, path=rectified_flow())
    with pytest.raises(UndefinedConversion, match="alpha"):
        convert(x, source="eps", target="x0", x_t=x, t=1.0, path=vp_cosine())
    with pytest.raises(UndefinedConversion):
        convert(x, source="x0", target="velocity", x_t=x, t=0.0, path=vp_linear())  # sigma' is infinite at 0
    assert torch.isfinite(convert(x, source="eps", target="score", x_t=x, t=1.0, path=rectified_flow())).all()
    with pytest.raises(ValueError, match="unknown prediction"):
        convert(x, source="noise", target="x0", x_t=x, t=0.5, path=rectified_flow())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rectified_flow().alpha(1.5)
