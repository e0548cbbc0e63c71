"""A class measured without browsers: students that speak Streamlit's websocket protocol and render
nothing, against a real `streamlit run app.py` (or N of them behind HAProxy, deploy/serve.py).

    python -m bench.protocol --alone 8 --pages Gaussian Forward_chain Closed_form Your_image --classes
    python -m bench.protocol --classes 10 --duration 45                 # a small class, one process
    python -m bench.protocol --classes 10 30 60 90 --processes 1 2      # the issue's table
    python -m bench.protocol --soak 1800                                # 30 students for 30 minutes
    python -m bench.protocol --kill-replica --classes 30                # two processes, one killed mid-class

A class is 80 % dragging (the main slider of pages 1-4 and 10-13, a page and a language each, round
robin, each from a random position), 10 % uploading pictures on page 4 (then stepping its t slider),
10 % pressing Play on the reverse page, waiting for the result, Reset, again. A step is timed from the
rerun_script BackMsg to its script_finished and the last byte of the /media/ files its deltas named.
Prints Markdown tables on stdout (progress on stderr); ``--json`` saves the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import time
from contextlib import asynccontextmanager

from bench.protocol.report import (
    ClassRun,
    alone_table,
    class_row,
    class_table,
    errors_line,
    finite,
    per_slider_table,
    soak_table,
)
from bench.protocol.stats import ServerMonitor
from bench.protocol.students import (
    LANGS,
    PAGES,
    REVERSE_PAGE,
    Clock,
    Results,
    Student,
    drag_for_a_while,
    dragger,
    guarded,
    log,
    sampler,
    uploader,
)
from deploy.serve import Cluster, free_port, start_replica, wait_healthy


@asynccontextmanager
async def server(processes: int, url: str | None = None):
    """(url, pids to watch, cluster or None): `streamlit run` alone for 1, N processes behind HAProxy for N > 1,
    or the server already at ``url`` (nothing watched)."""
    if url:
        yield url.rstrip("/"), [], None
    elif processes == 1:
        port = free_port()
        proc = start_replica(port, cookie_secret=os.urandom(16).hex())
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc=proc)
            yield f"http://127.0.0.1:{port}", [proc.pid], None
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    else:
        with Cluster(processes=processes) as cluster:
            yield cluster.url, [p.pid for p in cluster.replicas] + [cluster.haproxy.pid], cluster


def layout_name(processes: int, url: str | None) -> str:
    if url:
        return url
    return "`streamlit run` alone" if processes == 1 else f"HAProxy + {processes} processes"


def mix_of(size: int) -> tuple[int, int, int]:
    """80 % dragging, 10 % uploading, 10 % sampling (at least one each from 10 students)."""
    upload = sample = round(size / 10) if size >= 10 else 0
    return size - upload - sample, upload, sample


async def warm_up(url: str, processes: int, timeout: float, pages: list[str]) -> None:
    """Open every page once on every process (imports, weights, the default settings' caches), so that a
    class measures a server that has served each page; the tabs of a page stay open together, so that
    HAProxy (least connections) spreads them over the processes."""
    clock = Clock()
    for page in (*pages, REVERSE_PAGE):
        students = [Student(url, "en", Results(), clock, max(timeout, 180)) for _ in range(max(1, processes))]
        await asyncio.gather(*(s.open(page, count=False) for s in students), return_exceptions=True)
        for s in students:
            await s.close()
    log("warm-up done")


async def alone(url: str, pages: list[str], steps: int, timeout: float, think: tuple[float, float]) -> Results:
    """One student steps every slider of ``pages`` ``steps`` times (half in each language), from where it is."""
    results, clock, rng = Results(), Clock(), random.Random(0)
    for page in pages:
        for lang in LANGS:
            st = Student(url, lang, results, clock, timeout)
            await st.open(page)
            for w in st.s.sliders():
                await drag_for_a_while(st, page, w.key, rng, think, steps=max(1, steps // 2), scattered=False)
            await st.close()
        log(f"alone: {page} done")
    return results


async def a_class(url: str, args, mix: tuple[int, int, int], pids: list[int], cluster=None, duration: float = 0,
                  kill: bool = False, rss_every: float = 0) -> ClassRun:
    drag, upload, sample = mix
    results, clock, rng = Results(), Clock(), random.Random(args.seed)
    think = (args.think_min, args.think_max)
    students, tasks = [], []
    kinds = ["sample"] * sample + ["upload"] * upload + ["drag"] * drag
    results.kinds.update(kinds)
    start = time.monotonic()
    for i, kind in enumerate(kinds):
        lang = LANGS[(i // len(args.class_pages)) % 2] if kind == "drag" else LANGS[i % 2]
        st = Student(url, lang, results, clock, args.timeout)
        students.append(st)
        srng = random.Random(rng.random())
        if kind == "drag":
            coro = dragger(st, args.class_pages[i % len(args.class_pages)], srng, think)
        elif kind == "upload":
            coro = uploader(st, i, srng, think)
        else:
            coro = sampler(st, srng, args.run_limit)
        tasks.append(asyncio.create_task(guarded(coro, st, f"{kind} student {i}")))
        await asyncio.sleep(args.ramp / max(1, len(kinds)))
    wait_until = time.monotonic() + 120  # the class starts once every page is open (opening is timed apart)
    while clock.opened < len(kinds) and time.monotonic() < wait_until and not all(t.done() for t in tasks):
        await asyncio.sleep(0.2)
    monitor = ServerMonitor(pids)
    monitor.start()
    duration = duration or args.duration
    clock.deadline = time.monotonic() + duration
    clock.go.set()
    run = ClassRun("", mix, results, monitor, 0.0)
    side = []
    if kill and cluster is not None:
        side.append(asyncio.create_task(kill_mid_class(cluster, students, clock, duration / 2, run)))
    if rss_every:
        side.append(asyncio.create_task(sample_rss(monitor, results, clock, rss_every, run)))
    await asyncio.gather(*tasks)
    for t in side:
        t.cancel()
    await monitor.stop()
    if rss_every:
        run.rss_timeline.append(((time.monotonic() - clock.deadline + duration) / 60, monitor.samples[-1][2],
                                 results.n_steps(), results.n_errors()))
    for st in students:
        await st.close()
    run.wall = time.monotonic() - start
    return run


async def kill_mid_class(cluster: Cluster, students: list[Student], clock: Clock, after: float, run: ClassRun) -> None:
    """SIGKILL the first replica ``after`` seconds into the class; note who was on it."""
    await asyncio.sleep(after)
    victim = cluster.names[0]
    for st in students:
        st.replica_at_kill = st.s.replica
    clock.killed = run.killed = victim
    on_it = sum(st.replica_at_kill == victim for st in students)
    log(f"killing {victim} (SIGKILL), {on_it} of {len(students)} students on it")
    cluster.replicas[0].kill()


async def sample_rss(monitor: ServerMonitor, results: Results, clock: Clock, every: float, run: ClassRun) -> None:
    start = time.monotonic()
    while True:
        run.rss_timeline.append(((time.monotonic() - start) / 60, monitor.sample()[2], results.n_steps(),
                                 results.n_errors()))
        await asyncio.sleep(every)


async def main_async(args) -> None:
    print(f"# Protocol-level class ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f})\n", flush=True)
    think = (args.think_min, args.think_max)
    out: dict = {"args": vars(args), "layouts": []}
    layouts = [2] if args.kill_replica else args.processes
    for processes in layouts:
        async with server(processes, args.url) as (url, pids, cluster):
            name = layout_name(processes, args.url)
            log(f"{name} at {url}")
            entry: dict = {"layout": name}
            if args.alone:
                res = await alone(url, args.pages, args.alone, args.timeout, think)
                print(f"## {name}: one student alone, every slider, {args.alone} steps each\n\n"
                      "Send → script_finished and the last media byte; the server's answer is send → "
                      f"script_finished.\n\n{alone_table(res)}\n\n{errors_line(ClassRun(name, (1, 0, 0), res, None, 0))}\n",
                      flush=True)
                entry["alone"] = {k: v for k, v in res.steps.items()}
            if (args.classes or args.soak) and not args.no_warm_up:
                await warm_up(url, processes, args.timeout, args.class_pages)
            runs = []
            for size in args.classes:
                mix = mix_of(size)
                log(f"{name}: class of {size} {mix}")
                run = await a_class(url, args, mix, pids, cluster, kill=args.kill_replica)
                run.layout = name
                runs.append(run)
                log(f"class of {size} done: {run.results.n_steps()} steps, {run.results.n_errors()} errors")
            if runs:
                title = "a replica killed mid-class" if args.kill_replica else "classes"
                print(f"## {name}: {title} ({args.duration:.0f} s each, think {args.think_min}-{args.think_max} s)\n\n"
                      f"{class_table(runs)}\n", flush=True)
                for run in runs:
                    print(f"{errors_line(run)}\n\n{per_slider_table(run)}\n", flush=True)
            if args.soak:
                log(f"{name}: soak of {args.soak_students} for {args.soak:.0f} s")
                soak = await a_class(url, args, mix_of(args.soak_students), pids, cluster, duration=args.soak,
                                     rss_every=30)
                soak.layout = name
                runs.append(soak)
                print(f"## {name}: soak, {args.soak_students} students for {args.soak / 60:.0f} min\n\n"
                      f"{class_table([soak])}\n\n{errors_line(soak)}\n\n{soak_table(soak)}\n", flush=True)
            entry["classes"] = [class_row(r) for r in runs]
            out["layouts"].append(entry)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(finite(out), f, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, nargs="*", default=[10],
                        help="class sizes, one after the other (80 %% dragging, 10 %% uploading, 10 %% sampling)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1],
                        help="1: `streamlit run app.py` alone; N > 1: N processes behind HAProxy (several: one after the other)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of class after every page is open")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the students arrive")
    parser.add_argument("--think-min", type=float, default=0.5, help="pause after each step, seconds (uniform in min..max)")
    parser.add_argument("--think-max", type=float, default=1.5)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds after which a step counts as timed out")
    parser.add_argument("--run-limit", type=float, default=300.0, help="seconds a Play may take before it counts as lost")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of a soak class (RSS every 30 s); 0: none")
    parser.add_argument("--soak-students", type=int, default=30)
    parser.add_argument("--kill-replica", action="store_true",
                        help="two processes behind HAProxy; SIGKILL one half-way through each class")
    parser.add_argument("--alone", type=int, default=0, metavar="N",
                        help="first, one student steps every slider of --pages N times (half in each language)")
    parser.add_argument("--pages", nargs="+", default=list(PAGES), help="pages for --alone (URL paths)")
    parser.add_argument("--class-pages", nargs="+", default=list(PAGES), choices=PAGES,
                        help="the pages the dragging students are spread over (round robin)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="skip opening every page once per process before the classes (a quick look)")
    parser.add_argument("--url", default=None, help="use the server at this URL instead of starting one (no CPU/RSS)")
    parser.add_argument("--seed", type=int, default=0, help="the students' random starts and pauses")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
