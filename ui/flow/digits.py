"""Page 10's digits: a bundled MNIST test digit on the paths, the shipped network's prediction in its five faces,
DDIM against Euler on the rectified flow, and the loss-weight check on a batch. Cached per setting and shared by
every session; every network call takes the shared model's lock (ui.model). The math is diffusion_core's."""

from __future__ import annotations

import copy

import numpy as np
import streamlit as st
import torch

from diffusion_core.data.images import uint8_to_unit
from diffusion_core.data.samples import load_sample_image
from diffusion_core.process.losses import weighting_check
from diffusion_core.process.paths import PREDICTIONS, GaussianPath, UndefinedConversion, rectified_flow, vp_cosine, vp_linear
from diffusion_core.process.predictions import all_predictions, round_trip_error
from diffusion_core.process.losses import loss_weight
from diffusion_core.samplers.flow import eps_fn_on_path
from diffusion_core.samplers.flow_network import same_coin
from diffusion_core.samplers.guidance import guided_eps_fn
from ui.i18n import Translator
from ui.mix import MixedPicture, encode
from ui.model import SharedDenoiser

PATHS: dict[str, GaussianPath] = {"rectified_flow": rectified_flow(), "vp_cosine": vp_cosine(), "vp_linear": vp_linear()}
SAME_COIN_DIGITS = (2, 3, 5, 7)  # the labels DDIM and Euler draw, one digit each (float64: four keep it near a second)
WEIGHT_BATCH = 20  # pairs (digit, t, eps) in the loss-weight check: each bundled digit twice


def digit_x0(digit: int) -> torch.Tensor:
    """The bundled MNIST test digit ``digit`` in [-1, 1], float64 [1, 1, 28, 28]."""
    return torch.from_numpy(uint8_to_unit(load_sample_image(f"digit_{digit}")))[None, None].double()


def noise(seed: int, n: int = 1) -> torch.Tensor:
    """eps ~ N(0, I) of the student's seed, float64 [n, 1, 28, 28]."""
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def to_picture(x: torch.Tensor, value_range: float) -> np.ndarray:
    """[1, 1, H, W] (or [H, W]) values in [-value_range, value_range] -> uint8 [H, W] (clipped)."""
    x = x.reshape(x.shape[-2:]).double() / max(value_range, 1e-12)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


@st.cache_data(max_entries=2000, show_spinner=False)
def path_pictures(digit: int, t: float, seed: int) -> dict:
    """x_t on the rectified flow at t, and on vp_cosine at the time with the same log SNR; the scale between them,
    alpha_vp / alpha_rf = sigma_vp / sigma_rf, and how far x_vp / scale lies from x_rf (0 up to rounding)."""
    rf, vp = PATHS["rectified_flow"], PATHS["vp_cosine"]
    x0, eps = digit_x0(digit), noise(seed)
    tt = torch.tensor(t, dtype=torch.float64)
    t_vp = vp.t_at_log_snr(rf.log_snr(tt)) if 0 < t < 1 else tt
    x_rf, x_vp = rf.sample(x0, tt, eps), vp.sample(x0, t_vp, eps)
    if 0 < t < 1:
        scale = float(vp.sigma(t_vp) / rf.sigma(tt))
    else:  # t = 0: both are x0 (scale 1); t = 1: both pure noise (sigma = 1 on both)
        scale = 1.0
    return {"rf": x_rf, "vp": x_vp, "t_vp": float(t_vp), "scale": scale,
            "gap": float((x_vp / scale - x_rf).abs().max()), "snr": float(rf.log_snr(tt)) if 0 < t < 1 else None}


@st.cache_resource(max_entries=40, show_spinner=False)
def path_mix(digit: int, seed: int, lang: str, slider: str, picture_range: float, side: int) -> bytes:
    """The three pictures of ``path_pictures`` at every t = 0, 0.01, ..., 1 (the slider's positions), for the
    browser to draw (ui/mix.py): x_0, eps and the weights (alpha, sigma) of x_t = alpha x_0 + sigma eps on the
    rectified flow at t, on vp_cosine at the t of the same log SNR, and the latter over the scale between them,
    all over ``picture_range`` (to_picture's range), with their captions."""
    tr, fmt = Translator(lang), "{:.4g}".format
    rf, vp = PATHS["rectified_flow"], PATHS["vp_cosine"]
    rows = {"rf": [], "vp": [], "rescaled": []}
    captions = {"rf": [], "vp": [], "rescaled": []}
    for t in np.round(np.linspace(0.0, 1.0, 101), 2):
        p = path_pictures(digit, float(t), seed)
        a_rf, s_rf = float(rf.alpha(float(t))), float(rf.sigma(float(t)))
        a_vp, s_vp = float(vp.alpha(p["t_vp"])), float(vp.sigma(p["t_vp"]))
        for key, w in (("rf", (a_rf, s_rf)), ("vp", (a_vp, s_vp)), ("rescaled", (a_vp / p["scale"], s_vp / p["scale"]))):
            rows[key].append(np.array(w) / picture_range)
        captions["rf"].append(tr("flow.pic_rf", t=fmt(t)))
        captions["vp"].append(tr("flow.pic_vp", t=fmt(p["t_vp"])))
        captions["rescaled"].append(tr("flow.pic_rescaled", scale=fmt(p["scale"])))
    bases = [digit_x0(digit)[0, 0].numpy(), noise(seed)[0, 0].numpy()]
    return encode(bases, [MixedPicture(np.stack(rows[k]), captions[k]) for k in rows], slider=slider, minimum=0,
                  step=0.01, min_side=side)


def _float64_model(shared: SharedDenoiser) -> torch.nn.Module:
    return _float64_copy(id(shared.model), shared.model)


@st.cache_resource(show_spinner=False, max_entries=2)
def _float64_copy(_model_id: int, _model: torch.nn.Module) -> torch.nn.Module:
    """One float64 copy of the shipped network per server (about 12 MB)."""
    return copy.deepcopy(_model).double().eval()


@st.cache_data(max_entries=2000, show_spinner=False)
def faces(_shared: SharedDenoiser, digit: int, t: float, seed: int, path_name: str) -> dict:
    """The network's eps_hat for x_t = alpha x0 + sigma eps of ``digit`` on the path at t (guidance 1: the plain
    conditional model, told the digit), in every face, with each face's round-trip error, its error against the
    true value of this pair (x0, eps) and that error's ratio to the eps error (process.losses.loss_weight).
    Float64 after the network's float32 call. {"error": key} where a conversion is undefined."""
    path = PATHS[path_name]
    x0, eps = digit_x0(digit), noise(seed)
    tt = torch.tensor([t], dtype=torch.float64)
    x_t = path.sample(x0, tt, eps)
    eps_fn = eps_fn_on_path(guided_eps_fn(_shared.model, torch.tensor([digit]), 1.0), _shared.model.schedule, path)
    try:
        with _shared.lock, torch.inference_mode():
            eps_hat = eps_fn(x_t.float(), tt).double()
        hat = all_predictions(eps_hat, x_t=x_t, t=tt, path=path)
        true = all_predictions(eps, x_t=x_t, t=tt, path=path)
        trips = {p: round_trip_error(eps_hat, p, x_t=x_t, t=tt, path=path) for p in PREDICTIONS}
    except UndefinedConversion:
        return {"error": "undefined"}
    mse = {p: float(((hat[p] - true[p]) ** 2).mean()) for p in PREDICTIONS}
    return {"x_t": x_t, "hat": hat, "true": true, "round_trip": trips, "mse": mse,
            "weight": {p: float(loss_weight(p, tt, path)[0]) for p in PREDICTIONS}}


@st.cache_data(max_entries=64, show_spinner=False)
def coin(_shared: SharedDenoiser, steps: int, seed: int) -> dict:
    """DDIM and Euler on the rectified flow (at DDIM's times) from one x_T of the seed, in float64 (the network
    cast with .double()), guidance of the samplers' default: both final images and their largest difference."""
    x_T = torch.randn(len(SAME_COIN_DIGITS), 1, 28, 28, generator=torch.Generator().manual_seed(seed)).double()
    model = _float64_model(_shared)
    with _shared.lock:
        out = same_coin(model, list(SAME_COIN_DIGITS), x_T, steps=steps)
    return {"ddim": out.ddim.float(), "euler": out.euler.float(), "max_difference": out.max_difference,
            "difference": (out.ddim - out.euler).float()}


@st.cache_data(max_entries=64, show_spinner=False)
def weight_batch(_shared: SharedDenoiser, seed: int) -> dict:
    """The velocity MSE against 1 / (1 - t)^2 times the eps-MSE on WEIGHT_BATCH pairs of bundled digits, t uniform
    in [0.05, 0.95], on the rectified flow (process.losses.weighting_check); the network in float32."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.cat([digit_x0(i % 10) for i in range(WEIGHT_BATCH)])
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = 0.05 + 0.9 * torch.rand(WEIGHT_BATCH, generator=g, dtype=torch.float64)
    path = PATHS["rectified_flow"]
    labels = torch.tensor([i % 10 for i in range(WEIGHT_BATCH)])
    eps_fn = eps_fn_on_path(guided_eps_fn(_shared.model, labels, 1.0), _shared.model.schedule, path)
    with _shared.lock, torch.inference_mode():
        eps_hat = eps_fn(path.sample(x0, t, eps).float(), t).double()
    check = weighting_check(eps_hat, x0, eps, t, path)
    return {"t": t.numpy(), "eps_mse": check.eps_mse.numpy(), "velocity_mse": check.velocity_mse.numpy(),
            "weight": check.weight.numpy(), "gap": check.worst_relative_gap}
