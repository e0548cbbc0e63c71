"""What the latent page computes, each result cached for every session at its settings: the shipped networks
(loaded once per server process), the student's latent and pixel runs, the 2-D walks, the reconstructions of the
bundled digits, the FLOPs. The math is diffusion_core's; here are only the calls and the caches."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from diffusion_core import toy2d
from diffusion_core.data.images import uint8_to_unit
from diffusion_core.data.samples import load_sample_image
from diffusion_core.models.classifier import Classifier, embed, load_classifier
from diffusion_core.models.flops import PipelineFlops, pipeline_flops
from diffusion_core.models.latent import LATENT_DIR, LatentPipeline, load_latent_pipeline
from diffusion_core.models.latent2d import Latent2D, load_latent2d, schedule_2d
from diffusion_core.samplers import generate

from ..model import FairLock, configure_threads, shared_denoiser
from ..shared_store import shared_store

N_SAMPLES = 16  # digits per run: the 16 latent samples
N_WALKS = 8  # 2-D trajectories
SIDES = (28, 64, 128, 256, 512)  # image sides of the FLOPs table
PIXEL_SAMPLER = {"sampler": "dpm_solver++", "spacing": "logsnr"}  # the pixel network at few steps (page 8's best)
LATENT_WEIGHTS_DIR = os.environ.get("DIFFUSION_LATENT_DIR", str(LATENT_DIR))  # tests and previews may point elsewhere
_lock = FairLock()  # one latent computation at a time in the process (they take a fraction of a second)


@dataclass(frozen=True)
class Networks:
    pipeline: LatentPipeline
    latent2d: Latent2D
    classifier: Classifier


@st.cache_resource(show_spinner=False)
def networks(directory: str = LATENT_WEIGHTS_DIR) -> Networks:
    """The shipped latent pipeline, 2-D latent and classifier, on the CPU, loaded once per server process."""
    configure_threads()
    pipeline = load_latent_pipeline(directory)
    with torch.inference_mode():  # build the kernels of the page's batch once (oneDNN does it at the first call)
        pipeline.generate([0] * N_SAMPLES, steps=2, generator=torch.Generator().manual_seed(0))
    return Networks(pipeline=pipeline, latent2d=load_latent2d(directory), classifier=load_classifier())


@st.cache_data(show_spinner=False)
def bench(directory: str = LATENT_WEIGHTS_DIR) -> dict | None:
    """pretrained/latent/bench.json (``python -m bench.latent``), or None when it is not there."""
    path = Path(directory) / "bench.json"
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass(frozen=True)
class LatentRun:
    """The student's latent run: 16 digits of one label, every step of the first one."""

    latents: np.ndarray  # z_t of the first sample before each step, then z_0: [steps + 1, C, 7, 7]
    x0_decoded: np.ndarray  # D(z0_hat / scale) of the first sample after each step: [steps, 28, 28] in [-1, 1]
    timesteps: tuple[int, ...]  # t of each step
    digits: np.ndarray  # the 16 decoded samples [16, 28, 28] in [-1, 1]
    judged: np.ndarray  # the classifier's reading of each, int [16]
    seconds: float  # wall time of the 16 samples and their decoding (when first computed)


@st.cache_resource(show_spinner=False, max_entries=256)
def latent_run(label: int, guidance: float, steps: int, sampler: str, seed: int) -> LatentRun:
    nets = networks()
    p = nets.pipeline
    with _lock, torch.inference_mode():
        start = time.perf_counter()
        process = p.process([label] * N_SAMPLES, steps=steps, guidance=guidance, sampler=sampler,
                            spacing="logsnr" if sampler == "dpm_solver++" else "linear",
                            generator=torch.Generator().manual_seed(seed))
        latents, x0s, ts = [process.x[0].clone()], [], []
        while not process.done:
            s = process.step()
            latents.append(s.x_prev[0].clone())
            x0s.append(s.x0_hat[0].clone())
            ts.append(s.t)
        digits = p.decode(process.x)
        seconds = time.perf_counter() - start
        x0_decoded = p.decode(torch.stack(x0s))
    judged = embed(nets.classifier, digits).predictions
    return LatentRun(latents=torch.stack(latents).numpy(), x0_decoded=x0_decoded[:, 0].numpy(), timesteps=tuple(ts),
                     digits=digits[:, 0].numpy(), judged=judged, seconds=seconds)


@dataclass(frozen=True)
class PixelRun:
    digits: np.ndarray  # [16, 28, 28] in [-1, 1]
    judged: np.ndarray  # int [16]
    seconds: float  # wall time of the 16 samples (when first computed)


@st.cache_resource(show_spinner=False, max_entries=128)
def pixel_run(label: int, guidance: float, steps: int, seed: int) -> PixelRun:
    """The pixel network's 16 digits at the same label, seed, calls and guidance (DPM-Solver++, log-SNR)."""
    shared = shared_denoiser(torch.device("cpu"))
    with shared.lock, torch.inference_mode():
        start = time.perf_counter()
        x = generate(shared.model, [label] * N_SAMPLES, steps=steps, guidance=guidance,
                     generator=torch.Generator().manual_seed(seed), **PIXEL_SAMPLER)
        seconds = time.perf_counter() - start
    return PixelRun(digits=x[:, 0].numpy(), judged=embed(networks().classifier, x).predictions, seconds=seconds)


def conditional_mlp(steps: int, progress: toy2d.Progress | None = None) -> toy2d.TrainResult:
    """The conditional MLP on the encoded training digits (``toy2d.train_conditional_mlp``), trained once per
    number of steps and shared by every session (``ui.shared_store``: a cached function could not report
    progress); ``progress(step, steps, loss)`` reports the training when this call is the one that trains."""
    lat, schedule = networks().latent2d, schedule_2d()
    return shared_store("latent_mlp", 4).get(steps, lambda: toy2d.train_conditional_mlp(
        lat.train_points, lat.train_labels, schedule, toy2d.CondMLPConfig(mlp=toy2d.MLPConfig(T=schedule.T, width=128)),
        toy2d.TrainConfig(steps=steps, seed=0), progress=progress))


@st.cache_resource(show_spinner=False)
def exact_2d() -> toy2d.ExactConditionalDenoiser:
    lat = networks().latent2d
    return toy2d.ExactConditionalDenoiser(lat.train_points, lat.train_labels, schedule_2d())


@dataclass(frozen=True)
class Walk:
    """Trajectories of N_WALKS points in the 2-D latent, and what they decode to along the way."""

    paths: np.ndarray  # [steps + 1, N, 2], x_T first
    decoded: np.ndarray  # D(x_t / scale) at the shown states: [len(shown), N, 28, 28]
    shown: tuple[int, ...]  # indices into paths of the decoded states
    judged: np.ndarray  # the classifier's reading of the final digits, int [N]


def shown_states(steps: int, k: int = 6) -> tuple[int, ...]:
    """k indices from 0 (x_T) to steps (x_0), evenly spread."""
    return tuple(sorted({round(i * steps / (k - 1)) for i in range(k)}))


@st.cache_resource(show_spinner=False, max_entries=256)
def walk_2d(predictor: str, label: int, guidance: float, steps: int, seed: int, mlp_steps: int) -> Walk:
    model = exact_2d() if predictor == "exact" else conditional_mlp(mlp_steps).model
    lat, schedule = networks().latent2d, schedule_2d()
    x_T = torch.randn(N_WALKS, 2, generator=torch.Generator().manual_seed(seed))
    fn = toy2d.guided_eps_2d(model, [label] * N_WALKS, guidance)
    with _lock:
        paths = toy2d.reverse_paths(fn, x_T, schedule, sampler="dpm_solver++", steps=steps)
        shown = shown_states(steps)
        decoded = lat.decode(paths[list(shown)].reshape(-1, 2)).reshape(len(shown), N_WALKS, 28, 28)
        judged = embed(networks().classifier, lat.decode(paths[-1])).predictions
    return Walk(paths=paths.numpy(), decoded=decoded.numpy(), shown=shown, judged=judged)


@dataclass(frozen=True)
class Reconstructions:
    originals: np.ndarray  # the ten bundled test digits [10, 28, 28] in [-1, 1]
    image: np.ndarray  # through the 4x7x7 latent
    flat: np.ndarray  # through the 2-D latent
    latents: np.ndarray  # their 4x7x7 latents [10, 4, 7, 7] (scaled)
    mse_image: float  # mean squared error per pixel over the ten
    mse_flat: float


@st.cache_resource(show_spinner=False)
def reconstructions() -> Reconstructions:
    nets = networks()
    x = torch.from_numpy(np.stack([uint8_to_unit(load_sample_image(f"digit_{d}")) for d in range(10)]))[:, None]
    with _lock, torch.inference_mode():
        z = nets.pipeline.encode(x)
        image, flat = nets.pipeline.decode(z), nets.latent2d.decode(nets.latent2d.encode(x))
    return Reconstructions(originals=x[:, 0].numpy(), image=image[:, 0].numpy(), flat=flat[:, 0].numpy(),
                           latents=z.numpy(), mse_image=float(((image - x) ** 2).mean()),
                           mse_flat=float(((flat - x) ** 2).mean()))


@st.cache_resource(show_spinner=False)
def flops_table() -> tuple[PipelineFlops, ...]:
    """Both pipelines' networks counted at every side of SIDES (``models.flops``)."""
    nets = networks()
    pixel = shared_denoiser(torch.device("cpu")).model.config.unet
    return tuple(pipeline_flops(pixel, nets.pipeline.net.config, nets.pipeline.autoencoder.config, side)
                 for side in SIDES)
