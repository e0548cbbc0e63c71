"""Fine-tune the shipped denoiser into a 2-rectified flow on the teacher's own pairs (Liu et al. 2023).

    python -m diffusion_core.training.reflow_pairs --out runs/reflow/pairs      # the pairs (x_1, x_0), first
    python -m diffusion_core.training.reflow --data runs/reflow/pairs --out runs/reflow
    python -m diffusion_core.training.reflow --data runs/reflow/pairs --out runs/reflow --export pretrained

Reflow (Liu et al. 2023, eq. 1 and alg. 1, in the course's time direction, t = 0 data, t = 1 noise):
    min E_{(x_0, x_1), t} || (x_1 - x_0) - u(x_t, t, y) ||^2,   x_t = (1 - t) x_0 + t x_1,
with (x_1, x_0) the pairs of the teacher's ODE, so the new flow's paths are close to the straight lines of
those pairs and few Euler steps follow them. The student (models/reflow.py) starts from the shipped weights.

Times: a mixture. With probability ``--p-one`` t = 1, where the loss is the one-step regression
x_0 = x_1 - u(x_1, 1) of Liu et al.'s distillation (sec. 2.3, "k-step distillation" with k = 1); with
``--p-half`` t = 1/2, the second call of a 2-step sampler; otherwise t ~ U(0, 1) as in eq. 1. Concentrating
t where the sampler will look is the lever of Lee et al. (2024), who sample t from a U-shaped density.

The house habits of training/denoiser.py: AdamW, an EMA of the weights, a fixed seed, gradient clipping, a
checkpoint (safetensors) every few minutes and ``--resume`` that continues exactly. The learning rate is
constant after its warm-up (as in consistency distillation, Song et al. 2023), so ``--steps`` may be raised
on a resumed run: the longer run is the one that would have been asked for from the start.

The pool of pairs may grow while the run goes on (the pair workers still drawing): at every checkpoint the
trainer adds the shards that have appeared and records the pool in the checkpoint, so a resumed run draws
from exactly the pool it had.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..models.reflow import ReflowStudent, StudentConfig, build_student, save_student
from ..models.unet import UNet
from ..models.weights import PRETRAINED_DIR, build_denoiser
from .denoiser import CHECKPOINT, CHECKPOINT_STATE, LOSS_LOG, check_resumed_args, keep_loss_log, load_checkpoint
from .denoiser import optimiser_step, save_checkpoint
from .reflow_pairs import PAIRS_INFO, SHARD_PATTERN
from .run_log import RunLog

# Arguments a resumed run may change: where things are, how it runs, and how long.
RESUMABLE = frozenset({"data", "out", "device", "threads", "checkpoint_minutes", "export", "steps", "teacher"})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder of the pair shards (training/reflow_pairs.py)")
    p.add_argument("--out", required=True, help="folder for checkpoints, the loss log and the final weights")
    p.add_argument("--teacher", default=str(PRETRAINED_DIR), help="folder of the shipped denoiser")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps in total (may grow on --resume)")
    p.add_argument("--batch", type=int, default=64, help="pairs per step")
    p.add_argument("--lr", type=float, default=3e-4, help="learning rate after the warm-up")
    p.add_argument("--warmup", type=int, default=100, help="steps of linear warm-up")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights")
    p.add_argument("--p-one", type=float, default=0.4, help="probability of t = 1 (one-step regression)")
    p.add_argument("--p-half", type=float, default=0.2, help="probability of t = 1/2 (the second of two steps)")
    p.add_argument("--min-shards", type=int, default=1, help="wait until the pool holds this many shards")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--export", metavar="DIR", help="only write the EMA student of OUT's checkpoint to DIR, then stop")
    return p.parse_args(argv)


def learning_rate(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up to args.lr, then constant."""
    return args.lr * min(1.0, (step + 1) / args.warmup)


def sample_times(n: int, args: argparse.Namespace, generator: torch.Generator) -> torch.Tensor:
    """t [n] float64: 1 with probability p_one, 1/2 with p_half, else U(0, 1) (never exactly 0)."""
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    pick = torch.rand(n, generator=generator, dtype=torch.float64)
    t = u.clamp(min=1e-4)
    t = torch.where(pick < args.p_one + args.p_half, torch.full_like(t, 0.5), t)
    return torch.where(pick < args.p_one, torch.ones_like(t), t)


def reflow_loss(student: nn.Module, x0: torch.Tensor, x1: torch.Tensor, labels: torch.Tensor,
                t: torch.Tensor) -> torch.Tensor:
    """|| (x_1 - x_0) - u(x_t, t, y) ||^2 averaged over pixels and pairs (Liu et al. 2023, eq. 1)."""
    tt = t.to(x0.dtype).reshape(-1, 1, 1, 1)
    x_t = (1 - tt) * x0 + tt * x1
    return ((student.velocity(x_t, t, labels) - (x1 - x0)) ** 2).mean()


class Pool:
    """The pairs in memory, shard by shard, in the order they were added."""

    def __init__(self, folder: Path):
        self.folder, self.shards = folder, []
        self.x0 = self.x1 = self.labels = None

    def add(self, shards: list[int]) -> None:
        parts = [load_file(str(self.folder / SHARD_PATTERN.format(s))) for s in shards]
        if not parts:
            return
        new = {k: torch.cat([p[k] for p in parts]) for k in ("x0", "x1", "labels")}
        self.x0 = new["x0"] if self.x0 is None else torch.cat([self.x0, new["x0"]])
        self.x1 = new["x1"] if self.x1 is None else torch.cat([self.x1, new["x1"]])
        self.labels = new["labels"] if self.labels is None else torch.cat([self.labels, new["labels"]])
        self.shards += shards

    def grow(self) -> None:
        """Add every finished shard of the folder not yet in the pool (sorted)."""
        present = sorted(int(p.name[6:11]) for p in self.folder.glob(SHARD_PATTERN.replace("{:05d}", "*")))
        self.add([s for s in present if s not in set(self.shards)])

    def __len__(self) -> int:
        return 0 if self.x0 is None else len(self.x0)


def pairs_settings(folder: Path) -> dict:
    info = folder / PAIRS_INFO
    if not info.is_file():
        raise SystemExit(f"no pairs in {folder}: run python -m diffusion_core.training.reflow_pairs first")
    return json.loads(info.read_text())["settings"]


def train(args: argparse.Namespace) -> Path:
    torch.set_num_threads(args.threads)
    out, data = Path(args.out), Path(args.data)
    out.mkdir(parents=True, exist_ok=True)
    settings = pairs_settings(data)
    teacher_net, teacher_config = build_denoiser(args.teacher)
    student = build_student(teacher_net, teacher_config, settings["guidance"], {}, "reflow").to(args.device)
    ema = copy.deepcopy(student).requires_grad_(False)
    opt = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    generator = torch.Generator().manual_seed(args.seed)
    pool = Pool(data)

    step, seconds_before, running_loss = 0, 0.0, None
    if args.resume and (out / CHECKPOINT).exists():
        state = json.loads((out / CHECKPOINT_STATE).read_text())
        saved = {k: v for k, v in state["args"].items() if k not in RESUMABLE}
        check_resumed_args(saved, args)
        load_checkpoint(out, student.net, ema.net, opt, generator, args.device)
        pool.add(state["shards"])
        step, seconds_before, running_loss = state["step"], state["seconds"], state["running_loss"]
        print(f"resumed from {out / CHECKPOINT} at step {step} with {len(pool)} pairs")
    else:
        while True:
            pool.grow()
            if len(pool.shards) >= args.min_shards:
                break
            time.sleep(30)
    keep_loss_log(out / LOSS_LOG, step)

    def checkpoint() -> None:
        pool.grow()  # shards that appeared since: the pool of the steps after this checkpoint
        save_checkpoint(out, step, student.net, ema.net, opt, generator, args, log.elapsed(), log.running)
        state = json.loads((out / CHECKPOINT_STATE).read_text())
        state |= {"shards": pool.shards, "pairs": len(pool), "pairs_settings": settings}
        (out / CHECKPOINT_STATE).write_text(json.dumps(state, indent=1) + "\n")

    log = RunLog(out / LOSS_LOG, args, step, seconds_before, running_loss, log_every=25)
    student.train()
    while step < args.steps:
        idx = torch.randint(0, len(pool), (args.batch,), generator=generator)
        t = sample_times(args.batch, args, generator)
        loss = reflow_loss(student, pool.x0[idx], pool.x1[idx], pool.labels[idx], t)
        lr = learning_rate(step, args)
        value = optimiser_step(student, ema, opt, loss, step, args, lr=lr, max_norm=1.0)
        step += 1
        log.record(step, value, lr, pairs=str(len(pool)))
        if log.checkpoint_due(step):
            checkpoint()
            log.checkpointed()
    log.close()
    return export(out, out)


def export(out: Path, dest: Path) -> Path:
    """Write the EMA student of the checkpoint in ``out`` to ``dest`` (reflow.safetensors + reflow.json),
    with the run's facts (pairs, steps, training seconds) in the JSON."""
    state = json.loads((out / CHECKPOINT_STATE).read_text())
    teacher_net, teacher_config = build_denoiser(state["args"]["teacher"])
    tensors = load_file(str(out / CHECKPOINT))
    net = UNet(teacher_config.unet)
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    s = state["pairs_settings"]
    pairs = {"count": state["pairs"], "sampler": s["sampler"], "steps": s["steps"], "spacing": s["spacing"],
             "seed": s["seed"]}
    student = ReflowStudent(net, StudentConfig(teacher=teacher_config, guidance=s["guidance"], pairs=pairs,
                                               stage="reflow"))
    a = state["args"]
    training = {"steps": state["step"], "batch": a["batch"], "lr": a["lr"], "ema": a["ema"], "p_one": a["p_one"],
                "p_half": a["p_half"], "seconds": round(state["seconds"], 1), "seed": a["seed"]}
    return save_student(student, dest, {"training": training})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export:
        print(f"exported to {export(Path(args.out), Path(args.export))}")
        return
    print(f"saved the EMA student to {train(args)}")


if __name__ == "__main__":
    main()
