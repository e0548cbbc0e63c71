"""Exercises of page 10, flow matching: convert a noise prediction into a velocity, the velocity target of one
pair on a VP path, the sign of the velocity under the other direction of time, the weight of the velocity loss.
Every answer comes from the core's own functions (process.paths.convert, process.losses)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..process.losses import loss_weight, velocity_target
from ..process.paths import convert, rectified_flow, vp_cosine
from .base import DEC3, Exercise, Settings, _f, _nonzero, _part, _r, _rel, _x


def flow_convert(rng: np.random.Generator, settings: Settings) -> Exercise:
    """eps_hat -> velocity on the rectified flow (alpha = 1 - t, sigma = t): x0_hat = (x_t - t eps_hat) / (1 - t),
    u = alpha' x0_hat + sigma' eps_hat = eps_hat - x0_hat (Lipman et al. 2023, eq. 9 with the posterior means)."""
    t = _r(rng.uniform(0.2, 0.8), 2)
    xt, eps = _nonzero(rng, -1.5, 1.5), _nonzero(rng, -1.5, 1.5)
    x0_hat = (xt - t * eps) / (1 - t)
    answer = _f(convert(_x(eps), source="eps", target="velocity", x_t=_x(xt), t=t, path=rectified_flow()))
    part = _part("velocity", answer, DEC3, other_direction=-answer, xt_for_x0=eps - xt,
                 no_division=eps - (xt - t * eps), x0_for_velocity=x0_hat)
    return Exercise("flow", "convert", (
        ("t", t), ("one_minus_t", _r(1 - t, 2)), ("xt", xt), ("eps", eps), ("x0_hat", x0_hat), ("answer", answer),
    ), (part,))


def flow_vp_target(rng: np.random.Generator, settings: Settings) -> Exercise:
    """The conditional velocity alpha'(t) x_0 + sigma'(t) eps on the cosine path without offset,
    alpha = cos(pi t / 2), sigma = sin(pi t / 2): alpha' = -(pi / 2) sin(pi t / 2), sigma' = (pi / 2) cos(pi t / 2)."""
    t = _r(rng.uniform(0.15, 0.85), 2)
    x0, eps = _nonzero(rng, -1, 1), _nonzero(rng, -1.5, 1.5)
    path = vp_cosine(s=0.0)
    answer = _f(velocity_target(_x(x0), _x(eps), t, path))
    c, s = math.cos(math.pi * t / 2), math.sin(math.pi * t / 2)
    part = _part("target", answer, DEC3, no_chain_rule=-s * x0 + c * eps, other_direction=-answer,
                 xt_for_target=c * x0 + s * eps, derivative_signs=math.pi / 2 * (s * x0 - c * eps))
    return Exercise("flow", "vp_target", (
        ("t", t), ("x0", x0), ("eps", eps), ("cos", c), ("sin", s), ("d_alpha", -math.pi / 2 * s),
        ("d_sigma", math.pi / 2 * c), ("answer", answer),
    ), (part,))


def flow_other_convention(rng: np.random.Generator, settings: Settings) -> Exercise:
    """Lipman et al. (2023) and Liu et al. (2023) run time the other way: their s = 1 - t, x_s = s x_0 + (1 - s) eps
    (s = 0 noise, s = 1 data), so their velocity dx/ds = x_0 - eps is minus ours (eps - x_0)."""
    t = _r(rng.choice([-1, 1]) * rng.uniform(0.1, 0.4) + 0.5, 2)  # away from 0.5, where s = 1 - t = t
    x0, eps = _nonzero(rng, -1, 1), _nonzero(rng, -1.5, 1.5)
    ours = _f(velocity_target(_x(x0), _x(eps), t, rectified_flow()))
    s_part = _part("their_time", 1 - t, DEC3, same_time=t)
    u_part = _part("their_velocity", -ours, DEC3, our_sign=ours, x_s_for_velocity=(1 - t) * x0 + t * eps)
    return Exercise("flow", "other_convention", (
        ("t", t), ("x0", x0), ("eps", eps), ("s", _r(1 - t, 2)), ("ours", ours), ("answer", -ours),
    ), (s_part, u_part))


def flow_weight(rng: np.random.Generator, settings: Settings) -> Exercise:
    """On the rectified flow the velocity error is the eps error over (1 - t): u_hat - u = (eps_hat - eps) / (1 - t),
    so the velocity MSE is the eps-MSE times 1 / (1 - t)^2 (process.losses.loss_weight)."""
    t = _r(rng.uniform(0.3, 0.9), 2)
    answer = float(loss_weight("velocity", torch.tensor(t, dtype=torch.float64), rectified_flow()))
    part = _part("weight", answer, _rel(0.01), not_squared=1 / (1 - t), over_t=1 / t**2, inverted=(1 - t) ** 2,
                 x0_weight=t**2 / (1 - t) ** 2)
    return Exercise("flow", "weight", (
        ("t", t), ("one_minus_t", _r(1 - t, 2)), ("factor", 1 / (1 - t)), ("answer", answer),
    ), (part,))
