"""Benchmark of the 2-D playground (page 9): how long training the MLP takes, and the exact denoiser's cost.

    python -m bench.playground            # 3 repeats of every row; about a minute on a quiet 2-core machine
    python -m bench.playground --quick    # one repeat of a few short rows

Prints Markdown tables: training time of the page's settings (best and median of the repeats; on a shared
machine the best is the machine's speed, the median what a student waits), and the time of one exact-denoiser
call and of a full DDIM run with it, for the page's sizes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/playground.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from diffusion_core import toy2d
from diffusion_core.models.devices import describe_hardware
from diffusion_core.process.schedules import make_schedule


def timed(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="runs of each row")
    p.add_argument("--quick", action="store_true", help="one repeat, short rows only")
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    schedule = make_schedule("linear", 1000)
    data = toy2d.distribution("moons").sample(500, torch.Generator().manual_seed(0))

    print(f"Machine: {describe_hardware()}; training runs on one thread (toy2d.one_thread).\n")
    print("| training steps | width | parameters | best (s) | median (s) | steps/s (best) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [(300, 128)] if args.quick else [(1000, 64), (3000, 128), (5000, 128), (3000, 256)]
    for steps, width in rows:
        config = toy2d.MLPConfig(T=1000, width=width)
        best, median = timed(lambda: toy2d.train_mlp(data, schedule, config, toy2d.TrainConfig(steps=steps)), repeats)
        params = sum(q.numel() for q in toy2d.EpsMLP(config).parameters())
        print(f"| {steps} | {width} | {params} | {best:.2f} | {median:.2f} | {steps / best:.0f} |", flush=True)

    print("\n| exact denoiser | training points M | queries N | best (s) | median (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    sizes = [(500, 289)] if args.quick else [(500, 289), (10000, 289), (500, 100), (10000, 100)]
    for m, n in sizes:
        points = toy2d.distribution("moons").sample(m, torch.Generator().manual_seed(1))
        queries = torch.randn(n, 2, generator=torch.Generator().manual_seed(2))
        with toy2d.one_thread():
            best, median = timed(lambda: toy2d.optimal_x0(queries, 100, points, schedule), repeats)
        print(f"| one call (a field of 17 x 17 arrows when N = 289) | {m} | {n} | {best:.4f} | {median:.4f} |", flush=True)
        if n == 100:
            steps = 100 if args.quick else 1000
            fn = toy2d.exact_eps_fn(points, schedule)
            best, median = timed(lambda: toy2d.reverse_paths(fn, queries, schedule, sampler="ddim", steps=steps), repeats)
            print(f"| DDIM over {steps} steps (the memorisation test) | {m} | {n} | {best:.2f} | {median:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
