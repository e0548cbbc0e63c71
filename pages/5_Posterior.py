"""Page 5: one reverse step understood. The posterior q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eqs. 6-7) on a digit,
the network's p_theta(x_{t-1} | x_t) that plugs in its x0_hat (eqs. 11, 15), the KL between them (eqs. 5, 12),
and eps, x_0 and mu as three faces of one prediction (eqs. 10-11, 15)."""

from ui.sidebar import sidebar, current_seed, current_device
from ui.exercises import check_yourself

import numpy as np
import streamlit as st

from diffusion_core.process.gaussian import normal_pdf
from diffusion_core.process.posterior import model_variance, posterior_coefficients, posterior_variance_ratio
from diffusion_core.data.samples import list_sample_images, load_sample_image
from diffusion_core.process.schedules import SCHEDULE_KINDS, make_schedule
from diffusion_core.models.weights import WeightsError
from ui import charts
from ui.charts import fmt
from ui.posterior import view as pv
from ui.follow import follow_slider, frozen, show_in_place
from ui.i18n import Translator
from ui.model import shared_denoiser
from ui.shared_store import picture_id

tr = sidebar("posterior")

UPLOAD = "upload"
DEFAULT_DIGIT = "digit_3"
SIDE = 224  # pixels of each enlarged 28x28 picture
X0_HAT_NOTE = 1.5  # above this |x0_hat|, a note says why the predicted clean image leaves [-1, 1]
PIXEL_DEFAULT = 14  # where the row and column sliders start
CURVES = (("coef_x0", True), ("coef_xt", False), ("ratio", False))  # (curve, log y axis)


def latex_num(v: float) -> str:
    """fmt for LaTeX: 1.234e-05 -> 1.234 \\times 10^{-5}."""
    s = fmt(v)
    if "e" not in s:
        return s
    mantissa, exponent = s.split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


st.title(tr("posterior.title"))
st.markdown(tr("posterior.intro"))
st.latex(r"q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\!\left(x_{t-1};\ \tilde\mu_t(x_t, x_0),\ \tilde\beta_t \mathbf{I}\right)"
         r"\qquad\text{(6)}")
st.latex(r"\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0"
         r" + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,")
st.latex(r"\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t\qquad\text{(7)}")
st.markdown(tr("posterior.why_tractable"))

# ------------------------------------------------------------------ the network and its schedule
device = current_device()
try:
    shared = shared_denoiser(device)
except WeightsError as e:
    st.error(tr("posterior.weights_error"), icon=":material/error:")
    st.caption(tr("posterior.weights_detail"))
    st.code(str(e), language=None)
    st.stop()
schedule = shared.model.schedule
T = schedule.T

# ------------------------------------------------------------------ the digit
uploaded = st.session_state.get("sdedit_digit") if st.session_state.get("sdedit_source") == UPLOAD else None
has_upload = isinstance(uploaded, np.ndarray) and uploaded.shape == (28, 28) and uploaded.dtype == np.uint8
sources = ([UPLOAD] if has_upload else []) + list_sample_images("digit")


def source_name(name: str) -> str:
    return tr("posterior.uploaded_digit") if name == UPLOAD else tr(f"samples.{name}")


c1, c2 = st.columns([1, 2])
source = c1.selectbox(tr("posterior.digit"), sources, index=0 if has_upload else sources.index(DEFAULT_DIGIT),
                      format_func=source_name, key="posterior_digit", help=tr("posterior.digit_help"))
digit = uploaded if source == UPLOAD else load_sample_image(source)
label = -1 if source == UPLOAD else int(source.removeprefix("digit_"))
c2.caption(tr("posterior.network_note", schedule=tr(f"schedule.{schedule.kind}").lower(), T=T))
c2.caption(tr("posterior.label_upload") if label < 0 else tr("posterior.label_known", label=label))


@st.cache_data(show_spinner=False)
def coefficient_curves(T: int) -> dict[str, dict[str, np.ndarray]]:
    """The two coefficients of eq. 7 and beta~_t / beta_t for t = 1..T, for both schedules."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for kind in SCHEDULE_KINDS:
        s = make_schedule(kind, T)
        c = posterior_coefficients(s)
        out[kind] = {"coef_x0": c.coef_x0[1:].numpy(), "coef_xt": c.coef_xt[1:].numpy(),
                     "ratio": posterior_variance_ratio(s)[1:].numpy()}
    return out


def plotted_steps(T: int, n: int = 200) -> np.ndarray:
    """About 2n timesteps to draw the curves with (fewer points: a lighter chart): evenly spaced and geometrically
    spaced (the curves turn sharply near t = 1 and near T), and the last steps. The marker's dot between two of
    them sits on the straight segment the chart draws (ui/charts.marker_layout)."""
    even = np.linspace(1, T, n)
    geometric = np.geomspace(1, T, n)
    return np.unique(np.concatenate([np.rint(even), np.rint(geometric), T + 1 - np.rint(geometric[:n // 4])])).astype(int)


@st.cache_resource(max_entries=8, show_spinner=False)
def curve_figures(T: int, kind: str, lang: str) -> list:
    """The three curves of eq. 7 for both schedules, with the marker at the slider's default t = T // 4: the same
    figures at every t, whose marker moves in the browser (ui/follow.py). ``kind``: the network's schedule, named
    in the titles' text around them."""
    tr = Translator(lang)
    curves = coefficient_curves(T)
    ts = plotted_steps(T)
    figs = []
    for key, log_y in CURVES:
        fig = charts.curves_figure(ts, {tr(f"schedule.{k}"): curves[k][key][ts - 1] for k in SCHEDULE_KINDS},
                                   tr("schedule.t_axis"), tr(f"posterior.axis_{key}"), marker_x=T // 4,
                                   marker_label=f"t = {T // 4}", title=tr(f"posterior.title_{key}"), log_y=log_y,
                                   height=320)
        if not log_y:  # these two curves run along y = 1: the marker's label goes to the bottom, clear of them
            fig.update_annotations(y=0.02, yanchor="bottom")
        figs.append(frozen(fig))
    return figs


def density_figure(tr: Translator, q: pv.PosteriorPictures, net: pv.NetworkStep, variance: str, row: int, col: int):
    """q(x_{t-1} | x_t, x_0) and p_theta(x_{t-1} | x_t) at one pixel (q a point mass at t = 1), and their means and
    the model's variance."""
    t = q.t
    v, sigma2 = float(posterior_coefficients(schedule).variance[t]), model_variance(schedule, t, variance)
    m_q, m_p = float(q.mu_tilde[row, col]), float(net.mu_theta[row, col])
    xs = pv.density_grid([m_q, m_p], [v**0.5, sigma2**0.5], n=150)
    dens = {tr("posterior.density_p", t=t): normal_pdf(xs, m_p, sigma2**0.5)}
    if t >= 2:
        dens = {tr("posterior.density_q", t=t): normal_pdf(xs, m_q, v**0.5), **dens}
    fig = charts.curves_figure(xs, dens, tr("posterior.axis_pixel"), tr("posterior.axis_density"), height=320)
    if t == 1:
        fig.add_vline(x=m_q, line=dict(color=charts.PALETTE[1], width=2),
                      annotation_text=tr("posterior.point_mass"), annotation_position="top left")
    return fig, m_q, m_p, sigma2


@st.cache_resource(max_entries=256, show_spinner=False)
def picture_pngs(key: tuple, row: int | None, col: int | None, _arrays: tuple, _sides: tuple[int, ...]) -> list[bytes]:
    """PNG files of [-1, 1] pictures (``pv.marked``, the pixel (row, col) outlined), encoded once for every
    student; ``key`` says what they are (which pictures, the digit, label, t, seed), ``_arrays`` holds them."""
    return [charts.png_bytes(pv.marked(x, row, col, side=side), min_side=0) for x, side in zip(_arrays, _sides)]


@st.cache_resource(max_entries=32, show_spinner=False)
def default_density(pid: str, label: int, seed: int, lang: str, _digit: np.ndarray):
    """The pixel chart at the sliders' defaults (t = T // 4, the middle pixel, sigma_t^2 = beta_t): the figure
    Streamlit keeps at every step, to which the browser applies each run's (ui/follow.py)."""
    t = T // 4
    q = pv.posterior_pictures(_digit, t, seed, schedule, pv.schedule_key(schedule))
    net = pv.network_step(_digit, label, t, seed, shared, str(device))
    return frozen(density_figure(Translator(lang), q, net, "beta", PIXEL_DEFAULT, PIXEL_DEFAULT)[0])


# ------------------------------------------------------------------ everything the t slider drives
@st.fragment
def one_step() -> None:
    seed = current_seed()
    t = st.slider(tr("posterior.t_label"), 1, T, T // 4, key="posterior_t", help=tr("posterior.t_help"))
    c = posterior_coefficients(schedule)
    a_x0, a_xt, v = (float(c.coef_x0[t]), float(c.coef_xt[t]), float(c.variance[t]))
    q = pv.posterior_pictures(digit, t, seed, schedule, pv.schedule_key(schedule))
    who = (picture_id(digit), pv.schedule_key(schedule), t, seed)

    st.header(tr("posterior.q_header"))
    st.latex(rf"t = {t}:\quad \tilde\mu_{{{t}}} = {latex_num(a_x0)}\,x_0 + {latex_num(a_xt)}\,x_{{{t}}}")
    beta_t = float(schedule.betas[t])
    st.latex(rf"\beta_{{{t}}} = {latex_num(beta_t)},\quad \tilde\beta_{{{t}}} = {latex_num(v / beta_t)}\,\beta_{{{t}}}"
             rf" = {latex_num(v)}")
    pngs = picture_pngs(("q", *who), None, None,
                        (q.x0, q.x_t, q.mu_tilde, pv.draws_grid(q.draws)), (SIDE, SIDE, SIDE, 2 * SIDE))
    captions = (tr("posterior.cap_x0"), tr("posterior.cap_xt", t=t), tr("posterior.cap_mu_tilde", t=t),
                tr("posterior.cap_draws", k=pv.N_DRAWS, t=t))
    for target, png, caption in zip(st.columns([1, 1, 1, 2]), pngs, captions):
        target.image(png, caption=caption, output_format="PNG", width="stretch")
    st.markdown(tr("posterior.draws_check", rms=fmt(pv.draws_rms(q)), std=fmt(v**0.5), n=q.draws.size))
    # Notes that come and go with t sit in a slot of their own: the charts below keep their place in the page,
    # so Streamlit never builds them again (ui/follow.py).
    with st.empty():
        if t == 1:
            st.info(tr("posterior.t1_note"), icon=":material/info:")

    st.subheader(tr("posterior.curves_header"))
    st.markdown(tr("posterior.curves_intro", schedule=tr(f"schedule.{schedule.kind}").lower()))
    for col, fig, (key, _) in zip(st.columns(3), curve_figures(T, schedule.kind, tr.lang), CURVES):
        col.plotly_chart(fig, key=f"posterior_curve_{key}", config={"displayModeBar": False})
    st.markdown(tr("posterior.curves_read"))

    # -------------------------------------------------------------- the network's step
    st.header(tr("posterior.p_header"))
    st.markdown(tr("posterior.p_intro"))
    st.latex(r"\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}}\quad\text{(15)}")
    st.latex(r"\mu_\theta(x_t, t) = \tilde\mu_t(x_t, \hat x_0)")
    st.latex(r"p_\theta(x_{t-1} \mid x_t) = \mathcal{N}\!\left(x_{t-1};\ \mu_\theta(x_t, t),\ \sigma_t^2 \mathbf{I}\right)")
    net = pv.network_step(digit, label, t, seed, shared, str(device))
    diff, diff_scale = pv.difference_picture(net.mu_theta - q.mu_tilde)

    c1, c2, c3 = st.columns(3)
    variance = c1.radio(tr("posterior.variance"), ("beta", "beta_tilde"), key="posterior_variance",
                        format_func=lambda k: tr(f"posterior.variance_{k}"), help=tr("posterior.variance_help"))
    row = c2.slider(tr("posterior.row"), 0, 27, PIXEL_DEFAULT, key="posterior_row")
    col = c3.slider(tr("posterior.col"), 0, 27, PIXEL_DEFAULT, key="posterior_col")

    pngs = picture_pngs(("p", label, *who), row, col,
                        (net.x0_hat, net.mu_theta, q.mu_tilde, diff), (SIDE,) * 4)
    captions = (tr("posterior.cap_x0_hat", lo=fmt(float(net.x0_hat.min())), hi=fmt(float(net.x0_hat.max()))),
                tr("posterior.cap_mu_theta", t=t), tr("posterior.cap_mu_tilde", t=t),
                tr("posterior.cap_diff", scale=fmt(diff_scale)))
    for target, png, caption in zip(st.columns(4), pngs, captions):
        target.image(png, caption=caption, output_format="PNG", width="stretch")
    st.caption(tr("posterior.mark_note"))
    peak = float(np.abs(net.x0_hat).max())
    with st.empty():  # a slot of its own, as above
        if peak > X0_HAT_NOTE:
            st.caption(tr("posterior.x0_hat_wild", peak=fmt(peak), sqrt_abar=fmt(float(schedule.sqrt_alpha_bars[t]))))

    st.subheader(tr("posterior.pixel_header", row=row, col=col))
    fig, m_q, m_p, sigma2 = density_figure(tr, q, net, variance, row, col)
    # The chart is drawn once at the sliders' defaults and the browser applies this run's figure to it
    # (ui/follow.py); the three curves above only move their marker with t.
    show_in_place(st, default_density(picture_id(digit), label, seed, tr.lang, digit), "posterior_density",
                  config={"displayModeBar": False})
    follow_slider("posterior_t", charts=[f"posterior_curve_{key}" for key, _ in CURVES],
                  figures={"posterior_density": fig}, value=t, minimum=1)
    st.latex(rf"\tilde\mu = {latex_num(m_q)},\quad \tilde\beta_{{{t}}} = {latex_num(v)}")
    st.latex(rf"\mu_\theta = {latex_num(m_p)},\quad \sigma_{{{t}}}^2 = {latex_num(sigma2)}")
    kl = pv.kl_numbers(q, net, schedule, variance, row, col)
    if kl is None:
        st.info(tr("posterior.kl_t1"), icon=":material/info:")
    else:
        st.latex(r"D_\mathrm{KL}"
                 r" = \tfrac12\left(\log\frac{\sigma_t^2}{\tilde\beta_t} + \frac{\tilde\beta_t + (\tilde\mu - \mu_\theta)^2}"
                 r"{\sigma_t^2} - 1\right)")
        k1, k2, k3 = st.columns(3)
        k1.metric(tr("posterior.kl_pixel"), f"{kl.pixel_nats:.4g}")
        k2.metric(tr("posterior.kl_direct"), f"{kl.direct_bpd:.4g}")
        k3.metric(tr("posterior.kl_eq12"), f"{kl.eq12_bpd:.4g}")
        st.latex(r"L_{t-1} = C + \frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}"
                 r"\left\|\varepsilon - \varepsilon_\theta(x_t, t)\right\|^2\quad\text{(12)}")
        st.markdown(tr("posterior.kl_read", gap=f"{abs(kl.direct_bpd - kl.eq12_bpd):.1e}"))

    # -------------------------------------------------------------- three faces of one prediction
    st.header(tr("posterior.faces_header"))
    st.markdown(tr("posterior.faces_intro"))
    st.latex(r"\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon\right)"
             r"\quad\text{(10)}")
    st.latex(r"\mu_\theta = \frac{1}{\sqrt{\alpha_t}}\left(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\right)"
             r"\quad\text{(11)}")
    checks = (("faces_eq10", q.mu_tilde_eq10 - q.mu_tilde), ("faces_eq11", net.mu_eq11 - net.mu_theta),
              ("faces_eps", net.eps_back - net.eps_hat), ("faces_x0", net.x0_back - net.x0_hat))
    st.markdown("\n".join(tr(f"posterior.{key}", value=f"{float(np.abs(d).max()):.1e}") for key, d in checks))
    st.markdown(tr("posterior.faces_read"))


one_step()

st.header(tr("posterior.next_header"))
st.markdown(tr("posterior.next"))

check_yourself(tr, "posterior")
