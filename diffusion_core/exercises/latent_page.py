"""Exercises of page 13, latent diffusion: the compression factor of a latent shape, the scale factor from a
latent's spread, and the cost in network passes of a guided latent sample. Answers from the core's own
functions (``models.autoencoder.compression_factor``, ``models.latent.latent_scale_factor``,
``models.latent.sample_cost``)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..models.autoencoder import compression_factor
from ..models.latent import latent_scale_factor, sample_cost
from .base import DEC3, INTEGER, Exercise, Settings, _part, _r, _rel

SIDES = (28, 32, 64, 128, 256, 512, 1024)  # image sides; 28 is MNIST's (grayscale), the others colour
FACTORS = (4, 8)  # downsampling factors f per side (MNIST's 28 only by 4)
LATENT_CHANNELS = (2, 3, 4, 8, 16)


def latent_compression(rng: np.random.Generator, settings: Settings) -> Exercise:
    """Numbers of an H x W x C image / numbers of its c x H/f x W/f latent, with autoencoder.compression_factor."""
    side = int(rng.choice(SIDES))
    channels, f = (1, 4) if side == 28 else (3, int(rng.choice(FACTORS)))
    c = int(rng.choice(LATENT_CHANNELS))
    h = side // f
    answer = compression_factor((c, h, h), (channels, side, side))
    part = _part("factor", answer, _rel(0.001), compression_inverted=1 / answer, spatial_only=f * f,
                 image_channels_left_out=side * side / (c * h * h), per_side=side / h)
    return Exercise("latent", "compression", (
        ("side", side), ("channels", channels), ("f", f), ("c", c), ("h", h),
        ("image_numbers", side * side * channels), ("latent_numbers", c * h * h), ("answer", answer),
    ), (part,))


def latent_scale(rng: np.random.Generator, settings: Settings) -> Exercise:
    """The scale factor s = 1 / std from the variance of the latent's numbers (models.latent.latent_scale_factor
    on two numbers -a, +a, whose unbiased standard deviation is a sqrt(2))."""
    var = _r(float(rng.uniform(0.5, 40.0)), 2)
    std = math.sqrt(var)
    a = std / math.sqrt(2)
    answer = latent_scale_factor(torch.tensor([-a, a], dtype=torch.float64))
    part = _part("s", answer, DEC3, variance_for_std=1 / var, not_inverted=std)
    return Exercise("latent", "scale", (("var", var), ("std", std), ("answer", answer), ("check", answer * std)),
                    (part,))


def latent_cost(rng: np.random.Generator, settings: Settings) -> Exercise:
    """UNet passes and decoder calls of N guided latent samples with k steps (models.latent.sample_cost)."""
    n = int(rng.choice([1, 4, 16, 64]))
    k = int(rng.choice([5, 10, 20, 25, 50]))
    s = float(rng.choice([1.5, 2.0, 3.0]))
    cost = sample_cost(k, s)
    passes, decoder = n * cost.denoiser_passes, n * cost.decoder_passes
    return Exercise("latent", "cost", (("n", n), ("k", k), ("s", s), ("per_sample", cost.denoiser_passes),
                                       ("passes", passes), ("decoder", decoder)), (
        _part("passes", passes, INTEGER, guidance_single_pass=n * k, per_sample_only=cost.denoiser_passes),
        _part("decoder", decoder, INTEGER, decoder_each_step=n * k, per_sample_only=1),
    ))
