"""Sections 3 and 4 of the continuous-time page on MNIST: the reverse SDE and the ODE from the same x_1 with the
shipped network (live, shared store), the benchmark of both at equal network calls (bench/sde_sampling.py), the
ODE likelihood of one digit in bits/dim (live, with progress) and the benchmark's figures (bench/likelihood.py).
The math is in diffusion_core (samplers.continuous, process.image_likelihood)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from diffusion_core.data.images import image_to_tensor, unit_to_uint8
from diffusion_core.models.weights import PRETRAINED_DIR
from diffusion_core.process.image_likelihood import (PAGE_SOLVER, ImageLikelihood, dequantised_bpd,
                                                     ode_decoder_bound)
from diffusion_core.samplers import DEFAULT_GUIDANCE, guided_eps_fn
from diffusion_core.samplers.continuous import sample_continuous
from ui import charts
from ui.continuous.steps import plain_layout
from ui.model import SharedDenoiser
from ui.shared_store import SharedStore, picture_id, shared_store

SAMPLING_PATH = Path(os.environ.get("DIFFUSION_SDE_SAMPLING_PATH", PRETRAINED_DIR / "sde_sampling.json"))
LIKELIHOOD_PATH = Path(os.environ.get("DIFFUSION_LIKELIHOOD_PATH", PRETRAINED_DIR / "likelihood.json"))
CALL_CHOICES = (20, 50, 100, 200)
METHODS = ("em", "pc", "ode")  # the benchmark's rows, in this order
SDE_DRAWS = 3  # reverse-SDE runs from the same x_1
PAGE_PROBES = 1  # Rademacher probes of the page's likelihood (the benchmark's too)
Progress = Callable[[float], None]


def _store() -> SharedStore:
    return shared_store("continuous", 48)


@dataclass(frozen=True)
class SdeVsOde:
    """The same x_1 through the reverse SDE (several noise draws) and through the ODE."""

    x1: np.ndarray  # uint8 [28, 28], the start (shown from [-3, 3])
    sde: np.ndarray  # uint8 [SDE_DRAWS, 28, 28]
    ode: np.ndarray  # uint8 [28, 28]
    sde_spread: float  # RMS distance between the SDE results, averaged over their pairs
    seconds: float


def sde_vs_ode(shared: SharedDenoiser, label: int, calls: int, seed: int,
               progress: Progress | None = None) -> SdeVsOde:
    """Euler-Maruyama (``SDE_DRAWS`` runs, noise seeded by seed + 1) and the PF-ODE (Heun) from one x_1 ~ N(0, I)
    drawn with ``seed``, each with ``calls`` network calls, guidance as page 8. Shared by every session."""
    def compute() -> SdeVsOde:
        x1 = torch.randn((1, 1, 28, 28), generator=torch.Generator().manual_seed(seed))
        began = time.perf_counter()

        def step(offset: float) -> Callable[[int, int], None]:
            return lambda done, total: progress((offset + done / total) / 2) if progress is not None else None

        with shared.lock:
            sde = sample_continuous(shared.model, [label] * SDE_DRAWS, method="em", calls=calls,
                                    generator=torch.Generator().manual_seed(seed + 1),
                                    x_start=x1.expand(SDE_DRAWS, -1, -1, -1).clone(), progress=step(0))
            ode = sample_continuous(shared.model, [label], method="ode", calls=calls, x_start=x1.clone(),
                                    progress=step(1))
        pairs = [float((sde[i] - sde[j]).pow(2).mean().sqrt()) for i in range(SDE_DRAWS) for j in range(i)]
        return SdeVsOde(x1=unit_to_uint8((x1[0, 0] / 3).clamp(-1, 1).numpy()), sde=unit_to_uint8(sde[:, 0].numpy()),
                        ode=unit_to_uint8(ode[0, 0].numpy()), sde_spread=float(np.mean(pairs)),
                        seconds=time.perf_counter() - began)
    return _store().get(("sde_vs_ode", id(shared.model), label, calls, seed, DEFAULT_GUIDANCE), compute)  # type: ignore[return-value]


def cached_sde_vs_ode(shared: SharedDenoiser, label: int, calls: int, seed: int) -> SdeVsOde | None:
    return _store().peek(("sde_vs_ode", id(shared.model), label, calls, seed, DEFAULT_GUIDANCE))  # type: ignore[return-value]


@dataclass(frozen=True)
class DigitLikelihood:
    """The ODE likelihood of one digit both ways (process.image_likelihood), with the label."""

    dequantised: ImageLikelihood  # recipe 1, Song et al. (2021)
    decoder: ImageLikelihood  # recipe 2, the ODE from x_1 plus the decoder L_0
    seconds: float


def _likelihood_key(shared: SharedDenoiser, digit: np.ndarray, label: int, seed: int) -> tuple:
    return ("likelihood", id(shared.model), picture_id(digit), label, seed, PAGE_SOLVER, PAGE_PROBES)


def cached_likelihood(shared: SharedDenoiser, digit: np.ndarray, label: int, seed: int) -> DigitLikelihood | None:
    return _store().peek(_likelihood_key(shared, digit, label, seed))  # type: ignore[return-value]


def digit_likelihood(shared: SharedDenoiser, digit: np.ndarray, label: int, seed: int,
                     progress: Progress | None = None) -> DigitLikelihood:
    """Both recipes on ``digit`` (uint8 [28, 28]) with the conditional network (s = 1, ``label``), at the page's
    tolerance; u, x_1 and the probes from ``seed``. Shared by every session."""
    def compute() -> DigitLikelihood:
        x0 = image_to_tensor(digit).double()
        eps_fn = guided_eps_fn(shared.model, torch.tensor([label]), 1.0)
        schedule = shared.model.schedule
        began = time.perf_counter()

        def part(offset: float) -> Progress:
            return lambda f: progress((offset + f) / 2) if progress is not None else None

        with shared.lock:
            one = dequantised_bpd(eps_fn, x0, schedule, solver=PAGE_SOLVER, hutchinson=PAGE_PROBES,
                                  generator=torch.Generator().manual_seed(seed), progress=part(0))
            two = ode_decoder_bound(eps_fn, x0, schedule, solver=PAGE_SOLVER, hutchinson=PAGE_PROBES,
                                    generator=torch.Generator().manual_seed(seed + 1), progress=part(1))
        return DigitLikelihood(dequantised=one, decoder=two, seconds=time.perf_counter() - began)
    return _store().get(_likelihood_key(shared, digit, label, seed), compute)  # type: ignore[return-value]


class BenchFileError(ValueError):
    """A benchmark file exists but cannot be read."""


def _read(path: Path, required: tuple[str, ...]) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        missing = [k for k in required if k not in data]
        if missing:
            raise KeyError(f"missing {missing}")
        return data
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BenchFileError(f"{path}: {e}") from e


def load_sampling() -> dict | None:
    """bench/sde_sampling.py's rows (``SAMPLING_PATH``), or None when the file is missing."""
    return _load_sampling(str(SAMPLING_PATH))


def load_likelihood() -> dict | None:
    """bench/likelihood.py's summary (``LIKELIHOOD_PATH``), or None when the file is missing."""
    return _load_likelihood(str(LIKELIHOOD_PATH))


@st.cache_data(show_spinner=False)
def _load_sampling(path: str) -> dict | None:
    data = _read(Path(path), ("meta", "rows"))
    if data is not None:
        for r in data["rows"]:
            if not {"method", "calls", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "fd", "fd_floor"} <= set(r):
                raise BenchFileError(f"{path}: a row lacks a field")
    return data


@st.cache_data(show_spinner=False)
def _load_likelihood(path: str) -> dict | None:
    return _read(Path(path), ("digits", "summary", "paired", "floor", "tol", "probes", "sigma_start", "below_bound"))


def quality_figure(tr, rows: list[dict]) -> go.Figure:
    """Accuracy against network calls, one line per method, with Wilson's 95 % interval as error bars."""
    data = []
    for k, m in enumerate(METHODS):
        rs = sorted((r for r in rows if r["method"] == m), key=lambda r: r["calls"])
        if not rs:
            continue
        acc = np.array([100 * r["accuracy"] for r in rs])
        data.append(dict(type="scatter", x=[r["calls"] for r in rs], y=acc, mode="lines+markers",
                         name=tr(f"continuous.method_{m}"), line=dict(color=charts.PALETTE[k]),
                         error_y=dict(type="data", symmetric=False,
                                      array=[100 * r["accuracy_ci_high"] - a for r, a in zip(rs, acc)],
                                      arrayminus=[a - 100 * r["accuracy_ci_low"] for r, a in zip(rs, acc)])))
    layout = plain_layout(tr("continuous.axis_calls"), tr("continuous.axis_accuracy"), 340)
    layout["xaxis"] = dict(type="log", title=dict(text=tr("continuous.axis_calls")), tickvals=list(CALL_CHOICES))
    layout["yaxis"] = dict(title=dict(text=tr("continuous.axis_accuracy")), range=[0, 103])
    return go.Figure(data=data, layout=layout)
