"""Page 9, the 2-D playground: AppTest at the defaults and the extremes (1 and 10000 points, t = 1 and t = T)
in both languages, uploads good and hostile, a trained network kept for its settings; then Chromium."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from tests.conftest import (LANGS, assert_clean, assert_no_exception, assert_translations_match, run_page,
                      screenshot, wait_idle)
from diffusion_core.data.images import ErrorCode, ImageLoadError, read_image
from tests.pages.followed import followed_title
from ui.i18n import Translator

PAGE = "pages/9_Playground_2D.py"
TINY = {"playground_steps": 100, "playground_width": 32, "playground_T": 25}  # training in a fraction of a second


def texts(at) -> str:
    return "\n".join(m.value for m in [*at.markdown, *at.caption, *at.latex, *at.info, *at.warning, *at.error])


def chart_title(at, key: str) -> str:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key))
    return json.loads(chart.proto.spec)["layout"]["title"]["text"]


def metric(at, label: str) -> float:
    return float(next(m for m in at.metric if m.label == label).value.split()[0])  # "1.2 s" -> 1.2


@pytest.mark.parametrize("lang", LANGS)
def test_defaults(lang):
    """The default data, points, width, schedule and T (only the training is shortened)."""
    at = run_page(PAGE, lang, playground_steps=200)
    assert_clean(at)
    tr = Translator(lang)
    assert at.title[0].value == tr("playground.title")
    assert at.slider(key="playground_points").value == 500 and at.slider(key="playground_t_1000").value == 100
    assert len(at.get("plotly_chart")) == 1 + 3 + 2 + 1  # loss, three fields, two path plots, samples
    assert Translator(lang)("playground.sampler_dpm", n=10) in str(at.get("plotly_chart")[4].proto.spec).encode().decode("unicode_escape")
    exact, fresh = metric(at, tr("playground.memo_metric_exact")), metric(at, tr("playground.memo_metric_fresh"))
    assert exact < fresh / 5  # the exact denoiser copies its training points
    assert tr("playground.memo_why").split("{")[0].strip()[:20] in texts(at)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("points", [1, 10000])
def test_extreme_numbers_of_points_and_t(lang, points):
    at = run_page(PAGE, lang, playground_points=points, playground_data="moons", **TINY)
    assert_clean(at)
    slider = at.slider(key="playground_t_25")
    for t in (1, 25):
        slider.set_value(t).run()
        assert_clean(at)
        # The chart element keeps the first t (2 = 25 // 10); the browser applies the field at t to it.
        assert chart_title(at, "playground_field_exact") == Translator(lang)("playground.panel_exact", t=2)
        assert followed_title(at, "playground_field_exact") == Translator(lang)("playground.panel_exact", t=t)
    if points == 1:
        assert Translator(lang)("playground.memo_one_point") in texts(at)
        assert metric(at, Translator(lang)("playground.memo_metric_exact")) < 1e-3


@pytest.mark.parametrize(("lang", "data"), [("en", "mixture"), ("vi", "swiss_roll"), ("en", "checkerboard"),
                                            ("vi", "picture")])
def test_every_data_set(lang, data):
    at = run_page(PAGE, lang, playground_data=data, **TINY)
    assert_clean(at)
    if data == "picture":
        assert at.get("imgs") or at.get("image")


def test_trained_network_is_kept_for_its_settings():
    settings = dict(playground_data="checkerboard", playground_points=321, **TINY)
    at = run_page(PAGE, "en", **settings)
    seconds = metric(at, "Training time")
    start = time.perf_counter()
    again = run_page(PAGE, "vi", **settings)
    assert metric(again, Translator("vi")("playground.metric_time")) == seconds  # the same network, not retrained
    assert time.perf_counter() - start < 20


def picture_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def upload(lang: str, name: str, data: bytes):
    at = run_page(PAGE, lang, playground_data="picture", playground_picture_source="upload", **TINY)
    at.file_uploader(key="playground_upload").set_value((name, data, "image/png"))
    return at.run()


@pytest.mark.parametrize("lang", LANGS)
def test_upload_a_drawing(lang):
    drawing = np.full((60, 60), 255, np.uint8)
    drawing[10:50, 28:32] = 0  # the letter I
    at = upload(lang, "letter.png", picture_bytes(drawing))
    assert_clean(at)
    assert not at.warning


GOOD = picture_bytes(np.zeros((40, 40, 3), np.uint8))
HOSTILE = [
    ("empty.png", b"", ErrorCode.EMPTY),
    ("notes.png", b"not a picture at all\n" * 40, ErrorCode.NOT_IMAGE),
    ("cut.png", GOOD[: len(GOOD) // 2], ErrorCode.TRUNCATED),
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("name", "data", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_uploads_get_page_4s_messages(lang, name, data, code):
    with pytest.raises(ImageLoadError) as info:
        read_image(data)
    assert info.value.code is code
    at = upload(lang, name, data)
    assert not at.exception
    message = Translator(lang)(f"your_image.error_{code}", **info.value.fields).strip()
    assert [e.value for e in at.error] == [message]
    assert Translator(lang)("playground.using_drawing") in texts(at)  # and the page goes on with the drawing


@pytest.mark.parametrize("lang", LANGS)
def test_blank_upload_is_explained(lang):
    at = upload(lang, "white.png", picture_bytes(np.full((30, 30), 255, np.uint8)))
    assert not at.exception and not at.error
    assert [w.value for w in at.warning] == [Translator(lang)("playground.error_blank")]


# ------------------------------------------------------------------ Chromium
def _slider_time(pg, lang: str, n: int = 6) -> list[float]:
    """Seconds from an arrow key on the t slider to the exact panel showing the new t (then the script idle)."""
    tr = Translator(lang)
    handle = pg.locator('[data-testid="stSlider"]').filter(has_text=tr("playground.t_label")).first.get_by_role("slider")
    times = []
    for _ in range(n):
        value = int(handle.get_attribute("aria-valuetext")) + 1
        handle.focus()
        start = time.perf_counter()
        handle.press("ArrowRight")
        pg.get_by_text(tr("playground.panel_exact", t=value)).wait_for(timeout=30000)
        times.append(time.perf_counter() - start)
        wait_idle(pg)
    return times


@pytest.mark.parametrize("lang", LANGS)
def test_in_the_browser(app_url, browser, lang):
    """Both languages, desktop and a 390 px phone (tall windows so that one screenshot holds the whole page);
    on the desktop, the time from a key press on the t slider to the redrawn field, printed."""
    for width, height, tag in ((1400, 4400, "desktop"), (390, 11000, "phone")):
        context = browser.new_context(viewport={"width": width, "height": height})
        pg = context.new_page()
        pg.goto(f"{app_url}/Playground_2D?lang={lang}")  # not open_page: its 60 s wait is shorter than the training
        pg.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=180000)
        wait_idle(pg, timeout_ms=180000)
        assert_no_exception(pg)
        assert pg.locator('[data-testid="stPlotlyChart"]').count() == 7
        screenshot(pg, f"playground_{lang}_{tag}")
        if tag == "desktop":
            times = sorted(_slider_time(pg, lang))
            print(f"\nt slider, {lang}: " + ", ".join(f"{1000 * s:.0f} ms" for s in times))
            assert_no_exception(pg)
            assert times[len(times) // 2] < 3.0  # median; the goal is 0.15 s on a quiet machine (see the report)
        context.close()


def test_both_tables_hold_the_same_keys_and_no_comma_thousands():
    tables = assert_translations_match("playground")
    assert len(tables["vi"]) > 50


