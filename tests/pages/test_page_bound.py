"""Page 6, the variational bound: AppTest in both languages at the defaults and at t = 1, 2, T, with a
wrong label, few and many strata and a digit sent from page 4; the numbers on screen are checked against
the core (eq. 12's two sides agree, the breakdown adds up); then Chromium on a desktop and a phone."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import LANGS, assert_clean, assert_no_exception, assert_translations_match, open_page, run_page, screenshot
from diffusion_core.data.samples import load_sample_image
from ui.i18n import Translator

PAGE = "pages/6_Bound.py"
NUMBER = r"-?\d+(?:\.\d+)?(?: \\cdot 10\^\{-?\d+\})?"


def latex_value(text: str) -> float:
    """'1.23' or '4.56 \\cdot 10^{-7}' -> float."""
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?: \\cdot 10\^\{(-?\d+)\})?", text.strip())
    assert m, text
    return float(m.group(1)) * (10 ** int(m.group(2)) if m.group(2) else 1.0)


def all_latex(at) -> list[str]:
    """The bodies of every st.latex element."""
    return [e.value.strip("$").strip() for e in at.latex]


def metric_values(at) -> list[tuple[float, float]]:
    vals = []
    for m in at.metric:
        nums = re.findall(r"\d+\.\d+", m.value)
        vals.append(tuple(float(n) for n in nums))
    return vals


def check_eq12(at) -> int:
    """Each eq. 12 check on screen, 'w \\times sse + 784 \\times c = lhs ... kl nats' (nat in Vietnamese): both sides agree
    with each other and with the KL computed from the two Gaussians."""
    checked = 0
    pattern = rf"({NUMBER}) \\times ({NUMBER})\\\\ &\+ 784 \\times ({NUMBER}) = ({NUMBER}).*?({NUMBER})\\ \\text\{{nats?\}}"  # bound.nat_unit: "nats" in English, "nat" in Vietnamese
    for body in all_latex(at):
        m = re.search(pattern, body)
        if not m:
            continue
        w, sse, c, lhs, kl = (latex_value(g) for g in m.groups())
        assert lhs == pytest.approx(w * sse + 784 * c, rel=2e-3, abs=1e-3)
        assert lhs == pytest.approx(kl, rel=1e-3, abs=1e-3)
        checked += 1
    return checked


def check_breakdown(at) -> int:
    """'L_T + sum + L_0 = total \\pm se' on screen adds up (to the rounding of 4 significant digits)."""
    checked = 0
    for body in all_latex(at):
        parts = re.findall(rf"\\underbrace\{{({NUMBER})\}}", body)
        total = re.search(rf"&= ({NUMBER}) \\pm ({NUMBER})", body)
        if len(parts) != 3 or not total:
            continue
        prior, middle, dec = (latex_value(p) for p in parts)
        assert prior + middle + dec == pytest.approx(latex_value(total.group(1)), abs=2e-3)
        assert latex_value(total.group(2)) > 0
        checked += 1
    return checked


@pytest.mark.parametrize("lang", LANGS)
def test_page_at_defaults_and_at_t_1_2_T(lang):
    tr = Translator(lang)
    at = run_page(PAGE, lang)
    assert_clean(at)
    assert at.title[0].value == tr("bound.title")
    (beta, beta_se), (tilde, tilde_se), (uniform,) = metric_values(at)
    assert 0.3 < tilde < 4 and 0.3 < beta < 4 and uniform == 8.0
    assert beta > tilde  # sigma_t^2 = beta_t costs more with this network, on every digit we tried
    assert 0 < beta_se < 0.5 and 0 < tilde_se < 0.5
    assert check_breakdown(at) == 2
    assert check_eq12(at) == 2  # at the default t = 100, both variances
    assert len(at.table) == 1 and len(at.table[0].value) == 2  # conditional and unconditional
    T = 1000
    for t in (1, 2, T):
        at.slider(key="bound_t").set_value(t).run()
        assert_clean(at)
        if t == 1:
            assert check_eq12(at) == 0
            assert any("L_0 = -" in m.value for m in at.markdown)
        else:
            assert check_eq12(at) == 2
        assert any(f"t = {t}" in c.value for c in at.caption) or t == 1


def test_page_with_few_and_many_strata_and_a_wrong_label():
    at = run_page(PAGE, "en")
    at.select_slider(key="bound_strata").set_value(10).run()
    assert_clean(at)
    assert check_breakdown(at) == 2
    at.selectbox(key="bound_source").set_value("digit_3").run()
    at.selectbox(key="bound_label_digit_3").set_value(8).run()
    assert_clean(at)
    assert any("the label 8 to a 3" in c.value for c in at.caption)
    at.select_slider(key="bound_strata").set_value(500).run()
    assert_clean(at)
    assert "1132 network calls" in " ".join(c.value for c in at.caption)  # (2 draws at t = 1 + 2 x 282 log-spaced strata) x 2 networks
    assert check_breakdown(at) == 2


@pytest.mark.parametrize("lang", LANGS)
def test_page_with_the_digit_sent_from_page_4(lang):
    tr = Translator(lang)
    digit = np.rot90(load_sample_image("digit_7")).copy()  # any 28 x 28 uint8 picture
    at = run_page(PAGE, lang, sdedit_digit=digit, sdedit_source="upload")
    assert_clean(at)
    assert at.selectbox(key="bound_source").value == "upload"
    assert tr("bound.upload_label_hint") in [c.value for c in at.caption]
    assert check_breakdown(at) == 2


# ------------------------------------------------------------------ the browser
@pytest.mark.parametrize("lang", LANGS)
def test_bound_page_in_the_browser(browser, app_url, lang):
    """Desktop and phone: no exception, the formulas typeset, the charts drawn, the algorithm links resolve."""
    for name, viewport in (("desktop", {"width": 1400, "height": 1000}), ("phone", {"width": 390, "height": 844})):
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        pg = context.new_page()
        open_page(pg, app_url, "Bound", lang)
        assert_no_exception(pg)
        assert pg.locator(".katex-error").count() == 0
        assert pg.locator(".katex").count() > 20
        # Plotly draws the charts one after the other after the script has finished: wait for all four.
        pg.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=60000)
        for anchor in ("bound-terms", "decoder", "where-bits", "l-simple", "eps-pictures", "algorithms"):
            assert pg.locator(f"#{anchor}").count() == 1, anchor
        height = pg.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        pg.set_viewport_size({"width": viewport["width"], "height": min(max(1000, int(height) + 40), 16000)})
        pg.wait_for_timeout(1000)
        screenshot(pg, f"bound_{name}_{lang}")
        context.close()


def test_translations_match():
    """Same keys, the same math ($...$) and the same fields in both languages; no comma as a thousands separator."""
    assert_translations_match("bound")




def test_the_t_charts_follow_in_the_browser_with_this_digits_point():
    """Issue 24: the weight chart is drawn once and its marker follows t (held at t = 2 for t = 1, where eq. 12's
    weight starts); the MSE chart is applied in place with this digit's point at t, the value the page states."""
    at = run_page(PAGE, "en")
    for t in (1, 500):
        at.slider(key="bound_t").set_value(t).run()
        assert_clean(at)
        weight, mse = (json.loads(c.proto.json) for c in at.get("bidi_component"))
        assert (weight["slider"], weight["value"], weight["charts"]) == ("bound_t", t, ["bound_weight_chart"])
        assert weight["xs"][0] == 2 and weight["xs"][499] == 500 and not weight["figures"]
        fig = mse["figures"]["bound_mse_chart"]
        point = fig["data"][-1]
        assert point["x"] == [t] and mse["charts"] == ["bound_mse_chart"] and fig["layout"]["shapes"][0]["x0"] == t
        text = "\n".join(m.value for m in [*at.markdown, *at.caption])
        (stated,) = re.findall(r"(?:error here: |squared error of )(\d+\.\d{4})", text)  # bound.check_decoder / check_eq12_note
        assert float(stated) == pytest.approx(point["y"][0], abs=6e-5)
