"""Page 9: the 2-D playground. Train a small denoiser on a point cloud in seconds, see its score field beside
the exact one of the training set, its trajectories (DDPM and DDIM), and what it adds over memorising."""

from ui.sidebar import sidebar, current_seed
from ui.exercises import check_yourself

import streamlit as st
import torch

from diffusion_core import toy2d
from diffusion_core.data.images import MAX_UPLOAD_MB, ImageLoadError, LoadedImage, read_image
from diffusion_core.process.schedules import SCHEDULE_KINDS, make_schedule
from ui.follow import follow_slider, show_in_place
from ui.playground import lab as pg
from ui.shared_store import picture_id

tr = sidebar("playground")

STEP_CHOICES = (100, 200, 500, 1000, 2000, 3000, 5000, 10000)  # training steps offered
WIDTH_CHOICES = (32, 64, 128, 256)  # hidden units per layer
T_CHOICES = (25, 50, 100, 200, 500, 1000)  # numbers of diffusion steps offered
DEFAULTS = {"points": 500, "steps": 3000, "width": 128, "schedule": "linear", "T": 1000}
N_PATHS = 8  # trajectories drawn from the same x_T
DPM_STEPS = 10  # network evaluations of DPM-Solver++ (the same ODE as DDIM, in far fewer steps)
# name: (sampler, steps); drawn in this order, so DDIM's path lies on top of DPM-Solver++'s dots
SAMPLERS = {"ddpm": ("ddpm", None), "dpm": ("dpm_solver++", DPM_STEPS), "ddim": ("ddim", None)}
N_MEMO = 100  # samples of each kind in the memorisation test, at most
MEMO_PAIRS = 5e7  # fewer samples (down to 20) when samples x training points x T would exceed this: seconds of work
K_DATA, K_SOURCE, K_UPLOAD = "playground_data", "playground_picture_source", "playground_upload"
K_POINTS, K_STEPS, K_WIDTH, K_SCHEDULE, K_T, K_TSLIDER = (
    "playground_points", "playground_steps", "playground_width", "playground_schedule", "playground_T", "playground_t")


@st.cache_data(max_entries=4, show_spinner=False)
def decode_upload(data: bytes) -> LoadedImage:
    """Decode once per file (the safe loader of page 4); refusals raise and are not cached."""
    return read_image(data)


def axis_titles() -> dict[str, str]:
    return {"x_title": tr("playground.x_axis"), "y_title": tr("playground.y_axis")}


st.title(tr("playground.title"))
st.markdown(tr("playground.intro"))

# ------------------------------------------------------------------ 1. the data and the settings
st.header(tr("playground.data_header"))
name = st.radio(tr("playground.data_label"), toy2d.DATASETS, key=K_DATA, horizontal=True,
                format_func=lambda d: tr(f"playground.data_{d}"))
pixels = None
if name == "picture":
    source = st.radio(tr("playground.picture_source"), ("drawing", "upload"), key=K_SOURCE, horizontal=True,
                      format_func=lambda s: tr(f"playground.picture_{s}"))
    if source == "upload":
        upload = st.file_uploader(tr("playground.upload_label"), key=K_UPLOAD, max_upload_size=MAX_UPLOAD_MB)
        st.caption(tr("playground.upload_help", limit_mb=MAX_UPLOAD_MB))
        if upload is None:
            st.info(tr("playground.upload_prompt"), icon=":material/upload:")
        else:
            try:
                loaded = decode_upload(upload.getvalue())
                toy2d.picture_distribution(loaded.pixels)
                pixels = loaded.pixels
            except ImageLoadError as error:  # the codes and messages of page 4
                st.error(tr(f"your_image.error_{error.code}", **error.fields).strip(), icon=":material/broken_image:")
            except toy2d.BlankPictureError:
                st.warning(tr("playground.error_blank"), icon=":material/block:")
            if pixels is None:
                st.caption(tr("playground.using_drawing"))
    if pixels is None:
        pixels = toy2d.bundled_picture()
    st.image(pixels if pixels.ndim == 2 or pixels.shape[2] == 3 else pixels[:, :, 0], width=120,
             caption=tr("playground.picture_caption"))

for k, default in ((K_POINTS, DEFAULTS["points"]), (K_STEPS, DEFAULTS["steps"]), (K_WIDTH, DEFAULTS["width"]),
                   (K_SCHEDULE, DEFAULTS["schedule"]), (K_T, DEFAULTS["T"])):
    st.session_state.setdefault(k, default)  # defaults through the state, so tests and links may set them
with st.form("playground_settings", border=True):
    c1, c2, c3 = st.columns(3)
    n_points = c1.slider(tr("playground.points_label"), 1, toy2d.MAX_POINTS, key=K_POINTS,
                         help=tr("playground.points_help"))
    steps = c1.select_slider(tr("playground.steps_label"), STEP_CHOICES, key=K_STEPS,
                             help=tr("playground.steps_help"))
    width = c2.select_slider(tr("playground.width_label"), WIDTH_CHOICES, key=K_WIDTH,
                             help=tr("playground.width_help"))
    kind = c2.radio(tr("schedule.label"), SCHEDULE_KINDS, key=K_SCHEDULE, horizontal=True, help=tr("schedule.help"),
                    format_func=lambda k: tr(f"schedule.{k}"))
    T = c3.select_slider(tr("schedule.T_label"), T_CHOICES, key=K_T, help=tr("playground.T_help"))
    st.form_submit_button(tr("playground.train_button"), icon=":material/model_training:", type="primary")

seed = current_seed()
data_id = name if name != "picture" else "picture:" + picture_id(pixels)
key = (data_id, n_points, seed, steps, width, kind, T)
store = pg.lab_store()
lab = store.peek(key)

# ------------------------------------------------------------------ 2. training
st.header(tr("playground.train_header"))
st.markdown(tr("playground.train_intro"))
st.latex(r"\begin{gathered}L_\text{simple} = \mathbb{E}_{t,\,x_0,\,\varepsilon}\left\|\varepsilon - "
         r"\varepsilon_\theta(x_t, t)\right\|^2,\\ x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,"
         r"\quad t \sim \mathcal{U}\{1, \dots, T\}\end{gathered}")
loss_slot = st.empty()
if lab is None:
    schedule = make_schedule(kind, T)
    distribution = toy2d.distribution(name, pixels)
    data = distribution.sample(n_points, torch.Generator().manual_seed(seed))
    bar = st.progress(0.0, text=tr("playground.training", step=0, steps=steps, loss="…"))
    curve: tuple[list[int], list[float]] = ([], [])

    def progress(step: int, total: int, loss: float) -> None:
        bar.progress(step / total, text=tr("playground.training", step=step, steps=total, loss=f"{loss:.4f}"))
        curve[0].append(step)
        curve[1].append(loss)
        if step % 500 == 0 or step == total:  # the live curve: a redraw every 500 steps is enough to watch
            loss_slot.plotly_chart(pg.loss_figure(*curve, x_title=tr("playground.step_axis"),
                                                  y_title=tr("playground.loss_axis"), name=tr("playground.loss_name")),
                                   key=f"playground_live_loss_{step}")

    trained = toy2d.train_mlp(data, schedule, toy2d.MLPConfig(T=T, width=width), toy2d.TrainConfig(steps=steps, seed=seed),
                              progress=progress)
    noise = torch.randn(min(n_points, pg.CLOUD_MAX), 2, generator=torch.Generator().manual_seed(seed + 1))
    lab = pg.Lab(key=key, data=data, schedule=schedule, trained=trained, cloud_noise=noise)
    store.put(key, lab)
    bar.empty()
loss_slot.plotly_chart(pg.loss_figure(lab.trained.steps, lab.trained.losses, x_title=tr("playground.step_axis"),
                                      y_title=tr("playground.loss_axis"), name=tr("playground.loss_name")),
                       key="playground_loss")
n_params = sum(p.numel() for p in lab.trained.model.parameters())
m1, m2, m3 = st.columns(3)
m1.metric(tr("playground.metric_time"), f"{lab.trained.seconds:.1f} s")
m2.metric(tr("playground.metric_loss"), f"{lab.trained.losses[-1]:.4f}")
m3.metric(tr("playground.metric_params"), f"{n_params}")
st.caption(tr("playground.train_note"))
schedule, data = lab.schedule, lab.data

# ------------------------------------------------------------------ 3. the score field at step t
st.header(tr("playground.field_header"))
st.markdown(tr("playground.field_intro"))
st.latex(r"\begin{gathered}\nabla_{x}\log q_t(x) = -\frac{\mathbb{E}[\varepsilon \mid x_t = x]}{\sqrt{1-\bar\alpha_t}},\\ "
         r"\mathbb{E}[x_0 \mid x_t] = \sum_{i=1}^{M} w_i\,x_i,\\ "
         r"w_i \propto \exp\!\left(-\frac{\|x_t - \sqrt{\bar\alpha_t}\,x_i\|^2}{2(1-\bar\alpha_t)}\right)\end{gathered}")


@st.fragment
def field_view() -> None:
    """The t slider and the three panels it drives; reruns alone when the slider moves. The panels are shown at
    the slider's first value (the same element at every step, never rebuilt) and the browser applies each step's
    field to them with Plotly.react (ui/follow.py)."""
    t_key = f"{K_TSLIDER}_{T}"  # one slider per T, so a smaller T never holds a t beyond it
    first = max(1, T // 10)
    st.session_state.setdefault(t_key, first)
    t = st.slider(tr("playground.t_label"), 1, T, key=t_key, help=tr("playground.t_help", T=T))
    figures, gap = pg.field_figures(key, t, tr.lang, lab)
    shown, _ = pg.field_figures(key, first, tr.lang, lab)
    for col, which in zip(st.columns(3), pg.PANELS):
        show_in_place(col, shown[which], f"playground_field_{which}")
    follow_slider(t_key, figures={f"playground_field_{w}": figures[w] for w in pg.PANELS}, value=t, minimum=1,
                  label=None)
    abar = float(schedule.alpha_bars[t])
    st.caption(tr("playground.field_note", t=t, abar=f"{abar:.4f}", sigma=f"{(1 - abar) ** 0.5:.4f}",
                  gap=f"{100 * gap:.0f}"))


field_view()

# ------------------------------------------------------------------ 4. trajectories
st.header(tr("playground.paths_header"))
st.markdown(tr("playground.paths_intro", n=N_PATHS, T=T))
if "paths" not in lab.extras:
    bar = st.progress(0.0, text=tr("playground.sampling"))
    x_T = torch.randn(N_PATHS, 2, generator=torch.Generator().manual_seed(seed + 2))
    fns = {"exact": toy2d.exact_eps_fn(data, schedule), "learned": toy2d.mlp_eps_fn(lab.trained.model)}
    runs = [(p, s) for p in fns for s in SAMPLERS]
    paths = {}
    for i, (predictor, sampler) in enumerate(runs):
        kind_of, n_steps = SAMPLERS[sampler]
        paths[predictor, sampler] = toy2d.reverse_paths(
            fns[predictor], x_T, schedule, sampler=kind_of, steps=n_steps or T,
            generator=torch.Generator().manual_seed(seed + 3),
            progress=lambda k, n, i=i: bar.progress((i + k / n) / len(runs), text=tr("playground.sampling")),
        ).numpy()
    lab.extras["paths"] = paths
    bar.empty()
paths = lab.extras["paths"]
data_np = data.numpy()
cols = st.columns(2)
for col, predictor in zip(cols, ("learned", "exact")):
    names = {sampler: tr(f"playground.sampler_{sampler}", n=DPM_STEPS) for sampler in SAMPLERS}
    col.plotly_chart(pg.paths_figure(
        data_np, {names[s]: paths[predictor, s] for s in SAMPLERS},
        {names["ddpm"]: pg.COLORS["fresh"], names["ddim"]: pg.COLORS[predictor], names["dpm"]: "#ff7f0e"},
        title=tr(f"playground.paths_{predictor}"), data_name=tr("playground.data_name"),
        start_name=tr("playground.start_name"), **axis_titles()), key=f"playground_paths_{predictor}")
st.caption(tr("playground.paths_note", dpm=DPM_STEPS))

# ------------------------------------------------------------------ 5. memorisation
st.header(tr("playground.memo_header"))
n_memo = max(20, min(N_MEMO, int(MEMO_PAIRS // (n_points * T))))
st.markdown(tr("playground.memo_intro", n=n_memo))
if "memo" not in lab.extras:
    bar = st.progress(0.0, text=tr("playground.sampling"))
    x_T = torch.randn(n_memo, 2, generator=torch.Generator().manual_seed(seed + 4))
    memo = {}
    for i, (predictor, fn) in enumerate((("learned", toy2d.mlp_eps_fn(lab.trained.model)),
                                         ("exact", toy2d.exact_eps_fn(data, schedule)))):
        memo[predictor] = toy2d.reverse_paths(
            fn, x_T, schedule, sampler="ddim", steps=T,
            progress=lambda k, n, i=i: bar.progress((i + k / n) / 2, text=tr("playground.sampling")))[-1]
    memo["fresh"] = toy2d.distribution(name, pixels).sample(n_memo, torch.Generator().manual_seed(seed + 5))
    memo = {k: (v.numpy(), float(toy2d.nearest_distance(v, data).median())) for k, v in memo.items()}
    lab.extras["memo"] = memo
    bar.empty()
memo = lab.extras["memo"]
k1, k2, k3 = st.columns(3)
for col, which in zip((k1, k2, k3), ("exact", "learned", "fresh")):
    col.metric(tr(f"playground.memo_metric_{which}"), f"{memo[which][1]:.4f}", help=tr("playground.memo_metric_help"))
st.plotly_chart(pg.samples_figure(
    data_np, {tr(f"playground.memo_name_{w}"): (memo[w][0], pg.COLORS[w]) for w in ("exact", "learned", "fresh")},
    title=tr("playground.memo_title"), data_name=tr("playground.data_name"), **axis_titles()), key="playground_memo")
exact_d, learned_d, fresh_d = (memo[w][1] for w in ("exact", "learned", "fresh"))
st.markdown(tr("playground.memo_why", exact=f"{exact_d:.4f}", learned=f"{learned_d:.4f}", fresh=f"{fresh_d:.4f}"))
if n_points == 1:
    st.info(tr("playground.memo_one_point"), icon=":material/info:")

check_yourself(tr, "playground")
