"""The denoiser worker: a process of its own (started with "spawn", not "fork": the server has torch
loaded, and a forked copy of its OpenMP threads can hang) that takes jobs off its queue and runs them
step by step with the very ``samplers.ReverseProcess`` the page would run, sending each step back.

It runs at a lower priority (``os.nice(10)``) with one torch thread, so that on a small machine the
server that answers the sliders wins the CPU whenever both want it; the network runs in the cores'
spare time. Between two steps it looks for a ``Cancel`` of its job (Stop, Reset, Pause, a new Play)
and, every second while idle, whether the server that started it is still there.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable

from ui.worker.protocol import Cancel, Job, JobEnd, Ready, RunSpec, Shutdown, StepMsg, WireState

NICE_ENV = "DIFFUSION_WORKER_NICE"  # how much lower the worker's priority is than the server's
NICENESS = 10  # the default: on a machine shared with nothing else, the server's threads go first
IDLE_POLL_S = 1.0  # how often an idle worker checks that its server is alive

Build = Callable[[RunSpec, WireState], object]  # spec, state -> a stepper with step(), done, state()


def load_network(device: str, weights_dir: str):
    """The denoiser from ``weights_dir`` on ``device``, warmed up as the server warms its own
    (``weights.warm_up``), loaded once per worker. Nothing here imports Streamlit (60 MB less per worker)."""
    import torch

    from diffusion_core.models.weights import load_denoiser, warm_up

    model = load_denoiser(torch.device(device), weights_dir)
    warm_up(model)
    return model


def network_build() -> Build:
    """Build steppers on the real network, one loaded model per (device, folder)."""
    models: dict[tuple[str, str], object] = {}

    def build(spec: RunSpec, state: WireState):
        key = (spec.device, spec.weights_dir)
        if key not in models:
            models[key] = load_network(*key)
        return spec.build(models[key], state)

    return build


class _Inbox:
    """The worker's queue, with what was read while looking for a Cancel kept for later."""

    def __init__(self, q) -> None:
        self.q, self.later = q, []
        self.cancelled: set[int] = set()

    def get(self, timeout: float):
        if self.later:
            return self.later.pop(0)
        return self.q.get(timeout=timeout)

    def is_cancelled(self, run_id: int) -> bool:
        while True:
            try:
                msg = self.q.get_nowait()
            except queue.Empty:
                break
            if isinstance(msg, Cancel):
                self.cancelled.add(msg.run_id)
            else:
                self.later.append(msg)
        return run_id in self.cancelled or any(isinstance(m, Shutdown) for m in self.later)


def run_job(job: Job, build: Build, inbox: _Inbox, send: Callable[[object], None]) -> None:
    """Take the job's steps and send each; end with one JobEnd."""
    from ui.reverse.frames import Frame, to_uint8

    try:
        process = build(job.spec, job.state)
        began, taken = time.perf_counter(), 0
        while not process.done:
            if inbox.is_cancelled(job.run_id):
                send(JobEnd(job.run_id, "cancelled"))
                return
            t0 = time.perf_counter()
            step = process.step()
            seconds = time.perf_counter() - t0
            taken += 1
            send(StepMsg(job.run_id, frame=Frame.from_step(step) if job.frames else None, sigma=float(step.sigma),
                         final=to_uint8(step.x_prev) if process.done else None,
                         state=WireState.of(process.state()), seconds=seconds))
            if process.done:
                break
            if job.max_steps is not None and taken >= job.max_steps:
                send(JobEnd(job.run_id, "max_steps"))
                return
            if job.slice_s is not None and time.perf_counter() - began >= job.slice_s:
                send(JobEnd(job.run_id, "slice"))
                return
        send(JobEnd(job.run_id, "done"))
    except Exception as e:  # a bad job must not take the worker down with it: the page shows a message
        send(JobEnd(job.run_id, "error", f"{type(e).__name__}: {e}"))


def serve(inbox_queue, results, build: Build, parent_pid: int | None = None, threads: int = 1) -> None:
    """The worker's loop: announce itself, then run jobs until Shutdown, until the server is gone,
    or until the pipe back to it breaks. ``results`` is the sending end of a pipe (``send``)."""
    inbox = _Inbox(inbox_queue)
    results.send(Ready(pid=os.getpid(), threads=threads))
    try:
        while True:
            try:
                msg = inbox.get(timeout=IDLE_POLL_S)
            except queue.Empty:
                if parent_pid is not None and os.getppid() != parent_pid:
                    return  # the server died without telling us
                continue
            if isinstance(msg, Shutdown):
                return
            if isinstance(msg, Job) and msg.run_id not in inbox.cancelled:
                run_job(msg, build, inbox, results.send)
            elif isinstance(msg, Job):
                results.send(JobEnd(msg.run_id, "cancelled"))
    except (BrokenPipeError, EOFError, OSError):
        return  # the server went away
    finally:
        results.close()


def worker_main(inbox_queue, results, parent_pid: int, threads: int = 1) -> None:
    """The entry point of the spawned process."""
    import torch

    value = os.environ.get(NICE_ENV, "").strip()
    try:
        os.nice(int(value) if value.isdigit() else NICENESS)
    except OSError:  # not allowed here: run at the server's priority
        pass
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    serve(inbox_queue, results, network_build(), parent_pid=parent_pid, threads=threads)
