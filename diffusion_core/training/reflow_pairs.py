"""Pairs (x_T, x_0) of the shipped network's probability-flow ODE, the data of the 2-rectified flow.

    python -m diffusion_core.training.reflow_pairs --out runs/reflow/pairs --shards 120 --worker 0 --workers 2

Reflow (Liu et al. 2023, sec. 2.3 and alg. 1) trains a new flow on the coupling (X_1, X_0) that an ODE
already gives: X_1 ~ N(0, I) and X_0 = ODE(X_1), here the shipped denoiser's deterministic sampler,
DPM-Solver++(2M) (Lu et al. 2022) with even log-SNR spacing, class-conditional at the page's guidance
(classifier-free, Ho & Salimans 2022). x_T of the discrete chain is taken as the noise end x_1 of the
rectified-flow path: at t = T the cosine schedule keeps sqrt(abar_T) = 4.9e-5 of the data.

Each shard of ``--shard-size`` pairs is drawn from its own generator seeded with (seed, shard), so shards
are the same whoever draws them and in whatever order; a shard already on disk is skipped (a stopped run
resumes), and ``--workers`` processes can share the shards (worker w takes shards w, w + workers, ...).
A shard is a safetensors file with "x1" [N, 1, 28, 28] (the noise), "x0" [N, 1, 28, 28] (the teacher's
digit, in [-1, 1]) and "labels" [N] (digits 0-9 in turn).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..models.weights import PRETRAINED_DIR, load_denoiser
from ..samplers.guidance import DEFAULT_GUIDANCE
from ..samplers.process import generate

SHARD_PATTERN = "pairs-{:05d}.safetensors"
PAIRS_INFO = "pairs.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for the shards")
    p.add_argument("--shards", type=int, default=120, help="shards in total (worker w draws w, w + workers, ...)")
    p.add_argument("--shard-size", type=int, default=256, help="pairs per shard")
    p.add_argument("--steps", type=int, default=10, help="DPM-Solver++(2M) steps (network calls) per pair")
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="classifier-free guidance scale")
    p.add_argument("--weights", default=str(PRETRAINED_DIR), help="folder of the teacher's weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="CPU threads")
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def shard_generator(seed: int, shard: int) -> torch.Generator:
    """The generator of one shard: its x_T depends on (seed, shard) only."""
    return torch.Generator().manual_seed(seed * 100_003 + shard)


def draw_shard(teacher, shard: int, args: argparse.Namespace) -> dict[str, torch.Tensor]:
    """One shard of pairs: x_1 ~ N(0, I), labels 0-9 in turn, x_0 = DPM-Solver++(x_1 | label)."""
    labels = torch.arange(args.shard_size) % 10
    x1 = torch.randn((args.shard_size, 1, 28, 28), generator=shard_generator(args.seed, shard))
    x0 = generate(teacher, labels, sampler="dpm_solver++", steps=args.steps, spacing="logsnr",
                  guidance=args.guidance, x_start=x1)
    return {"x1": x1.contiguous(), "x0": x0.float().contiguous(), "labels": labels.contiguous()}


def load_pairs(folder: str | Path) -> dict[str, torch.Tensor]:
    """Every shard in ``folder``, in shard order, as one dict of "x1", "x0", "labels"."""
    paths = sorted(Path(folder).glob(SHARD_PATTERN.replace("{:05d}", "*")))
    if not paths:
        raise FileNotFoundError(f"no pair shards in {folder}")
    shards = [load_file(str(p)) for p in paths]
    return {k: torch.cat([s[k] for s in shards]) for k in ("x1", "x0", "labels")}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"steps": args.steps, "guidance": args.guidance, "seed": args.seed, "shard_size": args.shard_size,
                "sampler": "dpm_solver++", "spacing": "logsnr", "weights": str(args.weights)}
    info = out / PAIRS_INFO
    if info.is_file() and json.loads(info.read_text())["settings"] != settings:
        raise SystemExit(f"{out} holds pairs of other settings ({info}); use another --out")
    info.write_text(json.dumps({"settings": settings}, indent=1) + "\n")
    teacher = load_denoiser(args.device, args.weights)
    for shard in range(args.worker, args.shards, args.workers):
        path = out / SHARD_PATTERN.format(shard)
        if path.is_file():
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        pairs = draw_shard(teacher, shard, args)
        tmp = path.with_suffix(".tmp")
        save_file(pairs, str(tmp))
        tmp.replace(path)  # atomic: a reader never sees half a shard
        print(f"shard {shard}: {args.shard_size} pairs, wall {time.perf_counter() - wall:.1f} s, "
              f"CPU {time.process_time() - cpu:.1f} s", flush=True)


if __name__ == "__main__":
    main()
