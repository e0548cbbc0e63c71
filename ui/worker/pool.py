"""The denoiser worker pool, the server's side: a fair line of runs (``FairQueue``), one or a few worker
processes (ui.worker.child) that take them in turn, and a ``Ticket`` per run through which the page reads
its steps as they come, sees how many runs are ahead of it, and cancels it.

Why: the reverse page used to run the network in the server process itself, so three students sampling
took the CPU from thirty dragging sliders (issue 24: slider p95 0.9-1.3 s). The workers are separate
processes at a lower priority with one torch thread each; the server only unpickles the frames.

Scheduling: a run holds a worker for at most ``slice_s`` seconds of steps while others wait, then goes
to the back of the line (round robin across sessions); runs shorter than that (the default one) run
in one go, in the order the sessions came. A worker that dies fails the run it held (the page says so)
and is replaced when the next run needs it. One pool per server process, started lazily by
``denoiser_pool`` (``--workers N`` or ``$DIFFUSION_WORKERS`` processes, default 1; 0 runs the network in
the server as before).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

from ui.worker.fair_queue import FairQueue
from ui.worker.protocol import Cancel, Job, JobEnd, Ready, RunSpec, StepMsg, WireState
from ui.worker.spawned import ProcessWorker

WORKERS_ENV = "DIFFUSION_WORKERS"  # worker processes per server process; 0: no worker, the network runs in the server
SLICE_ENV = "DIFFUSION_WORKER_SLICE_S"  # seconds of steps a run keeps a worker before the next session's turn
DEFAULT_SLICE_S = 3.0  # the default run (DDIM, 50 steps, 16 digits) takes ~2 s on one core: it runs in one go
ABANDON_S = 30.0  # a run whose page has not read its steps for this long (its tab is gone) is cancelled
log = logging.getLogger(__name__)

TicketStatus = Literal["queued", "running", "done", "cancelled", "replaced", "failed"]


@dataclass(frozen=True)
class RunEnd:
    """The last event of a ticket: "done" (x_0 reached), "max_steps", "replaced" (a newer run of the same
    session and lane took its place), "died" (its worker process died) or "error" (the step raised)."""

    reason: Literal["done", "max_steps", "replaced", "died", "error"]
    detail: str = ""


class Ticket:
    """One run submitted to the pool. ``next`` gives its events: a StepMsg per step, then one RunEnd."""

    def __init__(self, pool: "WorkerPool", run_id: int, session: Hashable, lane: Hashable, spec: RunSpec,
                 state: WireState, max_steps: int | None, frames: bool, wanted: Callable[[], bool] | None = None) -> None:
        self.pool, self.run_id, self.session, self.lane, self.wanted = pool, run_id, session, lane, wanted
        self.spec, self.state, self.max_steps, self.frames = spec, state, max_steps, frames
        self.status: TicketStatus = "queued"
        self.ahead = 0  # runs that get a worker before this one (while queued)
        self.steps_taken = 0
        self.events: queue.Queue = queue.Queue()
        self.last_read = time.monotonic()

    def next(self, timeout: float) -> StepMsg | RunEnd | None:
        """The next event, or None if none came within ``timeout`` seconds (still waiting or computing)."""
        self.last_read = time.monotonic()
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def waiting(self) -> bool:
        return self.status == "queued"

    @property
    def starting(self) -> bool:
        """No worker is ready yet (the first run after the server started, or after a worker died)."""
        return not self.pool.ready

    def cancel(self) -> None:
        self.pool.cancel(self)


class WorkerPool:
    """``workers`` worker processes fed from one FairQueue. ``make_worker(pool, slot)`` starts one: an
    object with ``send(msg)``, ``results`` (a pipe's receiving end), ``pid``, and the attributes ``ticket``,
    ``alive`` and ``ready`` that the pool keeps (the tests start threads with a fake network through it)."""

    def __init__(self, workers: int = 1, slice_s: float | None = DEFAULT_SLICE_S,
                 make_worker: Callable[["WorkerPool", int], object] = ProcessWorker) -> None:
        self.slice_s, self._make_worker = slice_s, make_worker
        self._lock = threading.RLock()
        self._queue: FairQueue[Ticket] = FairQueue()
        self._workers: list = [None] * max(1, workers)
        self._ids = itertools.count(1)
        self.deaths = 0  # worker processes lost so far
        self.steps_served = 0  # steps the workers have sent

    # ---------------------------------------------------------------- the page's side
    def start(self) -> None:
        """Start every worker that is not running (the page calls this when it opens, so the network is
        loaded by the time Play is pressed)."""
        with self._lock:
            for slot, w in enumerate(self._workers):
                if w is None or not w.alive:
                    self._spawn(slot)

    @property
    def ready(self) -> bool:
        return any(w is not None and w.alive and w.ready for w in self._workers)

    def submit(self, session: Hashable, spec: RunSpec, state: WireState, *, lane: Hashable = "player",
               max_steps: int | None = None, frames: bool = True, wanted: Callable[[], bool] | None = None) -> Ticket:
        """Queue a run; it replaces the run this session has waiting in the same lane, if any. ``wanted()``
        turning False (the student's tab is gone) cancels it, before it starts or at its next step."""
        with self._lock:
            ticket = Ticket(self, next(self._ids), session, lane, spec, state, max_steps, frames, wanted)
            replaced = self._queue.put(session, ticket, lane)
            if replaced is not None:
                replaced.status = "replaced"
                replaced.events.put(RunEnd("replaced"))
            self._dispatch()
            return ticket

    def cancel(self, ticket: Ticket) -> None:
        """Take a waiting run out of the line, or tell its worker to stop it before the next step."""
        with self._lock:
            if ticket.status == "queued":
                self._queue.remove(ticket)
            elif ticket.status == "running":
                for w in self._workers:
                    if w is not None and w.ticket is ticket:
                        w.send(Cancel(ticket.run_id))
            else:
                return
            ticket.status = "cancelled"
            self._update_positions()

    def queued(self) -> list[Ticket]:
        with self._lock:
            return self._queue.order()

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._workers if w is not None and w.alive and w.pid is not None]

    def shutdown(self) -> None:
        with self._lock:
            for w in self._workers:
                if w is not None and w.alive:
                    w.stop()

    # ---------------------------------------------------------------- scheduling (the lock held)
    def _spawn(self, slot: int):
        w = self._workers[slot] = self._make_worker(self, slot)
        threading.Thread(target=self._receive, args=(w,), daemon=True, name=f"denoiser-receiver-{slot}").start()
        return w

    def _dispatch(self) -> None:
        for slot, w in enumerate(self._workers):
            if not len(self._queue):
                break
            if w is None or not w.alive:
                w = self._spawn(slot)
            ticket = self._queue.pop() if w.ticket is None else None
            while ticket is not None and not _wanted(ticket):  # its tab has gone while it waited
                ticket.status = "cancelled"
                ticket = self._queue.pop()
            if ticket is not None:
                ticket.status, w.ticket = "running", ticket
                remaining = None if ticket.max_steps is None else ticket.max_steps - ticket.steps_taken
                w.send(Job(ticket.run_id, ticket.spec, ticket.state, remaining, ticket.frames, self.slice_s))
        self._update_positions()

    def _update_positions(self) -> None:
        busy = sum(1 for w in self._workers if w is not None and w.ticket is not None)
        for i, ticket in enumerate(self._queue.order()):
            ticket.ahead = i + busy

    # ---------------------------------------------------------------- what the workers send
    def _receive(self, w) -> None:
        """Read one worker's messages until its pipe closes; then fail its run and replace it if needed."""
        while True:
            try:
                msg = w.results.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                self._handle(w, msg)
        with self._lock:
            w.alive = False
            ticket, w.ticket = w.ticket, None
            if ticket is not None and ticket.status == "running":
                self.deaths += 1
                log.warning("denoiser worker %s died during run %s", w.pid, ticket.run_id)
                ticket.status = "failed"
                ticket.events.put(RunEnd("died"))
            self._dispatch()

    def _handle(self, w, msg: object) -> None:
        if isinstance(msg, Ready):
            w.ready = True
            return
        ticket = w.ticket
        if ticket is None or ticket.run_id != msg.run_id:
            return  # the end of a run cancelled before it reached the worker
        if isinstance(msg, StepMsg):
            if ticket.status == "running":
                ticket.state = msg.state
                ticket.steps_taken += 1
                self.steps_served += 1
                ticket.events.put(msg)
                if time.monotonic() - ticket.last_read > ABANDON_S or not _wanted(ticket):
                    self.cancel(ticket)  # its tab is gone, or nobody has read it for a long time
            return
        if isinstance(msg, JobEnd):
            w.ticket = None
            if ticket.status == "running":
                if msg.reason == "slice":
                    ticket.status = "queued"
                    self._queue.put(ticket.session, ticket, ticket.lane)  # to the back: the next session's turn
                elif msg.reason == "error":
                    log.warning("run %s failed in the worker: %s", ticket.run_id, msg.detail)
                    ticket.status = "failed"
                    ticket.events.put(RunEnd("error", msg.detail))
                elif msg.reason in ("done", "max_steps"):
                    ticket.status = "done"
                    ticket.events.put(RunEnd(msg.reason))
            self._dispatch()


def _wanted(ticket: Ticket) -> bool:
    try:
        return ticket.wanted is None or bool(ticket.wanted())
    except Exception:  # a failing check must not stop the pool: keep the run
        return True


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def configured_workers(argv: list[str] | None = None) -> int:
    """``--workers N`` after the script's name (``streamlit run app.py -- --workers 2``), else
    $DIFFUSION_WORKERS (a whole number >= 0), else 1."""
    argv = sys.argv if argv is None else argv
    if "--workers" in argv[:-1] and argv[argv.index("--workers") + 1].isdigit():
        return int(argv[argv.index("--workers") + 1])
    value = os.environ.get(WORKERS_ENV, "").strip()
    return int(value) if value.isdigit() else 1


def configured_slice() -> float | None:
    value = os.environ.get(SLICE_ENV, "").strip()
    try:
        return float(value) if value else DEFAULT_SLICE_S
    except ValueError:
        return DEFAULT_SLICE_S


def multiprocessing_available() -> bool:
    """Whether this Python can start a worker process (some sandboxes lack the semaphores multiprocessing needs)."""
    try:
        import multiprocessing
        import multiprocessing.synchronize  # noqa: F401  (fails where sem_open is missing)

        multiprocessing.get_context("spawn").Lock()
        return True
    except (ImportError, OSError, ValueError):
        return False


def denoiser_pool() -> WorkerPool | None:
    """This server process's pool, started at the first call; None when $DIFFUSION_WORKERS is 0 or no
    process can be started here (then the page runs the network in the server, as it did before)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = configured_workers()
            if workers == 0 or not multiprocessing_available():
                return None
            _pool = WorkerPool(workers, configured_slice())
        pool = _pool
    try:
        pool.start()
    except OSError as e:  # no process could be started (limits, sandbox): run in the server
        log.warning("no denoiser worker (%s): the network runs in the server process", e)
        return None
    return pool
