"""Bits/dim of an image by the ODE, both recipes, with a stand-in network whose eps is exact for Gaussian pixels:
recipe 1 must give the closed-form bits/dim of the dequantised image under N(alpha mu, alpha^2 s^2 + sigma^2) at
t_start; recipe 2 adds up its parts; the floor of recipe 1 is what its formula says and a Monte Carlo agrees."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.process import elbo
from diffusion_core.process.image_likelihood import dequantisation_floor, dequantised_bpd, ode_decoder_bound
from diffusion_core.process.likelihood import dequantize
from diffusion_core.process.paths import from_schedule
from diffusion_core.process.schedules import make_schedule
from diffusion_core.process.sde import network_ode
from diffusion_core.samplers.ode_solvers import DormandPrince

SCHEDULE = make_schedule("cosine", 1000)
DISCRETE = from_schedule(SCHEDULE)
STD = 0.4  # pixels N(0, STD^2): mean 0, so the prior N(0, sigma(1)^2) is off only by alpha(1)^2 in the variance


def eps_fn(x, t):
    """E[eps | x_tau] for N(0, STD^2) pixels at the schedule's (fractional) tau."""
    tau = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1, 1, 1) / SCHEDULE.T
    a, s = DISCRETE.alpha(tau).to(x.dtype), DISCRETE.sigma(tau).to(x.dtype)
    return s * x / (a**2 * STD**2 + s**2)


@pytest.fixture(scope="module")
def image():
    k = torch.randint(0, 256, (2, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    return (k.double() / 127.5 - 1) * 0.5  # on a grid of the 8-bit levels' spacing (k / 127.5 - 1 scaled: any x0)


def test_recipe_one_is_the_closed_form(image):
    g = torch.Generator().manual_seed(1)
    got = dequantised_bpd(eps_fn, image, SCHEDULE, solver=DormandPrince(1e-7, 1e-7), hutchinson=1, generator=g)
    g = torch.Generator().manual_seed(1)
    x = dequantize(image, torch.rand(image.shape, generator=g, dtype=torch.float64))  # the same u
    ode = network_ode(SCHEDULE)
    a, s = float(ode.path.alpha(ode.t_start)), float(ode.path.sigma(ode.t_start))
    var = a**2 * STD**2 + s**2
    log_p = (-0.5 * math.log(2 * math.pi * var) - x**2 / (2 * var)).flatten(1).sum(1)
    bpd = -(log_p - 16 * math.log(127.5)) / (16 * math.log(2))
    torch.testing.assert_close(got.bpd, bpd, rtol=0, atol=2e-4)  # the prior's alpha(1)^2 and the solver


def test_recipe_two_adds_up(image):
    got = ode_decoder_bound(eps_fn, image, SCHEDULE, solver=DormandPrince(1e-5, 1e-5), hutchinson=1,
                            generator=torch.Generator().manual_seed(2))
    assert got.decoder_bpd is not None and bool((got.decoder_bpd > 0).all())
    # the decoder term is elbo's L_0 for the same draw of x_1
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ones = torch.ones(2, dtype=torch.long)
    l0 = elbo.terms_nats(image, ones, noise, eps_fn(math.sqrt(float(SCHEDULE.alpha_bars[1])) * image
                                                    + float(SCHEDULE.sqrt_one_minus_alpha_bars[1]) * noise, ones),
                         SCHEDULE, "beta_tilde")
    torch.testing.assert_close(got.decoder_bpd, l0 / (16 * math.log(2)), rtol=1e-6, atol=1e-9)


def test_the_floor():
    sigma = 0.0064252801356717605
    assert dequantisation_floor(sigma) == pytest.approx(1.128, abs=1e-3)
    u = (torch.rand(200000, generator=torch.Generator().manual_seed(3), dtype=torch.float64) - 0.5) / 127.5
    mc = math.log2(127.5) + float((0.5 * math.log(2 * math.pi * sigma**2) + u**2 / (2 * sigma**2)).mean()) / math.log(2)
    assert dequantisation_floor(sigma) == pytest.approx(mc, abs=1e-3)
    best = (1 / 255) / math.sqrt(3)  # where d/dsigma vanishes: sigma^2 = E[u^2]
    assert all(dequantisation_floor(best) <= dequantisation_floor(best * f) for f in (0.5, 0.9, 1.1, 2.0))
