"""Page 6: the variational bound of Ho et al. (2020), eq. 5, live on a digit with the shipped network; from
the KL to L_simple (eqs. 12 and 14); Algorithm 1 next to Algorithm 2, each line linked to where it is shown."""

from ui.sidebar import sidebar, current_seed, current_device
from ui.exercises import check_yourself

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.process import bound_estimate, elbo
from diffusion_core.data.images import unit_to_uint8
from diffusion_core.data.samples import list_sample_images, load_sample_image
from diffusion_core.models.weights import WeightsError
from ui.bound import live as bl
from ui import charts
from ui.follow import follow_slider, frozen, show_in_place
from ui.i18n import Translator
from ui.model import shared_denoiser

tr = sidebar("bound")

STRATA = (10, 20, 50, 100, 200, 500)  # strata asked for (at most) over {2..T}, 2 draws each
DEFAULT_STRATA = 50
T_DEFAULT = 100  # where the t slider starts: its charts are drawn there and their marker follows the slider
D = 784  # dimensions of an MNIST digit
VAR_NAMES = {"beta": r"\sigma_t^2 = \beta_t", "beta_tilde": r"\sigma_t^2 = \tilde\beta_t"}


def f3(x: float) -> str:
    return f"{x:.3f}"


def latex_num(x: float, digits: int = 4) -> str:
    """A number for LaTeX with ``digits`` significant digits: plain from 1e-3 to 1e4, else a power of ten."""
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}" if abs(x) >= 1e-3 else "0"
    e = math.floor(math.log10(abs(x)))
    return rf"{x / 10**e:.{digits - 1}f} \cdot 10^{{{e}}}"


st.title(tr("bound.title"))
st.markdown(tr("bound.intro"))

try:
    shared = shared_denoiser(current_device())
except WeightsError as e:
    st.error(tr("bound.weights_error"), icon=":material/error:")
    st.code(str(e), language=None)
    st.stop()
schedule = shared.model.schedule
T = schedule.T
seed = current_seed()

# ------------------------------------------------------------------ the digit
names = list_sample_images("digit")
uploaded = st.session_state.get("sdedit_digit") if st.session_state.get("sdedit_source") == "upload" else None
sources = (["upload"] if isinstance(uploaded, np.ndarray) and uploaded.shape == (28, 28)
           and uploaded.dtype == np.uint8 else []) + names


def source_name(name: str) -> str:
    if name == "upload":
        return tr("bound.source_upload")
    return tr(f"samples.{name}") if tr.has(f"samples.{name}") else name


c_img, c_src, c_label, _ = st.columns([1, 2, 2, 3])
source = c_src.selectbox(tr("bound.source"), sources, format_func=source_name, key="bound_source")
digit = uploaded if source == "upload" else load_sample_image(source)
true_label = None if source == "upload" else int(source.rsplit("_", 1)[1])
label = c_label.selectbox(tr("bound.label"), range(10), index=true_label if true_label is not None else 0,
                          key=f"bound_label_{source}", help=tr("bound.label_help"))
c_img.image(np.kron(digit, np.ones((4, 4), dtype=np.uint8)), caption=tr("bound.digit_caption"), width=112)
if true_label is None:
    st.caption(tr("bound.upload_label_hint"))
elif label != true_label:
    st.caption(tr("bound.wrong_label_hint", label=label, true=true_label))

# ------------------------------------------------------------------ 1. the bound, term by term
st.header(tr("bound.terms_title"), anchor="bound-terms")
st.markdown(tr("bound.terms_intro"))
st.latex(r"\begin{aligned} L &= L_T + \sum_{t=2}^{T} L_{t-1} + L_0 \;\ge\; -\log p_\theta(x_0),\\"
         r"L_T &= D_{\mathrm{KL}}\big(q(x_T|x_0)\,\|\,p(x_T)\big),\\"
         r"L_{t-1} &= D_{\mathrm{KL}}\big(q(x_{t-1}|x_t,x_0)\,\|\,p_\theta(x_{t-1}|x_t)\big),\\"
         r"L_0 &= -\log p_\theta(x_0|x_1) \end{aligned}")
st.caption(tr("bound.eq5_source"))

curves = bl.bench_curves()  # the bench's per-t curves (bench/bound.py), or None


# The number of strata and all it changes (the estimate, its breakdown, the charts of this section): a move
# reruns only this, not the t slider's section below. A new setting computes the bound (a progress bar).
@st.fragment
def bound_terms() -> None:
    c_strata, _ = st.columns([3, 5])
    strata = c_strata.select_slider(tr("bound.strata"), STRATA, value=DEFAULT_STRATA, key="bound_strata",
                                    help=tr("bound.strata_help", T=T))
    n_strata = len(bound_estimate.stratum_bounds(T, strata)) - 1  # log-spaced strata; rounding merges some at small t
    live = bl.cached_bound(digit, label, strata, seed)
    if live is None:
        progress_text = tr("bound.progress", rows=2 * (bound_estimate.DECODER_DRAWS + 2 * n_strata))
        bar = st.progress(0.0, text=progress_text)
        live = bl.live_bound(shared, digit, label, strata, seed, progress=lambda f: bar.progress(min(f, 1.0), text=progress_text))
        bar.empty()
    cond, uncond = live.results["cond"], live.results["uncond"]
    st.caption(tr("bound.timing", rows=live.rows, seconds=f"{live.seconds:.2f}", strata=n_strata, draws=2 * n_strata,
                  terms=T - 1))

    m1, m2, m3 = st.columns(3)
    for col, v in ((m1, "beta"), (m2, "beta_tilde")):
        est = cond.estimate[v]
        col.metric(tr(f"bound.total_{v}"), f"{f3(float(est.total[0]))} ± {f3(float(est.standard_error[0]))}")
    m3.metric(tr("bound.uniform_metric"), "8.000", help=tr("bound.uniform_help"))

    # The breakdown: L_T + sum + L_0 = total, with numbers (conditional network); two rows, for phones.
    for v in ("beta", "beta_tilde"):
        est = cond.estimate[v]
        prior, dec = float(cond.prior_bpd[0]), float(cond.decoder_bpd[0])
        middle = float(est.total[0]) - prior - dec
        st.latex(rf"\begin{{aligned}} {VAR_NAMES[v]}:\quad & \underbrace{{{latex_num(prior)}}}_{{L_T}} + "
                 rf"\underbrace{{{latex_num(middle)}}}_{{\sum_{{t\ge2}} L_{{t-1}}}} + \underbrace{{{latex_num(dec)}}}_{{L_0}}\\"
                 rf"&= {latex_num(float(est.total[0]))} \pm {latex_num(float(est.standard_error[0]))}"
                 rf"\ \text{{{tr('bound.bpd_unit')}}} \end{{aligned}}")
    st.markdown(tr("bound.breakdown_note", prior=latex_num(float(cond.prior_bpd[0]), 2),
                   abar_T=latex_num(float(schedule.alpha_bars[T]), 2),
                   nats=f"{float(cond.estimate['beta_tilde'].total[0]) * D * math.log(2):.0f}",
                   bits=f"{float(cond.estimate['beta_tilde'].total[0]) * D:.0f}"))
    st.caption(tr("bound.se_note", strata=n_strata))

    # The decoder L_0 (eq. 13), checked on the pixel it finds hardest: its 256 bins sum to 1.
    st.subheader(tr("bound.decoder_title"), anchor="decoder")
    st.latex(r"\begin{aligned} p_\theta(x_0|x_1) &= \prod_{i=1}^{D} \int_{\delta_-(x_0^i)}^{\delta_+(x_0^i)}"
             r"\mathcal{N}\big(x;\ \hat x_0^i,\ \sigma_1^2\big)\,dx,\\"
             r"\delta_\pm(x) &= \begin{cases} \pm\infty & x = \pm 1 \\ x \pm \tfrac{1}{255} & \text{"
             + tr("bound.otherwise") + r"} \end{cases} \end{aligned}")
    st.caption(tr("bound.eq13_source"))
    d1 = bl.step_detail(shared, digit, label, 1, seed)
    x0_pixels = digit.astype(np.float64) / 127.5 - 1
    var1 = float(elbo.model_variances(schedule, "beta")[1])
    logp = elbo.discretized_gaussian_log_likelihood(torch.from_numpy(x0_pixels), torch.from_numpy(d1.x0_hat), var1).numpy()
    worst = np.unravel_index(int(np.argmin(logp)), logp.shape)
    levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1
    bins = elbo.discretized_gaussian_log_likelihood(levels, torch.full_like(levels, float(d1.x0_hat[worst])), var1)
    best = elbo.discretized_gaussian_log_likelihood(torch.tensor([-1.0, 0.0], dtype=torch.float64),
                                                    torch.tensor([-1.0, 0.0], dtype=torch.float64), var1).exp()
    st.markdown(tr("bound.decoder_check", row=int(worst[0]), col=int(worst[1]), value=int(digit[worst]),
                   mean=f"{float(d1.x0_hat[worst]):.4f}", sigma=f"{math.sqrt(var1):.4f}", p=f"{math.exp(float(logp[worst])):.3g}",
                   total=f"{float(torch.logsumexp(bins, 0).exp()):.9f}", median=f"{math.exp(float(np.median(logp))):.3f}",
                   p_edge=f"{float(best[0]):.3f}", p_mid=f"{float(best[1]):.3f}", l0=f3(float(-logp.sum() / (D * math.log(2))))))

    # L_t against t: this digit's sampled terms, and the bench's average over test digits.
    fig = go.Figure()
    for i, v in enumerate(("beta", "beta_tilde")):
        color = charts.PALETTE[i]
        if curves is not None:
            fig.add_trace(go.Scatter(x=np.arange(1, T + 1), y=curves[f"terms_cond_{v}"], mode="lines",
                                     line=dict(color=color, width=1), opacity=0.6,
                                     name=tr(f"bound.curve_bench_{v}", n=curves["digits"])))
        t_sorted = cond.plan.timesteps.numpy()
        fig.add_trace(go.Scatter(x=np.concatenate([[1], t_sorted]),
                                 y=np.concatenate([[float(cond.decoder_bpd[0])], cond.sampled_bpd[v][0].numpy()]),
                                 mode="markers", marker=dict(color=color, size=6, symbol="circle" if i == 0 else "x"),
                                 name=tr(f"bound.curve_digit_{v}")))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_layout(xaxis_title=tr("bound.axis_t"), yaxis_title=tr("bound.axis_term"), height=380, separators=charts.SEPARATORS,
                      margin=dict(l=10, r=10, t=10, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0.0))
    st.plotly_chart(fig, key="bound_terms_chart")
    st.caption(tr("bound.terms_chart_note"))

    # Where the bits go: the estimated share of each stratum, with L_0 and L_T as bars of their own.
    st.subheader(tr("bound.where_title"), anchor="where-bits")
    est = cond.estimate["beta_tilde"]
    bounds = cond.plan.bounds.numpy()
    labels = ["L_T", "L_0"] + [f"{bounds[k]}–{bounds[k + 1] - 1}" for k in range(len(bounds) - 1)]
    values = np.concatenate([[float(cond.prior_bpd[0]), float(cond.decoder_bpd[0])], est.per_stratum[0].numpy()])
    total = float(est.total[0])
    bar_fig = go.Figure(go.Bar(x=labels, y=values, marker_color=charts.PALETTE[1]))
    bar_fig.update_layout(xaxis_title=tr("bound.axis_stratum"), yaxis_title=tr("bound.axis_share"), height=300, separators=charts.SEPARATORS,
                          margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(bar_fig, key="bound_where_chart")
    j = max(int(np.searchsorted(bounds, 12, side="right")) - 1, 1)  # strata 0..j-1 end at t <= 11 (at least one)
    early_kl = float(est.per_stratum[0, :j].sum())
    share_small = (float(cond.decoder_bpd[0]) + early_kl) / total
    st.markdown(tr("bound.where_note", dec=f3(float(cond.decoder_bpd[0])), first=f3(early_kl),
                   t_end=int(bounds[j] - 1), share=f"{100 * share_small:.0f}", total=f3(total)))
    if curves is not None:
        terms = np.asarray(curves["terms_cond_beta_tilde"])
        cum = np.cumsum(terms) / terms.sum()
        st.markdown(tr("bound.where_bench", n=curves["digits"], s1=f"{100 * cum[0]:.0f}", s10=f"{100 * cum[9]:.0f}",
                       s100=f"{100 * cum[99]:.0f}", half=int(np.searchsorted(cum, 0.5) + 1), sT=f"{100 * terms[-1] / terms.sum():.0f}",
                       mseT=latex_num(float(curves["eps_mse_cond"][-1]), 2)))

    # Conditional and unconditional.
    st.subheader(tr("bound.modes_title"), anchor="modes")
    st.table({
        tr("bound.col_network"): [tr("bound.mode_cond", label=label), tr("bound.mode_uncond")],
        tr("bound.col_beta"): [tr("bound.bpd_pm", value=f3(float(r.estimate["beta"].total[0])),
                                  se=f3(float(r.estimate["beta"].standard_error[0]))) for r in (cond, uncond)],
        tr("bound.col_beta_tilde"): [tr("bound.bpd_pm", value=f3(float(r.estimate["beta_tilde"].total[0])),
                                        se=f3(float(r.estimate["beta_tilde"].standard_error[0]))) for r in (cond, uncond)],
    })
    diff = float(uncond.estimate["beta_tilde"].total[0] - cond.estimate["beta_tilde"].total[0])
    paired = (uncond.sampled_bpd["beta_tilde"] - cond.sampled_bpd["beta_tilde"])
    paired_est = bound_estimate.stratified_total(cond.plan, uncond.prior_bpd - cond.prior_bpd,
                                       uncond.decoder_bpd - cond.decoder_bpd, paired)
    st.markdown(tr("bound.modes_note", diff=f"{diff:+.4f}", se=f"{float(paired_est.standard_error[0]):.4f}",
                   label_bits=f"{math.log2(10) / D:.4f}"))
    if curves is not None and "uncond_minus_cond_beta_tilde" in curves:
        bench_diff, bench_se = curves["uncond_minus_cond_beta_tilde"]
        st.markdown(tr("bound.modes_bench", n=curves["digits"], diff=f"{bench_diff:+.4f}", se=f"{bench_se:.4f}"))


bound_terms()

# ------------------------------------------------------------------ 2. from the KL to L_simple
st.header(tr("bound.simple_title"), anchor="l-simple")
st.markdown(tr("bound.simple_intro"))
st.latex(r"\begin{aligned} L_{t-1} &= w_t\,\big\|\epsilon - \epsilon_\theta(x_t, t)\big\|^2 + D\,c_t,\\"
         r"x_t &= \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\\"
         r"w_t &= \frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)},\\"
         r"c_t &= \tfrac12\Big(\log\frac{\sigma_t^2}{\tilde\beta_t} + \frac{\tilde\beta_t}{\sigma_t^2} - 1\Big)"
         r" \end{aligned}")
st.caption(tr("bound.eq12_source"))

weights = {v: elbo.eps_mse_weight(schedule, v).numpy() for v in ("beta", "beta_tilde")}
consts = {v: elbo.variance_kl_per_dim(schedule, v).numpy() for v in ("beta", "beta_tilde")}
t_min = int(np.nanargmin(weights["beta_tilde"]))
w_min = float(weights["beta_tilde"][t_min])


@st.cache_resource(max_entries=8, show_spinner=False)
def weight_figure(T: int, lang: str) -> go.Figure:
    """The weight w_t of eq. 12 for both variances against t (log-log), with the marker at T_DEFAULT: the same
    figure at every t, whose marker moves in the browser (ui/follow.py). No label on the marker: on a log axis
    plotly places annotations in log10 units but shapes in data units."""
    tr = Translator(lang)
    few = np.unique(np.rint(np.geomspace(2, T, 300)).astype(int))  # even on the log axis: 300 points, not T - 1
    fig = charts.curves_figure(few, {tr(f"bound.weight_{v}"): weights[v][few] for v in ("beta", "beta_tilde")},
                               tr("bound.axis_t"), tr("bound.axis_weight"), log_y=True, height=340,
                               title=tr("bound.weight_title"), marker_x=T_DEFAULT)
    fig.update_xaxes(type="log", range=[math.log10(2), math.log10(T)])  # log10 units on a log axis
    return frozen(fig)


@st.cache_resource(max_entries=8, show_spinner=False)
def mse_curves_traces(lang: str) -> list[dict]:
    """The bench's mean MSE per t with its +- 2 standard errors band, for both networks (x thinned evenly on the
    log axis: a chart the browser redraws at every step stays light)."""
    tr = Translator(lang)
    x = np.unique(np.rint(np.geomspace(1, T, 300)).astype(int))
    traces = []
    for i, m in enumerate(("cond", "uncond")):
        mean, se = np.asarray(curves[f"eps_mse_{m}"])[x - 1], np.asarray(curves[f"eps_mse_{m}_se"])[x - 1]
        color = charts.PALETTE[i]
        traces.append(dict(type="scatter", x=np.concatenate([x, x[::-1]]),
                           y=np.concatenate([mean + 2 * se, (mean - 2 * se)[::-1]]), fill="toself", fillcolor=color,
                           opacity=0.2, line=dict(width=0), showlegend=False, hoverinfo="skip"))
        traces.append(dict(type="scatter", x=x, y=mean, mode="lines", line=dict(color=color),
                           name=tr(f"bound.mse_{m}", n=curves["digits"])))
    return traces


def mse_figure(lang: str, t: int, mse: float) -> go.Figure:
    """The bench's curves and this digit's ||eps - eps_hat||^2 / D at t (a diamond), the marker at t."""
    tr = Translator(lang)
    digit_point = dict(type="scatter", x=[t], y=[mse], mode="markers",
                       marker=dict(color="black", size=10, symbol="diamond"), name=tr("bound.mse_digit", t=t))
    at = [(2 * i + 1, float(np.interp(t, np.arange(1, T + 1), curves[f"eps_mse_{m}"])), charts.PALETTE[i])
          for i, m in enumerate(("cond", "uncond"))]  # a dot on each mean curve (traces 1 and 3)
    marker = charts.marker_layout(t, None, at, log_y=True)
    return go.Figure(data=[*mse_curves_traces(lang), digit_point], layout=dict(
        title=dict(text=tr("bound.mse_title"), x=0.0, font=dict(size=15)), height=340, separators=charts.SEPARATORS,
        xaxis=dict(title=dict(text=tr("bound.axis_t")), type="log", range=[0, math.log10(T)]),  # charts.fixed_range
        yaxis=dict(title=dict(text=tr("bound.axis_mse")), type="log", exponentformat="power"),
        margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0.0),
        **marker))


@st.cache_resource(max_entries=32, show_spinner=False)
def default_mse_figure(lang: str, mse: float) -> go.Figure:
    """The MSE chart at the slider's default t (this digit's point there): the one Streamlit keeps."""
    return frozen(mse_figure(lang, T_DEFAULT, mse))


@st.fragment
def at_one_t() -> None:
    """The t slider and what it drives: eq. 12 checked on the digit, the pictures, the weight and the MSE."""
    t = st.slider(tr("bound.t_slider"), 1, T, T_DEFAULT, key="bound_t", help=tr("bound.t_help"))
    d = bl.step_detail(shared, digit, label, t, seed)
    st.subheader(tr("bound.pictures_title", t=t), anchor="eps-pictures")
    # One strip of five tiles (x_t, eps, eps_hat, eps - eps_hat, x0_hat), so that a phone shows it in one row:
    # noise from -3 to 3, images from -1 to 1.
    tiles = [np.clip(img / scale, -1, 1) for img, scale in
             ((d.x_t, 1.0), (d.eps, 3.0), (d.eps_hat, 3.0), (d.eps - d.eps_hat, 3.0), (d.x0_hat, 1.0))]
    gap = np.ones((28, 2))
    strip = np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1)
    st.image(charts.png_bytes(np.kron(unit_to_uint8(strip), np.ones((6, 6), dtype=np.uint8)), min_side=0),
             width="stretch", caption=tr("bound.pictures_strip", t=t), output_format="PNG")
    st.caption(tr("bound.pictures_note"))
    mse = d.sse / D
    with st.container():  # one or three elements with t: in a block of its own, so the charts below keep their place
        if t == 1:
            st.markdown(tr("bound.check_decoder", l0=latex_num(d.term_nats["beta"]),
                           bpd=f3(d.term_nats["beta"] / (D * math.log(2))), mse=f"{mse:.4f}",
                           var=latex_num(float(elbo.model_variances(schedule, "beta")[1]), 2)))
        else:
            for v in ("beta", "beta_tilde"):
                w, c = float(weights[v][t]), float(consts[v][t])
                st.latex(rf"\begin{{aligned}} {VAR_NAMES[v]}:\quad & {latex_num(w)} \times {latex_num(d.sse)}\\ &+ {D} \times "
                         rf"{latex_num(c)} = {latex_num(w * d.sse + D * c)},\\ "
                         rf"D_{{\mathrm{{KL}}}} &= {latex_num(d.term_nats[v])}\ \text{{{tr('bound.nat_unit')}}} \end{{aligned}}")
            st.caption(tr("bound.check_eq12_note", mse=f"{mse:.4f}", sse=f"{d.sse:.1f}"))

    c1, c2 = st.columns(2)
    tt = max(t, 2)  # eq. 12's weight starts at t = 2 (L_0 has no weight)
    c1.plotly_chart(weight_figure(T, tr.lang), key="bound_weight_chart")
    c1.caption(tr("bound.weight_note", t=tt, w_beta=latex_num(float(weights["beta"][tt])),
                  w_tilde=latex_num(float(weights["beta_tilde"][tt])), w2=latex_num(float(weights["beta_tilde"][2])),
                  wmin=latex_num(w_min), tmin=t_min, wT=latex_num(float(weights["beta_tilde"][T]))))
    # Both markers follow t in the browser (the weight's from t = 2 on); the MSE chart then gets this digit's
    # point at t from the server (Plotly.react on the chart drawn at T_DEFAULT).
    follow_slider("bound_t", charts=["bound_weight_chart"], value=t, minimum=1, label=None,
                  xs=[max(p, 2) for p in range(1, T + 1)], key="follow_bound_weight")
    if curves is None:
        c2.info(tr("bound.no_bench"), icon=":material/hourglass_empty:")
    else:
        show_in_place(c2, default_mse_figure(tr.lang, bl.step_detail(shared, digit, label, T_DEFAULT, seed).sse / D),
                      "bound_mse_chart")
        follow_slider("bound_t", charts=["bound_mse_chart"], figures={"bound_mse_chart": mse_figure(tr.lang, t, mse)},
                      value=t, minimum=1, label=None, key="follow_bound_mse")
        c2.caption(tr("bound.mse_note", n=curves["digits"], m=f"{float(curves['eps_mse_cond'][t - 1]):.4f}",
                      se=f"{float(curves['eps_mse_cond_se'][t - 1]):.4f}", t=t))


at_one_t()
st.markdown(tr("bound.why_simple", ratio=f"{float(weights['beta_tilde'][2]) / w_min:.0f}"))
st.latex(r"L_{\text{simple}}(\theta) = \mathbb{E}_{t,\,x_0,\,\epsilon}\Big[\big\|\epsilon - \epsilon_\theta(x_t, t)\big\|^2\Big]")
st.caption(tr("bound.eq14_source"))

# ------------------------------------------------------------------ 3. Algorithms 1 and 2
st.header(tr("bound.algorithms_title"), anchor="algorithms")
st.markdown(tr("bound.algorithms_intro"))
a1, a2 = st.columns(2)
with a1:
    st.markdown(tr("bound.alg1"))
with a2:
    st.markdown(tr("bound.alg2"))

check_yourself(tr, "bound")
