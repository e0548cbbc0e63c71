"""The denoiser eps_theta(x_t, t, y): a small UNet for 28x28 grayscale digits.

It predicts the noise eps in x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
(Ho et al. 2020, eq. 14), conditioned on the timestep t by a sinusoidal
embedding (Vaswani et al. 2017; Ho et al. 2020, appendix B) and on the class y
by a learned embedding with one extra "no label" class, so that one network
serves classifier-free guidance (Ho & Salimans 2022).

Designed for a 2-core CPU, where small networks are bound by per-layer
overhead more than by FLOPs: a pixel-unshuffle stem (28x28x1 -> 14x14x4),
two resolutions (14x14 and 7x7), few wide layers, and one linear layer that
produces every block's time/class modulation at once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NUM_CLASSES = 10
NULL_LABEL = -1  # label value meaning "no label" (unconditional)


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of the denoiser; saved as JSON beside its weights."""

    image_size: int = 28  # height = width of the digits
    in_channels: int = 1  # grayscale
    channels: tuple[int, ...] = (32, 64)  # width at 14x14 and at 7x7
    blocks_per_level: tuple[int, ...] = (2, 2)  # residual blocks per level on the way down
    emb_dim: int = 128  # size of the time + class embedding
    groups: int = 8  # GroupNorm groups
    attention: bool = True  # one self-attention block at 7x7
    num_classes: int = NUM_CLASSES  # digits 0-9; index num_classes is "no label"
    unshuffle: int = 2  # pixel-unshuffle factor of the stem: 2 for 28x28 digits (-> 14x14), 1 for a 7x7 latent

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        d["blocks_per_level"] = tuple(d["blocks_per_level"])
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of integer timesteps t [N] -> [N, dim] (Vaswani et al. 2017, sec. 3.5)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with a per-channel scale and shift from the embedding."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.c_out = c_out
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    @property
    def modulation_size(self) -> int:
        return 2 * self.c_out  # scale and shift

    def forward(self, x: Tensor, mod: Tensor) -> Tensor:
        scale, shift = mod[:, :, None, None].chunk(2, dim=1)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the pixels of a feature map, with a residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # [N, HW, C]
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """eps_theta(x_t, t, y): x_t [N, 1, 28, 28], t LongTensor [N] in 1..T,
    y LongTensor [N] of digits 0-9 or -1 for "no label"; returns eps_hat [N, 1, 28, 28].
    With ``unshuffle=1`` and ``in_channels=4`` the same network takes a 4x7x7 latent (7x7, then 4x4)."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        n1, n2 = config.blocks_per_level
        g, e = config.groups, config.emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.class_emb = nn.Embedding(config.num_classes + 1, e)
        if config.unshuffle not in (1, 2):
            raise ValueError(f"unshuffle must be 1 or 2, got {config.unshuffle}")
        stem_channels = config.in_channels * config.unshuffle**2
        self.stem = nn.Conv2d(stem_channels, c1, 3, padding=1)
        self.down1 = nn.ModuleList([ResBlock(c1, c1, g) for _ in range(n1)])
        self.downsample = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.down2 = nn.ModuleList([ResBlock(c2, c2, g) for _ in range(n2)])
        self.attn = Attention(c2, g) if config.attention else None
        self.mid = ResBlock(c2, c2, g)
        self.up2 = nn.ModuleList([ResBlock(2 * c2, c2, g)])
        self.upsample = nn.Conv2d(c2, c1, 3, padding=1)
        self.up1 = nn.ModuleList([ResBlock(2 * c1, c1, g)])
        self.out_norm = nn.GroupNorm(g, c1)
        self.out_conv = nn.Conv2d(c1, stem_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)
        self.blocks = [*self.down1, *self.down2, self.mid, *self.up2, *self.up1]
        self.mod_sizes = [b.modulation_size for b in self.blocks]
        # One linear layer gives every block its scale and shift (fewer, larger matmuls).
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(e, sum(self.mod_sizes)))

    def forward(self, x: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        cfg = self.config
        class_index = torch.where(labels < 0, torch.full_like(labels, cfg.num_classes), labels)
        emb = self.time_mlp(timestep_embedding(t, cfg.emb_dim).to(x.dtype)) + self.class_emb(class_index)
        mods = iter(self.modulation(emb).split(self.mod_sizes, dim=1))

        r = cfg.unshuffle
        h = self.stem(F.pixel_unshuffle(x, r) if r > 1 else x)  # 28x28x1 -> 14x14x4 -> 14x14xc1 (r = 2)
        for block in self.down1:
            h = block(h, next(mods))
        skip1 = h
        h = self.downsample(h)  # 7x7xc2
        for block in self.down2:
            h = block(h, next(mods))
        if self.attn is not None:
            h = self.attn(h)
        skip2 = h
        h = self.mid(h, next(mods))
        for block in self.up2:
            h = block(torch.cat([h, skip2], dim=1), next(mods))
        # nearest-neighbour back to the skip's size: 7 -> 14 (= scale factor 2), or 4 -> 7 for a 7x7 latent
        h = self.upsample(F.interpolate(h, size=skip1.shape[-2:], mode="nearest"))  # 14x14xc1
        for block in self.up1:
            h = block(torch.cat([h, skip1], dim=1), next(mods))
        h = self.out_conv(F.silu(self.out_norm(h)))
        return F.pixel_shuffle(h, r) if r > 1 else h  # 14x14x4 -> 28x28x1 (r = 2)
