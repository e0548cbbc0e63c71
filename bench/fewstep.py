"""One or two network calls: the reflowed student against DDIM and DPM-Solver++ at 1, 2, 4 and 8 calls.

    python -m bench.fewstep                       # -> pretrained/fewstep_sweep.json + a Markdown table
    python -m bench.fewstep --samples 200 --out /tmp/check.json --student runs/reflow/student
    python -m bench.fewstep --retime               # only the times again, for the rows in the file

Every row draws ``--samples`` class-conditional digits (0, 1, ..., 9, 0, ...) from the same x_T as
bench/sweep.py (one generator per batch of 250, seeded with (seed, batch)), judged by the shipped classifier:
accuracy with Wilson's 95 % interval, and the Fréchet distance of its features to the 10000 MNIST test
digits next to the floor (as many real training digits; compare fd / fd_floor). The teacher runs at the
page's guidance (two network passes per call, batched as one); the student's guidance is in its flow (one
pass per call). seconds_16: the CPU time of this process for 16 digits at ``--threads`` (1 by default:
what one idle core takes on a shared machine), median of 3 after a warm-up; the wall time beside it.

The JSON also holds, for the page, the teacher's digits at 50 calls (DPM-Solver++) from a few x_T
(``gallery``): the page draws the cheap columns (DPM-Solver++ at 2 calls, the student at 1 and 2) live.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/fewstep.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from bench.run import DEFAULT_DATA, FULL, Sizes, digits, emit, log, reference, timed
from diffusion_core.models.classifier import embed, load_classifier
from diffusion_core.models.devices import describe_hardware
from diffusion_core.models.metrics import class_accuracy, frechet_distance_from_stats, gaussian_stats, wilson_interval
from diffusion_core.models.reflow import WEIGHTS_NAME as STUDENT_WEIGHTS
from diffusion_core.models.reflow import load_reflow
from diffusion_core.models.weights import PRETRAINED_DIR, load_denoiser
from diffusion_core.samplers import DEFAULT_GUIDANCE, generate

OUT = PRETRAINED_DIR / "fewstep_sweep.json"
CALLS = (1, 2, 4, 8)
GALLERY_SEEDS = (0, 1, 2, 3, 4, 5)
GALLERY_CALLS = 50
GOALS = {"two_calls": {"calls": 2, "accuracy": 0.99, "fd_over_floor": 3.0}, "one_call": {"calls": 1, "accuracy": 0.95}}
BATCH = 250  # as bench/sweep.py: the same x_T for the same seed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--calls", type=int, nargs="+", default=list(CALLS))
    p.add_argument("--student", type=Path, default=PRETRAINED_DIR, help="folder of reflow.safetensors + reflow.json")
    p.add_argument("--teacher", type=Path, default=PRETRAINED_DIR)
    p.add_argument("--no-teacher", action="store_true", help="only the student's rows (a quick check of a run)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retime", action="store_true", help="only measure seconds_16 again for the rows in --out")
    return p.parse_args(argv)


def configurations(calls: list[int], teacher: bool) -> list[tuple[str, int, dict]]:
    """(sampler, calls, kwargs of generate) for every row; DPM-Solver++ at 1 call is DDIM at 1 call."""
    rows = [("reflow", k, {"steps": k}) for k in calls]
    if teacher:
        rows += [("ddim", k, {"sampler": "ddim", "steps": k, "spacing": "linear", "guidance": DEFAULT_GUIDANCE})
                 for k in calls]
        rows += [("dpm_solver++", k, {"sampler": "dpm_solver++", "steps": k, "spacing": "logsnr",
                                      "guidance": DEFAULT_GUIDANCE}) for k in calls if k > 1]
    return rows


def draw(model, labels: list[int], kwargs: dict, seed: int) -> torch.Tensor:
    out = []
    for b, i in enumerate(range(0, len(labels), BATCH)):
        generator = torch.Generator().manual_seed(seed * 100_003 + b)
        out.append(generate(model, labels[i:i + BATCH], generator=generator, **kwargs))
    return torch.cat(out)


def seconds_16(model, kwargs: dict, args: argparse.Namespace):
    """CPU and wall time of 16 digits, median of 3 after a warm-up."""
    return timed(lambda: generate(model, digits(16), generator=torch.Generator().manual_seed(args.seed), **kwargs), 3)


def retime(args: argparse.Namespace, student, teacher) -> None:
    """seconds_16 again for every row of --out (e.g. on a quieter machine, or after a change of speed only)."""
    result = json.loads(args.out.read_text())
    kwargs = {(n, k): kw for n, k, kw in configurations(sorted({r["nfe"] for r in result["rows"]}), True)}
    for row in result["rows"]:
        timing = seconds_16(student if row["sampler"] == "reflow" else teacher, kwargs[row["sampler"], row["nfe"]], args)
        row["seconds_16"], row["cpu_seconds_16"], row["wall_seconds_16"] = timing.cpu, timing.cpu, timing.wall
        log(table([row])[-1])
    result["meta"]["retimed"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result["meta"]["timing_machine"] = describe_hardware("cpu", args.threads)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    emit(table(result["rows"]))


def measure(name: str, model, k: int, kwargs: dict, classifier, ref, args: argparse.Namespace) -> dict:
    labels = digits(args.samples)
    x = draw(model, labels, kwargs, args.seed)
    out = embed(classifier, x)
    hits = int((out.predictions == np.array(labels)).sum())
    low, high = wilson_interval(hits, len(labels))
    timing = seconds_16(model, kwargs, args)
    student = name == "reflow"
    return {"sampler": name, "nfe": k, "spacing": "uniform t" if student else kwargs["spacing"],
            "n_samples": len(labels), "accuracy": class_accuracy(out.predictions, np.array(labels)),
            "accuracy_ci_low": low, "accuracy_ci_high": high,
            "fd": frechet_distance_from_stats(gaussian_stats(out.features), ref.test), "fd_floor": ref.floor,
            "seconds_16": timing.cpu, "cpu_seconds_16": timing.cpu, "wall_seconds_16": timing.wall,
            "guidance": model.config.guidance if student else DEFAULT_GUIDANCE, "passes_per_call": 1 if student else 2}


def gallery(teacher, seeds=GALLERY_SEEDS) -> dict:
    """The teacher's digits 0-9 at 50 calls (DPM-Solver++, log-SNR spacing) from x_T of each seed, as uint8
    bytes [10, 28, 28] in base64: x_T = randn(10, 1, 28, 28) of ``torch.Generator().manual_seed(seed)``."""
    images = {}
    for seed in seeds:
        x = generate(teacher, list(range(10)), sampler="dpm_solver++", steps=GALLERY_CALLS, spacing="logsnr",
                     generator=torch.Generator().manual_seed(seed))
        pixels = ((x[:, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        images[str(seed)] = base64.b64encode(pixels.tobytes()).decode("ascii")
    return {"labels": list(range(10)), "calls": GALLERY_CALLS, "sampler": "dpm_solver++", "spacing": "logsnr",
            "guidance": DEFAULT_GUIDANCE, "shape": [10, 28, 28], "uint8_base64": images}


def verdicts(rows: list[dict]) -> dict:
    """Each goal of issue 22 against the student's rows: met or not, and by how much."""
    by_k = {r["nfe"]: r for r in rows if r["sampler"] == "reflow"}
    out = {}
    for name, goal in GOALS.items():
        r = by_k.get(goal["calls"])
        if r is None:
            continue
        ratio = r["fd"] / r["fd_floor"]
        met = r["accuracy"] >= goal["accuracy"] and ratio <= goal.get("fd_over_floor", float("inf"))
        out[name] = {**goal, "measured_accuracy": r["accuracy"], "measured_fd_over_floor": ratio, "met": met}
    return out


def table(rows: list[dict]) -> list[str]:
    order = {"reflow": 0, "dpm_solver++": 1, "ddim": 2}
    lines = ["| sampler | network calls | passes per call | samples | accuracy (95 % CI) | FD | FD / floor | "
             "16 digits (CPU, 1 thread) | 16 digits (wall) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (order[r["sampler"]], r["nfe"])):
        lines.append(f"| {r['sampler']} | {r['nfe']} | {r['passes_per_call']} | {r['n_samples']} | "
                     f"{100 * r['accuracy']:.1f} % ({100 * r['accuracy_ci_low']:.1f}–{100 * r['accuracy_ci_high']:.1f}) | "
                     f"{r['fd']:.3f} | {r['fd'] / r['fd_floor']:.2f}× | {r['cpu_seconds_16']:.3f} s | "
                     f"{r['wall_seconds_16']:.3f} s |")
    return lines


def shown(path: Path) -> str:
    """A path as the repository names it (pretrained/reflow.safetensors), or as given when outside it."""
    try:
        return str(path.resolve().relative_to(PRETRAINED_DIR.parent))
    except ValueError:
        return str(path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "missing"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    student = load_reflow("cpu", args.student)
    teacher = load_denoiser("cpu", args.teacher)
    if args.retime:
        retime(args, student, teacher)
        return
    classifier = load_classifier(PRETRAINED_DIR, "cpu")
    ref = reference(classifier, argparse.Namespace(data=args.data, seed=args.seed),
                    Sizes(**{**FULL.__dict__}), args.samples)
    rows = []
    for name, k, kwargs in configurations(args.calls, not args.no_teacher):
        started = time.perf_counter()
        rows.append(measure(name, student if name == "reflow" else teacher, k, kwargs, classifier, ref, args))
        log(table(rows[-1:])[-1] + f"  ({time.perf_counter() - started:.0f} s)")
    config = json.loads((args.student / "reflow.json").read_text())
    meta = {"machine": describe_hardware("cpu", args.threads), "threads": args.threads, "seed": args.seed,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "student": f"{shown(args.student / STUDENT_WEIGHTS)} (sha256 {sha(args.student / STUDENT_WEIGHTS)})",
            "pairs": config["pairs"], "training": config.get("training", {}), "student_guidance": config["guidance"],
            "seconds_16": f"CPU time of the process, {args.threads} thread(s), median of 3 after a warm-up",
            "calls": "network calls = sequential evaluations of the network; a guided teacher call batches its "
                     "conditional and unconditional passes (2 passes), a student call is one pass"}
    result = {"meta": meta, "rows": rows, "goals": verdicts(rows)}
    if not args.no_teacher:
        result["gallery"] = gallery(teacher)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    emit([f"## One or two network calls ({meta['machine']})",
          "FD against 10000 MNIST test digits in the classifier's feature space; the floor is the FD of as many "
          "real training digits as samples.", "", *table(rows), "",
          *(f"- goal {n}: {'met' if v['met'] else 'missed'} (accuracy {100 * v['measured_accuracy']:.1f} %, "
            f"FD {v['measured_fd_over_floor']:.2f}× the floor)" for n, v in result["goals"].items())])


if __name__ == "__main__":
    main()
