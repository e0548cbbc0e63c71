"""Page 12, one or two steps: AppTest in both languages with the 2-D training shortened, every data set and both
teachers, the lab kept for its settings, the digit half from the shipped student and the benchmark's file, the
friendly message when that file is missing; the strings of both languages match."""

from __future__ import annotations

import json

import pytest

from diffusion_core.toy2d import fewstep as fs
from diffusion_core.toy2d.consistency import ConsistencyConfig
from diffusion_core.toy2d.flow import FlowTrainConfig
from tests.conftest import LANGS, assert_clean, assert_translations_match, run_page
from ui.fewstep import digits as dg
from ui.fewstep import lab2d
from ui.i18n import Translator
from tests.pages.followed import followed_title

PAGE = "pages/12_Few_steps.py"


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    """The page's stages at a tenth of their size (the sizes are read when a stage runs)."""
    monkeypatch.setattr(fs, "TEACHER_TRAINING", FlowTrainConfig(steps=60))
    monkeypatch.setattr(fs, "REFLOW_TRAINING", FlowTrainConfig(steps=60))
    monkeypatch.setattr(fs, "CONSISTENCY_TRAINING", ConsistencyConfig(steps=60, intervals=8))
    for name, value in (("N_POINTS", 100), ("N_PAIRS", 200), ("N_EVAL", 300), ("TEACHER_STEPS", 20)):
        monkeypatch.setattr(fs, name, value)
    monkeypatch.setattr(lab2d, "PATH_STEPS", 20)


def texts(at) -> str:
    return "\n".join(m.value for m in [*at.markdown, *at.caption, *at.latex, *at.info, *at.warning, *at.success])


def test_strings_match():
    tables = assert_translations_match("fewstep")
    assert tables["en"]["fewstep.title"] != tables["vi"]["fewstep.title"]


@pytest.mark.parametrize("lang", LANGS)
def test_defaults(lang):
    at = run_page(PAGE, lang, seed=11)
    assert_clean(at)
    tr = Translator(lang)
    assert at.title[0].value == tr("fewstep.title")
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert len(keys) == 2 + 1 + 3 + 1  # paths before and after, the meter, three clouds, the quality chart
    metrics = {m.label: m.value for m in at.metric}
    s_teacher = float(metrics[tr("fewstep.metric_s_teacher")])
    s_reflow = float(metrics[tr("fewstep.metric_s_reflow")])
    assert s_reflow < s_teacher  # even 60 steps of reflow straighten the teacher's paths
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert captions == [tr(f"fewstep.side_{c}") for c in ("teacher50", "dpm2", "student1", "student2")]
    data = json.loads(dg.FEWSTEP_PATH.read_text())
    goal = tr(f"fewstep.goal_two_calls_{'met' if data['goals']['two_calls']['met'] else 'missed'}",
              accuracy=f"{100 * data['goals']['two_calls']['measured_accuracy']:.1f}",
              fd=f"{data['goals']['two_calls']['measured_fd_over_floor']:.2f}")
    assert goal in texts(at)


@pytest.mark.parametrize("dataset", lab2d.DATASETS[1:])
def test_other_data_sets_and_the_trained_teacher(dataset):
    at = run_page(PAGE, "en", seed=3, fewstep_data=dataset, fewstep_teacher="mlp")
    assert_clean(at)
    assert lab2d.lab_store().peek((dataset, "mlp", 3)) is not None  # kept for its settings


def chart_title(at, key: str) -> str:
    return json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key)).proto.spec)["layout"]["title"]["text"]


def test_calls_and_metric_controls_rerun_cleanly():
    at = run_page(PAGE, "vi", seed=5)
    for k in (2, 4):
        at.segmented_control(key="fewstep_cloud_k").set_value(k).run()
        assert_clean(at)
        # the charts keep the first k's clouds; the figure of k is the one the browser applies (ui/follow.py)
        assert lab2d.calls_text(Translator("vi"), k) in followed_title(at, "fewstep_cloud_reflow")
        assert lab2d.calls_text(Translator("vi"), 1) in chart_title(at, "fewstep_cloud_reflow")
    at.segmented_control(key="fewstep_metric").set_value("accuracy").run()
    assert_clean(at)
    at.segmented_control(key="fewstep_digit_seed").set_value(2).run()
    assert_clean(at)


def test_missing_benchmark_file_is_a_friendly_message(monkeypatch, tmp_path):
    monkeypatch.setattr(dg, "FEWSTEP_PATH", tmp_path / "nothing.json")
    at = run_page(PAGE, "en", seed=11)
    assert not at.exception
    assert Translator("en")("fewstep.no_results") in [i.value for i in at.info]
