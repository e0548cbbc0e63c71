"""The load generator's Markdown tables (and the same numbers as JSON)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.protocol.stats import ServerMonitor, summarize
from bench.protocol.students import Results


@dataclass
class ClassRun:
    layout: str
    mix: tuple[int, int, int]  # drag, upload, sample
    results: Results
    monitor: ServerMonitor
    wall: float
    killed: str | None = None
    rss_timeline: list[tuple[float, float, int, int]] = field(default_factory=list)  # (min, MB, steps, errors)


def ms(x: float) -> str:
    return "–" if math.isnan(x) else f"{1000 * x:.0f}"


def sec(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2f}"


def num(x: float, digits: int = 0) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


def all_steps(r: Results) -> list[float]:
    return [v for vs in r.steps.values() for v in vs]


def class_row(c: ClassRun) -> dict:
    r, m = c.results, c.monitor
    steps, runs, ups = summarize(all_steps(r)), summarize(r.runs), summarize(r.uploads)
    rss = m.rss
    return {
        "layout": c.layout, "students": sum(c.mix), "drag": c.mix[0], "upload": c.mix[1], "sample": c.mix[2],
        "steps": steps.n, "step_median_s": steps.median, "step_p95_s": steps.p95, "step_max_s": steps.max,
        "play_median_s": runs.median, "play_max_s": runs.max, "runs_finished": len(r.runs),
        "runs_started": r.runs_started, "upload_median_s": ups.median, "uploads": ups.n,
        "errors": r.n_errors(), "errors_by_kind": {w: dict(k) for w, k in r.errors.items() if k},
        "server_cpu_percent": m.server_cpu_percent, "rss_start_mb": rss[0], "rss_peak_mb": rss[1],
        "rss_end_mb": rss[2], "generator_cpu_percent": m.own_cpu_percent, "wall_s": c.wall,
        "open_median_s": summarize(r.opens).median, "reconnects_s": r.reconnects, "killed": c.killed,
        "per_slider": {k: vars(summarize(v)) for k, v in sorted(r.steps.items())},
        "replicas": dict(c.results.replicas), "rss_timeline": c.rss_timeline, "notes": r.notes[:20],
    }


CLASS_HEADER = ("| layout | students (drag/upload/sample) | steps | step median / p95 / max (ms) | Play → result "
                "median / max (s) | runs finished / started | upload → picture median (s) | errors | server CPU "
                "(% of a core) | server RSS start / peak / end (MB) | generator CPU (% of a core) |\n"
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def class_table(runs: list[ClassRun]) -> str:
    lines = [CLASS_HEADER]
    for c in runs:
        d = class_row(c)
        lines.append(
            f"| {d['layout']} | {d['students']} ({d['drag']}/{d['upload']}/{d['sample']}) | {d['steps']} | "
            f"{ms(d['step_median_s'])} / {ms(d['step_p95_s'])} / {ms(d['step_max_s'])} | "
            f"{sec(d['play_median_s'])} / {sec(d['play_max_s'])} | {d['runs_finished']} / {d['runs_started']} | "
            f"{sec(d['upload_median_s'])} | {d['errors']} | {num(d['server_cpu_percent'])} | "
            f"{num(d['rss_start_mb'])} / {num(d['rss_peak_mb'])} / {num(d['rss_end_mb'])} | "
            f"{num(d['generator_cpu_percent'], 1)} |")
    return "\n".join(lines)


def per_slider_table(c: ClassRun) -> str:
    lines = [f"Per slider, {c.layout}, {sum(c.mix)} students:\n",
             "| page · slider | steps | median (ms) | p95 (ms) | max (ms) | server's answer, median (ms) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, values in sorted(c.results.steps.items()):
        s, a = summarize(values), summarize(c.results.answers.get(label, []))
        lines.append(f"| {label} | {s.n} | {ms(s.median)} | {ms(s.p95)} | {ms(s.max)} | {ms(a.median)} |")
    return "\n".join(lines)


def errors_line(c: ClassRun) -> str:
    r = c.results
    parts = []
    for where, kinds in r.errors.items():
        if kinds or (c.killed and where == "on the killed replica"):
            parts.append(f"{where}: {sum(kinds.values())}" + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})" if kinds else ""))
    line = "Errors: " + ("; ".join(parts) if parts else "none")
    if r.replicas:
        line += ". Students per process (HAProxy's cookie): " + ", ".join(f"{k} {n}" for k, n in sorted(r.replicas.items()))
    if r.reconnects:
        rc = summarize(r.reconnects)
        line += f". Reconnects: {rc.n}, socket closed → page open again median {sec(rc.median)} s, max {sec(rc.max)} s"
    return line + "."


def alone_table(results: Results) -> str:
    lines = ["| page · slider | steps | median (ms) | p95 (ms) | max (ms) | server's answer, median (ms) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label in results.steps:  # in the order stepped
        s, a = summarize(results.steps[label]), summarize(results.answers.get(label, []))
        lines.append(f"| {label} | {s.n} | {ms(s.median)} | {ms(s.p95)} | {ms(s.max)} | {ms(a.median)} |")
    return "\n".join(lines)


def soak_table(c: ClassRun) -> str:
    lines = ["| minute | server RSS (MB) | steps so far | errors so far |", "| ---: | ---: | ---: | ---: |"]
    for minute, rss, steps, errors in c.rss_timeline:
        lines.append(f"| {minute:.1f} | {rss:.0f} | {steps} | {errors} |")
    if c.rss_timeline:
        first, last = c.rss_timeline[0][1], c.rss_timeline[-1][1]
        peak = max(t[1] for t in c.rss_timeline)
        lines.append(f"\nRSS growth over the soak: {last - first:+.0f} MB (peak {peak - first:+.0f} MB above the start).")
    return "\n".join(lines)


def finite(x):
    """JSON without NaN."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x
