"""Page 13: latent diffusion, how Stable Diffusion fits on a laptop (Rombach et al. 2022). An autoencoder, the
diffusion in its latent (a 2-D latent to see, a 4x7x7 latent for quality), the pipeline of the student's own run,
pixel space against latent space, and what the autoencoder costs and saves."""

from ui.sidebar import sidebar, current_seed
from ui.exercises import check_yourself

import numpy as np
import streamlit as st

from diffusion_core.models.autoencoder import compression_factor
from diffusion_core.models.latent import sample_cost
from diffusion_core.models.weights import WeightsError
from diffusion_core.samplers import DEFAULT_GUIDANCE
from ui import charts
from ui.follow import follow_slider, show_in_place
from ui.latent import runs, views

tr = sidebar("latent")

LABELS = tuple(range(10))
STEP_CHOICES = (5, 10, 20, 50)  # network calls offered
MLP_STEPS = 2000  # training steps of the 2-D MLP (a few seconds on one core)
K_LABEL, K_GUIDANCE, K_STEPS, K_SAMPLER = "latent_label", "latent_guidance", "latent_steps", "latent_sampler"
K2_LABEL, K2_GUIDANCE, K2_PREDICTOR, K2_STEPS = "latent_2d_label", "latent_2d_guidance", "latent_2d_predictor", "latent_2d_steps"
K_CMP_LABEL, K_MLP_STEPS = "latent_compare_label", "latent_mlp_steps"
STEPS_2D_FIRST = 10  # where the steps of the 2-D walks start


def axis_titles() -> dict[str, str]:
    return {"x_title": tr("latent.x_axis"), "y_title": tr("latent.y_axis")}


def pct(v: float) -> str:
    return f"{100 * v:.1f} %"


st.title(tr("latent.title"))
st.markdown(tr("latent.intro"))
st.latex(r"x \xrightarrow{\;\mathcal{E}\;} z_0 = s\,\mu_\phi(x) \xrightarrow{\;q(z_t \mid z_0)\;} z_T \sim \mathcal{N}(0, \mathbf{I})"
         r"\xrightarrow{\;\varepsilon_\theta(z_t, t, y)\;} \hat z_0 \xrightarrow{\;\mathcal{D}\;} \hat x = \mathcal{D}(\hat z_0 / s)")

try:
    nets = runs.networks()
except WeightsError as error:
    st.error(tr("latent.weights_missing", error=str(error)), icon=":material/error:")
    st.stop()
bench = runs.bench()
p, seed = nets.pipeline, current_seed()
GUIDANCE_2D_FIRST = float(p.config.guidance)  # where the guidance of the 2-D walks starts
ae = p.autoencoder.config
shape_text = "×".join(str(s) for s in p.latent_shape)

# ------------------------------------------------------------------ 1. the autoencoder
st.header(tr("latent.ae_header"))
st.markdown(tr("latent.ae_intro", shape=shape_text, factor=f"{compression_factor(p.latent_shape):g}",
               numbers=196, kl=f"{ae.kl_weight:g}", kl2=f"{nets.latent2d.autoencoder.config.kl_weight:g}"))
st.latex(r"L = \big\| x - \mathcal{D}(z) \big\|_1 + \beta\, D_\mathrm{KL}\big(\mathcal{N}(\mu_\phi(x), \sigma_\phi^2(x))"
         r"\,\big\|\, \mathcal{N}(0, \mathbf{I})\big), \quad z = \mu_\phi(x) + \sigma_\phi(x)\,\varepsilon")
rec = runs.reconstructions()
picture = np.concatenate([views.digit_grid(rec.originals, 10), views.digit_grid(rec.image, 10)[views.PAD:],
                          views.digit_grid(rec.flat, 10)[views.PAD:]], axis=0)
st.image(charts.enlarge(picture, 300), caption=tr("latent.recon_caption", shape=shape_text,
                                                  mse_image=f"{rec.mse_image:.4f}", mse_flat=f"{rec.mse_flat:.4f}"))
tiles = views._row([views._upscale(views.latent_tile(z), 28) for z in rec.latents])
st.image(charts.enlarge(tiles, 100), caption=tr("latent.latents_caption", shape=shape_text, limit=f"{views.LATENT_LIMIT:g}"))
if bench is not None:
    rows = []
    for r in bench["autoencoder"]:
        what = tr("latent.row_originals") if r["latent"] == "-" else tr(
            "latent.row_image" if r["numbers"] > 2 else "latent.row_flat", shape=shape_text)
        rows.append({tr("latent.col_what"): what, tr("latent.col_numbers"): str(r["numbers"]),
                     tr("latent.col_mse"): f"{r['mse']:.4f}" if "mse" in r else "–",
                     tr("latent.col_accuracy"): f"{pct(r['accuracy'])} ({pct(r['accuracy_ci_low'])}–{pct(r['accuracy_ci_high'])})",
                     tr("latent.col_fd"): f"{r['fd']:.3f}" if "fd" in r else "–"})
    st.table(rows)
    st.caption(tr("latent.ae_table_note", n=bench["autoencoder"][0]["n"]))
else:
    st.info(tr("latent.no_bench"), icon=":material/info:")

st.subheader(tr("latent.scale_header"))
st.markdown(tr("latent.scale_intro", s=f"{p.scale_factor:.4f}", std=f"{1 / p.scale_factor:.3f}",
               s2=f"{nets.latent2d.scale_factor:.4f}"))
st.latex(r"s = \frac{1}{\hat\sigma}, \qquad \hat\sigma = \operatorname{std}\big(\{z^{(i)}_j\}\big),"
         r"\quad z^{(i)} \sim q(z \mid x^{(i)})")

# ------------------------------------------------------------------ 2. the 2-D latent
st.header(tr("latent.cloud_header"))
lat = nets.latent2d
st.markdown(tr("latent.cloud_intro", n=len(lat.test_points), m=len(lat.train_points)))
cloud = lat.test_points.numpy()
cloud_col, _ = st.columns([3, 1])
cloud_col.plotly_chart(views.cloud_figure(cloud, lat.test_labels.numpy(), title=tr("latent.cloud_title", n=len(cloud)),
                                         digit_name=tr("latent.digit_name"), **axis_titles()), key="latent_cloud")


@st.fragment
def walk_view() -> None:
    """The 2-D walks: label, guidance, predictor and steps, and the trajectories with what they decode to."""
    st.session_state.setdefault(K2_GUIDANCE, GUIDANCE_2D_FIRST)
    st.session_state.setdefault(K2_STEPS, STEPS_2D_FIRST)
    c1, c2, c3, c4 = st.columns(4)
    label = c1.selectbox(tr("latent.label"), LABELS, key=K2_LABEL, help=tr("latent.label_help"))
    guidance = c2.slider(tr("latent.guidance"), 0.0, 5.0, step=0.5, key=K2_GUIDANCE, help=tr("latent.guidance_help"))
    predictor = c3.radio(tr("latent.predictor"), ("exact", "mlp"), key=K2_PREDICTOR, horizontal=True,
                         format_func=lambda k: tr(f"latent.predictor_{k}"), help=tr("latent.predictor_help"))
    steps = c4.select_slider(tr("latent.steps_2d"), STEP_CHOICES, key=K2_STEPS, help=tr("latent.steps_2d_help"))
    mlp_steps = int(st.session_state.get(K_MLP_STEPS, MLP_STEPS))
    if predictor == "mlp":
        bar = st.progress(0.0, text=tr("latent.mlp_training", step=0, steps=mlp_steps, loss="…"))
        trained = runs.conditional_mlp(mlp_steps, lambda i, n, loss: bar.progress(
            i / n, text=tr("latent.mlp_training", step=i, steps=n, loss=f"{loss:.4f}")))
        bar.empty()
        st.caption(tr("latent.mlp_note", steps=mlp_steps, seconds=f"{trained.seconds:.1f}",
                      loss=f"{trained.losses[-1]:.4f}", m=len(lat.train_points)))
    walk = runs.walk_2d(predictor, label, float(guidance), steps, seed, mlp_steps)
    sub = slice(0, None, 10)  # every tenth test digit under the paths

    def walk_chart(w, s: float, n: int):
        return views.walk_figure(cloud[sub], lat.test_labels.numpy()[sub], w.paths,
                                 title=tr("latent.walk_title", label=label, s=f"{s:g}", steps=n),
                                 digit_name=tr("latent.digit_name"), path_name=tr("latent.path_name"),
                                 start_name=tr("latent.start_name"), end_name=tr("latent.end_name"), **axis_titles())
    left, right = st.columns([3, 2])
    right.image(charts.enlarge(views.walk_grid(walk.decoded), 320),
                caption=tr("latent.walk_caption", n=runs.N_WALKS, states=len(walk.shown)))
    # The chart keeps the walk at the first guidance and steps (for this label and predictor); the browser applies
    # this one to it with Plotly.react (ui/follow.py), so a step of a slider does not rebuild the chart.
    first = runs.walk_2d(predictor, label, GUIDANCE_2D_FIRST, STEPS_2D_FIRST, seed, mlp_steps)
    show_in_place(left, walk_chart(first, GUIDANCE_2D_FIRST, STEPS_2D_FIRST), "latent_walk")
    follow_slider(K2_GUIDANCE, figures={"latent_walk": walk_chart(walk, float(guidance), steps)}, value=float(guidance),
                  label=None)
    hits = int((walk.judged == label).sum())
    right.caption(tr("latent.walk_judged", hits=hits, n=runs.N_WALKS, label=label))


walk_view()
st.markdown(tr("latent.walk_why"))
if bench is not None:
    flat_rows = [r for r in bench["samples"] if r["what"].startswith("2-D")]
    st.caption(tr("latent.walk_bench", **{f"acc{i}": pct(r["accuracy"]) for i, r in enumerate(flat_rows[:4])},
                  **{f"s{i}": f"{r['guidance']:g}" for i, r in enumerate(flat_rows[:4])}, n=flat_rows[0]["n"]))

# ------------------------------------------------------------------ 3. the image latent, step by step
st.header(tr("latent.run_header"))
st.markdown(tr("latent.run_intro", shape=shape_text))


@st.fragment
def run_view() -> None:
    """The student's latent run: label, guidance, calls and sampler, and the pipeline strip of the first digit."""
    st.session_state.setdefault(K_GUIDANCE, float(p.config.guidance))
    st.session_state.setdefault(K_STEPS, 10)
    c1, c2, c3, c4 = st.columns(4)
    label = c1.selectbox(tr("latent.label"), LABELS, key=K_LABEL, index=3, help=tr("latent.label_help"))
    guidance = c2.slider(tr("latent.guidance"), 0.0, 5.0, step=0.5, key=K_GUIDANCE, help=tr("latent.guidance_help"))
    steps = c3.select_slider(tr("latent.steps"), STEP_CHOICES, key=K_STEPS, help=tr("latent.steps_help"))
    sampler = c4.radio(tr("latent.sampler"), ("dpm_solver++", "ddim"), key=K_SAMPLER, horizontal=True,
                       format_func=lambda k: tr(f"latent.sampler_{k.replace('+', 'p')}"))
    with st.spinner(tr("latent.sampling", n=runs.N_SAMPLES, steps=steps)):  # up to 2 s the first time
        run = runs.latent_run(label, float(guidance), steps, sampler, seed)
    strip = views.pipeline_strip(run.latents, run.x0_decoded, run.digits[0])
    shown = views.shown_steps(steps)
    st.image(charts.enlarge(strip, 240), caption=tr("latent.strip_caption", steps=steps, shown=len(shown),
                                                    ts=", ".join(str(run.timesteps[i]) for i in shown)))
    cost = sample_cost(steps, float(guidance))
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(tr("latent.metric_seconds"), f"{run.seconds:.3f} s", help=tr("latent.metric_seconds_help"))
    m2.metric(tr("latent.metric_calls"), f"{cost.network_calls}", help=tr("latent.metric_calls_help",
                                                                         passes=cost.denoiser_passes))
    m3.metric(tr("latent.metric_numbers"), f"{ae.latent_numbers}")
    m4.metric(tr("latent.metric_judged"), f"{int((run.judged == label).sum())}/{runs.N_SAMPLES}",
              help=tr("latent.metric_judged_help"))
    st.image(charts.enlarge(views.digit_grid(run.digits, 8), 240), caption=tr("latent.grid_caption", label=label))


run_view()
st.markdown(tr("latent.run_why"))

# ------------------------------------------------------------------ 4. pixel space against latent space
st.header(tr("latent.compare_header"))
st.markdown(tr("latent.compare_intro", steps=10, s_pixel=f"{DEFAULT_GUIDANCE:g}", s_latent=f"{p.config.guidance:g}"))


@st.fragment
def compare_view() -> None:
    label = st.selectbox(tr("latent.label"), LABELS, key=K_CMP_LABEL, index=7, help=tr("latent.label_help"))
    guidance, steps = float(p.config.guidance), 10
    lat_run = runs.latent_run(label, guidance, steps, "dpm_solver++", seed)
    pix_run = runs.pixel_run(label, DEFAULT_GUIDANCE, steps, seed)
    left, right = st.columns(2)
    left.image(charts.enlarge(views.digit_grid(pix_run.digits, 8), 200), caption=tr("latent.pixel_caption"))
    right.image(charts.enlarge(views.digit_grid(lat_run.digits, 8), 200), caption=tr("latent.latent_caption"))
    cost = sample_cost(steps, guidance)
    acc = {}
    if bench is not None:
        rows = {r["what"]: r for r in bench["samples"]}
        acc = {"pixel": rows.get("pixel-space network"), "latent": rows.get("latent diffusion (image latent)")}
    table = []
    for key, run, numbers in (("pixel", pix_run, 784), ("latent", lat_run, ae.latent_numbers)):
        b = acc.get(key)
        table.append({tr("latent.col_pipeline"): tr(f"latent.pipeline_{key}"),
                      tr("latent.col_numbers"): str(numbers),
                      tr("latent.col_calls"): tr("latent.calls_cell", calls=cost.network_calls,
                                                  passes=cost.denoiser_passes,
                                                  decoder=tr("latent.plus_decoder") if key == "latent" else ""),
                      tr("latent.col_seconds"): f"{run.seconds:.3f} s",
                      tr("latent.col_judged"): f"{int((run.judged == label).sum())}/{runs.N_SAMPLES}",
                      tr("latent.col_bench"): "–" if b is None else f"{pct(b['accuracy'])} · FD {b['fd']:.3f}"})
    st.table(table)
    st.caption(tr("latent.compare_note"))


compare_view()

# ------------------------------------------------------------------ 5. what it costs, and when it pays
st.header(tr("latent.flops_header"))
st.markdown(tr("latent.flops_intro"))
with st.spinner(tr("latent.flops_counting")):
    table = runs.flops_table()
passes = sample_cost(10, float(p.config.guidance)).denoiser_passes
f28 = table[0]
st.table([{tr("latent.col_side"): f"{f.side}×{f.side}", tr("latent.col_latent_side"): f"4×{f.latent_side}×{f.latent_side}",
           tr("latent.col_pixel_call"): views.mflop(f.pixel_call), tr("latent.col_latent_call"): views.mflop(f.latent_call),
           tr("latent.col_decoder"): views.mflop(f.decoder),
           tr("latent.col_ratio"): f"{f.ratio(passes):.1f}×"} for f in table])
st.plotly_chart(views.flops_figure([f.side for f in table], [f.pixel_sample(passes) for f in table],
                                   [f.latent_sample(passes) for f in table],
                                   names=(tr("latent.pipeline_pixel"), tr("latent.pipeline_latent")),
                                   x_title=tr("latent.flops_x"), y_title=tr("latent.flops_y", passes=passes)),
                key="latent_flops")
speed = {r["what"].split(",")[0]: r for r in bench["speed"]} if bench is not None else {}
st.markdown(tr("latent.flops_why", passes=passes, pixel=views.mflop(f28.pixel_sample(passes)),
               latent=views.mflop(f28.latent_sample(passes)), ratio=f"{f28.ratio(passes):.1f}",
               ratio512=f"{table[-1].ratio(passes):.1f}",
               share=f"{100 * f28.decoder / f28.latent_sample(passes):.0f}"))
if speed:
    ls, ps = speed.get("latent diffusion"), speed.get("pixel-space network")
    if ls and ps:
        st.markdown(tr("latent.flops_measured", latent=f"{ls['wall_seconds']:.3f}", pixel=f"{ps['wall_seconds']:.3f}",
                       latent_cpu=f"{ls['cpu_seconds']:.3f}", pixel_cpu=f"{ps['cpu_seconds']:.3f}",
                       ratio=f"{ps['cpu_seconds'] / ls['cpu_seconds']:.1f}"))

check_yourself(tr, "latent")
