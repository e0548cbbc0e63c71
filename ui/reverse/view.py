"""What the player of the reverse-process page draws: five pictures of the current step, its formulas
with their numbers, the status line and the chart. Layout and display only; the numbers come from
diffusion_core (samplers.step_coefficients, trajectory.noise_level and rms_distance), the run from reverse_run.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import numpy as np
import streamlit as st

from diffusion_core.data.images import encode_png
from diffusion_core.process.schedules import Schedule
from diffusion_core.samplers import step_coefficients, timesteps
from diffusion_core.samplers.trajectory import noise_level, rms_distance
from ui import charts
from ui.i18n import Translator
from ui.model import SharedDenoiser
from ui.reverse import remote
from ui.reverse import run as rr
from ui.script_run import session_connected
from ui.worker.pool import Ticket, WorkerPool

PANEL_SIDE = 256  # pixels: panels are enlarged (nearest neighbour) to about this size
FRAME_INTERVAL = 1 / 20  # s between two pictures drawn during a run: at most 20 per second (for one run alone)
# Pictures in the player's panels are enlarged by the browser without smoothing: pixels stay square.
PIXELATED_CSS = "<style>[class*='st-key-reverse_panel_'] img { image-rendering: pixelated; }</style>"
# The step's formulas are wider than a phone (390 px): there they scroll sideways, with a scroll bar and the
# right edge fading out so that a student sees there is more; the padding lets the last symbol scroll clear of the fade.
FORMULAS_CSS = ("<style>@media (max-width: 760px) { .st-key-reverse_formulas .katex-display { overflow-x: auto;"
                " padding: 0 2rem 6px 0; scrollbar-width: thin; scrollbar-color: #9a9a9a transparent;"
                " mask-image: linear-gradient(to right, #000 calc(100% - 2rem), transparent); } }</style>")
FORMULA_INTERVAL = 0.4  # s between two redraws of the formulas during a run (KaTeX is slower to draw than a picture)


def fmt(v: float) -> str:
    return f"{v:.4g}"


def enlarged(image: np.ndarray, side: int = PANEL_SIDE) -> np.ndarray:
    """Integer nearest-neighbour enlargement so that the longer side is about ``side`` pixels."""
    factor = max(1, round(side / max(image.shape)))
    return charts.enlarge(image, factor * min(image.shape))


def show(target, image: np.ndarray, caption: str | None = None, side: int = PANEL_SIDE, live: bool = False,
         width: str = "stretch") -> None:
    """An enlarged uint8 picture, as PNG (Streamlit's default for arrays is JPEG: blurred pixels).

    Live frames go inline as data: URLs rather than as numpy arrays: Streamlit keeps every picture a
    script run sends as a media file until the run ends (a 1000-step run would hold thousands), and
    deleting them then races with the browser still fetching the last ones. They are sent at their own
    size and enlarged by the browser (PIXELATED_CSS keeps the pixels crisp): a quarter of the bytes to
    encode, send and decode, at up to 20 frames a second."""
    if live:
        picture = "data:image/png;base64," + base64.b64encode(encode_png(image, compress_level=1)).decode()
    else:
        picture = enlarged(image, side)
    target.image(picture, caption=caption, output_format="PNG", width=width)


def formula_latex(tr: Translator, run: rr.PlayerRun, frame: rr.Frame, schedule: Schedule) -> str:
    """The step's formulas, each followed by its numbers and its source: Ho et al. (2020), eqs. 11 and 15,
    sec. 3.2 and algorithm 2; Song et al. (2021), eqs. 12 and 16; Ho & Salimans (2022), eq. 6. The page's
    runs clip x0_hat to [-1, 1] and recompute eps_hat from it (samplers.ReverseProcess, clip=True): the
    line after eq. 15 says so, and the eps_hat of the later lines (and of the panel) is that one."""
    s = run.settings
    c = step_coefficients(schedule, frame.t, frame.t_prev, frame.sigma)
    prev = r"t_\text{prev}"

    def cite(key: str) -> str:
        """The source of a line, in the student's language, as LaTeX text after a gap."""
        return r"\qquad\text{(" + tr(f"reverse.cite_{key}").replace("&", r"\&") + ")}"

    lines = [
        rf"t = {frame.t} \;\to\; {prev} = {frame.t_prev}:\quad \bar\alpha_t = {fmt(c.alpha_bar_t)},\ "
        rf"\bar\alpha_{{{prev}}} = {fmt(c.alpha_bar_prev)},\ \alpha = \bar\alpha_t / \bar\alpha_{{{prev}}} = "
        rf"{fmt(c.alpha)},\ \beta = 1 - \alpha = {fmt(c.beta)}",
        (rf"\hat\varepsilon = \varepsilon_\theta(x_t, \varnothing) + s\,\big(\varepsilon_\theta(x_t, y) - "
         rf"\varepsilon_\theta(x_t, \varnothing)\big),\quad s = {fmt(s.guidance)}" + cite("guidance")
         if any(label >= 0 for label in s.labels)
         else r"\hat\varepsilon = \varepsilon_\theta(x_t, \varnothing)"),  # every label "any": no guidance to cite
        rf"\hat x_0 = \frac{{x_t - \sqrt{{1-\bar\alpha_t}}\,\hat\varepsilon}}{{\sqrt{{\bar\alpha_t}}}} = "
        rf"\frac{{x_t - {fmt(c.sqrt_one_minus_alpha_bar_t)}\,\hat\varepsilon}}{{{fmt(c.sqrt_alpha_bar_t)}}}" + cite("x0"),
        r"\hat x_0 \leftarrow \operatorname{clip}(\hat x_0, -1, 1),\quad \hat\varepsilon \leftarrow "
        r"\frac{x_t - \sqrt{\bar\alpha_t}\,\hat x_0}{\sqrt{1-\bar\alpha_t}}" + cite("clip"),
    ]
    last = frame.t_prev == 0
    if s.sampler == "ddpm":
        lines.append(rf"\mu_\theta(x_t, t) = \frac{{1}}{{\sqrt{{\alpha}}}}\Big(x_t - \frac{{\beta}}{{\sqrt{{1-\bar\alpha_t}}}}\,\hat\varepsilon\Big)"
                     rf" = {fmt(c.ddpm_coef_xt)}\,\big(x_t - {fmt(c.ddpm_coef_eps)}\,\hat\varepsilon\big)" + cite("ddpm_mean"))
        if last:  # no noise on the last step, whatever sigma^2 would be
            lines.append(r"\sigma = 0" + cite("last_step"))
        else:
            var = (r"\sigma^2 = \beta" if s.variance == "beta" else
                   rf"\sigma^2 = \tilde\beta = \frac{{1-\bar\alpha_{{{prev}}}}}{{1-\bar\alpha_t}}\,\beta")
            lines.append(rf"{var},\quad \sigma = {fmt(c.sigma)}" + cite("ddpm_variance"))
    elif s.sampler == "dpm_solver++" and frame.solver is not None:
        lines += dpm_solver_lines(tr, frame, cite)
        return r"\begin{aligned}" + r"\\[2pt]".join("&" + line for line in lines) + r"\end{aligned}"
    else:
        lines.append(rf"\mu = \sqrt{{\bar\alpha_{{{prev}}}}}\,\hat x_0 + \sqrt{{1-\bar\alpha_{{{prev}}}-\sigma^2}}\,\hat\varepsilon"
                     rf" = {fmt(c.ddim_coef_x0)}\,\hat x_0 + {fmt(c.ddim_coef_eps)}\,\hat\varepsilon" + cite("ddim_mean"))
        lines.append(rf"\sigma = \eta\sqrt{{\frac{{1-\bar\alpha_{{{prev}}}}}{{1-\bar\alpha_t}}}}"
                     rf"\sqrt{{1-\frac{{\bar\alpha_t}}{{\bar\alpha_{{{prev}}}}}}} = {fmt(c.sigma)},\quad \eta = {fmt(s.eta)}"
                     + cite("ddim_sigma"))
    lines.append(rf"x_{{{prev}}} = \mu + \sigma z" + (r" = \mu\ \ (\sigma = 0)" if c.sigma == 0 else ""))
    return r"\begin{aligned}" + r"\\[2pt]".join("&" + line for line in lines) + r"\end{aligned}"


def dpm_solver_lines(tr: Translator, frame: rr.Frame, cite: Callable[[str], str]) -> list[str]:
    """The lines of a DPM-Solver++(2M) step (Lu et al. 2022, algorithm 2) with its numbers, from the
    coefficients the step computed with (samplers.dpm_solver_coefficients): lambda and h, D (second order:
    the extrapolation from the previous prediction; first order: x0_hat, and why), and the update."""
    c, prev = frame.solver, r"t_\text{prev}"
    lam_prev = r"+\infty" if c.t_prev == 0 else fmt(c.lambda_prev)
    h = r"+\infty" if c.t_prev == 0 else fmt(c.h)
    lines = [rf"\lambda_t = \log\frac{{\alpha_t}}{{\sigma_t}} = {fmt(c.lambda_t)},\ \lambda_{{{prev}}} = {lam_prev},\ "
             rf"h = \lambda_{{{prev}}} - \lambda_t = {h}" + cite("dpm_lambda")]
    if c.order == 2:
        lines.append(rf"r = \frac{{\lambda_t - \lambda_{{t_\text{{last}}}}}}{{h}} = {fmt(c.r)},\quad t_\text{{last}} = {c.t_last}")
        lines.append(rf"D = \Big(1 + \frac{{1}}{{2r}}\Big)\hat x_0 - \frac{{1}}{{2r}}\,\hat x_0^\text{{last}} = "
                     rf"{fmt(c.d_coef_x0)}\,\hat x_0 - {fmt(-c.d_coef_x0_last)}\,\hat x_0^\text{{last}}" + cite("dpm_d"))
    else:
        why = "dpm_first" if frame.index == 0 else "dpm_last" if c.t_prev == 0 else "dpm_lower_final"
        lines.append(r"D = \hat x_0" + cite(why))
    lines.append(rf"x_{{{prev}}} = \frac{{\sigma_{{{prev}}}}}{{\sigma_t}}\,x_t + \alpha_{{{prev}}}\big(1 - e^{{-h}}\big)\,D"
                 rf" = {fmt(c.coef_xt)}\,x_t + {fmt(c.coef_d)}\,D" + cite("dpm_update"))
    return lines


class PlayerView:
    """The player's placeholders, drawn in order on the page; ``draw`` fills them for one step."""

    def __init__(self, tr: Translator, run: rr.PlayerRun, schedule: Schedule, x_T: np.ndarray, steps: int):
        """x_T: uint8 [N, H, W], the start (before any run: the one Play would start from); steps: the run's."""
        self.tr, self.run, self.schedule, self.x_T, self.steps = tr, run, schedule, x_T, steps
        st.html(PIXELATED_CSS + FORMULAS_CSS)  # style only: Streamlit adds it to the page without taking space
        if run.notice:  # the worker died or failed: the run paused by itself
            st.warning(tr(f"reverse.{run.notice}"), icon=":material/sync_problem:")
        self.status = st.empty()
        self.panels = {}
        for col, panel in zip(st.columns(5), rr.PANELS):
            with col:
                st.markdown(tr(f"reverse.panel_{panel}"))
                self.panels[panel] = st.container(key=f"reverse_panel_{panel}").empty()
        st.caption(tr("reverse.panel_ranges"))
        with st.container(border=True, key="reverse_formulas"):
            self.formulas = st.empty()
            if run.settings is not None and run.settings.sampler == "ddim":  # formulas are drawn only during a run
                st.caption(tr("reverse.ddim_notation"))
            st.caption(tr("reverse.strided_note"))
            if run.status == "running":
                st.caption(tr("reverse.live_note", fps=round(1 / FRAME_INTERVAL)))
        self.chart, self.chart_note = st.empty(), st.empty()

    def draw_status(self) -> None:
        run, tr = self.run, self.tr
        done, total = run.steps_done, self.steps
        if run.status == "idle":
            text = tr("reverse.status_ready", n=total)
        elif run.status == "done":
            text = tr("reverse.status_done", n=total, seconds=f"{run.compute_seconds:.1f}")
        elif run.status == "stopped":
            text = tr("reverse.status_stopped", i=done, n=total)
        elif done == 0:
            text = tr("reverse.status_start", n=total)
        else:
            key = "reverse.status_running" if run.status == "running" else "reverse.status_paused"
            text = tr(key, i=done, n=total, t=run.latest.t_prev)
        self.status.progress(done / max(total, 1), text=text)

    def draw_wait(self, ticket: Ticket) -> None:
        """The status line while the run waits for the denoiser: the student's place in the line."""
        self.status.progress(self.run.steps_done / max(self.steps, 1), text=wait_text(self.tr, ticket))

    def draw_frame(self, frame: rr.Frame | None, live: bool = False, formulas: bool = True) -> None:
        """The five pictures of ``frame`` (only x_T before the first step) and, if asked, its formulas."""
        if frame is None:
            show(self.panels["x_t"], rr.grid(self.x_T), live=live)
            for panel in rr.PANELS[1:]:
                self.panels[panel].caption(self.tr("reverse.after_first_step"))
            self.formulas.caption(self.tr("reverse.after_first_step"))
            return
        for panel in rr.PANELS:
            show(self.panels[panel], rr.grid(getattr(frame, panel)), live=live)
        if formulas:
            self.formulas.latex(formula_latex(self.tr, self.run, frame, self.schedule))

    def draw_chart(self, marker: rr.Frame | None) -> None:
        draw_chart(self.chart, self.chart_note, self.tr, self.run, self.schedule, marker, self.steps)


def wait_text(tr: Translator, ticket: Ticket) -> str:
    """Where a run waiting for the denoiser stands: "2 runs ahead of you", or that the worker is starting."""
    if ticket.starting:
        return tr("reverse.queue_starting")
    if ticket.ahead == 0:
        return tr("reverse.queue_next")
    return tr("reverse.queue_ahead_one") if ticket.ahead == 1 else tr("reverse.queue_ahead", n=ticket.ahead)


def draw_chart(chart_ph, note_ph, tr: Translator, run: rr.PlayerRun, schedule: Schedule, marker: rr.Frame | None,
               steps: int | None = None) -> None:
    """The noise level along the run's timesteps (before any run: along those of ``steps`` steps), the
    noise added by the steps taken, and, once the run is done, the distance of each x0_hat from the result."""
    ts = np.asarray([*(run.timesteps or timesteps(schedule.T, steps or 1)), 0])  # ... down to x_0, noise 0
    sig = np.full(len(ts), np.nan)
    sig[: len(run.sigmas)] = run.sigmas
    curves = {tr("reverse.curve_noise"): noise_level(schedule, ts), tr("reverse.curve_sigma"): sig}
    if run.final is not None and run.frames:
        dist = np.full(len(ts), np.nan)
        dist[[f.index for f in run.frames]] = rms_distance(np.stack([f.x0_hat for f in run.frames]), run.final)
        curves[tr("reverse.curve_distance")] = dist
    fig = charts.curves_figure(ts, curves, tr("reverse.chart_x"), tr("reverse.chart_y"),
                               marker_x=marker.t if marker else None, marker_label=f"t = {marker.t}" if marker else None,
                               title=tr("reverse.chart_title"), height=360)
    fig.update_xaxes(autorange="reversed")
    fig.update_layout(showlegend=True)  # also while only the noise level is known
    chart_ph.plotly_chart(fig, key="reverse_chart")
    note = "done" if run.final is not None else "running" if run.timesteps else "idle"
    note_ph.caption(tr(f"reverse.chart_note_{note}"))


def play_live(view: PlayerView, shared: SharedDenoiser, pool: WorkerPool | None = None, weights_dir: str = "",
              connected: Callable[[], bool] = session_connected) -> rr.RunEnd | str:
    """Take the run's steps while it is "running", drawing as it goes. Drawing is throttled so that the
    browser keeps up while the network runs at full speed: pictures at most every FRAME_INTERVAL (times
    the number of runs drawing at once, which share the CPU), the formulas less often, and the chart not
    at all (Plotly redraws a chart from scratch, a flash on a slow machine): it is drawn again, with the
    distances, when the run pauses or ends. The status line is redrawn after every step: that ``st`` call
    is where Streamlit stops the script when a button outside a fragment is clicked; a click inside one
    ends the loop through ``rr.run_loop``'s check. Either way a click takes effect within one step.
    With a ``pool`` the steps come from the denoiser worker (ui.reverse.remote.run_loop); while the run
    waits for its turn the status line says how many runs are ahead; "failed": the worker died."""
    last = {"frame": time.monotonic(), "formulas": time.monotonic()}

    def on_step(frame: rr.Frame) -> None:
        view.draw_status()
        now = time.monotonic()
        if now - last["frame"] >= FRAME_INTERVAL * max(1, shared.live_runs) or frame.index == 0:
            formulas = now - last["formulas"] >= FORMULA_INTERVAL or frame.index == 0
            view.draw_frame(frame, live=True, formulas=formulas)
            last["frame"] = now
            if formulas:
                last["formulas"] = now

    with shared.live():
        if pool is None:
            return rr.run_loop(view.run, shared.lock, on_step, connected=connected)
        return remote.run_loop(view.run, pool, weights_dir, on_step, view.draw_wait, connected=connected)
