"""One noise prediction in its five faces on a Gaussian path, and the round trips that check them.

At (x_t, t) a network's eps_hat fixes x0_hat = (x_t - sigma eps_hat) / alpha (Ho et al. 2020, eq. 15), the score
-eps_hat / sigma (Song et al. 2021, eq. 7 with Vincent 2011), v = alpha eps_hat - sigma x0_hat (Salimans & Ho 2022)
and the velocity alpha' x0_hat + sigma' eps_hat (Lipman et al. 2023): ``paths.convert`` between any two. So a
network trained on one of them can be sampled as any other, and the choice is one of loss weighting
(``losses.loss_weight``), not of what the network can express.
"""

from __future__ import annotations

from torch import Tensor

from .paths import PREDICTIONS, GaussianPath, Prediction, convert


def all_predictions(eps_hat: Tensor, *, x_t: Tensor, t: Tensor | float, path: GaussianPath) -> dict[str, Tensor]:
    """eps_hat in every face of ``paths.PREDICTIONS`` (eps, x0, score, v, velocity), in eps_hat's dtype."""
    return {p: convert(eps_hat, source="eps", target=p, x_t=x_t, t=t, path=path) for p in PREDICTIONS}


def round_trip_error(eps_hat: Tensor, face: Prediction, *, x_t: Tensor, t: Tensor | float, path: GaussianPath) -> float:
    """max |eps_hat - convert(convert(eps_hat, eps -> face), face -> eps)|: 0 up to rounding (about 1e-15 in
    float64) where both conversions are defined."""
    there = convert(eps_hat, source="eps", target=face, x_t=x_t, t=t, path=path)
    back = convert(there, source=face, target="eps", x_t=x_t, t=t, path=path)
    return float((back - eps_hat).abs().max())
