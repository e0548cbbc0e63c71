"""Page 8 in Chromium: the page opens on a desktop in Vietnamese and on a 390 px phone in English (full-page
screenshots under tests/screenshots/ to look at; run with DIFFUSION_SWEEP_PATH pointing at a sweep file to
see its charts), and on the desktop the quality meter's button draws, scores and shows the worst digits."""

from __future__ import annotations

import pytest

from tests.conftest import assert_no_exception, open_page, screenshot, wait_idle

PATH = "How_many_steps"
JUDGE = {"en": "Judge these settings", "vi": "Chấm điểm thiết lập này"}


@pytest.mark.parametrize("lang, name, viewport", [("vi", "desktop", {"width": 1400, "height": 1000}),
                                                  ("en", "phone", {"width": 390, "height": 844})])
def test_browser_page(browser, app_url, lang, name, viewport):
    context = browser.new_context(viewport=viewport)
    pg = context.new_page()
    try:
        open_page(pg, app_url, PATH, lang)
        pg.locator(".js-plotly-plot").nth(1).wait_for(timeout=90000)  # both samplers' path charts
        assert_no_exception(pg)
        assert pg.locator('[data-testid="stImage"]').count() >= 2  # the two samplers' digits
        if name == "desktop":
            pg.get_by_role("button", name=JUDGE[lang]).click()
            pg.locator('[data-testid="stMetric"]').wait_for(timeout=60000)
            wait_idle(pg)
            assert_no_exception(pg)
            assert pg.locator('[data-testid="stImage"]').count() >= 2 + 8  # and the worst-judged digits
        # Streamlit scrolls inside its main section: grow the window to its height for the full page
        height = pg.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        pg.set_viewport_size({"width": viewport["width"], "height": min(int(height) + 50, 16000)})
        pg.wait_for_timeout(800)
        screenshot(pg, f"steps_{lang}_{name}")
    finally:
        context.close()
