"""The browser's share (issue 24): every slider of every page, one student alone in headless Chromium, timed
inside the page.

    python -m bench.browser                                   # pages 1-13, 12 steps a slider, vi and en
    python -m bench.browser --pages Closed_form 9 --steps 8 --langs vi --json out.json
    python -m bench.browser --steps 0 --screenshots shots/    # only the screenshots (1400 and 390 px)
    python -m bench.browser --url http://host:8501            # a server already running (no server CPU)

Starts `streamlit run app.py` on a free port (deploy/serve.py's ``start_replica``) unless ``--url`` is given,
and one headless Chromium (Playwright, /usr/bin/chromium) with one page: the student. For every page it
discovers the sliders in the DOM (``[data-testid="stSlider"]``, st.slider and st.select_slider alike, named by
their ``.st-key-<key>`` container), opens the page afresh for each slider (a new session: every slider starts
from the page's defaults) and steps it ``--steps`` times with the keyboard (ArrowRight on the focused thumb,
ArrowLeft after it reached the end of its range). Each step is timed in the page (``PROBE``):

- settled: keydown -> the last change anywhere in ``[data-testid="stMain"]`` (a MutationObserver on childList,
  attributes and characterData of the whole subtree, the shadow roots of custom components included, and draws
  on the visible canvases there), once the script is idle and the page has been quiet for 300 ms;
- first picture: keydown -> the first change of an image's src (or a new image), an svg path's ``d`` (not the
  icons of buttons and labels), anything inside a plotly chart or a custom component (v1 iframe, v2
  ``stBidiComponentRegular`` / ``stBidiComponentIsolated``), or a draw on a visible canvas (tables' canvases
  excepted: a table is not a picture);
- the browser's CPU per step: utime + stime of every Chromium process (/proc), over the slider's steps, minus
  what the same processes burn idle on that page (measured for ``--baseline`` s before the first step);
  the server's CPU per step likewise (the streamlit process and its children).

Prints one Markdown table (stdout; progress on stderr). Goals (issue 24): settled p95 <= 150 ms, first picture
p95 <= 50 ms, browser CPU <= 50 ms a step.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.classroom.monitors import TICK, descendants, process_tree
from bench.classroom.students import CHROMIUM, IDLE, TIME_MESSAGES, log
from deploy.serve import ROOT, free_port, start_replica, wait_healthy

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
QUIET_MS = 300  # a step has settled when the page has not changed for this long (and the script is idle)
OPEN_QUIET_MS = 500  # a page has opened when it has not changed for this long
GOAL_SETTLED_MS, GOAL_PICTURE_MS, GOAL_CPU_MS = 150.0, 50.0, 50.0
PHONE_WIDTH = 390

# In the page, before the app's code (every frame): the time of the last keydown, of the last change in
# stMain, of the first picture change after the keydown, and whether a script run started since.
PROBE = r"""(() => {
  if (window.__bb) return;
  const S = window.__bb = {key: -1, last: performance.now(), first: null, mutations: 0, sawRun: false,
                           canvases: new Set()};
  const MAIN = '[data-testid="stMain"]';
  const WHOLE = '[data-testid="stPlotlyChart"], [data-testid^="stBidiComponent"], '
              + '[data-testid="stCustomComponentV1"], [data-testid="stVegaLiteChart"], '
              + '[data-testid="stDeckGlJsonChart"], [data-testid="stGraphVizChart"]';
  const ICON = 'button, [data-testid="stTooltipIcon"], [data-testid="stWidgetLabel"], summary';
  const TABLE = '[data-testid="stDataFrame"], [data-testid="stTable"]';
  const lightHost = n => { let r; while (n && (r = n.getRootNode()) instanceof ShadowRoot) n = r.host; return n; };
  const asElement = n => n.nodeType === 1 ? n : n.nodeType === 11 ? n.host : n.parentElement;
  const inMain = el => { const h = lightHost(el); return !!(h && h.closest && h.closest(MAIN)); };
  const pictureNode = n => (n.tagName === 'IMG' && n.getAttribute('src'))
      || (n instanceof SVGPathElement && !lightHost(n).closest(ICON));
  function isPicture(m, el) {
    if (lightHost(el).closest(WHOLE)) return true;
    if (m.type === 'attributes')
      return (m.attributeName === 'src' && el.tagName === 'IMG')
          || (m.attributeName === 'd' && el instanceof SVGPathElement && !lightHost(el).closest(ICON));
    if (m.type !== 'childList') return false;
    for (const n of m.addedNodes) {
      if (n.nodeType !== 1) continue;
      if (pictureNode(n) || [...n.querySelectorAll('img, path')].some(pictureNode)) return true;
    }
    return false;
  }
  const options = {subtree: true, childList: true, attributes: true, characterData: true};
  const observer = new MutationObserver(ms => {
    const now = performance.now();
    let main = false, picture = false;
    for (const m of ms) {
      if (m.type === 'attributes' && m.attributeName === 'data-test-script-state') {
        if (m.target.getAttribute('data-test-script-state') === 'running' && S.key >= 0) S.sawRun = true;
        continue;
      }
      const el = asElement(m.target);
      if (!el || !inMain(el)) continue;
      main = true;
      S.mutations++;
      if (!picture && S.first === null && S.key >= 0 && isPicture(m, el)) picture = true;
    }
    if (main) S.last = now;
    if (picture && S.first === null) S.first = now;
  });
  observer.observe(document, options);
  const attachShadow = Element.prototype.attachShadow;  // a v2 component's isolated DOM: observe it too
  Element.prototype.attachShadow = function (init) {
    const root = attachShadow.call(this, init);
    observer.observe(root, options);
    return root;
  };
  // Canvas draws are not DOM changes: note, per canvas, its first and last draw after the keydown.
  function drawn() {
    const c = this.canvas;
    if (!c || c.nodeType !== 1) return;
    const t = performance.now();
    S.canvases.add(c);
    if (t > S.key) { if (!(c.__bbFirst > S.key)) c.__bbFirst = t; c.__bbLast = t; }
  }
  function wrap(proto, names) {
    if (!proto) return;
    for (const name of names) {
      const f = proto[name];
      if (typeof f === 'function') proto[name] = function (...a) { drawn.call(this); return f.apply(this, a); };
    }
  }
  wrap(window.CanvasRenderingContext2D && CanvasRenderingContext2D.prototype,
       ['fillRect', 'strokeRect', 'clearRect', 'fill', 'stroke', 'fillText', 'strokeText', 'drawImage', 'putImageData']);
  for (const G of [window.WebGLRenderingContext, window.WebGL2RenderingContext])
    wrap(G && G.prototype, ['clear', 'drawArrays', 'drawElements', 'drawArraysInstanced', 'drawElementsInstanced',
                            'drawRangeElements']);
  // The visible canvases in stMain drawn on since the keydown: {first (pictures only), last (any)}.
  S.canvasTimes = () => {
    let first = null, last = -1;
    for (const c of [...S.canvases]) {
      if (!c.isConnected) { S.canvases.delete(c); continue; }
      if (!(c.__bbLast > S.key) || !inMain(c) || !c.checkVisibility() || !c.width || !c.height) continue;
      last = Math.max(last, c.__bbLast);
      if (!lightHost(c).closest(TABLE) && (first === null || c.__bbFirst < first)) first = c.__bbFirst;
    }
    return {first, last};
  };
  S.lastChange = () => Math.max(S.last, S.canvasTimes().last);
  document.addEventListener('keydown', () => {
    S.key = performance.now(); S.first = null; S.mutations = 0; S.sawRun = false;
  }, true);
})();"""
# What Streamlit draws while a widget's code loads: a page (or a step) is not done while one is left.
SKELETON = '[data-testid="stMain"] [data-testid="stSkeleton"]'
# The server answered (a run started, or a message came) and the page is idle and has been quiet.
SETTLED = """(quiet) => { const S = window.__bb;
  const answered = S.sawRun || (window.__ws || []).some(t => t > S.key);
  return answered && !!document.querySelector('%s') && !document.querySelector('%s')
    && performance.now() - S.lastChange() > quiet; }""" % (IDLE, SKELETON)
OPENED = """(quiet) => !!document.querySelector('%s') && (window.__ws || []).length > 0
  && !!document.querySelector('[data-testid="stMain"] [data-testid="stElementContainer"]')
  && !document.querySelector('%s') && performance.now() - window.__bb.lastChange() > quiet""" % (IDLE, SKELETON)
STEP_RESULT = """() => { const S = window.__bb, c = S.canvasTimes(), last = Math.max(S.last, c.last);
  const firsts = [S.first, c.first].filter(t => t !== null && t > S.key);
  const ws = (window.__ws || []).filter(t => t > S.key && t <= last);
  return {settled_ms: Math.max(0, last - S.key), first_picture_ms: firsts.length ? Math.min(...firsts) - S.key : null,
          mutations: S.mutations, first_message_ms: ws.length ? ws[0] - S.key : null,
          last_message_ms: ws.length ? ws[ws.length - 1] - S.key : null}; }"""
# Every slider in stMain: its key (the .st-key-<key> class of its own element container), label, state.
DISCOVER = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stSlider"]')].map((s, i) => {
  const box = s.closest('[data-testid="stElementContainer"]');
  const cls = box ? [...box.classList].find(c => c.startsWith('st-key-')) : null;
  const input = s.querySelector('input[type=range]');
  return {index: i, key: cls ? cls.slice(7) : null, label: input ? (input.getAttribute('aria-label') || '').slice(0, 80) : '',
          disabled: !input || input.disabled, visible: s.checkVisibility(),
          form: !!s.closest('[data-testid="stForm"]'), value: input ? input.getAttribute('aria-valuetext') : null};
})"""
# Open what hides a slider: a closed expander, an inactive tab. Returns what it clicked.
REVEAL = """(el) => { const clicked = [];
  for (let d = el.closest('details'); d; d = d.parentElement && d.parentElement.closest('details'))
    if (!d.open) { d.querySelector(':scope > summary').click(); clicked.push('expander'); }
  for (let p = el.closest('[role="tabpanel"]'); p; p = p.parentElement && p.parentElement.closest('[role="tabpanel"]')) {
    const tab = document.querySelector(`[role="tab"][aria-controls="${p.id}"]`);
    if (tab && tab.getAttribute('aria-selected') !== 'true') { tab.click(); clicked.push('tab'); }
  }
  return clicked; }"""


# ------------------------------------------------------------------ statistics
def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between the closest ranks (numpy's default,
    Hyndman & Fan 1996 type 7); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, float | None]:
    """median, p95 and max of ``values`` (None each for no values)."""
    return {"median": percentile(values, 50), "p95": percentile(values, 95), "max": max(values) if values else None}


def cpu_ms_per_step(ticks: float, idle_ticks_per_s: float, seconds: float, steps: int, tick_hz: int = TICK) -> float | None:
    """CPU ms per step: the ``ticks`` (utime + stime) burnt over ``seconds`` of stepping, less the idle rate
    over the same time, shared by ``steps`` (clamped at 0: an idle baseline measured high)."""
    if steps <= 0:
        return None
    return max(0.0, (ticks - idle_ticks_per_s * seconds) * 1000.0 / tick_hz / steps)


# ------------------------------------------------------------------ /proc
def chromium_pids() -> set[int]:
    """Every Chromium process below this one (browser, renderers, GPU and utility processes)."""
    pids = set()
    for pid in descendants(os.getpid(), process_tree()):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip().startswith("chrom"):
                pids.add(pid)
        except OSError:
            pass
    return pids


class CpuMeter:
    """CPU ticks of the browser (every Chromium process below this one) and of the server (``server_pid`` and
    its children; none without a pid)."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid

    def read(self) -> tuple[float, int, int]:
        """(monotonic seconds, browser ticks, server ticks)."""
        tree = process_tree()
        browser = chromium_pids()
        server = ({self.server_pid} | descendants(self.server_pid, tree)) if self.server_pid else set()
        return (time.monotonic(), sum(tree[p][1] for p in browser if p in tree),
                sum(tree[p][1] for p in server if p in tree))


# ------------------------------------------------------------------ results
@dataclass
class SliderRun:
    """One slider, in one language: its steps as measured in the page."""

    page: str
    key: str
    lang: str
    label: str = ""
    steps: list[dict] = field(default_factory=list)  # STEP_RESULT's fields, + "page_run": a whole-page rerun
    browser_ms_per_step: float | None = None
    server_ms_per_step: float | None = None
    idle_browser_ms_per_s: float | None = None
    timeouts: int = 0
    timeout_s: float = 20.0
    load_average: float | None = None  # of the machine, as the slider started
    notes: list[str] = field(default_factory=list)


def page_paths() -> list[tuple[int, str]]:
    """(number, URL path) of pages/<n>_<Name>.py, in teaching order: the URL path is the file's name
    without its number."""
    found = []
    for p in (ROOT / "pages").glob("*.py"):
        m = re.fullmatch(r"(\d+)_(.+)\.py", p.name)
        if m:
            found.append((int(m.group(1)), m.group(2)))
    return sorted(found)


# ------------------------------------------------------------------ the student
class Student:
    """One browser page, with the probe installed before the app's code, and the server's runs recorded
    (from its new_session messages: the fragments each run reruns, [] for the whole page)."""

    def __init__(self, browser, url: str, width: int = 1400, height: int = 1000, timeout_s: float = 20.0,
                 server_pid: int | None = None) -> None:
        self.url, self.timeout_ms = url, timeout_s * 1000
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.add_init_script(TIME_MESSAGES)
        self.context.add_init_script(PROBE)
        self.page = self.context.new_page()
        self.runs: list[list[str]] = []
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        self.in_flight = 0  # HTTP requests under way (pictures, the code of widgets)
        self.page.on("request", lambda _: self._request(1))
        self.page.on("requestfinished", lambda _: self._request(-1))
        self.page.on("requestfailed", lambda _: self._request(-1))
        self.cpu = CpuMeter(server_pid)

    def _frame(self, payload) -> None:
        if isinstance(payload, bytes):
            from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

            msg = ForwardMsg.FromString(payload)
            if msg.WhichOneof("type") == "new_session":
                self.runs.append(list(msg.metadata.run.fragment_ids))

    def close(self) -> None:
        self.context.close()

    def _request(self, delta: int) -> None:
        self.in_flight += delta

    def open(self, path: str, lang: str) -> None:
        """Open the page (a new session) and wait until its script is idle, no request is in flight and it
        has been quiet, twice over a second: Streamlit loads a widget's code when the widget first arrives,
        drawing a skeleton meanwhile; a busy browser can make no change for a while before it draws it."""
        deadline = time.monotonic() + max(120.0, 6 * self.timeout_ms / 1000)
        self.page.goto(f"{self.url}/{path}?lang={lang}", timeout=max(60_000, 4 * self.timeout_ms))
        while True:
            left_ms = max(1000.0, (deadline - time.monotonic()) * 1000)
            self.page.wait_for_function(OPENED, arg=OPEN_QUIET_MS, timeout=left_ms, polling=100)
            last = self.page.evaluate("() => window.__bb.lastChange()")
            time.sleep(1.0)
            if (self.in_flight == 0 and self.page.evaluate("() => window.__bb.lastChange()") == last
                    and self.page.evaluate(f"() => !!document.querySelector('{IDLE}')")):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not settle after opening")

    def full_page_screenshot(self, path: Path) -> None:
        """The whole page: stMain scrolls inside a viewport-high body (a full_page screenshot shows only the
        viewport), so the viewport grows to stMain's height (at most 16000 px) for the picture."""
        viewport = self.page.viewport_size
        height = self.page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        self.page.set_viewport_size({"width": viewport["width"], "height": min(max(viewport["height"], int(height) + 40), 16000)})
        self.page.wait_for_function(OPENED, arg=OPEN_QUIET_MS, timeout=self.timeout_ms, polling=100)
        self.page.screenshot(path=str(path), full_page=True)
        self.page.set_viewport_size(viewport)

    def sliders(self) -> list[dict]:
        return self.page.evaluate(DISCOVER)

    def exceptions(self) -> list[str]:
        boxes = self.page.locator('[data-testid="stMain"] [data-testid="stException"]')
        return [boxes.nth(i).inner_text()[:300] for i in range(boxes.count())]

    def idle_rate(self, seconds: float) -> tuple[float, float]:
        """(browser, server) ticks per second on the open page, doing nothing."""
        if seconds <= 0:
            return 0.0, 0.0
        t0, b0, s0 = self.cpu.read()
        time.sleep(seconds)
        t1, b1, s1 = self.cpu.read()
        return (b1 - b0) / (t1 - t0), (s1 - s0) / (t1 - t0)

    def thumb(self, slider: dict):
        if slider["key"]:
            return self.page.locator(f'.st-key-{slider["key"]} [data-testid="stSlider"] input[type=range]').first
        return self.page.locator('[data-testid="stMain"] [data-testid="stSlider"]').nth(slider["index"]).locator(
            "input[type=range]").first

    def press(self, thumb, direction: str) -> tuple[bool, str]:
        """One key press that moves the slider: (moved, the direction that moved it). At the end of the range,
        turn round; a press on a slider still mounting can be lost: try once more after 300 ms."""
        for attempt in range(2):
            for d in (direction, "ArrowLeft" if direction == "ArrowRight" else "ArrowRight"):
                before = thumb.get_attribute("aria-valuetext")
                thumb.press(d)
                if thumb.get_attribute("aria-valuetext") != before:
                    return True, d
                direction = d
            self.page.wait_for_timeout(300)
        return False, direction

    def step(self, thumb, direction: str, submit=None) -> tuple[dict | None, str, str]:
        """One keyboard step, timed in the page: (result or None, direction, a note when it failed). In a form
        (``submit``: its submit button) the step is sent by Enter on the button, and timed from that keydown."""
        mark = len(self.runs)
        moved, direction = self.press(thumb, direction)
        if not moved:
            return None, direction, "did not move"
        if submit is not None:
            submit.press("Enter")
        try:
            self.page.wait_for_function(SETTLED, arg=QUIET_MS, timeout=self.timeout_ms, polling=50)
        except Exception:  # Playwright's TimeoutError
            return None, direction, f"not settled within {self.timeout_ms / 1000:.0f} s"
        result = self.page.evaluate(STEP_RESULT)
        result["page_run"] = any(r == [] for r in self.runs[mark:])
        return result, direction, ""

    def measure(self, page: str, lang: str, slider: dict, steps: int, baseline_s: float) -> SliderRun:
        """``steps`` keyboard steps of ``slider`` on the open page, with the CPU of browser and server."""
        run = SliderRun(page=page, key=slider["key"] or f"#{slider['index']}", lang=lang, label=slider["label"],
                        timeout_s=self.timeout_ms / 1000, load_average=os.getloadavg()[0])
        thumb = self.thumb(slider)
        if not thumb.is_visible() or not thumb.evaluate("e => e.closest('[data-testid=\"stSlider\"]').checkVisibility()"):
            clicked = thumb.evaluate(REVEAL)
            run.notes.append(f"hidden: opened {', '.join(clicked) or 'nothing'}")
            self.page.wait_for_function(OPENED, arg=OPEN_QUIET_MS, timeout=self.timeout_ms, polling=100)
        if slider["disabled"]:
            run.notes.append("disabled")
            return run
        submit = None
        if slider.get("form"):
            if not slider["key"]:
                run.notes.append("in a form, without a key: not stepped")
                return run
            submit = self.page.locator(f'[data-testid="stForm"]:has(.st-key-{slider["key"]}) '
                                       '[data-testid="stFormSubmitButton"] button').first
            run.notes.append("in a form: each step is the key press and Enter on the form's button, timed from the Enter")
        idle_b, idle_s = self.idle_rate(baseline_s)
        run.idle_browser_ms_per_s = idle_b * 1000 / TICK
        t0, b0, s0 = self.cpu.read()
        direction = "ArrowRight"
        for _ in range(steps):
            result, direction, note = self.step(thumb, direction, submit)
            if result is None:
                run.notes.append(note)
                if note.startswith("not settled"):
                    run.timeouts += 1
                    try:  # let the long run end before the next slider, so that it does not weigh on it
                        self.page.wait_for_selector(IDLE, timeout=self.timeout_ms)
                    except Exception:
                        run.notes.append("still running after another time-out")
                break
            run.steps.append(result)
        t1, b1, s1 = self.cpu.read()
        n = len(run.steps) + run.timeouts
        run.browser_ms_per_step = cpu_ms_per_step(b1 - b0, idle_b, t1 - t0, n)
        if self.cpu.server_pid:
            run.server_ms_per_step = cpu_ms_per_step(s1 - s0, idle_s, t1 - t0, n)
        run.notes += [f"exception: {e}" for e in self.exceptions()]
        return run


def bench_page(student: Student, page: str, lang: str, steps: int, baseline_s: float, skip: list[str]) -> list[SliderRun]:
    """Every slider of ``page`` in ``lang``, each from a freshly opened page."""
    runs: list[SliderRun] = []
    student.open(page, lang)
    found = student.sliders()
    log(f"{page} ({lang}): {len(found)} sliders: {', '.join(s['key'] or '#%d' % s['index'] for s in found)}")
    for i, slider in enumerate(found):
        name = slider["key"] or f"#{slider['index']}"
        if any(fnmatch.fnmatch(name, pattern) for pattern in skip):
            runs.append(SliderRun(page=page, key=name, lang=lang, label=slider["label"], notes=["skipped (--skip)"]))
            continue
        try:
            if i:
                student.open(page, lang)
                now = {s["key"] or f"#{s['index']}": s for s in student.sliders()}
                if name not in now:
                    runs.append(SliderRun(page=page, key=name, lang=lang, notes=["gone after reopening the page"]))
                    continue
                slider = now[name]
            run = student.measure(page, lang, slider, steps, baseline_s)
        except Exception as e:  # a page that stopped answering: say so, go on with the next slider
            log(f"  {name} stopped: {type(e).__name__}: {str(e)[:300]}")
            runs.append(SliderRun(page=page, key=name, lang=lang, label=slider["label"],
                                  notes=[f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"]))
            continue
        settled = summary([s["settled_ms"] for s in run.steps])
        log(f"  {name}: {len(run.steps)} steps, settled median {fmt(settled['median'])} ms, "
            f"browser CPU {fmt(run.browser_ms_per_step)} ms/step {'; '.join(run.notes)}")
        runs.append(run)
    return runs


# ------------------------------------------------------------------ report
def fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}"


def mean(values: list[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def rows(runs: list[SliderRun]) -> list[dict]:
    """One row per page · slider, its languages pooled: the statistics and the goals met."""
    grouped: dict[tuple[str, str], list[SliderRun]] = {}
    for run in runs:
        grouped.setdefault((run.page, run.key), []).append(run)
    out = []
    for (page, key), group in grouped.items():
        steps = [s for r in group for s in r.steps]
        settled = summary([s["settled_ms"] for s in steps])
        pictures = [s["first_picture_ms"] for s in steps if s["first_picture_ms"] is not None]
        picture = summary(pictures)
        n = len(steps) + sum(r.timeouts for r in group)
        weights = [(len(r.steps) + r.timeouts, r) for r in group if len(r.steps) + r.timeouts]
        def weighted(attr: str) -> float | None:
            xs = [(w, getattr(r, attr)) for w, r in weights if getattr(r, attr) is not None]
            return sum(w * v for w, v in xs) / sum(w for w, _ in xs) if xs else None
        browser_cpu, server_cpu = weighted("browser_ms_per_step"), weighted("server_ms_per_step")
        timeouts = sum(r.timeouts for r in group)
        goals = {
            "settled": None if not steps else (timeouts == 0 and settled["p95"] <= GOAL_SETTLED_MS),
            "picture": None if not pictures else picture["p95"] <= GOAL_PICTURE_MS,
            "cpu": None if browser_cpu is None or not steps else browser_cpu <= GOAL_CPU_MS,  # judged on settled steps
        }
        out.append({"page": page, "key": key, "steps": n, "timeouts": timeouts, "timeout_s": group[0].timeout_s,
                    "page_runs": sum(s["page_run"] for s in steps), "settled": settled, "first_picture": picture,
                    "pictures": len(pictures), "mutations_median": percentile([s["mutations"] for s in steps], 50),
                    "browser_cpu_ms": browser_cpu, "server_cpu_ms": server_cpu, "goals": goals,
                    "notes": sorted({n for r in group for n in r.notes})})
    return out


def yes_no(x: bool | None) -> str:
    return "–" if x is None else ("yes" if x else "**no**")


def table(table_rows: list[dict]) -> str:
    lines = ["| page · slider | steps | settled median | p95 | max | first picture median | p95 | browser CPU ms/step "
             "| server CPU ms/step | whole-page runs | goals: settled · picture · CPU |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in table_rows:
        steps = f"{r['steps']}" + (f" ({r['timeouts']} timed out)" if r["timeouts"] else "")
        s, p, g = r["settled"], r["first_picture"], r["goals"]
        longest = f"> {r['timeout_s'] * 1000:.0f}" if r["timeouts"] else fmt(s["max"])
        lines.append(f"| {r['page']} · {r['key']} | {steps} | {fmt(s['median'])} | {fmt(s['p95'])} | {longest} "
                     f"| {fmt(p['median'])} | {fmt(p['p95'])} | {fmt(r['browser_cpu_ms'])} | {fmt(r['server_cpu_ms'])} "
                     f"| {r['page_runs']} | {yes_no(g['settled'])} · {yes_no(g['picture'])} · {yes_no(g['cpu'])} |")
    measured = [r for r in table_rows if r["steps"]]
    met = [r for r in measured if r["goals"]["settled"] and r["goals"]["cpu"] and r["goals"]["picture"] is not False]
    lines += ["", f"Sliders meeting all three goals: {len(met)} of {len(measured)} measured "
                  f"(settled p95 ≤ {GOAL_SETTLED_MS:.0f} ms, first picture p95 ≤ {GOAL_PICTURE_MS:.0f} ms where a "
                  f"picture changed, browser CPU ≤ {GOAL_CPU_MS:.0f} ms a step)."]
    notes = [f"- {r['page']} · {r['key']}: {'; '.join(r['notes'])}" for r in table_rows if r["notes"]]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines)


# ------------------------------------------------------------------ screenshots
def screenshots(browser, url: str, directory: Path, pages: list[tuple[int, str]], timeout_s: float) -> list[Path]:
    """Each page (and home) in both languages at 1400 px and 390 px, full page."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for width in (1400, PHONE_WIDTH):
        student = Student(browser, url, width=width, height=900 if width > PHONE_WIDTH else 844, timeout_s=timeout_s)
        for number, path in [(0, ""), *pages]:
            for lang in ("vi", "en"):
                student.open(path, lang)
                name = directory / f"{number:02d}_{path or 'home'}_{lang}_{width}.png"
                student.full_page_screenshot(name)
                out.append(name)
                log(f"screenshot {name}")
        student.close()
    return out


# ------------------------------------------------------------------ the command
def choose_pages(wanted: list[str] | None) -> list[tuple[int, str]]:
    pages = page_paths()
    if not wanted:
        return pages
    chosen = [p for p in pages if str(p[0]) in wanted or p[1] in wanted or p[1].lower() in wanted]
    missing = set(wanted) - {str(n) for n, _ in chosen} - {p for _, p in chosen} - {p.lower() for _, p in chosen}
    if missing:
        raise SystemExit(f"no such page: {', '.join(sorted(missing))} (pages: {', '.join(p for _, p in pages)})")
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", nargs="*", help="URL paths (Closed_form) or numbers (3); default: every page")
    parser.add_argument("--steps", type=int, default=12, help="keyboard steps per slider and language (0: none)")
    parser.add_argument("--langs", nargs="+", default=["vi", "en"], choices=["vi", "en"])
    parser.add_argument("--width", type=int, default=1400, help="the browser's width in px")
    parser.add_argument("--timeout", type=float, default=20.0, help="s a step may take before the slider is left")
    parser.add_argument("--skip", nargs="*", default=[], help="slider keys (shell patterns) not to step")
    parser.add_argument("--baseline", type=float, default=1.0, help="s of idle CPU measured before each slider")
    parser.add_argument("--url", help="a running app to measure instead of starting one (no server CPU then)")
    parser.add_argument("--json", type=Path, help="write every step's figures here")
    parser.add_argument("--screenshots", type=Path, help="write full-page screenshots of each page here")
    parser.add_argument("--report", type=Path, help="print the table of a --json file written before, and stop")
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        print(table(rows([SliderRun(**r) for r in saved["runs"]])))
        return
    pages = choose_pages(args.pages)

    from playwright.sync_api import sync_playwright

    proc = None
    if args.url:
        url, server_pid = args.url.rstrip("/"), None
    else:
        port = free_port()
        proc = start_replica(port, cookie_secret=os.urandom(16).hex())
        url, server_pid = f"http://127.0.0.1:{port}", proc.pid
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]
    runs: list[SliderRun] = []
    try:
        wait_healthy(url, proc=proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
            if args.screenshots:
                screenshots(browser, url, args.screenshots, pages, args.timeout)
            if args.steps > 0:
                student = Student(browser, url, width=args.width, timeout_s=args.timeout, server_pid=server_pid)
                for _, page in pages:
                    for lang in args.langs:
                        try:
                            runs += bench_page(student, page, lang, args.steps, args.baseline, args.skip)
                        except Exception as e:  # a page that would not open: say so, go on with the others
                            log(f"{page} ({lang}) stopped: {type(e).__name__}: {str(e)[:300]}")
                            runs.append(SliderRun(page=page, key="(page)", lang=lang,
                                                  notes=[f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"]))
                student.close()
            browser.close()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.steps <= 0:
        return
    table_rows = rows(runs)
    loads = [r.load_average for r in runs if r.load_average is not None]
    print(f"## The browser's share ({started}, {os.cpu_count()} CPUs, load average before: {load:.2f}, "
          f"{min(loads, default=load):.1f}-{max(loads, default=load):.1f} while the sliders moved)\n")
    print(f"`python -m bench.browser {' '.join(argv if argv is not None else sys.argv[1:])}`: one student alone, "
          f"headless Chromium at {args.width} px, {args.steps} keyboard steps per slider in {' and '.join(args.langs)}, "
          f"each slider from a freshly opened page; ms from the keydown, timed in the page.\n")
    print(table(table_rows))
    if args.json:
        args.json.write_text(json.dumps({
            "started": started, "load_average": load, "cpus": os.cpu_count(), "machine": platform.node(),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "rows": table_rows, "runs": [asdict(r) for r in runs]}, indent=1))


if __name__ == "__main__":
    main()
