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

import zlib
from collections.abc import Callable

import numpy as np

from .base import (
    LN2,
    Exercise,
    Mistake,
    Part,
    Settings,
    Status,
    Tolerance,
    ToleranceKind,
    Verdict,
    check_answer,
    parse_number,
)
from .continuous_pages import (
    continuous_change_of_variables,
    continuous_deterministic,
    continuous_gaussian_score,
    continuous_vp_sde,
)
from .forward_pages import (
    closed_form_log_snr,
    closed_form_mean_std,
    closed_form_snr_crossing,
    forward_chain_alpha_bar,
    forward_chain_one_step,
    gaussian_density,
    gaussian_isotropic,
    your_image_correlation,
    your_image_pixel,
)
from .flow_page import flow_convert, flow_other_convention, flow_vp_target, flow_weight
from .latent_page import latent_compression, latent_cost, latent_scale
from .fewstep_page import fewstep_boundary, fewstep_calls, fewstep_straightness
from .reverse_pages import (
    bound_eps_weight,
    bound_kl_bits,
    bound_term_bits,
    playground_score,
    playground_two_points,
    posterior_coefs,
    posterior_mean,
    posterior_variance,
    reverse_ddim_step,
    reverse_ddpm_mean,
    reverse_x0_hat,
    steps_lambda_step,
    steps_timesteps,
)

__all__ = [
    "EXERCISES", "LN2", "SETTING_KEYS", "Builder", "Exercise", "Mistake", "Part", "Settings", "Status", "Tolerance",
    "ToleranceKind", "Verdict", "check_answer", "exercise_rng", "make_exercise", "parse_number",
]

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
    "flow": {"convert": flow_convert, "vp_target": flow_vp_target, "other_convention": flow_other_convention,
             "weight": flow_weight},
    "latent": {"compression": latent_compression, "scale": latent_scale, "cost": latent_cost},
    "fewstep": {"straightness": fewstep_straightness, "boundary": fewstep_boundary, "calls": fewstep_calls},
    "continuous": {"vp_sde": continuous_vp_sde, "gaussian_score": continuous_gaussian_score,
                   "deterministic": continuous_deterministic, "change_of_variables": continuous_change_of_variables},
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
