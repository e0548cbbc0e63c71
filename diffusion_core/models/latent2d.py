"""The 2-D latent: an autoencoder whose latent is a point of the plane, and the points of every MNIST digit,
shipped so that the app draws the cloud and runs the 2-D diffusion without reading MNIST.

Files in ``pretrained/latent/``: ``autoencoder_2d.safetensors`` + ``.json`` (``models.autoencoder``) and
``latent2d_codes.safetensors`` (train_points [60000, 2], train_labels [60000], test_points [10000, 2],
test_labels [10000]: scaled posterior means, scale_factor * mean of q(z | x)) with ``latent2d.json`` beside it
(the scale factor and where the codes came from). Written by ``python -m diffusion_core.training.latent_codes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

from ..process.schedules import Schedule, make_schedule
from .autoencoder import Autoencoder, load_autoencoder
from .files import PRETRAINED_DIR, WeightsError, load_state

LATENT_DIR = PRETRAINED_DIR / "latent"
STEM = "autoencoder_2d"
CODES_NAME, META_NAME = "latent2d_codes.safetensors", "latent2d.json"


def schedule_2d() -> Schedule:
    """The schedule of diffusion in the 2-D latent: the 2-D playground's default (linear, T = 1000). Its abar_T =
    4e-5 keeps sqrt(1 - abar) / sqrt(abar) at the first step near 160, where the cosine schedule's 20000 would
    blow up the unclipped steps of an MLP (``models.latent``'s docstring); the exact denoiser minds neither."""
    return make_schedule("linear", 1000)


@dataclass(frozen=True)
class Latent2D:
    """The 2-D autoencoder with its scale factor and the encoded digits (points scaled to variance about 1)."""

    autoencoder: Autoencoder  # latent_shape (2,)
    scale_factor: float  # points = scale_factor * mean of q(z | x)
    train_points: Tensor  # float32 [M, 2], the encoded training digits
    train_labels: Tensor  # int64 [M]
    test_points: Tensor  # float32 [K, 2], the encoded test digits
    test_labels: Tensor  # int64 [K]

    @torch.inference_mode()
    def encode(self, images: Tensor) -> Tensor:
        """Digits [N, 1, 28, 28] in [-1, 1] -> points [N, 2] (scaled posterior means)."""
        return self.scale_factor * self.autoencoder.encode(images.float())[0]

    @torch.inference_mode()
    def decode(self, points: Tensor) -> Tensor:
        """Points [N, 2] -> digits [N, 1, 28, 28] in [-1, 1]."""
        return self.autoencoder.decode(points.float() / self.scale_factor, clip=True)


def save_codes(directory: str | Path, scale_factor: float, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
               meta: dict | None = None) -> Path:
    """Write ``latent2d_codes.safetensors`` and ``latent2d.json`` (the scale factor and ``meta``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {"train_points": train[0].float().contiguous(), "train_labels": train[1].long().contiguous(),
               "test_points": test[0].float().contiguous(), "test_labels": test[1].long().contiguous()}
    save_file(tensors, str(directory / CODES_NAME), metadata={"format": "pt"})
    (directory / META_NAME).write_text(json.dumps({"scale_factor": scale_factor, "autoencoder": STEM, **(meta or {})},
                                                  indent=2) + "\n")
    return directory / CODES_NAME


def load_latent2d(directory: str | Path = LATENT_DIR) -> Latent2D:
    """The shipped 2-D latent, on the CPU; WeightsError names a missing or damaged file."""
    directory = Path(directory)
    meta_path = directory / META_NAME
    try:
        meta = json.loads(meta_path.read_text())
        scale = float(meta["scale_factor"])
    except FileNotFoundError:
        raise WeightsError(f"2-D latent description not found: {meta_path}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"2-D latent description {meta_path} is invalid: {e}") from None
    codes = load_state(directory / CODES_NAME, "2-D latent codes")
    missing = {"train_points", "train_labels", "test_points", "test_labels"} - set(codes)
    if missing:
        raise WeightsError(f"2-D latent codes {directory / CODES_NAME} lack {sorted(missing)}")
    return Latent2D(autoencoder=load_autoencoder(directory, meta.get("autoencoder", STEM)), scale_factor=scale,
                    train_points=codes["train_points"].float(), train_labels=codes["train_labels"].long(),
                    test_points=codes["test_points"].float(), test_labels=codes["test_labels"].long())
