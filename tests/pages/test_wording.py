"""What a student reads, across pages: no number is ever shown with a comma between its thousands (a
Vietnamese reader takes "1,000" for one), in any text, formula, table cell, caption, widget or chart; and
the numbers the docstring of the scaled linear schedule states."""

from __future__ import annotations

import json
import math
import re

import pytest
from google.protobuf.json_format import MessageToDict

from tests.conftest import LANGS, assert_clean, run_page

# A digit, a comma, then exactly three digits: "1,000", "12,345.6" (but not "0.5, 1", "(0.123,0.4)" or "10 000").
THOUSANDS_COMMA = re.compile(r"\d,\d{3}(?!\d)")
# Proto fields that hold no student-visible text: ids, media URLs, chart specs and table data (checked apart).
SKIPPED_FIELDS = {"id", "formId", "url", "src", "spec", "data", "arrowData", "styles", "type", "fragmentId",
                  "jsContent", "cssContent"}


def thousands_commas(text: str) -> list[str]:
    return THOUSANDS_COMMA.findall(text)


def _strings(value, field: str | None = None):
    if field in SKIPPED_FIELDS:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, field)
    elif isinstance(value, str):
        yield field, value


def _chart_strings(value):
    """Every string of a plotly figure (titles, axis titles, legend names, hover templates): numbers in its
    data arrays are formatted by plotly itself, with the figure's ``separators``."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _chart_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _chart_strings(item)
    elif isinstance(value, str):
        yield value


def _figure_texts(figure: dict) -> list[str]:
    """The strings a plotly figure shows, after checking that its separators group no thousands."""
    # plotly's default separators ".," would print 12345 as "12,345": the page's charts say otherwise.
    separators = figure.get("layout", {}).get("separators", ".,")
    assert separators[0] == "." and separators[1:2] != ",", separators
    return list(_chart_strings(figure.get("layout", {}))) + [
        s for trace in figure.get("data", []) for key in ("name", "hovertemplate", "text")
        if isinstance(trace.get(key), str) for s in [trace[key]]]


def _follow_texts(payload: str) -> list[str]:
    """What ui.follow's component shows: its marker label, the labels per position and the figures it applies
    in the browser (its JSON is data, not text: only these strings reach the page)."""
    data = json.loads(payload)
    if not isinstance(data, dict):
        return []
    texts = [data["label"]] if isinstance(data.get("label"), str) else []
    texts += [str(t) for t in data.get("texts") or []]
    for figure in (data.get("figures") or {}).values():
        if "layout" in figure:  # a whole figure; a figure of data only keeps the shown chart's separators
            texts += _figure_texts(figure)
        else:
            texts += list(_chart_strings(figure.get("layout", {})))
    return texts


def visible_texts(at) -> list[str]:
    """Every string the page shows: Markdown, LaTeX, titles, captions, alerts, metrics, widget labels,
    help texts, options and formats, image captions, table headers and cells, chart text and the labels
    ui.follow's markers carry."""
    texts = []
    for node in at._tree:
        proto = getattr(node, "proto", None)
        if proto is None or not hasattr(proto, "DESCRIPTOR"):
            continue
        for field, text in _strings(MessageToDict(proto)):
            if field == "format":  # a slider's or number input's printf format: no grouping flag
                assert "," not in text and "'" not in text, text
            if field == "json":  # a custom component's data (ui.follow)
                texts += _follow_texts(text)
                continue
            texts.append(text)
    for table in [*at.table, *at.dataframe]:
        frame = table.value
        texts += [str(c) for c in frame.columns] + [str(v) for v in frame.to_numpy().ravel()]
    for chart in at.get("plotly_chart"):
        texts += _figure_texts(json.loads(chart.proto.spec))
    return texts


def assert_no_thousands_comma(at) -> None:
    texts = visible_texts(at)
    assert texts, "nothing was read from the page"
    bad = [(m, t[:120]) for t in texts for m in thousands_commas(t)]
    assert not bad, bad


def test_the_scanner_finds_a_thousands_comma():
    """The check can fail: it flags every way a comma may split thousands, and nothing else."""
    for bad in ("1,000", "T = 4,000", "12,345.6", "100,000 mẫu", "$x = 1,000$", "1,000,000"):
        assert thousands_commas(bad), bad
    for good in ("1000", "10 000", "0.5, 1", "(0.123, 0.456)", "t = 25, 50, 100", "2.4e-07", "x_{t-1}", "1,5"):
        assert not thousands_commas(good), good


def test_the_page_scan_fails_on_a_comma_it_is_given(monkeypatch):
    """The page scan itself, against a page made to show "1,000": it must fail."""
    import ui.i18n

    at = run_page("app.py", "en")
    assert_no_thousands_comma(at)
    table = dict(ui.i18n.load_table("en"))
    table["home.notation"] = "T = 1,000 steps."
    monkeypatch.setattr(ui.i18n.Translator, "__init__", lambda self, lang: (setattr(self, "lang", lang),
                                                                            setattr(self, "table", table))[0])
    at.run()
    with pytest.raises(AssertionError, match="1,000"):
        assert_no_thousands_comma(at)


# Each page at its defaults, and where its numbers are largest (T = 4000, 100 000 samples, t = 1 where SNR_t
# is about 10^4). The reverse page is scanned before a run here; test_page_reverse runs it.
PAGES = [
    ("app.py", {}),
    ("pages/1_Gaussian.py", {}),
    ("pages/1_Gaussian.py", dict(gaussian_n=100_000, gaussian_sigma=5.0, gaussian_show_product=True)),
    ("pages/2_Forward_chain.py", {}),
    ("pages/2_Forward_chain.py", dict(forward_chain_T=4000, forward_chain_t=4000)),
    ("pages/3_Closed_form.py", {}),
    ("pages/3_Closed_form.py", dict(closed_form_T=4000, closed_form_t=1)),
    ("pages/4_Your_image.py", dict(your_image_source="sample")),
    ("pages/5_Posterior.py", {}),
    ("pages/5_Posterior.py", dict(posterior_t=1)),
    ("pages/6_Bound.py", {}),
    ("pages/6_Bound.py", dict(bound_t=1000)),
    ("pages/7_Reverse_process.py", {}),
    ("pages/8_How_many_steps.py", {}),
    ("pages/9_Playground_2D.py", {}),
    ("pages/10_Flow_matching.py", dict(flow_steps=300, flow_width=32)),
    ("pages/13_Latent_diffusion.py", dict(latent_2d_steps=50, latent_steps=50)),
    ("pages/12_Few_steps.py", {}),
    ("pages/11_Continuous_time.py", {}),
    ("pages/11_Continuous_time.py", dict(continuous_t=0.01, continuous_tol=0.01, continuous_path_T=1000)),
]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page, state", PAGES, ids=[f"{p.split('/')[-1]}-{i}" for i, (p, _) in enumerate(PAGES)])
def test_no_number_has_a_thousands_comma(page, state, lang):
    at = run_page(page, lang, **state)
    assert_clean(at)
    assert_no_thousands_comma(at)


def test_the_scaled_linear_schedule_keeps_what_its_docstring_says():
    """schedules.linear_betas: T * beta_t runs from 0.1 to 20 and the betas sum to 10.05 for every T;
    abar_T stays below exp(-10.05) and has the values the docstring quotes."""
    from diffusion_core.process.schedules import T_MAX, T_MIN, make_schedule

    quoted = {25: 2.4e-7, 100: 2.0e-5, 1000: 4.0e-5, 4000: 4.2e-5}
    for T in (T_MIN, 50, 100, 1000, T_MAX):
        s = make_schedule("linear", T)
        assert float(T * s.betas[1]) == pytest.approx(0.1) and float(T * s.betas[T]) == pytest.approx(20.0)
        assert float(s.betas.sum()) == pytest.approx(10.05)
        assert float(s.alpha_bars[T]) < math.exp(-10.05)
        if T in quoted:
            assert float(s.alpha_bars[T]) == pytest.approx(quoted[T], rel=0.05)


def test_the_guidance_formula_is_shown_only_when_a_label_is_asked_for():
    """Ho & Salimans' eq. 6 (with s = 1 + w) stands beside the guided prediction; when every label is
    "any" there is nothing to guide towards, so neither the formula nor its source is shown."""
    from tests.pages.test_page_reverse import TABLES, LinearEps, settings
    from ui.reverse.view import formula_latex

    model = LinearEps()
    for labels, guided in (((1, -1), True), ((-1, -1), False)):
        run = rr_run(model, settings(labels=labels, steps=2))
        for lang in LANGS:
            latex = formula_latex(TABLES[lang], run, run.latest, model.schedule)
            cite = TABLES[lang]("reverse.cite_guidance").replace("&", r"\&")
            assert (cite in latex) is guided and (r"s\,\big(" in latex) is guided
            assert "1 + w" in cite and r"\varepsilon_\theta(x_t, \varnothing)" in latex


def rr_run(model, chosen):
    from ui.reverse import run as rr

    run = rr.PlayerRun()
    run.command("play", chosen)
    run.start(model)
    run.advance()
    return run


@pytest.mark.parametrize("lang", LANGS)
def test_a_ddim_run_says_how_song_et_al_write_alpha_bar(lang):
    """Under the DDIM formulas, one line says that Song et al. (2021) write alpha_t for our abar_t; a DDPM
    run, whose formulas are Ho et al.'s, has no such line. The finished run's numbers have no comma either."""
    from tests.pages.test_page_reverse import PAGE, TABLES, small
    from ui.reverse import run as rr

    note = TABLES[lang]("reverse.ddim_notation")
    for sampler, shown in (("ddim", True), ("ddpm", False)):
        at = run_page(PAGE, lang)
        at.radio(key=rr.KEY_SAMPLER).set_value(sampler)
        at = small(at, n=2, steps=2)
        at.button(key="reverse_play").click().run()
        assert_clean(at)
        assert (note in [c.value for c in at.caption]) is shown
        assert_no_thousands_comma(at)
