"""Read the MNIST IDX files (LeCun, Cortes & Burges) into tensors.

IDX layout: a big-endian header (magic number, then one 32-bit size per
dimension), then the raw uint8 bytes. Used by training and the benchmarks only;
the app never reads MNIST at run time.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Literal

import numpy as np

from .images import uint8_to_unit

Split = Literal["train", "test"]
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_MAGIC_IMAGES = 2051
_MAGIC_LABELS = 2049


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one gzip-compressed IDX file into a uint8 array of its stated shape."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    header = np.frombuffer(raw, dtype=">u4", count=1 + ndim)
    if header[0] != magic:
        raise ValueError(f"{path}: magic number {header[0]}, expected {magic}")
    shape = tuple(int(n) for n in header[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim))
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says shape {shape}")
    return data.reshape(shape)


def load_mnist(root: str | Path, split: Split = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 28, 28] and labels uint8 [N] of one split."""
    root = Path(root)
    image_file, label_file = _FILES[split]
    images = read_idx(root / image_file, _MAGIC_IMAGES)
    labels = read_idx(root / label_file, _MAGIC_LABELS)
    if len(images) != len(labels):
        raise ValueError(f"{root}: {len(images)} images but {len(labels)} labels")
    return images, labels


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [-1, 1]."""
    return uint8_to_unit(images)[:, None]
