"""The 2-D data sets: eight Gaussians, two moons, a swiss roll, a checkerboard and the dark pixels of a picture.

Shapes: points are [N, 2]. The data sets are distributions, not fixed clouds:
``Distribution2D.sample(n, generator)`` draws n points, standardised by constants of the distribution
(mean 0 and variance 1 per axis), so that a second draw (the "fresh points" of the memorisation test)
is on the same scale as the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..data.uploads import read_image

DatasetName = Literal["mixture", "moons", "swiss_roll", "checkerboard", "picture"]
DATASETS: tuple[str, ...] = get_args(DatasetName)
MAX_POINTS = 10_000  # largest training set: the exact denoiser compares every query with every point
DARK_LEVEL = 128  # a picture's pixel is "dark" (part of the shape) when its gray level is below this
PICTURE_PATH = Path(__file__).resolve().parents[2] / "assets" / "drawings" / "smiley.png"  # the bundled drawing
_REFERENCE_DRAW = 200_000  # points drawn once to find the mean and spread of the shapes without a closed form


class BlankPictureError(ValueError):
    """The picture has no dark pixel (or nothing but dark pixels is fine: a filled rectangle)."""


def check_n_points(n: int) -> int:
    """n must be an integer from 1 to MAX_POINTS."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_POINTS:
        raise ValueError(f"the number of points must be an integer from 1 to {MAX_POINTS}, got {n!r}")
    return int(n)


# ------------------------------------------------------------------ data sets
def _mixture(n: int, g: torch.Generator) -> Tensor:
    """Eight Gaussians (std 0.1) at the corners of a regular octagon of radius 1."""
    k = torch.randint(0, 8, (n,), generator=g).double()
    centres = torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], dim=1)
    return centres + 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _moons(n: int, g: torch.Generator) -> Tensor:
    """Two interleaved half circles (as scikit-learn's make_moons), noise std 0.06."""
    theta = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    lower = torch.rand(n, generator=g) < 0.5
    x = torch.where(lower, 1 - torch.cos(theta), torch.cos(theta))
    y = torch.where(lower, 0.5 - torch.sin(theta), torch.sin(theta))
    return torch.stack([x, y], dim=1) + 0.06 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _swiss_roll(n: int, g: torch.Generator) -> Tensor:
    """A spiral r = theta, theta in [1.5 pi, 4.5 pi] (the 2-D swiss roll), noise std 0.3."""
    theta = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    spiral = torch.stack([theta * torch.cos(theta), theta * torch.sin(theta)], dim=1)
    return spiral + 0.3 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def _checkerboard(n: int, g: torch.Generator) -> Tensor:
    """Uniform over the 8 black squares of a 4 x 4 board on [-2, 2]^2."""
    cell = torch.randint(0, 8, (n,), generator=g)
    row = cell // 2
    col = 2 * (cell % 2) + row % 2  # the squares with row + col even
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack([col + u[:, 0], row + u[:, 1]], dim=1) - 2.0


_SHAPES: dict[str, Callable[[int, torch.Generator], Tensor]] = {
    "mixture": _mixture, "moons": _moons, "swiss_roll": _swiss_roll, "checkerboard": _checkerboard,
}


@dataclass(frozen=True)
class Distribution2D:
    """A 2-D distribution, standardised by its own mean and standard deviation per axis."""

    name: str  # one of DATASETS
    raw: Callable[[int, torch.Generator], Tensor] = field(repr=False)  # draws [n, 2] float64 before scaling
    mean: tuple[float, float]  # mean of the raw distribution, per axis
    std: tuple[float, float]  # its standard deviation, per axis

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n points [n, 2] float32, mean 0 and variance 1 per axis (over the distribution)."""
        x = self.raw(check_n_points(n), generator)
        return ((x - torch.tensor(self.mean, dtype=torch.float64)) / torch.tensor(self.std, dtype=torch.float64)).float()


@lru_cache(maxsize=None)
def _shape_distribution(name: str) -> Distribution2D:
    # No closed form for every shape's spread: measure it once on a large draw with a fixed generator.
    x = _SHAPES[name](_REFERENCE_DRAW, torch.Generator().manual_seed(0))
    mean, std = x.mean(0), x.std(0)
    return Distribution2D(name, _SHAPES[name], (float(mean[0]), float(mean[1])), (float(std[0]), float(std[1])))


def picture_distribution(pixels: np.ndarray, dark_level: int = DARK_LEVEL) -> Distribution2D:
    """Uniform over the dark pixels of a picture (uint8 [H, W] or [H, W, C]): a pixel is dark when the mean of
    its channels is below ``dark_level``; each point falls uniformly inside its pixel square. x runs to the
    right and y upwards, so the cloud stands the way the picture does. Raises BlankPictureError without one."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(f"expected uint8 [H, W] or [H, W, C], got {pixels.dtype} {pixels.shape}")
    gray = pixels.astype(np.float64) if pixels.ndim == 2 else pixels.astype(np.float64).mean(axis=2)
    rows, cols = np.nonzero(gray < dark_level)
    if len(rows) == 0:
        raise BlankPictureError("the picture has no dark pixel")
    corners = torch.from_numpy(np.stack([cols, -rows - 1], axis=1).astype(np.float64))  # lower-left corner

    def raw(n: int, g: torch.Generator) -> Tensor:
        pick = torch.randint(0, len(corners), (n,), generator=g)
        return corners[pick] + torch.rand(n, 2, generator=g, dtype=torch.float64)

    # Mixture of unit squares: mean = mean corner + 1/2, variance = variance of the corners + 1/12 per axis.
    mean = corners.mean(0) + 0.5
    var = corners.var(0, unbiased=False) + 1 / 12
    return Distribution2D("picture", raw, (float(mean[0]), float(mean[1])), tuple(float(s) for s in var.sqrt()))


def bundled_picture() -> np.ndarray:
    """The bundled drawing (a smiley, black on white), uint8 [128, 128]."""
    with Image.open(PICTURE_PATH) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()


def picture_from_bytes(data: bytes) -> Distribution2D:
    """An uploaded file -> the distribution of its dark pixels, decoded by the safe loader of the upload page
    (``uploads.read_image``: ImageLoadError with its code for a hostile or broken file; longest side 256 px);
    BlankPictureError when no pixel is dark."""
    return picture_distribution(read_image(data).pixels)


def distribution(name: DatasetName, pixels: np.ndarray | None = None) -> Distribution2D:
    """The data set ``name``; "picture" takes the dark pixels of ``pixels`` (uint8 [H, W] or [H, W, C]),
    by default those of the bundled drawing."""
    if name == "picture":
        return picture_distribution(bundled_picture() if pixels is None else pixels)
    if name not in _SHAPES:
        raise ValueError(f"unknown data set {name!r}; expected one of {DATASETS}")
    return _shape_distribution(name)
