"""The pretrained denoiser, loaded once per server process and shared by every session.

Every network call goes through ``SharedDenoiser.lock``, a first-come first-served lock: on a
small CPU machine the students' runs take turns one step at a time instead of all running at
once with too many threads, and no run can starve the others. Torch's thread counts are fixed
once, at the first load: ``DIFFUSION_TORCH_THREADS`` if set, else min(2, number of CPUs - 1), at
least 1: one core stays free for the server and the browser, which draw the live frames.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
import torch

from diffusion_core.models.weights import PRETRAINED_DIR, WARM_UP_BATCH, Denoiser, load_denoiser, warm_up  # noqa: F401

# Where the weights are read from; tests point it at an empty folder to check the error message.
WEIGHTS_DIR = Path(os.environ.get("DIFFUSION_WEIGHTS_DIR", PRETRAINED_DIR))
THREADS_ENV = "DIFFUSION_TORCH_THREADS"

_threads_lock = threading.Lock()
_threads_set = False


class FairLock:
    """A lock that hands itself to waiters in the order they asked (threading.Lock does not: a thread
    that releases and at once asks again often wins, and a looping run could starve the others)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[object] = deque()
        self._held = False

    def __enter__(self) -> "FairLock":
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            while self._held or self._queue[0] is not ticket:
                self._cond.wait()
            self._queue.popleft()
            self._held = True
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


@dataclass
class SharedDenoiser:
    """The model and the lock that serialises its calls (one per device), and how many live runs
    are drawing at the moment (the players share the drawing budget: fewer frames each when many run)."""

    model: Denoiser
    lock: FairLock
    device: torch.device
    live_runs: int = 0
    _count_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def live(self) -> Iterator[None]:
        """Count a live run while the block runs (also when Streamlit stops it with an exception)."""
        with self._count_lock:
            self.live_runs += 1
        try:
            yield
        finally:
            with self._count_lock:
                self.live_runs -= 1


def torch_threads() -> int:
    """The number of intra-op threads to use: $DIFFUSION_TORCH_THREADS, else min(2, CPUs - 1), at least 1.
    On a 2-core machine one thread is faster for the page than two: measured with bench/reverse_page.py,
    the network ran at 15-19 steps/s against 14 with two threads fighting the browser for the cores."""
    value = os.environ.get(THREADS_ENV, "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(2, (os.cpu_count() or 1) - 1))


def configure_threads() -> None:
    """Fix torch's thread counts once per process, before the first network call."""
    global _threads_set
    with _threads_lock:
        if _threads_set:
            return
        torch.set_num_threads(torch_threads())
        try:
            torch.set_num_interop_threads(1)  # the lock already runs one call at a time
        except RuntimeError:  # inter-op work has already started in this process: keep torch's value
            pass
        _threads_set = True


@st.cache_resource(show_spinner=False, max_entries=4)
def _load(device: str, directory: str) -> SharedDenoiser:
    configure_threads()
    model = load_denoiser(torch.device(device), directory)
    warm_up(model)
    return SharedDenoiser(model=model, lock=FairLock(), device=torch.device(device))


def shared_denoiser(device: torch.device) -> SharedDenoiser:
    """The denoiser on ``device``, loaded at the first call in this server process.
    Raises WeightsError (naming the file) when the weights are missing or damaged; that is not cached,
    so the page works as soon as good weights are in place."""
    return _load(str(device), str(WEIGHTS_DIR))
