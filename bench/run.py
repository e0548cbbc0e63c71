"""Benchmark of the denoiser on this machine: speed, and sample quality measured with the classifier.

    python -m bench.run                    # everything; DDPM-1000 over 1,000 samples is ~30 min on 2 cores
    python -m bench.run --quick            # a smoke run with tiny sizes
    python -m bench.run --parts speed quality --quality-samplers ddim --grid /tmp/samples.png

Markdown tables go to stdout as each part finishes; progress goes to stderr.

- speed: one guided network call for 1, 16 and 32 images (median of several), DDIM-50 and DDPM-T for
  16 digits, with guidance on (two network passes per step, batched as one).
- quality: 100 samples per digit at the default guidance of ``sample``; accuracy of the evaluation
  classifier, and the Fréchet distance (FD) between its features of the samples and of the 10,000
  MNIST test digits, next to the FD of as many real training digits (the floor: what a perfect model
  would score with that many samples).
- guidance: the same for DDIM-50 at several guidance scales s (accuracy against FD).
- unconditional: samples without a label; how they spread over the ten classes.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image

from diffusion_core.models.classifier import Classifier, embed, load_classifier
from diffusion_core.models.devices import describe_hardware, resolve_device
from diffusion_core.data.images import make_grid
from diffusion_core.models.metrics import (GaussianStats, class_accuracy, class_spread, frechet_distance_from_stats,
                                    gaussian_stats)
from diffusion_core.data.mnist import load_mnist, to_model_range
from diffusion_core.samplers import DEFAULT_GUIDANCE, generate, guided_eps
from diffusion_core.models.weights import PRETRAINED_DIR, WEIGHTS_NAME, Denoiser, load_denoiser

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist"
PARTS = ("speed", "quality", "guidance", "unconditional")
TARGETS = {"ddim": 1.5, "ddpm": 40.0}  # seconds for 16 digits (issue 4)
ACCURACY_TARGET, FD_TARGET_RATIO = 0.99, 1.5  # accuracy >= 99 %, FD <= 1.5 x floor (issue 4)


@dataclass(frozen=True)
class Sizes:
    """How much work each part does; ``--quick`` shrinks everything."""

    per_class: int  # class-conditional samples per digit (quality, guidance)
    unconditional: int  # samples without a label
    repeats: int  # timings per speed figure (the median is reported)
    ddim_steps: int  # steps of the DDIM runs
    ddpm_steps: int | None  # steps of the DDPM runs (None: all T)
    test_images: int  # MNIST test digits in the reference statistics (<= 10,000)


FULL = Sizes(per_class=100, unconditional=1000, repeats=7, ddim_steps=50, ddpm_steps=None, test_images=10_000)
QUICK = Sizes(per_class=1, unconditional=10, repeats=1, ddim_steps=5, ddpm_steps=10, test_images=100)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run that the tests can afford")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")
    p.add_argument("--quality-samplers", nargs="+", choices=("ddim", "ddpm"), default=["ddim", "ddpm"],
                   help="samplers of the quality part (DDPM over all T steps is the slow one)")
    p.add_argument("--guidances", type=float, nargs="+", default=[0.0, 1.0, 1.5, 2.0, 3.0, 5.0],
                   help="guidance scales of the sweep")
    p.add_argument("--per-class", type=int, help="samples per digit (default 100; 1 with --quick)")
    p.add_argument("--ddpm-steps", type=int, help="DDPM steps (default: all T; 10 with --quick)")
    p.add_argument("--weights", type=Path, default=PRETRAINED_DIR, help="folder with denoiser.safetensors + .json")
    p.add_argument("--classifier", type=Path, default=PRETRAINED_DIR, help="folder with classifier.safetensors + .json")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the MNIST IDX .gz files")
    p.add_argument("--batch", type=int, default=250, help="samples drawn at once (throughput)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (0: its default)")
    p.add_argument("--seed", type=int, default=0, help="seed of every generator")
    p.add_argument("--grid", type=Path, help="write a PNG grid of class-conditional samples here")
    return p.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(lines: list[str]) -> None:
    print("\n".join(lines) + "\n", flush=True)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Timing:
    wall: float  # median wall-clock seconds
    cpu: float  # median CPU seconds of this process (all its threads): on a shared machine,
    #             wall > cpu / threads says how much the other work slowed us down


def timed(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> Timing:
    """Median wall and CPU time of ``fn`` over ``repeats`` runs, after one warm-up run if asked."""
    if warm_up:
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(wall=statistics.median(walls), cpu=statistics.median(cpus))


def digits(n: int) -> list[int]:
    """0, 1, ..., 9, 0, 1, ...: n labels, as even over the digits as n allows."""
    return [i % 10 for i in range(n)]


def draw(model: Denoiser, labels: list[int], args: argparse.Namespace, what: str,
         **kwargs) -> tuple[torch.Tensor, float]:
    """Samples for ``labels`` in batches of args.batch; returns them [N, 1, 28, 28] and the seconds taken."""
    generator = torch.Generator().manual_seed(args.seed)
    out, start = [], time.perf_counter()
    for i in range(0, len(labels), args.batch):
        out.append(generate(model, labels[i:i + args.batch], generator=generator, **kwargs))
        log(f"  {what}: {min(i + args.batch, len(labels))}/{len(labels)} samples, {time.perf_counter() - start:.0f} s")
    return torch.cat(out), time.perf_counter() - start


@dataclass(frozen=True)
class Reference:
    """Classifier statistics of real digits."""

    test: GaussianStats  # of the MNIST test digits
    floor: float  # FD between as many training digits as samples and the test digits


def reference(classifier: Classifier, args: argparse.Namespace, sizes: Sizes, n_samples: int) -> Reference:
    test_images, _ = load_mnist(args.data, "test")
    train_images, _ = load_mnist(args.data, "train")
    test = gaussian_stats(embed(classifier, to_model_range(test_images[: sizes.test_images])).features)
    picks = np.random.default_rng(args.seed).choice(len(train_images), size=n_samples, replace=False)
    train = gaussian_stats(embed(classifier, to_model_range(train_images[picks])).features)
    return Reference(test=test, floor=frechet_distance_from_stats(train, test))


def fd_cell(fd: float, ref: Reference) -> str:
    return f"{fd:.2f} ({fd / ref.floor:.2f}x floor)" if ref.floor > 0 else f"{fd:.2f}"


# ---------------------------------------------------------------- parts
def run_speed(model: Denoiser, args: argparse.Namespace, sizes: Sizes) -> torch.Tensor:
    log("speed")
    g, T, device = DEFAULT_GUIDANCE, model.config.T, next(model.parameters()).device
    rows = []
    for n in (1, 16, 32):
        x, labels = torch.randn(n, 1, 28, 28).to(device), torch.tensor(digits(n), device=device)

        def call() -> None:
            with torch.inference_mode():
                guided_eps(model, x, T // 2, labels, g)

        timing = timed(call, 5 * sizes.repeats)
        rows.append(f"| one network call, {n} image{'s' if n > 1 else ''} (2 x {n} with guidance) | "
                    f"{1000 * timing.wall:.1f} ms | {1000 * timing.cpu:.1f} ms | |")
    images = None
    for sampler, steps in (("ddim", sizes.ddim_steps), ("ddpm", sizes.ddpm_steps or T)):
        repeats = sizes.repeats if sampler == "ddim" else 1
        result = {}

        def run() -> None:
            result["x"] = generate(model, digits(16), sampler=sampler, steps=steps, guidance=g,
                                   generator=torch.Generator().manual_seed(args.seed))

        timing = timed(run, repeats, warm_up=sampler == "ddim")  # DDPM-T is long enough to need none
        images = result["x"] if images is None else images
        target = f"<= {TARGETS[sampler]:g} s" if steps == (50 if sampler == "ddim" else T) else ""
        rows.append(f"| {sampler.upper()}-{steps}, 16 digits | {timing.wall:.2f} s | {timing.cpu:.2f} s | {target} |")
        log(f"  {sampler.upper()}-{steps}: {timing.wall:.2f} s")
    rows.append(f"| peak memory (RSS) of the process so far | {peak_rss_mb():.0f} MB | | |")
    emit([f"## Speed (guidance s = {g:g}, {torch.get_num_threads()} thread(s))",
          "Median wall-clock time, and CPU time of the process (all threads; wall > CPU / threads means "
          "other work shared the cores).", "",
          "| what | wall time | CPU time | target |", "|---|---|---|---|", *rows])
    return images


def run_quality(model: Denoiser, classifier: Classifier, ref: Reference, args: argparse.Namespace,
                sizes: Sizes) -> torch.Tensor | None:
    labels = digits(10 * sizes.per_class)
    rows, grid_images = [], None
    for sampler in args.quality_samplers:
        steps = sizes.ddim_steps if sampler == "ddim" else (sizes.ddpm_steps or model.config.T)
        log(f"quality: {sampler.upper()}-{steps}")
        x, seconds = draw(model, labels, args, f"{sampler.upper()}-{steps}", sampler=sampler, steps=steps)
        grid_images = x if grid_images is None else grid_images
        out = embed(classifier, x)
        accuracy = class_accuracy(out.predictions, np.array(labels))
        fd = frechet_distance_from_stats(gaussian_stats(out.features), ref.test)
        rows.append(f"| {sampler.upper()}-{steps} | {len(labels)} | {100 * accuracy:.1f} % | {fd_cell(fd, ref)} | "
                    f"{seconds:.0f} s |")
    rows.append(f"| real training digits (floor) | {len(labels)} | | {ref.floor:.2f} | |")
    emit([f"## Quality at the default guidance s = {DEFAULT_GUIDANCE:g}",
          f"Targets: accuracy >= {100 * ACCURACY_TARGET:g} %, FD <= {FD_TARGET_RATIO:g} x floor. "
          f"FD against {sizes.test_images:,} MNIST test digits, in the classifier's feature space.", "",
          "| sampler | samples | accuracy | FD | time |", "|---|---|---|---|---|", *rows])
    return grid_images


def run_guidance(model: Denoiser, classifier: Classifier, ref: Reference, args: argparse.Namespace,
                 sizes: Sizes) -> None:
    labels, rows = digits(10 * sizes.per_class), []
    for s in args.guidances:
        log(f"guidance sweep: s = {s:g}")
        x, seconds = draw(model, labels, args, f"DDIM-{sizes.ddim_steps}, s = {s:g}", sampler="ddim",
                          steps=sizes.ddim_steps, guidance=s)
        out = embed(classifier, x)
        fd = frechet_distance_from_stats(gaussian_stats(out.features), ref.test)
        rows.append(f"| {s:g} | {100 * class_accuracy(out.predictions, np.array(labels)):.1f} % | "
                    f"{fd_cell(fd, ref)} | {seconds:.0f} s |")
    emit([f"## Guidance sweep (DDIM-{sizes.ddim_steps}, {len(labels)} samples each)", "",
          "| guidance s | accuracy | FD | time |", "|---|---|---|---|", *rows])


def run_unconditional(model: Denoiser, classifier: Classifier, ref: Reference | None, args: argparse.Namespace,
                      sizes: Sizes) -> None:
    log("unconditional")
    x, seconds = draw(model, [-1] * sizes.unconditional, args, f"unconditional DDIM-{sizes.ddim_steps}",
                      sampler="ddim", steps=sizes.ddim_steps)
    out = embed(classifier, x)
    spread = class_spread(out.predictions)
    fd = f"; FD {frechet_distance_from_stats(gaussian_stats(out.features), ref.test):.2f}" if ref else ""
    emit([f"## Unconditional samples (DDIM-{sizes.ddim_steps}, {sizes.unconditional} samples, {seconds:.0f} s)",
          f"Classes as the classifier reads them: normalised entropy {spread.normalized_entropy:.3f} "
          f"(1 = even), max/min count {spread.max_min_ratio:.2f}{fd}.", "",
          "| digit | " + " | ".join(str(d) for d in range(10)) + " |", "|---" * 11 + "|",
          "| samples | " + " | ".join(str(int(c)) for c in spread.counts) + " |"])


def describe_weights(directory: Path) -> str:
    path = directory / WEIGHTS_NAME
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "missing"
    return f"{path} (sha256 {digest})"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    if args.per_class is not None:
        sizes = Sizes(**{**sizes.__dict__, "per_class": args.per_class})
    if args.ddpm_steps is not None:
        sizes = Sizes(**{**sizes.__dict__, "ddpm_steps": args.ddpm_steps})
    device = resolve_device(args.device)
    model = load_denoiser(device, args.weights)
    emit(["# Denoiser benchmark" + (" (--quick: tiny sizes, not comparable)" if args.quick else ""), "",
          f"- denoiser: {describe_weights(args.weights)}, schedule {model.config.schedule}, T = {model.config.T}",
          f"- machine: {describe_hardware(device)}",
          f"- {time.strftime('%Y-%m-%d %H:%M')}, seed {args.seed}, batches of {args.batch}"])
    grid_images = None
    if "speed" in args.parts:
        grid_images = run_speed(model, args, sizes)
    needs_classifier = any(p in args.parts for p in ("quality", "guidance", "unconditional"))
    if needs_classifier:
        classifier = load_classifier(args.classifier, device)
        n = 10 * sizes.per_class
        log(f"reference statistics: {sizes.test_images} test digits, floor with {n} training digits")
        ref = reference(classifier, args, sizes, n) if args.data.is_dir() else None
        if ref is None:
            log(f"MNIST not found at {args.data}: no Fréchet distances")
        if ref is not None and "quality" in args.parts:
            grid_images = run_quality(model, classifier, ref, args, sizes)  # 10 of each digit first
        if ref is not None and "guidance" in args.parts:
            run_guidance(model, classifier, ref, args, sizes)
        if "unconditional" in args.parts:
            run_unconditional(model, classifier, ref, args, sizes)
    emit([f"Peak memory (RSS) of the process: {peak_rss_mb():.0f} MB."])
    if args.grid is not None and grid_images is not None:
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make_grid(grid_images[:100], ncols=10)).save(args.grid)
        log(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
