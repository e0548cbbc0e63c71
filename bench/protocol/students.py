"""What the protocol-level students do: drag a slider, upload a picture, press Play on the reverse page;
what they count (step latencies, errors) and how they come back after their server process dies."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from bench.classroom.students import test_picture
from bench.protocol.session import Closed, Run, Session
from bench.protocol.widgets import Widget, slider_value

LANGS = ("vi", "en")
# The class drags one slider per page (the one a student moves most: t, or the page's first); --alone
# steps every slider of the pages it opens.
MAIN_SLIDER = {
    "Gaussian": "gaussian_mu",
    "Forward_chain": "forward_chain_t",
    "Closed_form": "closed_form_t",
    "Your_image": "your_image_t",
    "Flow_matching": "flow_t_path",
    "Continuous_time": "continuous_t",
    "Few_steps": "fewstep_cloud_k",  # a segmented control: the page has no slider
    "Latent_diffusion": "latent_2d_guidance",
}
PAGES = tuple(MAIN_SLIDER)
UPLOAD_PAGE, UPLOADER, UPLOAD_SLIDER = "Your_image", "your_image_upload", "your_image_t"

# The reverse page (pages/7_Reverse_process.py, ui/reverse/): Play and Reset are buttons of the player's
# fragment; a run has ended when its result grid, the keyed container below, is on the page (drawn only
# when the run's status is "done"). The page takes its steps inside its own script runs and reruns
# itself (st.rerun, or run_every/auto_rerun while it waits for a worker), so the student follows the
# page's runs until that container appears, not a fixed number of runs.
REVERSE_PAGE, PLAY, RESET, RESULT = "Reverse_process", "reverse_play", "reverse_reset", "reverse_result"


def sampling_done(s: Session) -> bool:
    """The reverse page shows a finished run's result (change here if the page marks its end otherwise)."""
    return RESULT in s.block_keys()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Results:
    """What a class measured. Times in seconds."""

    steps: dict[str, list[float]] = field(default_factory=dict)  # "page · slider" -> send -> finished + media
    answers: dict[str, list[float]] = field(default_factory=dict)  # "page · slider" -> send -> script_finished
    uploads: list[float] = field(default_factory=list)  # file chosen -> the run with it finished + media
    runs: list[float] = field(default_factory=list)  # Play -> result
    runs_started: int = 0
    opens: list[float] = field(default_factory=list)
    reconnects: list[float] = field(default_factory=list)  # socket closed -> page open again
    errors: dict[str, Counter] = field(default_factory=lambda: {"elsewhere": Counter(), "on the killed replica": Counter()})
    notes: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)  # students: drag / upload / sample
    replicas: Counter = field(default_factory=Counter)  # HAProxy's affinity cookie of each student's first open

    def error(self, where: str, kind: str, note: str = "") -> None:
        self.errors[where][kind] += 1
        if note and len(self.notes) < 50:
            self.notes.append(f"{kind}: {note}"[:300])

    def n_errors(self, where: str | None = None) -> int:
        return sum(sum(c.values()) for w, c in self.errors.items() if where in (None, w))

    def n_steps(self) -> int:
        return sum(len(v) for v in self.steps.values())


class Clock:
    """The class's time: students open their pages, wait for ``go``, then work until ``deadline``."""

    def __init__(self) -> None:
        self.deadline = float("inf")
        self.go = asyncio.Event()
        self.opened = 0
        self.killed: str | None = None  # the replica killed mid-class (its cookie value)


class Student:
    """A tab and what it counts. ``where()`` says whose errors these are once a replica is killed."""

    def __init__(self, base: str, lang: str, results: Results, clock: Clock, timeout: float) -> None:
        self.s = Session(base, lang, timeout)
        self.results, self.clock, self.timeout = results, clock, timeout
        self.replica_at_kill: str | None = None

    def where(self) -> str:
        killed = self.clock.killed
        return "on the killed replica" if killed and self.replica_at_kill == killed else "elsewhere"

    def account(self, run: Run, what: str) -> bool:
        """Count a run's errors; True if it finished cleanly (no exception element, media all 200)."""
        ok = True
        if run.status is None:
            self.results.error(self.where(), "time-outs", f"{what}: no script_finished within {self.timeout:.0f} s")
            ok = False
        elif run.status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
            self.results.error(self.where(), "exceptions", f"{what}: compile error")
            ok = False
        for e in run.exceptions:
            self.results.error(self.where(), "exceptions", f"{what}: {e}")
            ok = False
        for e in run.media_errors:
            self.results.error(self.where(), "media", f"{what}: {e}")
            ok = False
        return ok

    async def open(self, page: str, count: bool = True) -> bool:
        start = time.monotonic()
        try:
            run = await self.s.open(page)
        except Closed:
            raise
        except Exception as e:
            self.results.error(self.where(), "open failed", f"{page}: {type(e).__name__}: {e}")
            return False
        ok = self.account(run, f"open {page}")
        if ok and count:
            self.results.opens.append(time.monotonic() - start)
            if self.s.replica:
                self.results.replicas[self.s.replica] += 1
        return ok

    async def reconnect(self) -> None:
        """The socket closed: count it, then do what the browser does (ping the server, open a new socket
        with the last session id, rerun the page with the widget states it holds) until the page is back."""
        closed_at = self.s.closed_at or time.monotonic()
        self.results.error(self.where(), "closed sockets", f"code {self.s.close_code}")
        delay = 0.25
        while time.monotonic() < self.clock.deadline + 60:
            await asyncio.sleep(delay)
            delay = min(2 * delay, 2.0)
            try:
                await self.s.http.close()
                await self.s.connect()
                run = await self.s.rerun()
            except Exception:
                continue
            if run.status is not None:
                self.results.reconnects.append(time.monotonic() - closed_at)
                self.account(run, "reopen")
                return
        self.results.error(self.where(), "not reconnected")

    async def close(self) -> None:
        await self.s.close()

    # ------------------------------------------------------------------ steps
    async def step(self, w: Widget, value: float | str, label: str) -> Run:
        run = await self.s.set_slider(w, value)
        if self.account(run, f"{label} -> {value}"):
            self.results.steps.setdefault(label, []).append(run.seconds)
            self.results.answers.setdefault(label, []).append(run.finished - run.sent)
        return run


def grid_of(w: Widget) -> list[float | str]:
    """Every position of a slider (a select_slider's and a segmented control's options)."""
    lo, hi, step = w.range
    if w.kind != "slider":
        return w.options
    n = int(round((hi - lo) / step)) + 1 if step > 0 else 1
    return [round(lo + i * step, 10) for i in range(n)]


class Walker:
    """A slider walked one keyboard step at a time from a random start, turning round at the ends (and
    now and then on a whim), as a student scrubbing it."""

    def __init__(self, w: Widget, position: float, rng: random.Random, scattered: bool = True) -> None:
        self.grid = grid_of(w)
        index = int(position) if w.kind != "slider" else min(range(len(self.grid)),
                                                                key=lambda i: abs(self.grid[i] - position))
        self.i = rng.randrange(len(self.grid)) if scattered else index
        self.direction, self.rng = rng.choice((-1, 1)), rng

    def start(self) -> float | str:
        return self.grid[self.i]

    def next(self) -> float | str:
        if len(self.grid) == 1:
            return self.grid[0]
        if self.rng.random() < 0.1:
            self.direction = -self.direction
        if not 0 <= self.i + self.direction < len(self.grid):
            self.direction = -self.direction
        self.i += self.direction
        return self.grid[self.i]


async def drag_for_a_while(st: Student, page: str, key: str, rng: random.Random, think: tuple[float, float],
                           steps: int | None = None, scattered: bool = True) -> None:
    """Step slider ``key`` of ``page`` until the class ends (or ``steps`` times), reconnecting if need be."""
    label = f"{page} · {key}"
    w = st.s.widget(key)
    if w is None:
        st.results.error(st.where(), "no such slider", label)
        return
    walker = Walker(w, slider_value(st.s.values.get(w.id), w), rng, scattered)
    value = walker.start() if scattered else walker.next()
    done = 0
    while time.monotonic() < st.clock.deadline and (steps is None or done < steps):
        try:
            await st.step(w, value, label)
        except Closed:
            await st.reconnect()
        done += 1
        w = st.s.widget(key) or w  # its proto after the run (set_value, new bounds)
        value = walker.next()
        await asyncio.sleep(rng.uniform(*think))


async def dragger(st: Student, page: str, rng: random.Random, think: tuple[float, float]) -> None:
    await st.open(page)
    st.clock.opened += 1
    await st.clock.go.wait()
    await drag_for_a_while(st, page, MAIN_SLIDER[page], rng, think)


async def uploader(st: Student, index: int, rng: random.Random, think: tuple[float, float]) -> None:
    await st.open(UPLOAD_PAGE)
    st.clock.opened += 1
    await st.clock.go.wait()
    n = 0
    while time.monotonic() < st.clock.deadline:
        start = time.monotonic()
        try:
            run = await st.s.upload(UPLOADER, f"photo_{index}_{n}.png", test_picture(1000 * index + n))
            if st.account(run, "upload"):
                st.results.uploads.append(time.monotonic() - start)
        except Closed:
            await st.reconnect()
        except Exception as e:
            st.results.error(st.where(), "upload failed", f"{type(e).__name__}: {e}")
        n += 1
        await drag_for_a_while(st, UPLOAD_PAGE, UPLOAD_SLIDER, rng, think, steps=6)


async def follow_until(st: Student, done, limit: float) -> bool:
    """Follow the page's own runs (st.rerun chains, the frontend's auto reruns) until ``done(session)``
    after a finished run; False if it did not come within ``limit`` seconds."""
    s, end = st.s, time.monotonic() + limit
    while time.monotonic() < end:
        run = s.run
        await s.wait(run, timeout=max(0.1, min(st.timeout, end - time.monotonic())))
        if run.status is not None and not st.account(run, "sampling"):
            return False
        if done(s):
            return True
        if run.status is None:
            if time.monotonic() - s.last_message > st.timeout:
                return False  # nothing from the server for a whole timeout: the run hangs
            continue  # still running (the page takes its steps inside its run): wait on
        if s.auto_reruns:  # the browser reruns a run_every fragment on its own clock
            fid, every = next(iter(s.auto_reruns.items()))
            await asyncio.sleep(every)
            await s.rerun(fragment_id=fid, wait=False, is_auto_rerun=True)
        else:
            s.follow()
    return False


async def sampler(st: Student, rng: random.Random, run_limit: float) -> None:
    await st.open(REVERSE_PAGE)
    st.clock.opened += 1
    await st.clock.go.wait()
    while time.monotonic() < st.clock.deadline:
        try:
            start = time.monotonic()
            if await st.s.press(PLAY) is None:
                st.results.error(st.where(), "no Play button")
                return
            st.results.runs_started += 1
            if await follow_until(st, sampling_done, run_limit):  # a run that started must finish, even late
                st.results.runs.append(time.monotonic() - start)
            else:
                st.results.error(st.where(), "time-outs", f"Play: no result within {run_limit:.0f} s")
            reset = await st.s.press(RESET)
            if reset is not None:
                await st.s.wait(reset)
                st.account(reset, "Reset")
        except Closed:
            await st.reconnect()
        await asyncio.sleep(rng.uniform(1.0, 3.0))


async def guarded(coro, st: Student, what: str) -> None:
    try:
        await coro
    except Exception as e:  # a student whose tab broke: count it, keep the class going
        st.results.error(st.where(), "students stopped", f"{what}: {type(e).__name__}: {e}")
        log(f"{what} stopped: {type(e).__name__}: {str(e)[:200]}")
