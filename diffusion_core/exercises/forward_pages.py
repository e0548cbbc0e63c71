"""Exercises of pages 1-4: the Gaussian density, the forward chain, the closed form, your own image."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.images import uint8_to_unit
from ..process.correlation import correlation_curve, first_t_below
from ..process.forward import q_mean_variance, q_step
from ..process.gaussian import isotropic_normal_pdf, normal_pdf
from ..process.schedules import SCHEDULE_KINDS, make_schedule
from .base import (
    DEC3,
    DEC4,
    DEC5,
    INTEGER,
    Exercise,
    Settings,
    _f,
    _nonzero,
    _part,
    _pick_t,
    _r,
    _rel,
    _setting_T,
    _sig,
    _x,
)


# ------------------------------------------------------------------ page 1: the Gaussian density
def gaussian_density(rng: np.random.Generator, settings: Settings) -> Exercise:
    """N(x | mu, sigma^2) at one x, with gaussian.normal_pdf."""
    mu = _r(rng.uniform(-2, 2), 1)
    sigma = float(rng.choice([0.5, 0.6, 0.8, 1.5, 2.0, 2.5]))
    x = _r(mu + sigma * rng.choice([-1, 1]) * rng.uniform(0.4, 2.0), 1)
    z = (x - mu) / sigma
    answer = float(normal_pdf(x, mu, sigma))
    part = _part("density", answer, _rel(0.01),
                 sigma_not_squared=float(normal_pdf(x, mu, math.sqrt(sigma))),
                 no_normalisation=math.exp(-0.5 * z * z),
                 missing_half=answer * math.exp(-0.5 * z * z),
                 sigma_squared_twice=float(normal_pdf(x, mu, sigma**2)))
    return Exercise("gaussian", "density", (
        ("mu", mu), ("sigma", sigma), ("x", x), ("var", sigma**2), ("z", z), ("half_z2", 0.5 * z * z),
        ("norm", 1 / math.sqrt(2 * math.pi * sigma**2)), ("expo", math.exp(-0.5 * z * z)), ("answer", answer),
    ), (part,))


def gaussian_isotropic(rng: np.random.Generator, settings: Settings) -> Exercise:
    """N(x; mu, sigma^2 I) in d = 2, with gaussian.isotropic_normal_pdf."""
    mu = np.array([_r(rng.uniform(-1, 1), 1), _r(rng.uniform(-1, 1), 1)])
    sigma = float(rng.choice([0.5, 0.8, 1.5, 2.0]))
    x = mu + np.array([_nonzero(rng, -1.5, 1.5, 1, 0.2), _nonzero(rng, -1.5, 1.5, 1, 0.2)]) * sigma
    x = np.round(x, 1)
    sq = float(np.sum((x - mu) ** 2))
    answer = float(isotropic_normal_pdf(x, mu, sigma))
    expo = math.exp(-sq / (2 * sigma**2))
    part = _part("density", answer, _rel(0.01),
                 one_dim_normaliser=expo / math.sqrt(2 * math.pi * sigma**2),
                 sigma_not_squared=float(isotropic_normal_pdf(x, mu, math.sqrt(sigma))),
                 no_normalisation=expo)
    return Exercise("gaussian", "isotropic", (
        ("x1", float(x[0])), ("x2", float(x[1])), ("mu1", float(mu[0])), ("mu2", float(mu[1])),
        ("sigma", sigma), ("var", sigma**2), ("sq", sq), ("norm", 1 / (2 * math.pi * sigma**2)),
        ("expo", expo), ("answer", answer),
    ), (part,))


# ------------------------------------------------------------------ page 2: the forward chain
def forward_chain_alpha_bar(rng: np.random.Generator, settings: Settings) -> Exercise:
    """abar_t = prod_{s<=t} (1 - beta_s) from the first betas of a linear schedule (Ho et al. 2020, eq. 4)."""
    T = int(rng.choice([25, 30, 40, 50, 60, 75]))  # small T: large enough betas that 1 - sum != product
    t = int(rng.choice([2, 3, 4, 5]))
    s = make_schedule("linear", T)
    betas = [_sig(b) for b in s.betas[1:t + 1].tolist()]
    answer = float(s.alpha_bars[t])
    part = _part("abar", answer, DEC5,
                 sum_for_product=1 - sum(betas),
                 alpha_for_alpha_bar=1 - betas[-1],
                 t_minus_one=float(s.alpha_bars[t - 1]),
                 sqrt_abar_for_abar=math.sqrt(answer))
    betas_text = ", ".join(f"\\beta_{i + 1} = {b:g}" for i, b in enumerate(betas))
    product = r" \cdot ".join(f"{1 - b:.6g}" for b in betas)
    return Exercise("forward_chain", "alpha_bar", (
        ("T", T), ("t", t), ("betas", betas_text), ("product", product), ("answer", answer),
    ), (part,))


def forward_chain_one_step(rng: np.random.Generator, settings: Settings) -> Exercise:
    """One step x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps, with forward.q_step (Ho et al. 2020, eq. 2)."""
    T = int(rng.choice([25, 50, 100, 1000]))
    s = make_schedule("linear", T)
    t = _pick_t(rng, s, 0.0, 1.0, t_min=T // 3)
    beta = _sig(float(s.betas[t]))
    x_prev, eps = _r(rng.uniform(-1, 1)), _nonzero(rng, -2, 2, 2, 0.3)
    answer = _f(q_step(_x(x_prev), t, _x(eps), s))
    part = _part("x_t", answer, DEC4,
                 beta_for_sqrt_beta=math.sqrt(1 - beta) * x_prev + beta * eps,
                 no_sqrt=(1 - beta) * x_prev + beta * eps,
                 closed_form_for_step=float(s.sqrt_alpha_bars[t]) * x_prev + float(s.sqrt_one_minus_alpha_bars[t]) * eps)
    return Exercise("forward_chain", "one_step", (
        ("T", T), ("t", t), ("beta", beta), ("x_prev", x_prev), ("eps", eps),
        ("a", math.sqrt(1 - beta)), ("b", math.sqrt(beta)), ("answer", answer),
    ), (part,))


# ------------------------------------------------------------------ page 3: the closed form
def closed_form_mean_std(rng: np.random.Generator, settings: Settings) -> Exercise:
    """Mean sqrt(abar_t) x_0 and std sqrt(1 - abar_t) of q(x_t | x_0), with forward.q_mean_variance
    (Ho et al. 2020, eq. 4); T is the page's."""
    T = _setting_T(settings, "closed_form_T")
    kind = str(rng.choice(SCHEDULE_KINDS))
    s = make_schedule(kind, T)  # type: ignore[arg-type]
    t = _pick_t(rng, s, 0.05, 0.95)
    abar = _sig(float(s.alpha_bars[t]))
    x0 = _nonzero(rng, -1, 1, 2, 0.1)
    mean, var = q_mean_variance(_x(x0), t, s)
    mean, std = _f(mean), math.sqrt(_f(var))
    return Exercise("closed_form", "mean_std", (
        ("T", T), ("t", t), ("schedule", kind), ("abar", abar), ("x0", x0),
        ("sqrt_abar", math.sqrt(abar)), ("var", 1 - abar), ("mean", mean), ("std", std),
    ), (
        _part("mean", mean, DEC4, abar_for_sqrt_abar=abar * x0, forgot_x0=math.sqrt(abar)),
        _part("std", std, DEC4, variance_for_std=1 - abar, one_minus_sqrt=1 - math.sqrt(abar),
              sqrt_abar_for_std=math.sqrt(abar)),
    ))


SNR_LEVELS = (5.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.8, 0.5, 0.4, 0.3, 0.25, 0.2, 0.1, 0.05)


def closed_form_snr_crossing(rng: np.random.Generator, settings: Settings) -> Exercise:
    """The first t with SNR_t below a level, with correlation.first_t_below on Schedule.snr; T is the page's."""
    T = _setting_T(settings, "closed_form_T")
    kind = str(rng.choice(SCHEDULE_KINDS))
    level = float(rng.choice(SNR_LEVELS))
    other = next(k for k in SCHEDULE_KINDS if k != kind)
    s = make_schedule(kind, T)  # type: ignore[arg-type]
    answer = first_t_below(s.snr.numpy(), level)
    assert answer is not None  # SNR_T < 0.05 for every schedule and T allowed
    other_t = first_t_below(make_schedule(other, T).snr.numpy(), level)  # type: ignore[arg-type]
    abar_t = first_t_below(s.alpha_bars.numpy(), level)  # abar_t < level instead of SNR_t < level
    part = _part("t", answer, INTEGER, last_above=answer - 1, other_schedule=other_t if other_t else math.nan,
                 abar_for_snr=abar_t if level < 1 and abar_t else math.nan)
    return Exercise("closed_form", "snr_crossing", (
        ("T", T), ("schedule", kind), ("level", level), ("abar_level", level / (1 + level)), ("answer", answer),
        ("before", answer - 1), ("snr_before", float(s.snr[answer - 1])), ("snr_at", float(s.snr[answer])),
    ), (part,))


def closed_form_log_snr(rng: np.random.Generator, settings: Settings) -> Exercise:
    """log SNR_t = log(abar_t / (1 - abar_t)), natural log, with Schedule.log_snr; T is the page's."""
    T = _setting_T(settings, "closed_form_T")
    kind = str(rng.choice(SCHEDULE_KINDS))
    s = make_schedule(kind, T)  # type: ignore[arg-type]
    t = _pick_t(rng, s, 0.02, 0.98)
    abar = _sig(float(s.alpha_bars[t]))
    answer = float(s.log_snr[t])
    snr = abar / (1 - abar)
    part = _part("log_snr", answer, DEC3, log10_for_ln=math.log10(snr), snr_not_log=snr, inverted_ratio=-answer)
    return Exercise("closed_form", "log_snr", (
        ("T", T), ("t", t), ("schedule", kind), ("abar", abar), ("snr", snr), ("answer", answer),
    ), (part,))


# ------------------------------------------------------------------ page 4: your own image
def your_image_pixel(rng: np.random.Generator, settings: Settings) -> Exercise:
    """A pixel p -> x_0 = p / 127.5 - 1 (images.uint8_to_unit), then the mean of x_t (forward.q_mean_variance);
    the schedule is the page's."""
    kind = settings.get("your_image_schedule", "linear")
    kind = kind if kind in SCHEDULE_KINDS else "linear"
    s = make_schedule(kind, 1000)  # type: ignore[arg-type]
    p = int(rng.integers(0, 256))
    while p in (127, 128):  # x_0 ~ 0 would make the mean trivial
        p = int(rng.integers(0, 256))
    x0 = float(uint8_to_unit(np.array([p], dtype=np.uint8))[0])
    x0_exact = p / 127.5 - 1  # float32 above; the mean is computed from the float64 value shown
    t = _pick_t(rng, s, 0.05, 0.95)
    abar = _sig(float(s.alpha_bars[t]))
    mean = _f(q_mean_variance(_x(x0_exact), t, s)[0])
    return Exercise("your_image", "pixel", (
        ("p", p), ("x0", x0_exact), ("t", t), ("schedule", kind), ("abar", abar), ("sqrt_abar", math.sqrt(abar)),
        ("mean", mean),
    ), (
        _part("x0", x0, DEC4, divided_by_255=p / 255, no_shift=p / 127.5, wrong_shift=p / 255 - 1),
        _part("mean", mean, DEC4, abar_for_sqrt_abar=abar * x0_exact, pixel_not_scaled=math.sqrt(abar) * p / 255),
    ))


def your_image_correlation(rng: np.random.Generator, settings: Settings) -> Exercise:
    """corr(x_t, x_0) = sqrt(abar_t) sigma / sqrt(abar_t sigma^2 + 1 - abar_t), with correlation.correlation_curve
    on a picture of two pixel values +-sigma (population std sigma); the schedule is the page's."""
    kind = settings.get("your_image_schedule", "linear")
    kind = kind if kind in SCHEDULE_KINDS else "linear"
    s = make_schedule(kind, 1000)  # type: ignore[arg-type]
    t = _pick_t(rng, s, 0.05, 0.95)
    abar = _sig(float(s.alpha_bars[t]))
    sigma = _r(rng.uniform(0.25, 0.8))
    answer = float(correlation_curve(torch.tensor([sigma, -sigma], dtype=torch.float64), s)[t])
    denom = math.sqrt(abar * sigma**2 + 1 - abar)
    part = _part("corr", answer, DEC3,
                 missing_denominator=math.sqrt(abar) * sigma,
                 variance_for_std=math.sqrt(abar) * sigma**2 / denom,
                 abar_for_sqrt_abar=abar * sigma / denom)
    return Exercise("your_image", "correlation", (
        ("t", t), ("schedule", kind), ("abar", abar), ("sigma", sigma), ("var", sigma**2),
        ("num", math.sqrt(abar) * sigma), ("denom2", abar * sigma**2 + 1 - abar), ("denom", denom), ("answer", answer),
    ), (part,))
