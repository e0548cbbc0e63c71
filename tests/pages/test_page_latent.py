"""Page 13, latent diffusion: AppTest in both languages at the defaults, every control of the three fragments moved
(2-D label, guidance, predictor with a short MLP training, steps; the latent run's label, guidance, calls and
sampler; the comparison's label), the numbers the page shows against the core's, the translations; then Chromium."""

from __future__ import annotations

import json

import pytest

from tests.conftest import LANGS, assert_clean, assert_no_exception, assert_translations_match, open_page, run_page
from ui.i18n import Translator
from tests.pages.followed import followed_title

PAGE = "pages/13_Latent_diffusion.py"
FAST = {"latent_mlp_steps": 30}  # the 2-D MLP trains in a fraction of a second


def texts(at) -> str:
    return "\n".join(m.value for m in [*at.markdown, *at.caption, *at.latex, *at.info, *at.warning, *at.error])


def chart(at, key: str) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key)).proto.spec)


@pytest.mark.parametrize("lang", LANGS)
def test_defaults(lang):
    at = run_page(PAGE, lang, **FAST)
    assert_clean(at)
    tr = Translator(lang)
    assert at.title[0].value == tr("latent.title")
    assert [h.value for h in at.header][:5] == [tr(f"latent.{k}_header") for k in ("ae", "cloud", "run", "compare",
                                                                                  "flops")]
    assert len(at.get("plotly_chart")) == 3  # the cloud, the walks, the FLOPs
    cloud = chart(at, "latent_cloud")
    assert sum(len(t["x"]["bdata"]) if isinstance(t["x"], dict) else len(t["x"]) for t in cloud["data"]) > 0
    assert len(cloud["data"]) == 10 and cloud["data"][3]["name"] == tr("latent.digit_name").format(digit=3)
    from diffusion_core.models.latent import sample_cost

    calls = next(m for m in at.metric if m.label == tr("latent.metric_calls"))
    assert calls.value == str(sample_cost(10, 2.5).network_calls)
    from pathlib import Path

    from ui.latent.runs import LATENT_WEIGHTS_DIR

    benchmarked = (Path(LATENT_WEIGHTS_DIR) / "bench.json").is_file()
    assert len(at.table) == 2 + benchmarked  # the autoencoder's figures (when benchmarked), the comparison, the FLOPs
    assert tr("latent.scale_header") in [s.value for s in at.subheader]
    assert "Rombach" in texts(at)


@pytest.mark.parametrize("lang", LANGS)
def test_every_control(lang):
    at = run_page(PAGE, lang, **FAST)
    tr = Translator(lang)
    at.selectbox(key="latent_2d_label").set_value(8).run()
    at.slider(key="latent_2d_guidance").set_value(3.0).run()
    at.select_slider(key="latent_2d_steps").set_value(5).run()
    assert_clean(at)
    # The chart keeps the walk at the first guidance and steps; the browser applies this one (ui/follow.py).
    assert followed_title(at, "latent_walk") == tr("latent.walk_title", label=8, s="3", steps=5)
    first = chart(at, "latent_walk")["layout"]["title"]["text"]  # latent_guidance still at the same default
    assert first == tr("latent.walk_title", label=8, s=f"{at.session_state['latent_guidance']:g}", steps=10)
    at.radio(key="latent_2d_predictor").set_value("mlp").run()
    assert_clean(at)
    assert tr("latent.mlp_note", steps=30, seconds="X", loss="X", m=60000).split("X")[0] in texts(at)
    at.selectbox(key="latent_label").set_value(0).run()
    at.slider(key="latent_guidance").set_value(0.0).run()
    at.select_slider(key="latent_steps").set_value(5).run()
    at.radio(key="latent_sampler").set_value("ddim").run()
    assert_clean(at)
    assert next(m for m in at.metric if m.label == tr("latent.metric_calls")).value == "5"
    at.selectbox(key="latent_compare_label").set_value(2).run()
    assert_clean(at)


def test_the_strip_shows_every_step_or_ten():
    from ui.latent import views

    assert views.shown_steps(5) == [0, 1, 2, 3, 4]
    shown = views.shown_steps(50)
    assert len(shown) == 10 and shown[0] == 0 and shown[-1] == 49
    import numpy as np

    strip = views.pipeline_strip(np.zeros((6, 4, 7, 7)), np.zeros((5, 28, 28)), np.zeros((28, 28)))
    assert strip.dtype == np.uint8 and strip.shape[1] == 6 * (28 + views.PAD) + views.PAD  # z_T, then the 5 steps
    tile = views.latent_tile(np.stack([np.full((7, 7), v) for v in (-2.5, 0.0, 2.5, 9.0)]))
    assert tile.shape == (14, 14) and tile[0, 0] == 0 and tile[0, 7] == 128 and tile[7, 0] == 255 and tile[7, 7] == 255


def test_both_tables_hold_the_same_keys_and_no_comma_thousands():
    tables = assert_translations_match("latent")
    assert len(tables["vi"]) > 80
    for lang in LANGS:
        assert "Rombach" in tables[lang]["latent.intro"]
    assert "(Rombach et al., 2022)" in tables["en"]["latent.intro"]
    assert "(Rombach và cộng sự, 2022)" in tables["vi"]["latent.intro"]


@pytest.mark.parametrize("lang", LANGS)
def test_in_the_browser(app_url, browser, lang):
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    pg = context.new_page()
    open_page(pg, app_url, "Latent_diffusion", lang)
    pg.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=180000)
    assert_no_exception(pg)
    assert pg.locator('[data-testid="stPlotlyChart"]').count() == 3
    context.close()
