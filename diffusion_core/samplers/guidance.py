"""Classifier-free guidance (Ho & Salimans 2022): one guided noise prediction from the network."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..unet import NULL_LABEL

DEFAULT_GUIDANCE = 1.5  # guidance scale s of sample(); see pretrained/MODEL_CARD.md for the sweep


def guided_eps(model: nn.Module, x_t: Tensor, t: int, labels: Tensor, guidance: float) -> Tensor:
    """eps = eps(x_t, none) + s (eps(x_t, y) - eps(x_t, none)) (Ho & Salimans 2022, eq. 6 in eps form).

    s = 1 is the plain conditional model and s = 0 the unconditional one (one
    network pass each); otherwise both passes go through the network as one
    batch. Rows whose label is -1 are unconditional whatever s is."""
    n = x_t.shape[0]
    t_batch = torch.full((n,), t, dtype=torch.long, device=x_t.device)
    null = torch.full_like(labels, NULL_LABEL)
    if guidance == 0:
        return model(x_t, t_batch, null)
    if guidance == 1 or bool((labels == NULL_LABEL).all()):
        return model(x_t, t_batch, labels)
    eps_cond, eps_uncond = model(torch.cat([x_t, x_t]), torch.cat([t_batch, t_batch]), torch.cat([labels, null])).chunk(2)
    return eps_uncond + guidance * (eps_cond - eps_uncond)
