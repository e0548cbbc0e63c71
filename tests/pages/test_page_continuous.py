"""Page 11, continuous time: AppTest in both languages at the defaults and with every control moved, the numbers
the page prints against the benchmark files it reads, the missing and damaged files, the live MNIST parts (the
reverse SDE against the ODE, one digit's ODE likelihood beside page 6's bound), and the translations."""

from __future__ import annotations

import math
import re

import pytest

from tests.conftest import LANGS, assert_clean, assert_translations_match, run_page
from ui.continuous import dynamics as cd
from ui.continuous import mnist as cm
from ui.i18n import Translator

PAGE = "pages/11_Continuous_time.py"
TABLES = {lang: Translator(lang) for lang in LANGS}


def texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [w.value for w in at.warning])


def test_translations_match():
    assert_translations_match("continuous")


@pytest.mark.parametrize("lang", LANGS)
def test_defaults(lang):
    tr = TABLES[lang]
    at = run_page(PAGE, lang)
    assert_clean(at)
    assert at.title[0].value == tr("continuous.title")
    assert at.select_slider(key="continuous_t").value == 0.2
    assert at.select_slider(key="continuous_tol").value == 1e-5
    # the T = 10 row says there is no chain; the others shrink tenfold
    table = at.table[0].value
    assert tr("continuous.no_chain", k=5) in set(table[tr("continuous.col_error")])
    sup = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
    errors = [float(v.replace("·10", "e").translate(sup)) for v in table[tr("continuous.col_error")][1:]]
    assert errors[0] / errors[1] == pytest.approx(10, rel=0.1) and errors[1] / errors[2] == pytest.approx(10, rel=0.1)
    # the energy table holds the benchmark's numbers for moons at t = 0.2
    bench = cd.load_bench()
    i = bench["meta"]["times"].index(0.2)
    z = [float(v) for v in at.table[1].value[tr("continuous.col_ratio")]]
    assert z == pytest.approx([bench["datasets"]["moons"]["z"][d][i] for d in cd.DYNAMICS], abs=0.051)
    assert all(abs(v) < 4 for v in z)
    # the Fokker-Planck residual is printed and tiny; the MNIST parts wait for a click
    assert tr("continuous.sde_wait", calls=50) in texts(at)
    assert tr("continuous.digit_wait") in texts(at)


def test_every_2d_control():
    tr = TABLES["en"]
    at = run_page(PAGE, "en")
    at.selectbox(key="continuous_dataset").set_value("mixture").run()
    for t in (0.01, 1.0):
        at.select_slider(key="continuous_t").set_value(t).run()
        assert_clean(at)
    at.select_slider(key="continuous_tol").set_value(1e-2).run()
    at.select_slider(key="continuous_probes").set_value(64).run()
    at.slider(key="continuous_x0").set_value(-1.0).run()
    at.select_slider(key="continuous_path_T").set_value(25).run()
    assert_clean(at)
    bench = cd.load_bench()
    lik = bench["datasets"]["mixture"]["likelihood"]
    worst = max(abs(a - b) for a, b in zip(lik["ode"][0], lik["exact"]))
    note = next(m.value for m in at.markdown if "1e-02" in m.value and "nat" in m.value)
    assert tr("continuous.data_mixture") in note and f"{worst:.3g}"[:3] in note


def test_missing_and_damaged_files(tmp_path, monkeypatch):
    monkeypatch.setattr(cd, "BENCH_PATH", tmp_path / "none.json")
    monkeypatch.setattr(cm, "SAMPLING_PATH", tmp_path / "none2.json")
    monkeypatch.setattr(cm, "LIKELIHOOD_PATH", tmp_path / "none3.json")
    tr = TABLES["vi"]
    at = run_page(PAGE, "vi")
    assert_clean(at)
    for key in ("bench2d_missing", "sampling_missing", "likelihood_missing"):
        assert tr(f"continuous.{key}") in texts(at)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    monkeypatch.setattr(cd, "BENCH_PATH", broken)
    monkeypatch.setattr(cm, "SAMPLING_PATH", broken)
    at = run_page(PAGE, "en")
    assert not at.exception and TABLES["en"]("continuous.bench_damaged") in texts(at)


def test_the_reverse_sde_and_the_ode_from_one_start():
    tr = TABLES["vi"]
    at = run_page(PAGE, "vi")
    at.select_slider(key="continuous_calls").set_value(20)
    at.button(key="continuous_sde_run").click().run()
    assert_clean(at)
    prefix = tr("continuous.sde_note", spread="", seconds="", calls=20)[:15]
    note = next(m.value for m in at.markdown if m.value.startswith(prefix))
    spread = float(re.findall(r"\b\d+\.\d{3}\b", note)[0])
    assert spread > 0.05  # three noise draws, three different digits
    # once switched on, a new setting runs without another click
    at.selectbox(key="continuous_label").set_value(7).run()
    assert_clean(at)
    assert tr("continuous.sde_wait", calls=20) not in texts(at)


def test_one_digit_s_likelihood_beside_page_6_s_bound():
    tr = TABLES["en"]
    at = run_page(PAGE, "en")
    at.button(key="continuous_digit_run").click().run(timeout=240)
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    ode, dec = float(metrics[tr("continuous.metric_ode")]), float(metrics[tr("continuous.metric_decoder")])
    bound = float(metrics[tr("continuous.metric_bound")].split(" ± ")[0])
    for v in (ode, dec, bound):
        assert 0.5 < v < 4  # bits/dim of an MNIST digit: far below the 8 of a uniform model
    # the printed sum: log p = prior + divergence integral, and bits/dim from it
    formula = next(x.value for x in at.latex if "underbrace" in x.value and "nat" in x.value)
    nums = [float(v) for v in re.findall(r"-?\d+\.\d+", formula)]
    prior, delta, total = nums[0], nums[1], nums[2]
    assert total == pytest.approx(prior + delta, abs=0.11)
    assert ode == pytest.approx(-(total - 784 * math.log(127.5)) / (784 * math.log(2)), abs=2e-3)
