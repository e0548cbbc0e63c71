"""Play -> result on the reverse page, and a slider's step on another page meanwhile, with the denoiser
in the server process (--workers 0, as before issue 24) and in the worker (--workers 1): a real
`streamlit run app.py` per setting, driven by headless Chromium through Playwright.

    python -m bench.reverse_worker                      # workers 0 and 1, 1 sampling student, 3 runs
    python -m bench.reverse_worker --samplers 3 --runs 5 --workers 0 1 2

For each setting: the slider alone (keydown -> its picture settled, timed inside the page as in
bench/classroom), then Play -> result of ``--samplers`` students pressing Play together (DDIM, 50 steps,
16 digits: the default run), alone and while one more student steps the slider, with the server's
and the workers' CPU seconds. Prints a Markdown table on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.classroom.students import OBSERVE, SETTLED, STEP_TIMES  # the in-page step timing

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
SLIDER = ("Closed_form", "closed_form_t", '[data-testid="stMain"] [data-testid="stImage"]')


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the server's, its children's) utime + stime, from /proc."""
    def own(p: str) -> float:
        f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / 100
    children = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if Path(f"/proc/{proc.name}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                    children += own(proc.name)
            except OSError:
                pass
    return own(str(pid)), children


def start_server(workers: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, DIFFUSION_WORKERS=str(workers))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not start")


async def open_page(browser, url: str, path: str):
    page = await (await browser.new_context(viewport={"width": 1400, "height": 1400})).new_page()
    await page.goto(f"{url}/{path}?lang=en")
    await page.wait_for_selector(IDLE, timeout=120000)
    await page.wait_for_timeout(500)
    return page


async def play_to_result(page) -> float:
    """Reset, then Play -> the result grid, in seconds."""
    reset = page.get_by_role("button", name="Reset", exact=True)
    if await reset.is_enabled():
        await reset.click()
        await page.wait_for_selector(IDLE, timeout=60000)
        await page.wait_for_timeout(300)
    began = time.perf_counter()
    await page.get_by_role("button", name="Play", exact=True).click()
    await page.locator(".st-key-reverse_result img").wait_for(timeout=300000)
    return time.perf_counter() - began


async def step_slider(page, stop: asyncio.Event, times: list[float], think_s: float = 0.3) -> None:
    """Step the slider back and forth until ``stop``; the in-page time of each step, in ms."""
    _, key, target = SLIDER
    slider = page.locator(f".st-key-{key} input[type=range]").first
    await page.evaluate(OBSERVE)
    await page.evaluate(f"() => {{ window.__b.target = {target!r}; }}")
    direction, n = "ArrowRight", 0
    while not stop.is_set():
        before = await slider.get_attribute("aria-valuetext")
        await slider.press(direction)
        if await slider.get_attribute("aria-valuetext") == before:
            direction = "ArrowLeft" if direction == "ArrowRight" else "ArrowRight"
            continue
        try:
            await page.wait_for_function(SETTLED, arg=150, timeout=30000, polling=50)
            times.append((await page.evaluate(STEP_TIMES))[0])
        except Exception:
            times.append(float("inf"))
        n += 1
        if n % 10 == 0:
            direction = "ArrowLeft" if direction == "ArrowRight" else "ArrowRight"
        await asyncio.sleep(think_s)


def p95(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))] if xs else float("nan")


async def measure(workers: int, samplers: int, runs: int, slider_steps: int) -> dict:
    from playwright.async_api import async_playwright

    server, url = start_server(workers)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            players = [await open_page(browser, url, "Reverse_process") for _ in range(samplers)]
            slider_page = await open_page(browser, url, SLIDER[0])
            log(f"workers={workers}: warm-up run")
            await asyncio.gather(*(play_to_result(pg) for pg in players))
            alone_slider: list[float] = []
            stop = asyncio.Event()
            task = asyncio.create_task(step_slider(slider_page, stop, alone_slider))
            while len(alone_slider) < slider_steps:
                await asyncio.sleep(0.2)
            stop.set()
            await task
            log(f"workers={workers}: Play alone")
            alone = []
            for _ in range(runs):
                alone += await asyncio.gather(*(play_to_result(pg) for pg in players))
            log(f"workers={workers}: Play with the slider stepped meanwhile")
            busy_slider: list[float] = []
            stop = asyncio.Event()
            cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
            task = asyncio.create_task(step_slider(slider_page, stop, busy_slider))
            busy = []
            for _ in range(runs):
                busy += await asyncio.gather(*(play_to_result(pg) for pg in players))
            stop.set()
            await task
            cpu1, wall = cpu_seconds(server.pid), time.perf_counter() - t0
            await browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"workers": workers, "samplers": samplers, "alone": alone, "busy": busy, "slider_alone": alone_slider,
            "slider_busy": busy_slider, "server_cpu": (cpu1[0] - cpu0[0]) / wall, "worker_cpu": (cpu1[1] - cpu0[1]) / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="settings of DIFFUSION_WORKERS to compare")
    ap.add_argument("--samplers", type=int, default=1, help="students pressing Play together")
    ap.add_argument("--runs", type=int, default=3, help="Play -> result rounds per phase")
    ap.add_argument("--slider-steps", type=int, default=15, help="slider steps timed alone")
    args = ap.parse_args()
    rows = [asyncio.run(measure(w, args.samplers, args.runs, args.slider_steps)) for w in args.workers]
    med = statistics.median
    print("| denoiser | samplers | Play -> result alone, median (s) | with the slider stepped, median / max (s) "
          "| slider alone, median / p95 (ms) | slider during sampling, median / p95 (ms) | server CPU | worker CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        where = "in the server (before)" if r["workers"] == 0 else f"{r['workers']} worker process(es)"
        print(f"| {where} | {r['samplers']} | {med(r['alone']):.2f} | {med(r['busy']):.2f} / {max(r['busy']):.2f} "
              f"| {med(r['slider_alone']):.0f} / {p95(r['slider_alone']):.0f} "
              f"| {med(r['slider_busy']):.0f} / {p95(r['slider_busy']):.0f} ({len(r['slider_busy'])} steps) "
              f"| {100 * r['server_cpu']:.0f} % | {100 * r['worker_cpu']:.0f} % |")


if __name__ == "__main__":
    main()
