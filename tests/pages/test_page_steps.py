"""Page 8, how many steps: the page in AppTest in both languages at its defaults and extremes, with and
without the benchmark's sweep file, the quality meter with a few digits, and the shared memo."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import LANGS, assert_clean, assert_translations_match, run_page
from diffusion_core.models.metrics import wilson_interval
from ui.steps import run as sr
from ui.i18n import Translator

PAGE = "pages/8_How_many_steps.py"
TABLES = {lang: Translator(lang) for lang in LANGS}


def fake_rows() -> list[dict]:
    rows = []
    for sampler, nfes in (("ddim", (5, 10, 50)), ("dpm_solver++", (5, 10, 20)), ("ddpm", (50, 1000))):
        for nfe in nfes:
            acc = min(0.995, 0.5 + nfe / 40)
            rows.append({"sampler": sampler, "nfe": nfe, "spacing": "logsnr" if sampler == "dpm_solver++" else "linear",
                         "n_samples": 1000, "accuracy": acc, "accuracy_ci_low": acc - 0.01,
                         "accuracy_ci_high": min(1.0, acc + 0.01), "fd": 10.0 / nfe + 0.5, "fd_floor": 0.5,
                         "seconds_16": nfe / 50})
    rows.append({**rows[4], "lower_order_final": True, "accuracy": 0.7})  # DPM-Solver++-10, Lu et al.'s option
    return rows


@pytest.fixture
def no_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(sr, "SWEEP_PATH", tmp_path / "missing.json")


@pytest.fixture
def sweep_file(tmp_path, monkeypatch):
    path = tmp_path / "sampler_sweep.json"
    path.write_text(json.dumps({"meta": {"machine": "test machine"}, "rows": fake_rows()}))
    monkeypatch.setattr(sr, "SWEEP_PATH", path)
    return path


def test_translations_match():
    """Same keys in both languages, the same math ($...$) and the same {fields} in each string."""
    assert_translations_match("steps")


# ------------------------------------------------------------------ the sweep file and the memo, no Streamlit
def test_load_sweep(tmp_path):
    assert sr.load_sweep(tmp_path / "none.json") is None
    path = tmp_path / "s.json"
    path.write_text(json.dumps(fake_rows()))  # a bare list of rows is read too
    sweep = sr.load_sweep(path)
    assert len(sweep.rows) == 9 and sweep.machine == "" and sweep.rows[0].sampler == "ddim"
    for bad in ("{not json", json.dumps({"rows": [{"sampler": "ddim"}]}), json.dumps({"rows": 3})):
        path.write_text(bad)
        with pytest.raises(sr.SweepError, match="s.json"):
            sr.load_sweep(path)


# ------------------------------------------------------------------ AppTest
def texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [w.value for w in at.warning])


@pytest.mark.parametrize("lang", LANGS)
def test_defaults_without_the_sweep(lang, no_sweep):
    tr = TABLES[lang]
    at = run_page(PAGE, lang)
    assert_clean(at)
    assert at.title[0].value == tr("steps.title")
    assert at.selectbox(key="steps_a").value == "ddim" and at.selectbox(key="steps_b").value == "dpm_solver++"
    assert at.select_slider(key="steps_k").value == 10 and at.radio(key="steps_spacing").value == "logsnr"
    assert len(at.get("plotly_chart")) == 2  # the two path charts; no sweep charts
    assert tr("steps.sweep_missing") in texts(at)
    assert tr("steps.judge_empty") in texts(at)
    # the coefficient table: 10 steps, DDIM's numbers on the first-order ones equal DPM-Solver++'s
    table = at.dataframe[0].value
    assert len(table) == 10
    first = table[table[tr("steps.col_order")] == "1"]
    assert (first[tr("steps.col_a")] == first[tr("steps.col_ddim_a")]).all()
    assert (first[tr("steps.col_b")] == first[tr("steps.col_ddim_b")]).all()
    # the numbers check: the formula's value equals the run's, to the digits printed
    check = next(m.value for m in at.markdown if "D$ =" in m.value)
    computed, reached = re.findall(r"= (-?\d+\.\d+)", check)[-1], re.findall(r"(-?\d+\.\d+)\.$", check)[0]
    assert abs(float(computed) - float(reached)) <= 2e-4, check


def test_sweep_charts_from_the_file(sweep_file):
    tr = TABLES["en"]
    at = run_page(PAGE, "en")
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 4  # two paths, accuracy and Fréchet distance
    table = at.dataframe[1].value
    assert len(table) == 9 and set(table[tr("steps.col_nfe")]) == {"5", "10", "20", "50", "1000"}
    dpm = tr("steps.series", sampler=tr("steps.sampler_dpm_solver++"), spacing=tr("steps.spacing_logsnr"))
    assert (table[tr("steps.col_sampler")] == tr("steps.series_lof", name=dpm)).sum() == 1
    for chart in at.get("plotly_chart"):  # no comma between thousands in ticks and hovers
        assert json.loads(chart.proto.spec)["layout"]["separators"] == ". "
    assert tr("steps.sweep_machine", machine="test machine") in texts(at)
    sweep_file.write_text("{broken")
    at = run_page(PAGE, "vi")
    assert not at.exception and TABLES["vi"]("steps.sweep_error") in texts(at)


def test_one_step_with_equal_samplers(no_sweep):
    tr = TABLES["vi"]
    at = run_page(PAGE, "vi")
    at.selectbox(key="steps_a").set_value("ddpm")
    at.selectbox(key="steps_b").set_value("ddpm")
    at.select_slider(key="steps_k").set_value(sr.STEP_CHOICES[0]).run()
    assert_clean(at)
    assert tr("steps.hint_equal") in texts(at) and tr("steps.hint_one_step") in texts(at)
    assert tr("steps.numbers_no_second") in texts(at)
    assert len(at.dataframe[0].value) == 1


def test_most_steps_even_in_t(no_sweep):
    at = run_page(PAGE, "en")
    at.radio(key="steps_spacing").set_value("linear")
    at.select_slider(key="steps_k").set_value(sr.STEP_CHOICES[-1]).run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == sr.STEP_CHOICES[-1]
    at.selectbox(key="steps_follow").set_value(3).run()  # another digit: its own ODE path
    assert_clean(at)


@pytest.mark.parametrize("lang", LANGS)
def test_quality_meter(lang, no_sweep):
    tr = TABLES[lang]
    at = run_page(PAGE, lang)
    at.select_slider(key="steps_judge_k").set_value(2)
    at.select_slider(key="steps_judge_n").set_value(sr.JUDGE_CHOICES[0])
    at.button(key="steps_judge_run").click().run()
    assert_clean(at)
    result = at.session_state["steps_judgement"]
    n = sr.JUDGE_CHOICES[0]
    assert result.n == n and (result.low, result.high) == wilson_interval(result.correct, n)
    assert result.worst.shape == (sr.WORST_SHOWN, 28, 28) and np.all(np.diff(result.worst_p) >= 0)
    assert at.metric[0].value == f"{100 * result.correct / n:.1f} %"
    assert tr("steps.judge_ci", low=f"{100 * result.low:.1f}", high=f"{100 * result.high:.1f}",
              sampler=tr("steps.sampler_dpm_solver++"), steps=2, spacing=tr("steps.spacing_logsnr"),
              seconds=f"{result.seconds:.1f}") in texts(at)


def test_a_network_with_another_T(tmp_path, monkeypatch, no_sweep):
    """Weights trained with T = 30 (a tiny random network): the steps offered stop at 30, the reference path
    takes every t, and the page draws without error."""
    import ui.model
    from diffusion_core.models.unet import UNet, UNetConfig
    from diffusion_core.models.weights import DenoiserConfig, save_denoiser

    tiny = UNetConfig(channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16, attention=False)
    save_denoiser(UNet(tiny), DenoiserConfig(unet=tiny, schedule="cosine", T=30), tmp_path)
    monkeypatch.setattr(ui.model, "WEIGHTS_DIR", tmp_path)
    at = run_page(PAGE, "en")
    assert_clean(at)
    assert at.select_slider(key="steps_k").options[-1] == "30"
    at.select_slider(key="steps_k").set_value(30).run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 30
    assert TABLES["en"]("steps.paths_intro", n=30) in texts(at)


def test_missing_weights_give_a_translated_error(tmp_path, monkeypatch):
    import ui.model

    monkeypatch.setattr(ui.model, "WEIGHTS_DIR", tmp_path)
    for lang in LANGS:
        at = run_page(PAGE, lang)
        assert not at.exception and at.error[0].value == TABLES[lang]("steps.weights_error")
