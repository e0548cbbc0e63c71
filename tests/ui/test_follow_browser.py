"""ui/follow.py in Chromium: a key press on a slider moves the markers of its charts at once, where plotly itself
would draw them, without rebuilding the charts; a chart whose data change is updated in place."""

from __future__ import annotations

from tests.conftest import assert_no_exception, open_page, wait_idle

# The marker of a chart, read in the page: the line's x in pixels, each dot's centre, and plotly's own pixel
# positions of the marker's x and of each curve at that x (computed from the axes, as plotly draws them).
MARKER = """(key) => { const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const m = gd.layout.meta.follow, fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis;
  const path = i => gd.querySelector(`.shapelayer .shape-group[data-index="${i}"] path, .shapelayer path[data-index="${i}"]`);
  const line = path(m.line).getAttribute('d');
  const x = gd.layout.shapes[m.line].x0;
  const dots = m.dots.map(([s, tr]) => { const d = path(s).getAttribute('d'); const [cx, cy] = d.slice(1).split('A')[0].split(',').map(Number);
    const xs = gd._fullData[tr].x, ys = gd._fullData[tr].y; let j = 0; while (j < xs.length - 1 && xs[j + 1] <= x) j++;
    const w = xs[j + 1] === undefined ? 0 : (x - xs[j]) / (xs[j + 1] - xs[j]); const y = ys[j] + w * ((ys[j + 1] ?? ys[j]) - ys[j]);
    return [cx - 5, cy, xa._offset + xa.d2p(x), ya._offset + ya.d2p(y)]; });
  return {x, line, px: xa._offset + xa.d2p(x), dots, label: gd.layout.annotations[m.label].text}; }"""


def test_a_key_press_moves_the_markers_before_the_server_answers(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    open_page(pg, app_url, "Closed_form", "en")
    slider = pg.locator(".st-key-closed_form_t input[type=range]")
    slider.wait_for(timeout=60000)
    pg.wait_for_selector(".st-key-closed_form_log_snr .js-plotly-plot .shapelayer path", state="attached", timeout=60000)
    wait_idle(pg)
    pg.wait_for_timeout(500)
    pg.evaluate("() => { window.__chart = document.querySelector('.st-key-closed_form_alpha_bars .js-plotly-plot'); }")
    start = int(slider.get_attribute("aria-valuetext"))
    # The marker follows the key press in the same task, before any message from the server is handled.
    moved = pg.evaluate("""(start) => { const input = document.querySelector('.st-key-closed_form_t input[type=range]');
        input.focus(); input.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
        return new Promise(r => requestAnimationFrame(() => { const gd = document.querySelector('.st-key-closed_form_alpha_bars .js-plotly-plot');
          r([Number(input.value), gd.layout.shapes[0].x0]); })); }""", start)
    assert moved[0] == start + 1 and moved[1] == start + 1, moved
    # One key press at a time: a press that lands while a fragment's rerun redraws the slider can be lost in
    # Streamlit 1.67 itself (seen on main before ui/follow.py too), which is not what this test is about.
    for k in range(2, 6):
        slider.press("ArrowRight")
        pg.wait_for_function("([sel, v]) => document.querySelector(sel).getAttribute('aria-valuetext') == v",
                             arg=[".st-key-closed_form_t input[type=range]", str(start + k)], timeout=10000)
        wait_idle(pg)
    wait_idle(pg)
    pg.wait_for_timeout(300)
    assert int(slider.get_attribute("aria-valuetext")) == start + 5
    for key in ("closed_form_alpha_bars", "closed_form_log_snr"):
        m = pg.evaluate(MARKER, key)
        assert m["x"] == start + 5 and m["label"] == f"t = {start + 5}"
        assert abs(float(m["line"][1:].split(",")[0]) - m["px"]) < 0.01  # the dashed line at plotly's pixel
        assert len(m["dots"]) == 2
        for cx, cy, px, py in m["dots"]:  # each dot on its curve, where plotly would put the point
            assert abs(cx - px) < 0.01 and abs(cy - py) < 0.5, m["dots"]
    # The chart was not rebuilt: the same plotly element, whose figure still says where the marker was drawn.
    assert pg.evaluate("() => window.__chart === document.querySelector('.st-key-closed_form_alpha_bars .js-plotly-plot')")
    assert_no_exception(pg)
    context.close()


def test_a_chart_whose_data_change_is_updated_in_place(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    open_page(pg, app_url, "Gaussian", "en")
    slider = pg.locator(".st-key-gaussian_sigma input[type=range]")
    slider.wait_for(timeout=60000)
    pg.wait_for_selector(".st-key-gaussian_fig_1d .js-plotly-plot .xtick", state="attached", timeout=60000)
    wait_idle(pg)
    pg.wait_for_timeout(500)
    ticks = "() => [...document.querySelectorAll('.st-key-gaussian_fig_1d .xtick text')].map(t => t.textContent).join(' ')"
    pg.evaluate("() => { window.__chart = document.querySelector('.st-key-gaussian_fig_1d .js-plotly-plot'); }")
    before = pg.evaluate(ticks)
    for _ in range(30):  # sigma 1 -> 2.5: the window mu +- 4.5 sigma outgrows [-4, 4]
        slider.press("ArrowRight")
    wait_idle(pg)
    pg.wait_for_function(f"() => ({ticks})() !== {before!r}", timeout=30000)
    pg.wait_for_timeout(500)
    fl = pg.evaluate("""() => { const gd = document.querySelector('.st-key-gaussian_fig_1d .js-plotly-plot');
        const xa = gd._fullLayout.xaxis; return {range: xa.range, vals: xa.tickvals, text: xa.ticktext,
        template: !!gd.layout.template && !!gd.layout.template.layout, same: gd === window.__chart}; }""")
    sigma = 2.5
    # Drawn in z = x / sigma: the range is +-4.5 (x = +-11.25) and each tick sits at its value / sigma.
    assert abs(fl["range"][0] + 4.5) < 1e-9 and abs(fl["range"][1] - 4.5) < 1e-9
    for v, text in zip(fl["vals"], fl["text"]):
        assert abs(v * sigma - float(text.replace("−", "-"))) < 1e-9
    assert fl["same"] and fl["template"]  # updated in place, Streamlit's theme kept
    assert_no_exception(pg)
    context.close()
