"""How many steps does it take? DDPM, DDIM and DPM-Solver++ against the number of network evaluations.

    python -m bench.sweep                  # the shipped sweep -> pretrained/sampler_sweep.json + a Markdown table
    python -m bench.sweep --samples 200 --out /tmp/check.json --configs dpm_solver++:10:logsnr dpm_solver++:10:linear

For each configuration ``sampler:nfe:spacing`` (DPM-Solver++ may add ``:lof`` for lower_order_final=True,
a first-order step also into the last timestep before x_0; the default ``:full`` is second order there) it draws ``--samples`` class-conditional digits (0, 1, ..., 9, 0, ...) at the default guidance of
``sample``, from the same x_T for every configuration (one generator seeded with ``--seed``), and measures
- accuracy: the shipped evaluation classifier reads the digit that was asked for, with Wilson's 95 % interval;
- fd: the Fréchet distance between the classifier features of the samples and of the 10,000 MNIST test
  digits (bench/run.py's machinery), next to fd_floor, the FD of as many real training digits (what a
  perfect model scores at that sample size; FD is biased upwards at small N, so compare fd / fd_floor);
- seconds_16: wall-clock seconds for 16 digits on this machine (median of 3, one run for over 200 NFE).

NFE (network evaluations) = steps: a guided step batches its conditional and unconditional passes as one call.

Output file (``--out``; the steps page reads it): a JSON object
    {"meta": {machine, threads, guidance, seed, denoiser, date, notes, ...}, "extra_rows": [rows at other
     settings than the defaults (``--guidance``, DPM-Solver++'s ``:lof``), same fields],
     "rows": [{"sampler": "ddpm" | "ddim" | "dpm_solver++", "nfe": int, "spacing": "linear" | "logsnr",
               "n_samples": int, "accuracy": float in [0, 1], "accuracy_ci_low": float, "accuracy_ci_high": float,
               "fd": float, "fd_floor": float, "seconds_16": float,
               "lower_order_final": bool (DPM-Solver++ only), "guidance": float, "cpu_seconds_16": float}, ...]}
The first ten fields are the schema; the last ones are extra information. Rows are written after each
configuration, so a stopped sweep keeps what it finished and a rerun skips configurations already in the
file with at least as many samples; generated batches are kept in ``--cache`` so a long configuration
(DDPM over all T steps) resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/sweep.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from bench.run import DEFAULT_DATA, FULL, Reference, Sizes, describe_weights, digits, emit, log, reference, timed
from diffusion_core.models.classifier import embed, load_classifier
from diffusion_core.models.devices import describe_hardware, resolve_device
from diffusion_core.models.metrics import class_accuracy, frechet_distance_from_stats, gaussian_stats, wilson_interval
from diffusion_core.samplers import DEFAULT_GUIDANCE, SAMPLERS, SPACINGS, generate
from diffusion_core.models.weights import PRETRAINED_DIR, load_denoiser

SWEEP_FILE = PRETRAINED_DIR / "sampler_sweep.json"
# Cheapest first; DDPM over all T steps last. Spacing per sampler: see pretrained/MODEL_CARD.md.
DEFAULT_CONFIGS = (
    "dpm_solver++:6:logsnr", "dpm_solver++:10:logsnr", "ddim:10:linear", "ddim:50:linear", "dpm_solver++:6:logsnr:lof",
    "dpm_solver++:5:logsnr", "dpm_solver++:8:logsnr", "ddim:5:linear", "ddpm:10:linear", "ddpm:5:linear",
    "dpm_solver++:20:logsnr", "ddim:20:linear", "ddpm:20:linear", "dpm_solver++:50:logsnr",
    "ddpm:50:linear", "ddpm:1000:linear",
)


@dataclass(frozen=True)
class Config:
    sampler: str  # "ddpm", "ddim" or "dpm_solver++"
    nfe: int  # network evaluations = steps
    spacing: str  # "linear" or "logsnr"
    lower_order_final: bool = False  # DPM-Solver++: first-order step also into the last timestep (nfe < 15)

    @classmethod
    def parse(cls, text: str) -> "Config":
        parts = text.split(":")
        if len(parts) not in (3, 4) or parts[0] not in SAMPLERS or parts[2] not in SPACINGS or not parts[1].isdigit():
            raise argparse.ArgumentTypeError(f"expected sampler:nfe:spacing[:lof|:full], got {text!r}")
        if len(parts) == 4 and parts[3] not in ("lof", "full"):
            raise argparse.ArgumentTypeError(f"the fourth part must be lof or full, got {parts[3]!r}")
        return cls(parts[0], int(parts[1]), parts[2], len(parts) == 4 and parts[3] == "lof")

    @property
    def name(self) -> str:
        tail = ", lower-order final" if self.sampler == "dpm_solver++" and self.lower_order_final else ""
        return f"{self.sampler}-{self.nfe} ({self.spacing}{tail})"

    def kwargs(self) -> dict:
        extra = {"lower_order_final": self.lower_order_final} if self.sampler == "dpm_solver++" else {}
        return {"sampler": self.sampler, "steps": self.nfe, "spacing": self.spacing, **extra}

    def matches(self, row: dict, guidance: float) -> bool:
        return (row["sampler"], row["nfe"], row["spacing"], row.get("guidance", DEFAULT_GUIDANCE)) == (
            self.sampler, self.nfe, self.spacing, guidance) and (
            self.sampler != "dpm_solver++" or row.get("lower_order_final", False) == self.lower_order_final)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", type=Config.parse, default=[Config.parse(c) for c in DEFAULT_CONFIGS],
                   help="sampler:nfe:spacing[:lof|:full], run in this order")
    p.add_argument("--samples", type=int, default=1000, help="class-conditional samples per configuration")
    p.add_argument("--out", type=Path, default=SWEEP_FILE, help="JSON file, updated after each configuration")
    p.add_argument("--cache", type=Path, default=Path("/tmp/sampler_sweep_cache"), help="finished batches")
    p.add_argument("--note", action="append", default=[], help="a sentence for meta.notes (repeatable)")
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--weights", type=Path, default=PRETRAINED_DIR)
    p.add_argument("--classifier", type=Path, default=PRETRAINED_DIR)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--test-images", type=int, default=FULL.test_images)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retime", action="store_true", help="only measure seconds_16 again for the rows in --out")
    p.add_argument("--cpu-time", action="store_true",
                   help="with --retime: seconds_16 is the CPU time of the process (use --threads 1): on a shared "
                        "machine it is what one idle core would take, where the wall time counts the waiting")
    return p.parse_args(argv)


def read_rows(path: Path) -> tuple[dict, list[dict]]:
    """meta and every row, those of "rows" and of "extra_rows" together."""
    if not path.is_file():
        return {}, []
    data = json.loads(path.read_text())
    return (data.get("meta", {}), data["rows"] + data.get("extra_rows", [])) if isinstance(data, dict) else ({}, data)


def write_rows(path: Path, meta: dict, rows: list[dict]) -> None:
    """Rows at the default settings go to "rows", the others (another guidance, lower_order_final=True) to
    "extra_rows" (same fields), so that "rows" holds one row per sampler, NFE and spacing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")

    def is_default(r: dict) -> bool:
        return r.get("guidance", DEFAULT_GUIDANCE) == DEFAULT_GUIDANCE and not r.get("lower_order_final", False)

    default, extra = [r for r in rows if is_default(r)], [r for r in rows if not is_default(r)]
    tmp.write_text(json.dumps({"meta": meta, "rows": default, "extra_rows": extra}, indent=1) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file


def draw_cached(model, config: Config, labels: list[int], args: argparse.Namespace) -> torch.Tensor:
    """Samples for ``labels`` in batches of args.batch, each batch from its own generator seeded with
    (seed, batch index), so that a batch found in the cache and a fresh one agree."""
    key = f"{config.sampler}-{config.nfe}-{config.spacing}-{int(config.lower_order_final)}-s{args.guidance:g}-seed{args.seed}"
    out, start = [], time.perf_counter()
    for b, i in enumerate(range(0, len(labels), args.batch)):
        path = args.cache / f"{key}-b{b}-n{args.batch}.pt"
        if path.is_file():
            out.append(torch.load(path))
            continue
        generator = torch.Generator().manual_seed(args.seed * 100_003 + b)
        x = generate(model, labels[i:i + args.batch], generator=generator, guidance=args.guidance, **config.kwargs())
        args.cache.mkdir(parents=True, exist_ok=True)
        torch.save(x, path)
        out.append(x)
        log(f"  {config.name}: {i + len(x)}/{len(labels)} samples, {time.perf_counter() - start:.0f} s")
    return torch.cat(out)


def seconds_16(model, config: Config, args: argparse.Namespace):
    """Wall and CPU time of 16 digits (median of 3 after a warm-up; one run over 200 NFE)."""
    def run16() -> None:
        generate(model, digits(16), generator=torch.Generator().manual_seed(args.seed), guidance=args.guidance,
                 **config.kwargs())

    return timed(run16, 1 if config.nfe > 200 else 3, warm_up=config.nfe <= 200)


def retime(model, rows: list[dict], args: argparse.Namespace) -> None:
    for row in rows:
        config = Config(row["sampler"], row["nfe"], row["spacing"], row.get("lower_order_final", False))
        timing = seconds_16(model, config, args)
        row["seconds_16"] = timing.cpu if args.cpu_time else timing.wall
        row["wall_seconds_16"], row["cpu_seconds_16"] = timing.wall, timing.cpu
        log(f"{config.name}: wall {timing.wall:.2f} s, CPU {timing.cpu:.2f} s")


def measure(model, classifier, ref: Reference, config: Config, args: argparse.Namespace) -> dict:
    labels = digits(args.samples)
    x = draw_cached(model, config, labels, args)
    out = embed(classifier, x)
    k = int((out.predictions == np.array(labels)).sum())
    low, high = wilson_interval(k, len(labels))
    fd = frechet_distance_from_stats(gaussian_stats(out.features), ref.test)
    timing = seconds_16(model, config, args)
    row = {"sampler": config.sampler, "nfe": config.nfe, "spacing": config.spacing, "n_samples": len(labels),
           "accuracy": class_accuracy(out.predictions, np.array(labels)), "accuracy_ci_low": low,
           "accuracy_ci_high": high, "fd": fd, "fd_floor": ref.floor, "seconds_16": timing.wall,
           "guidance": args.guidance, "cpu_seconds_16": timing.cpu}
    if config.sampler == "dpm_solver++":
        row["lower_order_final"] = config.lower_order_final
    return row


def table(rows: list[dict]) -> list[str]:
    lines = ["| sampler | NFE | spacing | guidance | samples | accuracy (95 % CI) | FD | FD / floor | 16 digits |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (SAMPLERS.index(r["sampler"]), r["nfe"], r["spacing"],
                                          r.get("lower_order_final", False), r.get("guidance", DEFAULT_GUIDANCE))):
        tail = ", lower-order final" if r.get("lower_order_final", False) else ""
        lines.append(f"| {r['sampler']} | {r['nfe']} | {r['spacing']}{tail} | {r.get('guidance', DEFAULT_GUIDANCE):g} | "
                     f"{r['n_samples']} | "
                     f"{100 * r['accuracy']:.1f} % ({100 * r['accuracy_ci_low']:.1f}–{100 * r['accuracy_ci_high']:.1f}) | "
                     f"{r['fd']:.3f} | {r['fd'] / r['fd_floor']:.2f}× | {r['seconds_16']:.2f} s |")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    model = load_denoiser(device, args.weights)
    classifier = load_classifier(args.classifier, device)
    meta, rows = read_rows(args.out)
    if args.retime:
        retime(model, rows, args)
        how = ("CPU time of the process" if args.cpu_time else "wall-clock time") + \
            f", {torch.get_num_threads()} thread(s), median of 3 (1 run over 200 NFE)"
        write_rows(args.out, {**meta, "timing_machine": describe_hardware(device), "seconds_16": how,
                              "retimed": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, rows)
        emit(table(rows))
        return
    meta = {**meta, "machine": describe_hardware(device), "threads": torch.get_num_threads(),
            "guidance": DEFAULT_GUIDANCE, "seed": args.seed, "denoiser": describe_weights(args.weights),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "notes": sorted(set(meta.get("notes", [])) | set(args.note))}
    log(f"reference statistics: {args.test_images} test digits, floor with {args.samples} training digits")
    sizes = Sizes(**{**FULL.__dict__, "test_images": args.test_images})
    ref = reference(classifier, args, sizes, args.samples)
    for config in args.configs:
        done = [r for r in rows if config.matches(r, args.guidance)]
        if any(r["n_samples"] >= args.samples for r in done):
            log(f"{config.name}: already in {args.out}, skipped")
            continue
        log(f"{config.name}: {args.samples} samples")
        row = measure(model, classifier, ref, config, args)
        rows = [r for r in rows if not config.matches(r, args.guidance)] + [row]
        write_rows(args.out, meta, rows)
        log("  " + table([row])[-1])
    emit([f"## Samplers against network evaluations ({meta['machine']})",
          "FD against 10000 MNIST test digits in the classifier's feature space; the floor is the FD of as "
          "many real training digits as samples.", "", *table(rows)])


if __name__ == "__main__":
    main()
