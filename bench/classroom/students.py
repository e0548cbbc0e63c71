"""The students of the classroom benchmark: what one does in a browser (drag a slider, upload a picture,
press Play), and how a step is timed inside the page, from the key press to the last change of its picture."""


from __future__ import annotations

import asyncio
import io
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ANY_IMAGE = '[data-testid="stMain"] [data-testid="stImage"]'
LANGS = ("vi", "en")

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
            "Playground_2D": [("playground_t_1000", ".st-key-playground_field_exact")],
            "Flow_matching": [("flow_t_path", ".st-key-flow_path_pictures"), ("flow_t_faces", ".st-key-flow_face_pictures"),
                              ("flow_t_field", ".st-key-flow_field_exact"), ("flow_n_steps", ".st-key-flow_samples_flow"),
                              ("flow_coin_steps", ".st-key-flow_coin_pictures")]}

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
