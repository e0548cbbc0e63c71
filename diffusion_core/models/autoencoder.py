"""The KL-regularised autoencoder of latent diffusion (Rombach et al. 2022, sec. 3), for 28x28 digits.

The encoder E maps a digit x [N, 1, 28, 28] in [-1, 1] to a diagonal Gaussian q(z | x) = N(mean, exp(logvar));
the decoder D maps a latent z back to a digit. Training minimises

    L = || x - D(z) ||_1 + kl_weight * KL(q(z | x) || N(0, I)),   z = mean + exp(logvar / 2) * eps,

summed over pixels and latent numbers, averaged over the batch (Rombach et al. 2022, sec. 3 and appendix G:
their reconstruction term is L1 plus a perceptual and an adversarial loss; here L1 alone). The small KL weight
only keeps the latent from drifting to any scale: what the diffusion model sees is rescaled by the scale factor
(``latent.scale_factor``) anyway.

Two latent shapes, one class: ``latent_shape = (4, 7, 7)`` is an image latent (the last 7x7 feature map, 4x fewer
numbers than the 784 pixels), ``latent_shape = (2,)`` a 2-D vector (flattened 7x7 map -> a linear layer), small
enough to draw every test digit as a point.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from .files import WeightsError, load_matching_state, load_state, save_state

IMAGE_SIZE = 28  # MNIST's side
FEATURE_SIZE = 7  # side of the last feature map (28 / 2 / 2)


@dataclass(frozen=True, kw_only=True)
class AutoencoderConfig:
    """Architecture of the autoencoder; saved as JSON beside its weights."""

    latent_shape: tuple[int, ...] = (4, 7, 7)  # (C, 7, 7): an image latent; (D,): a vector latent
    channels: tuple[int, int, int] = (32, 64, 128)  # widths at 28x28, 14x14 and 7x7
    groups: int = 8  # GroupNorm groups
    kl_weight: float = 1e-4  # weight of the KL term in the training loss (kept here: it is part of the model's story)

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.latent_shape)
        if not (len(shape) == 1 and shape[0] >= 1) and not (len(shape) == 3 and shape[1:] == (FEATURE_SIZE,) * 2):
            raise ValueError(f"latent_shape must be (C, 7, 7) or (D,), got {self.latent_shape}")
        object.__setattr__(self, "latent_shape", shape)
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    @property
    def is_vector(self) -> bool:
        return len(self.latent_shape) == 1

    @property
    def latent_numbers(self) -> int:
        """Numbers per latent (4 * 7 * 7 = 196, or D)."""
        return math.prod(self.latent_shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AutoencoderConfig":
        d = dict(d)
        d["latent_shape"] = tuple(d["latent_shape"])
        d["channels"] = tuple(d["channels"])
        return cls(**d)


def compression_factor(latent_shape: tuple[int, ...], image_shape: tuple[int, ...] = (1, IMAGE_SIZE, IMAGE_SIZE)) -> float:
    """Numbers of the image / numbers of its latent: 784 / 196 = 4 for a 4x7x7 latent of a digit;
    512 * 512 * 3 / (4 * 64 * 64) = 48 for Stable Diffusion's 4x64x64 latent of a 512x512 RGB image."""
    return math.prod(image_shape) / math.prod(latent_shape)


def kl_to_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample [N], summed over the latent's numbers:
    1/2 sum (mean^2 + exp(logvar) - 1 - logvar) (Kingma & Welling 2014, appendix B)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(1)


class _Block(nn.Module):
    """GroupNorm-SiLU-Conv twice with a residual (the UNet's block without the time embedding)."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class Autoencoder(nn.Module):
    """encode(x [N, 1, 28, 28]) -> (mean, logvar), each [N, *latent_shape]; decode(z) -> x [N, 1, 28, 28]."""

    def __init__(self, config: AutoencoderConfig = AutoencoderConfig()):
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        g = config.groups
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), _Block(c1, c1, g),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), _Block(c2, c2, g),  # 28 -> 14
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), _Block(c3, c3, g),  # 14 -> 7
            nn.GroupNorm(g, c3), nn.SiLU(),
        )
        flat = c3 * FEATURE_SIZE * FEATURE_SIZE
        if config.is_vector:
            d = config.latent_shape[0]
            self.to_moments = nn.Sequential(nn.Flatten(), nn.Linear(flat, 2 * d))
            self.from_latent = nn.Sequential(nn.Linear(d, flat), nn.Unflatten(1, (c3, FEATURE_SIZE, FEATURE_SIZE)))
        else:
            c = config.latent_shape[0]
            self.to_moments = nn.Conv2d(c3, 2 * c, 1)
            self.from_latent = nn.Conv2d(c, c3, 3, padding=1)
        self.decoder = nn.Sequential(
            _Block(c3, c3, g),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c3, c2, 3, padding=1), _Block(c2, c2, g),  # 7 -> 14
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c1, 3, padding=1), _Block(c1, c1, g),  # 14 -> 28
            nn.GroupNorm(g, c1), nn.SiLU(), nn.Conv2d(c1, 1, 3, padding=1),
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The posterior q(z | x): mean and log-variance [N, *latent_shape] (logvar clamped to [-30, 20])."""
        moments = self.to_moments(self.encoder(x))
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor, clip: bool = False) -> Tensor:
        """x = D(z) [N, 1, 28, 28]; ``clip`` clamps it to [-1, 1], the range of the data."""
        x = self.decoder(self.from_latent(z))
        return x.clamp(-1.0, 1.0) if clip else x

    def forward(self, x: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction D(mean + std * noise) with the posterior's mean and logvar (reparameterisation,
        Kingma & Welling 2014, sec. 2.4); noise [N, *latent_shape]."""
        mean, logvar = self.encode(x)
        z = mean + (0.5 * logvar).exp() * noise
        return self.decode(z), mean, logvar


def autoencoder_loss(model: Autoencoder, x: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, L1 reconstruction per sample, KL per sample), both terms averaged over the batch:
    the training objective of the module docstring."""
    recon, mean, logvar = model(x, noise)
    rec = (recon - x).abs().flatten(1).sum(1).mean()
    kl = kl_to_standard_normal(mean, logvar).mean()
    return rec + model.config.kl_weight * kl, rec, kl


# ------------------------------------------------------------------ files
def weights_name(stem: str) -> str:
    return f"{stem}.safetensors"


def save_autoencoder(model: Autoencoder, directory: str | Path, stem: str = "autoencoder") -> Path:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` (the config) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_state(model, directory / weights_name(stem))
    (directory / f"{stem}.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    return directory / weights_name(stem)


def load_autoencoder(directory: str | Path, stem: str = "autoencoder") -> Autoencoder:
    """The autoencoder ``<stem>`` of ``directory``, on the CPU in eval mode; WeightsError names the file."""
    directory = Path(directory)
    config_path = directory / f"{stem}.json"
    try:
        config = AutoencoderConfig.from_dict(json.loads(config_path.read_text()))
    except FileNotFoundError:
        raise WeightsError(f"autoencoder config not found: {config_path}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"autoencoder config {config_path} is invalid: {e}") from None
    model = Autoencoder(config)
    weights_path = directory / weights_name(stem)
    load_matching_state(model, load_state(weights_path, "autoencoder"), weights_path, config_path, "autoencoder")
    return model.eval()
