"""Conversions between pictures (uint8, [H, W] or [H, W, C]) and model tensors in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def uint8_to_unit(image: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 -> float32 in [-1, 1] (x = p / 127.5 - 1), shape kept."""
    return image.astype(np.float32) / 127.5 - 1.0


def unit_to_uint8(x: np.ndarray | Tensor) -> np.ndarray:
    """Values in [-1, 1] -> uint8 0..255, clipping anything outside; shape kept."""
    if isinstance(x, Tensor):
        x = x.detach().float().cpu().numpy()
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_to_tensor(image: np.ndarray) -> Tensor:
    """A picture [H, W] or [H, W, C] (uint8, or float in [-1, 1]) -> tensor [1, C, H, W] in [-1, 1]."""
    x = uint8_to_unit(image) if image.dtype == np.uint8 else image.astype(np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def tensor_to_image(x: Tensor) -> np.ndarray:
    """One tensor [C, H, W] or [1, C, H, W] in [-1, 1] -> uint8 [H, W] (C = 1) or [H, W, C], clipped."""
    if x.ndim == 4:
        x = x[0]
    image = unit_to_uint8(x).transpose(1, 2, 0)
    return image[:, :, 0] if image.shape[2] == 1 else image


def make_grid(x: Tensor, ncols: int = 8, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile a batch [N, C, H, W] in [-1, 1] into one uint8 picture with ``pad`` pixels between tiles."""
    n, c, h, w = x.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    grid = torch.full((c, nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, dtype=torch.float32)
    for i in range(n):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = x[i].detach().float().cpu()
    return tensor_to_image(grid)
