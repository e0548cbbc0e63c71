"""Reverse SDE against the ODE on MNIST at equal network calls: Euler-Maruyama, Euler-Maruyama with the Langevin
corrector, and the probability-flow ODE by Heun (``diffusion_core.samplers.continuous``), judged like page 8's
quality meter by the shipped classifier (accuracy with Wilson's 95 % interval) and by the Fréchet distance against
the MNIST test digits next to the floor of as many real training digits (bench/run.py's machinery).

    python -m bench.sde_sampling                          # 100 digits per setting -> pretrained/sde_sampling.json
    python -m bench.sde_sampling --samples 20 --calls 20 --out /tmp/s.json   # a smoke run

Every setting draws the same x_1 (one generator seeded with ``--seed``, labels 0, 1, ..., 9, 0, ...) at the
default guidance of page 8. Rows are written after each setting; a rerun skips the settings already in the file.
Output: {"meta": {...}, "rows": [{"method": "em" | "pc" | "ode", "calls": int, "n_samples": int,
"accuracy": float, "accuracy_ci_low": float, "accuracy_ci_high": float, "fd": float, "fd_floor": float,
"seconds": float}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/sde_sampling.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from bench.run import DEFAULT_DATA, FULL, digits, reference
from diffusion_core.models.classifier import embed, load_classifier
from diffusion_core.models.devices import describe_hardware
from diffusion_core.models.metrics import class_accuracy, frechet_distance_from_stats, gaussian_stats, wilson_interval
from diffusion_core.models.weights import PRETRAINED_DIR, load_denoiser
from diffusion_core.samplers import DEFAULT_GUIDANCE
from diffusion_core.samplers.continuous import CONTINUOUS_METHODS, sample_continuous

OUT = PRETRAINED_DIR / "sde_sampling.json"
CALLS = (20, 50, 100, 200)


def draw(model, method: str, calls: int, labels: list[int], args: argparse.Namespace) -> torch.Tensor:
    generator = torch.Generator().manual_seed(args.seed)
    out = []
    for i in range(0, len(labels), args.batch):
        out.append(sample_continuous(model, labels[i:i + args.batch], method=method, calls=calls,
                                     guidance=args.guidance, generator=generator))
        print(f"  {method}-{calls}: {min(i + args.batch, len(labels))}/{len(labels)}", file=sys.stderr, flush=True)
    return torch.cat(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--calls", type=int, nargs="+", default=list(CALLS))
    p.add_argument("--methods", nargs="+", choices=CONTINUOUS_METHODS, default=list(CONTINUOUS_METHODS))
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, classifier = load_denoiser("cpu"), load_classifier()
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    ref = reference(classifier, argparse.Namespace(data=args.data, seed=args.seed), FULL, args.samples)
    labels = digits(args.samples)
    for calls in args.calls:
        for method in args.methods:
            if any(r["method"] == method and r["calls"] == calls and r["n_samples"] >= args.samples for r in rows):
                continue
            began = time.perf_counter()
            x = draw(model, method, calls, labels, args)
            seconds = time.perf_counter() - began
            emb = embed(classifier, x)
            k = int((emb.predictions == np.array(labels)).sum())
            low, high = wilson_interval(k, len(labels))
            rows.append({"method": method, "calls": calls, "n_samples": len(labels),
                         "accuracy": class_accuracy(emb.predictions, np.array(labels)), "accuracy_ci_low": low,
                         "accuracy_ci_high": high, "fd": frechet_distance_from_stats(gaussian_stats(emb.features), ref.test),
                         "fd_floor": ref.floor, "seconds": round(seconds, 1)})
            meta = {"machine": describe_hardware(threads=args.threads), "guidance": args.guidance, "seed": args.seed,
                    "source": "bench/sde_sampling.py", "date": time.strftime("%Y-%m-%d")}
            out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print("| method | network calls | samples | accuracy (95 % CI) | FD | FD / floor |")
    print("|---|---|---|---|---|---|")
    names = {"em": "reverse SDE, Euler–Maruyama", "pc": "reverse SDE + Langevin corrector (r = 0.16)",
             "ode": "PF-ODE, Heun"}
    for r in sorted(rows, key=lambda r: (r["calls"], CONTINUOUS_METHODS.index(r["method"]))):
        print(f"| {names[r['method']]} | {r['calls']} | {r['n_samples']} | {100 * r['accuracy']:.0f} % "
              f"({100 * r['accuracy_ci_low']:.0f}–{100 * r['accuracy_ci_high']:.0f}) | {r['fd']:.2f} | "
              f"{r['fd'] / r['fd_floor']:.2f} |")


if __name__ == "__main__":
    main()
