"""Page 12's 2-D half: the stages of ``diffusion_core.toy2d.fewstep`` run with a progress bar each, kept in a store
shared by every session (one lab per data set, teacher and seed), and the figures. No math here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.toy2d import fewstep as fs
from diffusion_core.toy2d.consistency import ConsistencyResult
from diffusion_core.toy2d.flow import FlowTrainResult, mlp_velocity_fn
from diffusion_core.toy2d.reflow import Pairs, flow_paths

from .. import charts
from ..i18n import Translator
from ..playground import lab as pg
from ..shared_store import SharedStore, shared_store

DATASETS = ("mixture", "moons", "checkerboard", "swiss_roll")  # the playground's shapes, without the picture
N_PATHS = 24  # paths drawn before and after
PATH_STEPS = 100  # Euler steps of a drawn path
MAX_LABS = 8
METHOD_COLORS = {"teacher": charts.PALETTE[1], "reflow": charts.PALETTE[0], "consistency": charts.PALETTE[2]}


@dataclass
class Lab:
    """Everything the 2-D half shows for one (data set, teacher, seed)."""

    key: tuple
    teacher: fs.Teacher
    pairs: Pairs
    reflow: FlowTrainResult
    consistency: ConsistencyResult
    meter: fs.Meter
    paths: dict[str, np.ndarray] = field(default_factory=dict)  # "teacher", "reflow": [PATH_STEPS + 1, N_PATHS, 2]


def lab_store() -> SharedStore:
    return shared_store("fewstep", MAX_LABS)


def _bar(tr: Translator, key: str):
    bar = st.progress(0.0, text=tr(key, step=0, steps="…", loss="…"))

    def training(step: int, steps: int, loss: float) -> None:
        bar.progress(step / steps, text=tr(key, step=step, steps=steps, loss=f"{loss:.4f}"))

    def counting(step: int, steps: int) -> None:
        bar.progress(step / steps, text=tr(key, step=step, steps=steps, loss=""))

    return bar, training, counting


def build_lab(tr: Translator, dataset: str, teacher_kind: str, seed: int) -> Lab:
    """Run (or find) every stage; each stage shows its own progress bar while it runs."""
    key = (dataset, teacher_kind, seed)
    store = lab_store()
    lab = store.peek(key)
    if lab is not None:
        return lab
    bars = []

    def stage(name: str):
        bar, training, counting = _bar(tr, f"fewstep.progress_{name}")
        bars.append(bar)
        return training, counting

    training, _ = stage("teacher")
    teacher = fs.make_teacher(dataset, teacher_kind, seed, progress=training)  # type: ignore[arg-type]
    _, counting = stage("pairs")
    pairs = fs.make_pairs(teacher, seed, progress=counting)
    training, _ = stage("reflow")
    reflow = fs.make_reflow(teacher, pairs, seed, progress=training)
    training, _ = stage("consistency")
    consistency = fs.make_consistency(teacher, seed, progress=training)
    _, counting = stage("meter")
    meter = fs.measure(dataset, teacher, reflow, consistency, seed, progress=counting)
    x1 = meter_noise(seed)
    paths = {"teacher": flow_paths(teacher.velocity, x1, PATH_STEPS).numpy(),
             "reflow": flow_paths(mlp_velocity_fn(reflow.model), x1, PATH_STEPS).numpy()}
    lab = Lab(key, teacher, pairs, reflow, consistency, meter, paths)
    store.put(key, lab)
    for bar in bars:
        bar.empty()
    return lab


def meter_noise(seed: int) -> torch.Tensor:
    """The first N_PATHS noise points of the meter (the same x_1 as its samples)."""
    return torch.randn(fs.N_EVAL, 2, generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64)[:N_PATHS]


def calls_text(tr: Translator, k: int) -> str:
    """"1 call", "2 calls" (one form in Vietnamese)."""
    return tr("fewstep.calls_one") if k == 1 else tr("fewstep.calls", k=k)


def axis_titles(tr: Translator) -> dict[str, str]:
    return {"x_title": tr("fewstep.x_axis"), "y_title": tr("fewstep.y_axis")}


def paths_figure(tr: Translator, lab: Lab, which: str, height: int = 420) -> go.Figure:
    """The flow's paths from the noise points (crosses) to their ends (dots), over the training points."""
    p = lab.paths[which]  # [steps + 1, n, 2], x_1 first
    gap = np.full((1, p.shape[1], 2), np.nan)
    line = np.concatenate([p, gap]).transpose(1, 0, 2).reshape(-1, 2)  # every path, then a gap
    data, color = lab.teacher.data.numpy(), METHOD_COLORS[which]
    traces = [
        go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name=tr("fewstep.data_name"),
                   marker=dict(size=3, color=pg.COLORS["data"]), hoverinfo="skip"),
        go.Scatter(x=line[:, 0], y=line[:, 1], mode="lines", name=tr(f"fewstep.paths_{which}"),
                   line=dict(color=color, width=2), hoverinfo="skip"),
        go.Scatter(x=p[-1, :, 0], y=p[-1, :, 1], mode="markers", showlegend=False, hoverinfo="skip",
                   marker=dict(size=7, color=color)),
        go.Scatter(x=p[0, :, 0], y=p[0, :, 1], mode="markers", name=tr("fewstep.start_name"),
                   marker=dict(size=8, color="black", symbol="x")),
    ]
    title = tr(f"fewstep.paths_title_{which}", s=f"{lab.meter.straightness[which]:.3f}")
    return go.Figure(data=traces, layout=pg._square_layout(**axis_titles(tr), title=title, height=height))


def meter_figure(tr: Translator, meter: fs.Meter, height: int = 360) -> go.Figure:
    """Energy distance against network calls, one line per method, the teacher at 100 steps as a dotted line."""
    data = []
    for method in ("teacher", "reflow", "consistency"):
        ys = [meter.distances[method, k] for k in fs.FEW_STEPS]
        name = tr(f"fewstep.method_{method}")
        data.append(dict(type="scatter", x=list(fs.FEW_STEPS), y=ys, mode="lines+markers", name=name,
                         line=dict(color=METHOD_COLORS[method]),
                         hovertemplate="%{x}: %{y:.4f}<extra>" + name + "</extra>"))
    reference = meter.distances["teacher", fs.TEACHER_STEPS]
    data.append(dict(type="scatter", x=[fs.FEW_STEPS[0], fs.FEW_STEPS[-1]], y=[reference, reference], mode="lines",
                     name=tr("fewstep.method_teacher_100", n=fs.TEACHER_STEPS),
                     line=dict(color="#444", dash="dot", width=1.5), hoverinfo="skip"))
    layout = dict(title=dict(text=tr("fewstep.meter_title"), x=0.0, xanchor="left", font=dict(size=15)), height=height,
                  margin=dict(l=10, r=10, t=40, b=10), separators=charts.SEPARATORS,
                  legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0),
                  xaxis=dict(title=dict(text=tr("fewstep.calls_axis")), type="log", tickvals=list(fs.FEW_STEPS),
                             ticktext=[str(k) for k in fs.FEW_STEPS]),
                  yaxis=dict(title=dict(text=tr("fewstep.energy_axis")), type="log"))
    return go.Figure(data=data, layout=layout)


CLOUD_POINTS = 300  # samples and fresh points drawn per cloud: SVG markers are what a step of the control redraws


@st.cache_data(max_entries=512, show_spinner=False)
def _clouds_figure(key: tuple, lang: str, method: str, k: int, _lab: Lab) -> go.Figure:
    tr = Translator(lang)  # type: ignore[arg-type]
    points = _lab.meter.samples[method, k][:CLOUD_POINTS].numpy()
    title = tr("fewstep.cloud_title", method=tr(f"fewstep.method_{method}"), calls=calls_text(tr, k),
               d=f"{_lab.meter.distances[method, k]:.4f}")
    return pg.dots_figure(_lab.meter.fresh[:CLOUD_POINTS].numpy(),
                          {tr("fewstep.samples_name"): (points, METHOD_COLORS[method])},
                          title=title, data_name=tr("fewstep.fresh_name"), height=360, **axis_titles(tr))


def clouds_figure(tr: Translator, lab: Lab, method: str, k: int) -> go.Figure:
    """The samples of one method at k calls over the fresh data points (built once per lab, language, method, k), as
    light figures (filled diamonds, one SVG path per set) that a change of k applies with Plotly.react (ui/follow.py)."""
    return _clouds_figure(lab.key, tr.lang, method, k, lab)
