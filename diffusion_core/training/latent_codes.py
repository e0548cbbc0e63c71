"""Encode MNIST with the trained 2-D autoencoder into the points the app ships (``models.latent2d``).

    python -m diffusion_core.training.latent_codes --data ../shared/data/mnist \\
        --autoencoder runs/autoencoder_2d --out pretrained/latent

Points are the posterior means times the scale factor, 1 / std of one draw z ~ q(z | x) per training digit
(``training.latent_denoiser.dataset_scale_factor``, the image latent's rule). The autoencoder's files are
copied beside them, so ``--out`` holds everything ``load_latent2d`` reads.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ..data.mnist import load_mnist, to_model_range
from ..models.autoencoder import load_autoencoder, save_autoencoder
from ..models.latent2d import STEM, save_codes
from .latent_denoiser import dataset_scale_factor, encode_dataset


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with the four MNIST IDX .gz files")
    p.add_argument("--autoencoder", required=True, help=f"folder with {STEM}.safetensors + {STEM}.json")
    p.add_argument("--out", required=True, help="folder to write the codes and the autoencoder into")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior draw behind the scale factor")
    args = p.parse_args(argv)

    autoencoder = load_autoencoder(args.autoencoder, STEM)
    if not autoencoder.config.is_vector or autoencoder.config.latent_shape != (2,):
        raise SystemExit(f"{args.autoencoder}: expected a 2-D latent, got {autoencoder.config.latent_shape}")
    splits = {}
    scale = None
    for split in ("train", "test"):
        images, labels = load_mnist(args.data, split)
        means, stds = encode_dataset(autoencoder, torch.from_numpy(to_model_range(images)))
        if scale is None:
            scale = dataset_scale_factor(means, stds, args.seed)  # from the training digits
        splits[split] = (scale * means, torch.from_numpy(labels.astype(np.int64)))
    save_codes(args.out, scale, splits["train"], splits["test"],
               {"train_digits": len(splits["train"][0]), "test_digits": len(splits["test"][0]), "seed": args.seed})
    save_autoencoder(autoencoder, args.out, STEM)
    print(f"scale factor {scale:.5f}; wrote {len(splits['train'][0])} + {len(splits['test'][0])} points to {args.out}")


if __name__ == "__main__":
    main()
