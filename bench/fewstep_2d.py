"""Page 12's 2-D half at its defaults: the time of each stage (teacher, pairs, reflow, consistency distillation,
meter) and the energy distances of every sampler, for each data set and teacher, against the page's goals.

    python -m bench.fewstep_2d                     # every data set, both teachers
    python -m bench.fewstep_2d --datasets mixture --teachers exact

Goals (issue 22): reflow's 1-step energy distance at least 5 times smaller than the teacher's 1-step Euler;
the consistency model's 1 call within 2 times of the teacher at 100 Euler steps. Times: wall and CPU seconds of
this process (the stages run on one thread, ``toy2d.one_thread``), so on a shared machine CPU is what an idle
core would take.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import emit, log
from diffusion_core.models.devices import describe_hardware
from diffusion_core.toy2d import fewstep as fs

DATASETS = ("mixture", "moons", "checkerboard", "swiss_roll")


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--teachers", nargs="+", default=list(fs.TEACHERS), choices=fs.TEACHERS)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    times = ["| data | teacher | teacher training | pairs | reflow | consistency | meter |", "|---|---|---|---|---|---|---|"]
    scores = ["| data | teacher | teacher, Euler 1 / 2 / 4 / 100 | reflow, Euler 1 / 2 / 4 | consistency 1 / 2 / 4 | "
              "S teacher → reflow | reflow gain at 1 step (goal ≥ 5) | consistency 1 ÷ teacher 100 (goal ≤ 2) |",
              "|---|---|---|---|---|---|---|---|"]
    for dataset in args.datasets:
        for kind in args.teachers:
            teacher, *t0 = timed(lambda: fs.make_teacher(dataset, kind, args.seed))
            pairs, *t1 = timed(lambda: fs.make_pairs(teacher, args.seed))
            reflow, *t2 = timed(lambda: fs.make_reflow(teacher, pairs, args.seed))
            cm, *t3 = timed(lambda: fs.make_consistency(teacher, args.seed))
            meter, *t4 = timed(lambda: fs.measure(dataset, teacher, reflow, cm, args.seed))
            cell = lambda t: f"{t[0]:.1f} s ({t[1]:.1f} s CPU)"  # noqa: E731
            times.append(f"| {dataset} | {kind} | {cell(t0) if kind == 'mlp' else '–'} | {cell(t1)} | {cell(t2)} | "
                         f"{cell(t3)} | {cell(t4)} |")
            d = meter.distances
            row = lambda m, ks: " / ".join(f"{d[m, k]:.4f}" for k in ks)  # noqa: E731
            gain = d["teacher", 1] / d["reflow", 1]
            ratio = d["consistency", 1] / d["teacher", fs.TEACHER_STEPS]
            scores.append(f"| {dataset} | {kind} | {row('teacher', (*fs.FEW_STEPS, fs.TEACHER_STEPS))} | "
                          f"{row('reflow', fs.FEW_STEPS)} | {row('consistency', fs.FEW_STEPS)} | "
                          f"{meter.straightness['teacher']:.3f} → {meter.straightness['reflow']:.4f} | "
                          f"{gain:.0f}× {'met' if gain >= 5 else 'missed'} | {ratio:.2f}× {'met' if ratio <= 2 else 'missed'} |")
            log(times[-1])
            log(scores[-1])
    emit([f"## Page 12 in 2-D, at its defaults ({describe_hardware('cpu', 1)})", "", *times, "",
          "Energy distances to fresh data (2000 samples each):", "", *scores])


if __name__ == "__main__":
    main()
