"""Check-yourself exercises: every answer against an independent float64 computation from the paper's formula
(not the core function the exercise calls), every common mistake detected with its own hint, the reading of
typed numbers (decimal comma or point, empty, not a number), and the block in AppTest: a right, a wrong and a
twice-wrong answer in both languages for every page id, on a tiny script and on every lesson page that exists;
progress that survives a page change and a language change."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from tests.conftest import LANGS, ROOT, assert_clean, run_page
from diffusion_core.exercises import (
    EXERCISES, SETTING_KEYS, Exercise, Tolerance, check_answer, make_exercise, parse_number,
)
from ui.exercises import format_number, input_key, mistake_hint, statement_fields
from ui.i18n import Translator, load_table

SEEDS = range(200)
PAIRS = [(page, kind) for page, kinds in EXERCISES.items() for kind in kinds]


# ----------------------------------------------------------------------------- independent references
def linear_abar(T: int) -> np.ndarray:
    """abar_0..abar_T of Ho et al. (2020), sec. 4, beta from 1e-4 to 0.02 scaled by 1000 / T (float64 numpy)."""
    betas = np.linspace(0.1 / T, 20.0 / T, T)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def cosine_abar(T: int) -> np.ndarray:
    """abar_t = f(t) / f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2), s = 0.008, with beta clipped at 0.999
    (Nichol & Dhariwal 2021, eq. 17)."""
    f = np.cos((np.arange(T + 1) / T + 0.008) / 1.008 * np.pi / 2) ** 2
    betas = np.minimum(1 - f[1:] / f[:-1], 0.999)
    return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def abar_of(kind: str, T: int) -> np.ndarray:
    return linear_abar(T) if kind == "linear" else cosine_abar(T)


def reference(ex: Exercise) -> list[float]:
    """The answers of ``ex`` from its shown numbers, with the papers' formulas written out here."""
    v = ex.values
    sqrt, log = math.sqrt, math.log
    key = (ex.page, ex.kind)
    if key == ("gaussian", "density"):
        return [math.exp(-((v["x"] - v["mu"]) ** 2) / (2 * v["sigma"] ** 2)) / sqrt(2 * math.pi * v["sigma"] ** 2)]
    if key == ("gaussian", "isotropic"):
        sq = (v["x1"] - v["mu1"]) ** 2 + (v["x2"] - v["mu2"]) ** 2
        return [(2 * math.pi * v["sigma"] ** 2) ** -1 * math.exp(-sq / (2 * v["sigma"] ** 2))]
    if key == ("forward_chain", "alpha_bar"):
        return [float(linear_abar(v["T"])[v["t"]])]
    if key == ("forward_chain", "one_step"):
        return [sqrt(1 - v["beta"]) * v["x_prev"] + sqrt(v["beta"]) * v["eps"]]
    if key == ("closed_form", "mean_std"):
        assert abs(v["abar"] - abar_of(v["schedule"], v["T"])[v["t"]]) < 1e-5
        return [sqrt(v["abar"]) * v["x0"], sqrt(1 - v["abar"])]
    if key == ("closed_form", "snr_crossing"):
        abar = abar_of(v["schedule"], v["T"])[1:]  # t = 0 has SNR = inf
        return [float(np.nonzero(abar / (1 - abar) < v["level"])[0][0] + 1)]
    if key == ("closed_form", "log_snr"):
        return [log(v["abar"] / (1 - v["abar"]))]
    if key == ("your_image", "pixel"):
        x0 = v["p"] / 127.5 - 1
        return [x0, sqrt(v["abar"]) * x0]
    if key == ("your_image", "correlation"):
        return [sqrt(v["abar"]) * v["sigma"] / sqrt(v["abar"] * v["sigma"] ** 2 + 1 - v["abar"])]
    if ex.page == "posterior" or key == ("bound", "term_bits"):
        abar = abar_of(v["schedule"], v["T"])
        t = v["t"]
        beta = 1 - abar[t] / abar[t - 1]
        if key == ("posterior", "coefficients"):  # Ho et al. (2020), eq. 7
            assert abs(v["beta"] - beta) < 1e-5 * max(beta, 1e-3) and abs(v["abar_prev"] - abar[t - 1]) < 1e-5
            return [sqrt(abar[t - 1]) * beta / (1 - abar[t]), sqrt(1 - beta) * (1 - abar[t - 1]) / (1 - abar[t])]
        if key == ("posterior", "mean"):
            return [v["c0"] * v["x0"] + v["ct"] * v["xt"]]
        beta_tilde = (1 - abar[t - 1]) / (1 - abar[t]) * beta
        if key == ("posterior", "variance"):
            return [beta_tilde]
        assert abs(v["var"] - beta_tilde) <= 1e-5 * beta_tilde
        return [(v["mu_tilde"] - v["mu_theta"]) ** 2 / (2 * v["var"]) / log(2)]  # eq. 8 with equal variances
    if key == ("bound", "kl_bits"):
        m1, v1, m2, v2 = v["m1"], v["v1"], v["m2"], v["v2"]
        return [0.5 * (log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1) / log(2)]
    if key == ("bound", "eps_weight"):  # eq. 12 with sigma_t^2 = beta_t
        beta, abar = v["beta"], v["abar"]
        return [beta**2 / (2 * beta * (1 - beta) * (1 - abar))]
    if key == ("reverse", "x0_hat"):
        return [(v["xt"] - sqrt(1 - v["abar"]) * v["eps"]) / sqrt(v["abar"])]
    if key == ("reverse", "ddpm_mean"):
        return [(v["xt"] - v["beta"] / sqrt(1 - v["abar"]) * v["eps"]) / sqrt(1 - v["beta"])]
    if key == ("reverse", "ddim_step"):
        assert v["t"] - v["t_prev"] in (1000 // v["steps"], 1000 // v["steps"] + 1)
        x0 = (v["xt"] - sqrt(1 - v["abar"]) * v["eps"]) / sqrt(v["abar"])
        return [sqrt(v["abar_prev"]) * x0 + sqrt(1 - v["abar_prev"]) * v["eps"]]
    if key == ("steps", "timesteps"):
        return [float((v["steps"] - v["k"] + 1) * v["T"] // v["steps"])]
    if key == ("steps", "lambda_step"):  # the same step in DDIM's own form (Song et al. 2021, eq. 12)
        a_t, a_p = v["alpha_t"], v["alpha_prev"]
        x0 = (v["xt"] - sqrt(1 - a_t**2) * v["eps"]) / a_t
        assert abs(v["lam_t"] - log(a_t / sqrt(1 - a_t**2))) < 1e-5
        return [a_p * x0 + sqrt(1 - a_p**2) * v["eps"]]
    if key == ("playground", "score"):
        return [-(v["xt"] - sqrt(v["abar"]) * v["x0"]) / (1 - v["abar"])]
    if key == ("playground", "two_points"):
        return [v["a"] * math.tanh(sqrt(v["abar"]) * v["a"] * v["xt"] / (1 - v["abar"]))]
    if key == ("flow", "convert"):  # rectified flow: x0 = (x_t - t eps) / (1 - t), u = d/dt[(1 - t) x0 + t eps]
        x0 = (v["xt"] - v["t"] * v["eps"]) / (1 - v["t"])
        return [v["eps"] - x0]
    if key == ("flow", "vp_target"):  # d/dt [cos(pi t / 2) x0 + sin(pi t / 2) eps]
        w = math.pi / 2
        return [-w * math.sin(w * v["t"]) * v["x0"] + w * math.cos(w * v["t"]) * v["eps"]]
    if key == ("flow", "other_convention"):  # Lipman et al.: x_s = s x0 + (1 - s) eps, dx/ds = x0 - eps
        return [1 - v["t"], v["x0"] - v["eps"]]
    if key == ("flow", "weight"):  # u_hat - u = (eps_hat - eps) / (1 - t)
        return [1 / (1 - v["t"]) ** 2]
    if key == ("latent", "compression"):  # numbers of the image over numbers of the latent
        return [v["side"] ** 2 * v["channels"] / (v["c"] * (v["side"] / v["f"]) ** 2)]
    if key == ("latent", "scale"):  # s = 1 / std = 1 / sqrt(variance)
        return [1 / sqrt(v["var"])]
    if key == ("latent", "cost"):  # two UNet passes per guided step (Ho & Salimans 2022), one decoder call per sample
        return [float(v["n"] * 2 * v["k"]), float(v["n"])]
    if key == ("fewstep", "straightness"):  # two constant-velocity halves: S = 4 ||m - (x_0 + x_1) / 2||^2
        return [4 * sum((v[f"m_{i}"] - (v[f"x0_{i}"] + v[f"x1_{i}"]) / 2) ** 2 for i in (1, 2))]
    if key == ("fewstep", "boundary"):  # Karras et al. (2022)'s unit-variance coefficients on x_t = (1 - t) x_0 + t z
        t, sd = v["t"], v["sigma_d"]
        r2 = (1 - t) ** 2 * sd**2 + t**2
        return [v["x"], (1 - t) * sd**2 / r2 * v["x"] + t * sd / sqrt(r2) * v["F"]]
    if key == ("fewstep", "calls"):  # Heun: 2 per step but 1 on the step to t = 0; guidance: 2 passes per call
        calls = 2 * v["k"] - 1 if v["sampler"] == "Heun" else v["k"]
        return [float(calls), float(2 * calls)]
    if key == ("continuous", "vp_sde"):  # Song et al. (2021), eq. 11: f = -beta / 2, g = sqrt(beta)
        beta = 0.1 + 19.9 * v["t"]
        return [-beta / 2, sqrt(beta)]
    if key == ("continuous", "gaussian_score"):
        assert abs(v["alpha"] - math.exp(-0.5 * (0.1 * v["t"] + 9.95 * v["t"] ** 2))) < 1e-4
        assert abs(v["alpha"] ** 2 + v["sigma"] ** 2 - 1) < 1e-3  # a VP path
        return [-(v["x"] - v["alpha"] * v["mu"]) / (v["alpha"] ** 2 * v["std"] ** 2 + v["sigma"] ** 2)]
    if key == ("continuous", "deterministic"):
        return [sqrt((0.1 + 19.9 * v["t"]) * v["h"]), 0.0]
    if key == ("continuous", "change_of_variables"):  # x_0 = x_1 e^-c, log N(x_0; 0, 1) - c
        x0 = v["x1"] * math.exp(-v["c"])
        return [-0.5 * x0**2 - 0.5 * log(2 * math.pi) - v["c"]]
    raise AssertionError(f"no reference for {key}")


def test_every_exercise_has_a_reference_and_every_page_two_exercises():
    assert set(EXERCISES) == {"gaussian", "forward_chain", "closed_form", "your_image", "posterior", "bound",
                              "reverse", "steps", "playground", "flow", "latent", "fewstep", "continuous"}
    assert all(2 <= len(kinds) <= 4 for kinds in EXERCISES.values())
    for page, kind in PAIRS:
        assert len(reference(make_exercise(page, kind, 0))) == len(make_exercise(page, kind, 0).parts)


@pytest.mark.parametrize("page,kind", PAIRS)
def test_answers_match_an_independent_computation(page, kind):
    """For 200 seeds: the core's answer equals the paper's formula on the shown numbers (schedule values are shown
    to 6 significant digits: the difference must stay under 5 % of the tolerance), and a student who computes it
    from the shown numbers is accepted, typed with a comma or a point."""
    for seed in SEEDS:
        ex = make_exercise(page, kind, seed)
        for i, (part, ref) in enumerate(zip(ex.parts, reference(ex))):
            tol = part.tolerance
            width = {"integer": 0.0, "decimals": 0.5 * 10.0 ** -tol.value, "relative": tol.value * abs(ref)}[tol.kind]
            assert abs(part.answer - ref) <= 0.05 * width, (seed, part, ref)
            typed = f"{ref:.6f}" if part.tolerance.kind != "integer" else str(int(ref))
            assert check_answer(ex, typed, i).right, (seed, part, typed)
            assert check_answer(ex, typed.replace(".", ","), i).right


@pytest.mark.parametrize("page,kind", PAIRS)
def test_common_mistakes_are_detected_with_their_own_hint(page, kind):
    """Each mistake kept in an instance is recognised when typed (6 significant digits) and has a hint in both
    languages; each mistake appears in at least a quarter of the instances (so it is not filtered away)."""
    trs = [Translator(lang) for lang in LANGS]
    seen: Counter[str] = Counter()
    for seed in SEEDS:
        ex = make_exercise(page, kind, seed)
        for i, part in enumerate(ex.parts):
            assert part.mistakes, (seed, part)
            for m in part.mistakes:
                seen[f"{part.key}.{m.key}"] += 1
                verdict = check_answer(ex, format_number(m.value), i)
                assert verdict.status == "mistake" and verdict.mistake == m.key, (seed, m, verdict)
                hints = [mistake_hint(tr, ex, verdict) for tr in trs]
                assert all(h and h != trs[0](ex.hint_key) for h in hints)
    assert seen and min(seen.values()) >= len(SEEDS) // 4, seen


def test_the_named_mistakes_of_the_issue_exist():
    """sqrt(abar) for abar, the variance for the std, t - 1 for t, beta for beta~."""
    def keys(page, kind):
        return {m.key for seed in range(20) for p in make_exercise(page, kind, seed).parts for m in p.mistakes}
    assert {"sqrt_abar_for_abar", "t_minus_one", "sum_for_product"} <= keys("forward_chain", "alpha_bar")
    assert {"variance_for_std", "abar_for_sqrt_abar"} <= keys("closed_form", "mean_std")
    assert "beta_for_beta_tilde" in keys("posterior", "variance")
    assert "last_above" in keys("closed_form", "snr_crossing")
    assert "nats_not_bits" in keys("bound", "term_bits")
    assert {"other_direction", "no_division"} <= keys("flow", "convert")
    assert {"our_sign", "same_time"} <= keys("flow", "other_convention")
    assert "not_squared" in keys("flow", "weight")


def test_a_wrong_answer_that_is_no_known_mistake_is_wrong():
    ex = make_exercise("closed_form", "mean_std", 3)
    v = check_answer(ex, format_number(ex.parts[0].answer + 0.3))
    assert v.status == "wrong" and v.mistake is None and v.counts and not v.right


# ----------------------------------------------------------------------------- reading numbers
@pytest.mark.parametrize("text,value", [
    ("0.25", 0.25), ("0,25", 0.25), (" -0,5 ", -0.5), ("\u22120,5", -0.5), ("+3", 3.0), ("1e-4", 1e-4),
    ("1,5e-3", 1.5e-3), ("10 000", 10000.0), ("10\u00a0000", 10000.0), (".5", 0.5), (",5", 0.5), ("260", 260.0),
])
def test_numbers_with_a_comma_or_a_point_are_read(text, value):
    assert parse_number(text) == (value, None)


@pytest.mark.parametrize("text,reason", [
    ("", "empty"), ("   ", "empty"), ("abc", "not_a_number"), ("0.2.5", "not_a_number"), ("1/4", "not_a_number"),
    ("1,234.5", "two_separators"), ("1.234,5", "two_separators"), ("1,2,3", "two_separators"),
    ("nan", "not_finite"), ("inf", "not_finite"), ("-Infinity", "not_finite"), ("1e999", "not_finite"),
])
def test_bad_input_is_named(text, reason):
    assert parse_number(text) == (None, reason)


def test_empty_and_non_numeric_input_get_a_friendly_message():
    ex = make_exercise("gaussian", "density", 0)
    for text, status, key in (("", "empty", "exercises.verdict.empty"),
                              ("zero", "invalid", "exercises.verdict.invalid_not_a_number"),
                              ("1,2.3", "invalid", "exercises.verdict.invalid_two_separators")):
        v = check_answer(ex, text)
        assert v.status == status and not v.counts and v.message_key == key
        for lang in LANGS:
            assert Translator(lang)(key, text=text)


def test_tolerances():
    dec3 = Tolerance("decimals", 3)
    assert dec3.accepts(0.1234, 0.1238) and dec3.accepts(0.123, 0.1234) and not dec3.accepts(0.122, 0.1234)
    rel = Tolerance("relative", 0.01)
    assert rel.accepts(1.009, 1.0) and not rel.accepts(1.011, 1.0)
    whole = Tolerance("integer")
    assert whole.accepts(260.0, 260) and not whole.accepts(260.4, 260) and not whole.accepts(261, 260)


# ----------------------------------------------------------------------------- the draws
def test_draws_are_deterministic_and_differ_between_seeds_and_instances():
    for page, kind in PAIRS:
        a = make_exercise(page, kind, 7, 2)
        assert a == make_exercise(page, kind, 7, 2)
        others = {make_exercise(page, kind, s, 0).fields for s in range(20)}
        others |= {make_exercise(page, kind, 7, i).fields for i in range(1, 10)}
        assert len(others) >= 15, (page, kind)


def test_the_page_settings_reach_the_exercise():
    """closed_form reads the page's T; your_image the page's schedule."""
    for T in (25, 100, 4000):
        ex = make_exercise("closed_form", "snr_crossing", 1, 0, {"closed_form_T": T})
        assert ex.values["T"] == T and 1 <= ex.parts[0].answer <= T
    assert make_exercise("closed_form", "mean_std", 1, 0, {"closed_form_T": "nonsense"}).values["T"] == 1000
    for kind in ("linear", "cosine"):
        assert make_exercise("your_image", "correlation", 1, 0, {"your_image_schedule": kind}).values["schedule"] == kind
    assert set(SETTING_KEYS) <= set(EXERCISES)
    with pytest.raises(ValueError):
        make_exercise("closed_form", "nope", 0)


def test_both_languages_have_the_same_exercise_keys_and_every_exercise_its_words():
    en = {k for k in load_table("en") if k.startswith("exercises.")}
    vi = {k for k in load_table("vi") if k.startswith("exercises.")}
    assert en == vi
    for page, kind in PAIRS:
        ex = make_exercise(page, kind, 0)
        for key in (ex.title_key, ex.statement_key, ex.hint_key, ex.solution_key,
                    *(ex.part_key(i) for i in range(len(ex.parts)))):
            assert key in en, key


def test_shown_numbers_use_a_decimal_point_and_no_thousands_separator():
    assert format_number(0.25) == "0.25" and format_number(-1 / 3) == "-0.333333"
    assert format_number(10000) == "10000" and format_number(1e-5) == "0.00001" and format_number(2.0) == "2"
    for lang in LANGS:
        tr = Translator(lang)
        for page, kind in PAIRS:
            ex = make_exercise(page, kind, 5)
            text = tr(ex.statement_key, **statement_fields(tr, ex)) + tr(ex.solution_key, **statement_fields(tr, ex))
            assert not any(f"{{{name}}}" in text.replace(r"\text{", "") for name in ex.values)  # fields filled
            assert "e-0" not in text and "nan" not in text.lower()


# ----------------------------------------------------------------------------- the block in AppTest
BLOCK_SCRIPT = """
import streamlit as st
from ui.exercises import check_yourself
from ui.i18n import Translator
check_yourself(Translator(st.session_state.get("lang", "en")), st.session_state["page_id"])
"""
HEADINGS = {"vi": "Tự kiểm tra", "en": "Check yourself"}


def _settings(at, page):
    return {k: at.session_state[k] for k in SETTING_KEYS.get(page, ()) if k in at.session_state}


def current(at, page: str, kind: str) -> tuple[Exercise, object]:
    slot = at.session_state["_exercise_slots"][(page, kind)]
    return make_exercise(page, kind, slot.seed, slot.instance, _settings(at, page)), slot


def answer(at, page: str, kind: str, texts: list[str]):
    """Type ``texts`` into the exercise's boxes and press Check."""
    ex, slot = current(at, page, kind)
    for i, text in enumerate(texts):
        at.text_input(key=input_key(page, kind, slot, i)).input(text)
    at.button(key=f"ex_check_{page}_{kind}_{slot.version}").click()
    return at.run()


def right_texts(ex: Exercise) -> list[str]:
    return [format_number(p.answer, 8).replace(".", ",") for p in ex.parts]  # a decimal comma, as in Vietnam


def wrong_texts(ex: Exercise) -> list[str]:
    """Far from the answer and from every mistake."""
    out = []
    for p in ex.parts:
        v = p.answer + 1000.0 if p.tolerance.kind != "integer" else p.answer + 777
        out.append(format_number(v))
    return out


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def check_right_wrong_twice(at, page: str, lang: str) -> None:
    """Exercise 1 right; exercise 2 wrong (hint, no solution), then wrong again (the worked solution)."""
    tr = Translator(lang)
    kinds = list(EXERCISES[page])
    assert HEADINGS[lang] in [h.value for h in at.header]
    ex, _ = current(at, page, kinds[0])
    at = answer(at, page, kinds[0], right_texts(ex))
    assert_clean(at)
    expected = tr("exercises.verdict.right", answer=format_number(ex.parts[-1].answer, 8))
    assert expected in texts(at.success), texts(at.success)

    ex2, _ = current(at, page, kinds[1])
    at = answer(at, page, kinds[1], wrong_texts(ex2))
    assert_clean(at)
    assert tr(ex2.hint_key) in texts(at.warning)
    assert tr("exercises.solution_title") not in texts(at.markdown)
    at = answer(at, page, kinds[1], wrong_texts(ex2))
    assert_clean(at)
    assert tr("exercises.solution_after_tries") in texts(at.caption)
    assert tr(ex2.solution_key, **__import__("ui.exercises", fromlist=["_fields"]).statement_fields(tr, ex2)) in texts(at.markdown)
    p = at.session_state["_exercise_progress"][page]
    assert p.tried == {kinds[0], kinds[1]} and p.solved == {kinds[0]}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page", list(EXERCISES))
def test_block_right_wrong_and_twice_wrong_for_every_page_id(page, lang):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(BLOCK_SCRIPT, default_timeout=30)
    at.session_state["lang"], at.session_state["page_id"], at.session_state["seed"] = lang, page, 11
    at.run()
    assert_clean(at)
    check_right_wrong_twice(at, page, lang)


def test_block_mistake_empty_new_numbers_and_solution_button():
    from streamlit.testing.v1 import AppTest

    tr = Translator("vi")
    at = AppTest.from_string(BLOCK_SCRIPT, default_timeout=30)
    at.session_state["lang"], at.session_state["page_id"] = "vi", "closed_form"
    at.run()
    ex, _ = current(at, "closed_form", "mean_std")
    at = answer(at, "closed_form", "mean_std", ["", ""])
    assert tr("exercises.verdict.empty") in texts(at.info)
    assert "_exercise_progress" not in at.session_state  # an empty box is not a try: nothing recorded
    mean, std = ex.parts
    variance = next(m for m in std.mistakes if m.key == "variance_for_std")
    at = answer(at, "closed_form", "mean_std", [format_number(mean.answer), format_number(variance.value)])
    assert tr("exercises.mistake.variance_for_std") in texts(at.warning)
    assert tr("exercises.verdict.right", answer=format_number(mean.answer, 8)) in texts(at.success)
    at = answer(at, "closed_form", "mean_std", ["abc", format_number(std.answer)])
    assert tr("exercises.verdict.invalid_not_a_number", text="abc") in texts(at.info)

    before = current(at, "closed_form", "log_snr")[0]
    at.button(key="ex_new_closed_form_log_snr").click().run()
    after, slot = current(at, "closed_form", "log_snr")
    assert slot.instance == 1 and after.fields != before.fields
    assert tr(after.statement_key, **__import__("ui.exercises", fromlist=["_fields"]).statement_fields(tr, after)) in texts(at.markdown)
    at.button(key="ex_solution_closed_form_log_snr").click().run()
    assert tr("exercises.solution_title") in texts(at.markdown)
    assert_clean(at)


# ----------------------------------------------------------------------------- the block on the real pages
PAGE_FILES = {
    "gaussian": "pages/1_Gaussian.py", "forward_chain": "pages/2_Forward_chain.py",
    "closed_form": "pages/3_Closed_form.py", "your_image": "pages/4_Your_image.py",
    "posterior": "pages/5_Posterior.py", "bound": "pages/6_Bound.py", "reverse": "pages/7_Reverse_process.py",
    "steps": "pages/8_How_many_steps.py", "playground": "pages/9_Playground_2D.py",
    "flow": "pages/10_Flow_matching.py",
    "latent": "pages/13_Latent_diffusion.py",
    "fewstep": "pages/12_Few_steps.py",
    "continuous": "pages/11_Continuous_time.py",
}
EXISTING = [(pid, path) for pid, path in PAGE_FILES.items()
            if (ROOT / path).is_file() and "check_yourself(tr" in (ROOT / path).read_text()]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page,path", EXISTING)
def test_block_on_the_page(page, path, lang):
    extra = {"your_image_source": "sample"} if page == "your_image" else {}
    at = run_page(path, lang, **extra)
    assert_clean(at)
    check_right_wrong_twice(at, page, lang)
    progress = texts(at.sidebar.caption)
    assert Translator(lang)("exercises.progress_line", page=Translator(lang)(f"nav.{page}"), solved=1, tried=2) in progress


def test_progress_survives_a_page_change_and_a_language_change():
    at = run_page("pages/1_Gaussian.py", "vi")
    ex, _ = current(at, "gaussian", "density")
    at = answer(at, "gaussian", "density", right_texts(ex))
    vi, en = Translator("vi"), Translator("en")
    line_vi = vi("exercises.progress_line", page=vi("nav.gaussian"), solved=1, tried=1)
    assert line_vi in texts(at.sidebar.caption)
    at.switch_page("pages/3_Closed_form.py").run()
    assert_clean(at)
    assert line_vi in texts(at.sidebar.caption)
    at.sidebar.radio(key="_widget_lang").set_value("en").run()
    assert en("exercises.progress_line", page=en("nav.gaussian"), solved=1, tried=1) in texts(at.sidebar.caption)
    at.switch_page("pages/1_Gaussian.py").run()
    assert at.session_state["_exercise_slots"][("gaussian", "density")].solved  # the box still shows it solved
    assert en("exercises.verdict.right", answer=format_number(ex.parts[0].answer, 8)) in texts(at.success)


# ----------------------------------------------------------------------------- in a real browser
@pytest.mark.parametrize("lang,width", [("vi", 390), ("en", 1400)])  # a phone in Vietnamese, a desktop in English
def test_block_in_browser(browser, app_url, lang, width):
    """On the closed-form page: a right answer typed with a decimal comma, a wrong one with its hint, and the
    sidebar's progress line; screenshots of the boxes (desktop and phone) to look at."""
    from tests.conftest import assert_no_exception, open_page, wait_idle

    tr = Translator(lang)
    context = browser.new_context(viewport={"width": width, "height": 1000})
    pg = context.new_page()
    try:
        open_page(pg, app_url, "Closed_form", lang)
        ex = make_exercise("closed_form", "mean_std", 0, 0, {"closed_form_T": 1000})
        for i, text in enumerate(right_texts(ex)):
            pg.locator(f".st-key-_ex_closed_form_mean_std_0_{i} input").fill(text)
        pg.locator(".st-key-ex_check_closed_form_mean_std_0 button").click()
        box = pg.locator(".st-key-ex_box_closed_form_mean_std")
        box.get_by_text(tr("exercises.verdict.right", answer=format_number(ex.parts[0].answer, 8))).wait_for(timeout=30000)
        wait_idle(pg)
        ex3 = make_exercise("closed_form", "log_snr", 0, 0, {"closed_form_T": 1000})
        pg.locator(".st-key-_ex_closed_form_log_snr_0_0 input").fill(format_number(-ex3.parts[0].answer))
        pg.locator(".st-key-ex_check_closed_form_log_snr_0 button").click()
        box3 = pg.locator(".st-key-ex_box_closed_form_log_snr")
        box3.get_by_text(tr("exercises.verdict.mistake", value=format_number(-ex3.parts[0].answer)), exact=False).wait_for(timeout=30000)
        pg.locator(".st-key-ex_solution_closed_form_log_snr button").click()
        box3.get_by_text(tr("exercises.solution_title")).wait_for(timeout=30000)
        wait_idle(pg)
        assert_no_exception(pg)
        assert box.locator(".katex").count() > 0  # the numbers are typeset
        out = ROOT / "tests" / "screenshots"
        out.mkdir(exist_ok=True)
        box.screenshot(path=str(out / f"exercises_mean_std_{lang}_{width}.png"))
        box3.screenshot(path=str(out / f"exercises_log_snr_{lang}_{width}.png"))
        if width > 600:
            line = tr("exercises.progress_line", page=tr("nav.closed_form"), solved=1, tried=2)
            pg.locator('[data-testid="stSidebar"]').get_by_text(line).wait_for(timeout=30000)
            pg.locator('[data-testid="stSidebar"]').screenshot(path=str(out / f"exercises_sidebar_{lang}.png"))
    finally:
        context.close()
