"""Train the denoiser on MNIST with the simple objective of Ho et al. (2020).

    python -m diffusion_core.training.denoiser --data ../shared/data/mnist --out runs/denoiser

L_simple = E_{t, x_0, eps} || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t, y) ||^2
(Ho et al. 2020, eq. 14), t ~ U{1..T}; the label y is replaced by "no label"
with probability p_uncond so that one network also learns the unconditional
model for classifier-free guidance (Ho & Salimans 2022, algorithm 1).

AdamW, linear warm-up then cosine decay of the learning rate, an exponential
moving average (EMA) of the weights, a fixed seed. A checkpoint (safetensors,
never pickle) is written every few minutes and ``--resume`` continues from it
exactly, random state included, so a run can span several sessions.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.mnist import load_mnist, to_model_range
from ..models.devices import resolve_device
from ..models.unet import NULL_LABEL, UNet, UNetConfig
from ..models.weights import DenoiserConfig, save_denoiser
from ..process.forward import q_sample
from ..process.schedules import SCHEDULE_KINDS, make_schedule
from .run_log import RunLog

CHECKPOINT = "checkpoint.safetensors"
CHECKPOINT_STATE = "checkpoint.json"
LOSS_LOG = "loss.csv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with the four MNIST IDX .gz files")
    p.add_argument("--out", required=True, help="folder for checkpoints, the loss log and the final weights")
    p.add_argument("--steps", type=int, default=20000, help="optimiser steps in total")
    p.add_argument("--batch", type=int, default=512, help="images per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=500, help="steps of linear learning-rate warm-up")
    p.add_argument("--min-lr-ratio", type=float, default=0.05, help="final lr / peak lr of the cosine decay")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--ema", type=float, default=0.9995, help="EMA decay of the weights")
    p.add_argument("--p-uncond", type=float, default=0.1, help="probability of dropping the label")
    p.add_argument("--schedule", choices=SCHEDULE_KINDS, default="cosine", help="noise schedule")
    p.add_argument("--T", type=int, default=1000, help="number of diffusion steps")
    p.add_argument("--channels", type=int, nargs=2, default=list(UNetConfig.channels), help="widths at 14x14 and 7x7")
    p.add_argument("--blocks", type=int, nargs=2, default=list(UNetConfig.blocks_per_level), help="blocks per level")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0, help="minutes between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--export", metavar="DIR", help="only write the EMA weights of OUT's checkpoint to DIR, then stop")
    return p.parse_args(argv)


def learning_rate(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up to args.lr, then cosine decay to args.lr * min_lr_ratio at args.steps."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    ratio = args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return args.lr * ratio


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)


def optimiser_step(model: nn.Module, ema: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, step: int,
                   args, *, lr: float | None = None, max_norm: float | None = None) -> float:
    """Back-propagate ``loss`` and take optimiser step ``step`` (0-based), at learning rate ``lr`` when one is given
    (each script's schedule, e.g. ``learning_rate(step, args)``) and with the gradient's norm clipped to ``max_norm``
    when one is given; then move ``ema`` towards the weights with decay min(args.ema, (2 + step) / (11 + step)).
    Returns the loss as a number."""
    if lr is not None:
        for group in opt.param_groups:
            group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    update_ema(ema, model, min(args.ema, (2 + step) / (11 + step)))
    return loss.item()


def save_checkpoint(out: Path, step: int, model, ema, opt, generator, args, seconds: float = 0.0,
                    running_loss: float | None = None) -> None:
    """Model, EMA, AdamW moments and the data/noise generator, written atomically; beside them, in JSON,
    the step, the arguments, the training time so far and the smoothed loss (so a resumed log goes on)."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors |= {f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        st = opt.state.get(p)
        if st:
            tensors[f"opt.{i}.exp_avg"] = st["exp_avg"].cpu().contiguous()
            tensors[f"opt.{i}.exp_avg_sq"] = st["exp_avg_sq"].cpu().contiguous()
            tensors[f"opt.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1).cpu()
    tensors["rng"] = generator.get_state()
    tmp = out / (CHECKPOINT + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(out / CHECKPOINT)
    state = {"step": step, "seconds": seconds, "running_loss": running_loss,
             "args": {k: v for k, v in vars(args).items() if k not in ("resume", "quiet")}}
    (out / CHECKPOINT_STATE).write_text(json.dumps(state, indent=2) + "\n")


# Arguments a resumed run may change: where things are and how it runs, not what it computes.
RESUMABLE_CHANGES = frozenset({"data", "out", "device", "threads", "checkpoint_minutes", "export"})


def check_resumed_args(saved: dict, args: argparse.Namespace) -> None:
    """Refuse to resume a checkpoint with arguments that would change the run (other widths, batch, ...)."""
    changed = {k: (v, getattr(args, k, None)) for k, v in saved.items()
               if k not in RESUMABLE_CHANGES and getattr(args, k, None) != v}
    if changed:
        details = ", ".join(f"--{k.replace('_', '-')} was {old!r}, now {new!r}" for k, (old, new) in changed.items())
        raise SystemExit(f"cannot resume {args.out}: {details}; resume with the checkpoint's arguments "
                         f"(in {Path(args.out) / CHECKPOINT_STATE}) or start in another --out folder")


def load_checkpoint(out: Path, model, ema, opt, generator, device) -> None:
    """Restore the tensors of ``save_checkpoint`` (its JSON state is read by the caller)."""
    tensors = load_file(str(out / CHECKPOINT))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    for i, p in enumerate(model.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {
                "exp_avg": tensors[f"opt.{i}.exp_avg"].to(device),
                "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].to(device),
                "step": tensors[f"opt.{i}.step"].reshape(()).clone(),
            }
    generator.set_state(tensors["rng"])


def resume_state(out: Path, args: argparse.Namespace, model, ema, opt, generator, device) -> tuple[int, float, float | None]:
    """With ``args.resume`` and a checkpoint in ``out``: its arguments checked against ``args``, its weights, AdamW
    moments and generator loaded, and (step, training seconds so far, smoothed loss) returned; else (0, 0.0, None)."""
    if not (args.resume and (out / CHECKPOINT).exists()):
        return 0, 0.0, None
    state = json.loads((out / CHECKPOINT_STATE).read_text())
    check_resumed_args(state["args"], args)
    load_checkpoint(out, model, ema, opt, generator, device)
    print(f"resumed from {out / CHECKPOINT} at step {state['step']}")
    return state["step"], state.get("seconds", 0.0), state.get("running_loss")


def keep_loss_log(path: Path, step: int) -> None:
    """Start the loss log afresh (step 0), or keep only its rows up to ``step``, those of the checkpoint a
    run resumes from: rows written after it, before the run stopped, are written again as it goes on."""
    header = "step,loss,lr,seconds\n"
    rows = path.read_text().splitlines()[1:] if step > 0 and path.is_file() else []
    kept = [r for r in rows if r.split(",", 1)[0].isdigit() and int(r.split(",", 1)[0]) <= step]
    path.write_text(header + "".join(r + "\n" for r in kept))


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) training; returns the path of the final EMA weights."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    images, labels = load_mnist(args.data, "train")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    data = torch.from_numpy(to_model_range(images)).to(device)
    targets = torch.from_numpy(labels.astype(np.int64)).to(device)

    schedule = make_schedule(args.schedule, args.T)
    unet_config = UNetConfig(channels=tuple(args.channels), blocks_per_level=tuple(args.blocks))
    config = DenoiserConfig(unet=unet_config, schedule=args.schedule, T=args.T)
    torch.manual_seed(args.seed)  # initial weights
    model = UNet(unet_config).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)  # data, t, noise, label drop

    step, seconds_before, running_loss = resume_state(out, args, model, ema, opt, generator, device)
    keep_loss_log(out / LOSS_LOG, step)

    log = RunLog(out / LOSS_LOG, args, step, seconds_before, running_loss)
    model.train()
    while step < args.steps:
        idx = torch.randint(0, len(data), (args.batch,), generator=generator)
        t = torch.randint(1, schedule.T + 1, (args.batch,), generator=generator)
        noise = torch.randn((args.batch, 1, 28, 28), generator=generator)
        drop = torch.rand(args.batch, generator=generator) < args.p_uncond
        x0, y = data[idx.to(device)], targets[idx.to(device)]
        y = torch.where(drop.to(device), torch.full_like(y, NULL_LABEL), y)
        t, noise = t.to(device), noise.to(device)

        x_t = q_sample(x0, t, noise, schedule)
        loss = F.mse_loss(model(x_t, t, y), noise)  # L_simple, Ho et al. 2020, eq. 14
        lr = learning_rate(step, args)
        value = optimiser_step(model, ema, opt, loss, step, args, lr=lr, max_norm=1.0)
        step += 1
        log.record(step, value, lr, lr=f"{lr:.2e}")
        if log.checkpoint_due(step):
            save_checkpoint(out, step, model, ema, opt, generator, args, log.elapsed(), log.running)
            log.checkpointed()
    log.close()
    return save_denoiser(ema, config, out)


def export_checkpoint(out: Path, dest: Path) -> Path:
    """Write the EMA weights of the checkpoint in ``out`` as a loadable denoiser in ``dest``."""
    state = json.loads((out / CHECKPOINT_STATE).read_text())["args"]
    unet_config = UNetConfig(channels=tuple(state["channels"]), blocks_per_level=tuple(state["blocks"]))
    ema = UNet(unet_config)
    tensors = load_file(str(out / CHECKPOINT))
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    return save_denoiser(ema, DenoiserConfig(unet=unet_config, schedule=state["schedule"], T=state["T"]), dest)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export:
        print(f"exported to {export_checkpoint(Path(args.out), Path(args.export))}")
        return
    path = train(args)
    print(f"saved EMA weights to {path}")


if __name__ == "__main__":
    main()
