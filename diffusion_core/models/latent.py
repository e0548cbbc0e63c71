"""Latent diffusion (Rombach et al. 2022): the autoencoder, a class-conditional UNet that denoises its latent,
the scale factor between them, and the schedule, as one object that samples decoded digits.

    z_0 = scale_factor * mean of q(z | x)        (the latent the diffusion model is trained on)
    x_t-style diffusion on z: z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps   (Ho et al. 2020, eq. 4)
    a sample: z_T ~ N(0, I) -> the core's sampler with eps_theta(z_t, t, y) -> z_0 -> x = D(z_0 / scale_factor)

The scale factor makes the latent's standard deviation about 1, the scale the noise schedule was designed for:
without it a latent of standard deviation 5 would keep most of its signal at a t where a pixel image is
already noise (Rombach et al. 2022, sec. 4.3.2 and appendix D.1; their code takes 1 / std of the first batch's
latents, here of the whole training set; Stable Diffusion v1 uses 0.18215).

Sampling starts at t_start, not at T. The cosine schedule's abar_t falls to 2.4e-9 at t = T, where
x0_hat = (z_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) multiplies any error of eps_hat by about 20000. The pixel
network survives that because the samplers clip x0_hat to [-1, 1], the range of pixels; a latent has no such
range, and unclipped the first steps blow up (measured: accuracy at chance). So the pipeline starts from
z ~ N(0, I) at the first t whose abar_t is at most 0.0047, the last abar of Stable Diffusion's schedule (its
"scaled linear" betas from 0.00085 to 0.012 over 1000 steps): t = 956 of our cosine schedule, where the signal
left, sqrt(abar) = 0.07 of a unit-variance latent, is what Stable Diffusion also ignores.

``LatentPipeline.generate(labels, steps=10)`` returns decoded digits [N, 1, 28, 28] in [-1, 1], like
``samplers.generate`` of the pixel network (which calls it for a pipeline).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from ..process.schedules import Schedule, ScheduleKind, make_schedule
from ..samplers.guidance import guided_eps_fn
from ..samplers.process import EpsFn, EpsReverseProcess, Sampler, SampleStep
from ..samplers.timesteps import Spacing
from .autoencoder import Autoencoder, load_autoencoder, save_autoencoder
from .unet import NULL_LABEL, UNet, UNetConfig
from .files import PRETRAINED_DIR, WeightsError, load_matching_state, load_state, save_state

LATENT_DIR = PRETRAINED_DIR / "latent"
DENOISER_STEM = "latent_denoiser"
FINAL_ALPHA_BAR = 0.0047  # abar_T of Stable Diffusion's scaled linear schedule: where sampling starts (docstring)


def start_timestep(schedule: Schedule, alpha_bar: float = FINAL_ALPHA_BAR) -> int:
    """The first t whose abar_t is at most ``alpha_bar`` (T if none is): where a latent sample starts."""
    below = (schedule.alpha_bars[1:] <= alpha_bar).nonzero()
    return int(below[0]) + 1 if len(below) else schedule.T
AUTOENCODER_STEM = "autoencoder"


def latent_scale_factor(latents: Tensor) -> float:
    """1 / (standard deviation over every number of ``latents`` [N, ...]): after multiplying by it the latents
    have variance 1 (the unbiased sample std, as torch's ``std``; Rombach et al. 2022, appendix D.1)."""
    if latents.numel() < 2:
        raise ValueError("need at least two numbers to estimate a standard deviation")
    std = float(latents.detach().double().flatten().std())
    if not std > 0:
        raise ValueError("the latents have no spread: no scale factor")
    return 1.0 / std


@dataclass(frozen=True, kw_only=True)
class LatentConfig:
    """Everything the pipeline needs besides the weights; ``latent_denoiser.json``."""

    unet: UNetConfig  # the latent denoiser (in_channels = the latent's channels, unshuffle = 1)
    schedule: ScheduleKind  # noise schedule it was trained with
    T: int  # number of diffusion steps
    scale_factor: float  # z_0 = scale_factor * mean of q(z | x)
    sampler: Sampler = "dpm_solver++"  # default sampler of ``generate``
    spacing: Spacing = "logsnr"  # its default spacing
    guidance: float = 1.5  # its default guidance scale s
    t_start: int | None = None  # timestep the samples start from (None: T); see the module docstring
    autoencoder: str = AUTOENCODER_STEM  # file stem of the autoencoder in the same folder

    def to_dict(self) -> dict:
        return {"unet": self.unet.to_dict(), "schedule": self.schedule, "T": self.T, "scale_factor": self.scale_factor,
                "sampler": self.sampler, "spacing": self.spacing, "guidance": self.guidance,
                "t_start": self.t_start, "autoencoder": self.autoencoder}

    @classmethod
    def from_dict(cls, d: dict) -> "LatentConfig":
        d = dict(d)
        d["unet"] = UNetConfig.from_dict(d["unet"])
        d["T"], d["scale_factor"], d["guidance"] = int(d["T"]), float(d["scale_factor"]), float(d.get("guidance", 1.5))
        return cls(**d)


@dataclass(frozen=True)
class SampleCost:
    """Network passes of one latent sample (each guided step runs the UNet with and without the label)."""

    denoiser_passes: int  # UNet evaluations per sample: steps, or 2 * steps with guidance
    network_calls: int  # batched calls (NFE): the two passes of a guided step go through as one batch
    decoder_passes: int  # 1: the decoder runs once, at the end


def sample_cost(steps: int, guidance: float) -> SampleCost:
    """What ``LatentPipeline.generate`` costs per sample (``samplers.guided_eps``: s = 0 and s = 1 need one pass)."""
    passes = steps if guidance in (0.0, 1.0) else 2 * steps
    return SampleCost(denoiser_passes=passes, network_calls=steps, decoder_passes=1)


class LatentPipeline(nn.Module):
    """Autoencoder + latent UNet + scale factor + schedule. ``pipeline(z_t, t, labels)`` is eps_theta on the
    scaled latent (so ``samplers.guided_eps`` works with it as with the pixel network)."""

    def __init__(self, autoencoder: Autoencoder, net: UNet, config: LatentConfig):
        super().__init__()
        if autoencoder.config.is_vector or autoencoder.config.latent_shape[0] != net.config.in_channels:
            raise ValueError(f"the UNet takes {net.config.in_channels} channels, the autoencoder's latent is "
                             f"{autoencoder.config.latent_shape}")
        self.autoencoder, self.net, self.config = autoencoder, net, config
        self.schedule: Schedule = make_schedule(config.schedule, config.T)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return self.autoencoder.config.latent_shape

    @property
    def scale_factor(self) -> float:
        return self.config.scale_factor

    def forward(self, z_t: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        return self.net(z_t, t, labels)

    @torch.inference_mode()
    def encode(self, x: Tensor) -> Tensor:
        """Digits [N, 1, 28, 28] in [-1, 1] -> scaled latents z_0 = scale_factor * mean [N, *latent_shape]."""
        return self.scale_factor * self.autoencoder.encode(x)[0]

    @torch.inference_mode()
    def decode(self, z: Tensor) -> Tensor:
        """Scaled latents [N, *latent_shape] -> digits D(z / scale_factor) [N, 1, 28, 28], clamped to [-1, 1]."""
        return self.autoencoder.decode(z / self.scale_factor, clip=True)

    def eps_fn(self, labels: Tensor | list[int], guidance: float) -> EpsFn:
        """eps_fn(z_t, t) for the core's samplers: the guided prediction (Ho & Salimans 2022) for ``labels``."""
        return guided_eps_fn(self, torch.as_tensor(labels, dtype=torch.long), guidance)

    def process(self, labels: Tensor | list[int], *, steps: int = 10, sampler: Sampler | None = None,
                spacing: Spacing | None = None, guidance: float | None = None, eta: float = 0.0,
                generator: torch.Generator | None = None, order: int = 2,
                lower_order_final: bool = False) -> EpsReverseProcess:
        """The reverse process in the latent, from z ~ N(0, I) at the config's t_start, drawn with ``generator``: a
        resumable stepper (``samplers.EpsReverseProcess``); defaults from the config. No clipping: latents are
        not in [-1, 1]."""
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if len(labels) == 0 or bool(((labels < NULL_LABEL) | (labels > 9)).any()):
            raise ValueError("labels must hold at least one entry, each a digit 0-9 or -1 (no label)")
        c = self.config
        z_T = torch.randn((len(labels), *self.latent_shape), generator=generator)
        device = next(self.net.parameters()).device
        return EpsReverseProcess(self.eps_fn(labels, c.guidance if guidance is None else guidance), z_T,
                                 self.schedule, sampler=sampler or c.sampler, steps=steps, eta=eta,
                                 generator=generator, clip=False, device=device, spacing=spacing or c.spacing,
                                 t_start=c.t_start,
                                 order=order, lower_order_final=lower_order_final)

    def sample(self, labels: Tensor | list[int], **kwargs) -> Iterator[SampleStep]:
        """Every step of ``process(labels, **kwargs)`` (latents [N, *latent_shape]), as it happens."""
        process = self.process(labels, **kwargs)
        while not process.done:
            yield process.step()

    def generate(self, labels: Tensor | list[int], **kwargs) -> Tensor:
        """Decoded samples [N, 1, 28, 28] in [-1, 1]: ``sample`` to z_0, then the decoder. Arguments: ``process``'s."""
        z = None
        for step in self.sample(labels, **kwargs):
            z = step.x_prev
        return self.decode(z.to(next(self.net.parameters()).device)).cpu()


# ------------------------------------------------------------------ files
def save_latent_denoiser(net: UNet, config: LatentConfig, directory: str | Path,
                         autoencoder: Autoencoder | None = None) -> Path:
    """Write ``latent_denoiser.safetensors`` + ``.json`` (and the autoencoder, if given) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_state(net, directory / f"{DENOISER_STEM}.safetensors")
    (directory / f"{DENOISER_STEM}.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    if autoencoder is not None:
        save_autoencoder(autoencoder, directory, config.autoencoder)
    return directory / f"{DENOISER_STEM}.safetensors"


def read_latent_config(path: Path) -> LatentConfig:
    try:
        config = LatentConfig.from_dict(json.loads(path.read_text()))
        make_schedule(config.schedule, config.T)
        return config
    except FileNotFoundError:
        raise WeightsError(f"latent denoiser config not found: {path}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise WeightsError(f"latent denoiser config {path} is invalid: {e}") from None


def load_latent_pipeline(directory: str | Path = LATENT_DIR, device: str | torch.device = "cpu",
                         **overrides: object) -> LatentPipeline:
    """The pipeline of ``directory`` (``pretrained/latent/``) in eval mode on ``device``; ``overrides`` replace
    fields of its config (e.g. ``guidance=2.0``). WeightsError names a missing, damaged or mismatched file."""
    directory = Path(directory)
    config_path = directory / f"{DENOISER_STEM}.json"
    config = read_latent_config(config_path)
    if overrides:
        config = replace(config, **overrides)
    try:
        net = UNet(config.unet)
    except (ValueError, TypeError, RuntimeError) as e:
        raise WeightsError(f"latent denoiser config {config_path} is invalid: {e}") from None
    weights_path = directory / f"{DENOISER_STEM}.safetensors"
    load_matching_state(net, load_state(weights_path, "latent denoiser"), weights_path, config_path, "latent denoiser")
    pipeline = LatentPipeline(load_autoencoder(directory, config.autoencoder), net.eval(), config)
    return pipeline.to(device).eval()
