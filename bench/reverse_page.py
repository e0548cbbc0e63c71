"""Benchmark of page 5 (the reverse process) as students use it: a real `streamlit run app.py` driven
by Chromium through Playwright.

    python -m bench.reverse_page                 # everything, a few minutes on 2 cores
    python -m bench.reverse_page --runs 20       # fewer back-to-back runs for the memory figure

Prints a markdown table on stdout (progress on stderr):

- time to first frame: from the click on Play to the first picture of the run (x_T) in the browser;
- frames per second in the browser during a DDIM-50 run of 16 digits (the default run): changes of
  the x_t picture counted by a MutationObserver, next to the network's own steps per second;
- four browser sessions pressing Play on DDIM-50 of 16 digits at once: time to each one's result,
  p95 over the four, against one session alone, with the network's own time summed over the four
  and the server's CPU time (the browsers run on the same cores as the server here);
- the server's resident memory (VmRSS) after ``--runs`` short runs back to back in one session
  (DDIM-10 of 16 digits: the default run's pictures, a fifth of its steps), against after the first one.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from diffusion_core.samplers import DEFAULT_GUIDANCE

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
RESULT = ".st-key-reverse_result img"
# Records, in the page, the time of every change of the x_t picture; live frames are data: URLs.
OBSERVE = """() => {
  window.__frames = []; window.__last = null;
  const seen = () => {
    const img = document.querySelector('.st-key-reverse_panel_x_t img');
    if (img && img.src !== window.__last) {
      window.__last = img.src; window.__frames.push([performance.now(), img.src.startsWith('data:')]);
    }
  };
  new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                     attributeFilter: ['src']});
}"""
CLICK_PLAY = """() => {
  const b = [...document.querySelectorAll('button')].find(b => b.innerText.trim().endsWith('Play'));
  window.__clicked = performance.now(); b.click();
}"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not start")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (clock ticks of 1/100 s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def open_page(context, url: str):
    pg = context.new_page()
    pg.goto(f"{url}/Reverse_process?lang=en")
    try:
        pg.get_by_role("button", name="Play", exact=True).wait_for(timeout=120000)
        pg.wait_for_selector(IDLE, timeout=120000)
    except Exception:
        shot = Path(tempfile.gettempdir()) / f"reverse_page_open_failed_{os.getpid()}.png"
        pg.screenshot(path=str(shot), full_page=True)
        raise RuntimeError(f"page 5 did not open (screenshot {shot}); it shows: {pg.inner_text('body')[:800]!r}")
    return pg


def set_slider(pg, label: str, right: int, value: str) -> None:
    """Home, then ``right`` steps to the right, until the slider shows ``value`` (Chromium can drop a key
    press on a slider that Streamlit is still mounting, just after the page loads)."""
    s = pg.locator('[data-testid="stSlider"]').filter(has_text=label).first.get_by_role("slider")
    for _ in range(3):
        s.focus()
        s.press("Home")
        for _ in range(right):
            s.press("ArrowRight")
        pg.wait_for_timeout(500)
        pg.wait_for_selector(IDLE)
        if s.get_attribute("aria-valuetext") == value:
            return
    raise RuntimeError(f"slider {label!r} shows {s.get_attribute('aria-valuetext')!r}, not {value!r}")


def reset(pg) -> None:
    """Clear the previous run, so that the next result picture is a new one."""
    if pg.locator(RESULT).count():
        pg.get_by_role("button", name="Reset", exact=True).click()
        pg.locator(RESULT).wait_for(state="detached", timeout=60000)
    pg.wait_for_selector(IDLE)


def play_and_wait(pg, timeout_ms: int = 600000) -> float:
    """Click Play; seconds until the result is shown."""
    reset(pg)
    pg.evaluate(OBSERVE)
    began = time.monotonic()
    pg.evaluate(CLICK_PLAY)
    pg.locator(RESULT).wait_for(timeout=timeout_ms)
    return time.monotonic() - began


def compute_seconds(pg) -> float:
    """The network's own time, from the page's status line ("Done: 50 steps, 4.2 s of computing.")."""
    match = re.search(r"Done: (\d+) steps, ([\d.]+) s", pg.locator('[data-testid="stProgress"]').first.inner_text())
    return float(match.group(2))


def single_runs(context, url: str, repeats: int) -> dict[str, float]:
    pg = open_page(context, url)
    first, step1, fps, net, total = [], [], [], [], []
    for i in range(repeats):
        total.append(play_and_wait(pg))
        frames = pg.evaluate("window.__frames")
        clicked = pg.evaluate("window.__clicked")
        live = [t for t, is_live in frames if is_live]
        first.append((live[0] - clicked) / 1000)
        step1.append((live[1] - clicked) / 1000 if len(live) > 1 else float("nan"))
        fps.append((len(live) - 1) / ((live[-1] - live[0]) / 1000) if len(live) > 1 else float("nan"))
        net.append(50 / compute_seconds(pg))
        log(f"  run {i + 1}: first frame {first[-1]:.2f} s, first step {step1[-1]:.2f} s, {fps[-1]:.1f} frames/s over {len(live)} frames, "
            f"network {net[-1]:.1f} steps/s, result after {total[-1]:.1f} s")
    pg.close()
    return {"first": statistics.median(first), "cold": first[0], "step1": statistics.median(step1),
            "fps": statistics.median(fps),
            "net": statistics.median(net), "total": statistics.median(total)}


def concurrent_runs_timed(browser, url: str, sessions: int) -> list[float]:
    """Seconds from the clicks to each session's result; each page records when its result appeared."""
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(sessions)]
    pages = [open_page(c, url) for c in contexts]
    watch = """() => { window.__done = null;
      new MutationObserver(() => { if (!window.__done && document.querySelector('.st-key-reverse_result img'))
        window.__done = Date.now(); }).observe(document.body, {subtree: true, childList: true}); }"""
    for pg in pages:
        pg.evaluate(watch)
    began = time.time() * 1000
    for pg in pages:
        pg.evaluate(CLICK_PLAY)
    for pg in pages:
        pg.locator(RESULT).wait_for(timeout=600000)
    times = [(pg.evaluate("window.__done") - began) / 1000 for pg in pages]
    network = sum(compute_seconds(pg) for pg in pages)
    errors = sum(pg.locator('[data-testid="stException"]').count() for pg in pages)
    for c in contexts:
        c.close()
    if errors:
        raise RuntimeError(f"{errors} exception(s) on the page during concurrent runs")
    return times, network


def memory_runs(context, url: str, runs: int, pid: int) -> tuple[float, float, float]:
    pg = open_page(context, url)
    set_slider(pg, "Number of steps", 3, "10")  # STEP_CHOICES[3] = 10; 16 digits, as by default
    play_and_wait(pg)
    after_first = rss_mb(pid)
    began = time.monotonic()
    for i in range(runs - 1):
        play_and_wait(pg)
        if (i + 2) % 20 == 0:
            log(f"  {i + 2} runs: RSS {rss_mb(pid):.0f} MB")
    per_run = (time.monotonic() - began) / max(runs - 1, 1)
    pg.close()
    return after_first, rss_mb(pid), per_run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=100, help="back-to-back short runs for the memory figure")
    p.add_argument("--repeats", type=int, default=3, help="single-session DDIM-50 runs (the median is reported)")
    p.add_argument("--sessions", type=int, default=4, help="browser sessions running at once")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(port)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            open_page(context, url).close()  # loads the model once (st.cache_resource)
            log("single session, DDIM-50 of 16 digits:")
            single = single_runs(context, url, args.repeats)
            log(f"{args.sessions} sessions at once, DDIM-50 of 16 digits each:")
            cpu_before = cpu_seconds(server.pid)
            together, network = concurrent_runs_timed(browser, url, args.sessions)
            server_cpu = cpu_seconds(server.pid) - cpu_before
            log(f"  {', '.join(f'{t:.1f}' for t in together)} s; network {network:.1f} s in all; "
                f"server CPU {server_cpu:.1f} s")
            log(f"memory, {args.runs} runs of DDIM-10 of 16 digits in one session:")
            rss_first, rss_last, per_run = memory_runs(context, url, args.runs, server.pid)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)

    from diffusion_core.models.devices import describe_hardware
    from ui.model import torch_threads

    load = os.getloadavg()[0]
    p95 = float(np.percentile(together, 95))
    print(f"### Page 5, the reverse process, in the browser\n\n{describe_hardware(threads=torch_threads())} "
          f"(the server's threads, ui/model.py); load average {load:.1f} at the end.\n")
    print("| measure | value | settings |\n| --- | --- | --- |")
    print(f"| time to first frame (click on Play to x_T shown) | {single['first']:.2f} s | "
          f"DDIM-50, 16 digits, s = {DEFAULT_GUIDANCE:g}; median of {args.repeats} runs in one tab (the first, in a fresh tab: "
          f"{single['cold']:.2f} s) |")
    print(f"| time to the first step's picture (click on Play to x_(t-1) shown) | {single['step1']:.2f} s | same runs |")
    print(f"| frames per second shown in the browser | {single['fps']:.1f} | same runs; the network alone: "
          f"{single['net']:.1f} steps/s; result after {single['total']:.1f} s |")
    print(f"| {args.sessions} sessions at once: time to result, p95 | {p95:.1f} s | DDIM-50, 16 digits each "
          f"(each: {', '.join(f'{t:.1f}' for t in sorted(together))} s; one alone: {single['total']:.1f} s); "
          f"network {network:.1f} s in all, server CPU {server_cpu:.1f} s, the browsers on the same cores |")
    print(f"| server RSS after {args.runs} runs | {rss_last:.0f} MB ({rss_last - rss_first:+.0f} MB since the first) | "
          f"DDIM-10, 16 digits, one session, back to back; {per_run:.2f} s per run |")


if __name__ == "__main__":
    main()
