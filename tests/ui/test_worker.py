"""The denoiser worker's queue and pool without a process or a trained network: the fair line
(round robin across sessions, one waiting run per session and lane, places), and the pool driven by
workers in threads (ui.worker.child.serve over a real pipe) with a fake step function: fairness in the
order runs are served, places while waiting, time slices, cancel, replace, and a worker that dies."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from diffusion_core.process.schedules import make_schedule
from diffusion_core.samplers import EpsReverseProcess
from ui.worker import child
from ui.worker.fair_queue import FairQueue
from ui.worker.pool import RunEnd, WorkerPool
from ui.worker.protocol import RunSpec, Shutdown, StepMsg, WireState

SCHEDULE = make_schedule("cosine", 1000)
WAIT_S = 10.0  # generous bound on anything that should take milliseconds, for a loaded machine


# ------------------------------------------------------------------ the line alone
def test_round_robin_across_sessions_and_one_place_per_lane():
    q = FairQueue()
    q.put("ann", "a1", "player")
    q.put("ann", "a2", "compare")  # a second lane: served in the next round, not before bob
    q.put("bob", "b1", "player")
    q.put("cam", "c1", "player")
    assert q.order() == ["a1", "b1", "c1", "a2"] and len(q) == 4
    assert q.put("ann", "a1'", "player") == "a1"  # a new Play replaces the waiting one, in its place
    assert q.order() == ["a1'", "b1", "c1", "a2"] and [q.ahead_of(x) for x in ("a1'", "c1", "a2")] == [0, 2, 3]
    assert q.pop() == "a1'"  # ann served: to the back of the rotation
    q.put("dan", "d1", "player")
    assert q.order() == ["b1", "c1", "a2", "d1"]
    assert q.remove("c1") and not q.remove("c1") and "c1" not in q
    assert [q.pop() for _ in range(4)] == ["b1", "a2", "d1", None]
    with pytest.raises(ValueError):
        q.ahead_of("b1")


def test_a_session_cannot_hold_more_than_one_place_per_lane():
    q = FairQueue()
    for i in range(5):
        q.put("greedy", f"g{i}", "player")
    q.put("other", "o", "player")
    assert q.order() == ["g4", "o"]


# ------------------------------------------------------------------ the pool with workers in threads
class Gate:
    """Holds every step of the runs whose first label is ``held`` until released."""

    def __init__(self) -> None:
        self.open, self.held = threading.Event(), set()

    def wait(self, label: int) -> None:
        if label in self.held:
            assert self.open.wait(WAIT_S)


def fake_build(started: list, gate: Gate, step_s: float = 0.0):
    """A stepper per job with a fake step function (eps_hat = 0.5 x_t) on 2x2 'images'; records the
    first label of every job it starts (the run's name in these tests)."""

    def build(spec: RunSpec, state: WireState):
        started.append(spec.labels[0])

        def eps_fn(x, t):
            gate.wait(spec.labels[0])
            time.sleep(step_s)
            return 0.5 * x

        process = EpsReverseProcess(eps_fn, torch.from_numpy(state.x.copy()), SCHEDULE, sampler=spec.sampler,
                                    steps=spec.steps, eta=spec.eta, generator=torch.Generator())
        process.restore(state.to_state())
        return process

    return build


class ThreadWorker:
    """What the pool needs of a worker, with child.serve in a thread instead of a process."""

    count = 0

    def __init__(self, pool, slot, build) -> None:
        self.inbox = queue.Queue()
        self.results, send = multiprocessing.Pipe(duplex=False)
        self.ticket, self.alive, self.ready = None, True, False
        ThreadWorker.count += 1
        self.pid = 10_000 + ThreadWorker.count
        threading.Thread(target=child.serve, args=(self.inbox, send, build), daemon=True).start()

    def send(self, msg) -> None:
        self.inbox.put(msg)

    def stop(self) -> None:
        self.send(Shutdown())


def make_pool(build, workers: int = 1, slice_s: float | None = None) -> WorkerPool:
    return WorkerPool(workers, slice_s, make_worker=lambda pool, slot: ThreadWorker(pool, slot, build))


def fresh(name: int, steps: int = 3, sampler: str = "ddim", eta: float = 0.0) -> tuple[RunSpec, WireState]:
    """A run called ``name`` (its first label) and its start state: x_T of 1 'image' of 2x2 pixels."""
    spec = RunSpec(labels=(name,), sampler=sampler, steps=steps, eta=eta)
    process = EpsReverseProcess(lambda x, t: 0.5 * x, torch.randn(1, 1, 2, 2, generator=torch.Generator().manual_seed(name)),
                                SCHEDULE, sampler=sampler, steps=steps, eta=eta, generator=torch.Generator().manual_seed(name))
    return spec, WireState.of(process.state())


def drain(ticket, timeout: float = WAIT_S) -> tuple[list[StepMsg], RunEnd]:
    """Every event of a ticket up to its RunEnd."""
    steps, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = ticket.next(0.05)
        if isinstance(event, StepMsg):
            steps.append(event)
        elif event is not None:
            return steps, event
    raise AssertionError(f"ticket {ticket.run_id} did not end ({ticket.status})")


def until(condition, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_runs_are_served_round_robin_and_each_knows_its_place():
    started, gate = [], Gate()
    gate.held.add(0)
    pool = make_pool(fake_build(started, gate))
    blocker = pool.submit("zoe", *fresh(0))  # holds the only worker until the gate opens
    until(lambda: started == [0])
    ann = pool.submit("ann", *fresh(1), lane="player")
    ann_compare = pool.submit("ann", *fresh(2), lane="compare")
    bob = pool.submit("bob", *fresh(3))
    cam = pool.submit("cam", *fresh(4))
    ann_again = pool.submit("ann", *fresh(5), lane="player")  # a second Play: replaces ann's waiting run
    assert drain(ann) == ([], RunEnd("replaced"))
    assert [t.ahead for t in (ann_again, bob, cam, ann_compare)] == [1, 2, 3, 4]  # the running run counts
    assert pool.queued() == [ann_again, bob, cam, ann_compare]
    gate.open.set()
    for t in (blocker, ann_again, bob, cam, ann_compare):
        steps, end = drain(t)
        assert end == RunEnd("done") and len(steps) == 3 and steps[-1].final is not None
    assert started == [0, 5, 3, 4, 2]  # ann's second lane waits for the next round
    assert pool.steps_served == 15


def test_places_count_down_while_waiting():
    started, gate = [], Gate()
    pool = make_pool(fake_build(started, gate, step_s=0.02))
    tickets = [pool.submit(f"s{i}", *fresh(i, steps=5)) for i in range(3)]
    seen = []
    while (event := tickets[2].next(0.01)) is None or not isinstance(event, StepMsg):
        seen.append(tickets[2].ahead)
    assert seen[0] == 2 and 1 in seen and sorted(seen, reverse=True) == seen  # 2, ..., 1, ...: never up


def test_a_long_run_gives_way_after_its_time_slice():
    """Round robin with a quantum: a 60-step run yields the worker every 0.05 s; a short run submitted
    meanwhile finishes long before it, and the long one still ends with every step, in order."""
    started, gate = [], Gate()
    pool = make_pool(fake_build(started, gate, step_s=0.005), slice_s=0.05)
    long = pool.submit("long", *fresh(1, steps=60))
    until(lambda: pool.steps_served >= 1)
    short = pool.submit("short", *fresh(2, steps=2))
    steps, end = drain(short)
    assert end == RunEnd("done") and long.status in ("running", "queued")
    steps, end = drain(long)
    assert end == RunEnd("done") and [s.state.position for s in steps] == list(range(1, 61))
    assert started.count(1) > 1 and started.count(2) == 1  # the long run came back after its slices


def test_a_sliced_run_ends_as_one_uninterrupted_run():
    """Slices hand the state from job to job: the result equals the same stepper run in one go (DDIM with
    eta = 1 draws noise at every step, so a lost or repeated draw would show)."""
    started, gate = [], Gate()
    pool = make_pool(fake_build(started, gate, step_s=0.002), slice_s=0.01)
    spec, state = fresh(7, steps=40, eta=1.0)
    steps, end = drain(pool.submit("a", spec, state))
    one_go = EpsReverseProcess(lambda x, t: 0.5 * x, torch.from_numpy(state.x.copy()), SCHEDULE, steps=40, eta=1.0,
                               generator=torch.Generator())
    one_go.restore(state.to_state())
    while not one_go.done:
        one_go.step()
    assert end == RunEnd("done") and started.count(7) > 1
    assert [s.state.position for s in steps] == list(range(1, 41))
    np.testing.assert_array_equal(steps[-1].state.x, one_go.x.numpy())


def test_cancel_a_waiting_run_and_a_running_one():
    started, gate = [], Gate()
    gate.held.add(1)
    pool = make_pool(fake_build(started, gate))
    running = pool.submit("a", *fresh(1, steps=50))
    until(lambda: started == [1])
    waiting, behind = pool.submit("b", *fresh(2)), pool.submit("c", *fresh(3))
    assert behind.ahead == 2
    waiting.cancel()
    assert waiting.status == "cancelled" and behind.ahead == 1 and pool.queued() == [behind]
    running.cancel()  # Stop: the worker ends it before its next step
    gate.open.set()
    steps, end = drain(behind)
    assert end == RunEnd("done") and started == [1, 3]
    assert running.status == "cancelled" and running.events.qsize() <= 1  # at most the step under way when cancelled


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_that_dies_fails_its_run_and_the_next_run_gets_a_new_one():
    started, gate = [], Gate()
    inner = fake_build(started, gate)

    def dying_build(spec, state):
        if spec.labels[0] == 9:
            raise SystemExit("the worker process is gone")  # not an Exception: ends serve() as a crash would
        return inner(spec, state)

    made = []
    pool = WorkerPool(1, None, make_worker=lambda p, slot: made.append(slot) or ThreadWorker(p, slot, dying_build))
    doomed = pool.submit("a", *fresh(9))
    queued_behind = pool.submit("b", *fresh(2))
    assert drain(doomed) == ([], RunEnd("died"))
    assert pool.deaths == 1 and doomed.status == "failed"
    steps, end = drain(queued_behind)  # the run that waited is served by a new worker
    assert end == RunEnd("done") and len(made) == 2
    steps, end = drain(pool.submit("a", *fresh(3)))
    assert end == RunEnd("done") and len(made) == 2


def test_a_step_that_raises_fails_only_its_run():
    def build(spec, state):
        if spec.labels[0] == 8:
            raise ValueError("bad job")
        return fake_build([], Gate())(spec, state)

    pool = make_pool(build)
    steps, end = drain(pool.submit("a", *fresh(8)))
    assert end.reason == "error" and "bad job" in end.detail
    assert drain(pool.submit("a", *fresh(2)))[1] == RunEnd("done") and pool.deaths == 0


def test_max_steps_takes_one_step():
    pool = make_pool(fake_build([], Gate()))
    steps, end = drain(pool.submit("a", *fresh(1, steps=5), max_steps=1))
    assert end == RunEnd("max_steps") and len(steps) == 1 and steps[0].state.position == 1 and steps[0].final is None


# ------------------------------------------------------------------ the player's loop on the pool
class GatedEps(nn.Module):
    """A stand-in denoiser, eps_hat = 0.5 x_t, whose calls for label 9 wait for ``gate``."""

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))
        self.schedule, self.gate = SCHEDULE, gate

    def forward(self, x, t, labels):
        self.gate.wait(int(labels[0]))
        return self.a * x


def test_the_players_run_waits_its_turn_and_ends_as_the_run_in_process():
    """ui.reverse.remote.run_loop: while another session's run holds the worker the player shows
    "1 run ahead"; then its steps arrive, the page's stepper takes up each state, and the result is the
    in-process run's, frame for frame (DDPM: noise at every step)."""
    from ui.reverse import remote
    from ui.reverse import run as rr

    gate = Gate()
    gate.held.add(9)
    model = GatedEps(gate)
    pool = WorkerPool(1, None, make_worker=lambda p, slot: ThreadWorker(p, slot, lambda spec, state: spec.build(model, state)))
    settings = rr.RunSettings(labels=(1, 2), sampler="ddpm", steps=6, eta=0.0, guidance=2.0, variance="beta_tilde",
                              seed=3, device="cpu")
    other = remote.spec_of(settings, "")
    blocker = pool.submit("other", RunSpec(**{**other.__dict__, "labels": (9, 9)}),
                          WireState.of(settings.start(model).state()))
    run = rr.PlayerRun()
    run.command("play", settings)
    run.start(model)
    places = []

    def on_wait(ticket):
        places.append(ticket.ahead)
        if len(places) == 3:
            gate.open.set()

    assert remote.run_loop(run, pool, "", lambda f: None, on_wait, connected=lambda: True, waiting=lambda: False,
                           poll_s=0.02) == "done"
    assert places[:3] == [1, 1, 1] and drain(blocker)[1] == RunEnd("done")
    here = rr.PlayerRun()
    here.command("play", settings)
    here.start(model)
    rr.run_loop(here, threading.Lock(), lambda f: None, connected=lambda: True, waiting=lambda: False)
    np.testing.assert_array_equal(run.final, here.final)
    assert run.sigmas == here.sigmas and [f.t for f in run.frames] == [f.t for f in here.frames]
    np.testing.assert_array_equal(run.frames[2].noise, here.frames[2].noise)
    assert run.ticket is None and run.status == "done"


def test_pause_cancels_the_job_and_play_goes_on_from_the_last_step_received():
    from ui.reverse import remote
    from ui.reverse import run as rr

    model = GatedEps(Gate())
    pool = WorkerPool(1, None, make_worker=lambda p, slot: ThreadWorker(p, slot, lambda spec, state: spec.build(model, state)))
    settings = rr.RunSettings(labels=(3,), sampler="ddim", steps=20, eta=1.0, guidance=2.0, variance="beta_tilde",
                              seed=4, device="cpu")
    run = rr.PlayerRun()
    run.command("play", settings)
    run.start(model)

    def pause_after_five(frame):
        if frame.index == 4:
            run.command("pause", settings)  # what the button's callback does

    assert remote.run_loop(run, pool, "", pause_after_five, lambda t: None, connected=lambda: True,
                           waiting=lambda: False, poll_s=0.02) == "paused"
    assert run.steps_done == 5 and run.ticket is None and run.process.position == 5
    run.command("play", settings)
    assert remote.run_loop(run, pool, "", lambda f: None, lambda t: None, connected=lambda: True,
                           waiting=lambda: False, poll_s=0.02) == "done"
    here = rr.PlayerRun()
    here.command("play", settings)
    here.start(model)
    rr.run_loop(here, threading.Lock(), lambda f: None, connected=lambda: True, waiting=lambda: False)
    np.testing.assert_array_equal(run.final, here.final)  # eta = 1: a noise draw lost or repeated would show
    assert run.steps_done == 20


def test_a_run_whose_tab_has_gone_is_cancelled_waiting_or_running():
    """``wanted`` (the page passes "is this session's tab still there"): a running run stops at its next
    step once it turns False, and a waiting one is dropped when its turn comes, without running."""
    started, gate = [], Gate()
    gate.held.add(1)
    pool = make_pool(fake_build(started, gate))
    tab = {"open": True}
    running = pool.submit("a", *fresh(1, steps=50), wanted=lambda: tab["open"])
    until(lambda: started == [1])
    waiting = pool.submit("a", *fresh(2), lane="compare", wanted=lambda: tab["open"])
    other = pool.submit("b", *fresh(3))
    tab["open"] = False  # the student closed the tab
    gate.open.set()
    assert drain(other)[1] == RunEnd("done")
    assert running.status == waiting.status == "cancelled" and running.steps_taken <= 2
    assert started == [1, 3]  # the waiting run never reached the worker
