"""Pages 1-3 (the Gaussian, the forward chain, the closed form): AppTest per page and language at the
defaults and at extreme settings, the translation tables, and the pages in a real browser."""

from __future__ import annotations

import base64
import json
import math
import re
import tomllib

import numpy as np
import pytest

from tests.conftest import LANGS, ROOT, assert_clean, assert_no_exception, open_page, run_page, screenshot
from tests.pages.followed import mixed_header
from ui.i18n import Translator

GAUSSIAN, CHAIN, CLOSED = "pages/1_Gaussian.py", "pages/2_Forward_chain.py", "pages/3_Closed_form.py"
TITLES = {
    GAUSSIAN: {"en": "The Gaussian density", "vi": "Mật độ phân phối chuẩn"},
    CHAIN: {"en": "The forward chain", "vi": "Chuỗi Markov thuận"},
    CLOSED: {"en": "The closed form: jump straight to any step", "vi": "Công thức dạng đóng: nhảy thẳng đến bước bất kỳ"},
}
SECTIONS = ("gaussian", "forward_chain", "closed_form", "samples", "schedule")


# ----------------------------------------------------------------------------- helpers
def _decode(values) -> np.ndarray:
    """A plotly data array from the figure JSON: a list, or {'dtype', 'bdata'} (base64)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).astype(float)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def assert_figures_finite(at) -> None:
    """Every x and y of every trace is a finite number: no inf or nan reaches a chart."""
    for fig in figures(at):
        for trace in fig["data"]:
            for axis in ("x", "y"):
                if axis in trace:
                    values = _decode(trace[axis])
                    assert values.size and np.all(np.isfinite(values)), (trace.get("name"), axis)


def axis_titles(at) -> list[str]:
    out = []
    for fig in figures(at):
        for axis in ("xaxis", "yaxis"):
            title = fig["layout"].get(axis, {}).get("title", {})
            out.append(title.get("text", "") if isinstance(title, dict) else title)
    return out


def table_column(at, index: int, column: int) -> list[str]:
    return [str(v) for v in at.table[index].value.iloc[:, column].tolist()]


def image_captions(at) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


# ----------------------------------------------------------------------------- translations
@pytest.mark.parametrize("section", SECTIONS)
def test_both_languages_have_the_same_keys(section):
    tables = {}
    for lang in LANGS:
        with (ROOT / "ui" / "locales" / lang / f"{section}.toml").open("rb") as f:
            tables[lang] = tomllib.load(f)
    assert set(tables["vi"]) == set(tables["en"])
    for key in tables["en"]:
        en, vi = tables["en"][key], tables["vi"][key]
        # The same {fields} in both, so str.format never fails in one language only.
        assert sorted(set(_fields(en))) == sorted(set(_fields(vi))), key


def _fields(text: str) -> list[str]:
    import string

    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


# ----------------------------------------------------------------------------- page 1
@pytest.mark.parametrize("lang", LANGS)
def test_gaussian_page_defaults(lang):
    at = run_page(GAUSSIAN, lang)
    assert_clean(at)
    assert at.title[0].value == TITLES[GAUSSIAN][lang]
    assert any(r"\mathcal{N}(x \mid \mu, \sigma^2)" in x.value for x in at.latex)
    area, mean_z, var_z = table_column(at, 0, 2)[0], *table_column(at, 0, 4)[1:]
    assert float(area) == pytest.approx(1.0, abs=1e-6)  # the trapezoid integral
    assert abs(float(mean_z)) < 4 and abs(float(var_z)) < 4  # sample moments within a few SEs (seed 0)
    assert all(axis_titles(at)), "every chart axis has a title"
    assert_figures_finite(at)


@pytest.mark.parametrize("lang, state", [
    ("en", dict(gaussian_sigma=0.05, gaussian_mu=-3.0, gaussian_n=100_000, gaussian_sigma_2d=0.05)),
    ("vi", dict(gaussian_sigma=5.0, gaussian_mu=3.0, gaussian_n=10, gaussian_sigma_2d=5.0, gaussian_show_product=True)),
])
def test_gaussian_page_extremes(lang, state):
    at = run_page(GAUSSIAN, lang, **state)
    assert_clean(at)
    assert float(table_column(at, 0, 2)[0]) == pytest.approx(1.0, abs=1e-6)
    formula = table_column(at, 0, 1)
    assert formula[1] == f"μ = {state['gaussian_mu']:.4g}" and formula[2] == f"σ² = {state['gaussian_sigma'] ** 2:.4g}"
    assert_figures_finite(at)
    if state.get("gaussian_show_product"):
        # The joint density and the product of 1-D densities agree to rounding error on the grid.
        text = " ".join(m.value for m in at.markdown)
        found = re.findall(r"(\d\.\de[-+]\d\d) \(", text)
        assert found and float(found[0]) < 1e-12, found


def test_gaussian_sample_moments_follow_the_sliders():
    """With n = 100,000 the table's sample mean and variance sit on mu and sigma^2 within 5 SEs."""
    at = run_page(GAUSSIAN, "en", gaussian_mu=1.5, gaussian_sigma=2.0, gaussian_n=100_000)
    assert_clean(at)
    sample, se = table_column(at, 0, 2), table_column(at, 0, 3)
    assert abs(float(sample[1]) - 1.5) <= 5 * 2.0 / math.sqrt(100_000)
    assert abs(float(sample[2]) - 4.0) <= 5 * float(se[2])


# ----------------------------------------------------------------------------- page 2
@pytest.mark.parametrize("lang", LANGS)
def test_forward_chain_page_defaults_and_step_buttons(lang):
    at = run_page(CHAIN, lang)
    assert_clean(at)
    assert at.title[0].value == TITLES[CHAIN][lang]
    assert at.slider(key="forward_chain_t").value == 0
    assert at.info, "t = 0 explains that x_0 is the clean picture"
    at.button(key="forward_chain_step_1").click().run()
    assert at.slider(key="forward_chain_t").value == 1
    at.button(key="forward_chain_step_10").click().run()
    assert at.slider(key="forward_chain_t").value == 11
    assert_clean(at)
    assert any(r"\beta_{11}" in x.value for x in at.latex)
    assert "t = 11" in image_captions(at)[0] or "t = 11" in " ".join(image_captions(at))
    at.button(key="forward_chain_reset").click().run()
    assert at.slider(key="forward_chain_t").value == 0
    assert all(axis_titles(at))
    assert_figures_finite(at)


@pytest.mark.parametrize("lang, image, kind, T", [
    ("en", "digit_3", "linear", 25), ("vi", "chelsea", "cosine", 25),
    ("en", "astronaut", "cosine", 4000), ("vi", "digit_0", "linear", 4000),
])
def test_forward_chain_page_extremes(lang, image, kind, T):
    at = run_page(CHAIN, lang, forward_chain_image=image, forward_chain_kind=kind, forward_chain_T=T, forward_chain_t=T)
    assert_clean(at)
    assert at.slider(key="forward_chain_t").value == T
    assert at.button(key="forward_chain_step_1").disabled
    # At t = T the 2000 chains match N(sqrt(abar_T) x0, 1 - abar_T) within a few standard errors.
    z = [float(v) for v in table_column(at, 0, 4)]
    assert all(abs(v) < 4 for v in z), z
    assert float(table_column(at, 0, 1)[1].split("=")[1]) == pytest.approx(1.0, abs=1e-3)  # 1 - abar_T ~ 1
    assert_figures_finite(at)
    # t = 1: the marginal's variance is beta_1 (tiny), still a clean check
    at.slider(key="forward_chain_t").set_value(1).run()
    assert_clean(at)
    assert all(abs(float(v)) < 4 for v in table_column(at, 0, 4))
    assert_figures_finite(at)


def test_forward_chain_keeps_t_inside_a_smaller_T():
    at = run_page(CHAIN, "en", forward_chain_T=1000, forward_chain_t=700)
    assert_clean(at)
    at.select_slider(key="forward_chain_T").set_value(50).run()
    assert_clean(at)
    assert at.slider(key="forward_chain_t").value == 50
    at.selectbox(key="forward_chain_image").set_value("coffee").run()  # 64x96 photo after a 28x28 digit
    assert_clean(at)
    at.select_slider(key="forward_chain_T").set_value(1000).run()
    assert_clean(at)


# ----------------------------------------------------------------------------- page 3
@pytest.mark.parametrize("lang", LANGS)
def test_closed_form_page_defaults(lang):
    at = run_page(CLOSED, lang)
    assert_clean(at)
    assert at.title[0].value == TITLES[CLOSED][lang]
    t = at.slider(key="closed_form_t").value
    assert t == 250
    # The numbers at t: linear sqrt(abar_250) from an independent product of (1 - beta_s).
    betas = np.linspace(1e-4, 0.02, 1000)
    sqrt_abar = math.sqrt(np.prod(1 - betas[:t]))
    assert float(table_column(at, 0, 1)[1]) == pytest.approx(sqrt_abar, rel=1e-3)
    mix = mixed_header(at, "closed_form_t")  # the pictures' weights, drawn in the browser (ui/mix.py)
    assert mix["weights"][0][t - 1, 0] == pytest.approx(sqrt_abar, rel=1e-9)  # position t - 1 is t (min 1)
    assert mix["weights"][0][t - 1, 1] == pytest.approx(math.sqrt(1 - sqrt_abar**2), rel=1e-9)
    assert mix["captions"][0] == Translator(lang)("closed_form.mix_caption", t="{v}", t_sub="{v_sub}", a="{w0}", b="{w1}",
                                                  schedule=Translator(lang)("closed_form.in_linear"))
    assert len(image_captions(at)) == 1  # the strip (x_t under each schedule is drawn in the browser: ui/mix.py)
    z = [float(v) for v in table_column(at, 1, 4)]
    assert all(abs(v) < 4 for v in z), z
    assert all(axis_titles(at))
    assert_figures_finite(at)


@pytest.mark.parametrize("lang, T, t, image", [("en", 25, 1, "digit_9"), ("vi", 25, 25, "coffee"),
                                               ("en", 4000, 4000, "astronaut"), ("vi", 4000, 1, "digit_1")])
def test_closed_form_page_extremes(lang, T, t, image):
    at = run_page(CLOSED, lang, closed_form_T=T, closed_form_t=t, closed_form_image=image)
    assert_clean(at)
    assert at.slider(key="closed_form_t").value == t
    numbers = [[float(v) for v in table_column(at, 0, col)] for col in (1, 2)]
    assert all(math.isfinite(v) for col in numbers for v in col), numbers  # log SNR included
    assert_figures_finite(at)
    z = [float(v) for v in table_column(at, 1, 4)]
    assert all(abs(v) < 4 for v in z), z


# ----------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def shared_page(browser):
    """One browser context for the six page loads below: its HTTP and code caches keep plotly.js and
    KaTeX compiled between loads, which saves most of a load's time on a busy machine."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.mark.parametrize("path", ["Gaussian", "Forward_chain", "Closed_form"])
@pytest.mark.parametrize("lang", LANGS)
def test_forward_pages_in_browser(shared_page, app_url, path, lang):
    page = shared_page
    open_page(page, app_url, path, lang)
    assert_no_exception(page)
    # KaTeX and plotly render after the script has finished: wait for them (a busy machine is slow).
    page.wait_for_selector(".katex", timeout=30_000)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    page.wait_for_timeout(500)
    assert page.locator(".katex").count() > 0
    assert page.locator('[data-testid="stAlert"] >> text=/Error|Lỗi/').count() == 0
    screenshot(page, f"{path.lower()}_{lang}")
