"""The ODE likelihood of the shipped denoiser on MNIST test digits, in bits/dim, beside its variational bound.

    python -m bench.likelihood --digits 60             # about 40 s per digit on one busy core
    python -m bench.likelihood --digits 2 --out /tmp/l --no-json   # a smoke run

For each of the first ``--digits`` test digits (``diffusion_core.process.image_likelihood``):
- recipe 1, Song et al. (2021): uniform dequantisation, the PF-ODE from t_start (the SNR of t = 1) to 1 by
  Dormand-Prince at rtol = atol = ``--tol`` (1e-5, theirs), ``--probes`` Rademacher probes (1, theirs); with the
  true label (s = 1) and without (label -1), the same u and probes for both (a paired comparison);
- recipe 2: the ODE from x_1 ~ q(x_1 | x_0) plus Ho et al.'s decoder L_0, with the true label;
- the bound of ``bench.bound`` on the same digit, with the same noise (``bench.bound.digit_noise``): all T terms,
  sigma_t^2 = beta~_t, the true label.
Standard errors are over the digits (s / sqrt(n)). The run checkpoints after every digit in ``--out`` and resumes
from there. At the end it prints Markdown tables and writes ``pretrained/likelihood.json`` (summary and per-digit
values) for the continuous-time page.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/likelihood.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from bench.bound import digit_noise
from diffusion_core.data.mnist import load_mnist, to_model_range
from diffusion_core.models.devices import describe_hardware
from diffusion_core.models.unet import NULL_LABEL
from diffusion_core.models.weights import PRETRAINED_DIR, load_denoiser
from diffusion_core.process.elbo import bound_from_predictions, predict_noise
from diffusion_core.process.image_likelihood import (dequantisation_floor, dequantised_bpd, network_ode,
                                                     ode_decoder_bound)
from diffusion_core.samplers import guided_eps_fn
from diffusion_core.samplers.ode_solvers import DormandPrince

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path("/work/shared/data/mnist")
JSON_PATH = PRETRAINED_DIR / "likelihood.json"
SERIES = ("ode_cond", "ode_uncond", "decoder_cond", "bound_cond")
NAMES = {
    "ode_cond": "ODE, uniform dequantisation (Song et al. 2021), true label",
    "ode_uncond": "ODE, uniform dequantisation, no label",
    "decoder_cond": "ODE from x₁ + decoder L₀ (a bound), true label",
    "bound_cond": "variational bound (`bench.bound`, β̃_t, all T terms), true label",
}
PUBLISHED = [  # (model, data, bits/dim, as reported in)
    ("DDPM++ cont. (deep, sub-VP), PF-ODE", "CIFAR-10", "2.99", "Song et al. (2021), Table 2"),
    ("DDPM (Ho et al. 2020), variational bound", "CIFAR-10", "≤ 3.70", "Ho et al. (2020), Table 2; Song et al. (2021), Table 2"),
    ("Residual Flow / FFJORD / Glow / Real NVP", "MNIST", "0.97 / 0.99 / 1.05 / 1.06",
     "Chen et al. (2019), Table 2; Grathwohl et al. (2019), Table 2"),
]


def generator(seed: int, index: int, stream: int) -> torch.Generator:
    """One stream of random numbers per digit and job, the same whatever the batch or a resume."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) * 16 + stream)


def measure_digit(model, x0: torch.Tensor, label: int, index: int, args: argparse.Namespace) -> dict:
    schedule = model.schedule
    solver = DormandPrince(rtol=args.tol, atol=args.tol)
    row: dict = {"index": index, "label": label}
    began = time.perf_counter()
    for mode, y in (("cond", label), ("uncond", NULL_LABEL)):
        eps_fn = guided_eps_fn(model, torch.tensor([y]), 1.0)
        r = dequantised_bpd(eps_fn, x0, schedule, solver=solver, hutchinson=args.probes,
                            generator=generator(args.seed, index, 1))
        row[f"ode_{mode}"], row[f"nfe_{mode}"], row[f"latent_sq_{mode}"] = float(r.bpd[0]), r.nfe, float(r.latent_sq[0])
    eps_fn = guided_eps_fn(model, torch.tensor([label]), 1.0)
    r = ode_decoder_bound(eps_fn, x0, schedule, solver=solver, hutchinson=args.probes,
                          generator=generator(args.seed, index, 2))
    row["decoder_cond"], row["decoder_l0"], row["nfe_decoder"] = float(r.bpd[0]), float(r.decoder_bpd[0]), r.nfe
    T = schedule.T
    noise = digit_noise(index, args.bound_seed, T)
    with torch.no_grad():
        eps_hat = predict_noise(eps_fn, x0.float(), schedule, noise, torch.arange(1, T + 1), batch_size=64)
    b = bound_from_predictions(x0.float(), schedule, noise, eps_hat, torch.arange(1, T + 1), "beta_tilde")
    row["bound_cond"] = float(b.total_bpd[0])
    row["seconds"] = time.perf_counter() - began
    return row


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model = load_denoiser("cpu", args.weights)
    images, labels = load_mnist(args.data, "test")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "likelihood_checkpoint.json"
    settings = {"seed": args.seed, "tol": args.tol, "probes": args.probes, "bound_seed": args.bound_seed}
    rows: list[dict] = []
    if ckpt.exists():
        saved = json.loads(ckpt.read_text())
        if saved["settings"] != settings:
            raise SystemExit(f"{ckpt} was made with other settings {saved['settings']}; remove it or pass them")
        rows = saved["rows"]
        print(f"resuming after {len(rows)} digits", file=sys.stderr)
    for index in range(len(rows), args.digits):
        x0 = torch.from_numpy(to_model_range(images[index:index + 1])).double()
        rows.append(measure_digit(model, x0, int(labels[index]), index, args))
        tmp = out / "likelihood_checkpoint.tmp.json"
        tmp.write_text(json.dumps({"settings": settings, "rows": rows}))
        tmp.replace(ckpt)
        r = rows[-1]
        print(f"{len(rows)}/{args.digits} digits, {r['seconds']:.1f} s; this digit: ODE {r['ode_cond']:.3f}, "
              f"ODE+decoder {r['decoder_cond']:.3f}, bound {r['bound_cond']:.3f} bits/dim", file=sys.stderr, flush=True)
    report(rows, model.schedule, args)


def mean_se(v: np.ndarray) -> tuple[float, float]:
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0)


def report(rows: list[dict], schedule, args: argparse.Namespace) -> None:
    n = len(rows)
    col = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in rows[0] if k != "index"}
    ode = network_ode(schedule)
    sigma = float(ode.path.sigma(ode.t_start))
    floor = dequantisation_floor(sigma)
    seconds = col["seconds"].mean()
    print(f"\nODE likelihood of the shipped denoiser on the first {n} MNIST test digits; PF-ODE on the VP-SDE path "
          f"(β from 0.1 to 20) from t_start = {ode.t_start:.3g} (σ = {sigma:.4f}, the SNR of t = 1) to 1, "
          f"Dormand–Prince rtol = atol = {args.tol:g}, {args.probes} Rademacher probe(s) per solve; "
          f"{describe_hardware(threads=args.threads)}; {seconds:.0f} s per digit (all four numbers), "
          f"{col['nfe_cond'].mean():.0f} drift evaluations per ODE solve on average.\n")
    print("| estimate | what it is | bits/dim |")
    print("|---|---|---|")
    summary: dict = {}
    for s in SERIES:
        m, se = mean_se(col[s])
        summary[s] = [round(m, 4), round(se, 4)]
        kind = {"ode_cond": "exact likelihood of the ODE's model of dequantised digits (± Hutchinson, solver)",
                "ode_uncond": "the same, without the label",
                "decoder_cond": "upper bound on the NLL of \"x₁ by the ODE, then the decoder\"",
                "bound_cond": "upper bound on the NLL of the discrete-time chain"}[s]
        print(f"| {NAMES[s]} | {kind} | **{m:.3f} ± {se:.3f}** |")
    print(f"| floor of recipe 1 for a pixel known for sure (σ = {sigma:.4f}) | `dequantisation_floor` | {floor:.3f} |")
    print("\nPaired differences on the same digits (bits/dim, ± one standard error):")
    paired = {}
    for a, b in (("ode_cond", "bound_cond"), ("decoder_cond", "bound_cond"), ("ode_uncond", "ode_cond"),
                 ("ode_cond", "decoder_cond")):
        m, se = mean_se(col[a] - col[b])
        paired[f"{a}-{b}"] = [round(m, 4), round(se, 4)]
        print(f"- {NAMES[a]} − {NAMES[b]}: {m:+.4f} ± {se:.4f}")
    below = int((col["ode_cond"] < col["bound_cond"]).sum())
    print(f"- the ODE (recipe 1) is below the bound on {below} of {n} digits; the decoder's L₀ is "
          f"{col['decoder_l0'].mean():.3f} bits/dim of recipe 2; |z|²/D of the latent codes "
          f"{col['latent_sq_cond'].mean():.3f} (1 for a typical draw of the prior)")
    print("\nFor scale, as reported in the papers named (not re-measured here):\n")
    print("| model | data | bits/dim | as reported in |")
    print("|---|---|---|---|")
    for row in PUBLISHED:
        print("| " + " | ".join(row) + " |")
    if args.write_json:
        data = {"digits": n, "tol": args.tol, "probes": args.probes, "seed": args.seed, "t_start": ode.t_start,
                "sigma_start": sigma, "floor": round(floor, 4), "seconds_per_digit": round(float(seconds), 1),
                "nfe_per_solve": round(float(col["nfe_cond"].mean()), 1), "summary": summary, "paired": paired,
                "below_bound": below, "machine": describe_hardware(threads=args.threads),
                "per_digit": {s: [round(float(v), 4) for v in col[s]] for s in SERIES},
                "labels": [int(v) for v in col["label"]],
                "source": "bench/likelihood.py: first MNIST test digits, bits/dim"}
        Path(args.json).write_text(json.dumps(data, separators=(",", ":")) + "\n")
        print(f"\nwritten to {args.json}", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", type=int, default=60, help="first N MNIST test digits")
    p.add_argument("--tol", type=float, default=1e-5, help="rtol = atol of Dormand-Prince")
    p.add_argument("--probes", type=int, default=1, help="Rademacher probes per ODE solve")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bound-seed", type=int, default=0, help="the --seed of bench.bound, for the same noise")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=str(ROOT / "runs" / "likelihood"))
    p.add_argument("--weights", default=str(PRETRAINED_DIR), help="folder of the denoiser's weights and config")
    p.add_argument("--json", default=str(JSON_PATH), help="where to write the results (JSON)")
    p.add_argument("--no-json", dest="write_json", action="store_false", help="do not write the JSON")
    run(p.parse_args())


if __name__ == "__main__":
    main()
