"""The exact denoiser of a finite data set: the training points x_1..x_M taken as the whole data
distribution (x_0 uniform over them), E[x_0 | x_t] in closed form, and from it the exact noise
prediction and the exact score. Shapes: points [N, 2]; t an int or a LongTensor [N] in 1..T."""

from __future__ import annotations

from torch import Tensor

from ..process.forward import check_timesteps
from ..process.schedules import Schedule
from ..samplers import EpsFn
from .density import posterior_mean

_CHUNK_ELEMENTS = 2**20  # query-data pairs per chunk of optimal_x0: 8 MB per float64 [rows, M] matrix


# ------------------------------------------------------------------ the exact denoiser
def _alpha_bar(t: int | Tensor, schedule: Schedule, n: int) -> Tensor:
    """abar_t for each of n rows, float64 [n, 1]."""
    return schedule.alpha_bars[check_timesteps(t, schedule, n)].reshape(n, 1)


def optimal_x0(x_t: Tensor, t: int | Tensor, data: Tensor, schedule: Schedule) -> Tensor:
    """E[x_0 | x_t] when x_0 is uniform over the rows of ``data`` [M, 2]: the exact denoiser [N, 2].

    By Bayes with q(x_t | x_0 = x_i) = N(sqrt(abar_t) x_i, (1 - abar_t) I) (Ho et al. 2020, eq. 4):
    E[x_0 | x_t] = sum_i w_i x_i,  w = softmax_i(-||x_t - sqrt(abar_t) x_i||^2 / (2 (1 - abar_t))):
    ``density.posterior_mean`` with alpha = sqrt(abar_t), sigma = sqrt(1 - abar_t) (the continuous-time denoiser
    at the schedule's times). The softmax subtracts its largest logit in float64, in chunks of queries so that
    memory stays bounded (a few tens of MB) for any N and M up to MAX_POINTS. Returns x_t's dtype."""
    n = x_t.shape[0]
    if x_t.ndim != 2 or x_t.shape[1] != 2 or data.ndim != 2 or data.shape[1] != 2 or len(data) == 0:
        raise ValueError(f"need x_t [N, 2] and data [M, 2] with M >= 1, got {tuple(x_t.shape)} and {tuple(data.shape)}")
    abar = _alpha_bar(t, schedule, n)
    out = posterior_mean(x_t.detach().cpu(), abar.sqrt(), (1 - abar).sqrt(), data.detach().cpu(),
                         chunk_elements=_CHUNK_ELEMENTS)
    return out.to(x_t.dtype).to(x_t.device)


def eps_from_x0(x_t: Tensor, x0: Tensor, t: int | Tensor, schedule: Schedule) -> Tensor:
    """eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t): Ho et al. (2020), eq. 4 solved for eps, row by row."""
    abar = _alpha_bar(t, schedule, x_t.shape[0]).to(x_t.dtype).to(x_t.device)
    return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()


def score_from_eps(eps: Tensor, t: int | Tensor, schedule: Schedule) -> Tensor:
    """grad log q_t(x_t) = -E[eps | x_t] / sqrt(1 - abar_t) (Vincent 2011; Song et al. 2021, eq. 7 with
    the variance-preserving q of Ho et al. 2020, eq. 4)."""
    abar = _alpha_bar(t, schedule, eps.shape[0]).to(eps.dtype).to(eps.device)
    return -eps / (1 - abar).sqrt()


def optimal_eps(x_t: Tensor, t: int | Tensor, data: Tensor, schedule: Schedule) -> Tensor:
    """The exact noise prediction E[eps | x_t] of the empirical distribution of ``data``."""
    return eps_from_x0(x_t, optimal_x0(x_t, t, data, schedule), t, schedule)


def optimal_score(x_t: Tensor, t: int | Tensor, data: Tensor, schedule: Schedule) -> Tensor:
    """The exact score grad log q_t(x_t) of the empirical distribution of ``data`` noised to step t."""
    return score_from_eps(optimal_eps(x_t, t, data, schedule), t, schedule)


def exact_eps_fn(data: Tensor, schedule: Schedule) -> EpsFn:
    """eps_fn(x_t, t) of the exact denoiser, for the samplers."""
    return lambda x_t, t: optimal_eps(x_t, t, data, schedule)
