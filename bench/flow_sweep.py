"""The shipped eps network as a rectified flow: Euler against Heun at 2 to 50 network calls, beside DDIM and
DPM-Solver++ at the same calls, on page 8's quality meter (the classifier's accuracy and Fréchet distance).

    python -m bench.flow_sweep                     # 500 digits per row, one thread -> pretrained/flow_sweep.json
    python -m bench.flow_sweep --samples 100 --out /tmp/flow.json --configs euler:10 heun:10

Every row draws ``--samples`` class-conditional digits (0, 1, ..., 9, 0, ...) at the default guidance of
``sample`` from the x_T of bench/sweep.py (batch b of 250 from a generator seeded with seed * 100003 + b), so
each sampler starts from the same noise. ``euler:N`` and ``heun:N`` run the flow ODE of the rectified-flow path
(``samplers.flow_network.sample_flow``) over N equal steps in t from t_start = 1 - 4.9e-5 (the path's time with
the log SNR of t = T) to 0, x0_hat clipped to [-1, 1] as in the other samplers; Heun (Karras et al. 2022, alg. 1)
costs 2N - 1 calls. ``ddim:N`` (linear timesteps) and ``dpm_solver++:N`` (even in log SNR) are those of page 8.
NFE = network calls; a guided call batches its two passes. Fields as in bench/sweep.py (accuracy with Wilson's
95 % interval, fd against the 10000 test digits and fd_floor, the FD of as many training digits).
"identity" holds the largest pixel difference between DDIM and Euler at DDIM's times, in float32 and float64.
Rows are written after each configuration; a rerun skips those already in the file with as many samples.
Size: 500 digits x 43 configurations, 645 guided network calls per digit: about 14 minutes of one core's CPU time
(2.6 ms per guided call per digit, measured with process_time); the shipped file took 41 minutes of wall time on
one thread of the shared 2-core machine at a load average of about 12 (meta.seconds_total).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/flow_sweep.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from bench.run import DEFAULT_DATA, FULL, ROOT, Sizes, describe_weights, digits, emit, log, reference
from diffusion_core.models.classifier import embed, load_classifier
from diffusion_core.models.devices import describe_hardware
from diffusion_core.models.metrics import class_accuracy, frechet_distance_from_stats, gaussian_stats, wilson_interval
from diffusion_core.models.weights import PRETRAINED_DIR, load_denoiser
from diffusion_core.samplers import DEFAULT_GUIDANCE, generate
from diffusion_core.samplers.flow import network_calls
from diffusion_core.samplers.flow_network import same_coin, sample_flow

FLOW_SWEEP_FILE = PRETRAINED_DIR / "flow_sweep.json"
CALLS = (2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)  # Euler, DDIM and DPM-Solver++: one call per step
HEUN_STEPS = (2, 3, 4, 5, 6, 8, 10, 15, 20, 25)  # 3, 5, ..., 49 calls
DEFAULT_CONFIGS = tuple(f"{s}:{n}" for n in CALLS for s in ("euler", "ddim", "dpm_solver++")) + tuple(
    f"heun:{n}" for n in HEUN_STEPS)
SAMPLERS = ("euler", "heun", "ddim", "dpm_solver++")
BATCH = 250  # bench/sweep.py's batch: the same x_T per batch index


def parse_config(text: str) -> tuple[str, int]:
    sampler, _, steps = text.partition(":")
    if sampler not in SAMPLERS or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected sampler:steps with sampler in {SAMPLERS}, got {text!r}")
    return sampler, int(steps)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", type=parse_config, default=[parse_config(c) for c in DEFAULT_CONFIGS])
    p.add_argument("--samples", type=int, default=500, help="class-conditional digits per configuration")
    p.add_argument("--out", type=Path, default=FLOW_SWEEP_FILE)
    p.add_argument("--weights", type=Path, default=PRETRAINED_DIR)
    p.add_argument("--classifier", type=Path, default=PRETRAINED_DIR)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--test-images", type=int, default=FULL.test_images)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def calls(sampler: str, steps: int) -> int:
    return network_calls("heun", steps) if sampler == "heun" else steps


def x_T_batches(n: int, seed: int) -> list[torch.Tensor]:
    """bench/sweep.py's x_T: batch b of BATCH from its own generator seeded with seed * 100003 + b."""
    return [torch.randn((min(BATCH, n - i), 1, 28, 28), generator=torch.Generator().manual_seed(seed * 100_003 + b))
            for b, i in enumerate(range(0, n, BATCH))]


def draw(model, sampler: str, steps: int, labels: list[int], seed: int) -> torch.Tensor:
    out = []
    for b, x_T in enumerate(x_T_batches(len(labels), seed)):
        y = labels[b * BATCH:b * BATCH + len(x_T)]
        if sampler in ("euler", "heun"):
            out.append(sample_flow(model, y, x_T, steps=steps, method=sampler))
        else:
            spacing = "logsnr" if sampler == "dpm_solver++" else "linear"
            out.append(generate(model, y, x_start=x_T, sampler=sampler, steps=steps, spacing=spacing))
    return torch.cat(out)


def identity(model, steps: int = 10, n: int = 16) -> dict:
    """Largest |DDIM - Euler| over n digits at DDIM's times, float32 and float64 (the network cast with .double())."""
    x_T = x_T_batches(n, 0)[0]
    out = {"steps": steps, "n_samples": n}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        out[f"max_difference_{name}"] = same_coin(model.to(dtype), digits(n), x_T.to(dtype), steps=steps).max_difference
    model.float()
    return out


def table(rows: list[dict]) -> list[str]:
    lines = ["| sampler | steps | NFE | samples | accuracy (95 % CI) | FD | FD / floor | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (SAMPLERS.index(r["sampler"]), r["nfe"])):
        lines.append(f"| {r['sampler']} | {r['steps']} | {r['nfe']} | {r['n_samples']} | "
                     f"{100 * r['accuracy']:.1f} % ({100 * r['accuracy_ci_low']:.1f}–{100 * r['accuracy_ci_high']:.1f}) | "
                     f"{r['fd']:.3f} | {r['fd'] / r['fd_floor']:.2f}× | {r['seconds']:.0f} |")
    return lines


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)  # atomic: the page never reads half a file


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model = load_denoiser(device, args.weights)
    classifier = load_classifier(args.classifier, device)
    data = json.loads(args.out.read_text()) if args.out.is_file() else {}
    rows = data.get("rows", [])
    started = time.perf_counter()
    meta = {"machine": describe_hardware(device), "threads": torch.get_num_threads(), "guidance": DEFAULT_GUIDANCE,
            "seed": args.seed, "denoiser": describe_weights(args.weights).replace(str(ROOT) + "/", ""), "path": "rectified_flow",
            "flow_grid": "uniform in t from t_start = 1 - 4.9e-5 to 0", "clip": True,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds_total": data.get("meta", {}).get("seconds_total", 0.0)}
    if "identity" not in data:
        data["identity"] = identity(model)
        log(f"identity: {data['identity']}")
    ref = reference(classifier, args, Sizes(**{**FULL.__dict__, "test_images": args.test_images}), args.samples)
    labels = digits(args.samples)
    for sampler, steps in args.configs:
        if any(r["sampler"] == sampler and r["steps"] == steps and r["n_samples"] >= args.samples for r in rows):
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        x = draw(model, sampler, steps, labels, args.seed)
        out = embed(classifier, x)
        k = int((out.predictions == np.array(labels)).sum())
        low, high = wilson_interval(k, len(labels))
        row = {"sampler": sampler, "steps": steps, "nfe": calls(sampler, steps), "n_samples": len(labels),
               "accuracy": class_accuracy(out.predictions, np.array(labels)), "accuracy_ci_low": low,
               "accuracy_ci_high": high, "fd": frechet_distance_from_stats(gaussian_stats(out.features), ref.test),
               "fd_floor": ref.floor, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
        rows = [r for r in rows if not (r["sampler"] == sampler and r["steps"] == steps)] + [row]
        meta["seconds_total"] += row["seconds"]
        write(args.out, {**data, "meta": {**data.get("meta", {}), **meta}, "rows": rows})
        log("  " + table([row])[-1])
    data = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": rows}
    log(f"done in {time.perf_counter() - started:.0f} s")
    emit([f"## The shipped network as a rectified flow ({meta['machine']})",
          "Euler and Heun on the flow ODE (uniform t), DDIM (linear timesteps) and DPM-Solver++ (log-SNR) from the "
          "same x_T; FD against 10000 MNIST test digits, the floor is the FD of as many training digits.", "",
          *table(data["rows"])])


if __name__ == "__main__":
    main()
