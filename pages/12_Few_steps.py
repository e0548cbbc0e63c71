"""Page 12: one or two steps. Straighten a flow (reflow, Liu et al. 2023) or distil its endpoint (consistency
distillation, Song et al. 2023): in 2-D, trained here in seconds; on MNIST, the shipped network's reflowed student
beside its teacher, and every sampler's quality against network calls."""

from ui.sidebar import sidebar, current_device, current_seed
from ui.exercises import check_yourself

import streamlit as st

from diffusion_core.models.weights import WeightsError
from diffusion_core.toy2d import fewstep as fs
from ui import charts
from ui.fewstep import digits as dg
from ui.fewstep import lab2d
from ui.follow import follow_slider, show_in_place
from ui.model import shared_denoiser

tr = sidebar("fewstep")
K_DATA, K_TEACHER, K_CLOUD_K, K_SEED, K_METRIC = (
    "fewstep_data", "fewstep_teacher", "fewstep_cloud_k", "fewstep_digit_seed", "fewstep_metric")

st.title(tr("fewstep.title"))
st.markdown(tr("fewstep.intro"))
st.info(tr("fewstep.time_note"), icon=":material/swap_horiz:")

# ------------------------------------------------------------------ part 1: 2-D
st.header(tr("fewstep.part1_header"))
st.session_state.setdefault(K_DATA, lab2d.DATASETS[0])
st.session_state.setdefault(K_TEACHER, fs.TEACHERS[0])
with st.form("fewstep_settings", border=True):
    c1, c2 = st.columns(2)
    dataset = c1.radio(tr("fewstep.data_label"), lab2d.DATASETS, key=K_DATA, horizontal=True,
                       format_func=lambda d: tr(f"playground.data_{d}"))
    teacher_kind = c2.radio(tr("fewstep.teacher_label"), fs.TEACHERS, key=K_TEACHER, horizontal=True,
                            format_func=lambda k: tr(f"fewstep.teacher_{k}"), help=tr("fewstep.teacher_help"))
    st.form_submit_button(tr("fewstep.train_button"), icon=":material/model_training:", type="primary")
st.caption(tr("fewstep.settings_note", points=fs.N_POINTS, pairs=fs.N_PAIRS, n=fs.N_EVAL))
lab = lab2d.build_lab(tr, dataset, teacher_kind, current_seed())
meter = lab.meter

st.subheader(tr("fewstep.pairs_header"))
st.markdown(tr("fewstep.pairs_intro", steps=fs.TEACHER_STEPS))
st.latex(r"\begin{gathered}x_1 \sim \mathcal{N}(0, I),\quad x_0 = \mathrm{ODE}_u(x_1):\\ "
         r"\frac{dx}{dt} = u(x, t)\ \text{from } t = 1 \text{ to } t = 0\end{gathered}")

st.subheader(tr("fewstep.reflow_header"))
st.markdown(tr("fewstep.reflow_intro"))
st.latex(r"\begin{gathered}\min_\theta\ \mathbb{E}_{(x_0, x_1),\,t}\left\|(x_1 - x_0) - u_\theta(x_t, t)\right\|^2,\\ "
         r"x_t = (1-t)\,x_0 + t\,x_1,\quad t \sim \mathcal{U}(0, 1)\end{gathered}")
st.markdown(tr("fewstep.straightness_intro"))
st.latex(r"\begin{gathered}S = \int_0^1 \mathbb{E}\left\|(Z_1 - Z_0) - \dot Z_t\right\|^2 dt,\\ "
         r"\dot Z_t = u(Z_t, t)\end{gathered}")
cols = st.columns(2)
for col, which in zip(cols, ("teacher", "reflow")):
    col.plotly_chart(lab2d.paths_figure(tr, lab, which), key=f"fewstep_paths_{which}")
m1, m2, m3 = st.columns(3)
m1.metric(tr("fewstep.metric_s_teacher"), f"{meter.straightness['teacher']:.4f}")
m2.metric(tr("fewstep.metric_s_reflow"), f"{meter.straightness['reflow']:.4f}")
m3.metric(tr("fewstep.metric_train_reflow"), f"{lab.reflow.seconds:.1f} s")
st.caption(tr("fewstep.straightness_note"))

st.subheader(tr("fewstep.consistency_header"))
st.markdown(tr("fewstep.consistency_intro"))
st.latex(r"\begin{gathered}f_\theta(x, t) = c_\text{skip}(t)\,x + c_\text{out}(t)\,F_\theta(x, t),\\ "
         r"c_\text{skip} = \frac{(1-t)\,\sigma_d^2}{(1-t)^2\sigma_d^2 + t^2},\quad "
         r"c_\text{out} = \frac{t\,\sigma_d}{\sqrt{(1-t)^2\sigma_d^2 + t^2}}\end{gathered}")
st.markdown(tr("fewstep.consistency_loss", n=fs.CONSISTENCY_TRAINING.intervals, mu=fs.CONSISTENCY_TRAINING.mu))
st.latex(r"\begin{gathered}\min_\theta\ \mathbb{E}\left\|f_\theta(x_{t_{n+1}}, t_{n+1}) - "
         r"f_{\theta^-}(\hat x_{t_n}, t_n)\right\|^2,\\ "
         r"\hat x_{t_n} = \Phi_\text{Heun}(x_{t_{n+1}};\,t_{n+1} \to t_n)\end{gathered}")
st.markdown(tr("fewstep.consistency_sampling"))
c1, c2 = st.columns(2)
c1.metric(tr("fewstep.metric_train_consistency"), f"{lab.consistency.seconds:.1f} s")
c2.metric(tr("fewstep.metric_loss_consistency"), charts.fmt(lab.consistency.losses[-1]))

st.subheader(tr("fewstep.meter_header"))
st.markdown(tr("fewstep.meter_intro", n=fs.N_EVAL, steps=fs.TEACHER_STEPS))
st.latex(r"\begin{aligned}D_E(P, Q) &= 2\,\mathbb{E}\|X - Y\|\\ &\quad - \mathbb{E}\|X - X'\| - "
         r"\mathbb{E}\|Y - Y'\|\end{aligned}")
st.plotly_chart(lab2d.meter_figure(tr, meter), key="fewstep_meter")
ref = meter.distances["teacher", fs.TEACHER_STEPS]
g1, g2 = st.columns(2)
g1.metric(tr("fewstep.goal_reflow"), f"{meter.distances['teacher', 1] / meter.distances['reflow', 1]:.0f}×",
          help=tr("fewstep.goal_reflow_help"))
g2.metric(tr("fewstep.goal_consistency"), f"{meter.distances['consistency', 1] / ref:.2f}×",
          help=tr("fewstep.goal_consistency_help"))


@st.fragment
def clouds_view() -> None:
    """The samples of the three methods at the chosen number of calls; only this block reruns."""
    st.session_state.setdefault(K_CLOUD_K, fs.FEW_STEPS[0])
    k = st.segmented_control(tr("fewstep.cloud_k_label"), fs.FEW_STEPS, key=K_CLOUD_K,
                             format_func=lambda c: lab2d.calls_text(tr, c))
    k = k or fs.FEW_STEPS[0]
    # The charts keep the first k's clouds; the browser applies this k's to them (ui/follow.py): not rebuilt.
    methods = ("teacher", "reflow", "consistency")
    for col, method in zip(st.columns(3), methods):
        show_in_place(col, lab2d.clouds_figure(tr, lab, method, fs.FEW_STEPS[0]), f"fewstep_cloud_{method}")
    follow_slider(K_CLOUD_K, figures={f"fewstep_cloud_{m}": lab2d.clouds_figure(tr, lab, m, k) for m in methods},
                  value=fs.FEW_STEPS.index(k), label=None)
    st.caption(tr("fewstep.cloud_note"))


clouds_view()

# ------------------------------------------------------------------ part 2: MNIST
st.header(tr("fewstep.part2_header"))
data = dg.results()
try:
    shared = shared_denoiser(current_device())
    student = dg.student()
except WeightsError as e:
    st.error(tr("fewstep.weights_error"), icon=":material/error:")
    st.code(str(e), language=None)
    st.stop()
if data is None:
    st.info(tr("fewstep.no_results"), icon=":material/info:")
    st.stop()
meta = data["meta"]
st.markdown(tr("fewstep.student_intro", pairs=meta["pairs"]["count"], pair_calls=meta["pairs"]["steps"],
               guidance=f"{meta['student_guidance']:g}", steps=meta["training"].get("steps", "?"),
               batch=meta["training"].get("batch", "?"),
               minutes=f"{meta['training'].get('seconds', 0) / 60:.0f}"))
st.code('from diffusion_core import generate, load_denoiser\n\nmodel = load_denoiser(name="reflow")\n'
        'digits = generate(model, [3, 1, 4, 1, 5], steps=2)   # two network calls', language="python")
st.latex(r"\begin{aligned}u_\theta(x_t, t) &= (\sigma - \alpha)\,\frac{x_t}{r}\\ &\quad + (\alpha + \sigma)\,"
         r"F_\theta\!\left(\frac{x_t}{r}, \tau(t), y\right),\\ r &= \sqrt{(1-t)^2 + t^2},\\ "
         r"\alpha &= \frac{1-t}{r},\quad \sigma = \frac{t}{r}\end{aligned}")
st.markdown(tr("fewstep.student_param"))

st.subheader(tr("fewstep.side_header"))
seeds = sorted(dg.gallery_images(data))
st.session_state.setdefault(K_SEED, seeds[0])


@st.fragment
def side_by_side() -> None:
    seed = st.segmented_control(tr("fewstep.side_seed"), seeds, key=K_SEED) or seeds[0]
    live = dg.live_columns(seed, shared.model, shared.lock)
    columns = (("teacher50", dg.teacher_column(data, seed)), ("dpm2", live["dpm2"]),
               ("student1", live["student1"]), ("student2", live["student2"]))
    for col, (name, column) in zip(st.columns(4), columns):
        with col:
            charts.show_image(column.image, tr(f"fewstep.side_{name}"), min_side=200)
            if column.seconds is not None:
                st.caption(tr("fewstep.side_time", ms=f"{1000 * column.seconds:.0f}"))
    st.caption(tr("fewstep.side_note", pair_calls=meta["pairs"]["steps"]))


side_by_side()

st.subheader(tr("fewstep.quality_header"))
st.markdown(tr("fewstep.quality_intro", n=data["rows"][0]["n_samples"]))
rows = dg.all_rows(data)


@st.fragment
def quality_view() -> None:
    st.session_state.setdefault(K_METRIC, "fd")
    metric = st.segmented_control(tr("fewstep.metric_label"), ("fd", "accuracy"), key=K_METRIC,
                                  format_func=lambda m: tr(f"fewstep.metric_{m}")) or "fd"
    st.plotly_chart(dg.quality_figure(tr, rows, metric), key="fewstep_quality")


quality_view()
st.dataframe(dg.table_rows(tr, data), hide_index=True, width="stretch")
for name, goal in data.get("goals", {}).items():
    text = tr(f"fewstep.goal_{name}_{'met' if goal['met'] else 'missed'}",
              accuracy=f"{100 * goal['measured_accuracy']:.1f}", fd=f"{goal['measured_fd_over_floor']:.2f}")
    (st.success if goal["met"] else st.warning)(text)
st.caption(tr("fewstep.quality_note", machine=meta["machine"]))

check_yourself(tr, "fewstep")
