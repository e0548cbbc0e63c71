"""The denoiser worker as the app runs it: a spawned process with the shipped network. A run through it
gives the digits of the same run in this process (same seed, bit for bit), it runs niced with one torch
thread, Cancel stops it, and when it is killed its run fails with "died" and the next run gets a new
process. One pool for the module: a spawn (torch import, weights) takes a few seconds."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch

from diffusion_core.models.weights import PRETRAINED_DIR, load_denoiser
from ui.reverse.frames import Frame, to_uint8
from ui.worker.child import NICENESS
from ui.worker.pool import RunEnd, WorkerPool
from ui.worker.protocol import RunSpec, StepMsg, WireState

WAIT_S = 120.0  # a spawn on a loaded 2-core machine


@pytest.fixture(scope="module")
def model():
    return load_denoiser(torch.device("cpu"), PRETRAINED_DIR)


@pytest.fixture(scope="module")
def pool():
    pool = WorkerPool(1, slice_s=None)
    pool.start()
    yield pool
    pool.shutdown()


def drain(ticket, timeout: float = WAIT_S):
    steps, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = ticket.next(0.1)
        if isinstance(event, StepMsg):
            steps.append(event)
        elif event is not None:
            return steps, event
    raise AssertionError(f"ticket {ticket.run_id} did not end ({ticket.status})")


def in_process(spec: RunSpec, model, seed: int):
    """The same run stepped here, with the worker's one torch thread (oneDNN's sums then run in the same order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        process = spec.new(model, torch.Generator().manual_seed(seed))
        steps = []
        while not process.done:
            steps.append(process.step())
        return steps
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("sampler", ["ddpm", "dpm_solver++"])
def test_a_run_through_the_worker_gives_the_in_process_digits(pool, model, sampler):
    """DDPM draws noise at every step (the generator's state must travel), DPM-Solver++ remembers the
    previous x0_hat: both, through the worker, give this process's x_0 and frames exactly."""
    spec = RunSpec(labels=(0, 3, 7, -1), sampler=sampler, steps=8, guidance=2.0, weights_dir=str(PRETRAINED_DIR))
    start = spec.new(model, torch.Generator().manual_seed(5))
    steps, end = drain(pool.submit("t", spec, WireState.of(start.state())))
    assert end == RunEnd("done") and len(steps) == 8
    ours = in_process(spec, model, seed=5)
    np.testing.assert_array_equal(steps[-1].state.x, ours[-1].x_prev.numpy())  # bit-identical
    np.testing.assert_array_equal(steps[-1].final, to_uint8(ours[-1].x_prev))
    for got, want in zip(steps, ours, strict=True):
        expected = Frame.from_step(want)
        assert (got.frame.t, got.frame.t_prev, got.sigma) == (expected.t, expected.t_prev, expected.sigma)
        np.testing.assert_array_equal(got.frame.x0_hat, expected.x0_hat)


def test_the_worker_runs_niced_with_one_thread(pool):
    (pid,) = pool.worker_pids()
    assert pid != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
    threads = int(next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("Threads:")))
    assert threads <= 4, threads  # the main thread and one torch thread (2 measured), not one per core


def long_run(model) -> tuple[RunSpec, WireState]:
    spec = RunSpec(labels=tuple(range(10)), sampler="ddim", steps=1000, weights_dir=str(PRETRAINED_DIR))
    return spec, WireState.of(spec.new(model, torch.Generator().manual_seed(0)).state())


def test_cancel_stops_the_run_in_the_worker(pool, model):
    ticket = pool.submit("t", *long_run(model))
    assert isinstance(ticket.next(WAIT_S), StepMsg)
    ticket.cancel()
    short = RunSpec(labels=(1,), sampler="ddim", steps=2, weights_dir=str(PRETRAINED_DIR))
    began = time.monotonic()
    steps, end = drain(pool.submit("u", short, WireState.of(short.new(model, torch.Generator().manual_seed(0)).state())))
    assert end == RunEnd("done") and time.monotonic() - began < 30  # the worker was freed, not busy for 1000 steps
    assert ticket.status == "cancelled" and ticket.steps_taken < 100


def test_a_killed_worker_fails_its_run_and_the_next_run_starts_a_new_one(pool, model):
    ticket = pool.submit("t", *long_run(model))
    assert isinstance(ticket.next(WAIT_S), StepMsg)
    (pid,) = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    steps, end = drain(ticket)
    assert end == RunEnd("died") and ticket.status == "failed" and pool.deaths == 1
    short = RunSpec(labels=(4,), sampler="ddim", steps=3, weights_dir=str(PRETRAINED_DIR))
    steps, end = drain(pool.submit("t", short, WireState.of(short.new(model, torch.Generator().manual_seed(1)).state())))
    assert end == RunEnd("done") and len(steps) == 3
    assert pool.worker_pids() and pool.worker_pids() != [pid]
