"""Classifier-free guidance (Ho & Salimans 2022): one guided noise prediction from the network."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..models.unet import NULL_LABEL

DEFAULT_GUIDANCE = 1.5  # guidance scale s of sample(); see pretrained/MODEL_CARD.md for the sweep


def guided_eps(model: nn.Module, x_t: Tensor, t: int | Tensor, labels: Tensor, guidance: float) -> Tensor:
    """eps = eps(x_t, none) + s (eps(x_t, y) - eps(x_t, none)) (Ho & Salimans 2022, eq. 6 in eps form).

    t: one timestep for every row, or a LongTensor [N] (one per row). s = 1 is the plain
    conditional model and s = 0 the unconditional one (one network pass each); otherwise
    both passes go through the network as one batch. Rows whose label is -1 are
    unconditional whatever s is."""
    n = x_t.shape[0]
    t_batch = t.to(x_t.device) if isinstance(t, Tensor) else torch.full((n,), t, dtype=torch.long, device=x_t.device)
    null = torch.full_like(labels, NULL_LABEL)
    if guidance == 0:
        return model(x_t, t_batch, null)
    if guidance == 1 or bool((labels == NULL_LABEL).all()):
        return model(x_t, t_batch, labels)
    eps_cond, eps_uncond = model(torch.cat([x_t, x_t]), torch.cat([t_batch, t_batch]), torch.cat([labels, null])).chunk(2)
    return eps_uncond + guidance * (eps_cond - eps_uncond)


def guided_eps_fn(model: nn.Module, labels: Tensor, guidance: float) -> Callable[[Tensor, Tensor], Tensor]:
    """The network as ``eps_fn(x_t, t)`` (t a LongTensor [M]) for N images with ``labels`` [N], guided
    with scale s (``guided_eps``). x_t is cast to the network's dtype and device, eps_hat comes back in
    x_t's. M may be a multiple of N: rows are whole copies of the N images, row j is image j mod N (the
    layout of ``elbo.predict_noise``, which evaluates many t in one call)."""
    p = next(iter(model.parameters()), None)
    dtype, device = (p.dtype, p.device) if p is not None else (torch.float32, torch.device("cpu"))
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1).to(device)

    def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
        if x_t.shape[0] % len(labels):
            raise ValueError(f"{x_t.shape[0]} rows are not whole copies of the {len(labels)} labelled images")
        rows = labels.repeat(x_t.shape[0] // len(labels))
        return guided_eps(model, x_t.to(device, dtype), t.to(device), rows, guidance).to(x_t.device, x_t.dtype)

    return eps_fn
