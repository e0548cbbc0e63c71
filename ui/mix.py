"""Pictures that are a fixed mix of a few arrays, drawn in the browser at every slider position.

Many of the course's pictures are linear in a few arrays that depend only on the settings: the closed form
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. 2020, eq. 4) with one draw of eps, the straight path
x_t = (1 - t) x_0 + t eps of flow matching (Lipman et al. 2023). Instead of a PNG file per step from the server,
the browser gets the arrays once per settings (``bases``) and one row of weights per slider position, and
draws sum_k w[p, k] base_k on a canvas the moment a key moves the slider (``ui/assets/mix_picture.js``): every
position, exactly, with no round trip. The server still reruns the slider's fragment for the numbers beside it.

The picture is the one ``tensor_to_image`` would make of the same mix: clip(rint((x + 1) 127.5), 0, 255). The
bases travel as int16 with one scale each (|error| <= scale / 2 < 8e-5 for values in [-5, 5], a hundredth of
a grey level; half the bytes of float32) and the weights as float64, so about one pixel in a hundred, the ones
within that hundredth of a rounding boundary, may differ from the server's float32 picture by one grey level,
and none by more (tests/ui/test_mix_browser.py).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

_JS = (Path(__file__).parent / "assets" / "mix_picture.js").read_text(encoding="utf-8")
_component = st.components.v2.component("course_mix_picture", js=_JS, isolate_styles=False)
MAGIC = b"MIX1"


@dataclass(frozen=True)
class MixedPicture:
    """One picture of a mix: ``weights[p]`` (one per base) at slider position p, and its caption (plain text, a
    line break for each newline), where ``{v}`` is the slider's shown value, ``{v_sub}`` the same in subscript
    digits and ``{w0}``, ``{w1}``, … the weights at p (4 decimals)."""

    weights: np.ndarray  # [positions, bases]
    caption: str | Sequence[str]  # one template, or one caption per position


def encode(bases: Sequence[np.ndarray], pictures: Sequence[MixedPicture], *, slider: str, minimum: float = 0,
           step: float = 1, texts: Sequence[str] | None = None, min_side: int = 280) -> bytes:
    """The payload the browser reads: b"MIX1", the length of a JSON header (uint32, little-endian), the header,
    zero padding to a multiple of 8, then each base as int16 [H, W, C] and each picture's weights as float64.
    Bases are [H, W] or [H, W, C] (C = 1 or 3), in [-1, 1] units (data), all of one shape."""
    arrays = [np.asarray(b, dtype=np.float64) for b in bases]
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays) or len(shape) not in (2, 3):
        raise ValueError(f"bases must share one [H, W] or [H, W, C] shape, got {[a.shape for a in arrays]}")
    h, w = shape[:2]
    c = 1 if len(shape) == 2 else shape[2]
    scales = [max(float(np.abs(a).max()), 1e-12) / 32767 for a in arrays]
    positions = len(pictures[0].weights)
    for p in pictures:
        if p.weights.shape != (positions, len(arrays)):
            raise ValueError(f"weights must be [positions, {len(arrays)}], got {p.weights.shape}")
        if not isinstance(p.caption, str) and len(p.caption) != positions:
            raise ValueError(f"{len(p.caption)} captions for {positions} positions")
    header = json.dumps({
        "h": h, "w": w, "c": c, "scales": scales, "positions": positions, "slider": slider, "min": minimum,
        "step": step, "texts": None if texts is None else list(texts), "captions": [p.caption if isinstance(p.caption, str) else list(p.caption) for p in pictures],
        "factor": max(1, min_side // min(h, w)),
    }).encode("utf-8")
    head = MAGIC + struct.pack("<I", len(header)) + header
    head += b"\0" * (-len(head) % 8)
    body = [np.rint(a / s).astype("<i2").tobytes() for a, s in zip(arrays, scales)]
    body[-1] += b"\0" * (-sum(map(len, body)) % 8)  # float64 weights start on a multiple of 8
    return head + b"".join(body) + b"".join(np.asarray(p.weights, dtype="<f8").tobytes() for p in pictures)


def mixed_pictures(payload: bytes, *, key: str) -> None:
    """Show the pictures of ``payload`` (from ``encode``, cached per settings so that a step sends the same
    element), side by side, following their slider in the browser."""
    _component(data=payload, key=key, width="stretch")
