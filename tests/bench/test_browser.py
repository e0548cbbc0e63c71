"""bench/browser.py: the slider discovery and one timed step in a real page (the shared test server and
Chromium of tests/conftest.py), and its statistics against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from bench.browser import SliderRun, Student, cpu_ms_per_step, page_paths, percentile, rows, summary, table


@pytest.fixture(scope="module")
def closed_form(browser, app_url):
    """Page 3 in Vietnamese, opened once for this module's browser tests."""
    student = Student(browser, app_url, timeout_s=30)
    student.open("Closed_form", "vi")
    yield student
    student.close()


def test_discovery_finds_the_t_slider_of_page_3(closed_form):
    found = {s["key"]: s for s in closed_form.sliders()}
    assert "closed_form_t" in found, found
    t = found["closed_form_t"]
    assert t["visible"] and not t["disabled"]
    assert t["value"] == "250"  # the page's default t (T // 4 of T = 1000)


def test_one_step_is_timed_in_the_page(closed_form):
    slider = next(s for s in closed_form.sliders() if s["key"] == "closed_form_t")
    run = closed_form.measure("Closed_form", "vi", slider, steps=1, baseline_s=0)
    assert run.timeouts == 0 and run.notes == [], run.notes
    [step] = run.steps
    assert step["settled_ms"] > 0
    # t drives the noisy picture: it changes, and before (or when) the page settles
    assert step["first_picture_ms"] is not None and 0 < step["first_picture_ms"] <= step["settled_ms"]
    assert step["mutations"] > 0
    assert closed_form.thumb(slider).get_attribute("aria-valuetext") == "251"  # one step right of the default
    assert run.browser_ms_per_step is not None and run.browser_ms_per_step >= 0


def test_the_pages_in_teaching_order():
    pages = page_paths()
    assert pages[:3] == [(1, "Gaussian"), (2, "Forward_chain"), (3, "Closed_form")]
    assert [n for n, _ in pages] == sorted(n for n, _ in pages) and (9, "Playground_2D") in pages
    assert not [p for _, p in pages if p[0].isdigit()]  # the URL path drops the number: /Closed_form


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 51])
def test_percentile_and_summary_against_numpy(n):
    values = list(np.random.default_rng(n).exponential(200.0, n))
    for q in (0, 5, 37.5, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12)
    s = summary(values)
    assert s["median"] == pytest.approx(np.median(values), rel=1e-12)
    assert s["p95"] == pytest.approx(np.percentile(values, 95), rel=1e-12)
    assert s["max"] == max(values)


def test_no_values_have_no_statistics():
    assert percentile([], 50) is None
    assert summary([]) == {"median": None, "p95": None, "max": None}


def test_cpu_per_step_subtracts_the_idle_rate():
    # 50 ticks of 10 ms over 2 s, 5 ticks/s of it idle (10 ticks): 400 ms of work over 4 steps
    assert cpu_ms_per_step(50, 5.0, 2.0, 4, tick_hz=100) == pytest.approx(100.0)
    assert cpu_ms_per_step(3, 5.0, 2.0, 4, tick_hz=100) == 0.0  # an idle baseline above the work: clamped
    assert cpu_ms_per_step(50, 0.0, 2.0, 0, tick_hz=100) is None


def test_rows_pool_the_languages_and_judge_the_goals():
    def step(settled, picture):
        return {"settled_ms": settled, "first_picture_ms": picture, "mutations": 10, "page_run": False,
                "first_message_ms": None, "last_message_ms": None}

    vi = [step(80 + 10 * i, 20 + i) for i in range(6)]
    en = [step(100 + 15 * i, None if i % 2 else 40) for i in range(6)]
    runs = [SliderRun("Closed_form", "closed_form_t", "vi", steps=vi, browser_ms_per_step=30.0),
            SliderRun("Closed_form", "closed_form_t", "en", steps=en, browser_ms_per_step=60.0),
            SliderRun("Bound", "bound_t", "vi", steps=[step(900, 60)], browser_ms_per_step=10.0, timeouts=1,
                      notes=["not settled within 20 s"])]
    fast, slow = rows(runs)
    settled = [s["settled_ms"] for s in vi + en]
    assert fast["steps"] == 12 and fast["settled"]["p95"] == pytest.approx(np.percentile(settled, 95))
    assert fast["first_picture"]["median"] == pytest.approx(np.median([20, 21, 22, 23, 24, 25, 40, 40, 40]))
    assert fast["browser_cpu_ms"] == pytest.approx(45.0)  # 6 steps at 30 and 6 at 60
    assert fast["goals"] == {"settled": False, "picture": True, "cpu": True}  # p95 of settled is 166.75 ms
    assert slow["steps"] == 2 and slow["goals"]["settled"] is False  # a time-out misses the goal
    text = table([fast, slow])
    assert "| Closed_form · closed_form_t | 12 |" in text and "2 (1 timed out)" in text
    assert "0 of 2 measured" in text and "not settled within 20 s" in text
