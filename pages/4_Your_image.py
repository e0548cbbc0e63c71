"""Page 4: upload a picture and watch the forward process (Ho et al. 2020, eq. 4) destroy it."""

from ui.sidebar import sidebar, current_seed, current_device
from ui.exercises import check_yourself

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.process.correlation import correlation_curve, first_t_below, pixel_correlation
from diffusion_core.process.forward import q_mean_variance, q_sample, q_sample_weights
from diffusion_core.process.gaussian import normal_pdf, sample_stats
from diffusion_core.data.images import (
    MAX_UPLOAD_MB,
    MODEL_MAX_SIDE,
    BlankImageError,
    ImageLoadError,
    LoadedImage,
    encode_gif,
    encode_png,
    image_to_tensor,
    loaded_from_array,
    make_grid,
    read_image,
    tensor_to_image,
    to_mnist_digit,
)
from diffusion_core.data.samples import list_sample_images, load_sample_image
from diffusion_core.process.schedules import SCHEDULE_KINDS, make_schedule
from ui import charts
from ui.follow import follow_slider, frozen, show_in_place
from ui.mix import MixedPicture, encode, mixed_pictures
from ui.i18n import Translator
from ui.shared_store import picture_id
from ui.sidebar import APP_DIR

tr = sidebar("your_image")

T = 1000
STRIP_TS = (0, 50, 100, 250, 500, 750, 1000)
PIXEL_DRAWS = 4000
PIXEL_CHOICES = ("brightest", "darkest", "centre")
REVERSE_PAGE = "pages/7_Reverse_process.py"
DEMO_PICTURE = "chelsea"  # what the page shows diffusing until a picture is uploaded
T_DEFAULT = 250  # where the t slider starts: the charts that only follow t are drawn there
VALUE_RANGE = (-4.0, 4.0)  # the histograms' fixed x-axis (an axis that never changes is never redrawn)


@st.cache_data(max_entries=4, show_spinner=False)
def decode_upload(data: bytes) -> LoadedImage:
    """Decode once per file, not on every slider move; refusals are not cached (they raise)."""
    return read_image(data)


# Computed once for every student at the same picture, settings, seed and t (read-only: st.cache_resource
# hands out the same objects). A picture is known by the hash of its pixels (``pid``); the pixels themselves
# travel unhashed (``_pixels``). Entries are bounded: uploads come and go.
@st.cache_resource(max_entries=8, show_spinner=False)  # a photo's x_0 and noise: 1.5 MB
def x0_and_noise(pid: str, _pixels: np.ndarray, seed: int, device: str):
    """x_0 [1, C, H, W] in [-1, 1], the one draw of the noise reused for every t, and the generator's state
    after it (the pixel's draws below continue from there)."""
    generator = torch.Generator().manual_seed(seed)
    x0 = image_to_tensor(_pixels).to(device)
    eps = torch.randn(x0.shape, generator=generator).to(device)
    return x0, eps, generator.get_state()


@st.cache_resource(max_entries=48, show_spinner=False)  # a photo's x_t: 0.2 MB
def forward_at(pid: str, _pixels: np.ndarray, kind: str, t: int, seed: int, device: str, lang: str):
    """x_t in one jump (Ho et al. 2020, eq. 4): its picture (for the download), the histogram of all its
    values against N(0, 1), and its measured correlation with x_0."""
    tr = Translator(lang)
    x0, eps, _ = x0_and_noise(pid, _pixels, seed, device)
    xt = q_sample(x0, t, eps, make_schedule(kind, T))
    grid = np.linspace(*VALUE_RANGE, 201)
    hist = charts.histogram_density_figure(
        xt.cpu().numpy(), grid, normal_pdf(grid), tr("your_image.value_axis"), tr("your_image.density_axis"),
        hist_name=tr("your_image.hist_all_name"), density_name="N(0, 1)", bins=60, hist_range=VALUE_RANGE,
        x_range=VALUE_RANGE, height=320,
    )
    return tensor_to_image(xt), frozen(hist), pixel_correlation(xt, x0)


@st.cache_resource(max_entries=8, show_spinner=False)  # a photo's: 0.4 MB
def pictures_at_every_t(pid: str, _pixels: np.ndarray, kind: str, seed: int, device: str, lang: str) -> bytes:
    """x_t for t = 1..T as x_0, eps and the weights (sqrt(abar_t), sqrt(1 - abar_t)) of eq. 4, for the browser
    to draw at every step (ui/mix.py): sent once per picture and schedule, not a picture a step."""
    x0, eps, _ = x0_and_noise(pid, _pixels, seed, device)
    weights = q_sample_weights(make_schedule(kind, T)).numpy()
    bases = [v[0].permute(1, 2, 0).double().cpu().numpy() for v in (x0, eps)]
    return encode(bases, [MixedPicture(weights, Translator(lang)("your_image.mix_caption", t="{v}"))],
                  slider="your_image_t", minimum=1)


@st.cache_resource(max_entries=8, show_spinner=False)  # 14 pictures each
def strip_of(pid: str, _pixels: np.ndarray, kind: str, seed: int, device: str):
    """x_t at the strip's steps, the same noise: the frames (uint8, enlarged) and their PNGs."""
    x0, eps, _ = x0_and_noise(pid, _pixels, seed, device)
    strip = strip_tensor(x0, eps, make_schedule(kind, T))
    frames = [charts.enlarge(tensor_to_image(x), min_side=128) for x in strip]
    return frames, [charts.png_bytes(f, min_side=96) for f in frames]


def strip_tensor(x0: torch.Tensor, eps: torch.Tensor, schedule) -> torch.Tensor:
    """[len(STRIP_TS), C, H, W]: x_0, then x_t at the other steps of the strip, the same noise."""
    strip_t = torch.tensor(STRIP_TS[1:])
    return torch.cat([x0, q_sample(x0.expand(len(strip_t), -1, -1, -1), strip_t,
                                   eps.expand(len(strip_t), -1, -1, -1), schedule)])


@st.cache_resource(max_entries=64, show_spinner=False)
def pixel_draws(pid: str, _pixels: np.ndarray, which: str, kind: str, t: int, seed: int, device: str, lang: str):
    """PIXEL_DRAWS draws of one pixel's x_t against its closed form (eq. 4): the figure, where the pixel is,
    its x_0, mean and variance, and the draws' statistics."""
    tr = Translator(lang)
    x0, _, state = x0_and_noise(pid, _pixels, seed, device)
    h, w = _pixels.shape[:2]
    if which == "centre":
        row, col, ch = h // 2, w // 2, 0
    else:
        pick = np.argmax if which == "brightest" else np.argmin
        row, col, ch = (int(i) for i in np.unravel_index(pick(_pixels), _pixels.shape))
    schedule = make_schedule(kind, T)
    generator = torch.Generator()
    generator.set_state(state)
    x0_pixel = x0[:, ch, row, col].reshape(1, 1, 1, 1)
    draws = q_sample(x0_pixel.expand(PIXEL_DRAWS, 1, 1, 1), t,
                     torch.randn(PIXEL_DRAWS, 1, 1, 1, generator=generator).to(device), schedule).cpu().numpy().ravel()
    mean, variance = (float(m) for m in q_mean_variance(x0_pixel, t, schedule))  # eq. 4, for this pixel
    grid = np.linspace(*VALUE_RANGE, 201)
    fig = charts.histogram_density_figure(
        draws, grid, normal_pdf(grid, mean, variance**0.5), tr("your_image.value_axis"), tr("your_image.density_axis"),
        hist_name=tr("your_image.pixel_hist_name"), density_name="N(√ᾱₜ x₀, 1 − ᾱₜ)", bins=60,
        hist_range=VALUE_RANGE, x_range=VALUE_RANGE, height=320,
    )
    return frozen(fig), (row, col, ch), float(x0_pixel), mean, variance, sample_stats(draws)


@st.cache_resource(max_entries=16, show_spinner=False)
def correlation_of(pid: str, _pixels: np.ndarray, kind: str, seed: int, device: str):
    """The closed-form correlation curve over every t, and the measured one at the strip's steps."""
    x0, eps, _ = x0_and_noise(pid, _pixels, seed, device)
    schedule = make_schedule(kind, T)
    curve = correlation_curve(x0, schedule)
    measured = {s: pixel_correlation(q_sample(x0, s, eps, schedule), x0) for s in STRIP_TS[1:]}
    return curve, measured


@st.cache_resource(max_entries=16, show_spinner=False)
def correlation_figure(pid: str, _pixels: np.ndarray, kind: str, seed: int, device: str, lang: str) -> go.Figure:
    """The closed-form curve and the measured correlation at the strip's steps, with the marker at the slider's
    default t: the same figure at every t, whose marker moves in the browser (ui/follow.py)."""
    tr = Translator(lang)
    curve, measured = correlation_of(pid, _pixels, kind, seed, device)
    fig = charts.curves_figure(np.arange(T + 1), {tr("your_image.corr_closed"): curve}, tr("schedule.t_axis"),
                               tr("your_image.corr_axis"), marker_x=T_DEFAULT, marker_label=f"t = {T_DEFAULT}",
                               height=340)
    fig.add_trace(go.Scatter(x=list(measured), y=list(measured.values()), mode="markers",
                             name=tr("your_image.corr_empirical"),
                             marker=dict(symbol="x", size=9, color=charts.PALETTE[1])))
    fig.update_yaxes(range=[-0.05, 1.05])
    fig.update_xaxes(range=[-0.01 * T, 1.01 * T])  # room for the measured point at t = T (fixed: charts.fixed_range)
    return frozen(fig)


def show_picture(image: np.ndarray, caption: str, min_side: int = 280) -> None:
    charts.show_image(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image, caption, min_side)


@st.cache_resource(max_entries=8, show_spinner=False)
def picture_png(pid: str, _pixels: np.ndarray) -> bytes:
    """The picture's PNG file, encoded once (the t slider's fragment shows x_0 at every step)."""
    return charts.png_bytes(_pixels)


st.title(tr("your_image.title"))
st.markdown(tr("your_image.intro"))

# ------------------------------------------------------------------ the picture
source = st.radio(tr("your_image.source_label"), ("upload", "sample"), key="your_image_source", horizontal=True,
                  format_func=lambda s: tr(f"your_image.source_{s}"))
if source == "upload":
    # The widget, the server (server.maxUploadSize) and read_image all stop at the same MAX_UPLOAD_MB.
    upload = st.file_uploader(tr("your_image.upload_label"), key="your_image_upload", max_upload_size=MAX_UPLOAD_MB)
    st.caption(tr("your_image.upload_help", limit_mb=MAX_UPLOAD_MB))
    if upload is None:  # not an empty page: a bundled picture diffuses until the student's own arrives
        st.info(tr("your_image.demo_note", name=tr(f"samples.{DEMO_PICTURE}")).strip(), icon=":material/upload:")
        loaded = loaded_from_array(load_sample_image(DEMO_PICTURE))
    else:
        try:
            loaded = decode_upload(upload.getvalue())
        except ImageLoadError as error:
            st.error(tr(f"your_image.error_{error.code}", **error.fields).strip(), icon=":material/broken_image:")
            st.stop()
else:
    name = st.selectbox(tr("samples.label"), list_sample_images(), key="your_image_sample",
                        format_func=lambda n: tr(f"samples.{n}"), help=tr("samples.help"))
    loaded = loaded_from_array(load_sample_image(name))

st.header(tr("your_image.loaded_header"))
h, w, _ = loaded.pixels.shape
col_loaded, col_model = st.columns(2)
with col_loaded:
    show_picture(loaded.display, tr("your_image.as_loaded_caption", width=loaded.size[0], height=loaded.size[1],
                                    format=loaded.format, mode=loaded.mode))
with col_model:
    kind = tr("your_image.grayscale") if loaded.grayscale else tr("your_image.colour")
    show_picture(loaded.pixels, tr("your_image.model_caption", width=w, height=h, kind=kind))
st.markdown(tr("your_image.resize_note", max_side=MODEL_MAX_SIDE))
st.latex(r"x_0 = \frac{p}{127.5} - 1 \in [-1, 1]")
for flag, note in ((loaded.animated, "note_animated"), (loaded.rotated, "note_rotated"),
                   (loaded.transparent, "note_transparent")):
    if flag:
        st.info(tr(f"your_image.{note}"), icon=":material/info:")

# ------------------------------------------------------------------ x_t in one jump
st.header(tr("your_image.forward_header"))
st.markdown(tr("your_image.forward_intro"))
st.latex(r"\begin{aligned}x_t &= \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\\"
         r"\varepsilon &\sim \mathcal{N}(\mathbf{0}, \mathbf{I})\end{aligned}")
pid = picture_id(loaded.pixels)


# The schedule, t and the pixel, and everything they change: a move reruns only this (x_t first), not the
# picture's loading above nor the hand-over to the denoiser below.
@st.fragment
def forward_process(pid: str, pixels: np.ndarray, grayscale: bool, seed: int, device: str) -> None:
    c1, c2 = st.columns([1, 3])
    kind_schedule = c1.radio(tr("schedule.label"), SCHEDULE_KINDS, key="your_image_schedule", help=tr("schedule.help"),
                             format_func=lambda k: tr(f"schedule.{k}"))
    t = c2.slider(tr("your_image.t_label"), 1, T, T_DEFAULT, key="your_image_t", help=tr("your_image.t_help", T=T))
    schedule = make_schedule(kind_schedule, T)
    xt_picture, hist_all, corr_t = forward_at(pid, pixels, kind_schedule, t, seed, device, tr.lang)

    m1, m2, m3 = st.columns(3)
    m1.metric(r"$\sqrt{\bar\alpha_t}$", f"{float(schedule.sqrt_alpha_bars[t]):.4f}", help=tr("your_image.signal_help"))
    m2.metric(r"$\sqrt{1-\bar\alpha_t}$", f"{float(schedule.sqrt_one_minus_alpha_bars[t]):.4f}",
              help=tr("your_image.noise_help"))
    m3.metric(r"$\mathrm{SNR}_t = \bar\alpha_t / (1-\bar\alpha_t)$", f"{float(schedule.snr[t]):.4g}",
              help=tr("your_image.snr_help"))

    col_x0, col_xt = st.columns(2)
    with col_x0:
        charts.show_png(picture_png(pid, pixels), tr("your_image.x0_caption"))
    with col_xt:
        mixed_pictures(pictures_at_every_t(pid, pixels, kind_schedule, seed, device, tr.lang), key="your_image_pictures")
        st.download_button(tr("your_image.download_xt"), data=lambda picture=xt_picture: encode_png(picture),
                           file_name=f"x_t_{t}.png", mime="image/png", key="your_image_download_xt",
                           icon=":material/download:", on_click="ignore")

    # -------------------------------------------------------------- the strip
    st.subheader(tr("your_image.strip_header"))
    st.caption(tr("your_image.strip_note"))
    frames, frame_pngs = strip_of(pid, pixels, kind_schedule, seed, device)
    for col, png, s in zip(st.columns(len(STRIP_TS)), frame_pngs, STRIP_TS):
        with col:
            charts.show_png(png, f"t = {s}")

    def strip_png() -> bytes:  # made when the button is clicked, not on every move
        x0, eps, _ = x0_and_noise(pid, pixels, seed, device)
        return encode_png(make_grid(strip_tensor(x0, eps, schedule), ncols=len(STRIP_TS)))

    with st.container(horizontal=True):
        st.download_button(tr("your_image.download_strip_png"), data=strip_png,
                           file_name="forward_strip.png", mime="image/png", key="your_image_download_strip_png",
                           icon=":material/download:", on_click="ignore")
        st.download_button(tr("your_image.download_strip_gif"), data=lambda pictures=frames: encode_gif(pictures),
                           file_name="forward_process.gif", mime="image/gif", key="your_image_download_strip_gif",
                           icon=":material/animation:", on_click="ignore")

    # -------------------------------------------------------------- histograms
    st.header(tr("your_image.hist_header"))
    col_all, col_pixel = st.columns(2)
    with col_all:
        st.markdown(f"**{tr('your_image.hist_all_title', t=t)}**")
        show_in_place(st, forward_at(pid, pixels, kind_schedule, T_DEFAULT, seed, device, tr.lang)[1], "your_image_hist_all")
        st.caption(tr("your_image.hist_all_note"))
    with col_pixel:
        st.markdown(f"**{tr('your_image.pixel_title', n=PIXEL_DRAWS)}**")
        chart_slot = st.container()
        which = st.selectbox(tr("your_image.pixel_label"), PIXEL_CHOICES, key="your_image_pixel",
                             format_func=lambda p: tr(f"your_image.pixel_{p}"))
        pixel_fig, (row, col, ch), x0_pixel, mean, variance, stats = pixel_draws(
            pid, pixels, which, kind_schedule, t, seed, device, tr.lang)
        show_in_place(chart_slot, pixel_draws(pid, pixels, which, kind_schedule, T_DEFAULT, seed, device, tr.lang)[0],
                      "your_image_hist_pixel")
        where = (tr("your_image.pixel_where", row=row, col=col) if grayscale
                 else tr("your_image.pixel_where_colour", row=row, col=col, channel="RGB"[ch]))
        st.caption(tr("your_image.pixel_note", where=where, x0=x0_pixel, mean=mean, var=variance,
                      sample_mean=stats.mean, sample_var=stats.variance))

    # -------------------------------------------------------------- correlation
    st.header(tr("your_image.corr_header"))
    st.markdown(tr("your_image.corr_intro"))
    st.latex(r"\operatorname{corr}(x_t, x_0) = \frac{\sqrt{\bar\alpha_t}\,\sigma_{x_0}}"
             r"{\sqrt{\bar\alpha_t\,\sigma_{x_0}^2 + 1 - \bar\alpha_t}}")
    curve, _ = correlation_of(pid, pixels, kind_schedule, seed, device)
    flat = bool(np.isnan(curve).all())
    if flat:
        st.info(tr("your_image.corr_flat"), icon=":material/info:")
    else:
        st.plotly_chart(correlation_figure(pid, pixels, kind_schedule, seed, device, tr.lang), key="your_image_corr")
        k1, k2 = st.columns(2)
        k1.metric(tr("your_image.corr_metric_closed", t=t), f"{curve[t]:.4f}")
        k2.metric(tr("your_image.corr_metric_empirical", t=t), f"{corr_t:.4f}")
        never = tr("your_image.corr_never")
        half, tenth = first_t_below(curve, 0.5), first_t_below(curve, 0.1)
        st.markdown(tr("your_image.corr_thresholds", t_half=never if half is None else f"$t = {half}$",
                       t_tenth=never if tenth is None else f"$t = {tenth}$"))
    # The marker of the correlation chart follows t in the browser; the histograms get this t's figures.
    follow_slider("your_image_t", charts=[] if flat else ["your_image_corr"],
                  figures={"your_image_hist_all": hist_all, "your_image_hist_pixel": pixel_fig}, value=t, minimum=1)


forward_process(pid, loaded.pixels, loaded.grayscale, current_seed(), str(current_device()))

# ------------------------------------------------------------------ to the denoiser
st.header(tr("your_image.send_header"))
st.markdown(tr("your_image.send_intro"))
try:
    digit = to_mnist_digit(loaded.pixels)
except BlankImageError:
    st.warning(tr("your_image.error_blank"), icon=":material/block:")
else:
    col_digit, col_send = st.columns([1, 3])
    with col_digit:
        show_picture(digit, tr("your_image.digit_caption"), min_side=140)
    with col_send:
        if st.button(tr("your_image.send_button"), key="your_image_send", icon=":material/send:", type="primary"):
            st.session_state["sdedit_digit"] = digit.copy()
            st.session_state["sdedit_source"] = "upload"
            if (APP_DIR / REVERSE_PAGE).is_file():
                st.switch_page(REVERSE_PAGE)
            st.info(tr("your_image.reverse_coming"), icon=":material/schedule:")

check_yourself(tr, "your_image")
