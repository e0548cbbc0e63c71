"""The 2-D exact checks of the continuous-time page, precomputed: three dynamics with one set of marginals, the
Fokker-Planck residual, and the ODE's likelihood against the exact log density (``diffusion_core.toy2d.dynamics``).

    python -m bench.continuous_2d                 # -> pretrained/continuous_2d.json and a Markdown table
    python -m bench.continuous_2d --particles 100 --steps 100 --out /tmp/c.json   # a smoke run

For each data set (``--datasets``; ``--points`` training points drawn with seed ``--seed``, the page draws the
same) on the VP-SDE path of Song et al. (2021): ``--particles`` particles of the forward SDE from the data, of
the reverse SDE and of the PF-ODE from p_1, on ``--steps`` equal steps, kept at the page's times, with their
energy distances to fresh draws of p_t and the standard deviation of that distance between two fresh samples;
the Fokker-Planck residual on a 60 x 60 grid; and log p_{t_start} at ``--likelihood-points`` draws of p_{t_start}
by the ODE (exact score, exact divergence, exact prior) for rtol = atol = 1e-2 ... 1e-6, against the exact value.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python bench/continuous_2d.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from diffusion_core import toy2d
from diffusion_core.models.devices import describe_hardware
from diffusion_core.models.weights import PRETRAINED_DIR
from diffusion_core.process.paths import vp_linear
from diffusion_core.toy2d.density import fokker_planck_terms, sample_marginal
from diffusion_core.toy2d.dynamics import DYNAMICS, likelihood_check, three_dynamics

OUT = PRETRAINED_DIR / "continuous_2d.json"
TIMES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # the page's t slider
TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
T_START = 0.01  # the likelihood's t_start: sigma = 0.045, well below the data's spread of 1 per axis
DATASETS = ("moons", "mixture")
LIMIT, GRID = 3.0, 60  # the Fokker-Planck grid


def rounded(x: torch.Tensor, digits: int = 3) -> list:
    return torch.round(x.double(), decimals=digits).tolist()


def measure(name: str, args: argparse.Namespace) -> dict:
    g = torch.Generator().manual_seed(args.seed)
    data = toy2d.distribution(name).sample(args.points, g).double()
    path = vp_linear()
    began = time.perf_counter()
    dyn = three_dynamics(data, path, TIMES, n=args.particles, steps=args.steps, seed=args.seed)
    seconds_dynamics = time.perf_counter() - began
    grid = toy2d.grid(LIMIT, GRID).double()
    fp = [fokker_planck_terms(grid, t, data, path).relative_residual for t in TIMES]
    points = sample_marginal(data, T_START, path, args.likelihood_points, g)
    began = time.perf_counter()
    check = likelihood_check(data, path, T_START, points, TOLERANCES)
    seconds_likelihood = time.perf_counter() - began
    return {
        "clouds": {k: [rounded(c, 2) for c in dyn.clouds[k]] for k in DYNAMICS},  # 0.01: below a pixel
        "energy": {k: [float(f"{v:.4g}") for v in dyn.energy[k]] for k in DYNAMICS},
        "noise_mean": [float(f"{v:.4g}") for v in dyn.noise_mean],
        "noise": [float(f"{v:.4g}") for v in dyn.noise],
        "z": {k: [round(float(v), 2) for v in dyn.z(k)] for k in DYNAMICS},
        "fokker_planck": [float(f"{v:.3g}") for v in fp],
        "likelihood": {"points": rounded(points, 4), "exact": rounded(check.exact, 9),
                       "ode": [rounded(row, 9) for row in check.ode], "nfe": list(check.nfe)},
        "seconds": {"dynamics": round(seconds_dynamics, 1), "likelihood": round(seconds_likelihood, 1)},
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--points", type=int, default=300, help="training points: the empirical distribution")
    p.add_argument("--particles", type=int, default=300)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--likelihood-points", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.datasets:
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = measure(name, args)
    meta = {"times": list(TIMES), "tolerances": list(TOLERANCES), "t_start": T_START, "points": args.points,
            "particles": args.particles, "steps": args.steps, "seed": args.seed, "path": "vp_linear",
            "machine": describe_hardware(threads=args.threads), "source": "bench/continuous_2d.py"}
    Path(args.out).write_text(json.dumps({"meta": meta, "datasets": results}, separators=(",", ":")) + "\n")
    print(f"Three dynamics, {args.particles} particles, {args.steps} steps; largest |energy distance − its mean| / its noise (over 40 exact clouds) "
          f"over t = {', '.join(map(str, TIMES))}; Fokker-Planck residual / largest term on a {GRID} x {GRID} grid; "
          f"ODE log p at t_start = {T_START} against the exact log density ({args.likelihood_points} points).\n")
    print("| data | forward SDE | reverse SDE | PF-ODE | Fokker–Planck | ODE error at rtol = 1e-5 (max, nats) | "
          "at 1e-2 / 1e-3 / 1e-4 / 1e-6 |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        z = {k: max(abs(v) for v in r["z"][k]) for k in DYNAMICS}
        lik = r["likelihood"]
        err = [max(abs(a - b) for a, b in zip(row, lik["exact"])) for row in lik["ode"]]
        others = " / ".join(f"{e:.1e}" for i, e in enumerate(err) if TOLERANCES[i] != 1e-5)
        print(f"| {name} | {z['forward']:.1f} | {z['reverse']:.1f} | {z['ode']:.1f} | {max(r['fokker_planck']):.1e} | "
              f"{err[TOLERANCES.index(1e-5)]:.1e} | {others} |")


if __name__ == "__main__":
    main()
