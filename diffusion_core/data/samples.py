"""The sample pictures bundled in ``assets/`` (sources and licences: ``assets/README.md``).

Names are the file names without ``.png``: ``digit_0`` … ``digit_9`` (MNIST test digits,
uint8 [28, 28]) and the photos ``astronaut``, ``chelsea``, ``coffee`` (uint8 [H, W, 3],
longest side 256 px). Paths resolve relative to this package, so the app runs from anywhere::

    from diffusion_core.data.samples import list_sample_images, load_sample_image
    image = load_sample_image("digit_7")          # uint8 [28, 28]
    photo = load_sample_image("chelsea", 96)      # uint8 [64, 96, 3]
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
SampleKind = Literal["digit", "photo"]
_FOLDERS: dict[str, str] = {"digit": "digits", "photo": "photos"}


def list_sample_images(kind: SampleKind | None = None) -> list[str]:
    """Names of the bundled images, digits 0-9 first, then the photos (alphabetical)."""
    kinds = [kind] if kind is not None else list(_FOLDERS)
    if any(k not in _FOLDERS for k in kinds):
        raise ValueError(f"unknown kind {kind!r}; expected one of {tuple(_FOLDERS)}")
    return [p.stem for k in kinds for p in sorted((ASSETS_DIR / _FOLDERS[k]).glob("*.png"))]


def sample_kind(name: str) -> SampleKind:
    """"digit" for the MNIST digits, "photo" for the photographs."""
    for kind, folder in _FOLDERS.items():
        if (ASSETS_DIR / folder / f"{name}.png").is_file():
            return kind  # type: ignore[return-value]
    raise ValueError(f"no bundled image {name!r}; expected one of {list_sample_images()}")


def load_sample_image(name: str, max_size: int | None = None) -> np.ndarray:
    """The bundled image ``name``: digits uint8 [28, 28], photos uint8 [H, W, 3].

    With ``max_size``, a larger picture is shrunk (Lanczos, aspect ratio kept) so that
    its longest side is ``max_size`` pixels; smaller pictures are returned unchanged.
    """
    kind = sample_kind(name)
    with Image.open(ASSETS_DIR / _FOLDERS[kind] / f"{name}.png") as im:
        im = im.convert("L" if kind == "digit" else "RGB")
        if max_size is not None and max(im.size) > max_size:
            scale = max_size / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
        return np.asarray(im, dtype=np.uint8).copy()
