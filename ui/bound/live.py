"""The bound page's live numbers: the network wrapped as eps_fn, results cached for every session.

Kept in a store shared by all sessions (``ui.shared_store``) rather than ``st.cache_data``: the page
must know whether a result is cached before it starts, so that a miss shows a progress bar with real
progress and a hit shows nothing at all. Keys: the digit's bytes, the label, the settings and the seed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from diffusion_core.data.images import image_to_tensor
from diffusion_core.models.unet import NULL_LABEL
from diffusion_core.models.weights import PRETRAINED_DIR
from diffusion_core.process import bound_estimate, elbo
from diffusion_core.samplers import guided_eps_fn
from ui.model import SharedDenoiser
from ui.shared_store import SharedStore, picture_id, shared_store

CURVES_PATH = PRETRAINED_DIR / "bound_curves.json"  # written by bench/bound.py
MODES = ("cond", "uncond")  # s = 1 with the chosen label; no label
MAX_ENTRIES = 128


def _store() -> SharedStore:
    return shared_store("bound", MAX_ENTRIES)


@dataclass(frozen=True)
class LiveBound:
    """The stratified bound of one digit, with and without its label (same t draws, same noise)."""

    results: dict[str, bound_estimate.StratifiedBound]  # "cond" / "uncond"
    seconds: float  # time the network calls took
    rows: int  # network rows evaluated (both modes)


def cached_bound(digit: np.ndarray, label: int, strata: int, seed: int) -> LiveBound | None:
    """The result if some session already computed it, else None."""
    return _store().peek(("bound", picture_id(digit), label, strata, seed))  # type: ignore[return-value]


def live_bound(shared: SharedDenoiser, digit: np.ndarray, label: int, strata: int, seed: int,
               progress: Callable[[float], None] | None = None) -> LiveBound:
    """L_T, L_0 and the stratified sum of the KL terms (``bound_estimate.stratified_bound``, 2 draws per stratum) for
    both modes; cached. ``progress(fraction)`` is called as the network batches go through."""
    key = ("bound", picture_id(digit), label, strata, seed)
    hit = _store().peek(key)
    if hit is not None:
        return hit  # type: ignore[return-value]
    x0 = image_to_tensor(digit)
    schedule = shared.model.schedule
    results, start, rows = {}, time.perf_counter(), 0
    for i, mode in enumerate(MODES):
        g = torch.Generator().manual_seed(seed)  # the same plan and noise for both modes: a paired comparison
        plan = bound_estimate.stratified_plan(schedule.T, strata, 2, generator=g)
        y = torch.tensor([label if mode == "cond" else NULL_LABEL])

        def step(done: int, total: int, i: int = i) -> None:
            if progress is not None:
                progress((i + done / total) / len(MODES))

        with shared.lock:
            results[mode] = bound_estimate.stratified_bound(guided_eps_fn(shared.model, y, 1.0), x0, schedule, plan,
                                                  generator=g, progress=step)
        rows += bound_estimate.DECODER_DRAWS + len(plan.timesteps)
    out = LiveBound(results=results, seconds=time.perf_counter() - start, rows=rows)
    _store().put(key, out)
    return out


@dataclass(frozen=True)
class StepDetail:
    """One t of one digit: the pictures and numbers of eq. 12 (conditional network, s = 1)."""

    t: int
    x_t: np.ndarray  # [28, 28] float
    eps: np.ndarray  # true noise
    eps_hat: np.ndarray  # the network's prediction
    x0_hat: np.ndarray  # eq. 15, unclipped
    sse: float  # ||eps - eps_hat||^2 (sum over the 784 pixels)
    term_nats: dict[str, float]  # variance -> L_{t-1} (t >= 2) or L_0 (t = 1), nats


def step_detail(shared: SharedDenoiser, digit: np.ndarray, label: int, t: int, seed: int) -> StepDetail:
    """x_t, eps, eps_hat, x0_hat and the term of eq. 5 at one t; cached (one network call)."""
    key = ("step", picture_id(digit), label, t, seed)
    hit = _store().peek(key)
    if hit is not None:
        return hit  # type: ignore[return-value]
    from diffusion_core.process.forward import q_sample
    from diffusion_core.samplers import predict_x0_from_eps

    schedule = shared.model.schedule
    x0 = image_to_tensor(digit)
    noise = torch.randn((1, *x0.shape), generator=torch.Generator().manual_seed(seed + 7919 * t))
    ts = torch.tensor([t])
    with shared.lock:
        eps_hat = elbo.predict_noise(guided_eps_fn(shared.model, torch.tensor([label]), 1.0), x0, schedule, noise, ts)
    x_t = q_sample(x0.double(), ts, noise[0].double(), schedule)
    x0_hat = predict_x0_from_eps(x_t, eps_hat[0].double(), float(schedule.alpha_bars[t]))
    terms = {v: float(elbo.terms_nats(x0, ts, noise[0], eps_hat[0], schedule, v)[0]) for v in ("beta", "beta_tilde")}
    out = StepDetail(t=t, x_t=x_t[0, 0].numpy(), eps=noise[0, 0, 0].numpy(), eps_hat=eps_hat[0, 0, 0].numpy(),
                     x0_hat=x0_hat[0, 0].numpy(), sse=float(((noise[0] - eps_hat[0]).double() ** 2).sum()),
                     term_nats=terms)
    _store().put(key, out)
    return out


@st.cache_data(show_spinner=False)
def bench_curves(path: str = str(CURVES_PATH)) -> dict | None:
    """The per-t curves of bench/bound.py (mean and standard error over MNIST test digits), or None."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None
