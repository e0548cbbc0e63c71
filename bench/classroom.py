"""A class on one server: students in Chromium (Playwright, one browser, a context per student) against a
real `streamlit run app.py` over loopback, directly or through HAProxy (deploy/serve.py).

    python -m bench.classroom                                   # class of 30 for 180 s, one process
    python -m bench.classroom --drag 4 --upload 1 --sample 1 --duration 30      # a quick look
    python -m bench.classroom --processes 1 2                   # through HAProxy: one process, then two
    python -m bench.classroom --processes 0 --classes 10 20 30  # where the class breaks

``--processes 0`` is `streamlit run` alone (no balancer); N >= 1 is N processes behind HAProxy.
Prints Markdown tables on stdout (progress on stderr). For each server layout:

1. One student alone: every slider of pages 1-4, keyboard steps (half in Vietnamese, half in English),
   each timed in the page from the key press to the last change of the picture that slider drives
   (an image's src, a plotly chart's paths), once the script has finished: "input -> new picture".
2. The class, for ``--duration`` seconds: ``--drag`` students stepping the main slider of pages 1-4
   (a page and language each, round robin), ``--upload`` students uploading pictures on page 4 (then
   stepping its slider), ``--sample`` students pressing Play on the reverse page (default run) again and
   again. Per page: median / p95 input -> new picture; upload -> new picture; Play -> result.
   Errors: exception boxes on a page, steps with no new picture within ``--timeout`` s, websockets
   that closed during the run (disconnects). Server CPU (processes and HAProxy, % of one core) and
   resident memory over time, read from /proc; the browsers' CPU (Chromium shares the 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import statistics
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from deploy.serve import Cluster, free_port, start_replica, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ANY_IMAGE = '[data-testid="stMain"] [data-testid="stImage"]'
LANGS = ("vi", "en")
TICK = os.sysconf("SC_CLK_TCK")

# (page path, slider key, what it redraws: a CSS selector of the picture to watch)
SLIDERS = {
    "Gaussian": [("gaussian_mu", ".st-key-gaussian_fig_1d"), ("gaussian_sigma", ".st-key-gaussian_fig_1d"),
                 ("gaussian_n", ".st-key-gaussian_fig_1d"), ("gaussian_mu1", ".st-key-gaussian_fig_2d"),
                 ("gaussian_mu2", ".st-key-gaussian_fig_2d"), ("gaussian_sigma_2d", ".st-key-gaussian_fig_2d")],
    "Forward_chain": [("forward_chain_t", ANY_IMAGE), ("forward_chain_T", ".st-key-forward_chain_abar"),
                      ("forward_chain_row", ".st-key-forward_chain_paths"),
                      ("forward_chain_col", ".st-key-forward_chain_paths")],
    "Closed_form": [("closed_form_t", ANY_IMAGE), ("closed_form_T", ANY_IMAGE)],
    "Your_image": [("your_image_t", ANY_IMAGE)],
}
PAGES = tuple(SLIDERS)  # the class drags the sliders of pages 1-4
# The lesson pages after them: the student alone can step their t slider too (--pages).
SLIDERS |= {"Posterior": [("posterior_t", ANY_IMAGE)], "Bound": [("bound_t", ANY_IMAGE)],
            "Playground_2D": [("playground_t_1000", ".st-key-playground_field_exact")]}

# In the page: the time of the last key press, and of every change inside the watched picture after it.
OBSERVE = """() => {
  if (window.__b) return;
  window.__b = {key: 0, changes: [], target: 'none'};
  document.addEventListener('keydown', () => { window.__b.key = performance.now(); window.__b.changes = []; window.__ws = []; }, true);
  new MutationObserver(ms => {
    for (const m of ms) {
      const el = m.target.nodeType === 1 ? m.target : m.target.parentElement;
      if (el && el.closest(window.__b.target)) { window.__b.changes.push(performance.now()); break; }
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src', 'd']});
}"""
# Before the app's code: the time each websocket message reaches the page (the server's answer to a step).
TIME_MESSAGES = """(() => {
  const Native = window.WebSocket;
  window.__ws = [];
  function Timed(...args) {
    const ws = new Native(...args);
    ws.addEventListener('message', () => window.__ws.push(performance.now()));
    return ws;
  }
  Timed.prototype = Native.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Timed[k] = Native[k];
  window.WebSocket = Timed;
})();"""
# After a settled step: [input -> last picture change, input -> the last message received before that change].
STEP_TIMES = """() => { const b = window.__b, last = b.changes[b.changes.length - 1];
  const before = window.__ws.filter(t => t > b.key && t <= last);
  return [last - b.key, before.length ? before[before.length - 1] - b.key : NaN]; }"""
SETTLED = """(quiet) => { const b = window.__b; return b.changes.length > 0 && !!document.querySelector('%s')
  && performance.now() - b.changes[b.changes.length - 1] > quiet; }""" % IDLE


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ /proc
def proc_stat(pid: int) -> tuple[int, int]:
    """(ppid, utime + stime in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_tree() -> dict[int, tuple[int, int]]:
    tree = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                tree[int(p.name)] = proc_stat(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return tree


def descendants(root: int, tree: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in tree.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = set(), [root]
    while stack:
        for c in children.get(stack.pop(), []):
            out.add(c)
            stack.append(c)
    return out


class Monitor:
    """Samples, once a second, the CPU ticks and RSS of the server processes and the CPU ticks of the
    browser (every process below this one that is not a server)."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids
        self.samples: list[tuple[float, float, float, float]] = []  # (t, server ticks, browser ticks, rss MB)
        self._task: asyncio.Task | None = None

    def sample(self) -> tuple[float, float, float, float]:
        tree = process_tree()
        server = set(self.server_pids)
        for pid in self.server_pids:
            server |= descendants(pid, tree)
        browser = descendants(os.getpid(), tree) - server
        s_ticks = sum(tree[p][1] for p in server if p in tree)
        b_ticks = sum(tree[p][1] for p in browser if p in tree)
        rss = 0.0
        for p in self.server_pids:
            try:
                rss += rss_mb(p)
            except OSError:
                pass
        return time.monotonic(), s_ticks, b_ticks, rss

    async def _run(self) -> None:
        while True:
            self.samples.append(self.sample())
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self.samples = [self.sample()]
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.samples.append(self.sample())
        if self._task:
            self._task.cancel()


# ------------------------------------------------------------------ results
@dataclass
class Results:
    steps: dict[str, list[float]] = field(default_factory=dict)  # label -> ms
    uploads: list[float] = field(default_factory=list)  # ms
    runs: list[float] = field(default_factory=list)  # s, Play -> result
    runs_started: int = 0
    opens: list[float] = field(default_factory=list)  # s, goto -> idle
    rss_before: float = 0.0  # MB, before the students arrived
    replies: dict[str, list[float]] = field(default_factory=dict)  # label -> ms, input -> the picture's message
    cpu: dict[str, list[int]] = field(default_factory=dict)  # label -> [server ticks, browser ticks, steps]
    exceptions: int = 0
    timeouts: int = 0
    disconnects: int = 0
    dropped_keys: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, ms: float) -> None:
        self.steps.setdefault(label, []).append(ms)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "–"


def fmt_ms(values: list[float]) -> str:
    if not values:
        return "| 0 | – | – | – |"
    return f"| {len(values)} | {statistics.median(values):.0f} | {pct(values, 95):.0f} | {max(values):.0f} |"


# ------------------------------------------------------------------ a student
class Clock:
    """The class's time: students open their pages, wait for ``go``, then work until ``deadline``."""

    def __init__(self) -> None:
        self.deadline = float("inf")
        self.go = asyncio.Event()
        self.opened = 0


class Student:
    def __init__(self, browser, url: str, lang: str, results: Results, clock: Clock, timeout_s: float) -> None:
        self.browser, self.url, self.lang, self.results, self.clock = browser, url, lang, results, clock
        self.timeout_ms = timeout_s * 1000
        self.context = self.page = None
        self.closing = False

    @property
    def deadline(self) -> float:
        return self.clock.deadline

    async def open(self, path: str) -> None:
        if self.context is None:
            self.context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
            await self.context.add_init_script(TIME_MESSAGES)
            self.page = await self.context.new_page()
            self.page.on("websocket", lambda ws: ws.on("close", lambda _: self._closed()))
        start = time.monotonic()
        await self.page.goto(f"{self.url}/{path}?lang={self.lang}", timeout=self.timeout_ms * 4)
        ready = f".st-key-{SLIDERS[path][0][0]} input[type=range]" if path in SLIDERS else ".st-key-reverse_play"
        await self.page.wait_for_selector(ready, timeout=self.timeout_ms * 4)
        await self.page.wait_for_selector(IDLE, timeout=self.timeout_ms * 4)
        await self.page.wait_for_timeout(500)  # let the widgets mount: a key press on a mounting slider is lost
        await self.page.evaluate(OBSERVE)
        self.results.opens.append(time.monotonic() - start)
        self.clock.opened += 1
        await self.clock.go.wait()

    def _closed(self) -> None:
        if not self.closing:
            self.results.disconnects += 1

    async def close(self) -> None:
        self.closing = True
        if self.context is not None:
            await self.context.close()

    async def check_exceptions(self) -> None:
        n = await self.page.locator('[data-testid="stException"]').count()
        if n:
            self.results.exceptions += 1
            text = await self.page.locator('[data-testid="stException"]').first.inner_text()
            self.results.notes.append(text[:300])

    async def step(self, key: str, target: str, direction: str, label: str) -> str:
        """One keyboard step of slider ``key``; records input -> new picture. Returns the direction that moved."""
        slider = self.page.locator(f".st-key-{key} input[type=range]").first
        await self.page.evaluate(f"() => {{ window.__b.target = {target!r}; }}")
        before = await slider.get_attribute("aria-valuetext")
        await slider.press(direction)
        if await slider.get_attribute("aria-valuetext") == before:  # at the end of its range: turn round
            direction = "ArrowLeft" if direction == "ArrowRight" else "ArrowRight"
            await slider.press(direction)
            if await slider.get_attribute("aria-valuetext") == before:
                self.results.dropped_keys += 1
                self.results.notes.append(f"{key} did not move from {before}")
                return direction
        try:
            await self.page.wait_for_function(SETTLED, arg=150, timeout=self.timeout_ms, polling=50)
        except Exception:
            self.results.timeouts += 1
            self.results.notes.append(f"{key}: no new picture within {self.timeout_ms / 1000:.0f} s")
            await self.check_exceptions()
            return direction
        ms, reply = await self.page.evaluate(STEP_TIMES)
        self.results.add(label, ms)
        if reply == reply:  # not NaN
            self.results.replies.setdefault(label, []).append(reply)
        await self.check_exceptions()
        return direction

    async def drag(self, key: str, target: str, steps: int, label: str, think: tuple[float, float]) -> None:
        direction = "ArrowRight"
        if not await self.page.locator(f".st-key-{key} input[type=range]").count():
            self.results.notes.append(f"no slider {key} on the page")
            return
        for i in range(steps):
            if time.monotonic() > self.deadline:
                return
            if i == steps // 2:
                direction = "ArrowLeft" if direction == "ArrowRight" else "ArrowRight"
            direction = await self.step(key, target, direction, label)
            await asyncio.sleep(random.uniform(*think))


def test_picture(seed: int) -> bytes:
    """A 240 x 180 photo-like PNG (gradients and a disc), different for every seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:180, 0:240]
    c = rng.uniform(0, 255, 3)
    disc = ((x - rng.uniform(60, 180)) ** 2 + (y - rng.uniform(40, 140)) ** 2 < rng.uniform(20, 60) ** 2)
    rgb = np.stack([x / 239 * c[0], y / 179 * c[1], (1 - x / 239) * c[2]], axis=-1) + 80 * disc[..., None]
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


async def dragger(s: Student, page: str, think: tuple[float, float]) -> None:
    await s.open(page)
    key, target = SLIDERS[page][0]
    while time.monotonic() < s.deadline:
        await s.drag(key, target, 10, page, think)


async def uploader(s: Student, index: int, think: tuple[float, float]) -> None:
    await s.open("Your_image")
    n = 0
    while time.monotonic() < s.deadline:
        await s.page.evaluate(f"() => {{ window.__b.target = {ANY_IMAGE!r}; window.__b.changes = []; "
                              "window.__b.key = performance.now(); }")
        await s.page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files=[{
            "name": f"photo_{index}_{n}.png", "mimeType": "image/png", "buffer": test_picture(1000 * index + n)}])
        try:
            await s.page.wait_for_function(SETTLED, arg=300, timeout=s.timeout_ms, polling=50)
            s.results.uploads.append(await s.page.evaluate(
                "() => window.__b.changes[window.__b.changes.length - 1] - window.__b.key"))
        except Exception:
            s.results.timeouts += 1
        await s.check_exceptions()
        n += 1
        await s.drag("your_image_t", ANY_IMAGE, 6, "Your_image", think)


async def sampler(s: Student) -> None:
    await s.open("Reverse_process")
    result = ".st-key-reverse_result img"
    while time.monotonic() < s.deadline:
        start = time.monotonic()
        s.results.runs_started += 1
        await s.page.locator(".st-key-reverse_play button").click()
        try:  # a run that started must finish, even after the deadline
            await s.page.locator(result).first.wait_for(timeout=max(s.timeout_ms * 10, 300_000))
            s.results.runs.append(time.monotonic() - start)
        except Exception:
            s.results.timeouts += 1
        await s.check_exceptions()
        await s.page.wait_for_selector(IDLE, timeout=s.timeout_ms)
        await s.page.locator(".st-key-reverse_reset button").click()
        await s.page.locator(result).first.wait_for(state="detached", timeout=s.timeout_ms)
        await s.page.wait_for_selector(IDLE, timeout=s.timeout_ms)
        await asyncio.sleep(random.uniform(1.0, 3.0))


async def guarded(coro, s: Student, what: str) -> None:
    try:
        await coro
    except Exception as e:  # a student whose page broke: count it, keep the class going
        s.results.timeouts += 1
        s.results.notes.append(f"{what}: {type(e).__name__}: {str(e)[:200]}")
        log(f"{what} stopped: {type(e).__name__}: {str(e)[:200]}")


# ------------------------------------------------------------------ the server
@asynccontextmanager
async def server(processes: int):
    """(url, pids to watch): `streamlit run` alone for 0, else N processes behind HAProxy."""
    if processes == 0:
        port = free_port()
        proc = start_replica(port, cookie_secret=os.urandom(16).hex())
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc=proc)
            yield f"http://127.0.0.1:{port}", [proc.pid]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    else:
        with Cluster(processes=processes) as cluster:
            yield cluster.url, [p.pid for p in cluster.replicas] + [cluster.haproxy.pid]


def layout_name(processes: int) -> str:
    return "`streamlit run` alone" if processes == 0 else f"HAProxy + {processes} process{'es' if processes > 1 else ''}"


async def alone(browser, url: str, steps: int, timeout_s: float, pages: list[str], server_pids: list[int]) -> Results:
    results = Results()
    monitor = Monitor(server_pids)
    for page in pages:
        for lang in LANGS:
            clock = Clock()
            clock.go.set()
            s = Student(browser, url, lang, results, clock, timeout_s)
            await s.open(page)
            for key, target in SLIDERS[page]:
                label = f"{page} · {key}"
                _, s0, b0, _ = monitor.sample()
                n0 = len(results.steps.get(label, []))
                await s.drag(key, target, max(2, steps // 2), label, (0.2, 0.4))
                _, s1, b1, _ = monitor.sample()
                cpu = results.cpu.setdefault(label, [0, 0, 0])
                cpu[0] += s1 - s0
                cpu[1] += b1 - b0
                cpu[2] += len(results.steps.get(label, [])) - n0
            await s.close()
    return results


async def warm_up(browser, url: str, pages: list[str], timeout_s: float, processes: int) -> None:
    """Open each page once on every process (imports, the denoiser's weights, the default settings' caches),
    so that the class's memory growth is measured from servers that have served every page. The pages of a
    round stay open together, so that the balancer spreads them over the processes."""
    clock = Clock()
    clock.go.set()
    for page in pages:
        students = [Student(browser, url, "en", Results(), clock, timeout_s) for _ in range(max(1, processes))]
        await asyncio.gather(*(s.open(page) for s in students))
        for s in students:
            await s.close()


async def a_class(browser, url: str, args, drag: int, upload: int, sample: int, server_pids: list[int]):
    results = Results()
    monitor = Monitor(server_pids)
    rss_before = monitor.sample()[3]
    start = time.monotonic()
    clock = Clock()
    students, tasks = [], []
    kinds = ["sample"] * sample + ["upload"] * upload + ["drag"] * drag
    for i, kind in enumerate(kinds):
        s = Student(browser, url, LANGS[(i // len(PAGES)) % 2] if kind == "drag" else LANGS[i % 2], results,
                    clock, args.timeout)
        students.append(s)
        if kind == "drag":
            coro = dragger(s, PAGES[i % len(PAGES)], (args.think_min, args.think_max))
        elif kind == "upload":
            coro = uploader(s, i, (args.think_min, args.think_max))
        else:
            coro = sampler(s)
        tasks.append(asyncio.create_task(guarded(coro, s, f"{kind} student {i}")))
        await asyncio.sleep(args.ramp / max(1, len(kinds)))
    # The class starts when every page is open (or after two minutes more): opening is timed on its own.
    wait_until = time.monotonic() + 120
    while clock.opened < len(kinds) and time.monotonic() < wait_until and not all(t.done() for t in tasks):
        await asyncio.sleep(0.2)
    monitor.start()
    clock.deadline = time.monotonic() + args.duration
    clock.go.set()
    await asyncio.gather(*tasks)
    await monitor.stop()
    for s in students:
        await s.close()
    results.rss_before = rss_before
    return results, monitor, time.monotonic() - start


# ------------------------------------------------------------------ report
def report(layout: str, alone_res: Results | None, runs: list[tuple[tuple[int, int, int], Results, Monitor, float]],
           args) -> str:
    out = [f"## {layout}", ""]
    if alone_res is not None:
        out += ["### One student alone (input -> new picture, ms)", "",
                "CPU per step: the server's and the browser's CPU time while that slider moved, over its steps "
                "(the rest of the wait is the other on the 2 cores, the network and the paint).", "",
                "| page · slider | steps | median | p95 | max | server's answer, median | server CPU ms/step | browser CPU ms/step |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for label, values in alone_res.steps.items():
            server_t, browser_t, n = alone_res.cpu.get(label, (0, 0, 0))
            per = (lambda ticks: f"{1000 * ticks / TICK / n:.0f}") if n else (lambda ticks: "–")
            out.append(f"| {label} {fmt_ms(values)} {med(alone_res.replies.get(label, []))} | {per(server_t)} | {per(browser_t)} |")
        measured = dict.fromkeys(k.split(" · ")[0] for k in alone_res.steps)
        per_page = {p: [v for k, vs in alone_res.steps.items() if k.startswith(p) for v in vs] for p in measured}
        for page, values in per_page.items():
            replies = [v for k, vs in alone_res.replies.items() if k.startswith(page) for v in vs]
            out.append(f"| **{page}, every slider** {fmt_ms(values)} {med(replies)} | | |")
        out += ["", f"Errors alone: {alone_res.exceptions} exception boxes, {alone_res.timeouts} time-outs, "
                f"{alone_res.disconnects} disconnects; {alone_res.dropped_keys} key presses the slider did not take.", ""]
        if alone_res.notes:
            out += ["Notes: " + " / ".join(sorted(set(alone_res.notes))[:5]), ""]
    if not runs:
        return "\n".join(out)
    for (drag, upload, sample), res, mon, wall in runs:
        t0, s0, b0, r0 = mon.samples[0]
        t1, s1, b1, r1 = mon.samples[-1]
        elapsed = t1 - t0
        rss_max = max(s[3] for s in mon.samples)
        slider_all = [v for vs in res.steps.values() for v in vs]
        errors = res.exceptions + res.timeouts + res.disconnects
        finished = len(res.runs) == res.runs_started
        p95 = pct(slider_all, 95)
        ok = errors == 0 and p95 <= 1000 and finished and r1 - res.rss_before <= 100 and bool(slider_all)
        out += [f"### Class of {drag + upload + sample}: {drag} dragging, {upload} uploading, {sample} sampling "
                f"({args.duration:.0f} s once every page was open; students arrived over {args.ramp:.0f} s)", "",
                "| what | n | median | p95 | max | server's answer, median |",
                "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for page in PAGES:
            out.append(f"| slider step → new picture, {page} (ms) {fmt_ms(res.steps.get(page, []))} "
                       f"{med(res.replies.get(page, []))} |")
        out.append(f"| slider step → new picture, all pages (ms) {fmt_ms(slider_all)} "
                   f"{med([v for vs in res.replies.values() for v in vs])} |")
        out.append(f"| upload → new picture (ms) {fmt_ms(res.uploads)}")
        runs_ms = [r * 1000 for r in res.runs]
        if res.runs:
            out.append(f"| Play → result, DDIM-50 of 16 digits (s) | {len(res.runs)}/{res.runs_started} | "
                       f"{statistics.median(res.runs):.1f} | {pct(res.runs, 95):.1f} | {max(res.runs):.1f} |")
        else:
            out.append(f"| Play → result (s) | 0/{res.runs_started} | – | – | – |")
        del runs_ms
        out.append(f"| page open → idle (s) | {len(res.opens)} | {statistics.median(res.opens):.1f} | "
                   f"{pct(res.opens, 95):.1f} | {max(res.opens):.1f} |" if res.opens else "| page open | 0 | | | |")
        out += ["",
                f"Errors: {res.exceptions} exception boxes, {res.timeouts} time-outs (> {args.timeout:.0f} s), "
                f"{res.disconnects} disconnects; {res.dropped_keys} key presses the slider did not take.",
                f"Server CPU {100 * (s1 - s0) / TICK / elapsed:.0f} % of one core (mean), browsers "
                f"{100 * (b1 - b0) / TICK / elapsed:.0f} % of one core (over the {elapsed:.0f} s of work); server RSS "
                f"{res.rss_before:.0f} MB before the students came, {r0:.0f} MB with every page open, {r1:.0f} MB at "
                f"the end (max {rss_max:.0f}; growth {r1 - res.rss_before:+.0f} MB).",
                f"**Goals met: {'yes' if ok else 'no'}** (0 errors, slider p95 ≤ 1 s, every run finishes, "
                f"RSS growth ≤ 100 MB).", ""]
        if res.notes:
            out += ["Notes: " + " / ".join(sorted(set(res.notes))[:5]), ""]
        # Over time: every ~20 s
        out += ["| s | server CPU % | browsers CPU % | server RSS MB |", "| ---: | ---: | ---: | ---: |"]
        every = max(1, len(mon.samples) // 10)
        prev = mon.samples[0]
        for smp in mon.samples[every::every]:
            dt = smp[0] - prev[0]
            out.append(f"| {smp[0] - t0:.0f} | {100 * (smp[1] - prev[1]) / TICK / dt:.0f} | "
                       f"{100 * (smp[2] - prev[2]) / TICK / dt:.0f} | {smp[3]:.0f} |")
            prev = smp
        out.append("")
    return "\n".join(out)


async def main_async(args) -> None:
    from playwright.async_api import async_playwright

    print(f"# Classroom benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f})\n", flush=True)
    async with async_playwright() as p:
        for processes in args.processes:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            async with server(processes) as (url, pids):
                log(f"{layout_name(processes)} at {url}")
                alone_res = None
                if args.alone_steps:
                    alone_res = await alone(browser, url, args.alone_steps, args.timeout, args.pages, pids)
                    log("alone done")
                await warm_up(browser, url, ["Reverse_process"] + ([] if args.alone_steps and processes <= 1 else list(PAGES)),
                              args.timeout, processes)
                runs = []
                for size in args.classes or [None]:
                    if size is None:
                        drag, upload, sample = args.drag, args.upload, args.sample
                    else:  # the same mix as the default class (24 : 3 : 3)
                        upload = sample = max(1, round(size / 10))
                        drag = size - upload - sample
                    if drag + upload + sample == 0:
                        continue
                    log(f"class of {drag + upload + sample}")
                    res, mon, wall = await a_class(browser, url, args, drag, upload, sample, pids)
                    runs.append(((drag, upload, sample), res, mon, wall))
                    log(f"class of {drag + upload + sample} done")
                print(report(layout_name(processes), alone_res, runs, args), flush=True)
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[0],
                        help="0: `streamlit run` alone; N: N processes behind HAProxy (several: one after the other)")
    parser.add_argument("--drag", type=int, default=24)
    parser.add_argument("--upload", type=int, default=3)
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--classes", type=int, nargs="*", default=None,
                        help="class sizes to run one after the other, mixed as 80 %% dragging, 10 %% uploading, 10 %% sampling")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of class after the ramp")
    parser.add_argument("--ramp", type=float, default=15.0, help="seconds over which the students arrive")
    parser.add_argument("--alone-steps", type=int, default=12, help="steps per slider for the student alone (0: skip)")
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=tuple(SLIDERS), help="pages for the student alone")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds after which a step counts as timed out")
    parser.add_argument("--think-min", type=float, default=0.5,
                        help="a student's pause after each settled step, seconds (uniform between min and max)")
    parser.add_argument("--think-max", type=float, default=1.5)
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
