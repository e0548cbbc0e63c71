"""Check-yourself exercises of page 12 (few steps): the straightness of a path, the consistency boundary condition
and the network calls of a guided sampler. Answers come from the core functions the page uses."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..samplers.flow import network_calls
from ..toy2d.consistency import boundary_coefficients
from ..toy2d.reflow import straightness
from .base import DEC3, INTEGER, Exercise, Settings, _nonzero, _part, _r


def fewstep_straightness(rng: np.random.Generator, settings: Settings) -> Exercise:
    """S (Liu et al. 2023, def. 3.1) of a path of two straight pieces: from the noise end x_1 (t = 1) to a point m
    at t = 1/2, then to the data end x_0 (t = 0), each piece at constant speed; from ``toy2d.reflow.straightness``
    (on this path it is 4 ||m - (x_0 + x_1) / 2||^2, the midpoint's distance from the chord's)."""
    x1 = np.array([_nonzero(rng, -2, 2, 1), _nonzero(rng, -2, 2, 1)])
    x0 = np.array([_nonzero(rng, -2, 2, 1), _nonzero(rng, -2, 2, 1)])
    m = np.array([_r((a + b) / 2 + rng.choice([-1, 1]) * rng.uniform(0.2, 0.8), 1) for a, b in zip(x0, x1)])
    u_late, u_early = (x1 - m) / 0.5, (m - x0) / 0.5  # dx/dt on t in (1/2, 1] and on [0, 1/2)

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        u = u_late if float(t[0]) > 0.5 else u_early
        return torch.tensor(u, dtype=torch.float64).expand_as(x)

    answer = straightness(velocity, torch.tensor(x1[None], dtype=torch.float64), steps=2)
    chord = x1 - x0
    dev = chord - u_late
    part = _part("S", answer, DEC3, **{f"fewstep.{k}": v for k, v in dict(
                 no_dt=2 * answer,  # the two pieces added without their length 1/2
                 not_squared=float(np.linalg.norm(dev)),  # ||.|| instead of ||.||^2, integrated
                 chord_reversed=0.5 * float(np.sum((-chord - u_late) ** 2) + np.sum((-chord - u_early) ** 2)),
                 velocity_per_unit_t=0.5 * float(np.sum((chord - (x1 - m)) ** 2) + np.sum((chord - (m - x0)) ** 2)),
                 ).items()})
    return Exercise("fewstep", "straightness", (
        ("x1", f"({x1[0]:g}, {x1[1]:g})"), ("m", f"({m[0]:g}, {m[1]:g})"), ("x0", f"({x0[0]:g}, {x0[1]:g})"),
        ("chord", f"({_r(chord[0]):g}, {_r(chord[1]):g})"),
        ("u_late", f"({_r(u_late[0]):g}, {_r(u_late[1]):g})"), ("u_early", f"({_r(u_early[0]):g}, {_r(u_early[1]):g})"),
        ("dev", f"({_r(dev[0]):g}, {_r(dev[1]):g})"), ("dev_sq", _r(float(np.sum(dev**2)), 4)), ("answer", answer),
        *((f"{name}_{i + 1}", float(v[i])) for name, v in (("x1", x1), ("m", m), ("x0", x0)) for i in range(2)),
    ), (part,))


def fewstep_boundary(rng: np.random.Generator, settings: Settings) -> Exercise:
    """f(x, t) = c_skip(t) x + c_out(t) F (Song et al. 2023, sec. 3) with the page's c_skip, c_out on the
    rectified-flow path (``toy2d.consistency.boundary_coefficients``): at t = 0 it is x whatever F is."""
    sigma_d = _r(rng.uniform(0.5, 1.5), 1)
    t = _r(rng.choice([0.2, 0.25, 0.4, 0.5, 0.6, 0.75, 0.8]), 2)
    x, F = _nonzero(rng, -2, 2, 1), _nonzero(rng, -2, 2, 1)
    c_skip, c_out = (float(c) for c in boundary_coefficients(torch.tensor(t), sigma_d))
    zero_skip, zero_out = (float(c) for c in boundary_coefficients(torch.tensor(0.0), sigma_d))
    at_zero = zero_skip * x + zero_out * F
    answer = c_skip * x + c_out * F
    r2 = (1 - t) ** 2 * sigma_d**2 + t**2
    p0 = _part("f0", at_zero, DEC3, **{"fewstep.network_output": F, "fewstep.skip_plus_output": x + F})
    p1 = _part("ft", answer, DEC3, **{"fewstep.swapped": c_out * x + c_skip * F,
                                      "fewstep.no_root": c_skip * x + t * sigma_d / r2 * F, "fewstep.network_output": F})
    return Exercise("fewstep", "boundary", (
        ("sigma_d", sigma_d), ("t", t), ("x", x), ("F", F), ("r2", _r(r2, 4)), ("c_skip", _r(c_skip, 4)),
        ("c_out", _r(c_out, 4)), ("f0", at_zero), ("answer", answer),
    ), (p0, p1))


SAMPLER_CHOICES = ("Euler", "Heun", "DPM-Solver++(2M)")  # proper names, the same in both languages


def fewstep_calls(rng: np.random.Generator, settings: Settings) -> Exercise:
    """Network calls and passes of a k-step sampler with classifier-free guidance (Ho & Salimans 2022): Euler and
    DPM-Solver++(2M) one call per step, Heun 2k - 1 (``samplers.flow.network_calls``; Karras et al. 2022, alg. 1);
    a guided call runs the conditional and the unconditional pass (two passes, batched as one call)."""
    sampler = str(rng.choice(SAMPLER_CHOICES))
    k = int(rng.integers(2, 9))
    calls = network_calls("heun", k) if sampler == "Heun" else k
    passes = 2 * calls
    p0 = _part("calls", calls, INTEGER, **{"fewstep.heun_every_step": 2 * k if sampler == "Heun" else math.nan,
                                           "fewstep.counted_passes": passes})
    p1 = _part("passes", passes, INTEGER, **{"fewstep.guidance_free": calls,
                                             "fewstep.heun_every_step": 4 * k if sampler == "Heun" else math.nan})
    return Exercise("fewstep", "calls", (
        ("sampler", sampler), ("k", k), ("calls", calls), ("passes", passes),
    ), (p0, p1))
