"""Page 8: how many steps does it take? DDIM is the first-order exponential integrator of the probability-flow
ODE in lambda (Song et al. 2021; Lu et al. 2022), DPM-Solver++(2M) its second-order multistep cousin; two samplers side by side from the same
x_T, the paths of a few pixels against lambda, a live quality meter, and the benchmark's sweep."""

from ui.sidebar import sidebar, current_seed, current_device
from ui.exercises import check_yourself

import streamlit as st

from diffusion_core.samplers.ode_paths import ddim_in_x0_form, dpm_solver_plan, lambdas, pick_pixels
from diffusion_core.samplers import SAMPLERS, SPACINGS
from diffusion_core.samplers.trajectory import rms_distance
from diffusion_core.models.weights import WeightsError
from ui.steps import run as sr
from ui.steps import view as sv
from ui.follow import follow_slider, show_in_place
from ui.model import shared_denoiser
from ui.reverse.run import grid
from ui.reverse.view import fmt, show

tr = sidebar("steps")

st.title(tr("steps.title"))
st.markdown(tr("steps.intro"))

device = current_device()
try:
    shared = shared_denoiser(device)
except WeightsError as e:
    st.error(tr("steps.weights_error"), icon=":material/error:")
    st.caption(tr("steps.weights_detail"))
    st.code(str(e), language=None)
    st.stop()
schedule = shared.model.schedule
T = schedule.T
STEPS = tuple(c for c in sr.STEP_CHOICES if c < T) + ((T,) if T <= sr.STEP_CHOICES[-1] else ())
DEFAULT_STEPS = min(STEPS, key=lambda c: abs(c - 10))


def sampler_name(s: str) -> str:
    return tr(f"steps.sampler_{s}")


def progress_of(text_key: str, **fields):
    """A progress bar drawn at the first step (nothing at all when the result is already in the memo)."""
    holder = st.empty()

    def on_step(i: int, n: int) -> None:
        holder.progress(i / n, text=tr(text_key, i=i, n=n, **fields))
    return holder, on_step


# ------------------------------------------------------------------ 1. the ODE
st.header(tr("steps.theory_title"))
st.markdown(tr("steps.theory_lambda", lam_T=f"{float(lambdas(schedule, T)):.1f}"))
st.latex(r"\lambda_t = \log\frac{\alpha_t}{\sigma_t} = \tfrac12 \log \mathrm{SNR}_t,\qquad "
         r"\alpha_t = \sqrt{\bar\alpha_t},\quad \sigma_t = \sqrt{1-\bar\alpha_t}")
st.markdown(tr("steps.theory_exact"))
st.latex(r"x_{\lambda} = \frac{\sigma_{\lambda}}{\sigma_s}\,x_s + \sigma_{\lambda}\int_{\lambda_s}^{\lambda} "
         r"e^{\ell}\,\hat x_0(x_\ell, \ell)\,d\ell")
st.markdown(tr("steps.theory_euler"))
st.latex(r"x_{t_\text{prev}} = \frac{\sigma_{t_\text{prev}}}{\sigma_t}\,x_t + \alpha_{t_\text{prev}}\big(1 - e^{-h}\big)\,"
         r"\hat x_0(x_t, t) = \sqrt{\bar\alpha_{t_\text{prev}}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t_\text{prev}}}\,\hat\varepsilon")
st.markdown(tr("steps.theory_2m"))
st.latex(r"D = \Big(1 + \frac{1}{2r}\Big)\hat x_0(x_t, t) - \frac{1}{2r}\,\hat x_0(x_{t_\text{last}}, t_\text{last}),\qquad "
         r"r = \frac{h_\text{last}}{h} = \frac{\lambda_t - \lambda_{t_\text{last}}}{\lambda_{t_\text{prev}} - \lambda_t}")
st.latex(r"x_{t_\text{prev}} = \frac{\sigma_{t_\text{prev}}}{\sigma_t}\,x_t + \alpha_{t_\text{prev}}\big(1 - e^{-h}\big)\,D")
st.markdown(tr("steps.theory_why"))


# ------------------------------------------------------------------ 2. two samplers, the paths, the numbers
st.header(tr("steps.compare_title"))
st.markdown(tr("steps.compare_intro", s=fmt(sr.GUIDANCE)))


@st.fragment
def compare() -> None:
    c1, c2, c3, c4 = st.columns([1, 1, 2, 1])
    a = c1.selectbox(tr("steps.sampler_a"), SAMPLERS, index=SAMPLERS.index("ddim"), format_func=sampler_name,
                     key="steps_a")
    b = c2.selectbox(tr("steps.sampler_b"), SAMPLERS, index=SAMPLERS.index("dpm_solver++"), format_func=sampler_name,
                     key="steps_b")
    k = c3.select_slider(tr("steps.steps"), STEPS, value=DEFAULT_STEPS, key="steps_k", help=tr("steps.steps_help", T=T))
    spacing = c4.radio(tr("steps.spacing"), SPACINGS, index=SPACINGS.index("logsnr"),
                       format_func=lambda s: tr(f"steps.spacing_{s}"), key="steps_spacing", help=tr("steps.spacing_help"))
    c1, c2, _ = st.columns([1, 1, 2])
    mode = c1.radio(tr("steps.labels"), ("cycle", "same"), format_func=lambda m: tr(f"steps.labels_{m}"),
                    key="steps_labels", horizontal=True)
    if mode == "same":
        digit = c2.selectbox(tr("steps.digit"), range(10), index=3, key="steps_digit")
        labels = (digit,) * sr.N_COMPARE
    else:
        labels = tuple(i % 10 for i in range(sr.N_COMPARE))
    with st.container():  # hints that come and go: in a block of their own, so the charts below keep their place
        if a == b:
            st.caption(tr("steps.hint_equal"))
        if k == 1:
            st.caption(tr("steps.hint_one_step"))
        elif "ddpm" in (a, b) and k < 100:
            st.caption(tr("steps.hint_ddpm_few"))

    keys = {side: sr.RunKey(labels=labels, sampler=s, steps=k, spacing=spacing, seed=current_seed(), device=str(device))
            for side, s in (("a", a), ("b", b))}
    records = {}
    for side, key in keys.items():
        holder, on_step = progress_of("steps.progress_run", sampler=sampler_name(key.sampler))
        records[side] = sr.run(shared, key, on_step)
        holder.empty()
    cols = st.columns(2)
    for col, side in zip(cols, ("a", "b")):
        rec = records[side]
        show(col, grid(rec.final, 4), tr("steps.result_caption", sampler=sampler_name(rec.key.sampler), steps=k,
                                         seconds=f"{rec.seconds:.2f}"), side=360)

    # ---- the paths of a few pixels
    st.subheader(tr("steps.paths_title"))
    st.markdown(tr("steps.paths_intro", n=sr.reference_steps(T)))
    follow = st.selectbox(tr("steps.follow"), range(sr.N_COMPARE), key="steps_follow",
                          format_func=lambda i: tr("steps.follow_i", i=i + 1, digit=labels[i]))
    holder, on_step = progress_of("steps.progress_reference")
    ref = sr.reference(shared, keys["a"], follow, on_step)
    holder.empty()
    pixels = pick_pixels(ref.x[-1, 0, 0], [records[s].x[-1, follow, 0] for s in ("a", "b")])
    c1, c2 = st.columns([1, 3])
    c1.image(sv.marked_digit(ref.final[0], pixels), output_format="PNG", width=280)
    c2.caption(tr("steps.pixels_caption", **{f"p{i + 1}": f"({r}, {c})" for i, (r, c) in enumerate(pixels)}))
    ref_path = ref.path(schedule, 0, pixels)
    # Each chart stays in place (ui/follow.py): the browser applies this run's paths to it, so a step of the
    # slider (or another sampler) redraws the curves without building the chart again.
    figures = {f"steps_path_{side}": sv.path_figure(tr, records[side].path(schedule, follow, pixels), ref_path,
                                                    records[side].key.sampler,
                                                    tr("steps.path_title", sampler=sampler_name(records[side].key.sampler),
                                                       steps=k))
               for side in ("a", "b")}
    for col, chart in zip(st.columns(2), figures):
        show_in_place(col, sv.path_frame(tr), chart)
    follow_slider("steps_k", figures=figures, value=STEPS.index(k), label=None)
    ref_final = ref.final
    d = {side: float(rms_distance(records[side].final[None, follow:follow + 1], ref_final)[0]) for side in ("a", "b")}
    st.caption(tr("steps.distance_caption", sampler_a=sampler_name(a), sampler_b=sampler_name(b),
                  d_a=f"{d['a']:.3f}", d_b=f"{d['b']:.3f}"))
    st.caption(tr("steps.paths_note"))

    # ---- the coefficients of DPM-Solver++ at these steps, checked
    st.subheader(tr("steps.numbers_title"))
    st.markdown(tr("steps.numbers_intro"))
    plan = dpm_solver_plan(schedule, k, spacing)
    ddim = [ddim_in_x0_form(schedule, c.t, c.t_prev) for c in plan]
    dash = "–"
    st.dataframe({
        tr("steps.col_step"): [str(i + 1) for i in range(len(plan))],
        tr("steps.col_t"): [f"{c.t} → {c.t_prev}" for c in plan],
        tr("steps.col_lambda"): [f"{c.lambda_t:.3f}" for c in plan],
        tr("steps.col_h"): [f"{c.h:.3f}" if c.t_prev > 0 else "+∞" for c in plan],
        tr("steps.col_r"): [dash if c.r is None else f"{c.r:.3f}" for c in plan],
        tr("steps.col_order"): [str(c.order) for c in plan],
        tr("steps.col_a"): [f"{c.coef_xt:.5f}" for c in plan],
        tr("steps.col_b"): [f"{c.coef_d:.5f}" for c in plan],
        tr("steps.col_w"): [f"{c.d_coef_x0:.4f}" if c.order == 2 else dash for c in plan],
        tr("steps.col_w_last"): [f"{-c.d_coef_x0_last:.4f}" if c.order == 2 else dash for c in plan],
        tr("steps.col_ddim_a"): [f"{x:.5f}" if c.order == 1 else dash for c, (x, _) in zip(plan, ddim)],
        tr("steps.col_ddim_b"): [f"{y:.5f}" if c.order == 1 else dash for c, (_, y) in zip(plan, ddim)],
    }, hide_index=True, key="steps_numbers")
    dpm_side = next((s for s in ("b", "a") if records[s].key.sampler == "dpm_solver++"), None)
    check = sr.solver_check(records[dpm_side], plan, follow) if dpm_side else None
    if not any(c.order == 2 for c in plan):
        st.caption(tr("steps.numbers_no_second"))
    elif check is not None:
        c = plan[check.step]
        st.markdown(tr("steps.numbers_check", i=check.step + 1, t=c.t, t_prev=c.t_prev, pixel=f"{check.pixel}",
                       x0=f"{check.x0_hat:.4f}", x0_last=f"{check.x0_last:.4f}", w=f"{c.d_coef_x0:.4f}",
                       w_last=f"{-c.d_coef_x0_last:.4f}", d=f"{check.d:.4f}", a=f"{c.coef_xt:.5f}", b=f"{c.coef_d:.5f}",
                       x_t=f"{check.x_t:.4f}", x_prev=f"{check.x_prev:.4f}", x_run=f"{check.x_run:.4f}"))
    else:
        st.caption(tr("steps.numbers_pick_dpm"))


compare()


# ------------------------------------------------------------------ 3. the quality meter
st.header(tr("steps.judge_title"))
st.markdown(tr("steps.judge_intro"))
st.caption(tr("steps.ci_formula"))
st.latex(r"\frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}}")


@st.fragment
def quality_meter() -> None:
    c1, c2, c3, c4 = st.columns([3, 4, 2, 4])
    sampler = c1.selectbox(tr("steps.judge_sampler"), SAMPLERS, index=SAMPLERS.index("dpm_solver++"),
                           format_func=sampler_name, key="steps_judge_sampler")
    k = c2.select_slider(tr("steps.steps"), STEPS, value=DEFAULT_STEPS, key="steps_judge_k")
    spacing = c3.radio(tr("steps.spacing"), SPACINGS, index=SPACINGS.index("logsnr"),
                       format_func=lambda s: tr(f"steps.spacing_{s}"), key="steps_judge_spacing")
    n = c4.select_slider(tr("steps.judge_n"), sr.JUDGE_CHOICES, value=20, key="steps_judge_n",
                         help=tr("steps.judge_n_help"))
    if st.button(tr("steps.judge_run"), key="steps_judge_run", icon=":material/fact_check:", type="primary"):
        holder, on_step = progress_of("steps.judge_progress", digits=n)
        try:
            result = sr.judge(shared, sampler, k, spacing, n, current_seed(), on_step)
        except WeightsError as e:
            holder.empty()
            st.error(tr("steps.classifier_error"), icon=":material/error:")
            st.caption(tr("steps.weights_detail"))
            st.code(str(e), language=None)
            return
        holder.empty()
        st.session_state["steps_judgement"] = result
    result: sr.Judgement | None = st.session_state.get("steps_judgement")
    if result is None:
        st.caption(tr("steps.judge_empty"))
        return
    c1, c2 = st.columns([1, 3])
    c1.metric(tr("steps.judge_accuracy"), f"{100 * result.accuracy:.1f} %")
    c1.markdown(tr("steps.judge_delta", correct=result.correct, n=result.n))
    c1.caption(tr("steps.judge_ci", low=f"{100 * result.low:.1f}", high=f"{100 * result.high:.1f}",
                  sampler=sampler_name(result.sampler), steps=result.steps,
                  spacing=tr(f"steps.spacing_{result.spacing}"), seconds=f"{result.seconds:.1f}"))
    with c2:
        st.markdown(tr("steps.judge_worst"))
        cols = st.columns(len(result.worst)) if len(result.worst) else []
        for col, img, label, read, p in zip(cols, result.worst, result.worst_labels, result.worst_read, result.worst_p):
            show(col, img, tr("steps.judge_worst_caption", label=int(label), read=int(read), p=f"{p:.2f}"), side=112)


quality_meter()


# ------------------------------------------------------------------ 4. the benchmark's sweep
st.header(tr("steps.sweep_title"))
st.markdown(tr("steps.sweep_intro"))
try:
    sweep = sr.load_sweep()
except sr.SweepError as e:
    st.warning(tr("steps.sweep_error"), icon=":material/warning:")
    st.code(str(e), language=None)
    sweep = None
else:
    if sweep is None:
        st.info(tr("steps.sweep_missing"), icon=":material/hourglass_empty:")
if sweep is not None and sweep.rows:
    acc_fig, fd_fig = sv.sweep_figures(tr, sweep.rows)
    c1, c2 = st.columns(2)
    c1.plotly_chart(acc_fig, key="steps_sweep_accuracy")
    c2.plotly_chart(fd_fig, key="steps_sweep_fd")
    rows = [r for series in sv.sweep_series(sweep.rows).values() for r in series]
    st.dataframe({
        tr("steps.col_sampler"): [sv.series_name(tr, r.sampler, r.spacing, r.lower_order_final) for r in rows],
        tr("steps.col_nfe"): [str(r.nfe) for r in rows],  # strings: a number column would group 1000 as "1,000"
        tr("steps.col_samples"): [str(r.n_samples) for r in rows],
        tr("steps.col_accuracy"): [f"{100 * r.accuracy:.1f} [{100 * r.accuracy_ci_low:.1f}, {100 * r.accuracy_ci_high:.1f}]"
                                   for r in rows],
        tr("steps.col_fd"): [f"{r.fd / r.fd_floor:.2f}" if r.fd_floor > 0 else "–" for r in rows],
        tr("steps.col_seconds"): [f"{r.seconds_16:.2f}" for r in rows],
    }, hide_index=True, key="steps_sweep_table")
    if sweep.machine:
        st.caption(tr("steps.sweep_machine", machine=sweep.machine))

check_yourself(tr, "steps")
