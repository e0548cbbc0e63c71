"""Page 11: continuous time. The chain as a discretised SDE, three dynamics with one set of marginals checked
exactly in 2-D (with the Fokker-Planck equation), the reverse SDE against the ODE on MNIST, and the exact
likelihood of the ODE (2-D against the exact density; one digit in bits/dim beside page 6's bound)."""

from ui.sidebar import sidebar, current_seed, current_device
from ui.exercises import check_yourself

import math

import numpy as np
import streamlit as st

from diffusion_core.data.samples import list_sample_images, load_sample_image
from diffusion_core.models.weights import WeightsError
from diffusion_core.process import bound_estimate
from diffusion_core.process.image_likelihood import PAGE_SOLVER, dequantisation_floor
from diffusion_core.process.likelihood import SCALE
from diffusion_core.process.sde import network_ode
from ui import charts
from ui.bound import live as bl
from ui.continuous import dynamics as cd
from ui.continuous import likelihood as cl
from ui.continuous import mnist as cm
from ui.continuous import steps as cs
from ui.follow import follow_slider, show_in_place
from ui.model import shared_denoiser

tr = sidebar("continuous")
seed = current_seed()
D = 784
BOUND_STRATA = 50  # page 6's default
X0_FIRST = 0.8  # where the slider of the pixel's x0 starts
T_FIRST = 0.2  # where the slider of the 2-D time starts
TOL_FIRST = 1e-5  # where the slider of the tolerance starts
PROBES_FIRST = 1  # where the slider of Hutchinson's probes starts
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def f3(x: float) -> str:
    return f"{x:.3f}"


def sci(x: float, digits: int = 2) -> str:
    """A number for a table: plain from 1e-3 to 1e4, else with a power of ten written out."""
    if not math.isfinite(x):
        return "–"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits + 1}g}"
    e = math.floor(math.log10(abs(x)))
    return f"{x / 10**e:.{digits - 1}f}·10{str(e).translate(SUPERSCRIPT)}"


st.title(tr("continuous.title"))
st.markdown(tr("continuous.intro"))
st.info(tr("continuous.time_note"), icon=":material/schedule:")

# ------------------------------------------------------------------ 1. from steps to time
st.header(tr("continuous.steps_title"), anchor="steps")
st.markdown(tr("continuous.steps_intro"))
# Formulas in short lines (aligned), so that a phone shows them whole.
st.latex(r"\begin{aligned} x_k &= \sqrt{1-\beta_k}\,x_{k-1} + \sqrt{\beta_k}\,\varepsilon_k,\\ "
         r"\beta_k &= \tfrac1T\,\beta\big(\tfrac kT\big)\\ \Longrightarrow\ x_{t+\Delta t} - x_t &\approx "
         r"-\tfrac12\beta(t)\,x_t\,\Delta t\\ &\quad + \sqrt{\beta(t)}\,\sqrt{\Delta t}\,\varepsilon \end{aligned}")
st.latex(r"\begin{aligned} dx &= -\tfrac12\,\beta(t)\,x\,dt + \sqrt{\beta(t)}\,dW,\\ \beta(t) &= 0.1 + 19.9\,t,\qquad "
         r"\bar\alpha(t) = e^{-\int_0^t \beta(s)\,ds} \end{aligned}")
st.caption(tr("continuous.steps_source"))
st.warning(tr("continuous.beta_clash"), icon=":material/warning:")
rows = cs.chain_table()
st.table({
    tr("continuous.col_T"): [str(r.T) for r in rows],
    tr("continuous.col_error"): [sci(r.max_error) if r.valid else tr("continuous.no_chain", k=r.first_bad)
                                 for r in rows],
    tr("continuous.col_end_chain"): [sci(r.end_chain, 3) if r.valid else "–" for r in rows],
    tr("continuous.col_end_sde"): [sci(r.end_sde, 3) for r in rows],
})
valid = [r for r in rows if r.valid]
st.markdown(tr("continuous.table_note", ratio=f"{valid[0].max_error / valid[1].max_error:.1f}"))


@st.fragment
def pixel_path() -> None:
    c1, c2 = st.columns(2)
    x0 = c1.slider(tr("continuous.x0"), -1.0, 1.0, X0_FIRST, 0.1, key="continuous_x0", help=tr("continuous.x0_help"))
    T = c2.select_slider(tr("continuous.path_T"), cs.PATH_T, value=100, key="continuous_path_T")
    paths = cs.pixel_paths(T, seed)
    # The chart keeps the figure at the slider's first x0; the browser applies this x0's lines to it (ui/follow.py).
    show_in_place(st, cs.pixel_figure(tr, paths, X0_FIRST, T), "continuous_pixel_chart")
    follow_slider("continuous_x0", figures={"continuous_pixel_chart": cs.pixel_figure(tr, paths, x0, T)}, value=x0,
                  label=None)
    chain, em = paths.at(x0)
    st.caption(tr("continuous.path_note", gap=f"{float(np.abs(chain - em).max()):.3f}", T=T))


pixel_path()

# ------------------------------------------------------------------ 2. three dynamics
st.header(tr("continuous.dyn_title"), anchor="three-dynamics")
st.markdown(tr("continuous.dyn_intro"))
st.latex(rf"\begin{{aligned}} &\text{{{tr('continuous.eq_forward')}}}\\ &\qquad dx = f\,x\,dt + g\,dW \\"
         rf"&\text{{{tr('continuous.eq_reverse')}}}\\ &\qquad dx = \big[f\,x - g^2\,\nabla\log p_t\big]\,dt + g\,d\bar W \\"
         rf"&\text{{{tr('continuous.eq_ode')}}}\\ &\qquad \frac{{dx}}{{dt}} = f\,x - \tfrac12\,g^2\,\nabla\log p_t "
         rf"\end{{aligned}}")
st.latex(r"\begin{aligned} f(t) &= \frac{\alpha'}{\alpha},\\ g(t)^2 &= 2\sigma\sigma' - 2\frac{\alpha'}{\alpha}\sigma^2,"
         r"\\ \nabla_x\log p_t(x) &= -\frac{\hat\varepsilon(x, t)}{\sigma(t)} \end{aligned}")
st.caption(tr("continuous.dyn_source"))
st.markdown(tr("continuous.dyn_time"))
st.markdown(tr("continuous.dyn_flow"))
try:
    bench2d = cd.load_bench()
except cd.BenchError as e:
    st.warning(tr("continuous.bench_damaged"), icon=":material/warning:")
    st.code(str(e), language=None)
    bench2d = None
if bench2d is None:
    st.info(tr("continuous.bench2d_missing"), icon=":material/hourglass_empty:")
meta2d = bench2d["meta"] if bench2d else None
DATA_NAMES = tuple(bench2d["datasets"]) if bench2d else ()


@st.fragment
def three_dynamics(name: str) -> None:
    times = meta2d["times"]
    if not cd.is_warm(name, meta2d["points"], meta2d["seed"], times):
        with st.spinner(tr("continuous.warming")):
            cd.warm(name, meta2d["points"], meta2d["seed"], times)
    t = st.select_slider(tr("continuous.t"), times, value=T_FIRST, key="continuous_t", help=tr("continuous.t_help"))
    i = times.index(t)
    st.caption(tr("continuous.dyn_setup", particles=meta2d["particles"], points=meta2d["points"],
                  steps=meta2d["steps"], seed=meta2d["seed"]))
    first = times.index(T_FIRST) if T_FIRST in times else 0
    axes = (tr("continuous.axis_x1"), tr("continuous.axis_x2"))

    def cloud(k: int, dynamic: str):
        return cd.clouds_figure(name, k, dynamic, tr(f"continuous.dyn_{dynamic}", t=times[k]), *axes,
                                tr("continuous.cloud_name"), tr("continuous.contour_name", t=times[k]))

    def heat(k: int, side: str, title: str):
        return cd.fokker_planck_figure(name, meta2d["points"], meta2d["seed"], times[k], side, tr(title), *axes, "∂p/∂t")

    # The charts keep the figures at the slider's first t; the browser applies this t's to them (ui/follow.py).
    moving = {}
    for col, dynamic in zip(st.columns(3), cd.DYNAMICS):
        show_in_place(col, cloud(first, dynamic), f"continuous_cloud_{dynamic}")
        moving[f"continuous_cloud_{dynamic}"] = cloud(i, dynamic)
    r = bench2d["datasets"][name]
    noise = r["noise"][i]
    st.table({
        tr("continuous.col_dynamic"): [tr(f"continuous.dyn_{d}_short") for d in cd.DYNAMICS],
        tr("continuous.col_start"): [tr(f"continuous.start_{d}") for d in cd.DYNAMICS],
        tr("continuous.col_random"): [tr("continuous.yes"), tr("continuous.yes"), tr("continuous.no")],
        tr("continuous.col_energy"): [f"{r['energy'][d][i]:+.4f}" for d in cd.DYNAMICS],
        tr("continuous.col_ratio"): [f"{r['z'][d][i]:+.1f}" for d in cd.DYNAMICS],
    })
    worst = max(abs(v) for d in cd.DYNAMICS for v in r["z"][d])
    st.markdown(tr("continuous.energy_note", noise=f"{noise:.4f}", mean=f"{r['noise_mean'][i]:+.4f}",
                   worst=f"{worst:.1f}", n=len(times)))

    st.subheader(tr("continuous.fp_title"), anchor="fokker-planck")
    st.latex(r"\frac{\partial p_t}{\partial t} = -\nabla\cdot\big(f(t)\,x\,p_t\big) + \tfrac12\,g(t)^2\,\Delta p_t")
    fp = cd.fokker_planck_grid(name, meta2d["points"], meta2d["seed"], t)
    for col, side, title in zip(st.columns(2), ("dp_dt", "rhs"), ("continuous.fp_left", "continuous.fp_right")):
        show_in_place(col, heat(first, side, title), f"continuous_fp_{side}")
        moving[f"continuous_fp_{side}"] = heat(i, side, title)
    follow_slider("continuous_t", figures=moving, value=i, label=None)
    st.markdown(tr("continuous.fp_note", t=t, residual=sci(fp["residual"]), wrong=f"{100 * fp['wrong']:.0f}",
                   dp=sci(fp["largest"]["dp_dt"], 3), transport=sci(fp["largest"]["transport"], 3),
                   diffusion=sci(fp["largest"]["diffusion"], 3), grid=cd.FP_GRID))


if bench2d is not None:
    # The data set drives sections 2 and 4: outside the fragments, so that a change reruns both.
    dataset = st.selectbox(tr("continuous.dataset"), DATA_NAMES, key="continuous_dataset",
                           format_func=lambda n: tr(f"continuous.data_{n}"), help=tr("continuous.dataset_help"))
    three_dynamics(dataset)

# ------------------------------------------------------------------ 3. reverse SDE against ODE on MNIST
st.header(tr("continuous.mnist_title"), anchor="sde-or-ode")
st.markdown(tr("continuous.mnist_intro"))
try:
    shared = shared_denoiser(current_device())
except WeightsError as e:
    st.error(tr("continuous.weights_error"), icon=":material/error:")
    st.code(str(e), language=None)
    shared = None
net_ode = network_ode(shared.model.schedule) if shared is not None else None


@st.fragment
def sde_against_ode() -> None:
    c1, c2 = st.columns([1, 2])
    label = c1.selectbox(tr("continuous.label"), range(10), index=3, key="continuous_label")
    calls = c2.select_slider(tr("continuous.calls"), cm.CALL_CHOICES, value=50, key="continuous_calls",
                             help=tr("continuous.calls_help"))
    result = cm.cached_sde_vs_ode(shared, label, calls, seed)
    if result is not None:
        st.session_state["continuous_sde_on"] = True  # a result is shown: the next setting runs at once too
    elif not st.session_state.get("continuous_sde_on"):
        # Network work starts on request (a few seconds); from then on every setting runs at once.
        if not st.button(tr("continuous.sde_run"), key="continuous_sde_run", type="primary", icon=":material/play_arrow:"):
            st.caption(tr("continuous.sde_wait", calls=calls))
            return
        st.session_state["continuous_sde_on"] = True
    if result is None:
        text = tr("continuous.progress_sde", calls=calls)
        bar = st.progress(0.0, text=text)
        result = cm.sde_vs_ode(shared, label, calls, seed, progress=lambda f: bar.progress(min(f, 1.0), text=text))
        bar.empty()
    cols = st.columns(2 + cm.SDE_DRAWS)
    charts_list = [(result.x1, tr("continuous.img_start")), (result.ode, tr("continuous.img_ode"))]
    charts_list += [(img, tr("continuous.img_sde", i=k + 1)) for k, img in enumerate(result.sde)]
    for col, (img, caption) in zip(cols, charts_list):
        col.image(charts.enlarge(img, 112), caption=caption, output_format="PNG", width="stretch")
    st.markdown(tr("continuous.sde_note", spread=f"{result.sde_spread:.3f}", seconds=f"{result.seconds:.1f}",
                   calls=calls))


if shared is not None:
    sde_against_ode()

st.subheader(tr("continuous.quality_title"), anchor="quality")
st.markdown(tr("continuous.quality_intro"))
try:
    sampling = cm.load_sampling()
except cm.BenchFileError as e:
    st.warning(tr("continuous.bench_damaged"), icon=":material/warning:")
    st.code(str(e), language=None)
    sampling = None
if sampling is None:
    st.info(tr("continuous.sampling_missing"), icon=":material/hourglass_empty:")
else:
    methods = cm.METHODS
    fig = cm.quality_figure(tr, sampling["rows"])
    st.plotly_chart(fig, key="continuous_quality_chart")
    rows_q = sorted(sampling["rows"], key=lambda r: (r["calls"], methods.index(r["method"])))
    st.dataframe({
        tr("continuous.col_method"): [tr(f"continuous.method_{r['method']}") for r in rows_q],
        tr("continuous.col_calls"): [str(r["calls"]) for r in rows_q],
        tr("continuous.col_samples"): [str(r["n_samples"]) for r in rows_q],
        tr("continuous.col_accuracy"): [f"{100 * r['accuracy']:.0f} [{100 * r['accuracy_ci_low']:.0f}, "
                                        f"{100 * r['accuracy_ci_high']:.0f}]" for r in rows_q],
        tr("continuous.col_fd"): [f"{r['fd'] / r['fd_floor']:.2f}" for r in rows_q],
    }, hide_index=True, key="continuous_quality_table")
    st.caption(tr("continuous.quality_note", machine=sampling["meta"].get("machine", ""),
                  s=sampling["meta"].get("guidance", "")))

# ------------------------------------------------------------------ 4. the likelihood of the ODE
st.header(tr("continuous.ll_title"), anchor="likelihood")
st.markdown(tr("continuous.ll_intro"))
st.latex(r"\begin{aligned} \frac{d}{dt}\log p_t(x_t) &= -\nabla\cdot u(x_t, t)\\ \Longrightarrow\ "
         r"\log p_{t_0}(x) &= \log p_1(x_1)\\ &\quad + \int_{t_0}^{1}\nabla\cdot u(x_t, t)\,dt \end{aligned}")
st.caption(tr("continuous.ll_source"))


@st.fragment
def likelihood_2d(name: str) -> None:
    tols = meta2d["tolerances"]
    tol = st.select_slider(tr("continuous.tol"), tols, value=TOL_FIRST, key="continuous_tol",
                           format_func=lambda v: f"{v:.0e}", help=tr("continuous.tol_help"))
    i = tols.index(tol)
    err, _ = cl.errors(name)
    lik = bench2d["datasets"][name]["likelihood"]
    first = tols.index(TOL_FIRST) if TOL_FIRST in tols else 0
    c1, c2 = st.columns(2)
    show_in_place(c1, cl.scatter_figure(tr, name, first), "continuous_ll_scatter")  # the browser applies tol's
    show_in_place(c2, cl.error_figure(tr, name, first), "continuous_ll_errors")
    follow_slider("continuous_tol", figures={"continuous_ll_scatter": cl.scatter_figure(tr, name, i),
                                             "continuous_ll_errors": cl.error_figure(tr, name, i)}, value=i, label=None)
    st.markdown(tr("continuous.ll_note", data=tr(f"continuous.data_{name}"), n=err.shape[1], t0=meta2d["t_start"],
                   tol=f"{tol:.0e}", worst=sci(float(err[i].max())), median=sci(float(np.median(err[i]))),
                   nfe=lik["nfe"][i]))


if bench2d is not None:
    st.subheader(tr("continuous.ll2d_title"), anchor="likelihood-2d")
    st.markdown(tr("continuous.ll2d_intro"))
    likelihood_2d(dataset)

    st.subheader(tr("continuous.hutch_title"), anchor="hutchinson")
    st.latex(r"\begin{aligned} \nabla\cdot u(x) &= \operatorname{tr}\frac{\partial u}{\partial x} = \mathbb{E}_v\Big[v^\top "
             r"\frac{\partial u}{\partial x}\,v\Big]\\ &\approx \frac1k\sum_{j=1}^{k} v_j^\top \frac{\partial u}{\partial x}"
             r"\,v_j,\\ v_j &\in \{-1, +1\}^D \end{aligned}")
    st.markdown(tr("continuous.hutch_intro"))

    @st.fragment
    def hutchinson(name: str) -> None:
        k = st.select_slider(tr("continuous.probes"), cl.PROBES, value=PROBES_FIRST, key="continuous_probes")
        res = cl.hutchinson(name, k, seed)
        show_in_place(st, cl.hutchinson_figure(tr, cl.hutchinson(name, PROBES_FIRST, seed), PROBES_FIRST),
                      "continuous_hutch_chart")  # the browser applies k's
        follow_slider("continuous_probes", figures={"continuous_hutch_chart": cl.hutchinson_figure(tr, res, k)},
                      value=cl.PROBES.index(k), label=None)
        err = res["estimate"] - res["exact"]
        st.markdown(tr("continuous.hutch_note", k=k, bias=f"{float(err.mean()):+.2f}",
                       se=f"{float(err.std(ddof=1) / math.sqrt(len(err))):.2f}", spread=f"{float(err.std()):.2f}",
                       single=f"{res['single_spread']:.2f}", t0=meta2d["t_start"],
                       typical=f"{float(np.median(np.abs(res['exact']))):.0f}"))

    hutchinson(dataset)

st.subheader(tr("continuous.digit_title"), anchor="digit-likelihood")
st.markdown(tr("continuous.digit_intro"))
st.latex(rf"\begin{{aligned}} \text{{{tr('bound.bpd_unit')}}} &= -\frac{{\log p_{{t_0}}(x) - D\log 127.5}}{{D\ln 2}},\\ "
         r"x &= x_0 + \frac{u - \frac12}{127.5},\quad u\sim\mathcal U[0, 1)^D \end{aligned}")
st.markdown(tr("continuous.digit_terms"))


@st.fragment
def digit_likelihood() -> None:
    names = list_sample_images("digit")
    c1, c2, c3 = st.columns([1, 2, 2])
    source = c2.selectbox(tr("continuous.digit"), names, index=3, key="continuous_digit",
                          format_func=lambda n: tr(f"samples.{n}") if tr.has(f"samples.{n}") else n)
    true_label = int(source.rsplit("_", 1)[1])
    label = c3.selectbox(tr("continuous.digit_label"), range(10), index=true_label, key=f"continuous_digit_label_{source}")
    digit = load_sample_image(source)
    c1.image(charts.enlarge(digit, 112), caption=tr("continuous.digit_caption"), output_format="PNG")
    result = cm.cached_likelihood(shared, digit, label, seed)
    if result is None:
        if not st.button(tr("continuous.digit_run"), key="continuous_digit_run", type="primary",
                         icon=":material/calculate:"):
            st.caption(tr("continuous.digit_wait"))
            return
        text = tr("continuous.progress_ll")
        bar = st.progress(0.0, text=text)
        result = cm.digit_likelihood(shared, digit, label, seed, progress=lambda f: bar.progress(min(f, 1.0), text=text))
        bar.empty()
    bound = bl.cached_bound(digit, label, BOUND_STRATA, seed)
    if bound is None:
        text = tr("continuous.progress_bound")
        bar = st.progress(0.0, text=text)
        bound = bl.live_bound(shared, digit, label, BOUND_STRATA, seed, progress=lambda f: bar.progress(min(f, 1.0), text=text))
        bar.empty()
    est = bound.results["cond"].estimate["beta_tilde"]
    one, two = result.dequantised, result.decoder
    m1, m2, m3 = st.columns(3)
    m1.metric(tr("continuous.metric_ode"), f3(float(one.bpd[0])), help=tr("continuous.metric_ode_help"))
    m2.metric(tr("continuous.metric_decoder"), f3(float(two.bpd[0])), help=tr("continuous.metric_decoder_help"))
    m3.metric(tr("continuous.metric_bound"), f"{f3(float(est.total[0]))} ± {f3(float(est.standard_error[0]))}",
              help=tr("continuous.metric_bound_help"))
    prior, delta = float(one.prior_nats[0]), float(one.ode_nats[0] - one.prior_nats[0])
    jac = D * math.log(SCALE)
    st.latex(rf"\begin{{aligned}} \log p_{{t_0}}(x) &= \underbrace{{{prior:.1f}}}_{{\log p_1(x_1)}} + "
             rf"\underbrace{{{delta:.1f}}}_{{\int \nabla\cdot u\,dt}} = {prior + delta:.1f}\ \text{{nat}},\\ "
             rf"\text{{{tr('bound.bpd_unit')}}} &= -\frac{{{prior + delta:.1f} - {jac:.1f}}}{{{D} \cdot {math.log(2):.4f}}} = "
             rf"{float(one.bpd[0]):.3f} \end{{aligned}}")
    sigma0 = float(net_ode.path.sigma(net_ode.t_start))
    st.markdown(tr("continuous.digit_note", nfe=one.nfe + two.nfe, seconds=f"{result.seconds:.1f}",
                   tol=f"{PAGE_SOLVER.rtol:.0e}", latent=f"{float(one.latent_sq[0]):.2f}",
                   l0=f3(float(two.decoder_bpd[0])), floor=f3(dequantisation_floor(sigma0)), sigma=f"{sigma0:.4f}",
                   half=f"{0.5 / SCALE:.4f}", strata=len(bound_estimate.stratum_bounds(shared.model.schedule.T,
                                                                                         BOUND_STRATA)) - 1))


if shared is not None:
    digit_likelihood()

st.subheader(tr("continuous.why_title"), anchor="why")
try:
    lb = cm.load_likelihood()
except cm.BenchFileError as e:
    st.warning(tr("continuous.bench_damaged"), icon=":material/warning:")
    st.code(str(e), language=None)
    lb = None
if lb is None:
    st.info(tr("continuous.likelihood_missing"), icon=":material/hourglass_empty:")
else:
    s, pd = lb["summary"], lb["paired"]
    pm = lambda k: f"{s[k][0]:.3f} ± {s[k][1]:.3f}"  # noqa: E731
    st.table({
        tr("continuous.col_estimate"): [tr(f"continuous.est_{k}") for k in ("ode_cond", "ode_uncond", "decoder_cond",
                                                                            "bound_cond")],
        tr("continuous.col_kind"): [tr(f"continuous.kind_{k}") for k in ("ode_cond", "ode_uncond", "decoder_cond",
                                                                         "bound_cond")],
        tr("continuous.col_bpd"): [pm(k) for k in ("ode_cond", "ode_uncond", "decoder_cond", "bound_cond")],
    })
    st.caption(tr("continuous.bench_ll_caption", n=lb["digits"], tol=f"{lb['tol']:.0e}", probes=lb["probes"],
                  nfe=lb.get("nfe_per_solve", "–"), seconds=lb.get("seconds_per_digit", "–")))
    st.markdown(tr("continuous.why_text", floor=f3(lb["floor"]), sigma=f"{lb['sigma_start']:.4f}",
                   half=f"{0.5 / SCALE:.4f}", diff=f"{pd['ode_cond-bound_cond'][0]:+.3f}",
                   diff_se=f"{pd['ode_cond-bound_cond'][1]:.3f}", dec=f"{pd['decoder_cond-bound_cond'][0]:+.3f}",
                   dec_se=f"{pd['decoder_cond-bound_cond'][1]:.3f}", below=lb["below_bound"], n=lb["digits"],
                   label=f"{pd['ode_uncond-ode_cond'][0]:+.3f}", label_se=f"{pd['ode_uncond-ode_cond'][1]:.3f}",
                   label_bits=f"{math.log2(10) / D:.4f}"))
st.markdown(tr("continuous.scale_text"))

check_yourself(tr, "continuous")
