"""Page 5: the reverse process, live: a pretrained denoiser turns noise into digits step by step
(Ho et al. 2020, eqs. 11 and 15; Song et al. 2021, eq. 12), DDPM against DDIM, and SDEdit (Meng et al. 2022)."""

from ui.sidebar import sidebar, current_seed, current_device
from ui.exercises import check_yourself

import numpy as np
import streamlit as st
import torch

from diffusion_core.data.images import encode_gif, encode_png, image_to_tensor
from diffusion_core.samplers.trajectory import sdedit_start
from diffusion_core.models.weights import WeightsError
from ui import model as ui_model
from ui.reverse import remote
from ui.reverse import run as rr
from ui.reverse import view as rv
from ui.model import SharedDenoiser, shared_denoiser
from ui.worker.pool import denoiser_pool
from ui.worker.protocol import RunSpec
from ui.reverse.view import fmt, show
from ui.script_run import in_fragment_run

tr = sidebar("reverse")

RESULT_COLS = 8
ICONS = {"play": ":material/play_arrow:", "pause": ":material/pause:", "step": ":material/skip_next:",
         "stop": ":material/stop:", "reset": ":material/replay:"}

st.title(tr("reverse.title"))
st.markdown(tr("reverse.intro"))
st.latex(r"\begin{aligned}p_\theta(x_{t-1} \mid x_t) &= \mathcal{N}\!\left(x_{t-1};\ \mu_\theta(x_t, t),\ \sigma_t^2 \mathbf{I}\right),\\"
         r"x_{t-1} &= \mu_\theta(x_t, t) + \sigma_t z,\\ z &\sim \mathcal{N}(\mathbf{0}, \mathbf{I})\end{aligned}")

device = current_device()
try:
    shared = shared_denoiser(device)
except WeightsError as e:
    st.error(tr("reverse.weights_error"), icon=":material/error:")
    st.caption(tr("reverse.weights_detail"))
    st.code(str(e), language=None)
    st.stop()
schedule = shared.model.schedule
T = schedule.T
# The network's steps run in the denoiser worker, a process of its own fed by a fair queue, so that
# students who sample do not take the CPU from those who drag sliders (None: no worker, steps run here).
pool = denoiser_pool()
WEIGHTS = str(ui_model.WEIGHTS_DIR)
STEPS = rr.step_choices(T)  # numbers of steps offered (1000 = every step of the shipped network)


def _command(cmd: str) -> None:
    settings = rr.settings_from_state(st.session_state, current_seed(), str(current_device()), T)
    st.session_state[rr.STATE_KEY].command(cmd, settings)


def draw_settings(chosen: rr.RunSettings, locked: bool) -> None:
    """The settings widgets, their hints, and a note while a run holds them."""
    c1, c2, c3 = st.columns(3)
    with c1:
        n = st.slider(tr("reverse.n_samples"), 1, rr.MAX_SAMPLES, rr.DEFAULTS[rr.KEY_N], key=rr.KEY_N, disabled=locked)
        mode = st.radio(tr("reverse.label_mode"), rr.LABEL_MODES, format_func=lambda m: tr(f"reverse.label_mode_{m}"),
                        key=rr.KEY_MODE, disabled=locked)
        if mode == "same":
            st.selectbox(tr("reverse.digit"), range(10), index=rr.DEFAULTS[rr.KEY_DIGIT], key=rr.KEY_DIGIT, disabled=locked)
    with c2:
        sampler = st.radio(tr("reverse.sampler"), rr.SAMPLER_CHOICES, format_func=lambda s: tr(f"reverse.sampler_{s}"),
                           key=rr.KEY_SAMPLER, disabled=locked)
        if sampler == "dpm_solver++":
            st.caption(tr("reverse.hint_dpm"))
        elif sampler == "ddpm":
            st.radio(tr("reverse.variance"), ("beta_tilde", "beta"), format_func=lambda v: tr(f"reverse.variance_{v}"),
                     key=rr.KEY_VARIANCE, disabled=locked, help=tr("reverse.variance_help"))
        else:
            st.slider(tr("reverse.eta"), 0.0, 1.0, rr.DEFAULTS[rr.KEY_ETA], 0.1, key=rr.KEY_ETA, disabled=locked,
                      help=tr("reverse.eta_help"))
    with c3:
        steps = st.select_slider(tr("reverse.steps"), STEPS, value=rr.nearest_choice(STEPS, rr.DEFAULTS[rr.KEY_STEPS]), key=rr.KEY_STEPS,
                                 disabled=locked, help=tr("reverse.steps_help", T=T))
        guidance = st.slider(tr("reverse.guidance"), 0.0, 10.0, rr.DEFAULTS[rr.KEY_GUIDANCE], 0.5, key=rr.KEY_GUIDANCE,
                             disabled=locked or mode == "any", help=tr("reverse.guidance_help"))
    if mode == "custom":
        cols = st.columns(8)
        for i in range(n):
            cols[i % 8].selectbox(tr("reverse.label_i", i=i + 1), [rr.ANY_DIGIT, *range(10)], index=i % 10 + 1,
                                  key=rr.custom_label_key(i), disabled=locked,
                                  format_func=lambda d: tr("reverse.any_digit") if d == rr.ANY_DIGIT else str(d))
    hints = []
    if mode == "any":
        hints.append(tr("reverse.hint_any"))
    elif guidance == 0:
        hints.append(tr("reverse.hint_s0"))
    elif guidance >= 5:
        hints.append(tr("reverse.hint_large_s"))
    if steps == 1:
        hints.append(tr("reverse.hint_one_step"))
    if sampler == "ddpm" and steps < T:
        hints.append(tr("reverse.hint_ddpm_strided"))
    if sampler == "ddim" and chosen.eta == 1.0:
        hints.append(tr("reverse.hint_eta1"))
    if steps >= 500 and device.type == "cpu":
        hints.append(tr("reverse.hint_slow"))
    for hint in hints:
        st.caption(hint)
    if locked:
        st.info(tr("reverse.hint_locked"), icon=":material/lock:")


# ------------------------------------------------------------------ 1. settings and 2. the player
# One fragment: a click on Play, Pause, Step, Stop, Reset, a setting or the timeline reruns only it, so the
# browser redraws these two sections and not the whole page with its formulas (the first frame comes sooner).
# The steps of a run are taken inside it when it runs alone; when the whole page runs (a click elsewhere
# during a run), the fragment returns its view and the steps are taken at the end of the script, after
# every other section is drawn.
st.header(tr("reverse.settings_title"))


@st.fragment
def settings_and_player() -> tuple[rv.PlayerView, SharedDenoiser, object, str] | None:
    """Draw both sections; returns the view and the model of a run the page must go on with, if any."""
    run: rr.PlayerRun = st.session_state.setdefault(rr.STATE_KEY, rr.PlayerRun())
    run_shared = shared_denoiser(torch.device(run.settings.device)) if run.settings else shared
    if run.needs_start:
        run.start(run_shared.model)  # draws x_T: the first frame, before any network call
    wait_box = st.empty()  # where a Step waiting for the worker shows its place in the line
    remote.take_pending_step(run, pool, WEIGHTS, run_shared.lock,
                             lambda ticket: wait_box.caption(rv.wait_text(tr, ticket)))
    wait_box.empty()

    # The settings box is placed first but filled after the player: when Play is clicked, the run's first
    # frame then reaches the browser before the thirty-odd settings elements do. The widgets keep their
    # values in st.session_state, so the settings are known before the widgets are drawn.
    settings_box = st.container(border=True)
    chosen = rr.settings_from_state(st.session_state, current_seed(), str(device), T)

    # The buttons only change the run's status (their callbacks run before this function); the steps are
    # taken after everything else is drawn (rv.play_live).
    st.header(tr("reverse.player_title"))
    enabled = {"play": run.status != "running", "pause": run.status == "running", "step": True,
               "stop": run.active, "reset": run.status != "idle"}
    for col, (cmd, on) in zip(st.columns(5), enabled.items()):
        col.button(tr(f"reverse.{cmd}"), key=f"reverse_{cmd}", icon=ICONS[cmd], on_click=_command, args=(cmd,),
                   disabled=not on, type="primary" if cmd == "play" else "secondary", width="stretch")

    if run.settings is None:
        # Before any run the player already shows the x_T that Play would start from (same seed, same
        # draw) and the noise level of the chosen settings: nothing moves when Play is pressed, and the
        # browser loads its picture and chart code now rather than then.
        view = rv.PlayerView(tr, run, schedule, rr.to_uint8(chosen.start(shared.model).x), chosen.steps)
        view.draw_status()
        view.draw_frame(None)
        view.draw_chart(None)
    else:
        s = run.settings
        st.caption(tr("reverse.run_summary", n=len(s.labels), sampler=tr(f"reverse.sampler_{s.sampler}"), steps=s.steps,
                      s=fmt(s.guidance), seed=s.seed, device=s.device.upper()))
        timeline = run.timeline()
        shown = timeline[-1] if timeline else None
        if timeline and run.status != "running":
            if st.session_state.get("_reverse_timeline_version") != run.version:  # a new step: show it
                st.session_state["reverse_timeline"] = len(timeline) - 1
                st.session_state["_reverse_timeline_version"] = run.version
            pos = st.select_slider(
                tr("reverse.timeline"), range(len(timeline)), key="reverse_timeline",
                format_func=lambda i: tr("reverse.timeline_step", i=timeline[i].index + 1, t=timeline[i].t),
                help=tr("reverse.timeline_help", k=len(timeline), n=run.total_steps),
            )
            shown = timeline[pos]

        view = rv.PlayerView(tr, run, schedule, run.x_T, run.total_steps)
        view.draw_status()
        view.draw_frame(shown, live=run.status == "running")
        view.draw_chart(shown if run.status != "running" else None)  # not redrawn during a run: no marker then

        if run.status == "done" and run.final is not None:
            st.subheader(tr("reverse.result_title"))
            show(st.container(key="reverse_result"), rr.grid(run.final, RESULT_COLS), side=4 * 30 * RESULT_COLS,
                 width="content")
            d1, d2 = st.columns(2)
            final, gif_frames = run.final, run.gif_frames
            d1.download_button(tr("reverse.download_gif"), data=lambda: encode_gif(gif_frames(RESULT_COLS), frame_ms=120),
                               file_name="reverse_process.gif", mime="image/gif", key="reverse_download_gif",
                               icon=":material/movie:", on_click="ignore")
            d2.download_button(tr("reverse.download_png"), data=lambda: encode_png(rv.enlarged(rr.grid(final, RESULT_COLS), 1024)),
                               file_name="reverse_process.png", mime="image/png", key="reverse_download_png",
                               icon=":material/download:", on_click="ignore")

    with settings_box:
        draw_settings(chosen, locked=run.active)  # a run under way keeps its settings

    if run.status != "running":
        return None
    if not in_fragment_run():
        return view, run_shared, pool, WEIGHTS
    if rv.play_live(view, run_shared, pool, WEIGHTS) in ("done", "failed"):
        st.rerun(scope="fragment")  # the final view: result, timeline, distances in the chart, downloads
    return None


live = settings_and_player()
chosen = rr.settings_from_state(st.session_state, current_seed(), str(device), T)

# ------------------------------------------------------------------ 3. DDPM against DDIM
st.header(tr("reverse.compare_title"))
st.markdown(tr("reverse.compare_intro"))
c1, c2 = st.columns([3, 1])
cmp_steps = c1.select_slider(tr("reverse.compare_steps"), STEPS, value=rr.nearest_choice(STEPS, 20), key="reverse_compare_steps")
c2.write("")
compare_clicked = c2.button(tr("reverse.compare_run"), key="reverse_compare_run", icon=":material/compare:", width="stretch")
if compare_clicked:
    base = chosen
    progress = st.progress(0.0)
    outputs, seconds = {}, {}
    try:
        for sampler_id in ("ddpm", "ddim"):
            spec = RunSpec(labels=base.labels, sampler=sampler_id, steps=cmp_steps, eta=base.eta, guidance=base.guidance,
                           variance=base.variance, device=str(device), weights_dir=WEIGHTS)
            process = spec.new(shared.model, torch.Generator().manual_seed(base.seed))
            label = tr(f"reverse.sampler_{sampler_id}")
            x0, seconds[sampler_id] = remote.run_to_end(
                process, spec, pool, shared.lock,
                lambda i, k, label=label: progress.progress(i / k, text=tr("reverse.compare_progress", sampler=label, i=i, n=k)),
                lambda ticket: progress.progress(0.0, text=rv.wait_text(tr, ticket)), lane="compare")
            outputs[sampler_id] = rr.to_uint8(x0)
    except rr.Disconnected:
        st.stop()
    except remote.WorkerFailed:
        outputs = {}
        st.warning(tr("reverse.worker_failed"), icon=":material/sync_problem:")
    progress.empty()
if compare_clicked and outputs:
    history = [c for c in st.session_state.get("reverse_compare_history", []) if c.steps != cmp_steps][-7:]
    comparison = rr.Comparison(steps=cmp_steps, settings=base, ddpm=outputs["ddpm"], ddim=outputs["ddim"],
                               ddpm_seconds=seconds["ddpm"], ddim_seconds=seconds["ddim"])
    st.session_state["reverse_compare_history"] = [*history, comparison]
history = st.session_state.get("reverse_compare_history", [])
if history:
    last = history[-1]
    g1, g2 = st.columns(2)
    show(g1, rr.grid(last.ddpm, RESULT_COLS), tr("reverse.compare_ddpm_caption", steps=last.steps,
         variance=tr(f"reverse.variance_{last.settings.variance}"), seconds=f"{last.ddpm_seconds:.2f}"), side=512)
    show(g2, rr.grid(last.ddim, RESULT_COLS), tr("reverse.compare_ddim_caption", steps=last.steps,
         eta=fmt(last.settings.eta), seconds=f"{last.ddim_seconds:.2f}"), side=512)
    rows = sorted(history, key=lambda c: c.steps)
    st.table({
        tr("reverse.col_steps"): [str(c.steps) for c in rows],
        tr("reverse.col_ddpm"): [f"{c.ddpm_seconds:.2f}" for c in rows],
        tr("reverse.col_ddim"): [f"{c.ddim_seconds:.2f}" for c in rows],
        tr("reverse.col_per_step"): [f"{1000 * (c.ddpm_seconds + c.ddim_seconds) / (2 * c.steps):.0f}" for c in rows],
    })
    st.caption(tr("reverse.compare_note"))

# ------------------------------------------------------------------ 4. SDEdit
st.header(tr("reverse.sdedit_title"))
st.markdown(tr("reverse.sdedit_intro"))
try:
    from diffusion_core.data.samples import list_sample_images, load_sample_image

    digit_names = list_sample_images("digit")
except (ImportError, ValueError):  # the bundled digits have not landed yet
    digit_names, load_sample_image = [], None
sources = digit_names.copy()
uploaded = st.session_state.get("sdedit_digit") if st.session_state.get("sdedit_source") == "upload" else None
if isinstance(uploaded, np.ndarray) and uploaded.shape == (28, 28) and uploaded.dtype == np.uint8:
    sources.insert(0, "upload")
if not sources:
    st.warning(tr("reverse.sdedit_no_digits"), icon=":material/image_not_supported:")
else:
    def source_name(name: str) -> str:
        if name == "upload":
            return tr("reverse.sdedit_uploaded")
        return tr(f"samples.{name}") if tr.has(f"samples.{name}") else name

    c1, c2, c3 = st.columns(3)
    source = c1.selectbox(tr("reverse.sdedit_source"), sources, format_func=source_name, key="reverse_sdedit_source")
    original = uploaded if source == "upload" else load_sample_image(source)
    t0 = c2.slider(tr("reverse.sdedit_t0"), 10, T, T // 2, 10, key="reverse_sdedit_t0", help=tr("reverse.sdedit_t0_help"))
    sd_steps = c3.slider(tr("reverse.sdedit_steps"), 1, 50, 20, key="reverse_sdedit_steps")
    c1, c2, c3 = st.columns(3)
    variations = c1.slider(tr("reverse.sdedit_variations"), 1, 8, 4, key="reverse_sdedit_variations")
    sd_label = c2.selectbox(tr("reverse.sdedit_label"), [rr.ANY_DIGIT, *range(10)], key="reverse_sdedit_label",
                            format_func=lambda d: tr("reverse.any_digit") if d == rr.ANY_DIGIT else str(d))
    c3.write("")
    sd_clicked = c3.button(tr("reverse.sdedit_run"), key="reverse_sdedit_run", icon=":material/auto_fix_high:",
                           width="stretch", type="primary")
    keep, noise = (float(v) for v in (schedule.sqrt_alpha_bars[t0], schedule.sqrt_one_minus_alpha_bars[t0]))
    st.markdown(tr("reverse.sdedit_numbers", t0=t0, keep=fmt(keep), noise=fmt(noise)))
    if sd_clicked:
        generator = torch.Generator().manual_seed(current_seed())
        x0 = image_to_tensor(original).repeat(variations, 1, 1, 1)
        x_t0 = sdedit_start(x0, t0, schedule, generator)
        spec = RunSpec(labels=(sd_label,) * variations, sampler="ddim", steps=min(sd_steps, t0), guidance=chosen.guidance,
                       t_start=t0, device=str(device), weights_dir=WEIGHTS)
        process = spec.new(shared.model, generator, x_start=x_t0)
        progress = st.progress(0.0)
        try:
            x_out, _ = remote.run_to_end(process, spec, pool, shared.lock, lambda i, k: progress.progress(
                i / k, text=tr("reverse.sdedit_progress", i=i, n=k)),
                lambda ticket: progress.progress(0.0, text=rv.wait_text(tr, ticket)), lane="sdedit")
            st.session_state["reverse_sdedit_result"] = rr.SdeditResult(
                source=source, t0=t0, steps=min(sd_steps, t0), label=sd_label, original=original,
                noised=rr.to_uint8(x_t0), result=rr.to_uint8(x_out))
        except rr.Disconnected:
            st.stop()
        except remote.WorkerFailed:
            st.warning(tr("reverse.worker_failed"), icon=":material/sync_problem:")
        progress.empty()
    result = st.session_state.get("reverse_sdedit_result")
    if result is not None:
        c1, c2, c3 = st.columns([1, 3, 3])
        show(c1, result.original, tr("reverse.sdedit_original"), side=160)
        show(c2, rr.grid(result.noised, 8), tr("reverse.sdedit_noised", t0=result.t0), side=480)
        show(c3, rr.grid(result.result, 8), tr("reverse.sdedit_result", steps=result.steps), side=480)
    st.markdown(tr("reverse.sdedit_why"))

check_yourself(tr, "reverse")

# ------------------------------------------------------------------ the run's steps, last: everything else is drawn
if live is not None and rv.play_live(*live) in ("done", "failed"):
    st.rerun()  # the final view: result, timeline, distances in the chart, downloads
