"""Decode image bytes that nobody has checked: pixels out, or a refusal with a reason.

Everything a student can upload ends in one of two ways: a ``LoadedImage``, or an
``ImageLoadError`` whose ``code`` says what went wrong, so that a page can say it
in the student's language. The limits are set on purpose, not left at Pillow's defaults:

- at most ``MAX_UPLOAD_BYTES`` bytes, the ``server.maxUploadSize`` of
  ``.streamlit/config.toml``, checked again here in case a caller skips Streamlit;
- only ``ALLOWED_FORMATS`` are tried (``Image.open(formats=...)``): Pillow does not
  guess among the forty formats it knows, so SGI, PSD, EPS, ... never reach a decoder;
- at most ``MAX_PIXELS`` pixels, checked on the size in the header right after
  ``Image.open``, before a single pixel is decoded: a 44-byte GIF can claim 4 billion;
- ``Image.MAX_IMAGE_PIXELS`` is set to the same limit, so Pillow's own bomb check
  (``DecompressionBombError`` above twice the limit) agrees with ours, also for the
  frames it opens itself;
- ``ImageFile.LOAD_TRUNCATED_IMAGES`` stays False: a truncated file is refused,
  not silently padded with grey.

Only the first frame of an animation is decoded. Nothing is written to disk.
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image, ImageFile

# Pillow format ids. The JPEG opener also returns the multi-picture JPEGs of some cameras (format "MPO").
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
MAX_UPLOAD_MB = 10  # server.maxUploadSize in .streamlit/config.toml (Streamlit's MB are 2**20 bytes)
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 2**20
MAX_PIXELS = 40_000_000  # 8000 x 5000; phone cameras save 12-24 megapixels by default
MODEL_MAX_SIDE = 256  # the picture the forward process works on: small, so every slider move is instant
DISPLAY_MAX_SIDE = 1024  # the picture shown "as loaded": enough for a screen, light to send

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False

_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}  # plus every "I;16..." mode
_WHITE = 255
_EXIF_ORIENTATION = 0x0112
_ORIENTATION_TRANSPOSE = {  # EXIF orientation -> the transpose that makes the picture upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# What Pillow's decoders are known to raise on hostile input (see its Tests/images/crash-*, oom-*, timeout-*).
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, struct.error,
                   ZeroDivisionError, OverflowError, AttributeError, NotImplementedError, RuntimeError)

log = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    """Why an upload was refused; a page shows ``tr(f"your_image.error_{code}", **error.fields)``."""

    EMPTY = "empty"  # zero bytes
    TOO_LARGE = "too_large"  # more bytes than the upload limit; fields: size_mb, limit_mb
    NOT_IMAGE = "not_image"  # not one of ALLOWED_FORMATS (text, PDF, program, HEIC, ...) or an unreadable header
    TOO_MANY_PIXELS = "too_many_pixels"  # the header claims more than the pixel limit; fields: limit_mp
    TRUNCATED = "truncated"  # the file ends before the picture does
    CORRUPT = "corrupt"  # the header is fine but the pixel data are damaged
    UNSUPPORTED_MODE = "unsupported_mode"  # a pixel layout we cannot turn into gray or RGB; fields: mode
    OUT_OF_MEMORY = "out_of_memory"  # the server ran out of memory while decoding


class ImageLoadError(ValueError):
    """An upload that cannot be shown; ``code`` says why, ``fields`` fill the message."""

    def __init__(self, code: ErrorCode, **fields: object):
        super().__init__(f"{code.value} {fields}" if fields else code.value)
        self.code = code
        self.fields: dict[str, object] = fields


@dataclass(frozen=True)
class LoadedImage:
    """A decoded upload: the picture as loaded, and the small copy the model works on."""

    pixels: np.ndarray  # uint8 [H, W, C], C = 1 (grayscale) or 3 (colour), longest side <= max_side
    display: np.ndarray  # uint8 [h, w] or [h, w, 3]: the picture as loaded, longest side <= DISPLAY_MAX_SIDE
    size: tuple[int, int]  # (width, height) of the picture as loaded, EXIF orientation applied
    format: str  # Pillow's name of the file format: "PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "MPO"
    mode: str  # Pillow's pixel mode in the file: "L", "RGB", "P", "CMYK", "I;16", ...
    animated: bool  # the file holds several frames (or pages); only the first is used
    transparent: bool  # some pixels were (partly) transparent: composited on white
    rotated: bool  # an EXIF orientation other than "upright" was applied

    @property
    def grayscale(self) -> bool:
        return self.pixels.shape[2] == 1


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) shrunk so the longest side is at most ``max_side``, aspect ratio kept,
    never below 1 px a side; a picture already small enough keeps its size."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_image(data: bytes, *, max_side: int = MODEL_MAX_SIDE, max_bytes: int = MAX_UPLOAD_BYTES,
               max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode an uploaded file, or raise ImageLoadError (and nothing else) with the reason.

    data: the file's bytes, untrusted. Returns the picture as loaded (EXIF orientation
    applied, transparency on white, first frame only) and a copy whose longest side is at
    most ``max_side``. Grayscale files stay grayscale, colour files colour; a palette
    picture whose colours are all grays counts as grayscale. ``max_bytes`` and ``max_pixels``
    bound the file and the picture it claims (MAX_UPLOAD_BYTES, MAX_PIXELS). A TypeError or a
    plain ValueError means a wrong call (data not bytes, max_side < 1), never a bad file.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    if len(data) == 0:
        raise ImageLoadError(ErrorCode.EMPTY)
    if len(data) > max_bytes:
        raise ImageLoadError(ErrorCode.TOO_LARGE, size_mb=f"{len(data) / 2**20:.1f}", limit_mb=f"{max_bytes / 2**20:g}")
    limit_mp = f"{max_pixels / 1e6:g}"
    try:
        return _decode(bytes(data), max_side, max_pixels)
    except ImageLoadError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageLoadError(ErrorCode.NOT_IMAGE) from None
    except Image.DecompressionBombError:
        raise ImageLoadError(ErrorCode.TOO_MANY_PIXELS, limit_mp=limit_mp) from None
    except MemoryError:
        raise ImageLoadError(ErrorCode.OUT_OF_MEMORY) from None
    except EOFError:
        raise ImageLoadError(ErrorCode.TRUNCATED) from None
    except OSError as e:
        # Pillow says "image file is truncated", "Truncated File Read", ...; anything else is damage.
        code = ErrorCode.TRUNCATED if "truncat" in str(e).lower() else ErrorCode.CORRUPT
        raise ImageLoadError(code) from None
    except _DECODER_ERRORS:
        raise ImageLoadError(ErrorCode.CORRUPT) from None
    except Exception as e:  # noqa: BLE001 - a type Pillow is not known to raise; still the file's fault
        log.warning("unexpected %s while decoding an upload: %s", type(e).__name__, e)
        raise ImageLoadError(ErrorCode.CORRUPT) from None


def loaded_from_array(image: np.ndarray, *, max_side: int = MODEL_MAX_SIDE, format: str = "PNG") -> LoadedImage:
    """Wrap a picture we already trust (a bundled sample: uint8 [H, W] or [H, W, 3]) as a LoadedImage."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"expected uint8 [H, W] or [H, W, 1 or 3], got {image.dtype} {image.shape}")
    display = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    picture = Image.fromarray(display)
    return LoadedImage(
        pixels=_as_hwc(_resized(picture, max_side)),
        display=np.asarray(_resized(picture, DISPLAY_MAX_SIDE)),
        size=picture.size,
        format=format,
        mode=picture.mode,
        animated=False,
        transparent=False,
        rotated=False,
    )


# ------------------------------------------------------------------ decoding steps
def _decode(data: bytes, max_side: int, max_pixels: int) -> LoadedImage:
    with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as im:
        width, height = im.size
        if width < 1 or height < 1:
            raise ImageLoadError(ErrorCode.CORRUPT)
        if width * height > max_pixels:  # refuse before decoding a single pixel
            raise ImageLoadError(ErrorCode.TOO_MANY_PIXELS, limit_mp=f"{max_pixels / 1e6:g}",
                                 width=width, height=height)
        file_format, file_mode = im.format or "?", im.mode
        animated = _is_animated(im)
        orientation = _orientation(im)
        if file_format in ("JPEG", "MPO") and max(width, height) > DISPLAY_MAX_SIDE:
            # Let the JPEG decoder shrink by 2, 4 or 8 in the DCT: less time, less memory.
            im.draft(None, fit_size(width, height, DISPLAY_MAX_SIDE))
        im.load()
        # Shrink inside the ``with``: the full-size decode is freed as soon as it closes.
        picture = _resized(_to_standard_mode(im, im.has_transparency_data), DISPLAY_MAX_SIDE)
        if orientation in _ORIENTATION_TRANSPOSE:
            picture = picture.transpose(_ORIENTATION_TRANSPOSE[orientation])
            if orientation >= 5:  # these four turn the picture by a quarter
                width, height = height, width
        display, transparent = _to_uint8(picture, file_mode)
    if file_mode in ("P", "PA") and display.ndim == 3 and _all_gray(display):
        display = np.ascontiguousarray(display[:, :, 0])
    pixels = _as_hwc(_resized(Image.fromarray(display), max_side))
    return LoadedImage(pixels=pixels, display=display, size=(width, height), format=file_format, mode=file_mode,
                       animated=animated, transparent=transparent, rotated=orientation in _ORIENTATION_TRANSPOSE)


def _is_animated(im: Image.Image) -> bool:
    """More than one frame. Pillow finds out by looking for a second frame; a damaged one still counts."""
    try:
        return bool(getattr(im, "is_animated", False))
    except _DECODER_ERRORS:
        im.seek(0)
        return True


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 = upright); damaged EXIF data count as upright: the pixels may still be fine."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
        return value if isinstance(value, int) else 1
    except _DECODER_ERRORS:
        return 1


def _to_standard_mode(im: Image.Image, transparent: bool) -> Image.Image:
    """Any of Pillow's modes -> L, LA, RGB, RGBA (8 bits) or I, F (more than 8 bits, scaled later)."""
    mode = im.mode
    gray = mode in _GRAY_MODES or mode.startswith("I;16")
    if mode.startswith("I;16"):
        return im.convert("I")
    if mode in ("I", "F"):
        return im
    target = ("LA" if transparent else "L") if gray else ("RGBA" if transparent else "RGB")
    if mode == target:
        return im  # no copy of a possibly 40-megapixel picture
    try:
        return im.convert(target)
    except ValueError:  # Pillow: "conversion from X to Y not supported"
        raise ImageLoadError(ErrorCode.UNSUPPORTED_MODE, mode=mode) from None


def _resized(im: Image.Image, max_side: int) -> Image.Image:
    """Shrink (Lanczos, aspect ratio kept, at least 1 px a side); LA and RGBA are resampled premultiplied."""
    size = fit_size(im.width, im.height, max_side)
    if size == im.size:
        return im
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _to_uint8(im: Image.Image, file_mode: str) -> tuple[np.ndarray, bool]:
    """L, LA, RGB, RGBA, I or F -> uint8 [H, W] or [H, W, 3], composited on white, and
    whether any pixel was (partly) transparent."""
    if im.mode in ("LA", "RGBA"):
        x = np.asarray(im, dtype=np.float32)
        alpha = x[:, :, -1:] / 255.0
        over_white = x[:, :, :-1] * alpha + _WHITE * (1.0 - alpha)
        out = np.rint(over_white).astype(np.uint8)
        return (out[:, :, 0] if im.mode == "LA" else out), bool((alpha < 1.0).any())
    if im.mode in ("I", "F"):
        return _scale_to_uint8(np.asarray(im, dtype=np.float64), sixteen_bit=file_mode.startswith("I;16")), False
    return np.asarray(im, dtype=np.uint8), False


def _scale_to_uint8(x: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """16-bit samples: 0..65535 -> 0..255 (divide by 257). 32-bit integer or float samples have
    no fixed range: stretch min..max to 0..255 unless they already lie in 0..255."""
    if sixteen_bit:
        x = x / 257.0
    elif x.size and not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if x.size and not sixteen_bit and (x.min() < 0 or x.max() > 255):
        lo, hi = float(x.min()), float(x.max())
        x = (x - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(x)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _all_gray(rgb: np.ndarray) -> bool:
    return bool((rgb[:, :, 0] == rgb[:, :, 1]).all() and (rgb[:, :, 1] == rgb[:, :, 2]).all())


def _as_hwc(im: Image.Image) -> np.ndarray:
    """A gray or RGB picture -> uint8 [H, W, C] with C = 1 or 3."""
    x = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(x[:, :, None] if x.ndim == 2 else x)

