"""A denoiser worker as a process of its own, started with "spawn" (the server has torch and its OpenMP
threads loaded: a forked copy can hang), with the queue it reads and the pipe it answers on."""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager

from ui.worker.protocol import Shutdown

_main_lock = threading.Lock()


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Start a process without the script Streamlit is running: Streamlit runs each page as the module
    ``__main__``, and "spawn" re-runs the parent's ``__main__`` file in the child before its target, so
    the worker would run the whole page (and try to start a worker of its own). While the child is
    launched ``__main__`` is an empty module; the page's own code holds its module, not this name."""
    with _main_lock:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


class ProcessWorker:
    """One worker process: ``send`` puts on its queue, ``results`` is the end of its pipe the pool reads."""

    def __init__(self, pool: object, slot: int) -> None:
        """Start the process for the pool's ``slot``; ``pool`` reads ``results`` on a thread of its own."""
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.inbox = ctx.Queue()
        receive, send = ctx.Pipe(duplex=False)
        from ui.worker.child import worker_main

        self.process = ctx.Process(target=worker_main, args=(self.inbox, send, os.getpid(), 1), daemon=True,
                                   name=f"denoiser-worker-{slot}")
        with _main_hidden():
            self.process.start()
        send.close()  # ours: the pipe reads EOF as soon as the worker's end closes (it exited or died)
        self.results, self.slot = receive, slot
        self.ticket = None  # the pool's Ticket this worker runs, kept by the pool
        self.alive, self.ready = True, False

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, msg: object) -> None:
        self.inbox.put(msg)

    def stop(self) -> None:
        self.send(Shutdown())
