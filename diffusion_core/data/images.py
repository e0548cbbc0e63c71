"""Pictures: conversions between uint8 pictures ([H, W] or [H, W, C]) and model tensors in
[-1, 1], uploads (``load_image``, decoded safely in ``uploads.py``), PNG and GIF encoding for
downloads, and MNIST-style digits made from any picture."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

# Decoding untrusted bytes lives in uploads.py; ``diffusion_core.data.images`` is the public way in.
from .uploads import (
    ALLOWED_FORMATS,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_MB,
    MODEL_MAX_SIDE,
    ErrorCode,
    ImageLoadError,
    LoadedImage,
    loaded_from_array,
    read_image,
)

__all__ = [
    "ALLOWED_FORMATS", "MAX_PIXELS", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_MB", "MNIST_CENTRE", "MODEL_MAX_SIDE",
    "BlankImageError", "ErrorCode", "ImageLoadError", "LoadedImage", "encode_gif", "encode_png", "image_to_tensor",
    "load_image", "loaded_from_array", "make_grid", "read_image", "tensor_to_image", "to_mnist_digit",
    "uint8_to_unit", "unit_to_uint8",
]


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


# ------------------------------------------------------------------ uploads
def load_image(data: bytes, *, max_side: int = MODEL_MAX_SIDE) -> np.ndarray:
    """An uploaded file's bytes -> float32 [H, W, C] in [-1, 1] (C = 1 grayscale, 3 colour), longest
    side at most ``max_side``, aspect ratio kept; or ImageLoadError with a ``code``, and nothing else.
    ``read_image`` returns the same pixels with what a page shows beside them (size, format, ...)."""
    return uint8_to_unit(read_image(data, max_side=max_side).pixels)


# ------------------------------------------------------------------ encoding for downloads
def _to_pil(image: np.ndarray) -> Image.Image:
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"expected uint8 [H, W] or [H, W, 1 or 3], got {image.dtype} {image.shape}")
    return Image.fromarray(image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image)


def encode_png(image: np.ndarray, *, compress_level: int = 6) -> bytes:
    """A uint8 picture [H, W] or [H, W, 1 or 3] -> the bytes of a PNG file, in memory.
    ``compress_level`` is zlib's, 0-9: 1 encodes about 3 times faster than the default 6 and, for
    the nearest-neighbour enlarged frames of a live run, gives files about as small."""
    buffer = io.BytesIO()
    _to_pil(image).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def encode_gif(frames: Sequence[np.ndarray], *, frame_ms: int = 600) -> bytes:
    """uint8 pictures of one shape -> an animated GIF (each frame ``frame_ms`` ms, looping), in memory.
    Colour frames are reduced to 256 colours each, as GIF requires."""
    if not frames:
        raise ValueError("need at least one frame")
    pictures = [_to_pil(f) for f in frames]
    if len({p.size for p in pictures}) != 1:
        raise ValueError("all frames must have the same size")
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()


# ------------------------------------------------------------------ an MNIST digit from any picture
MNIST_SIZE = 28  # MNIST pictures are 28 x 28 ...
MNIST_BOX = 20  # ... with the digit scaled into a 20 x 20 box (LeCun et al., the MNIST database page)
MNIST_CENTRE = 14.0  # where MNIST puts the centre of mass, in pixel indices (test set: 13.99 +- 0.29, 14.01 +- 0.29)
INK_THRESHOLD = 0.1  # ink darker than 10% of the strongest stroke counts as background (photo noise)


class BlankImageError(ValueError):
    """The picture has nothing to turn into a digit: every pixel (nearly) the same."""

    code = "blank"


def to_mnist_digit(image: np.ndarray) -> np.ndarray:
    """Any picture -> uint8 [28, 28], prepared the way the MNIST digits were (LeCun, Cortes & Burges):

    1. gray levels (ITU-R 601 luma for colour), white strokes on black: inverted when the border
       is light (paper, a whiteboard);
    2. the background level (median of the border) subtracted, the strongest stroke scaled to 255,
       anything under INK_THRESHOLD of it set to 0;
    3. the bounding box of the ink scaled (Lanczos, anti-aliased, aspect ratio kept) to fit 20 x 20;
    4. placed in 28 x 28 so that its centre of mass falls on the centre, to the nearest pixel; MNIST's
       "centre" is pixel (14, 14) (MNIST_CENTRE). Ink pushed past the edge is cut off, as in MNIST.

    image: uint8 [H, W] or [H, W, C], or float in [-1, 1] of those shapes. Raises BlankImageError
    when there is no ink at all (a flat picture).
    """
    gray = _gray01(image)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark strokes on a light background
        gray, border = 1.0 - gray, 1.0 - border
    ink = np.clip(gray - np.median(border), 0.0, None)
    peak = float(ink.max())
    if peak < 1.0 / 255:  # less than one gray level of contrast anywhere
        raise BlankImageError("the picture is blank: no strokes to turn into a digit")
    ink = np.where(ink >= INK_THRESHOLD * peak, ink / peak, 0.0)
    rows, cols = np.nonzero(ink)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]

    h, w = crop.shape
    scale = MNIST_BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    box = Image.fromarray(crop.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    box = np.clip(np.asarray(box, dtype=np.float64), 0.0, 1.0)

    total = box.sum()
    cy = float((box.sum(axis=1) * np.arange(box.shape[0])).sum() / total)
    cx = float((box.sum(axis=0) * np.arange(box.shape[1])).sum() / total)
    top, left = round(MNIST_CENTRE - cy), round(MNIST_CENTRE - cx)
    digit = np.zeros((MNIST_SIZE, MNIST_SIZE))
    r0, c0 = max(0, top), max(0, left)
    r1, c1 = min(MNIST_SIZE, top + box.shape[0]), min(MNIST_SIZE, left + box.shape[1])
    digit[r0:r1, c0:c1] = box[r0 - top : r1 - top, c0 - left : c1 - left]
    return np.rint(digit * 255).astype(np.uint8)


def _gray01(image: np.ndarray) -> np.ndarray:
    """uint8 or [-1, 1] float picture [H, W] / [H, W, C] -> float64 gray [H, W] in [0, 1]."""
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"expected a picture [H, W] or [H, W, C], got shape {image.shape}")
    x = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else (image.astype(np.float64) + 1.0) / 2.0
    if x.ndim == 3:
        x = x[:, :, 0] if x.shape[2] == 1 else x[:, :, :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma
    return np.clip(x, 0.0, 1.0)
