"""Issue 24 in Chromium: a step of a t slider moves the marker of the charts that only follow t in the browser
(ui/follow.py): the dashed line goes to the slider's new t, the dot on each curve to the curve's closed-form value
there, and the chart is not built again (the same plotly DOM node before and after, the server's answer
included). Pages 5 (a linear and a log y axis) and 6 (log-log axes, the weight's marker held at t = 2 for t = 1)."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ROOT, assert_no_exception, open_page, wait_idle
from diffusion_core.process import elbo
from diffusion_core.process.posterior import posterior_coefficients, posterior_variance_ratio
from diffusion_core.process.schedules import SCHEDULE_KINDS, make_schedule

META = json.loads((ROOT / "pretrained" / "denoiser.json").read_text())
T = META["T"]
NETWORK = make_schedule(META["schedule"], T)

# What the page draws, written out from the core: chart key -> [y(t) of each curve, in the chart's trace order].
POSTERIOR = {
    "posterior_curve_coef_x0": lambda t: [float(posterior_coefficients(make_schedule(k, T)).coef_x0[t]) for k in SCHEDULE_KINDS],
    "posterior_curve_coef_xt": lambda t: [float(posterior_coefficients(make_schedule(k, T)).coef_xt[t]) for k in SCHEDULE_KINDS],
    "posterior_curve_ratio": lambda t: [float(posterior_variance_ratio(make_schedule(k, T))[t]) for k in SCHEDULE_KINDS],
}
BOUND = {"bound_weight_chart": lambda t: [float(elbo.eps_mse_weight(NETWORK, v)[t]) for v in ("beta", "beta_tilde")]}

MARKER_JS = """(key) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const m = gd.layout.meta.follow, xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const d = (i) => gd.querySelector(`.shapelayer .shape-group[data-index="${i}"] path, .shapelayer path[data-index="${i}"]`).getAttribute("d");
  return {line: d(m.line), dots: m.dots.map(([shape]) => d(shape)), tagged: gd.__testTag === 1};
}"""
PIXELS_JS = """([key, x, ys]) => {  // where plotly itself puts x on the x axis and each y on the y axis
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return [xa._offset + xa.d2p(x), ys.map((y) => ya._offset + ya.d2p(y))];
}"""


def first_point(d: str) -> tuple[float, float]:
    x, y = re.match(r"M\s*(-?[\d.e+-]+)\s*,\s*(-?[\d.e+-]+)", d).groups()
    return float(x), float(y)


def check_markers(pg, charts: dict, x: int) -> None:
    """Each chart's line at plotly's pixel of x, each dot (a circle of radius 5 drawn from its right edge) on
    its curve's closed-form value at x, and the chart the one tagged before the step."""
    for key, curves in charts.items():
        marker = pg.evaluate(MARKER_JS, key)
        assert marker["tagged"], f"{key}: the chart was built again"
        px, pys = pg.evaluate(PIXELS_JS, [key, x, curves(x)])
        assert first_point(marker["line"])[0] == pytest.approx(px, abs=0.6), (key, marker["line"], px)
        for d, py in zip(marker["dots"], pys):
            cx, cy = first_point(d)
            assert cx - 5 == pytest.approx(px, abs=0.6) and cy == pytest.approx(py, abs=1.5), (key, d, px, py)


@pytest.mark.parametrize("path, slider, charts, hold", [("Posterior", "posterior_t", POSTERIOR, 1),
                                                        ("Bound", "bound_t", BOUND, 2)])
def test_a_t_step_moves_the_markers_without_building_the_charts_again(browser, app_url, path, slider, charts, hold):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    try:
        open_page(pg, app_url, path, "en")
        thumb = pg.locator(f".st-key-{slider} input[type=range]")
        thumb.wait_for(state="attached", timeout=60000)
        for key in charts:
            pg.locator(f".st-key-{key} .js-plotly-plot .shapelayer path").first.wait_for(state="attached", timeout=60000)
            pg.evaluate("(key) => { document.querySelector(`.st-key-${key} .js-plotly-plot`).__testTag = 1; }", key)
        start = int(thumb.input_value())
        for steps, key_name in ((3, "ArrowRight"), (1, "Home")):
            for _ in range(steps):
                thumb.press(key_name)
            t = 1 if key_name == "Home" else start + steps
            x = max(t, hold)  # the weight of eq. 12 starts at t = 2: its marker stays there for t = 1
            # The browser moves the marker at once (the server's answer may still be on its way) ...
            pg.wait_for_function("([key, t]) => document.querySelector(`.st-key-${key} input[type=range]`).value == t",
                                 arg=[slider, t], timeout=5000)
            check_markers(pg, charts, x)
            # ... and the answer (the same figures, a new value) leaves the charts alone, the markers there.
            wait_idle(pg)
            pg.wait_for_timeout(500)
            check_markers(pg, charts, x)
        assert_no_exception(pg)
    finally:
        context.close()
