"""The reverse page's runs on the denoiser worker (ui.worker): the player's steps, its Step button, and
the comparison's and SDEdit's runs to the end, each submitted to the fair queue and read back step by
step, with the student's place in the line shown while they wait.

The page keeps its own ``ReverseProcess`` of each run (built here without any network call: it only
draws x_T); the worker runs the steps and sends back, with every frame, the stepper's state after it,
which the page's twin takes up (``restore``). So Pause keeps the last step received, Play goes on from
there (on any worker, a new one too), and nothing the page shows depends on where the steps ran. When
there is no pool (``ui.worker.pool.denoiser_pool`` returned None: $DIFFUSION_WORKERS=0, or no process can
be started), these functions run the steps in the server as the page always did (``ui.reverse.run``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from diffusion_core.samplers import ReverseProcess
from ui.reverse import run as rr
from ui.script_run import rerun_waiting, session_connected
from ui.worker.pool import RunEnd, Ticket, WorkerPool
from ui.worker.protocol import RunSpec, StepMsg, WireState

POLL_S = 0.25  # how often a waiting page redraws its place in the line (and looks for clicks)
NOTICES = {"died": "worker_died", "error": "worker_error"}  # RunEnd reason -> the key of the page's message


class WorkerFailed(Exception):
    """The worker died or failed during a run; ``notice`` is the key of the page's message."""

    def __init__(self, notice: str) -> None:
        super().__init__(notice)
        self.notice = notice


def session_key() -> str:
    """The student's session: the unit of fairness in the queue ("local" outside a server)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return getattr(ctx, "session_id", None) or "local"


def session_watch() -> Callable[[], bool] | None:
    """A check, callable from any thread, that this script's browser tab is still there (None outside a
    server): the pool cancels a run whose tab has gone, also when the script that read it was stopped."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not runtime.exists():
        return None
    instance, session_id = runtime.get_instance(), ctx.session_id
    return lambda: instance.is_active_session(session_id) is not False


def spec_of(settings: rr.RunSettings, weights_dir: str) -> RunSpec:
    """The worker's description of the player's run; ``RunSettings.start`` builds the same process."""
    return RunSpec(labels=settings.labels, sampler=settings.sampler, steps=settings.steps, eta=settings.eta,
                   guidance=settings.guidance, variance=settings.variance, device=settings.device,
                   weights_dir=weights_dir)


def receive(run: rr.PlayerRun, msg: StepMsg) -> rr.Frame:
    """Record a step the worker took: the page's stepper takes up the state after it."""
    run.process.restore(msg.state.to_state())
    return run.record(msg.frame, msg.final, msg.seconds)


def _fail(run: rr.PlayerRun, end: RunEnd) -> None:
    """The worker died or the step failed: the run pauses at its last step received, with a message;
    Play goes on from there (on a new worker)."""
    run.ticket, run.status, run.notice = None, "paused", NOTICES.get(end.reason, "worker_error")


def _submit(run: rr.PlayerRun, pool: WorkerPool, weights_dir: str, max_steps: int | None = None) -> Ticket:
    run.ticket = pool.submit(session_key(), spec_of(run.settings, weights_dir), WireState.of(run.process.state()),
                             lane="player", max_steps=max_steps, wanted=session_watch())
    return run.ticket


def run_loop(run: rr.PlayerRun, pool: WorkerPool, weights_dir: str, on_step: Callable[[rr.Frame], None],
             on_wait: Callable[[Ticket], None], *, connected: Callable[[], bool] = session_connected,
             waiting: Callable[[], bool] = rerun_waiting, poll_s: float = POLL_S) -> rr.RunEnd | str:
    """``ui.reverse.run.run_loop`` on the worker: while the run is "running", submit it (once), draw each
    step as it comes (``on_step``) and, while none comes, the place in the line (``on_wait``; both are
    where a click outside a fragment interrupts). Ends as run_loop does, or "failed" (the worker died or
    failed: the run is paused with ``run.notice`` set). "interrupted" leaves the job running: the next
    script run reads on where this one stopped."""
    while run.status == "running":
        if not connected():
            run.status = "paused"
            run.drop_ticket()
            return "disconnected"
        if waiting():
            return "interrupted"
        if run.ticket is not None and run.ticket.status in ("cancelled", "replaced") and run.ticket.events.empty():
            run.ticket = None  # the pool cancelled it while nobody read (the student was on another page)
        ticket = run.ticket if run.ticket is not None else _submit(run, pool, weights_dir)
        event = ticket.next(poll_s)
        if event is None:
            on_wait(ticket)
        elif isinstance(event, StepMsg):
            on_step(receive(run, event))
        elif event.reason in NOTICES:
            _fail(run, event)
            return "failed"
        else:  # replaced or ended without its last step (cannot happen for the player's own ticket): submit again
            run.ticket = None
    return run.status  # type: ignore[return-value]


def take_pending_step(run: rr.PlayerRun, pool: WorkerPool | None, weights_dir: str, lock: AbstractContextManager,
                      on_wait: Callable[[Ticket], None], poll_s: float = POLL_S) -> rr.Frame | None:
    """The step asked for with the Step button: one step on the worker (``pool``), or here without one."""
    if pool is None:
        return run.take_pending_step(lock)
    if not (run.pending_step and run.process is not None):
        return None
    run.pending_step = False
    ticket = _submit(run, pool, weights_dir, max_steps=1)
    while True:
        if not session_connected():
            run.drop_ticket()
            return None
        event = ticket.next(poll_s)
        if event is None:
            on_wait(ticket)
        elif isinstance(event, StepMsg):
            run.ticket = None  # its end (max_steps) follows; nothing more to read
            return receive(run, event)
        else:
            _fail(run, event)
            return None


def run_to_end(process: ReverseProcess, spec: RunSpec, pool: WorkerPool | None, lock: AbstractContextManager,
               on_step: Callable[[int, int], None], on_wait: Callable[[Ticket], None], *, lane: str,
               connected: Callable[[], bool] = session_connected, poll_s: float = POLL_S) -> tuple[torch.Tensor, float]:
    """``ui.reverse.run.run_to_end`` on the worker: ``process`` is the page's twin of ``spec`` (only its
    start is read). Returns x_0 and the worker's seconds; raises rr.Disconnected when the tab closes and
    WorkerFailed when the worker dies or fails. Without a pool, runs here under ``lock``."""
    if pool is None:
        return rr.run_to_end(process, lock, on_step, connected=connected)
    total, seconds, x0 = len(process.timesteps), 0.0, process.x
    ticket = pool.submit(session_key(), spec, WireState.of(process.state()), lane=lane, frames=False,
                         wanted=session_watch())
    try:
        while True:
            if not connected():
                raise rr.Disconnected
            event = ticket.next(poll_s)
            if event is None:
                on_wait(ticket)
            elif isinstance(event, StepMsg):
                seconds += event.seconds
                x0 = torch.from_numpy(event.state.x)
                on_step(event.state.position, total)
                if event.state.position == total:
                    return x0, seconds
            else:
                raise WorkerFailed(NOTICES.get(event.reason, "worker_error"))
    finally:
        ticket.cancel()  # a no-op once it is done; otherwise (a click, a closed tab) the worker stops
