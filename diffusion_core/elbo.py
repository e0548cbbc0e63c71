"""The variational bound of Ho et al. (2020), eq. 5, term by term.

Shared helpers first; the bound itself builds on them.
"""

from __future__ import annotations

import torch
from torch import Tensor


def normal_kl(mean1: Tensor | float, var1: Tensor | float, mean2: Tensor | float, var2: Tensor | float) -> Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per element, in nats:
    0.5 (log(var2 / var1) + (var1 + (mean1 - mean2)^2) / var2 - 1).
    Summing over the dimensions gives the KL of two diagonal Gaussians (Ho et al. 2020, eq. 5's L_{t-1})."""
    mean1, var1, mean2, var2 = (torch.as_tensor(v, dtype=torch.float64) if not isinstance(v, Tensor) else v
                                for v in (mean1, var1, mean2, var2))
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)
