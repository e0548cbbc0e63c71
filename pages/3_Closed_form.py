"""Page 3: the closed form x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, linear against cosine schedule."""

import numpy as np
import streamlit as st
import torch

from diffusion_core.data.images import image_to_tensor, make_grid
from diffusion_core.data.samples import list_sample_images, load_sample_image
from diffusion_core.process.forward import q_sample, q_sample_weights
from diffusion_core.process.marginals import xt_pixel_moments
from diffusion_core.process.schedules import SCHEDULE_KINDS, Schedule, make_schedule
from ui import charts
from ui.charts import fmt
from ui.exercises import check_yourself
from ui.follow import follow_slider
from ui.i18n import Translator
from ui.mix import MixedPicture, encode, mixed_pictures
from ui.sidebar import current_device, current_seed, sidebar

tr = sidebar("closed_form")

T_OPTIONS = (25, 50, 100, 200, 500, 1000, 2000, 4000)
STRIP_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)  # of T, for the film strip
STRIP_SIZE = 64  # photos are shrunk to this for the strip
CURVES = (  # (title key, Schedule attribute, y-axis symbol (plotly: plain text), whether t = 0 is left out)
    ("abar_title", "alpha_bars", "ᾱₜ", False),
    ("sqrt_abar_title", "sqrt_alpha_bars", "√ᾱₜ", False),
    ("sqrt_one_minus_title", "sqrt_one_minus_alpha_bars", "√(1 − ᾱₜ)", False),
    ("log_snr_title", "log_snr", "log SNRₜ", True),  # +inf at t = 0
)

# Everything below that depends only on the settings, the seed and t is cached for every student at once
# (read-only results: st.cache_resource hands out the same object, no copy).


@st.cache_data(max_entries=32, show_spinner=False)
def picture(name: str, max_size: int | None = None) -> np.ndarray:
    return load_sample_image(name, max_size)


@st.cache_resource(max_entries=16, show_spinner=False)
def schedules_of(T: int) -> dict[str, Schedule]:
    return {kind: make_schedule(kind, T) for kind in SCHEDULE_KINDS}


@st.cache_resource(max_entries=16, show_spinner=False)
def x0_and_noise(name: str, max_size: int | None, seed: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """x_0 of the picture and the one draw of eps (from the seed) that every t reuses."""
    x0 = image_to_tensor(picture(name, max_size)).to(device)
    return x0, torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(device)


@st.cache_resource(max_entries=96, show_spinner=False)
def measured(name: str, T: int, t: int, seed: int, device: str) -> dict[str, tuple[float, float]]:
    """The mean and the variance of the pixel values of x_t under each schedule (Ho et al. 2020, eq. 4)."""
    x0, eps = x0_and_noise(name, None, seed, device)
    out = {}
    for kind, s in schedules_of(T).items():
        values = q_sample(x0, t, eps, s).detach().double().cpu().flatten()
        out[kind] = float(values.mean()), float(values.var(unbiased=True))
    return out


@st.cache_resource(max_entries=32, show_spinner=False)
def pictures_at_every_t(name: str, T: int, seed: int, device: str, lang: str) -> bytes:
    """x_t for t = 1..T under both schedules, as x_0, eps and the weights (sqrt(abar_t), sqrt(1 - abar_t)) of
    eq. 4, for the browser to draw at every step (ui/mix.py): sent once per settings, not a picture a step."""
    tr = Translator(lang)
    x0, eps = x0_and_noise(name, None, seed, device)
    bases = [v[0].permute(1, 2, 0).double().cpu().numpy() for v in (x0, eps)]
    pictures = [MixedPicture(q_sample_weights(s).numpy(),
                             tr("closed_form.mix_caption", t="{v}", t_sub="{v_sub}", a="{w0}", b="{w1}",
                                schedule=tr(f"closed_form.in_{kind}")))
                for kind, s in schedules_of(T).items()]
    return encode(bases, pictures, slider="closed_form_t", minimum=1)


@st.cache_resource(max_entries=32, show_spinner=False)
def curve_figures(T: int, lang: str) -> list:
    """The four curves of both schedules, one set per T and language: a step of t sends them unchanged and
    the marker moves in the browser (ui/follow.py), drawn here at t = T // 4, where the slider starts."""
    tr = Translator(lang)
    ts = np.arange(T + 1)
    idx = charts.downsample_for_plot(ts)
    t = T // 4
    figs = []
    for title, attr, symbol, skip_t0 in CURVES:
        sel = idx[idx >= 1] if skip_t0 else idx
        figs.append(charts.curves_figure(
            ts[sel], {tr(f"schedule.{kind}"): getattr(s, attr).numpy()[sel] for kind, s in schedules_of(T).items()},
            tr("closed_form.t_axis"), symbol, marker_x=t, marker_label=f"t = {t}",
            title=tr(f"closed_form.{title}"), height=300,
        ))
    return figs


@st.cache_resource(max_entries=32, show_spinner=False)
def strip_png(name: str, T: int, seed: int, device: str) -> tuple[list[int], bytes]:
    """The film strip: x_t at a few fractions of T, both schedules, the same noise."""
    strip_ts = sorted({max(1, round(f * T)) for f in STRIP_FRACTIONS})
    small, small_eps = x0_and_noise(name, STRIP_SIZE, seed, device)
    frames = [q_sample(small, k, small_eps, s) for s in schedules_of(T).values() for k in strip_ts]
    grid = make_grid(torch.cat(frames), ncols=len(strip_ts))
    return strip_ts, charts.png_bytes(grid, 240)


st.title(tr("closed_form.title"))
st.markdown(tr("closed_form.intro"))
st.latex(r"\begin{aligned}q(x_t \mid x_0) &= \mathcal{N}\!\left(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\mathbf{I}\right)\\"
         r"\Longleftrightarrow\quad x_t &= \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\\"
         r"\varepsilon &\sim \mathcal{N}(\mathbf{0}, \mathbf{I})\end{aligned}")
st.latex(r"\begin{gathered}\bar\alpha_t = \prod_{s=1}^{t} \alpha_s,\qquad \alpha_s = 1 - \beta_s,\\ "
         r"\mathrm{SNR}_t = \frac{\bar\alpha_t}{1-\bar\alpha_t}\end{gathered}")
st.markdown(tr("closed_form.snr_intro"))
st.markdown(tr("closed_form.try_this"))

c1, c2 = st.columns([1, 1])
name = c1.selectbox(tr("samples.label"), list_sample_images(), index=3, key="closed_form_image",
                    format_func=lambda v: tr(f"samples.{v}"), help=tr("samples.help"))
T = c2.select_slider(tr("schedule.T_label"), T_OPTIONS, value=1000, key="closed_form_T", help=tr("schedule.T_help"))
seed, device = current_seed(), str(current_device())


# The t slider and everything it changes: a step of t reruns only this (the picture first), not the
# formulas above nor the film strip below.
@st.fragment
def at_t(name: str, T: int, seed: int, device: str) -> None:
    # The slider's value lives in session state; start a quarter of the way, keep it inside 1..T when T shrinks.
    st.session_state["closed_form_t"] = min(st.session_state.get("closed_form_t", T // 4), T)
    t = st.slider(tr("closed_form.t_label"), 1, T, key="closed_form_t", help=tr("closed_form.t_help"))
    schedules = schedules_of(T)
    x0, _ = x0_and_noise(name, None, seed, device)
    moments = measured(name, T, t, seed, device)

    st.caption(tr("closed_form.same_noise"))
    mixed_pictures(pictures_at_every_t(name, T, seed, device, tr.lang), key="closed_form_pictures")

    st.subheader(tr("closed_form.numbers_title", t=t))
    rows = {  # st.table cells are Markdown: the names are inline LaTeX
        r"$\bar\alpha_t$": lambda s: s.alpha_bars[t],
        r"$\sqrt{\bar\alpha_t}$": lambda s: s.sqrt_alpha_bars[t],
        r"$\sqrt{1-\bar\alpha_t}$": lambda s: s.sqrt_one_minus_alpha_bars[t],
        r"$\mathrm{SNR}_t = \bar\alpha_t/(1-\bar\alpha_t)$": lambda s: s.snr[t],
        r"$\log \mathrm{SNR}_t$": lambda s: s.log_snr[t],
    }
    table = {tr("closed_form.quantity_col"): list(rows)}
    for kind, s in schedules.items():
        table[tr(f"schedule.{kind}")] = [fmt(float(get(s))) for get in rows.values()]
    st.table(table)

    st.subheader(tr("closed_form.check_title"))
    st.markdown(tr("closed_form.check_intro"))
    check = {k: [] for k in ("quantity_col", "predicted_col", "measured_col", "se_col", "z_col")}
    for kind, s in schedules.items():
        pred = xt_pixel_moments(x0, t, s)
        measured_mean, measured_var = moments[kind]
        sched = tr(f"closed_form.in_{kind}")
        for row, p, m, se in (("pixel_mean_row", pred.mean, measured_mean, pred.mean_se),
                              ("pixel_var_row", pred.variance, measured_var, pred.variance_se)):
            check["quantity_col"].append(tr(f"closed_form.{row}", schedule=sched))
            check["predicted_col"].append(f"{p:.5f}")
            check["measured_col"].append(f"{m:.5f}")
            check["se_col"].append(f"{se:.2g}")
            check["z_col"].append(f"{(m - p) / se:+.2f}" if se > 0 else "—")
    st.table({tr(f"closed_form.{k}"): v for k, v in check.items()})


at_t(name, T, seed, device)

# The curves depend only on T: outside the fragment, a step of t does not send them again (nor their columns),
# and their markers follow the slider in the browser (ui/follow.py).
st.subheader(tr("closed_form.curves_title"))
figs = curve_figures(T, tr.lang)
for pair in (range(2), range(2, 4)):
    for col, i in zip(st.columns(2), pair):
        col.plotly_chart(figs[i], key=f"closed_form_{CURVES[i][1]}")
follow_slider("closed_form_t", charts=[f"closed_form_{c[1]}" for c in CURVES],
              value=st.session_state["closed_form_t"], minimum=1)
st.caption(tr("closed_form.log_snr_note"))

st.subheader(tr("closed_form.strip_title"))
strip_ts, strip = strip_png(name, T, seed, device)
st.image(strip, output_format="PNG", caption=tr("closed_form.strip_caption", ts=", ".join(map(str, strip_ts))))

check_yourself(tr, "closed_form")
