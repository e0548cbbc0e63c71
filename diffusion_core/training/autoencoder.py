"""Train the KL-regularised autoencoder of latent diffusion on MNIST (``models.autoencoder``).

    python -m diffusion_core.training.autoencoder --data ../shared/data/mnist --out runs/autoencoder
    python -m diffusion_core.training.autoencoder --data ../shared/data/mnist --out runs/autoencoder_2d \\
        --latent-shape 2 --kl-weight 0.1 --name autoencoder_2d

L = || x - D(z) ||_1 + kl_weight * KL(q(z | x) || N(0, I)), z = mean + std * eps (Rombach et al. 2022, sec. 3;
``models.autoencoder.autoencoder_loss``). AdamW, linear warm-up then cosine decay, an EMA of the weights (the
shipped weights), a fixed seed; checkpoints and ``--resume`` exactly as ``training.denoiser`` (the same
functions), so a run stopped part-way and resumed ends with the same weights.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..data.mnist import load_mnist, to_model_range
from ..models.autoencoder import Autoencoder, AutoencoderConfig, autoencoder_loss, save_autoencoder
from ..models.devices import resolve_device
from .denoiser import (CHECKPOINT, CHECKPOINT_STATE, LOSS_LOG, keep_loss_log, learning_rate, optimiser_step,
                       resume_state, save_checkpoint)
from .run_log import RunLog


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with the four MNIST IDX .gz files")
    p.add_argument("--out", required=True, help="folder for checkpoints, the loss log and the final weights")
    p.add_argument("--name", default="autoencoder", help="file stem of the weights: NAME.safetensors + NAME.json")
    p.add_argument("--latent-shape", type=int, nargs="+", default=list(AutoencoderConfig.latent_shape),
                   help="C 7 7 (an image latent) or D (a vector latent)")
    p.add_argument("--channels", type=int, nargs=3, default=list(AutoencoderConfig.channels),
                   help="widths at 28x28, 14x14 and 7x7")
    p.add_argument("--kl-weight", type=float, default=AutoencoderConfig.kl_weight, help="weight of the KL term")
    p.add_argument("--steps", type=int, default=2500, help="optimiser steps in total")
    p.add_argument("--batch", type=int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate warm-up")
    p.add_argument("--min-lr-ratio", type=float, default=0.05, help="final lr / peak lr of the cosine decay")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0, help="minutes between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--export", metavar="DIR", help="only write the EMA weights of OUT's checkpoint to DIR, then stop")
    return p.parse_args(argv)


def config_of(args: argparse.Namespace | dict) -> AutoencoderConfig:
    a = args if isinstance(args, dict) else vars(args)
    return AutoencoderConfig(latent_shape=tuple(a["latent_shape"]), channels=tuple(a["channels"]),
                             kl_weight=a["kl_weight"])


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) training; returns the path of the final EMA weights."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images, _ = load_mnist(args.data, "train")
    if args.limit:
        images = images[: args.limit]
    data = torch.from_numpy(to_model_range(images)).to(device)

    config = config_of(args)
    torch.manual_seed(args.seed)  # initial weights
    model = Autoencoder(config).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)  # data order and the posterior's noise

    step, seconds_before, running = resume_state(out, args, model, ema, opt, generator, device)
    keep_loss_log(out / LOSS_LOG, step)

    log = RunLog(out / LOSS_LOG, args, step, seconds_before, running, smoothing=(0.98, 0.02), loss_digits=3)
    model.train()
    while step < args.steps:
        idx = torch.randint(0, len(data), (args.batch,), generator=generator)
        noise = torch.randn((args.batch, *config.latent_shape), generator=generator)
        loss, rec, kl = autoencoder_loss(model, data[idx.to(device)], noise.to(device))
        lr = learning_rate(step, args)
        value = optimiser_step(model, ema, opt, loss, step, args, lr=lr, max_norm=100.0)  # the loss sums 784 pixels
        step += 1
        log.record(step, value, lr, rec=f"{rec.item():.2f}", kl=f"{kl.item():.1f}")
        if log.checkpoint_due(step):
            save_checkpoint(out, step, model, ema, opt, generator, args, log.elapsed(), log.running)
            log.checkpointed()
    log.close()
    return save_autoencoder(ema.cpu().eval(), out, args.name)


def export_checkpoint(out: Path, dest: Path) -> Path:
    """Write the EMA weights of the checkpoint in ``out`` as a loadable autoencoder in ``dest``."""
    saved = json.loads((out / CHECKPOINT_STATE).read_text())["args"]
    ema = Autoencoder(config_of(saved))
    tensors = load_file(str(out / CHECKPOINT))
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    return save_autoencoder(ema.eval(), dest, saved["name"])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export:
        print(f"exported to {export_checkpoint(Path(args.out), Path(args.export))}")
        return
    print(f"saved EMA weights to {train(args)}")


if __name__ == "__main__":
    main()
