"""Exercises of page 11, continuous time: the drift and diffusion of the VP-SDE, the score of a one-Gaussian
marginal, which dynamics is deterministic, the change of variables in 1-D. Answers from process.sde,
process.paths and process.likelihood; mistake keys live under ``exercises.mistake.continuous``."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..process.likelihood import gaussian_log_density
from ..process.paths import vp_linear
from ..process.sde import diffusion_squared, drift_coefficient, vp_beta
from .base import DEC3, DEC4, Exercise, Settings, _nonzero, _part, _r

T_CHAIN = 1000  # the chain whose beta_t = beta(t / T) / T a student may confuse with beta(t)


def _m(name: str) -> str:
    return f"continuous.{name}"


def continuous_vp_sde(rng: np.random.Generator, settings: Settings) -> Exercise:
    """f(t) = -beta(t) / 2 and g(t) = sqrt(beta(t)) of the VP-SDE (Song et al. 2021, eq. 11), from
    sde.drift_coefficient and sde.diffusion_squared on paths.vp_linear (beta from 0.1 to 20)."""
    t = _r(rng.uniform(0.05, 0.95), 2)
    path = vp_linear()
    beta = float(vp_beta(t))
    f, g = float(drift_coefficient(path, t)), math.sqrt(float(diffusion_squared(path, t)))
    parts = (_part("f", f, DEC3, **{_m("no_half"): -beta, _m("drift_sign"): beta / 2,
                                    _m("discrete_beta"): -beta / (2 * T_CHAIN)}),
             _part("g", g, DEC3, **{_m("g_not_sqrt"): beta, _m("g_half"): math.sqrt(beta / 2),
                                    _m("discrete_beta"): math.sqrt(beta / T_CHAIN)}))
    return Exercise("continuous", "vp_sde", (("t", t), ("beta", beta), ("f", f), ("g", g)), parts)


def continuous_gaussian_score(rng: np.random.Generator, settings: Settings) -> Exercise:
    """Data N(mu, s^2): p_t = N(alpha mu, alpha^2 s^2 + sigma^2), score -(x - alpha mu) / (alpha^2 s^2 + sigma^2)
    (with alpha, sigma of paths.vp_linear, shown rounded; the answer uses the rounded values)."""
    t = _r(rng.uniform(0.05, 0.5), 2)
    path = vp_linear()
    a, s = _r(float(path.alpha(t)), 4), _r(float(path.sigma(t)), 4)
    mu, std = _nonzero(rng, -1.5, 1.5, 1), _r(rng.uniform(0.3, 1.0), 1)
    x = _nonzero(rng, -2, 2, 2)
    var = a**2 * std**2 + s**2
    answer = -(x - a * mu) / var
    part = _part("score", answer, DEC3, **{_m("point_mass"): -(x - a * mu) / s**2,
                                           _m("alpha_not_squared"): -(x - a * mu) / (a * std**2 + s**2),
                                           _m("no_alpha_mean"): -(x - mu) / var, _m("score_sign"): -answer})
    return Exercise("continuous", "gaussian_score", (
        ("t", t), ("alpha", a), ("sigma", s), ("mu", mu), ("std", std), ("x", x), ("mean", _r(a * mu, 4)),
        ("var", _r(var, 4)), ("answer", answer)), (part,))


def continuous_deterministic(rng: np.random.Generator, settings: Settings) -> Exercise:
    """One step of size h back from t: the reverse SDE's step x - h (f x - g^2 s) + g sqrt(h) z has standard deviation
    g sqrt(h) given x; the PF-ODE's x - h (f x - 1/2 g^2 s) has none (sde.diffusion_squared, vp_linear)."""
    t = _r(rng.uniform(0.1, 0.9), 2)
    h = float(rng.choice([0.01, 0.02, 0.05]))
    g2 = float(diffusion_squared(vp_linear(), t))
    sd = math.sqrt(g2 * h)
    parts = (_part("sde", sd, DEC4, **{_m("sd_no_sqrt_h"): math.sqrt(g2) * h, _m("sd_variance"): g2 * h,
                                       _m("sd_half"): math.sqrt(g2 * h / 2)}),
             _part("ode", 0.0, DEC4, **{_m("ode_has_noise"): sd, _m("ode_half_noise"): math.sqrt(g2 * h / 2)}))
    return Exercise("continuous", "deterministic", (("t", t), ("h", h), ("beta", g2), ("g", math.sqrt(g2)),
                                                    ("sd", sd)), parts)


def continuous_change_of_variables(rng: np.random.Generator, settings: Settings) -> Exercise:
    """dx/dt = c x from t = 0 to 1 with x_0 ~ N(0, 1): x_1 = e^c x_0 and log p_1(x_1) = log p_0(x_0) - int_0^1 c dt
    (the instantaneous change of variables, Chen et al. 2018, with div u = c); log p_0 from likelihood.gaussian_log_density."""
    c = _nonzero(rng, -1.0, 1.0, 1)
    x1 = _nonzero(rng, -2, 2, 2)
    x0 = x1 * math.exp(-c)
    log_p0 = float(gaussian_log_density(torch.tensor([[x0]], dtype=torch.float64), 1.0)[0])
    answer = log_p0 - c
    wrong_point = float(gaussian_log_density(torch.tensor([[x1]], dtype=torch.float64), 1.0)[0]) - c
    part = _part("log_p", answer, DEC3, **{_m("cov_sign"): log_p0 + c, _m("cov_no_jacobian"): log_p0,
                                           _m("cov_wrong_point"): wrong_point})
    return Exercise("continuous", "change_of_variables", (
        ("c", c), ("x1", x1), ("x0", x0), ("log_p0", log_p0), ("answer", answer)), (part,))
