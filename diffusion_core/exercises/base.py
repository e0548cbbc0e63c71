"""The objects of an exercise, reading and checking a typed answer, and the small helpers every
exercise builder uses (see the package's docstring)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..process.schedules import T_MAX, T_MIN, Schedule

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


