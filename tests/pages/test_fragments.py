"""Pages 1-4 in Chromium: a slider step reruns only the st.fragment around that slider and what it drives
(the server's new_session message names the fragment), the picture changes, and what does not depend on
the slider (page 3's film strip, page 4's loaded picture) is not sent again."""

from __future__ import annotations

import pytest

from tests.conftest import assert_no_exception, open_page, record_runs, screenshot, wait_idle
from ui.i18n import Translator

# (URL path, slider key, the picture it changes)
CASES = [
    ("Gaussian", "gaussian_mu", ".st-key-gaussian_fig_1d"),
    ("Gaussian", "gaussian_sigma_2d", ".st-key-gaussian_fig_2d"),
    ("Forward_chain", "forward_chain_t", '[data-testid="stImage"]'),
    ("Closed_form", "closed_form_t", ".st-key-closed_form_pictures"),  # drawn in the browser (ui/mix.py)
    ("Your_image", "your_image_t", ".st-key-your_image_pictures"),  # drawn in the browser (ui/mix.py)
]


def image_sources(pg) -> list[str]:
    return pg.eval_on_selector_all('[data-testid="stMain"] [data-testid="stImage"] img', "els => els.map(e => e.src)")


def wait_for_images(pg, n: int) -> None:
    pg.wait_for_function(f"document.querySelectorAll('[data-testid=\"stMain\"] [data-testid=\"stImage\"]').length >= {n}",
                         timeout=60000)


def picture_html(pg, selector: str) -> str:
    return pg.eval_on_selector_all(selector, "els => els.map(e => e.innerHTML).join('')")


@pytest.mark.parametrize("path, key, picture", CASES)
def test_a_slider_step_reruns_only_its_fragment(browser, app_url, path, key, picture):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    runs = record_runs(pg)
    open_page(pg, app_url, path, "en")
    slider = pg.locator(f".st-key-{key} input[type=range]")
    slider.wait_for(timeout=60000)
    if path == "Your_image":
        wait_for_images(pg, 10)
    wait_idle(pg)
    assert runs and runs[-1] == []  # opening the page runs all of it
    before_value, before_picture, before_images = slider.get_attribute("aria-valuetext"), picture_html(pg, picture), image_sources(pg)
    for _ in range(3):  # a key press on a slider that is still mounting can be lost: press again
        start = len(runs)
        slider.press("ArrowRight")
        pg.wait_for_timeout(400)
        wait_idle(pg)
        if slider.get_attribute("aria-valuetext") != before_value:
            break
    assert slider.get_attribute("aria-valuetext") != before_value
    assert runs[start:] and all(runs[start:]), runs[start:]  # only the fragment ran
    pg.wait_for_function("([sel, old]) => [...document.querySelectorAll(sel)].map(e => e.innerHTML).join('') !== old",
                         arg=[picture, before_picture], timeout=30000)
    after_images = image_sources(pg)
    if path == "Closed_form":  # no picture file is sent: x_t is drawn in the browser, the film strip does not depend on t
        assert after_images == before_images and len(after_images) == 1
    if path == "Your_image":  # the picture as loaded and as given to the model are not sent again
        assert len(before_images) >= 10 and after_images[:2] == before_images[:2]
    assert_no_exception(pg)
    context.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_your_image_opens_on_a_bundled_picture(browser, app_url, lang):
    """Issue 15: not an empty uploader: the bundled photo diffuses, the page says so, the uploader waits."""
    tr = Translator(lang)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    open_page(pg, app_url, "Your_image", lang)
    pg.locator('[data-testid="stFileUploaderDropzoneInput"]').wait_for(state="attached", timeout=30000)
    wait_for_images(pg, 10)  # as loaded, for the model, x0, 7 in the strip, the digit (x_t is drawn: ui/mix.py)
    wait_idle(pg)
    note = tr("your_image.demo_note", name=tr("samples.chelsea")).strip()
    assert pg.get_by_text(note.split("**")[0].strip()[:30]).count() == 1
    wait_for_images(pg, 10)  # as loaded, for the model, x0, 7 in the strip, the digit (x_t is drawn: ui/mix.py)
    assert pg.locator('[data-testid="stImageCaption"]').filter(has_text="250").count() == 1  # the strip's t = 250
    assert pg.locator(".st-key-your_image_pictures figcaption").inner_text() == tr("your_image.mix_caption", t=250)
    assert_no_exception(pg)
    screenshot(pg, f"your_image_first_view_{lang}")
    pg.set_viewport_size({"width": 390, "height": 844})
    wait_idle(pg)
    screenshot(pg, f"your_image_first_view_{lang}_phone")
    context.close()
