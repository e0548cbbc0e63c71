"""Page 2: the forward Markov chain q(x_t | x_{t-1}) stepped on a picture; its marginal against the closed form."""

from ui.sidebar import sidebar, current_seed, current_device
from ui.exercises import check_yourself

import numpy as np
import streamlit as st
import torch

from diffusion_core.process.chain import pixel_chains, q_chain
from diffusion_core.process.gaussian import normal_pdf, sample_stats
from diffusion_core.data.images import image_to_tensor, tensor_to_image
from diffusion_core.process.marginals import marginal_curves
from diffusion_core.data.samples import list_sample_images, load_sample_image
from diffusion_core.process.schedules import SCHEDULE_KINDS, Schedule, make_schedule
from ui import charts
from ui.follow import follow_slider, show_in_place
from ui.i18n import Translator

tr = sidebar("forward_chain")

T_OPTIONS = (25, 50, 100, 200, 500, 1000, 2000, 4000)
PHOTO_SIZE = 96  # longest side of a photo in the chain: T steps must stay fast
N_CHECKPOINTS = 40  # frames kept per chain; any other x_t is at most T/40 steps away
N_CHAINS = 2000  # independent chains of one pixel
N_PATHS = 20  # of which this many are drawn
HIST_RANGE = (-4.5, 4.5)


@st.cache_data(max_entries=16, show_spinner=False)
def picture(name: str) -> np.ndarray:
    return load_sample_image(name, PHOTO_SIZE)


def checkpoint_every(T: int) -> int:
    return -(-T // N_CHECKPOINTS)


@st.cache_data(max_entries=600, show_spinner=False)
def checkpoint(name: str, kind: str, T: int, seed: int, device: str, k: int) -> torch.Tensor:
    """x_t at t = k * every, computed from the previous checkpoint (so each step runs once)."""
    if k == 0:
        return image_to_tensor(picture(name)).to(device)
    every = checkpoint_every(T)
    previous = checkpoint(name, kind, T, seed, device, k - 1)
    return q_chain(previous, (k - 1) * every, k * every, make_schedule(kind, T), seed)


def frame(name: str, kind: str, T: int, seed: int, device: str, t: int) -> torch.Tensor:
    """x_t of the chain, resumed from the nearest checkpoint at or before t."""
    every = checkpoint_every(T)
    k = t // every
    return q_chain(checkpoint(name, kind, T, seed, device, k), k * every, t, schedule_of(kind, T), seed)


@st.cache_resource(max_entries=3, show_spinner=False)
def chains_of_pixel(x0: float, kind: str, T: int, seed: int) -> torch.Tensor:
    """[T + 1, N_CHAINS] values of one pixel in independent chains (read only: shared, not copied)."""
    return pixel_chains(x0, make_schedule(kind, T), N_CHAINS, torch.Generator().manual_seed(seed))


# Computed once for every student at the same settings, seed and t (read-only: st.cache_resource, no copy).
@st.cache_resource(max_entries=16, show_spinner=False)
def schedule_of(kind: str, T: int) -> Schedule:
    return make_schedule(kind, T)


@st.cache_resource(max_entries=128, show_spinner=False)  # a photo's PNG is a few hundred kB
def picture_at(name: str, kind: str, T: int, seed: int, device: str, t: int, lang: str):
    """x_t of the chain as a PNG, the histogram of its pixels against N(0, 1), and their statistics."""
    tr = Translator(lang)
    x_t = frame(name, kind, T, seed, device, t)
    values = x_t.detach().cpu().double().numpy()
    image = tensor_to_image(x_t)
    grid = np.linspace(*HIST_RANGE, 401)
    fig = charts.histogram_density_figure(
        values.ravel(), grid, normal_pdf(grid), tr("forward_chain.pixels_axis"), tr("forward_chain.density_axis"),
        hist_name=tr("forward_chain.hist_name"), density_name=tr("forward_chain.std_normal"),
        bins=60, hist_range=HIST_RANGE, x_range=HIST_RANGE, height=340,
    )
    return charts.png_bytes(image), fig, sample_stats(values.ravel())


@st.cache_resource(max_entries=32, show_spinner=False)
def schedule_figures(kind: str, T: int, lang: str):
    """beta_t (log scale) and sqrt(abar_t) against t, with the marker at t = 0, where the slider starts:
    the same figures at every t, whose marker moves in the browser (ui/follow.py)."""
    tr = Translator(lang)
    schedule = schedule_of(kind, T)
    ts = np.arange(T + 1)
    idx = charts.downsample_for_plot(ts)
    t = 0
    idx_steps = idx[idx >= 1]  # t = 0 is not a step: there is no beta_0
    beta = charts.curves_figure(
        ts[idx_steps], {tr("forward_chain.beta_name"): schedule.betas.numpy()[idx_steps]},
        tr("schedule.t_axis"), tr("forward_chain.beta_axis"), marker_x=max(t, 1), log_y=True,
        marker_label=tr("forward_chain.current_t", t=t), title=tr("forward_chain.beta_title"), height=280,
    )
    abar = charts.curves_figure(
        ts[idx], {tr("forward_chain.abar_name"): schedule.sqrt_alpha_bars.numpy()[idx]},
        tr("schedule.t_axis"), tr("forward_chain.abar_axis"), marker_x=t,
        marker_label=tr("forward_chain.current_t", t=t), title=tr("forward_chain.abar_title"), height=280,
    )
    return beta, abar


@st.cache_resource(max_entries=128, show_spinner=False)
def marginal_figures(x0_pixel: float, kind: str, T: int, seed: int, t: int, lang: str):
    """The paths of one pixel with the closed form's band, and (t >= 1) the histogram of the chains at t
    against the closed form; the chains' values at t."""
    tr = Translator(lang)
    schedule = schedule_of(kind, T)
    chains = chains_of_pixel(x0_pixel, kind, T, seed)
    mean_curve, std_curve = marginal_curves(x0_pixel, schedule)
    ts = np.arange(T + 1)
    few = charts.downsample_for_plot(ts, 400)
    paths = charts.paths_figure(
        ts[few], chains[few, :N_PATHS].double().numpy(), mean_curve[few], 2 * std_curve[few],
        tr("schedule.t_axis"), tr("forward_chain.chain_value_axis"),
        paths_name=tr("forward_chain.paths_name"), band_name=tr("forward_chain.band_name"),
        center_name=tr("forward_chain.center_name"), marker_x=t, title=tr("forward_chain.paths_title"), height=380,
    )
    mean_t, sd_t = float(mean_curve[t]), float(std_curve[t])
    samples = chains[t].double().numpy()
    hist = None
    if t >= 1:
        hist_range = (mean_t - 4.5 * sd_t, mean_t + 4.5 * sd_t)
        grid = np.linspace(*hist_range, 401)
        hist = charts.histogram_density_figure(
            samples, grid, normal_pdf(grid, mean_t, sd_t), tr("forward_chain.chain_value_axis"),
            tr("forward_chain.density_axis"), hist_name=tr("forward_chain.chains_hist", n=N_CHAINS),
            density_name=tr("forward_chain.closed_form_name"), bins=50, hist_range=hist_range,
            title=tr("forward_chain.hist_title", t=t), height=380,
        )
    return paths, hist, mean_t, sd_t, sample_stats(samples)



def advance(steps: int) -> None:
    T = st.session_state["forward_chain_T"]
    st.session_state["forward_chain_t"] = 0 if steps == 0 else min(T, st.session_state["forward_chain_t"] + steps)


st.title(tr("forward_chain.title"))
st.markdown(tr("forward_chain.intro"))
st.latex(r"\begin{aligned}q(x_{1:T} \mid x_0) &= \prod_{t=1}^{T} q(x_t \mid x_{t-1}),\\ "
         r"q(x_t \mid x_{t-1}) &= \mathcal{N}\!\left(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t \mathbf{I}\right)\end{aligned}")
st.latex(r"\begin{aligned}\Longleftrightarrow\quad x_t &= \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon_t,\\ "
         r"\varepsilon_t &\sim \mathcal{N}(\mathbf{0}, \mathbf{I})\end{aligned}")
st.markdown(tr("forward_chain.why"))
st.markdown(tr("forward_chain.try_this"))

c1, c2, c3 = st.columns([2, 1, 2])
name = c1.selectbox(tr("samples.label"), list_sample_images(), index=7, key="forward_chain_image",
                    format_func=lambda v: tr(f"samples.{v}"), help=tr("samples.help"))
kind = c2.radio(tr("schedule.label"), SCHEDULE_KINDS, key="forward_chain_kind",
                format_func=lambda v: tr(f"schedule.{v}"), help=tr("schedule.help"))
T = c3.select_slider(tr("schedule.T_label"), T_OPTIONS, value=1000, key="forward_chain_T", help=tr("schedule.T_help"))

seed, device = current_seed(), str(current_device())

st.header(tr("forward_chain.chain_title"))


# The step t, its buttons and everything that t, the pixel's row, column and channel change: a move of
# one of them reruns only this (the picture first), not the formulas above.
@st.fragment
def chain_at_t(name: str, kind: str, T: int, seed: int, device: str) -> None:
    schedule = schedule_of(kind, T)
    # The slider's value lives in session state (the step buttons move it); keep it inside 0..T when T shrinks.
    st.session_state["forward_chain_t"] = min(st.session_state.get("forward_chain_t", 0), T)
    t = st.slider(tr("forward_chain.t_label"), 0, T, key="forward_chain_t", help=tr("forward_chain.t_help"))
    c1, c2, c3, _ = st.columns([1, 1, 1, 3])
    c1.button(tr("forward_chain.step_1"), key="forward_chain_step_1", on_click=advance, args=(1,),
              icon=":material/skip_next:", help=tr("forward_chain.step_help"), disabled=t >= T, width="stretch")
    c2.button(tr("forward_chain.step_10"), key="forward_chain_step_10", on_click=advance, args=(10,),
              icon=":material/fast_forward:", help=tr("forward_chain.step_help"), disabled=t >= T, width="stretch")
    c3.button(tr("forward_chain.reset"), key="forward_chain_reset", on_click=advance, args=(0,),
              icon=":material/restart_alt:", help=tr("forward_chain.reset_help"), disabled=t == 0, width="stretch")

    png, hist, stats = picture_at(name, kind, T, seed, device, t, tr.lang)
    if t >= 1:
        c1, c2 = st.columns([1, 3], vertical_alignment="center")
        c1.markdown(tr("forward_chain.step_now", t=t))
        with c2:
            st.latex(rf"\begin{{aligned}}\beta_{{{t}}} &= {float(schedule.betas[t]):.5f}\\ x_{{{t}}} &= "
                     rf"{float(schedule.alphas[t].sqrt()):.5f}\,x_{{{t - 1}}} + {float(schedule.betas[t].sqrt()):.5f}\,\varepsilon_{{{t}}}\end{{aligned}}")
    else:
        st.info(tr("forward_chain.at_t0"), icon=":material/image:")

    col_img, col_hist = st.columns([2, 3])
    with col_img:
        charts.show_png(png, tr("forward_chain.image_caption", t=t, T=T))
        pic = picture(name)
        if pic.ndim == 3:
            st.caption(tr("forward_chain.working_size", w=pic.shape[1], h=pic.shape[0]))
    with col_hist:
        show_in_place(st, picture_at(name, kind, T, seed, device, 0, tr.lang)[1], "forward_chain_hist")
        st.caption(tr("forward_chain.pixel_stats", mean=stats.mean, std=stats.std))

    beta, abar = schedule_figures(kind, T, tr.lang)
    c1, c2 = st.columns(2)
    c1.plotly_chart(beta, key="forward_chain_beta")
    c2.plotly_chart(abar, key="forward_chain_abar")

    # ------------------------------------------------------------- many chains of one pixel
    st.header(tr("forward_chain.marginal_title"))
    st.markdown(tr("forward_chain.marginal_intro", n=N_CHAINS))
    st.latex(r"\begin{aligned}q(x_t \mid x_0) &= \mathcal{N}\!\left(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t)\mathbf{I}\right),\\"
             r"\bar\alpha_t &= \prod_{s=1}^{t} (1-\beta_s)\end{aligned}")

    h, w = pic.shape[:2]
    brightest = np.unravel_index(np.argmax(pic if pic.ndim == 2 else pic[..., 0]), (h, w))  # a pixel of the drawing
    for key, default, size in (("forward_chain_row", brightest[0], h), ("forward_chain_col", brightest[1], w)):
        st.session_state[key] = min(int(st.session_state.get(key, default)), size - 1)  # another picture may be smaller
    c1, c2, c3 = st.columns(3)
    row = c1.slider(tr("forward_chain.pixel_row"), 0, h - 1, key="forward_chain_row")
    col = c2.slider(tr("forward_chain.pixel_col"), 0, w - 1, key="forward_chain_col")
    channel = 0
    if pic.ndim == 3:
        channel = c3.radio(tr("forward_chain.pixel_channel"), (0, 1, 2), key="forward_chain_channel", horizontal=True,
                           format_func=lambda v: tr(f"forward_chain.channel_{v}"))
    x0_pixel = float(image_to_tensor(pic)[0, channel, row, col])
    st.markdown(tr("forward_chain.pixel_value", x0=x0_pixel))

    paths, marginal, mean_t, sd_t, s = marginal_figures(x0_pixel, kind, T, seed, t, tr.lang)
    paths0, marginal1, *_ = marginal_figures(x0_pixel, kind, T, seed, 1, tr.lang)  # what the browser updates
    col_paths, col_check = st.columns(2)
    with col_paths:
        st.plotly_chart(paths0, key="forward_chain_paths")
    with col_check:
        if t == 0:
            st.info(tr("forward_chain.all_at_x0", n=N_CHAINS, x0=x0_pixel), icon=":material/info:")
        else:
            show_in_place(st, marginal1, "forward_chain_marginal")
    moving = {"forward_chain_hist": hist} | ({"forward_chain_marginal": marginal} if t >= 1 else {})
    follow_slider("forward_chain_t", charts=["forward_chain_beta", "forward_chain_abar", "forward_chain_paths"],
                  figures=moving, value=t, label=tr("forward_chain.current_t", t="{v}"))

    if t >= 1:
        var_t = sd_t**2
        q, f, sc, se, z = (tr(f"forward_chain.{k}") for k in ("quantity_col", "formula_col", "sample_col", "se_col", "z_col"))
        st.table({
            q: [tr("forward_chain.mean_row"), tr("forward_chain.var_row")],
            f: [rf"$\sqrt{{\bar\alpha_t}}\,x_0$ = {mean_t:.5g}", rf"$1 - \bar\alpha_t$ = {var_t:.5g}"],
            sc: [f"{s.mean:.5g}", f"{s.variance:.5g}"],
            se: [f"{s.mean_se:.3g}", f"{s.variance_se:.3g}"],
            z: [f"{s.mean_z(mean_t):+.2f}", f"{s.variance_z(var_t):+.2f}"],
        })
        st.caption(tr("forward_chain.se_note"))


chain_at_t(name, kind, T, seed, device)

check_yourself(tr, "forward_chain")
