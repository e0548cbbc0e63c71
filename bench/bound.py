"""The variational bound (Ho et al. 2020, eq. 5) of the shipped denoiser on MNIST test digits, in bits/dim.

    python -m bench.bound --digits 200                 # all T = 1000 terms per digit, no striding
    python -m bench.bound --digits 8 --out /tmp/b      # a smoke run

For each digit (the first ``--digits`` of the 10,000 test digits) and each of two ways of calling the
network, conditional (s = 1, the true label) and unconditional (label -1), the T network calls of
``elbo.predict_noise`` give eps_hat at every t = 1..T (one noise draw per t, seeded by the digit's index);
the same predictions give the bound with sigma_t^2 = beta_t and with beta~_t. Standard errors are over
the digits (s / sqrt(n)). Progress goes to stderr; the run checkpoints after every batch of digits in
``--out`` and resumes from there. At the end it prints Markdown tables and writes the per-t curves
(mean and standard error over the digits) to ``pretrained/bound_curves.json`` for the bound page.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/bound.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from diffusion_core.models.devices import describe_hardware
from diffusion_core.process.elbo import bound_from_predictions, predict_noise
from diffusion_core.data.mnist import load_mnist, to_model_range
from diffusion_core.samplers import guided_eps_fn
from diffusion_core.models.unet import NULL_LABEL
from diffusion_core.models.weights import PRETRAINED_DIR, load_denoiser

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path("/work/shared/data/mnist")
CURVES_PATH = PRETRAINED_DIR / "bound_curves.json"
MODES = ("cond", "uncond")  # s = 1 with the true label; label -1
VARIANCES = ("beta", "beta_tilde")
SERIES = [f"{m}_{v}" for m in MODES for v in VARIANCES]


def digit_noise(index: int, seed: int, T: int) -> torch.Tensor:
    """noise[t - 1] for digit ``index``: [T, 1, 1, 28, 28], the same whatever the batch."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    return torch.randn((T, 1, 1, 28, 28), generator=g)


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model = load_denoiser("cpu", args.weights)
    schedule, T = model.schedule, model.schedule.T
    images, labels = load_mnist(args.data, "test")
    x_all = torch.from_numpy(to_model_range(images[: args.digits]))
    y_all = torch.from_numpy(labels[: args.digits].astype(np.int64))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "bound_checkpoint.npz"
    state: dict[str, np.ndarray] = {}
    done = 0
    if ckpt.exists():
        with np.load(ckpt) as z:
            state = {k: z[k] for k in z.files}
        done = int(state["done"])
        if int(state["seed"]) != args.seed:
            raise SystemExit(f"{ckpt} was made with another seed; remove it or pass --seed {int(state['seed'])}")
        print(f"resuming after {done} digits", file=sys.stderr)
    if not state:
        state = {"done": np.array(0), "seed": np.array(args.seed), "seconds": np.array(0.0)}
        for s in SERIES:
            state[f"total_{s}"] = np.zeros(0)
            state[f"prior_{s}"] = np.zeros(0)
            state[f"sum_{s}"] = np.zeros(T)
            state[f"sumsq_{s}"] = np.zeros(T)
        for m in MODES:
            state[f"msesum_{m}"] = np.zeros(T)
            state[f"msesumsq_{m}"] = np.zeros(T)
    start = time.perf_counter()
    for first in range(done, args.digits, args.batch):
        idx = list(range(first, min(first + args.batch, args.digits)))
        x0 = x_all[idx]
        noise = torch.cat([digit_noise(i, args.seed, T) for i in idx], dim=1)  # [T, n, 1, 28, 28]
        for m in MODES:
            y = y_all[idx] if m == "cond" else torch.full((len(idx),), NULL_LABEL)
            eps_hat = predict_noise(guided_eps_fn(model, y, 1.0), x0, schedule, noise, torch.arange(1, T + 1),
                                    batch_size=args.network_batch)
            for v in VARIANCES:
                b = bound_from_predictions(x0, schedule, noise, eps_hat, torch.arange(1, T + 1), v)
                s = f"{m}_{v}"
                state[f"total_{s}"] = np.concatenate([state[f"total_{s}"], b.total_bpd.numpy()])
                state[f"prior_{s}"] = np.concatenate([state[f"prior_{s}"], b.prior_bpd.numpy()])
                state[f"sum_{s}"] += b.terms_bpd.sum(0).numpy()
                state[f"sumsq_{s}"] += (b.terms_bpd**2).sum(0).numpy()
            state[f"msesum_{m}"] += b.eps_mse.sum(0).numpy()
            state[f"msesumsq_{m}"] += (b.eps_mse**2).sum(0).numpy()
        state["done"] = np.array(idx[-1] + 1)
        state["seconds"] = np.array(float(state["seconds"]) + time.perf_counter() - start)
        start = time.perf_counter()
        np.savez(out / "bound_checkpoint.tmp.npz", **state)
        (out / "bound_checkpoint.tmp.npz").replace(ckpt)
        n = int(state["done"])
        print(f"{n}/{args.digits} digits, {float(state['seconds']) / n:.2f} s per digit (both modes), "
              f"cond beta_tilde so far {state['total_cond_beta_tilde'].mean():.3f} bits/dim", file=sys.stderr, flush=True)
    report(state, T, args)


def mean_se(v: np.ndarray) -> tuple[float, float]:
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def curve(sum_: np.ndarray, sumsq: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = sum_ / n
    var = np.maximum(sumsq / n - mean**2, 0.0) * n / max(n - 1, 1)
    return mean, np.sqrt(var / n)


def report(state: dict[str, np.ndarray], T: int, args: argparse.Namespace) -> None:
    n = int(state["done"])
    print(f"\nBound of the shipped denoiser on the first {n} MNIST test digits, all T = {T} terms, "
          f"one noise draw per term (seed {args.seed}); {describe_hardware(threads=args.threads)}; "
          f"{float(state['seconds']) / n:.2f} s per digit for both modes ({2 * T} network calls).\n")
    print("| network | σ_t² | total (bits/dim) | L_T | L_0 (decoder) | Σ_{t≥2} L_{t−1} | share of t ≤ 10 |")
    print("|---|---|---|---|---|---|---|")
    for m in MODES:
        for v in VARIANCES:
            s = f"{m}_{v}"
            mean, se = mean_se(state[f"total_{s}"])
            terms = state[f"sum_{s}"] / n
            prior = state[f"prior_{s}"].mean()
            early = terms[:10].sum() / (prior + terms.sum())
            name = "conditional (s = 1, true label)" if m == "cond" else "unconditional"
            print(f"| {name} | {'β_t' if v == 'beta' else 'β̃_t'} | **{mean:.3f} ± {se:.3f}** | {prior:.2e} | "
                  f"{terms[0]:.3f} | {terms[1:].sum():.3f} | {100 * early:.0f} % |")
    print("\nSame digits, same noise: unconditional − conditional, bits/dim (for exact likelihoods at most "
          f"log₂ 10 / 784 = {math.log2(10) / 784:.4f}, reached when each digit looks like its own class only):")
    paired = {}
    for v in VARIANCES:
        paired[v] = mean_se(state[f"total_uncond_{v}"] - state[f"total_cond_{v}"])
        print(f"- σ_t² = {'β_t' if v == 'beta' else 'β̃_t'}: {paired[v][0]:+.4f} ± {paired[v][1]:.4f}")
    curves: dict[str, object] = {"digits": n, "T": T, "seed": args.seed,
                                 "source": "bench/bound.py: first MNIST test digits, all T terms, bits/dim"}
    for s in SERIES:
        mean, se = curve(state[f"sum_{s}"], state[f"sumsq_{s}"], n)
        curves[f"terms_{s}"] = [float(f"{v:.5g}") for v in mean]
        curves[f"terms_{s}_se"] = [float(f"{v:.3g}") for v in se]
        curves[f"total_{s}"] = [round(x, 5) for x in mean_se(state[f"total_{s}"])]
    for v in VARIANCES:
        curves[f"uncond_minus_cond_{v}"] = [round(x, 5) for x in paired[v]]
    for m in MODES:
        mean, se = curve(state[f"msesum_{m}"], state[f"msesumsq_{m}"], n)
        curves[f"eps_mse_{m}"] = [float(f"{v:.5g}") for v in mean]
        curves[f"eps_mse_{m}_se"] = [float(f"{v:.3g}") for v in se]
    if args.write_curves:
        Path(args.curves).write_text(json.dumps(curves, separators=(",", ":")) + "\n")
        print(f"\ncurves written to {args.curves}", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", type=int, default=200, help="first N MNIST test digits")
    p.add_argument("--batch", type=int, default=4, help="digits per checkpoint")
    p.add_argument("--network-batch", type=int, default=64, help="rows per network call")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=str(ROOT / "runs" / "bound"))
    p.add_argument("--weights", default=str(PRETRAINED_DIR), help="folder of the denoiser's weights and config")
    p.add_argument("--curves", default=str(CURVES_PATH), help="where to write the per-t curves (JSON)")
    p.add_argument("--no-curves", dest="write_curves", action="store_false", help="do not write the curves")
    run(p.parse_args())


if __name__ == "__main__":
    main()
