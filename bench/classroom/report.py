"""The classroom benchmark's results and their Markdown tables."""


from __future__ import annotations

import statistics

import numpy as np

from bench.classroom.monitors import TICK, Monitor
from bench.classroom.students import PAGES, Results


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}" if values else "–"


def fmt_ms(values: list[float]) -> str:
    if not values:
        return "| 0 | – | – | – |"
    return f"| {len(values)} | {statistics.median(values):.0f} | {pct(values, 95):.0f} | {max(values):.0f} |"




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
