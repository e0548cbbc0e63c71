"""FLOPs of the networks at any image size, counted rather than estimated: each network is built on PyTorch's
meta device (shapes, no numbers, no memory) and run once with a hook on every convolution, linear layer and
self-attention block, which adds up their multiply-adds (one counts 2 FLOPs, as in the model card and in
``torch.utils.flop_counter``, which the tests use as the reference). Normalisations, activations and the
softmax are not counted: a few per cent at these widths.

Why latent diffusion pays off on large images: a convolution costs in proportion to the positions it runs
over, self-attention in proportion to their square. Our pixel UNet already halves each side with its
pixel-unshuffle stem; the latent UNet works at a quarter of each side, so at equal widths its convolutions do
about 4x less and its attention about 16x less work per call, while the decoder runs once per sample, not
once per step. At 28x28 the attention is a small part of the work; at 512x512 it is most of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .autoencoder import Autoencoder, AutoencoderConfig
from .unet import Attention, UNet, UNetConfig


def _hook_flops(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):  # 2 * (C_in / groups) * k_h * k_w multiply-adds per output number
        k_h, k_w = module.kernel_size
        return 2 * (module.in_channels // module.groups) * k_h * k_w * output.numel()
    if isinstance(module, nn.Linear):
        return 2 * module.in_features * output.numel()
    if isinstance(module, Attention):  # q k^T and (softmax) v: two [HW, HW] x C products per image
        n, c, h, w = inputs[0].shape
        return 2 * 2 * n * (h * w) ** 2 * c
    return 0


def count_flops(module: nn.Module, run: Callable[[], object]) -> int:
    """FLOPs of ``run()`` (a call of ``module``), summed over its convolutions, linear layers and attention."""
    total = [0]
    handles = [m.register_forward_hook(lambda m, i, o: total.__setitem__(0, total[0] + _hook_flops(m, i, o)))
               for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear, Attention))]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return total[0]


def unet_flops(config: UNetConfig, side: int) -> int:
    """FLOPs of one call of a UNet with ``config`` on one input [1, in_channels, side, side]."""
    with torch.device("meta"):
        net = UNet(config)
        x = torch.empty(1, config.in_channels, side, side)
        t, y = torch.ones(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
    return count_flops(net, lambda: net(x, t, y))


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
    return count_flops(autoencoder, lambda: autoencoder.decode(z))


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
