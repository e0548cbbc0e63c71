"""The home page and the shared sidebar."""

import pytest

from tests.conftest import LANGS, assert_clean, assert_no_exception, open_page, run_page, screenshot


@pytest.mark.parametrize("lang", LANGS)
def test_home_renders_in_each_language(lang):
    at = run_page("app.py", lang)
    assert_clean(at)
    expected = {"vi": "Học toán", "en": "Learn the math"}[lang]
    assert at.title[0].value.startswith(expected)
    assert at.query_params["lang"] == lang


def test_language_switch_is_kept_in_state_and_url():
    at = run_page("app.py", "vi")
    at.sidebar.radio(key="_widget_lang").set_value("en").run()
    assert at.session_state["lang"] == "en"
    assert at.query_params["lang"] == "en"
    assert at.title[0].value.startswith("Learn the math")


def test_seed_survives_reruns():
    at = run_page("app.py", "en")
    at.sidebar.number_input(key="_widget_seed").set_value(1234).run()
    at.run()
    assert at.session_state["seed"] == 1234


@pytest.mark.parametrize("lang", LANGS)
def test_home_in_browser(page, app_url, lang):
    open_page(page, app_url, "", lang)
    assert_no_exception(page)
    assert page.locator(".katex").count() > 0
    screenshot(page, f"home_{lang}")
