"""Pillow's own regression corpus (crash-, timeout-, oom- files, bombs, truncated files): read_image
decodes each one to a sane picture or refuses it with an ImageLoadError, within seconds and bounded memory."""

from __future__ import annotations

import signal
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from diffusion_core.data.images import ErrorCode, ImageLoadError, LoadedImage, load_image, read_image

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "pillow-hostile-images"
FILES = sorted(p for p in CORPUS.glob("*") if p.is_file() and p.name != "README.md") if CORPUS.is_dir() else []
SECONDS = 5.0  # per file; they all take milliseconds on a quiet machine
PYTHON_MB = 64  # peak of Python and numpy allocations (tracemalloc) per file
RSS_MB = 256  # growth of the process's peak resident memory per file (Pillow's C allocations included)
CLEAR_REFS = Path("/proc/self/clear_refs")

pytestmark = pytest.mark.skipif(not FILES, reason=f"Pillow's hostile images are not at {CORPUS}")


class TookTooLong(BaseException):
    """A BaseException, so that read_image's own `except Exception` cannot swallow it."""


def _alarm(signum, frame):
    raise TookTooLong(f"still decoding after {SECONDS} s")


def _status_mb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise LookupError(field)


def _reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM, the peak resident memory, to the current one."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


@pytest.mark.filterwarnings("ignore")  # Pillow warns about much of this corpus (bad EXIF, bombs); that is fine
@pytest.mark.parametrize("path", FILES, ids=[p.name[:40] for p in FILES])
def test_hostile_file_is_decoded_or_refused(path):
    data = path.read_bytes()
    per_file_rss = _reset_peak_rss()
    rss_before = _status_mb("VmRSS") if per_file_rss else 0
    tracemalloc.start()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, SECONDS)
    start = time.perf_counter()
    try:
        result: LoadedImage | ImageLoadError = read_image(data)
    except ImageLoadError as error:
        result = error
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        elapsed = time.perf_counter() - start
        _, python_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    assert elapsed < SECONDS
    assert python_peak < PYTHON_MB * 2**20, f"{python_peak / 2**20:.0f} MB of Python/numpy memory"
    if per_file_rss:
        grown = _status_mb("VmHWM") - rss_before
        assert grown < RSS_MB, f"peak memory grew by {grown} MB"
    if isinstance(result, ImageLoadError):
        assert isinstance(result.code, ErrorCode)
    else:  # a sane picture: uint8, 1 or 3 channels, small
        h, w, c = result.pixels.shape
        assert result.pixels.dtype == np.uint8 and c in (1, 3) and 1 <= max(h, w) <= 256
        assert result.display.dtype == np.uint8 and result.display.ndim in (2, 3)


# A few files whose fate is known: the tests above would pass even if everything were refused.
KNOWN = {
    "decompression_bomb.gif": ErrorCode.TOO_MANY_PIXELS,
    "truncated_image.png": ErrorCode.TRUNCATED,
    "truncated_jpeg.jpg": ErrorCode.TRUNCATED,
    "timeout-1ee28a249896e05b83840ae8140622de8e648ba9.psd": ErrorCode.NOT_IMAGE,  # PSD is not on the allow-list
    "crash-465703f71a0f0094873a3e0e82c9f798161171b8.sgi": ErrorCode.NOT_IMAGE,
    "timeout-d675703545fee17acab56e5fec644c19979175de.eps": ErrorCode.NOT_IMAGE,  # EPS would run Ghostscript
    "crash-0c7e0e8e11ce787078f00b5b0ca409a167f070e0.tif": ErrorCode.CORRUPT,
}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("name", "code"), KNOWN.items())
def test_known_refusals(name, code):
    if not (CORPUS / name).is_file():
        pytest.skip(f"{name} is not in the corpus")
    with pytest.raises(ImageLoadError) as info:
        load_image((CORPUS / name).read_bytes())
    assert info.value.code is code


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["broken_exif_dpi.jpg", "invalid-exif.jpg", "truncated_end_chunk.png"])
def test_damaged_metadata_does_not_cost_the_picture(name):
    """Bad EXIF or a missing end chunk after complete pixels: the picture itself is intact, so it loads."""
    if not (CORPUS / name).is_file():
        pytest.skip(f"{name} is not in the corpus")
    x = load_image((CORPUS / name).read_bytes())
    assert x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1 and x.std() > 0.01
