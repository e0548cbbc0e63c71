"""Train the evaluation classifier on MNIST and measure it on the test set.

    python -m diffusion_core.training.classifier --data ../shared/data/mnist --out pretrained

Cross-entropy, AdamW, linear warm-up then cosine decay of the learning rate,
light augmentation (a small random rotation, scaling and shift of every
training digit), a fixed seed and a fixed number of epochs: the test set is
read once, at the end, and never used to choose anything. Writes
``classifier.safetensors``, ``classifier.json`` and ``CLASSIFIER.md`` (the
measured test accuracy, training time and hardware) into ``--out``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.mnist import load_mnist, to_model_range
from ..models.classifier import Classifier, ClassifierConfig, embed, save_classifier
from ..models.devices import describe_hardware

REPORT_NAME = "CLASSIFIER.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with the four MNIST IDX .gz files")
    p.add_argument("--out", required=True, help="folder for classifier.safetensors, .json and CLASSIFIER.md")
    p.add_argument("--epochs", type=int, default=8, help="passes over the 60,000 training digits")
    p.add_argument("--batch", type=int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--warmup", type=int, default=300, help="steps of linear learning-rate warm-up")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    p.add_argument("--rotate", type=float, default=10.0, help="largest random rotation, degrees")
    p.add_argument("--scale", type=float, default=0.1, help="largest relative random scaling")
    p.add_argument("--shift", type=float, default=2.0, help="largest random shift, pixels")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (1 leaves a core to other work)")
    return p.parse_args(argv)


def random_affine(x: Tensor, generator: torch.Generator, rotate: float, scale: float, shift: float) -> Tensor:
    """Warp each image [N, 1, H, W] in [-1, 1] by a random rotation (uniform in +-rotate degrees),
    scaling (1 +- scale) and shift (+-shift pixels), bilinearly; the border stays background (-1)."""
    n, _, h, w = x.shape
    u = torch.rand((n, 4), generator=generator) * 2 - 1  # four uniform draws in [-1, 1] per image
    angle = u[:, 0] * math.radians(rotate)
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s  # the grid maps output to input: inverse scale
    tx, ty = u[:, 2] * shift * 2 / w, u[:, 3] * shift * 2 / h  # pixels -> normalised [-1, 1] coordinates
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with 0; shift to [0, 2] so that the padding is the black background (-1).
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def learning_rate(step: int, total: int, args: argparse.Namespace) -> float:
    """Linear warm-up to args.lr, then cosine decay to 0 at ``total`` steps."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, total - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def write_report(path: Path, accuracy: float, seconds: float, args: argparse.Namespace, n_train: int,
                 n_params: int) -> None:
    path.write_text(
        "## Evaluation classifier\n\n"
        "A small CNN (`diffusion_core/models/classifier.py`: Conv-BN-ReLU at 28x28, 14x14 (two) and 7x7, "
        f"global average pool -> {ClassifierConfig().feature_dim} features -> 10 logits; "
        f"{n_params:,} parameters) used only to measure generated digits: class accuracy, and the "
        "Fréchet distance between its features of two sets of images (Heusel et al. 2017).\n\n"
        f"- Test accuracy: **{100 * accuracy:.2f} %** on the 10,000 MNIST test digits "
        "(read once, after training; never used to choose anything).\n"
        f"- Training: {args.epochs} epochs over {n_train:,} training digits, batch {args.batch}, AdamW "
        f"(peak lr {args.lr:g}, weight decay {args.weight_decay:g}, warm-up then cosine decay), random "
        f"rotation +-{args.rotate:g} deg, scaling +-{100 * args.scale:g} %, shift +-{args.shift:g} px; "
        f"seed {args.seed}.\n"
        f"- Training time: {seconds / 60:.1f} min on {describe_hardware()}, "
        "while the denoiser trained on the other core.\n"
        "- Reproduce: `python -m diffusion_core.training.classifier --data ../shared/data/mnist --out pretrained`\n"
    )


def train(args: argparse.Namespace) -> float:
    """Train, save into args.out, and return the test accuracy."""
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    images, labels = load_mnist(args.data, "train")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    data = torch.from_numpy(to_model_range(images))
    targets = torch.from_numpy(labels.astype(np.int64))

    torch.manual_seed(args.seed)  # initial weights
    model = Classifier(ClassifierConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    generator = torch.Generator().manual_seed(args.seed)  # order and augmentation
    steps_per_epoch = math.ceil(len(data) / args.batch)
    total = args.epochs * steps_per_epoch
    started, step = time.monotonic(), 0
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(data), generator=generator)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(data), args.batch):
            idx = order[start:start + args.batch]
            x = random_affine(data[idx], generator, args.rotate, args.scale, args.shift)
            logits = model(x)
            loss = F.cross_entropy(logits, targets[idx])
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, total, args)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == targets[idx]).sum())
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / len(data):.4f}, "
              f"train accuracy {100 * correct / len(data):.2f} % (augmented), "
              f"{(time.monotonic() - started) / 60:.1f} min", flush=True)
    seconds = time.monotonic() - started

    test_images, test_labels = load_mnist(args.data, "test")
    accuracy = float((embed(model, to_model_range(test_images)).predictions == test_labels).mean())
    path = save_classifier(model, out)
    write_report(out / REPORT_NAME, accuracy, seconds, args, len(data), sum(p.numel() for p in model.parameters()))
    print(f"test accuracy {100 * accuracy:.2f} %; saved {path} and {out / REPORT_NAME}")
    return accuracy


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
