"""Latent diffusion beside the pixel network, in one run: quality and speed.

    python -m bench.latent                         # the shipped figures -> pretrained/latent/bench.json + Markdown
    python -m bench.latent --guidances 1 1.5 2 3   # also a guidance sweep of the latent pipeline (DPM-Solver++ 10)
    python -m bench.latent --quick                 # a smoke run with tiny sizes

- autoencoder: each latent (the 4x7x7 image latent and the 2-D one) reconstructs the MNIST test digits:
  mean squared error per pixel (in [-1, 1]), and the shipped classifier's accuracy on the reconstructions with
  Wilson's 95 % interval: the ceiling of anything decoded from that latent; their Fréchet distance (FD) too.
- samples: class-conditional digits (0, 1, ..., 9, 0, ...) at ``--nfe`` network calls: the latent pipeline
  (``generate(load_denoiser(name="latent"), labels, steps=nfe)``, its own default sampler, spacing and
  guidance), the pixel network at the same calls (DPM-Solver++, log-SNR spacing, its default guidance, the page-8
  setting), and the 2-D latent (the exact denoiser of the encoded training digits, per class, with guidance;
  and a conditional MLP trained here), each judged by the classifier and, for the 28x28 ones, by the FD against
  the 10000 test digits next to the floor of as many real training digits (bench/run.py's machinery).
- speed: 16 digits with guidance, wall and CPU seconds (median of ``--repeats`` after a warm-up), latent
  pipeline (decoding included) and pixel network at the same calls, on ``--threads`` threads (the app's 1).

The JSON (``--out``) holds every row: {"meta": {...}, "autoencoder": [...], "samples": [...], "speed": [...],
"guidance": [...]}; the latent page reads it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/latent.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from bench.run import DEFAULT_DATA, FULL, QUICK, Reference, digits, emit, log, reference, timed
from diffusion_core import generate, load_denoiser
from diffusion_core.data.mnist import load_mnist, to_model_range
from diffusion_core.models.classifier import Classifier, embed, load_classifier
from diffusion_core.models.devices import describe_hardware
from diffusion_core.models.latent import LATENT_DIR
from diffusion_core.models.latent2d import load_latent2d, schedule_2d
from diffusion_core.models.metrics import class_accuracy, frechet_distance_from_stats, gaussian_stats, wilson_interval
from diffusion_core.models.weights import PRETRAINED_DIR
from diffusion_core import toy2d

BENCH_FILE = LATENT_DIR / "bench.json"
PIXEL = {"sampler": "dpm_solver++", "spacing": "logsnr"}  # the pixel network at few calls (page 8's best)
MLP_STEPS = 3000  # the 2-D conditional MLP's training steps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run the tests can afford")
    p.add_argument("--samples", type=int, default=1000, help="class-conditional samples per row")
    p.add_argument("--nfe", type=int, default=10, help="network calls per sample")
    p.add_argument("--guidances", type=float, nargs="*", default=[], help="a guidance sweep of the latent pipeline")
    p.add_argument("--latent", type=Path, default=LATENT_DIR, help="folder of the latent pipeline and 2-D latent")
    p.add_argument("--weights", type=Path, default=PRETRAINED_DIR, help="folder of the pixel denoiser")
    p.add_argument("--classifier", type=Path, default=PRETRAINED_DIR, help="folder of the classifier")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the MNIST IDX .gz files")
    p.add_argument("--out", type=Path, default=BENCH_FILE, help="JSON file to write")
    p.add_argument("--batch", type=int, default=250, help="samples drawn at once")
    p.add_argument("--repeats", type=int, default=7, help="timings per speed figure (the median is kept)")
    p.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (the app's: 1 on 2 cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of every generator")
    return p.parse_args(argv)


def judge(classifier: Classifier, images: torch.Tensor, labels: np.ndarray, ref: Reference | None) -> dict:
    """Accuracy with Wilson's interval, and FD against the test digits (with the floor) when ``ref`` is given."""
    out = embed(classifier, images)
    k = int((out.predictions == labels).sum())
    low, high = wilson_interval(k, len(labels))
    row = {"n": len(labels), "accuracy": class_accuracy(out.predictions, labels), "accuracy_ci_low": low,
           "accuracy_ci_high": high}
    if ref is not None:
        row |= {"fd": frechet_distance_from_stats(gaussian_stats(out.features), ref.test), "fd_floor": ref.floor}
    return row


def draw(model, labels: list[int], args: argparse.Namespace, **kwargs) -> torch.Tensor:
    """Samples in batches, each batch from its own generator (seed, batch index)."""
    out = []
    for b, i in enumerate(range(0, len(labels), args.batch)):
        g = torch.Generator().manual_seed(args.seed * 100_003 + b)
        out.append(generate(model, labels[i:i + args.batch], generator=g, **kwargs))
    return torch.cat(out)


@torch.inference_mode()
def run_autoencoders(pipeline, lat2d, classifier, ref, args, n_test: int) -> list[dict]:
    images, labels = load_mnist(args.data, "test")
    x = torch.from_numpy(to_model_range(images[:n_test]))
    # the test digits' own FD against themselves would be 0: not a figure worth a row
    rows = [{"what": "test digits themselves", "latent": "-", "numbers": 784, **judge(classifier, x, labels[:n_test], None)}]
    for name, encode, decode, numbers in (
            ("image latent 4x7x7", pipeline.encode, pipeline.decode, 196),
            ("2-D latent", lat2d.encode, lat2d.decode, 2)):
        recon = torch.cat([decode(encode(x[i:i + 500])) for i in range(0, len(x), 500)])
        mse = float(((recon - x) ** 2).mean())
        rows.append({"what": "reconstructions", "latent": name, "numbers": numbers, "mse": mse,
                     **judge(classifier, recon, labels[:n_test], ref)})
        log(f"  {name}: MSE {mse:.4f}, accuracy {100 * rows[-1]['accuracy']:.2f} %")
    return rows


def run_samples(pipeline, pixel, lat2d, classifier, ref, args) -> list[dict]:
    labels = digits(args.samples)
    y = np.array(labels)
    rows = []
    log(f"latent pipeline, {args.nfe} calls")
    x = draw(pipeline, labels, args, steps=args.nfe)
    c = pipeline.config
    rows.append({"what": "latent diffusion (image latent)", "sampler": c.sampler, "spacing": c.spacing,
                 "guidance": c.guidance, "nfe": args.nfe, **judge(classifier, x, y, ref)})
    log(f"pixel network, {args.nfe} calls")
    x = draw(pixel, labels, args, steps=args.nfe, **PIXEL)
    from diffusion_core.samplers import DEFAULT_GUIDANCE

    rows.append({"what": "pixel-space network", **PIXEL, "guidance": DEFAULT_GUIDANCE, "nfe": args.nfe,
                 **judge(classifier, x, y, ref)})

    schedule = schedule_2d()
    x_T = torch.randn(len(labels), 2, generator=torch.Generator().manual_seed(args.seed))
    exact = toy2d.ExactConditionalDenoiser(lat2d.train_points, lat2d.train_labels, schedule)
    log("2-D latent, exact denoiser")
    mlp = toy2d.train_conditional_mlp(lat2d.train_points, lat2d.train_labels, schedule,
                                      toy2d.CondMLPConfig(mlp=toy2d.MLPConfig(T=schedule.T, width=128)),
                                      toy2d.TrainConfig(steps=MLP_STEPS if not args.quick else 20, seed=args.seed))
    for name, model in (("2-D latent, exact denoiser of the encoded training digits", exact),
                        (f"2-D latent, conditional MLP ({mlp.seconds:.0f} s of training)", mlp.model)):
        for s in (1.0, c.guidance):
            fn = toy2d.guided_eps_2d(model, labels, s)
            with torch.inference_mode():
                points = toy2d.reverse_paths(fn, x_T, schedule, sampler=c.sampler, steps=args.nfe)[-1]
            rows.append({"what": name, "sampler": c.sampler, "spacing": "linear", "guidance": s, "nfe": args.nfe,
                         **judge(classifier, lat2d.decode(points), y, ref)})
            log(f"  {name}, s = {s:g}: accuracy {100 * rows[-1]['accuracy']:.1f} %")
    return rows


def run_guidance(pipeline, classifier, ref, args) -> list[dict]:
    labels, rows = digits(args.samples), []
    for s in args.guidances:
        for spacing in ("logsnr", "linear"):
            x = draw(pipeline, labels, args, steps=args.nfe, guidance=s, spacing=spacing)
            rows.append({"guidance": s, "spacing": spacing, "nfe": args.nfe, **judge(classifier, x, np.array(labels), ref)})
            log(f"  s = {s:g}, {spacing}: {100 * rows[-1]['accuracy']:.1f} %, FD {rows[-1].get('fd', float('nan')):.3f}")
    return rows


def run_speed(pipeline, pixel, args) -> list[dict]:
    rows = []
    for name, model, kwargs in (("latent diffusion, 16 digits + decoding", pipeline, {}),
                                ("pixel-space network, 16 digits", pixel, PIXEL)):
        def run() -> None:
            generate(model, digits(16), steps=args.nfe, generator=torch.Generator().manual_seed(args.seed), **kwargs)

        t = timed(run, args.repeats)
        rows.append({"what": name, "nfe": args.nfe, "wall_seconds": t.wall, "cpu_seconds": t.cpu,
                     "threads": torch.get_num_threads()})
        log(f"  {name}: wall {t.wall:.3f} s, CPU {t.cpu:.3f} s")
    return rows


def ci(r: dict) -> str:
    return f"{100 * r['accuracy']:.1f} % ({100 * r['accuracy_ci_low']:.1f}–{100 * r['accuracy_ci_high']:.1f})"


def fd(r: dict) -> str:
    return f"{r['fd']:.3f} ({r['fd'] / r['fd_floor']:.2f}× floor)" if "fd" in r else "–"


def tables(result: dict) -> list[str]:
    m = result["meta"]
    lines = [f"## Latent diffusion against the pixel network ({m['machine']}, {m['date']})", "",
             f"Autoencoder: {m['autoencoder']}; FD against the MNIST test digits in the classifier's feature space, "
             f"floor = FD of {m['samples']} real training digits.", "",
             "| autoencoder | numbers per digit | MSE per pixel | judged accuracy (95 % CI) | FD |", "|---|---|---|---|---|"]
    for r in result["autoencoder"]:
        mse = f"{r['mse']:.4f}" if "mse" in r else "–"
        lines.append(f"| {r['what']}{'' if r['latent'] == '-' else ', ' + r['latent']} ({r['n']}) | {r['numbers']} | "
                     f"{mse} | {ci(r)} | {fd(r)} |")
    lines += ["", "| samples | sampler | guidance | NFE | judged accuracy (95 % CI) | FD |", "|---|---|---|---|---|---|"]
    for r in result["samples"]:
        lines.append(f"| {r['what']} ({r['n']}) | {r['sampler']} ({r['spacing']}) | {r['guidance']:g} | {r['nfe']} | "
                     f"{ci(r)} | {fd(r)} |")
    lines += ["", "| speed | NFE | wall | CPU | threads |", "|---|---|---|---|---|"]
    for r in result["speed"]:
        lines.append(f"| {r['what']} | {r['nfe']} | {r['wall_seconds']:.3f} s | {r['cpu_seconds']:.3f} s | {r['threads']} |")
    if result["guidance"]:
        lines += ["", "| latent guidance s | spacing | NFE | judged accuracy (95 % CI) | FD |", "|---|---|---|---|---|"]
        for r in result["guidance"]:
            lines.append(f"| {r['guidance']:g} | {r['spacing']} | {r['nfe']} | {ci(r)} | {fd(r)} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.samples, args.repeats = 20, 1
    sizes = QUICK if args.quick else FULL
    pipeline = load_denoiser("cpu", args.latent, name="latent")
    pixel = load_denoiser("cpu", args.weights)
    lat2d = load_latent2d(args.latent)
    classifier = load_classifier(args.classifier)
    log(f"reference statistics: {sizes.test_images} test digits, floor with {args.samples} training digits")
    ref = reference(classifier, args, sizes, args.samples)
    started = time.perf_counter()
    ae = pipeline.autoencoder.config
    result = {"meta": {"machine": describe_hardware("cpu"), "threads": torch.get_num_threads(), "seed": args.seed,
                       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "samples": args.samples,
                       "quick": args.quick, "scale_factor": pipeline.scale_factor,
                       "scale_factor_2d": lat2d.scale_factor,
                       "autoencoder": f"latent {ae.latent_shape}, KL weight {ae.kl_weight:g}, channels {ae.channels}; "
                                      f"2-D: KL weight {lat2d.autoencoder.config.kl_weight:g}"}}
    log("autoencoders")
    result["autoencoder"] = run_autoencoders(pipeline, lat2d, classifier, ref, args, sizes.test_images)
    result["samples"] = run_samples(pipeline, pixel, lat2d, classifier, ref, args)
    log("guidance sweep" if args.guidances else "no guidance sweep")
    result["guidance"] = run_guidance(pipeline, classifier, ref, args)
    log("speed")
    result["speed"] = run_speed(pipeline, pixel, args)
    result["meta"]["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    emit(tables(result))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
