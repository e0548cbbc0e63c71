"""Check-yourself exercises: numbers of the student's own, answers computed by the core.

Each exercise is a pure function of a numpy generator (seeded from the student's seed, the page,
the exercise and an instance counter, see ``exercise_rng``) and, where it says so, of the page's
live settings (``settings``: the page's widget values, e.g. ``{"closed_form_T": 1000}``). It returns
an ``Exercise``: the numbers of its statement and worked solution, one or more ``Part`` s, each with
the exact answer computed WITH THE CORE'S OWN FUNCTIONS (the ones the page uses, so page and
exercise cannot disagree), a stated tolerance, and the answers of named common mistakes.

Words live in the translation tables, section ``exercises``: the statement, hint and solution of
exercise ``kind`` on page ``page`` are ``exercises.<page>.<kind>.{title,statement,hint,solution}``,
a part's label ``exercises.<page>.<kind>.<part key>``, a mistake's hint ``exercises.mistake.<key>``
and a verdict's message ``exercises.verdict.<status>``. This module carries only numbers and keys.

``check_answer(exercise, text, part)`` reads a number typed with a decimal point or a decimal comma
("0,25": Vietnamese students type commas) and says right, a named mistake, wrong, empty or unreadable.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .correlation import correlation_curve, first_t_below
from .elbo import normal_kl
from .forward import q_mean_variance, q_step
from .gaussian import isotropic_normal_pdf, normal_pdf
from .images import uint8_to_unit
from .posterior import posterior_coefficients, q_posterior_mean_variance
from .samplers import ddim_step, ddpm_step, step_coefficients, timesteps
from .schedules import SCHEDULE_KINDS, T_MAX, T_MIN, Schedule, make_schedule

ToleranceKind = Literal["relative", "decimals", "integer"]
Status = Literal["right", "mistake", "wrong", "empty", "invalid"]
Settings = Mapping[str, object]
LN2 = math.log(2.0)


# ------------------------------------------------------------------ the objects
@dataclass(frozen=True)
class Tolerance:
    """How close a typed answer must be: ``relative`` (value = fraction, 0.01 = 1 %), ``decimals``
    (value = number of decimals: |typed - exact| <= 0.5 10^-value, i.e. right once rounded) or
    ``integer`` (the exact whole number)."""

    kind: ToleranceKind
    value: float = 0.0

    def accepts(self, typed: float, exact: float) -> bool:
        if self.kind == "integer":
            return typed == round(typed) and round(typed) == round(exact)
        if self.kind == "decimals":
            return abs(typed - exact) <= 0.5 * 10.0 ** (-self.value) * (1 + 1e-9) + 1e-12
        return abs(typed - exact) <= self.value * abs(exact) * (1 + 1e-9)


@dataclass(frozen=True)
class Mistake:
    """A named common mistake and the answer it gives; its hint is ``exercises.mistake.<key>``."""

    key: str  # e.g. "variance_for_std"
    value: float  # the answer a student who makes this mistake gets


@dataclass(frozen=True)
class Part:
    """One number the student types."""

    key: str  # its label is exercises.<page>.<kind>.<key>
    answer: float  # exact answer, from the core's functions
    tolerance: Tolerance
    mistakes: tuple[Mistake, ...] = ()  # only those distinguishable from the answer and each other


@dataclass(frozen=True)
class Exercise:
    """One instance of an exercise: its numbers, its parts, and the keys of its words."""

    page: str  # page id, e.g. "closed_form"
    kind: str  # exercise id on that page, e.g. "mean_std"
    fields: tuple[tuple[str, float | int | str], ...]  # numbers of the statement and solution, by name
    parts: tuple[Part, ...]

    @property
    def prefix(self) -> str:
        return f"exercises.{self.page}.{self.kind}"

    @property
    def title_key(self) -> str:
        return f"{self.prefix}.title"

    @property
    def statement_key(self) -> str:
        return f"{self.prefix}.statement"

    @property
    def hint_key(self) -> str:
        return f"{self.prefix}.hint"

    @property
    def solution_key(self) -> str:
        return f"{self.prefix}.solution"

    def part_key(self, part: int) -> str:
        return f"{self.prefix}.{self.parts[part].key}"

    @property
    def values(self) -> dict[str, float | int | str]:
        """The fields as a dict, to fill the translated strings."""
        return dict(self.fields)


@dataclass(frozen=True)
class Verdict:
    """What ``check_answer`` found for one typed answer."""

    status: Status  # right, mistake (a named one), wrong, empty, invalid
    answer: float  # the exact answer
    value: float | None = None  # the number read, if any
    mistake: str | None = None  # key of the detected mistake
    reason: str | None = None  # for "invalid": "not_a_number", "two_separators", "not_finite"

    @property
    def right(self) -> bool:
        return self.status == "right"

    @property
    def counts(self) -> bool:
        """A real try (a number was read): empty or unreadable input is not held against the student."""
        return self.status in ("right", "mistake", "wrong")

    @property
    def message_key(self) -> str:
        if self.status == "invalid":
            return f"exercises.verdict.invalid_{self.reason}"
        return f"exercises.verdict.{self.status}"

    @property
    def mistake_key(self) -> str | None:
        return f"exercises.mistake.{self.mistake}" if self.mistake else None


# ------------------------------------------------------------------ reading and checking an answer
SPACES = (" ", "\u00a0", "\u202f", "\u2009", "_")  # "10 000", no-break and thin spaces
MINUSES = ("\u2212", "\u2013")  # the minus sign and the en dash a keyboard or a copy may give


def parse_number(text: str) -> tuple[float | None, str | None]:
    """Read a number typed with a decimal point or a decimal comma: "0.25", "0,25", "-1,5", "1e-4",
    "10 000". Returns (value, None) or (None, reason) with reason "empty", "two_separators" (both a
    comma and a point, or several commas: "1,234.5" is ambiguous), "not_a_number" or "not_finite"."""
    s = (text or "").strip()
    for sp in SPACES:
        s = s.replace(sp, "")
    for m in MINUSES:
        s = s.replace(m, "-")
    if not s:
        return None, "empty"
    if s.count(",") > 1 or ("," in s and "." in s):
        return None, "two_separators"
    s = s.replace(",", ".")
    try:
        value = float(s)
    except ValueError:
        return None, "not_a_number"
    if not math.isfinite(value) or s.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        return None, "not_finite"
    return value, None


def check_answer(exercise: Exercise, text: str, part: int = 0) -> Verdict:
    """Right, a named common mistake, wrong, empty or unreadable: the verdict on ``text`` for ``part``."""
    p = exercise.parts[part]
    value, reason = parse_number(text)
    if value is None:
        if reason == "empty":
            return Verdict("empty", p.answer)
        return Verdict("invalid", p.answer, reason=reason)
    if p.tolerance.accepts(value, p.answer):
        return Verdict("right", p.answer, value)
    for m in p.mistakes:
        if p.tolerance.accepts(value, m.value):
            return Verdict("mistake", p.answer, value, mistake=m.key)
    return Verdict("wrong", p.answer, value)


# ------------------------------------------------------------------ building blocks
def _part(key: str, answer: float, tolerance: Tolerance, **mistakes: float) -> Part:
    """A part whose mistakes are kept only when a student could tell them apart: finite, not accepted
    as the answer, and not accepted as an earlier mistake."""
    kept: list[Mistake] = []
    for name, value in mistakes.items():
        value = float(value)
        if not math.isfinite(value) or tolerance.accepts(value, answer) or tolerance.accepts(answer, value):
            continue
        if any(tolerance.accepts(value, m.value) or tolerance.accepts(m.value, value) for m in kept):
            continue
        kept.append(Mistake(name, value))
    return Part(key, float(answer), tolerance, tuple(kept))


def _x(v: float) -> Tensor:
    """A one-pixel picture [1, 1, 1, 1] in float64, for the core's picture functions."""
    return torch.full((1, 1, 1, 1), float(v), dtype=torch.float64)


def _f(x: Tensor) -> float:
    return float(x.reshape(-1)[0])


def _r(v: float, d: int = 2) -> float:
    """A number of the statement: rounded, so the student computes with exactly what is shown."""
    return round(float(v), d) + 0.0  # + 0.0 turns -0.0 into 0.0


def _nonzero(rng: np.random.Generator, low: float, high: float, d: int = 2, least: float = 0.2) -> float:
    """A rounded uniform draw on [low, high] at least ``least`` away from 0."""
    while True:
        v = _r(rng.uniform(low, high), d)
        if abs(v) >= least:
            return v


def _sig(v: float, digits: int = 6) -> float:
    """A schedule value shown with ``digits`` significant digits (the page's tables show fewer)."""
    return float(f"{float(v):.{digits}g}")


def _setting_T(settings: Settings, key: str, default: int = 1000) -> int:
    T = settings.get(key, default)
    return T if isinstance(T, int) and not isinstance(T, bool) and T_MIN <= T <= T_MAX else default


def _pick_t(rng: np.random.Generator, s: Schedule, lo: float, hi: float, t_min: int = 1,
            min_beta: float = 0.0) -> int:
    """A timestep t >= t_min whose abar_t lies in [lo, hi] (and beta_t >= min_beta)."""
    abar, beta = s.alpha_bars.numpy(), s.betas.numpy()
    ok = [t for t in range(max(1, t_min), s.T + 1) if lo <= abar[t] <= hi and beta[t] >= min_beta]
    return int(rng.choice(ok))


DEC3, DEC4, DEC5 = Tolerance("decimals", 3), Tolerance("decimals", 4), Tolerance("decimals", 5)
INTEGER = Tolerance("integer")


def _rel(fraction: float) -> Tolerance:
    return Tolerance("relative", fraction)


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
    beta_t / (sqrt(alpha_t) sqrt(1 - abar_t)) (eps_theta - eps) (eq. 11); with samplers.step_coefficients and elbo.normal_kl."""
    s = make_schedule("linear", 1000)
    t = _pick_t(rng, s, 0.02, 0.9, t_min=2, min_beta=0.008)
    beta, abar = _sig(float(s.betas[t])), _sig(float(s.alpha_bars[t]))
    c = step_coefficients(s, t, t - 1, sigma=math.sqrt(float(s.betas[t])))
    per_unit_eps = c.ddpm_coef_xt * c.ddpm_coef_eps  # mean shift of eq. 11 per unit of eps error
    answer = float(normal_kl(0.0, c.sigma**2, per_unit_eps, c.sigma**2))
    alpha = 1 - beta
    part = _part("weight", answer, _rel(0.002), missing_half=2 * answer,
                 alpha_missing=beta / (2 * (1 - abar)), sqrt_one_minus_abar=beta / (2 * alpha * math.sqrt(1 - abar)))
    return Exercise("bound", "eps_weight", (
        ("t", t), ("beta", beta), ("abar", abar), ("alpha", alpha), ("answer", answer),
    ), (part,))


# ------------------------------------------------------------------ page 7: the reverse process
def _reverse_setting(rng: np.random.Generator, lo: float = 0.05, hi: float = 0.95) -> tuple[Schedule, int]:
    s = make_schedule("linear", 1000)  # the shared denoiser's schedule
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
                 abar_for_alpha=a_prev**2 / a_t**2 * xt - sig_prev * (math.exp(h) - 1) * eps)
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


# ------------------------------------------------------------------ the registry
Builder = Callable[[np.random.Generator, Settings], Exercise]

EXERCISES: dict[str, dict[str, Builder]] = {
    "gaussian": {"density": gaussian_density, "isotropic": gaussian_isotropic},
    "forward_chain": {"alpha_bar": forward_chain_alpha_bar, "one_step": forward_chain_one_step},
    "closed_form": {"mean_std": closed_form_mean_std, "snr_crossing": closed_form_snr_crossing,
                    "log_snr": closed_form_log_snr},
    "your_image": {"pixel": your_image_pixel, "correlation": your_image_correlation},
    "posterior": {"coefficients": posterior_coefs, "mean": posterior_mean, "variance": posterior_variance},
    "bound": {"kl_bits": bound_kl_bits, "term_bits": bound_term_bits, "eps_weight": bound_eps_weight},
    "reverse": {"x0_hat": reverse_x0_hat, "ddpm_mean": reverse_ddpm_mean, "ddim_step": reverse_ddim_step},
    "steps": {"timesteps": steps_timesteps, "lambda_step": steps_lambda_step},
    "playground": {"score": playground_score, "two_points": playground_two_points},
}

# The page settings each page's exercises read (widget keys in st.session_state).
SETTING_KEYS: dict[str, tuple[str, ...]] = {
    "closed_form": ("closed_form_T",),
    "your_image": ("your_image_schedule",),
}


def exercise_rng(seed: int, page: str, kind: str, instance: int) -> np.random.Generator:
    """The generator of one instance: the student's seed, the page, the exercise and the instance counter
    (crc32 of the names, stable across runs and machines, unlike Python's hash)."""
    words = [int(seed) & 0xFFFFFFFF, zlib.crc32(page.encode()), zlib.crc32(kind.encode()), int(instance)]
    return np.random.default_rng(words)


def make_exercise(page: str, kind: str, seed: int, instance: int = 0, settings: Settings | None = None) -> Exercise:
    """Instance ``instance`` of exercise ``kind`` on ``page`` for a student with ``seed``."""
    if page not in EXERCISES or kind not in EXERCISES[page]:
        raise ValueError(f"no exercise {kind!r} on page {page!r}")
    return EXERCISES[page][kind](exercise_rng(seed, page, kind, instance), settings or {})
