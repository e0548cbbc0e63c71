"""Page 8 in Chromium: the page opens in both languages on a desktop and a 390 px phone (screenshots under
tests/screenshots/ to look at), and the quality meter's button draws, scores and shows the worst digits."""

from __future__ import annotations

import pytest

from conftest import LANGS, assert_no_exception, open_page, screenshot, wait_idle

PATH = "How_many_steps"


@pytest.mark.parametrize("lang", LANGS)
def test_browser_desktop_and_phone(browser, app_url, lang):
    for name, viewport in (("desktop", {"width": 1400, "height": 1000}), ("phone", {"width": 390, "height": 844})):
        context = browser.new_context(viewport=viewport)
        pg = context.new_page()
        try:
            open_page(pg, app_url, PATH, lang)
            pg.locator(".js-plotly-plot").first.wait_for(timeout=60000)
            assert_no_exception(pg)
            assert pg.locator('[data-testid="stImage"]').count() >= 2  # the two samplers' digits
            if name == "desktop":
                pg.get_by_role("button", name="Judge these settings" if lang == "en" else "Chấm điểm thiết lập này").click()
                pg.locator('[data-testid="stMetric"]').wait_for(timeout=60000)
                wait_idle(pg)
                assert_no_exception(pg)
            # Streamlit scrolls inside its main section: grow the window to its height for the full page
            height = pg.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
            pg.set_viewport_size({"width": viewport["width"], "height": min(int(height) + 50, 16000)})
            pg.wait_for_timeout(1500)
            screenshot(pg, f"steps_{lang}_{name}")
        finally:
            context.close()
