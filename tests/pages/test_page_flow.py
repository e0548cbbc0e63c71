"""Page 10, flow matching: AppTest in both languages at short training settings (every section drawn, no error,
the translations in step), each control moved once, the numbers the page states checked against the core (the
rescaled VP picture, the round trips, the theorem's gap, DDIM against Euler), and missing weights."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import LANGS, assert_clean, assert_translations_match, run_page
from ui.i18n import Translator

PAGE = "pages/10_Flow_matching.py"
SMALL = {"flow_steps": 300, "flow_width": 32, "flow_points": 200}  # training in about a second


def texts(at) -> str:
    return "\n".join(m.value for m in [*at.markdown, *at.caption, *at.latex, *at.info, *at.warning, *at.error])


def chart_keys(at) -> list[str]:
    return [c.proto.id for c in at.get("plotly_chart")]


def test_translations_match():
    tables = assert_translations_match("flow")
    for lang in LANGS:  # the page says the probability-flow ODE is the flow-matching ODE, in both languages
        assert "dx/dt = u_t(x)" in tables[lang]["flow.pf_ode"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_section_at_short_settings(lang):
    at = run_page(PAGE, lang, **SMALL)
    assert_clean(at)
    tr = Translator(lang)
    assert at.title[0].value == tr("flow.title")
    assert [h.value for h in at.header][:6] == [tr(f"flow.{k}_header") for k in ("path", "faces", "exact", "train",
                                                                                 "coin", "heun")]
    keys = " ".join(chart_keys(at))
    for key in ("flow_coef_chart", "flow_snr_chart", "flow_straight", "flow_marginal", "flow_variance", "flow_loss_flow",
                "flow_field_exact", "flow_samples_flow", "flow_weight_check", "flow_weights", "flow_sweep_fd", "flow_energy"):
        assert key in keys, key
    body = texts(at)
    assert tr("flow.pf_ode").strip()[:40] in body and tr("flow.conventions").strip()[:30] in body
    table = at.dataframe[0].value  # the five faces: round trips at float64 precision, errors in ratio k(t)^2
    assert len(table) == 5
    assert all(float(v) < 1e-12 for v in table.iloc[:, 1])
    ratio, weight = table.iloc[:, 3].astype(float), table.iloc[:, 4].astype(float)
    assert ((ratio - weight).abs() <= 1e-3 * weight).all()


@pytest.mark.parametrize("lang", LANGS)
def test_controls(lang):
    at = run_page(PAGE, lang, **SMALL)
    tr = Translator(lang)
    at.slider(key="flow_t_path").set_value(0.0).run()
    assert_clean(at)
    assert tr("flow.path_ends") in texts(at)
    at.slider(key="flow_t_path").set_value(0.3).run()
    at.selectbox(key="flow_digit").set_value(3).run()
    assert tr("flow.path_note", gap="").split("{")[0][:20] in texts(at)
    at.slider(key="flow_t_faces").set_value(0.99).run()
    at.radio(key="flow_face_path").set_value("vp_cosine").run()
    at.slider(key="flow_t_field").set_value(1.0).run()
    at.select_slider(key="flow_n_steps").set_value(2).run()
    at.select_slider(key="flow_coin_steps").set_value(2).run()
    assert_clean(at)
    coin = next(c.value for c in at.caption if c.value.startswith(tr("flow.coin_note").split("{")[0][:25]))
    largest = float(re.findall(r"\d\.\d+e-\d+", coin)[0])  # the float64 difference comes first
    assert largest < 1e-7  # float64: DDIM and Euler on the rectified flow are one method


@pytest.mark.parametrize("lang", LANGS)
def test_the_path_pictures_at_every_t(lang):
    """The three pictures the browser draws at each t (ui/mix.py), rebuilt from the page's payload, against the
    server's own pictures of the same t (path_pictures, to_picture): one grey level at most, and their captions."""
    from tests.pages.followed import mixed_header
    from ui.flow import digits as fd
    from diffusion_core.data.images import unit_to_uint8

    at = run_page(PAGE, lang, **SMALL)
    tr = Translator(lang)
    mix = mixed_header(at, "flow_t_path")
    assert (mix["positions"], mix["min"], mix["step"], mix["factor"]) == (101, 0, 0.01, 8)
    for i in (0, 1, 30, 77, 99, 100):
        t = i / 100
        p = fd.path_pictures(7, t, 0)  # the page's default digit and seed
        want = [fd.to_picture(p["rf"], 2.5), fd.to_picture(p["vp"], 2.5), fd.to_picture(p["vp"] / p["scale"], 2.5)]
        for k, expected in enumerate(want):
            x = sum(w * base for w, base in zip(mix["weights"][k][i], mix["bases"]))[:, :, 0]
            assert abs(unit_to_uint8(x).astype(int) - expected.astype(int)).max() <= 1, (t, k)
        assert mix["captions"][0][i] == tr("flow.pic_rf", t=f"{t:.4g}")
        assert mix["captions"][1][i] == tr("flow.pic_vp", t=f"{p['t_vp']:.4g}")
        assert mix["captions"][2][i] == tr("flow.pic_rescaled", scale=f"{p['scale']:.4g}")


def test_the_conditional_minus_marginal_loss_is_the_variance():
    """The caption under the fields: conditional - marginal = V(t) within two standard errors plus 1 %."""
    at = run_page(PAGE, "en", **SMALL)
    tr = Translator("en")
    start = tr("flow.field_note").split("{")[0]
    note = next(c.value for c in at.caption if c.value.startswith(start))
    diff = float(note.split("their difference ")[1].split()[0])
    var, se = note.split("𝒱(t) = ")[1].split(" ± ")
    assert abs(diff - float(var)) <= float(se.split(":")[0]) + 0.01 * float(var)


def test_a_new_setting_trains_and_another_data_set_is_drawn():
    at = run_page(PAGE, "en", **{**SMALL, "flow_data": "mixture", "flow_sampling": "logit_normal", "flow_points": 2})
    assert_clean(at)
    assert len([m for m in at.metric]) == 4


def test_missing_weights_leave_the_rest_of_the_page(tmp_path, monkeypatch):
    import ui.model

    monkeypatch.setattr(ui.model, "WEIGHTS_DIR", tmp_path)
    for lang in LANGS:
        at = run_page(PAGE, lang, **SMALL)
        assert not at.exception and at.error[0].value == Translator(lang)("flow.weights_error")
        assert "flow_energy" in " ".join(chart_keys(at))  # the 2-D parts still run


def test_the_sweep_file_has_every_sampler_and_the_identity():
    from ui.flow.view import FLOW_SWEEP

    data = json.loads(FLOW_SWEEP.read_text())
    samplers = {r["sampler"] for r in data["rows"]}
    assert samplers == {"euler", "heun", "ddim", "dpm_solver++"}
    assert {r["nfe"] for r in data["rows"] if r["sampler"] == "euler"} >= {2, 10, 50}
    assert data["identity"]["max_difference_float64"] < 1e-7


# (slider, the picture it changes): each in its own st.fragment
FRAGMENTS = [("flow_t_path", ".st-key-flow_path_pictures"), ("flow_t_faces", ".st-key-flow_face_pictures"),
             ("flow_t_field", ".st-key-flow_field_exact"), ("flow_n_steps", ".st-key-flow_samples_flow"),
             ("flow_coin_steps", ".st-key-flow_coin_pictures")]


def test_each_slider_reruns_only_its_fragment_in_the_browser(browser, app_url):
    from tests.conftest import assert_no_exception, record_runs, wait_idle

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    runs = record_runs(pg)
    pg.set_default_timeout(180000)  # the first view trains both MLPs (seconds on a loaded 2-core machine)
    pg.goto(f"{app_url}/Flow_matching?lang=en")
    wait_idle(pg, 240000)  # the first view trains both MLPs: a minute or more beside other jobs
    assert runs and runs[-1] == []
    for key, picture in FRAGMENTS:
        slider = pg.locator(f".st-key-{key} input[type=range]")
        slider.scroll_into_view_if_needed()
        before_value = slider.get_attribute("aria-valuetext")
        before = pg.eval_on_selector_all(picture, "els => els.map(e => e.innerHTML).join('')")
        for _ in range(3):  # a key press on a slider that is still mounting can be lost: press again
            start = len(runs)
            slider.press("ArrowLeft")
            pg.wait_for_timeout(400)
            wait_idle(pg, 120000)
            if slider.get_attribute("aria-valuetext") != before_value:
                break
        assert slider.get_attribute("aria-valuetext") != before_value, key
        assert runs[start:] and all(runs[start:]), (key, runs[start:])  # only the fragment ran
        pg.wait_for_function("([sel, old]) => [...document.querySelectorAll(sel)].map(e => e.innerHTML).join('') !== old",
                             arg=[picture, before], timeout=60000)
        assert_no_exception(pg)
    context.close()


MARKER_JS = """([sel, value]) => { const gd = document.querySelector(sel), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const shape = (i) => gd.querySelector(`.shapelayer .shape-group[data-index="${i}"] path, .shapelayer path[data-index="${i}"]`);
  const line = shape(0).getAttribute('d').match(/-?[\\d.]+/g).map(Number);
  const dot = shape(1).getAttribute('d').match(/-?[\\d.]+/g).map(Number);  // M cx + 5, cy A ...
  return {same: gd === window.__courseChart, line_x: [line[0], line[2]], want_x: xa._offset + xa.d2p(value),
          dot: [dot[0] - 5, dot[1]], want_dot: [xa._offset + xa.d2p(value), ya._offset + ya.d2p(1 - value)],
          label: gd.querySelector('.infolayer .annotation-text').textContent}; }"""


def test_the_t_marker_moves_in_the_browser_and_the_chart_is_not_rebuilt(browser, app_url):
    """Issue 24: a step of t moves the dashed line to the slider's new t and the dot on the rectified flow's
    alpha(t) = 1 - t (the first curve) to (t, 1 - t), in the same plotly chart (the same DOM node: not redrawn)."""
    from tests.conftest import assert_no_exception, wait_idle

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(180000)
    pg.goto(f"{app_url}/Flow_matching?lang=en")
    chart = ".st-key-flow_coef_chart .js-plotly-plot"
    pg.wait_for_selector(chart + " .shapelayer path", state="attached")  # a vertical line has no width: never "visible"
    wait_idle(pg, 240000)
    pg.evaluate("sel => { window.__courseChart = document.querySelector(sel); }", chart)
    slider = pg.locator(".st-key-flow_t_path input[type=range]")
    slider.scroll_into_view_if_needed()
    values = [float(slider.get_attribute("aria-valuetext"))]
    for _ in range(3):
        slider.press("ArrowRight")
        pg.wait_for_timeout(300)
        value = float(slider.get_attribute("aria-valuetext"))
        m = pg.evaluate(MARKER_JS, [chart, value])
        assert m["same"]  # the chart element was not rebuilt
        assert all(abs(x - m["want_x"]) < 0.5 for x in m["line_x"]), (value, m)
        assert all(abs(a - b) < 0.5 for a, b in zip(m["dot"], m["want_dot"])), (value, m)
        assert m["label"] == f"t = {value:g}"
        values.append(value)
    assert values[-1] == pytest.approx(values[0] + 0.03)
    wait_idle(pg, 120000)
    assert pg.evaluate(MARKER_JS, [chart, values[-1]])["same"]  # also after the server's answers
    assert_no_exception(pg)
    context.close()
