"""Page 5, the posterior: AppTest in both languages at the defaults and the extremes (t = 1, 2, T, an uploaded
digit, a corner pixel, both variances), the numbers on screen against an independent numpy computation with the
shipped network, and the page in Chromium (desktop and phone screenshots, a t-slider step)."""

from __future__ import annotations

import base64
import json
import math
import re
import time

import numpy as np
import pytest
import torch

from tests.conftest import LANGS, ROOT, assert_clean, assert_no_exception, assert_translations_match, open_page, run_page, screenshot
from diffusion_core.data.samples import load_sample_image
from diffusion_core.models.weights import load_denoiser
from ui.i18n import Translator

PAGE = "pages/5_Posterior.py"
TABLES = {lang: Translator(lang) for lang in LANGS}
T = json.loads((ROOT / "pretrained" / "denoiser.json").read_text())["T"]


@pytest.fixture(scope="module")
def model():
    return load_denoiser("cpu")


def reference(model, digit: np.ndarray, label: int, t: int, seed: int, row: int, col: int, variance: str) -> dict:
    """The page's numbers written out from the paper in numpy (Ho et al. 2020, eqs. 4, 7, 15, sec. 3.2), with one
    network call; only the noise draw (the first torch.randn of the seed) is shared with the page."""
    abar = model.schedule.alpha_bars.numpy()
    beta = model.schedule.betas.numpy()
    x0 = digit.astype(np.float64) / 127.5 - 1
    eps = torch.randn((1, 1, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()[0, 0]
    x_t = math.sqrt(abar[t]) * x0 + math.sqrt(1 - abar[t]) * eps
    with torch.inference_mode():
        eps_hat = model(torch.from_numpy(x_t).float()[None, None], torch.tensor([t]), torch.tensor([label])).double().numpy()[0, 0]
    x0_hat = (x_t - math.sqrt(1 - abar[t]) * eps_hat) / math.sqrt(abar[t])

    def mu(x_start):
        return (math.sqrt(abar[t - 1]) * beta[t] * x_start + math.sqrt(1 - beta[t]) * (1 - abar[t - 1]) * x_t) / (1 - abar[t])

    var_q = (1 - abar[t - 1]) / (1 - abar[t]) * beta[t]
    tilde = lambda s: (1 - abar[s - 1]) / (1 - abar[s]) * beta[s]  # noqa: E731
    var_p = beta[t] if variance == "beta" else tilde(max(t, 2))
    out = {"mu_q": mu(x0), "mu_p": mu(x0_hat), "var_q": var_q, "var_p": var_p}
    if t >= 2:
        kl = 0.5 * (np.log(var_p / var_q) + (var_q + (out["mu_q"] - out["mu_p"]) ** 2) / var_p - 1)
        out |= {"kl_pixel": kl[row, col], "kl_bpd": kl.sum() / (784 * math.log(2))}
    return out


def unpacked(values) -> list:
    """A plotly array as the browser reads it: a list, or numpy's bytes packed as {"dtype", "bdata"} (base64)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"])).tolist()
    return list(values)


def metrics(at) -> list[float]:
    return [float(m.value) for m in at.metric]


def page_at(lang="en", **state):
    at = run_page(PAGE, lang, **state)
    assert_clean(at)
    return at


def set_and_run(at, **values):
    for key, value in values.items():
        if key == "posterior_variance":
            at.radio(key=key).set_value(value)
        elif key == "posterior_digit":
            at.selectbox(key=key).set_value(value)
        else:
            at.slider(key=key).set_value(value)
    at.run()
    assert_clean(at)
    return at


def faces(at) -> list[float]:
    """The four 'largest difference' numbers of the three-faces list."""
    text = next(m.value for m in at.markdown if m.value.startswith("- "))
    return [float(v) for v in re.findall(r": ([0-9.]+e[-+][0-9]+)", text)]


def test_translations_match():
    """Same keys in both languages, the same $...$ math and the same {fields}."""
    tables = assert_translations_match("posterior")
    assert len(tables["en"]) > 40
    assert "làm nhiễu" not in " ".join(tables["vi"].values())


@pytest.mark.parametrize("lang", LANGS)
def test_defaults_and_numbers(lang, model):
    """The default view (digit 3, t = T // 4, pixel (14, 14), sigma^2 = beta): the KL of the pixel and the total KL
    against numpy, and the eq. 12 form equal to the direct sum."""
    at = page_at(lang)
    tr = TABLES[lang]
    assert at.title[0].value == tr("posterior.title")
    t = at.slider(key="posterior_t").value
    assert t == T // 4
    ref = reference(model, load_sample_image("digit_3"), 3, t, 0, 14, 14, "beta")
    kl_pixel, kl_direct, kl_eq12 = metrics(at)
    assert kl_pixel == pytest.approx(ref["kl_pixel"], rel=2e-3)
    assert kl_direct == pytest.approx(ref["kl_bpd"], rel=2e-3)
    assert kl_eq12 == pytest.approx(kl_direct, rel=1e-3)
    assert len(faces(at)) == 4 and all(v < 1e-9 for v in faces(at)), faces(at)
    assert any(tr("posterior.label_known", label=3) == c.value for c in at.caption)
    # the draws' spread around mu~_t against sqrt(beta~_t) of eq. 7: 3136 values, a relative standard error of ~1.3 %
    draws = next(m.value for m in at.markdown if "3136" in m.value)
    rms, std = (float(v) for v in re.findall(r"(?<![\w{])(0\.[0-9]+)", draws))
    assert rms == pytest.approx(std, rel=0.05)
    assert std == pytest.approx(math.sqrt(ref["var_q"]), rel=1e-3)
    assert len(at.get("plotly_chart")) == 4


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("t", [1, 2, T])
def test_extreme_timesteps(lang, t, model):
    at = page_at(lang)
    set_and_run(at, posterior_t=t)
    tr = TABLES[lang]
    infos = [i.value for i in at.info]
    if t == 1:  # a point mass: no KL, the note says why
        assert tr("posterior.kl_t1") in infos and tr("posterior.t1_note") in infos
        assert metrics(at) == []
    else:
        ref = reference(model, load_sample_image("digit_3"), 3, t, 0, 14, 14, "beta")
        kl_pixel, kl_direct, kl_eq12 = metrics(at)
        assert all(math.isfinite(v) for v in (kl_pixel, kl_direct, kl_eq12))
        assert kl_pixel == pytest.approx(ref["kl_pixel"], rel=5e-3, abs=1e-9)
        assert kl_eq12 == pytest.approx(kl_direct, rel=1e-3, abs=1e-9)
    wild = tr.table["posterior.x0_hat_wild"].split("{")[0]  # at t = T, x0_hat is far outside [-1, 1]: the note says why
    assert any(c.value.startswith(wild) for c in at.caption) == (t == T)
    # The charts as drawn (at the defaults) and the figures this run sends to the browser (ui/follow.py).
    shown = [json.loads(fig.proto.spec) for fig in at.get("plotly_chart")]
    (follow,) = [json.loads(c.proto.json) for c in at.get("bidi_component")]
    assert follow["slider"] == "posterior_t" and follow["value"] == t and list(follow["figures"]) == ["posterior_density"]
    assert follow["charts"] == ["posterior_curve_coef_x0", "posterior_curve_coef_xt", "posterior_curve_ratio"]
    density = follow["figures"]["posterior_density"]
    # q(x_{t-1} | x_t, x_0) is drawn from t = 2 on; at t = 1 it is a point mass (a line) beside p_theta's curve.
    assert len(density["data"]) == (1 if t == 1 else 2) and bool(density["layout"].get("shapes")) == (t == 1)
    for fig in shown + [density]:  # no inf or nan reaches a chart
        for trace in fig["data"]:
            for axis in ("x", "y"):
                values = unpacked(trace.get(axis, []))
                assert all(v is not None and math.isfinite(v) for v in values)


@pytest.mark.parametrize("lang", LANGS)
def test_uploaded_digit_corner_pixel_and_beta_tilde(lang, model):
    """A digit sent from the your-image page is offered first and run unconditional; a corner pixel; sigma^2 = beta~
    (then C = 0 in eq. 12)."""
    rng = np.random.default_rng(5)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a plain "1"
    digit[rng.integers(0, 28, 20), rng.integers(0, 28, 20)] = 128
    at = page_at(lang, sdedit_digit=digit, sdedit_source="upload")
    tr = TABLES[lang]
    assert at.selectbox(key="posterior_digit").value == "upload"
    assert any(tr("posterior.label_upload") == c.value for c in at.caption)
    for row, col in ((0, 0), (27, 27)):
        set_and_run(at, posterior_t=2, posterior_row=row, posterior_col=col, posterior_variance="beta_tilde")
        assert at.subheader[-1].value == tr("posterior.pixel_header", row=row, col=col)
        ref = reference(model, digit, -1, 2, 0, row, col, "beta_tilde")
        kl_pixel, kl_direct, kl_eq12 = metrics(at)
        assert kl_pixel == pytest.approx(ref["kl_pixel"], rel=5e-3, abs=1e-12)
        assert kl_direct == pytest.approx(ref["kl_bpd"], rel=5e-3)
        assert kl_eq12 == pytest.approx(kl_direct, rel=1e-3)
    set_and_run(at, posterior_t=1)  # sigma_1^2 = beta~_2 under "beta_tilde": no error at t = 1
    assert not at.metric


def test_bad_upload_in_state_is_ignored():
    """Something that is not a 28x28 uint8 digit in the hand-over key is not offered (no traceback)."""
    at = page_at("en", sdedit_digit=np.zeros((5, 5)), sdedit_source="upload")
    assert "upload" not in at.selectbox(key="posterior_digit").options


# ------------------------------------------------------------------ browser
@pytest.mark.parametrize("lang", LANGS)
def test_page_in_browser(browser, app_url, lang):
    """Desktop and 390 px phone screenshots (tests/screenshots/posterior_*.png, to look at), no exception, and one
    key press on the t slider redraws the network's step (the time is printed; bench/posterior_page.py measures it).
    One page load per language: the phone view is the same page narrowed."""
    context = browser.new_context(viewport={"width": 1400, "height": 4300})
    pg = context.new_page()
    try:
        open_page(pg, app_url, "Posterior", lang)
        pg.get_by_text(TABLES[lang]("posterior.faces_header")).first.wait_for(timeout=30000)
        assert_no_exception(pg)
        thumb = pg.locator('[data-testid="stSlider"]').first.get_by_role("slider")
        thumb.focus()
        start = time.perf_counter()
        pg.keyboard.press("ArrowRight")
        pg.get_by_text(TABLES[lang]("posterior.cap_mu_theta", t=T // 4 + 1), exact=True).wait_for(timeout=30000)
        print(f"t slider step settled in {1000 * (time.perf_counter() - start):.0f} ms ({lang})")
        assert_no_exception(pg)
        pg.wait_for_timeout(1000)  # charts and formulas finish drawing
        screenshot(pg, f"posterior_{lang}_desktop")
        pg.set_viewport_size({"width": 390, "height": 9500})
        pg.wait_for_timeout(1500)
        assert_no_exception(pg)
        screenshot(pg, f"posterior_{lang}_phone")
    finally:
        context.close()
