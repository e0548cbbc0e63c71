"""A stratified estimate of the variational bound (Ho et al. 2020, eq. 5) for live use: a few dozen
network calls per image instead of T, with its standard error (Cochran 1977, ch. 5). The exact terms
are those of ``elbo``; every value in bits per dimension unless said otherwise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..samplers import EpsFn
from .elbo import (
    Progress,
    _check_x0,
    nats_to_bpd,
    predict_noise,
    prior_nats,
    terms_nats,
)
from .schedules import Schedule

DECODER_DRAWS = 2  # draws of x_1 for L_0 in the live estimate: its noise (~0.03 bits/dim) joins the standard error


@dataclass(frozen=True)
class StratifiedPlan:
    """Timesteps for a stratified estimate of sum_{t=2}^T L_{t-1}: {2..T} cut into contiguous strata,
    ``per_stratum`` draws of t in each, uniform with replacement."""

    timesteps: Tensor  # LongTensor [K r], stratum-major (draws of stratum k at k r .. k r + r - 1)
    bounds: Tensor  # LongTensor [K + 1]: stratum k holds t = bounds[k] .. bounds[k + 1] - 1
    per_stratum: int  # r, draws per stratum (>= 2, so that each stratum's variance can be estimated)

    @property
    def sizes(self) -> Tensor:
        """n_k, the number of timesteps in each stratum [K]."""
        return self.bounds[1:] - self.bounds[:-1]


def stratum_bounds(T: int, strata: int) -> Tensor:
    """Edges 2 = b_0 < ... < b_K = T + 1 of at most ``strata`` strata, log-spaced in t: the terms fall by
    orders of magnitude over the first steps and then flatten, so strata are narrow where the terms change
    fast. The last stratum is {T} alone: with the cosine schedule beta_T is clipped to 0.999 and the eq. 12
    weight there is ~500, so that one term can be as large as the largest early terms (on the bench 0.100
    bits/dim, against 0.146 at t = 2). Rounding merges
    strata at small t, so K can be smaller than ``strata``."""
    if not 2 <= strata <= T - 1:
        raise ValueError(f"strata must lie in 2..{T - 1}, got {strata}")
    edges = torch.logspace(math.log10(2), math.log10(T), strata, dtype=torch.float64).round().long().unique()
    return torch.cat([edges, torch.tensor([T + 1])])


def stratified_plan(T: int, strata: int, per_stratum: int = 2, generator: torch.Generator | None = None) -> StratifiedPlan:
    """Cut t = 2..T into at most ``strata`` strata (``stratum_bounds``) and draw ``per_stratum`` t in each."""
    if per_stratum < 2:
        raise ValueError("per_stratum must be at least 2 to estimate the standard error")
    bounds = stratum_bounds(T, strata)
    sizes = bounds[1:] - bounds[:-1]
    u = torch.rand((len(sizes), per_stratum), generator=generator, dtype=torch.float64)
    t = bounds[:-1, None] + (u * sizes[:, None]).floor().long()
    return StratifiedPlan(timesteps=t.flatten(), bounds=bounds, per_stratum=per_stratum)


@dataclass(frozen=True)
class StratifiedEstimate:
    """The total of eq. 5 from a stratified sample of its terms, per image."""

    total: Tensor  # [N] L_T + L_0 + sum_k n_k mean_j L(t_kj): unbiased for the bound
    standard_error: Tensor  # [N] sqrt(sum_k n_k^2 s_k^2 / r), s_k^2 the sample variance within stratum k
    per_stratum: Tensor  # [N, K] n_k mean_j L(t_kj): the estimated share of each stratum


def stratified_total(plan: StratifiedPlan, prior: Tensor, decoder: Tensor, sampled_terms: Tensor) -> StratifiedEstimate:
    """The stratified estimator (Cochran 1977, ch. 5) of L_T + sum_{t=2}^T L_{t-1} + L_0.

    prior: [N], exact; decoder: [N] (taken as exact) or [N, m] (m >= 2 draws of x_1: their mean, and their
    variance / m joins the standard error); sampled_terms: [N, K r], L_{t-1} at plan.timesteps, in any unit
    (the result has the same). The standard error covers both the choice of t and the noise of each term."""
    n, r = plan.sizes.to(torch.float64), plan.per_stratum
    values = sampled_terms.to(torch.float64).reshape(sampled_terms.shape[0], -1, r)  # [N, K, r]
    share = n * values.mean(2)
    var = (n**2 * values.var(2, unbiased=True) / r).sum(1)
    decoder = decoder.to(torch.float64)
    if decoder.ndim == 2:
        var = var + decoder.var(1, unbiased=True) / decoder.shape[1]
        decoder = decoder.mean(1)
    return StratifiedEstimate(total=prior + decoder + share.sum(1), standard_error=var.sqrt(), per_stratum=share)


def mean_and_standard_error(values: Tensor | Sequence[float]) -> tuple[float, float]:
    """Sample mean and its standard error s / sqrt(n) (0 for a single value)."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    se = float(v.std(unbiased=True) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


@dataclass(frozen=True)
class StratifiedBound:
    """A live estimate of the bound for both choices of sigma_t^2 from one set of network calls
    (``stratified_bound``); every value in bits per dimension."""

    plan: StratifiedPlan
    prior_bpd: Tensor  # [N] L_T, exact
    decoder_bpd: Tensor  # [N] L_0, mean of DECODER_DRAWS draws of x_1 (the same for both variances: sigma_1^2 = beta~_2)
    sampled_bpd: dict[str, Tensor]  # variance -> [N, K r] L_{t-1} at plan.timesteps
    estimate: dict[str, StratifiedEstimate]  # variance -> the stratified total and its standard error
    eps_mse: Tensor  # [N, K r] mean over the pixels of (eps - eps_hat)^2 at plan.timesteps


def stratified_bound(eps_fn: EpsFn, x0: Tensor, schedule: Schedule, plan: StratifiedPlan, *,
                     generator: torch.Generator | None = None, batch_size: int = 64,
                     progress: Progress | None = None) -> StratifiedBound:
    """L_T exactly, L_0 from DECODER_DRAWS draws of x_1, and sum_{t>=2} L_{t-1} by ``stratified_total`` over
    ``plan``: DECODER_DRAWS + K r network calls per image instead of T. Noise is drawn on the CPU with
    ``generator``."""
    _check_x0(x0)
    N, dims, m = x0.shape[0], x0[0].numel(), DECODER_DRAWS
    timesteps = torch.cat([torch.ones(m, dtype=torch.long), plan.timesteps])
    noise = torch.randn((len(timesteps), *x0.shape), generator=generator, dtype=torch.float32).to(x0.dtype)
    eps_hat = predict_noise(eps_fn, x0, schedule, noise, timesteps, batch_size=batch_size, progress=progress)
    prior = nats_to_bpd(prior_nats(x0, schedule), dims)
    t_rows = timesteps.repeat_interleave(N)
    sampled, estimate, decoder = {}, {}, None
    for variance in ("beta", "beta_tilde"):
        nats = terms_nats(x0.repeat(len(timesteps), 1, 1, 1), t_rows, noise.flatten(0, 1), eps_hat.flatten(0, 1),
                          schedule, variance).reshape(len(timesteps), N).T
        bpd = nats_to_bpd(nats, dims)
        decoder, sampled[variance] = bpd[:, :m], bpd[:, m:]
        estimate[variance] = stratified_total(plan, prior, decoder, sampled[variance])
    mse = ((noise.to(torch.float64) - eps_hat.to(torch.float64)) ** 2).flatten(2).mean(2).T
    return StratifiedBound(plan=plan, prior_bpd=prior, decoder_bpd=decoder.mean(1), sampled_bpd=sampled,
                           estimate=estimate, eps_mse=mse[:, m:])
