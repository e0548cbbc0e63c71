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
import os
import subprocess
import time
from contextlib import asynccontextmanager

from bench.classroom.monitors import Monitor
from bench.classroom.report import report
from bench.classroom.students import (
    CHROMIUM,
    LANGS,
    PAGES,
    SLIDERS,
    Clock,
    Results,
    Student,
    dragger,
    guarded,
    log,
    sampler,
    uploader,
)
from deploy.serve import Cluster, free_port, start_replica, wait_healthy


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
