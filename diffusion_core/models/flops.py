"""FLOPs of the networks at any image size, counted rather than estimated: each network is built on PyTorch's
meta device (shapes, no numbers, no memory) and one call is run under ``torch.utils.flop_counter.FlopCounterMode``,
which adds up every convolution, matrix product and attention (a multiply-add counts 2). Normalisations and
activations are not counted: a few per cent at these widths.

Why latent diffusion pays off on large images: a convolution costs in proportion to the positions it runs over,
attention in proportion to their square, so a UNet on a latent 4x smaller per side does about 16x less work per
call at the same widths (and its self-attention at the lowest level up to 256x less), while the decoder runs once
per sample, not once per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from .autoencoder import Autoencoder, AutoencoderConfig
from .unet import UNet, UNetConfig


def _count(run) -> int:
    with FlopCounterMode(display=False) as counter:
        run()
    return int(counter.get_total_flops())


def unet_flops(config: UNetConfig, side: int) -> int:
    """FLOPs of one call of a UNet with ``config`` on one input [1, in_channels, side, side]."""
    with torch.device("meta"):
        net = UNet(config)
        x = torch.empty(1, config.in_channels, side, side)
        t, y = torch.ones(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
    return _count(lambda: net(x, t, y))


def decoder_flops(config: AutoencoderConfig, latent_side: int) -> int:
    """FLOPs of one decoder call from an image latent [1, C, latent_side, latent_side] (to 4 * latent_side pixels)."""
    if config.is_vector:
        if latent_side != 7:
            raise ValueError("a vector latent decodes to 28x28 only")
        shape: tuple[int, ...] = (1, *config.latent_shape)
    else:
        shape = (1, config.latent_shape[0], latent_side, latent_side)
    with torch.device("meta"):
        autoencoder = Autoencoder(config)
        z = torch.empty(shape)
    return _count(lambda: autoencoder.decode(z))


@dataclass(frozen=True)
class PipelineFlops:
    """FLOPs per image of both ways to make an image of ``side`` x ``side`` pixels."""

    side: int  # pixels per side of the image
    latent_side: int  # side of its latent (side / 4)
    pixel_call: int  # one pass of the pixel-space UNet on the image
    latent_call: int  # one pass of the latent UNet on the latent
    decoder: int  # one decoder call, latent -> image

    def pixel_sample(self, passes: int) -> int:
        """A pixel-space sample of ``passes`` UNet passes (2 per step with guidance)."""
        return passes * self.pixel_call

    def latent_sample(self, passes: int) -> int:
        """A latent sample: ``passes`` latent UNet passes, then the decoder once."""
        return passes * self.latent_call + self.decoder

    def ratio(self, passes: int) -> float:
        """How many times more FLOPs the pixel-space sample costs."""
        return self.pixel_sample(passes) / self.latent_sample(passes)


def pipeline_flops(pixel: UNetConfig, latent: UNetConfig, autoencoder: AutoencoderConfig, side: int) -> PipelineFlops:
    """Count both pipelines' networks at ``side`` (a multiple of 4: the latent is side / 4 per side; the pixel UNet's
    stem needs an even side and its downsampling another factor 2)."""
    if side % 4 or side < 8:
        raise ValueError(f"side must be a multiple of 4 and at least 8, got {side}")
    latent_side = side // 4
    return PipelineFlops(side=side, latent_side=latent_side, pixel_call=unet_flops(pixel, side),
                         latent_call=unet_flops(latent, latent_side), decoder=decoder_flops(autoencoder, latent_side))
