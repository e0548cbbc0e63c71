"""Train the class-conditional denoiser of latent diffusion on the autoencoder's latents of MNIST.

    python -m diffusion_core.training.latent_denoiser --data ../shared/data/mnist \\
        --autoencoder runs/autoencoder --out runs/latent_denoiser

The training digits are encoded once by the (frozen) autoencoder into q(z | x) = N(mean, std^2). The scale
factor is 1 / std of one draw z ~ q(z | x) per training digit, over every number (``models.latent``). Each step
draws z ~ q(z | x) again (as Rombach et al. 2022 do), scales it, z_0 = scale_factor * z, and minimises L_simple
on it (Ho et al. 2020, eq. 14), with label dropout for classifier-free guidance (Ho & Salimans 2022) -- the
recipe of ``training.denoiser`` in the latent, with its checkpoint and ``--resume`` functions: a run stopped
part-way and resumed ends with the same weights. The output folder is a complete pipeline: the EMA weights
(``latent_denoiser.safetensors`` + ``.json``) and a copy of the autoencoder.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ..data.mnist import load_mnist, to_model_range
from ..models.autoencoder import Autoencoder, load_autoencoder
from ..models.devices import resolve_device
from ..models.latent import (AUTOENCODER_STEM, LatentConfig, latent_scale_factor, save_latent_denoiser,
                             start_timestep)
from ..models.unet import NULL_LABEL, UNet, UNetConfig
from ..process.forward import q_sample
from ..process.schedules import SCHEDULE_KINDS, make_schedule
from .denoiser import (CHECKPOINT, CHECKPOINT_STATE, LOSS_LOG, keep_loss_log, learning_rate, optimiser_step,
                       resume_state, save_checkpoint)
from .run_log import RunLog


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with the four MNIST IDX .gz files")
    p.add_argument("--autoencoder", required=True, help="folder with autoencoder.safetensors + autoencoder.json")
    p.add_argument("--out", required=True, help="folder for checkpoints, the loss log and the final pipeline")
    p.add_argument("--steps", type=int, default=6000, help="optimiser steps in total")
    p.add_argument("--batch", type=int, default=256, help="latents per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=300, help="steps of linear learning-rate warm-up")
    p.add_argument("--min-lr-ratio", type=float, default=0.05, help="final lr / peak lr of the cosine decay")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights")
    p.add_argument("--p-uncond", type=float, default=0.1, help="probability of dropping the label")
    p.add_argument("--schedule", choices=SCHEDULE_KINDS, default="cosine", help="noise schedule")
    p.add_argument("--T", type=int, default=1000, help="number of diffusion steps")
    p.add_argument("--channels", type=int, nargs=2, default=[32, 64], help="widths at 7x7 and 4x4")
    p.add_argument("--blocks", type=int, nargs=2, default=[2, 2], help="blocks per level")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0, help="minutes between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--export", metavar="DIR", help="only write the EMA pipeline of OUT's checkpoint to DIR, then stop")
    return p.parse_args(argv)


def unet_config(args: argparse.Namespace | dict, latent_channels: int) -> UNetConfig:
    a = args if isinstance(args, dict) else vars(args)
    return UNetConfig(image_size=7, in_channels=latent_channels, channels=tuple(a["channels"]),
                      blocks_per_level=tuple(a["blocks"]), unshuffle=1)


@torch.no_grad()
def encode_dataset(autoencoder: Autoencoder, images: torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations [N, *latent_shape] of every image [N, 1, 28, 28]."""
    autoencoder.eval()
    means, stds = [], []
    for i in range(0, len(images), batch):
        mean, logvar = autoencoder.encode(images[i:i + batch])
        means.append(mean)
        stds.append((0.5 * logvar).exp())
    return torch.cat(means), torch.cat(stds)


def dataset_scale_factor(means: torch.Tensor, stds: torch.Tensor, seed: int) -> float:
    """1 / std of one draw z ~ q(z | x) per image (a generator seeded with ``seed``), over every number."""
    noise = torch.randn(means.shape, generator=torch.Generator().manual_seed(seed))
    return latent_scale_factor(means + stds * noise)


def train(args: argparse.Namespace) -> Path:
    """Run (or resume) training; returns the path of the final EMA weights."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    autoencoder = load_autoencoder(args.autoencoder, AUTOENCODER_STEM)
    images, labels = load_mnist(args.data, "train")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    means, stds = encode_dataset(autoencoder, torch.from_numpy(to_model_range(images)))
    scale = dataset_scale_factor(means, stds, args.seed)
    means, stds = means.to(device), stds.to(device)
    targets = torch.from_numpy(labels.astype(np.int64)).to(device)
    shape = autoencoder.config.latent_shape

    schedule = make_schedule(args.schedule, args.T)
    config = LatentConfig(unet=unet_config(args, shape[0]), schedule=args.schedule, T=args.T, scale_factor=scale,
                          t_start=start_timestep(schedule))
    torch.manual_seed(args.seed)  # initial weights
    model = UNet(config.unet).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)  # data, posterior draw, t, noise, label drop

    step, seconds_before, running = resume_state(out, args, model, ema, opt, generator, device)
    keep_loss_log(out / LOSS_LOG, step)
    print(f"scale factor {scale:.5f} (latent std {1 / scale:.4f}), {len(means)} latents of shape {shape}")

    log = RunLog(out / LOSS_LOG, args, step, seconds_before, running)
    model.train()
    while step < args.steps:
        idx = torch.randint(0, len(means), (args.batch,), generator=generator)
        post = torch.randn((args.batch, *shape), generator=generator)
        t = torch.randint(1, schedule.T + 1, (args.batch,), generator=generator)
        noise = torch.randn((args.batch, *shape), generator=generator)
        drop = torch.rand(args.batch, generator=generator) < args.p_uncond
        i = idx.to(device)
        z0 = scale * (means[i] + stds[i] * post.to(device))  # z ~ q(z | x), scaled
        y = torch.where(drop.to(device), torch.full_like(targets[i], NULL_LABEL), targets[i])
        t, noise = t.to(device), noise.to(device)
        loss = F.mse_loss(model(q_sample(z0, t, noise, schedule), t, y), noise)  # L_simple, Ho et al. 2020, eq. 14
        lr = learning_rate(step, args)
        value = optimiser_step(model, ema, opt, loss, step, args, lr=lr, max_norm=1.0)
        step += 1
        log.record(step, value, lr, lr=f"{lr:.2e}")
        if log.checkpoint_due(step):
            save_checkpoint(out, step, model, ema, opt, generator, args, log.elapsed(), log.running)
            log.checkpointed()
    log.close()
    return save_latent_denoiser(ema.cpu().eval(), config, out, autoencoder)


def export_checkpoint(out: Path, dest: Path) -> Path:
    """Write the EMA weights of the checkpoint in ``out`` (with its autoencoder) as a loadable pipeline in ``dest``."""
    saved = json.loads((out / CHECKPOINT_STATE).read_text())["args"]
    autoencoder = load_autoencoder(saved["autoencoder"], AUTOENCODER_STEM)
    images, _ = load_mnist(saved["data"], "train")
    if saved.get("limit"):
        images = images[: saved["limit"]]
    scale = dataset_scale_factor(*encode_dataset(autoencoder, torch.from_numpy(to_model_range(images))), saved["seed"])
    config = LatentConfig(unet=unet_config(saved, autoencoder.config.latent_shape[0]), schedule=saved["schedule"],
                          T=saved["T"], scale_factor=scale,
                          t_start=start_timestep(make_schedule(saved["schedule"], saved["T"])))
    ema = UNet(config.unet)
    tensors = load_file(str(out / CHECKPOINT))
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    return save_latent_denoiser(ema.eval(), config, dest, autoencoder)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.export:
        print(f"exported to {export_checkpoint(Path(args.out), Path(args.export))}")
        return
    print(f"saved the latent pipeline (EMA weights) to {train(args)}")


if __name__ == "__main__":
    main()
