"""Page 10: flow matching. One Gaussian path x_t = alpha x0 + sigma eps, the shipped eps-network's prediction in
four other faces, the conditional and marginal velocity exact in 2-D, a velocity MLP trained in seconds, DDIM as
Euler on the rectified flow, the loss weights, and Euler against Heun on the quality meter."""

from ui.sidebar import sidebar, current_seed, current_device
from ui.exercises import check_yourself

import numpy as np
import streamlit as st
import torch

from diffusion_core import toy2d
from diffusion_core.models.weights import WeightsError
from diffusion_core.process.paths import PREDICTIONS
from diffusion_core.process.schedules import make_schedule
from ui import charts
from ui.flow import digits as fd
from ui.flow import lab as fl
from ui.flow import view as fv
from ui.follow import follow_slider, show_in_place
from ui.mix import mixed_pictures
from ui.model import shared_denoiser
from ui.playground import lab as pg
from ui.reverse.run import grid as image_grid
from ui.reverse.view import show

tr = sidebar("flow")

DATASETS = tuple(d for d in toy2d.DATASETS if d != "picture")
STEP_CHOICES = (300, 500, 1000, 1500, 2000, 3000, 5000)
WIDTH_CHOICES = (32, 64, 128, 256)
DEFAULTS = {"flow_data": "moons", "flow_points": 500, "flow_steps": 1500, "flow_width": 128, "flow_sampling": "uniform"}
EPS_SCHEDULE = ("linear", 1000)  # the eps-MLP's schedule: the playground's defaults
PICTURE_RANGE = 2.5  # x_t is drawn over [-2.5, 2.5]: the digit in [-1, 1] plus noise
COIN_STEPS = (2, 5, 10, 20)
N_STEPS = (1, 2, 3, 4, 5, 8, 10, 20, 50)
T_PATH_FIRST = 0.3  # where the t slider of the paths starts
T_FIELD_FIRST = 0.5  # where the t slider of the fields starts
N_FIRST = 10  # where the slider of the sampling steps starts
F = "{:.4g}".format  # numbers in the text: 4 significant digits, a decimal point


def number(v: float) -> str:
    return f"{v:.2e}" if v != 0 and abs(v) < 1e-3 else F(v)


st.html(fv.PHONE_CSS)  # style only: Streamlit adds it to the page without taking space
st.title(tr("flow.title"))
st.markdown(tr("flow.intro"))

# ------------------------------------------------------------------ 1. the path
st.header(tr("flow.path_header"))
st.markdown(tr("flow.path_intro"))
st.latex(r"\begin{gathered}x_t = \alpha(t)\,x_0 + \sigma(t)\,\varepsilon:\\ \underbrace{x_t = (1-t)\,x_0 + t\,"
         r"\varepsilon}_{\text{rectified flow}},\qquad \underbrace{x_t = \sqrt{\bar\alpha(t)}\,x_0 + "
         r"\sqrt{1-\bar\alpha(t)}\,\varepsilon}_{\text{VP}}\end{gathered}")


@st.fragment
def path_view() -> None:
    """The digit and t, the pictures at t on both paths (drawn by the browser at each step: ui/mix.py) and the
    numbers that relate them; the curves below, outside the fragment, move their marker in the browser."""
    c1, c2 = st.columns([1, 3])
    digit = c1.selectbox(tr("flow.digit_label"), range(10), index=7, key="flow_digit", help=tr("flow.digit_help"))
    t = c2.slider(tr("flow.t_label"), 0.0, 1.0, T_PATH_FIRST, 0.01, key="flow_t_path", help=tr("flow.t_help"))
    p = fd.path_pictures(digit, t, current_seed())
    # The three pictures at every t, drawn by the browser at each step (ui/mix.py); the numbers below by the server.
    mixed_pictures(fd.path_mix(digit, current_seed(), tr.lang, "flow_t_path", PICTURE_RANGE, 224), key="flow_path_pictures")
    if p["snr"] is None:
        st.caption(tr("flow.path_ends"))
    else:
        st.latex(r"\begin{gathered}\frac{\alpha_\text{VP}}{\alpha_\text{RF}} = \frac{\sigma_\text{VP}}{\sigma_\text{RF}} = "
                 r"\frac{1 + e^{-\lambda/2}}{\sqrt{1 + e^{-\lambda}}} = " + F(p["scale"]) +
                 r",\\ \lambda = \log\frac{\alpha^2}{\sigma^2} = " + F(p["snr"]) + r"\end{gathered}")
        st.caption(tr("flow.path_note", gap=number(p["gap"])))


path_view()
# The curves depend only on the language: outside the fragment, a step of t does not send them again, and their
# markers follow the slider in the browser (ui/follow.py).
coef_fig, snr_fig = fv.path_curves(tr.lang, tr, T_PATH_FIRST)
c1, c2 = st.columns(2)
c1.plotly_chart(coef_fig, key="flow_coef_chart")
c2.plotly_chart(snr_fig, key="flow_snr_chart")
follow_slider("flow_t_path", charts=["flow_coef_chart", "flow_snr_chart"], value=st.session_state["flow_t_path"])
st.caption(tr("flow.curves_note"))
st.markdown(tr("flow.why_scale"))
with st.container(border=True):
    st.markdown(tr("flow.conventions"))

# ------------------------------------------------------------------ 2. four predictions, one network
st.header(tr("flow.faces_header"))
st.markdown(tr("flow.faces_intro"))
st.latex(r"\begin{gathered}\hat x_0 = \frac{x_t - \sigma\hat\varepsilon}{\alpha},\qquad \nabla\log p_t = "
         r"-\frac{\hat\varepsilon}{\sigma},\\ \hat v = \alpha\hat\varepsilon - \sigma\hat x_0,\qquad \hat u = \alpha'\hat x_0"
         r" + \sigma'\hat\varepsilon\end{gathered}")
try:
    shared = shared_denoiser(current_device())
except WeightsError as e:
    st.error(tr("flow.weights_error"), icon=":material/error:")
    st.code(str(e), language=None)
    shared = None


@st.fragment
def faces_view() -> None:
    c1, c2, c3 = st.columns([1, 2, 1])
    digit = c1.selectbox(tr("flow.digit_label"), range(10), index=7, key="flow_face_digit")
    t = c2.slider(tr("flow.t_label"), 0.01, 0.99, 0.6, 0.01, key="flow_t_faces", help=tr("flow.faces_t_help"))
    path = c3.radio(tr("flow.path_label"), ("rectified_flow", "vp_cosine"), key="flow_face_path",
                    format_func=lambda p: tr(f"flow.path_{p}"))
    f = fd.faces(shared, digit, t, current_seed(), path)
    if "error" in f:
        st.info(tr("flow.undefined"), icon=":material/info:")
        return
    cols = st.container(key="flow_face_pictures").columns(6)
    show(cols[0], fd.to_picture(f["x_t"], PICTURE_RANGE), tr("flow.face_x_t"), side=168)
    for col, p in zip(cols[1:], PREDICTIONS):
        r = float(f["hat"][p].abs().max())
        show(col, fd.to_picture(f["hat"][p], r), tr(f"flow.face_{p}", r=F(r)), side=168)
    rows = {tr("flow.col_face"): [tr(f"flow.name_{p}") for p in PREDICTIONS],
            tr("flow.col_round_trip"): [number(f["round_trip"][p]) for p in PREDICTIONS],
            tr("flow.col_mse"): [number(f["mse"][p]) for p in PREDICTIONS],
            tr("flow.col_ratio"): [F(f["mse"][p] / f["mse"]["eps"]) for p in PREDICTIONS],
            tr("flow.col_weight"): [F(f["weight"][p]) for p in PREDICTIONS]}
    st.dataframe(rows, hide_index=True)
    st.caption(tr("flow.faces_note", worst=number(max(f["round_trip"].values()))))


if shared is not None:
    faces_view()

# ------------------------------------------------------------------ 3. conditional and marginal velocity in 2-D
st.header(tr("flow.exact_header"))
st.markdown(tr("flow.exact_intro"))
st.latex(r"\begin{gathered}u_t(x) = \mathbb{E}\big[\alpha' x_0 + \sigma'\varepsilon \,\big|\, x_t = x\big]\\ = "
         r"\sum_{i=1}^{M} w_i(x)\,\Big(\alpha' x_i + \sigma' \frac{x - \alpha x_i}{\sigma}\Big),\\ w_i \propto "
         r"\exp\!\Big(-\frac{\|x - \alpha x_i\|^2}{2\sigma^2}\Big)\end{gathered}")
for k, v in DEFAULTS.items():
    st.session_state.setdefault(k, v)
with st.form("flow_settings", border=True):
    c1, c2, c3 = st.columns(3)
    name = c1.radio(tr("flow.data_label"), DATASETS, key="flow_data", horizontal=True,
                    format_func=lambda d: tr(f"playground.data_{d}"))
    n_points = c1.slider(tr("flow.points_label"), 2, toy2d.MAX_POINTS, key="flow_points", help=tr("flow.points_help"))
    steps = c2.select_slider(tr("flow.steps_label"), STEP_CHOICES, key="flow_steps", help=tr("flow.steps_help"))
    width = c2.select_slider(tr("flow.width_label"), WIDTH_CHOICES, key="flow_width", help=tr("flow.width_help"))
    sampling = c3.radio(tr("flow.sampling_label"), ("uniform", "logit_normal"), key="flow_sampling",
                        format_func=lambda s: tr(f"flow.sampling_{s}"), help=tr("flow.sampling_help"))
    st.form_submit_button(tr("flow.train_button"), icon=":material/model_training:", type="primary")
seed = current_seed()
key = (name, n_points, seed, steps, width, sampling)
data = toy2d.distribution(name).sample(n_points, torch.Generator().manual_seed(seed))
data_np = data.numpy()
with st.spinner(tr("flow.exact_running")):
    exact = fl.exact_paths(key[:3], data, seed)
    var = fl.variance_over_t(key[:3], data)
c1, c2 = st.columns(2)
c1.plotly_chart(fv.lines_figure(tr, data_np, exact["straight"], title=tr("flow.straight_title"),
                                color=pg.COLORS["fresh"]), key="flow_straight")
c2.plotly_chart(fv.lines_figure(tr, data_np, exact["marginal"], title=tr("flow.marginal_title"),
                                color=pg.COLORS["exact"]), key="flow_marginal")
st.markdown(tr("flow.cross_note"))
st.markdown(tr("flow.theorem"))
st.latex(r"\begin{gathered}\underbrace{\mathbb{E}\,\|u_\theta(x_t) - (\alpha' x_0 + \sigma'\varepsilon)\|^2}_{L_\text{CFM}(t)}"
         r"\\ = \underbrace{\mathbb{E}\,\|u_\theta(x_t) - u_t(x_t)\|^2}_{L_\text{FM}(t)} + "
         r"\underbrace{\mathbb{E}_{x_t}\operatorname{Var}(\alpha' x_0 + \sigma'\varepsilon \mid x_t)}_{\mathcal{V}(t)}\end{gathered}")
st.plotly_chart(charts.curves_figure(var["t"], {tr("flow.variance_name"): var["variance"]}, tr("flow.t_log_axis"),
                                        tr("flow.variance_axis"), title=tr("flow.variance_title"), height=300)
                .update_xaxes(type="log"), key="flow_variance")
st.caption(tr("flow.variance_note"))

# ------------------------------------------------------------------ 4. train a flow in seconds
st.header(tr("flow.train_header"))
st.markdown(tr("flow.train_intro"))
st.latex(r"\begin{gathered}L_\text{CFM} = \mathbb{E}_{t,\,x_0,\,\varepsilon}\,\big\|u_\theta(x_t, t) - (\alpha'(t)\,x_0"
         r" + \sigma'(t)\,\varepsilon)\big\|^2\\ \overset{\text{RF}}{=}\; \mathbb{E}\,\|u_\theta(x_t, t) - (\varepsilon - "
         r"x_0)\|^2\end{gathered}")
store = fl.lab_store()
lab = store.peek(key)
if lab is None:
    bar = st.progress(0.0, text=tr("flow.training_flow", step=0, steps=steps))
    flow = toy2d.train_velocity_mlp(
        data, fl.PATH, toy2d.VelocityMLPConfig(width=width), toy2d.FlowTrainConfig(steps=steps, seed=seed, time_sampling=sampling),
        progress=lambda s, n, _: bar.progress(0.5 * s / n, text=tr("flow.training_flow", step=s, steps=n)))
    schedule = make_schedule(*EPS_SCHEDULE)
    eps = toy2d.train_mlp(data, schedule, toy2d.MLPConfig(T=schedule.T, width=width),
                          toy2d.TrainConfig(steps=steps, seed=seed),
                          progress=lambda s, n, _: bar.progress(0.5 + 0.5 * s / n, text=tr("flow.training_eps", step=s, steps=n)))
    x1 = torch.randn(fl.N_SAMPLES, 2, generator=torch.Generator().manual_seed(seed + 1))
    lab = fl.FlowLab(key=key, data=data, flow=flow, eps=eps, schedule=schedule, x1=x1)
    store.put(key, lab)
    bar.empty()
m1, m2, m3, m4 = st.columns(4)
m1.metric(tr("flow.metric_flow_time"), f"{lab.flow.seconds:.1f} s")
m2.metric(tr("flow.metric_eps_time"), f"{lab.eps.seconds:.1f} s")
m3.metric(tr("flow.metric_flow_loss"), f"{lab.flow.losses[-1]:.4f}")
m4.metric(tr("flow.metric_eps_loss"), f"{lab.eps.losses[-1]:.4f}")
c1, c2 = st.columns(2)
c1.plotly_chart(pg.loss_figure(lab.flow.steps, lab.flow.losses, x_title=tr("flow.step_axis"), y_title=tr("flow.loss_axis"),
                               name=tr("flow.loss_flow")), key="flow_loss_flow")
c2.plotly_chart(pg.loss_figure(lab.eps.steps, lab.eps.losses, x_title=tr("flow.step_axis"), y_title=tr("flow.loss_axis"),
                               name=tr("flow.loss_eps")), key="flow_loss_eps")
st.caption(tr("flow.loss_note"))


@st.fragment
def field_view() -> None:
    """The t slider and the two fields: the charts keep the first t's figures and the browser applies each step's
    (ui/follow.py); the losses beside them are the server's."""
    t = st.slider(tr("flow.t_label"), 0.05, 1.0, T_FIELD_FIRST, 0.05, key="flow_t_field", help=tr("flow.field_t_help"))
    figures, gap = fv.field_figures(key, t, tr.lang, tr, lab)
    shown, _ = fv.field_figures(key, T_FIELD_FIRST, tr.lang, tr, lab)
    for col, which in zip(st.columns(2), ("learned", "exact")):
        show_in_place(col, shown[which], f"flow_field_{which}")
    follow_slider("flow_t_field", figures={f"flow_field_{w}": figures[w] for w in ("learned", "exact")}, value=t,
                  label=None)
    losses = fl.losses_at(key, t, lab)
    st.caption(tr("flow.field_note", gap=f"{100 * gap:.0f}", cond=F(losses["conditional"]), marg=F(losses["marginal"]),
                  diff=F(losses["gap"]), var=F(losses["variance"]), se=f"{2 * losses['standard_error']:.2g}"))


field_view()


@st.fragment
def samples_view() -> None:
    """N and the three samplers' clouds: the charts keep the first N's clouds and a step of N applies the new ones to
    them (ui/follow.py); every N is sampled once per lab, in the background (fl.warm_in_background)."""
    n = st.select_slider(tr("flow.n_steps_label"), N_STEPS, value=N_FIRST, key="flow_n_steps", help=tr("flow.n_steps_help"))
    with st.spinner(tr("flow.sampling_running")):
        figures = fv.samples_figures(key, n, tr.lang, tr, lab)
        shown = fv.samples_figures(key, N_FIRST, tr.lang, tr, lab)
    for col, which in zip(st.columns(3), fv.SAMPLE_COLORS):
        show_in_place(col, shown[which], f"flow_samples_{which}")
    follow_slider("flow_n_steps", figures={f"flow_samples_{w}": figures[w] for w in fv.SAMPLE_COLORS},
                  value=N_STEPS.index(n), label=None)
    st.caption(tr("flow.samples_note"))


samples_view()

# ------------------------------------------------------------------ 5. the same coin
st.header(tr("flow.coin_header"))
st.markdown(tr("flow.coin_intro"))
st.latex(r"\begin{gathered}x_t + (t' - t)\,(\hat\varepsilon - \hat x_0) = (1-t')\,\hat x_0 + t'\,\hat\varepsilon\\"
         r"\Longleftrightarrow\quad x_{t'} = \sqrt{\bar\alpha_{t'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t'}}\,"
         r"\hat\varepsilon\ \ (\text{DDIM})\end{gathered}")


@st.fragment
def coin_view() -> None:
    k = st.select_slider(tr("flow.coin_steps_label"), COIN_STEPS, value=10, key="flow_coin_steps")
    holder = st.empty()
    with holder.status(tr("flow.coin_running"), expanded=False):
        c = fd.coin(shared, k, current_seed())
    holder.empty()
    cols = st.container(key="flow_coin_pictures").columns(3)
    show(cols[0], image_grid(np.stack([fd.to_picture(x, 1.0) for x in c["ddim"]]), 2), tr("flow.coin_ddim", k=k), side=280)
    show(cols[1], image_grid(np.stack([fd.to_picture(x, 1.0) for x in c["euler"]]), 2), tr("flow.coin_euler", k=k), side=280)
    m = max(c["max_difference"], 1e-30)
    show(cols[2], image_grid(np.stack([fd.to_picture(x, m) for x in c["difference"]]), 2),
         tr("flow.coin_diff", m=number(c["max_difference"])), side=280)
    sw = fv.sweep()
    f32 = sw["identity"]["max_difference_float32"] if sw and "identity" in sw else None
    st.caption(tr("flow.coin_note", m=number(c["max_difference"]), f32=number(f32) if f32 is not None else "–"))


if shared is not None:
    coin_view()
st.markdown(tr("flow.pf_ode"))
st.latex(r"\begin{gathered}\frac{dx}{dt} = f(t)\,x - \tfrac12 g(t)^2\,\nabla\log p_t(x),\\ f = \frac{\alpha'}{\alpha},"
         r"\quad g^2 = (\sigma^2)' - 2\frac{\alpha'}{\alpha}\sigma^2\\ \Longrightarrow\quad \frac{dx}{dt} = "
         r"\alpha'\,\hat x_0 + \sigma'\,\hat\varepsilon = u_t(x)\end{gathered}")

st.subheader(tr("flow.weights_header"))
st.markdown(tr("flow.weights_intro"))
st.latex(r"\begin{gathered}\hat x_0 - x_0 = -\frac{t}{1-t}(\hat\varepsilon - \varepsilon)\\ \Rightarrow\ \hat u - u = "
         r"-(\hat x_0 - x_0) + (\hat\varepsilon - \varepsilon) = \frac{\hat\varepsilon - \varepsilon}{1-t}\\ \Rightarrow\ "
         r"\|\hat u - u\|^2 = \frac{\|\hat\varepsilon - \varepsilon\|^2}{(1-t)^2}\end{gathered}")
if shared is not None:
    b = fd.weight_batch(shared, current_seed())
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(fv.weight_check_figure(tr, b), key="flow_weight_check")
    c2.markdown(tr("flow.weight_check_note", n=fd.WEIGHT_BATCH, gap=number(b["gap"])))
st.markdown(tr("flow.sd3"))
st.latex(r"\begin{gathered}\pi_\text{ln}(t;\,m, s) = \frac{1}{s\sqrt{2\pi}}\,\frac{1}{t(1-t)}\,\exp\!\Big(-\frac{"
         r"(\operatorname{logit} t - m)^2}{2s^2}\Big),\\ w(\lambda) = k(t)^2\,\frac{p_t(t)}{|d\lambda/dt|}\end{gathered}")
c1, c2 = st.columns([2, 3])
c1.plotly_chart(fv.density_figure(tr.lang, tr), key="flow_density")
c2.plotly_chart(fv.weights_figure(tr.lang, tr), key="flow_weights")
st.caption(tr("flow.weights_note"))

# ------------------------------------------------------------------ 6. Euler against Heun
st.header(tr("flow.heun_header"))
st.markdown(tr("flow.heun_intro"))
sw = fv.sweep()
if sw is None:
    st.info(tr("flow.no_sweep"), icon=":material/info:")
else:
    acc_fig, fd_fig = fv.sweep_figures(tr, sw["rows"])
    c1, c2 = st.columns(2)
    c1.plotly_chart(acc_fig, key="flow_sweep_accuracy")
    c2.plotly_chart(fd_fig, key="flow_sweep_fd")
    st.caption(tr("flow.sweep_note", n=sw["rows"][0]["n_samples"], machine=sw.get("meta", {}).get("machine", "?")))
st.subheader(tr("flow.heun_2d_header"))
if "energy" not in lab.extras:
    with st.spinner(tr("flow.energy_running")):
        fresh = toy2d.distribution(name).sample(fl.N_SAMPLES, torch.Generator().manual_seed(seed + 2))
        lab.extras["energy"] = (fl.energy_curves(key, lab), fl.energy_floor(key, data, fresh))
points, floor = lab.extras["energy"]
st.plotly_chart(fv.energy_figure(tr, points, floor), key="flow_energy")
st.caption(tr("flow.energy_note", n=fl.N_SAMPLES))

# Every N and t of the 2-D sliders, for later steps: started after the page is drawn, so that it does not slow it.
fl.warm_in_background(key, lab, N_STEPS, tuple(round(0.05 * k, 2) for k in range(1, 21)))

check_yourself(tr, "flow")
