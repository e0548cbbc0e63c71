"""Exercises of pages 5-9: the posterior, the variational bound, the reverse process, how many steps, the
2-D playground."""

from __future__ import annotations

import math

import numpy as np

from ..process.elbo import normal_kl
from ..process.forward import q_mean_variance
from ..process.gaussian import normal_pdf
from ..process.posterior import posterior_coefficients, q_posterior_mean_variance
from ..process.schedules import SCHEDULE_KINDS, Schedule, make_schedule
from ..samplers import ddim_step, ddpm_step, step_coefficients, timesteps
from .base import (
    DEC3,
    DEC4,
    INTEGER,
    LN2,
    Exercise,
    Settings,
    _f,
    _nonzero,
    _part,
    _pick_t,
    _r,
    _rel,
    _sig,
    _x,
)


# ------------------------------------------------------------------ page 5: the posterior
def _posterior_setting(rng: np.random.Generator) -> tuple[Schedule, int, str]:
    kind = str(rng.choice(SCHEDULE_KINDS))
    T = int(rng.choice([50, 100, 200, 1000]))
    s = make_schedule(kind, T)  # type: ignore[arg-type]
    return s, _pick_t(rng, s, 0.02, 0.95, t_min=2, min_beta=0.006), kind


def posterior_coefs(rng: np.random.Generator, settings: Settings) -> Exercise:
    """The two coefficients of mu~_t (Ho et al. 2020, eq. 7), with posterior.posterior_coefficients."""
    s, t, kind = _posterior_setting(rng)
    beta, abar, abar_prev = (_sig(float(v)) for v in (s.betas[t], s.alpha_bars[t], s.alpha_bars[t - 1]))
    c = posterior_coefficients(s)
    c0, ct = float(c.coef_x0[t]), float(c.coef_xt[t])
    alpha = 1 - beta
    return Exercise("posterior", "coefficients", (
        ("T", s.T), ("t", t), ("schedule", kind), ("beta", beta), ("abar", abar), ("abar_prev", abar_prev),
        ("alpha", alpha), ("c0", c0), ("ct", ct),
    ), (
        _part("coef_x0", c0, _rel(0.002), abar_t_for_abar_prev=math.sqrt(abar) * beta / (1 - abar),
              sqrt_missing=abar_prev * beta / (1 - abar), coefficients_swapped=ct),
        _part("coef_xt", ct, _rel(0.002), alpha_not_sqrt=alpha * (1 - abar_prev) / (1 - abar),
              abar_for_alpha=math.sqrt(abar) * (1 - abar_prev) / (1 - abar), coefficients_swapped=c0),
    ))


def posterior_mean(rng: np.random.Generator, settings: Settings) -> Exercise:
    """mu~_t = c_0 x_0 + c_t x_t, with posterior.q_posterior_mean_variance (Ho et al. 2020, eq. 7)."""
    s, t, kind = _posterior_setting(rng)
    c = posterior_coefficients(s)
    c0, ct = _sig(float(c.coef_x0[t])), _sig(float(c.coef_xt[t]))
    x0, xt = _nonzero(rng, -1, 1), _nonzero(rng, -2, 2)
    answer = _f(q_posterior_mean_variance(_x(x0), _x(xt), t, s)[0])
    part = _part("mean", answer, DEC4, coefficients_swapped=c0 * xt + ct * x0, x0_term_only=c0 * x0,
                 xt_term_only=ct * xt)
    return Exercise("posterior", "mean", (
        ("T", s.T), ("t", t), ("schedule", kind), ("c0", c0), ("ct", ct), ("x0", x0), ("xt", xt),
        ("term0", c0 * x0), ("termt", ct * xt), ("answer", answer),
    ), (part,))


def posterior_variance(rng: np.random.Generator, settings: Settings) -> Exercise:
    """beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t, with posterior.posterior_coefficients (Ho et al. 2020, eq. 7)."""
    s, t, kind = _posterior_setting(rng)
    beta, abar, abar_prev = (_sig(float(v)) for v in (s.betas[t], s.alpha_bars[t], s.alpha_bars[t - 1]))
    answer = float(posterior_coefficients(s).variance[t])
    part = _part("variance", answer, _rel(0.002), beta_for_beta_tilde=beta, std_for_variance=math.sqrt(answer),
                 ratio_inverted=(1 - abar) / (1 - abar_prev) * beta)
    return Exercise("posterior", "variance", (
        ("T", s.T), ("t", t), ("schedule", kind), ("beta", beta), ("abar", abar), ("abar_prev", abar_prev),
        ("ratio", (1 - abar_prev) / (1 - abar)), ("answer", answer),
    ), (part,))


# ------------------------------------------------------------------ page 6: the variational bound
def bound_kl_bits(rng: np.random.Generator, settings: Settings) -> Exercise:
    """KL(N(m1, v1) || N(m2, v2)) of one dimension in bits, with elbo.normal_kl (nats) / ln 2."""
    m1, m2 = _r(rng.uniform(-1, 1), 1), _r(rng.uniform(-1, 1), 1)
    v1, v2 = (float(v) for v in rng.choice([0.25, 0.5, 1.0, 2.0, 4.0], size=2, replace=False))
    nats = float(normal_kl(m1, v1, m2, v2))
    part = _part("bits", nats / LN2, _rel(0.01), nats_not_bits=nats, kl_reversed=float(normal_kl(m2, v2, m1, v1)) / LN2,
                 missing_half=2 * nats / LN2)
    return Exercise("bound", "kl_bits", (
        ("m1", m1), ("v1", v1), ("m2", m2), ("v2", v2), ("log_ratio", math.log(v2 / v1)),
        ("quad", (v1 + (m1 - m2) ** 2) / v2), ("nats", nats), ("answer", nats / LN2),
    ), (part,))


def bound_term_bits(rng: np.random.Generator, settings: Settings) -> Exercise:
    """One pixel's L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) with sigma_t^2 = beta~_t
    (Ho et al. 2020, eqs. 5 and 8), in bits, with elbo.normal_kl and posterior.posterior_coefficients."""
    s, t, kind = _posterior_setting(rng)
    var = _sig(float(posterior_coefficients(s).variance[t]))
    mu_tilde = _r(rng.uniform(-1, 1))
    mu_theta = _r(mu_tilde + rng.choice([-1, 1]) * rng.uniform(0.02, 0.2))
    if mu_theta == mu_tilde:
        mu_theta = _r(mu_tilde + 0.05)
    nats = float(normal_kl(mu_tilde, var, mu_theta, var))
    part = _part("bits", nats / LN2, _rel(0.01), nats_not_bits=nats, missing_half=2 * nats / LN2,
                 std_for_variance=(mu_tilde - mu_theta) ** 2 / (2 * math.sqrt(var)) / LN2)
    return Exercise("bound", "term_bits", (
        ("T", s.T), ("t", t), ("schedule", kind), ("var", var), ("mu_tilde", mu_tilde), ("mu_theta", mu_theta),
        ("diff2", (mu_tilde - mu_theta) ** 2), ("nats", nats), ("answer", nats / LN2),
    ), (part,))


def bound_eps_weight(rng: np.random.Generator, settings: Settings) -> Exercise:
    """The weight beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) of ||eps - eps_theta||^2 in Ho et al. (2020), eq. 12,
    with sigma_t^2 = beta_t: the KL of eq. 8 per unit of squared noise error, since mu~ - mu_theta =
    beta_t / (sqrt(alpha_t) sqrt(1 - abar_t)) (eps_theta - eps) (eq. 11); with samplers.step_coefficients and elbo.normal_kl.
    Linear schedule (its numbers, not those of page 6's cosine chart); the solution compares with the weight at t = 2."""
    s = make_schedule("linear", 1000)
    t = _pick_t(rng, s, 0.02, 0.9, t_min=2, min_beta=0.008)
    beta, abar = _sig(float(s.betas[t])), _sig(float(s.alpha_bars[t]))
    c = step_coefficients(s, t, t - 1, sigma=math.sqrt(float(s.betas[t])))
    per_unit_eps = c.ddpm_coef_xt * c.ddpm_coef_eps  # mean shift of eq. 11 per unit of eps error
    answer = float(normal_kl(0.0, c.sigma**2, per_unit_eps, c.sigma**2))
    alpha = 1 - beta
    w2 = float(s.betas[2] / (2 * (1 - s.betas[2]) * (1 - s.alpha_bars[2])))  # the same weight at t = 2
    part = _part("weight", answer, _rel(0.002), missing_half=2 * answer,
                 alpha_missing=beta / (2 * (1 - abar)), sqrt_one_minus_abar=beta / (2 * alpha * math.sqrt(1 - abar)))
    return Exercise("bound", "eps_weight", (
        ("t", t), ("beta", beta), ("abar", abar), ("alpha", alpha), ("answer", answer), ("w2", _sig(w2, 3)),
        ("ratio", round(w2 / answer)),
    ), (part,))


# ------------------------------------------------------------------ page 7: the reverse process
def _reverse_setting(rng: np.random.Generator, lo: float = 0.05, hi: float = 0.95) -> tuple[Schedule, int]:
    s = make_schedule("linear", 1000)  # Ho et al.'s schedule (the shipped denoiser is cosine): the statements give every number
    return s, _pick_t(rng, s, lo, hi, t_min=2)


def reverse_x0_hat(rng: np.random.Generator, settings: Settings) -> Exercise:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) (Ho et al. 2020, eq. 15), as samplers.ddim_step computes it."""
    s, t = _reverse_setting(rng, 0.1, 0.95)
    abar = _sig(float(s.alpha_bars[t]))
    xt, eps = _nonzero(rng, -2, 2), _nonzero(rng, -2, 2)
    answer = _f(ddim_step(_x(xt), _x(eps), t, t - 1, s).x0_hat)
    part = _part("x0_hat", answer, DEC3, abar_for_sqrt_abar=(xt - math.sqrt(1 - abar) * eps) / abar,
                 variance_for_std=(xt - (1 - abar) * eps) / math.sqrt(abar),
                 sign_of_eps=(xt + math.sqrt(1 - abar) * eps) / math.sqrt(abar))
    return Exercise("reverse", "x0_hat", (
        ("t", t), ("abar", abar), ("xt", xt), ("eps", eps), ("sqrt_abar", math.sqrt(abar)),
        ("sqrt_one_minus", math.sqrt(1 - abar)), ("answer", answer),
    ), (part,))


def reverse_ddpm_mean(rng: np.random.Generator, settings: Settings) -> Exercise:
    """mu_theta = (x_t - beta_t / sqrt(1 - abar_t) eps_hat) / sqrt(alpha_t) (Ho et al. 2020, eq. 11), from samplers.ddpm_step."""
    s, t = _reverse_setting(rng)
    beta, abar = _sig(float(s.betas[t])), _sig(float(s.alpha_bars[t]))
    xt, eps = _nonzero(rng, -2, 2), _nonzero(rng, -2, 2)
    answer = _f(ddpm_step(_x(xt), _x(eps), t, t - 1, s, noise=_x(0.0)).mean)
    alpha = 1 - beta
    part = _part("mean", answer, DEC4, abar_for_alpha=(xt - beta / math.sqrt(1 - abar) * eps) / math.sqrt(abar),
                 variance_for_std=(xt - beta / (1 - abar) * eps) / math.sqrt(alpha),
                 alpha_not_sqrt=(xt - beta / math.sqrt(1 - abar) * eps) / alpha)
    return Exercise("reverse", "ddpm_mean", (
        ("t", t), ("beta", beta), ("abar", abar), ("alpha", alpha), ("xt", xt), ("eps", eps),
        ("coef_eps", beta / math.sqrt(1 - abar)), ("inner", xt - beta / math.sqrt(1 - abar) * eps),
        ("answer", answer),
    ), (part,))


def _strided_pair(rng: np.random.Generator, s: Schedule) -> tuple[int, int, int]:
    """(steps, t, t_prev) of a DDIM sub-sequence (samplers.timesteps), t_prev >= 1."""
    steps = int(rng.choice([5, 10, 20, 25, 50]))
    ts = timesteps(s.T, steps)
    ok = [i for i in range(len(ts) - 1) if 0.05 <= float(s.alpha_bars[ts[i]]) and float(s.alpha_bars[ts[i + 1]]) <= 0.97]
    i = int(rng.choice(ok))
    return steps, ts[i], ts[i + 1]


def reverse_ddim_step(rng: np.random.Generator, settings: Settings) -> Exercise:
    """One DDIM step, eta = 0: x_{t_prev} = sqrt(abar_{t_prev}) x0_hat + sqrt(1 - abar_{t_prev}) eps_hat
    (Song et al. 2021, eq. 12), with samplers.ddim_step."""
    s = make_schedule("linear", 1000)
    steps, t, t_prev = _strided_pair(rng, s)
    abar, abar_prev = _sig(float(s.alpha_bars[t])), _sig(float(s.alpha_bars[t_prev]))
    xt, eps = _nonzero(rng, -2, 2), _nonzero(rng, -2, 2)
    out = ddim_step(_x(xt), _x(eps), t, t_prev, s, eta=0.0)
    answer, x0_hat = _f(out.x_prev), _f(out.x0_hat)
    part = _part("x_prev", answer, DEC3, abar_for_sqrt_abar=abar_prev * x0_hat + (1 - abar_prev) * eps,
                 x0_term_only=math.sqrt(abar_prev) * x0_hat,
                 eps_term_only=math.sqrt(1 - abar_prev) * eps)
    return Exercise("reverse", "ddim_step", (
        ("steps", steps), ("t", t), ("t_prev", t_prev), ("abar", abar), ("abar_prev", abar_prev), ("xt", xt),
        ("eps", eps), ("x0_hat", x0_hat), ("a_prev", math.sqrt(abar_prev)), ("b_prev", math.sqrt(1 - abar_prev)),
        ("answer", answer),
    ), (part,))


# ------------------------------------------------------------------ page 8: how many steps
def steps_timesteps(rng: np.random.Generator, settings: Settings) -> Exercise:
    """The k-th timestep of a DDIM sub-sequence tau_i = floor(i T / S) (Song et al. 2021, app. D.2), samplers.timesteps."""
    T = 1000
    steps = int(rng.choice([3, 6, 7, 9, 11, 12, 15, 30, 40, 60, 70, 80]))
    k = int(rng.integers(2, steps + 1))
    ts = timesteps(T, steps)
    answer = ts[k - 1]
    i = steps - k + 1
    part = _part("t", answer, INTEGER, ceil_for_floor=math.ceil(i * T / steps),
                 next_step=ts[k] if k < steps else 0, counted_from_end=math.floor(k * T / steps))
    return Exercise("steps", "timesteps", (
        ("T", T), ("steps", steps), ("k", k), ("i", i), ("exact", i * T / steps), ("answer", answer),
    ), (part,))


def steps_lambda_step(rng: np.random.Generator, settings: Settings) -> Exercise:
    """The DDIM step (eta = 0) written in lambda = log(alpha / sigma), alpha = sqrt(abar), sigma = sqrt(1 - abar):
    x_{t_prev} = (alpha_prev / alpha_t) x_t - sigma_prev (e^h - 1) eps_hat, h = lambda_prev - lambda_t
    (Lu et al. 2022, DPM-Solver-1, eq. 3.7 = Song et al. 2021, eq. 12); the answer from samplers.ddim_step."""
    s = make_schedule("linear", 1000)
    steps, t, t_prev = _strided_pair(rng, s)
    lam_t, lam_prev = (_sig(0.5 * float(s.log_snr[u])) for u in (t, t_prev))
    a_t, a_prev = (math.sqrt(float(s.alpha_bars[u])) for u in (t, t_prev))
    sig_prev = math.sqrt(1 - float(s.alpha_bars[t_prev]))
    xt, eps = _nonzero(rng, -2, 2), _nonzero(rng, -2, 2)
    answer = _f(ddim_step(_x(xt), _x(eps), t, t_prev, s, eta=0.0).x_prev)
    h = lam_prev - lam_t
    part = _part("x_prev", answer, DEC3,
                 full_log_snr=a_prev / a_t * xt - sig_prev * (math.exp(2 * h) - 1) * eps,
                 sign_of_h=a_prev / a_t * xt - sig_prev * (math.exp(-h) - 1) * eps,
                 abar_for_sqrt_abar=a_prev**2 / a_t**2 * xt - sig_prev * (math.exp(h) - 1) * eps)  # alpha = sqrt(abar) here
    return Exercise("steps", "lambda_step", (
        ("steps", steps), ("t", t), ("t_prev", t_prev), ("lam_t", lam_t), ("lam_prev", lam_prev),
        ("alpha_t", _sig(a_t)), ("alpha_prev", _sig(a_prev)), ("sigma_prev", _sig(sig_prev)), ("xt", xt), ("eps", eps),
        ("h", h), ("ratio", a_prev / a_t), ("expm1", math.exp(h) - 1), ("answer", answer),
    ), (part,))


# ------------------------------------------------------------------ page 9: the 2-D playground
def playground_score(rng: np.random.Generator, settings: Settings) -> Exercise:
    """Score of q(x_t | x_0) for one data point: grad log N(x_t; sqrt(abar) x_0, 1 - abar) = -(x_t - sqrt(abar) x_0) / (1 - abar)
    = -eps / sqrt(1 - abar_t) (Song et al. 2021b, eq. 8 with Ho et al. 2020, eq. 4), from forward.q_mean_variance."""
    s = make_schedule("linear", 1000)
    t = _pick_t(rng, s, 0.1, 0.8)  # 1 - abar >= 0.2: the score stays moderate
    abar = _sig(float(s.alpha_bars[t]))
    x0, xt = _nonzero(rng, -1.5, 1.5, 1), _nonzero(rng, -2, 2)
    mean, var = (_f(v) for v in q_mean_variance(_x(x0), t, s))
    answer = -(xt - mean) / var
    part = _part("score", answer, DEC3, std_for_variance=-(xt - mean) / math.sqrt(var), sign_flipped=-answer,
                 abar_for_sqrt_abar=-(xt - abar * x0) / (1 - abar))
    return Exercise("playground", "score", (
        ("t", t), ("abar", abar), ("x0", x0), ("xt", xt), ("mean", math.sqrt(abar) * x0), ("var", 1 - abar),
        ("eps", (xt - math.sqrt(abar) * x0) / math.sqrt(1 - abar)), ("answer", answer),
    ), (part,))


def playground_two_points(rng: np.random.Generator, settings: Settings) -> Exercise:
    """The exact denoiser E[x_0 | x_t] for data on two equally likely points -a and +a: the average of the points weighted by
    q(x_t | x_0) (Bayes' rule), with forward.q_mean_variance and gaussian.normal_pdf; = a tanh(sqrt(abar) a x_t / (1 - abar))."""
    s = make_schedule("linear", 1000)
    t = _pick_t(rng, s, 0.1, 0.6)
    abar = _sig(float(s.alpha_bars[t]))
    a = _r(rng.uniform(0.5, 1.5), 1)
    xt = _nonzero(rng, -1.2, 1.2, 2, 0.1)
    points = (-a, a)
    dens = []
    for p in points:
        mean, var = q_mean_variance(_x(p), t, s)
        dens.append(float(normal_pdf(xt, _f(mean), math.sqrt(_f(var)))))
    w = [d / sum(dens) for d in dens]
    answer = w[0] * points[0] + w[1] * points[1]
    part = _part("denoised", answer, DEC3, nearest_point=math.copysign(a, xt), one_point_inversion=xt / math.sqrt(abar),
                 unweighted_mean=0.0)
    return Exercise("playground", "two_points", (
        ("t", t), ("abar", abar), ("a", a), ("xt", xt), ("sqrt_abar", math.sqrt(abar)), ("var", 1 - abar),
        ("d_minus", dens[0]), ("d_plus", dens[1]), ("w_minus", w[0]), ("w_plus", w[1]), ("answer", answer),
    ), (part,))
