"""Page 12's MNIST half: the reflowed student and the teacher side by side from the same x_T, and the quality meter
of every sampler against network calls (read from the benchmarks' JSON files). No math here."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core import generate, load_denoiser
from diffusion_core.data.images import make_grid
from diffusion_core.models.weights import PRETRAINED_DIR

from .. import charts
from ..i18n import Translator
from ..model import configure_threads
from ..steps.run import SweepRow, load_sweep

FEWSTEP_PATH = PRETRAINED_DIR / "fewstep_sweep.json"
SAMPLER_SWEEP_PATH = PRETRAINED_DIR / "sampler_sweep.json"
COLORS = {"reflow": charts.PALETTE[4], "ddim": charts.PALETTE[0], "dpm_solver++": charts.PALETTE[2],
          "ddpm": charts.PALETTE[1]}
ORDER = ("reflow", "dpm_solver++", "ddim", "ddpm")
_student_lock = threading.Lock()  # one student call at a time: on 2 cores, parallel calls only wait for each other


@st.cache_resource(show_spinner=False)
def student():
    """The shipped student, ``load_denoiser(name="reflow")``, once per server process."""
    configure_threads()
    return load_denoiser("cpu", name="reflow")


@st.cache_data(show_spinner=False)
def fewstep_results(path: str = str(FEWSTEP_PATH), mtime: float = 0.0) -> dict | None:
    """pretrained/fewstep_sweep.json (bench/fewstep.py), or None when it is not there."""
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else None


def results() -> dict | None:
    return fewstep_results(str(FEWSTEP_PATH), FEWSTEP_PATH.stat().st_mtime if FEWSTEP_PATH.is_file() else 0.0)


def gallery_images(data: dict) -> dict[int, np.ndarray]:
    """The teacher's precomputed digits per seed: uint8 [10, 28, 28]."""
    g = data["gallery"]
    return {int(s): np.frombuffer(base64.b64decode(b), dtype=np.uint8).reshape(g["shape"])
            for s, b in g["uint8_base64"].items()}


def gallery_noise(seed: int) -> torch.Tensor:
    """x_T of the gallery's seed, as bench/fewstep.py drew it (``generate``'s draw for 10 digits)."""
    return torch.randn((10, 1, 28, 28), generator=torch.Generator().manual_seed(seed))


@dataclass(frozen=True)
class Column:
    image: np.ndarray  # uint8 grid of the ten digits
    seconds: float | None  # measured here (None: precomputed by the benchmark)


def _grid(x: torch.Tensor) -> np.ndarray:
    return make_grid(x, ncols=5)


def _timed(run) -> tuple[torch.Tensor, float]:
    """The result of ``run()`` and the time of a second run: the first builds oneDNN's kernels for the shapes."""
    run()
    start = time.perf_counter()
    x = run()
    return x, time.perf_counter() - start


@st.cache_data(max_entries=64, show_spinner=False)
def live_columns(seed: int, _teacher_model, _lock) -> dict[str, Column]:
    """DPM-Solver++ at 2 calls and the student at 1 and 2 calls from the gallery's x_T of ``seed``."""
    x_T, labels = gallery_noise(seed), list(range(10))
    out = {}
    with _lock:
        x, seconds = _timed(lambda: generate(_teacher_model, labels, sampler="dpm_solver++", steps=2,
                                             spacing="logsnr", x_start=x_T))
        out["dpm2"] = Column(_grid(x), seconds)
    model = student()
    for k in (1, 2):
        with _student_lock:
            x, seconds = _timed(lambda: generate(model, labels, steps=k, x_start=x_T))
            out[f"student{k}"] = Column(_grid(x), seconds)
    return out


def teacher_column(data: dict, seed: int) -> Column:
    digits = torch.from_numpy(gallery_images(data)[seed].astype(np.float32) / 127.5 - 1)[:, None]
    return Column(_grid(digits), None)


def all_rows(data: dict) -> list[SweepRow]:
    """The student's and the teacher's rows of fewstep_sweep.json, and page 8's sweep at the page's guidance
    (rows at other NFE than this benchmark's; where both measured a configuration, this benchmark's row)."""
    mine = load_sweep(FEWSTEP_PATH)
    rows = list(mine.rows) if mine else []
    seen = {(r.sampler, r.nfe) for r in rows}
    other = load_sweep(SAMPLER_SWEEP_PATH)
    for r in other.rows if other else []:
        if (r.sampler, r.nfe) not in seen and not r.lower_order_final:
            rows.append(r)
    return rows


def series(rows: list[SweepRow]) -> dict[str, list[SweepRow]]:
    out: dict[str, list[SweepRow]] = {}
    for r in rows:
        out.setdefault(r.sampler, []).append(r)
    return {s: sorted(out[s], key=lambda r: r.nfe) for s in ORDER if s in out}


def quality_figure(tr: Translator, rows: list[SweepRow], metric: str, height: int = 420) -> go.Figure:
    """Every sampler and the student on one chart against network calls (log axis): FD / floor (log axis) or
    accuracy with its 95 % interval; the issue's goals as dotted lines."""
    data, calls = [], sorted({r.nfe for r in rows})
    for sampler, rs in series(rows).items():
        name = tr(f"fewstep.sampler_{sampler}")
        x = [r.nfe for r in rs]
        style = dict(type="scatter", x=x, mode="lines+markers", name=name,
                     line=dict(color=COLORS[sampler], width=3 if sampler == "reflow" else 1.8),
                     marker=dict(size=9 if sampler == "reflow" else 6))
        if metric == "fd":
            data.append(dict(style, y=[r.fd / r.fd_floor for r in rs],
                             hovertemplate="%{x}: %{y:.2f}×<extra>" + name + "</extra>"))
        else:
            data.append(dict(style, y=[100 * r.accuracy for r in rs],
                             error_y=dict(type="data", symmetric=False, thickness=1,
                                          array=[100 * (r.accuracy_ci_high - r.accuracy) for r in rs],
                                          arrayminus=[100 * (r.accuracy - r.accuracy_ci_low) for r in rs]),
                             hovertemplate="%{x}: %{y:.1f} %<extra>" + name + "</extra>"))
    goal = (3.0, "fewstep.goal_fd") if metric == "fd" else (99.0, "fewstep.goal_accuracy")
    data.append(dict(type="scatter", x=[calls[0], calls[-1]], y=[goal[0], goal[0]], mode="lines", name=tr(goal[1]),
                     line=dict(color="#444", dash="dot", width=1.2), hoverinfo="skip"))
    if metric == "accuracy":
        data.append(dict(type="scatter", x=[calls[0], calls[-1]], y=[95, 95], mode="lines",
                         name=tr("fewstep.goal_accuracy_one"), line=dict(color="#888", dash="dash", width=1),
                         hoverinfo="skip"))
    y_axis = dict(title=dict(text=tr(f"fewstep.quality_y_{metric}")))
    if metric == "fd":
        ticks = [0.5, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
        y_axis |= dict(type="log", tickvals=ticks, ticktext=[f"{v:g}" for v in ticks])
    layout = dict(title=dict(text=tr(f"fewstep.quality_title_{metric}"), x=0.0, xanchor="left", font=dict(size=15)),
                  height=height, margin=dict(l=10, r=10, t=40, b=10), separators=charts.SEPARATORS,
                  legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0.0), yaxis=y_axis,
                  xaxis=dict(title=dict(text=tr("fewstep.calls_axis")), type="log", tickvals=calls,
                             ticktext=[str(c) for c in calls]))
    return go.Figure(data=data, layout=layout)


def table_rows(tr: Translator, data: dict) -> list[dict[str, str]]:
    """The benchmark's rows as the page's table: sampler, calls, passes, accuracy (interval), FD / floor, time."""
    order = {s: i for i, s in enumerate(ORDER)}
    out = []
    for r in sorted(data["rows"], key=lambda r: (order.get(r["sampler"], 9), r["nfe"])):
        out.append({
            tr("fewstep.col_sampler"): tr(f"fewstep.sampler_{r['sampler']}"),
            tr("fewstep.col_calls"): str(r["nfe"]),
            tr("fewstep.col_passes"): str(r["nfe"] * r["passes_per_call"]),
            tr("fewstep.col_accuracy"): f"{100 * r['accuracy']:.1f} % ({100 * r['accuracy_ci_low']:.1f}–"
                                        f"{100 * r['accuracy_ci_high']:.1f})",
            tr("fewstep.col_fd"): f"{r['fd'] / r['fd_floor']:.2f}×",
            tr("fewstep.col_time"): f"{1000 * r['seconds_16']:.0f} ms",
        })
    return out
