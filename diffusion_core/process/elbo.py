"""The variational bound of Ho et al. (2020), eq. 5, term by term, in bits per dimension.

    L = L_T + sum_{t >= 2} L_{t-1} + L_0,
    L_T     = KL(q(x_T | x_0) || N(0, I)),
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)),   t = 2..T,
    L_0     = -log p_theta(x_0 | x_1)   (the discretized decoder, eq. 13).

p_theta(x_{t-1} | x_t) = N(mu~_t(x_t, x0_hat), sigma_t^2 I) with x0_hat from eq. 15 (not clipped; the calc_bpd_loop of
Ho et al. and Nichol & Dhariwal clips it by default: both are valid bounds, of different p_theta) and
sigma_t^2 = beta_t ("beta") or beta~_t ("beta_tilde"); the decoder uses sigma_1^2 = beta~_2 under either
choice (beta~_1 = 0), as Ho et al.'s code does. Every term of the column for t is a one-sample estimate
over x_t ~ q(x_t | x_0): term t uses x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise[t - 1].

Bits per dimension: nats / (D ln 2), D = C H W. The arithmetic is float64 throughout; the network only
sees x_t (in x0's dtype). Shapes: x0 [N, C, H, W] on the 8-bit grid k / 127.5 - 1, t in 1..T.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..samplers import DdpmVariance, EpsFn, predict_x0_from_eps
from .forward import check_timesteps, extract, q_mean_variance, q_sample
from .posterior import (
    model_variances,
    posterior_coefficients,
    q_posterior_mean_variance,
)
from .schedules import Schedule

BIN_HALF_WIDTH = 1.0 / 255.0  # half the spacing of the 8-bit grid on [-1, 1] (Ho et al. 2020, eq. 13)
Progress = Callable[[int, int], None]  # progress(done, total) after each network batch


def normal_kl(mean1: Tensor | float, var1: Tensor | float, mean2: Tensor | float, var2: Tensor | float) -> Tensor:
    """KL(N(mean1, var1) || N(mean2, var2)) per element, in nats:
    0.5 (log(var2 / var1) + (var1 + (mean1 - mean2)^2) / var2 - 1).
    Summing over the dimensions gives the KL of two diagonal Gaussians (Ho et al. 2020, eq. 5's L_{t-1})."""
    mean1, var1, mean2, var2 = (torch.as_tensor(v, dtype=torch.float64) if not isinstance(v, Tensor) else v
                                for v in (mean1, var1, mean2, var2))
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1.0)


# ------------------------------------------------------------------ the decoder (eq. 13)
def _log1mexp(z: Tensor) -> Tensor:
    """log(1 - exp(z)) for z <= 0, accurate at both ends (Maechler 2012)."""
    return torch.where(z > -math.log(2.0), torch.log(-torch.expm1(z)), torch.log1p(-torch.exp(z)))


def log_normal_interval(a: Tensor, b: Tensor) -> Tensor:
    """log(Phi(b) - Phi(a)) for a < b, standard normal CDF Phi, stable in both tails: above 0 it is
    computed from the upper tails log Phi(-a) and log Phi(-b), below 0 from the lower ones."""
    upper = a > 0  # the whole interval above 0: Phi(-a) - Phi(-b), both small
    lo, hi = torch.where(upper, -b, a), torch.where(upper, -a, b)  # Phi(hi) - Phi(lo) in both cases
    log_hi = torch.special.log_ndtr(hi)
    return log_hi + _log1mexp(torch.special.log_ndtr(lo) - log_hi)


def discretized_gaussian_log_likelihood(x0: Tensor, mean: Tensor, variance: Tensor | float) -> Tensor:
    """log p(x0) per element for the discretized Gaussian decoder of Ho et al. (2020), eq. 13:
    p(x0) = Phi((d+ - mean) / sigma) - Phi((d- - mean) / sigma), d+ = x0 + 1/255 (+inf at x0 = 1),
    d- = x0 - 1/255 (-inf at x0 = -1). x0 on the 8-bit grid in [-1, 1]; float64 result, x0's shape.
    Over the 256 levels the probabilities sum to 1 exactly (the bins tile the real line)."""
    x0, mean = x0.to(torch.float64), mean.to(torch.float64)
    sigma = torch.as_tensor(variance, dtype=torch.float64).sqrt()
    inf = torch.tensor(math.inf, dtype=torch.float64)
    upper = torch.where(x0 > 1 - 1e-3, inf, (x0 + BIN_HALF_WIDTH - mean) / sigma)
    lower = torch.where(x0 < -1 + 1e-3, -inf, (x0 - BIN_HALF_WIDTH - mean) / sigma)
    return log_normal_interval(lower, upper)


# ------------------------------------------------------------------ variances and the eq. 12 weight
def eps_mse_weight(schedule: Schedule, variance: DdpmVariance) -> Tensor:
    """The weight of Ho et al. (2020), eq. 12: beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)), float64
    [T + 1], so that L_{t-1} = weight_t ||eps - eps_hat||^2 + D c_t (``variance_kl_per_dim``) for t >= 2.
    Entries 0 and 1 are NaN: L_0 is the decoder, not a KL (L_simple's weight is 1 for every t, eq. 14)."""
    sigma2 = model_variances(schedule, variance)
    w = schedule.betas**2 / (2 * sigma2 * schedule.alphas * (1 - schedule.alpha_bars))
    w[:2] = math.nan
    return w


def variance_kl_per_dim(schedule: Schedule, variance: DdpmVariance) -> Tensor:
    """c_t = 0.5 (log(sigma_t^2 / beta~_t) + beta~_t / sigma_t^2 - 1), the part of L_{t-1} per dimension that
    does not depend on the network (normal_kl with equal means); 0 for sigma_t^2 = beta~_t. float64 [T + 1],
    NaN at t = 0 and 1."""
    c = normal_kl(0.0, posterior_coefficients(schedule).variance, 0.0, model_variances(schedule, variance))
    c[:2] = math.nan
    return c


def posterior_kl_from_eps(eps: Tensor, eps_hat: Tensor, t: int, schedule: Schedule,
                          variance: DdpmVariance) -> Tensor:
    """L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) summed over the pixels, in nats, per image
    [N], for t >= 2, by eq. 12 of Ho et al. (2020): D c_t + weight_t ||eps - eps_hat||^2 (``eps_mse_weight``,
    ``variance_kl_per_dim``; c_t = 0 when sigma_t^2 = beta~_t)."""
    if not 2 <= t <= schedule.T:
        raise ValueError(f"the KL form needs t in 2..{schedule.T} (beta~_1 = 0), got {t}")
    dims = eps[0].numel()
    weight = float(eps_mse_weight(schedule, variance)[t])
    c_t = float(variance_kl_per_dim(schedule, variance)[t])
    return dims * c_t + weight * ((eps.double() - eps_hat.double()) ** 2).flatten(1).sum(1)


# ------------------------------------------------------------------ the terms
def _check_x0(x0: Tensor) -> None:
    if x0.ndim != 4:
        raise ValueError(f"x0 must be [N, C, H, W], got shape {tuple(x0.shape)}")
    levels = (x0.to(torch.float64) + 1) * 127.5
    if len(x0) and (levels.min() < -1e-3 or levels.max() > 255 + 1e-3 or (levels - levels.round()).abs().max() > 1e-3):
        raise ValueError("x0 must lie on the 8-bit grid k / 127.5 - 1, k = 0..255")


def prior_nats(x0: Tensor, schedule: Schedule) -> Tensor:
    """L_T = KL(q(x_T | x_0) || N(0, I)) per image, nats [N] (Ho et al. 2020, eq. 5; q from eq. 4)."""
    mean, var = q_mean_variance(x0.to(torch.float64), schedule.T, schedule)
    return normal_kl(mean, var, 0.0, 1.0).flatten(1).sum(1)


def terms_nats(x0: Tensor, t: Tensor, noise: Tensor, eps_hat: Tensor, schedule: Schedule,
               variance: DdpmVariance) -> Tensor:
    """The term of eq. 5 at each row's t, nats per image [M], from a noise prediction already made.

    x0, noise, eps_hat: [M, C, H, W] (x_t = q_sample(x0, t, noise), eq. 4; eps_hat the prediction at x_t);
    t: LongTensor [M] in 1..T. Rows with t = 1 give L_0 = -log p_theta(x_0 | x_1) (eq. 13, mean x0_hat,
    variance beta~_2); rows with t >= 2 give L_{t-1} = KL(N(mu~_t(x_t, x_0), beta~_t) || N(mu~_t(x_t, x0_hat),
    sigma_t^2)) (eqs. 6-7 against p_theta, x0_hat from eq. 15, unclipped)."""
    t = check_timesteps(t, schedule, x0.shape[0])
    x0, noise, eps_hat = (v.to(torch.float64) for v in (x0, noise, eps_hat))
    x_t = q_sample(x0, t, noise, schedule)
    x0_hat = predict_x0_from_eps(x_t, eps_hat, extract(schedule.alpha_bars, t, x_t))
    mean_q, var_q = q_posterior_mean_variance(x0, x_t, t, schedule)
    mean_p, _ = q_posterior_mean_variance(x0_hat, x_t, t, schedule)  # mu_theta: eq. 7 with x0_hat (= x0_hat at t = 1)
    var_p = extract(model_variances(schedule, variance), t, x_t)
    out = torch.empty(len(t), dtype=torch.float64)
    kl_rows, dec_rows = t >= 2, t == 1
    if kl_rows.any():
        out[kl_rows] = normal_kl(mean_q[kl_rows], var_q[kl_rows], mean_p[kl_rows], var_p[kl_rows]).flatten(1).sum(1)
    if dec_rows.any():
        out[dec_rows] = -discretized_gaussian_log_likelihood(x0[dec_rows], mean_p[dec_rows], var_p[dec_rows]).flatten(1).sum(1)
    return out


def predict_noise(eps_fn: EpsFn, x0: Tensor, schedule: Schedule, noise: Tensor, timesteps: Tensor, *,
                  batch_size: int = 64, progress: Progress | None = None) -> Tensor:
    """eps_hat [K, N, C, H, W] at x_t = q_sample(x0, timesteps[k], noise[k]) for every k and image.

    noise: [K, N, C, H, W]; timesteps: LongTensor [K]. Many (t, image) pairs go through eps_fn in one call
    (about batch_size rows; a batch of many t is much faster than one call per t). eps_fn gets x_t in x0's
    dtype and t [M]; its rows are whole copies of the N images, t-major: row j is image j mod N (so a wrapper
    with per-image labels tiles them, as ``samplers.guided_eps_fn`` does)."""
    K, N = len(timesteps), x0.shape[0]
    if noise.shape != (K, *x0.shape):
        raise ValueError(f"noise must have shape {(K, *x0.shape)}, got {tuple(noise.shape)}")
    per_call = max(1, batch_size // max(N, 1))  # timesteps per network call
    out = torch.empty(noise.shape, dtype=x0.dtype)
    with torch.no_grad():
        for start in range(0, K, per_call):
            ts = timesteps[start:start + per_call]
            t_rows = ts.repeat_interleave(N)
            x_t = q_sample(x0.repeat(len(ts), 1, 1, 1), t_rows, noise[start:start + len(ts)].flatten(0, 1), schedule)
            out[start:start + len(ts)] = eps_fn(x_t, t_rows).to(out.dtype).reshape(len(ts), *x0.shape)
            if progress is not None:
                progress(min(start + per_call, K), K)
    return out


@dataclass(frozen=True)
class VlbTerms:
    """The bound of Ho et al. (2020), eq. 5, per image, in bits per dimension (float64)."""

    prior_bpd: Tensor  # [N] L_T
    terms_bpd: Tensor  # [N, T] column t - 1: L_0 (the decoder) for t = 1, L_{t-1} for t >= 2
    total_bpd: Tensor  # [N] prior + the sum of the terms
    eps_mse: Tensor  # [N, T] mean over the pixels of (eps - eps_hat)^2 at each t (L_simple's summand, eq. 14)


def nats_to_bpd(nats: Tensor, dims: int) -> Tensor:
    """nats per image -> bits per dimension: nats / (D ln 2)."""
    return nats / (dims * math.log(2.0))


def vlb_terms(eps_fn: EpsFn, x0: Tensor, schedule: Schedule, noise: Tensor, *, variance: DdpmVariance = "beta",
              batch_size: int = 64, progress: Progress | None = None) -> VlbTerms:
    """Every term of the bound, t = 1..T (T network calls per image, batched).

    x0: [N, C, H, W] on the 8-bit grid; noise: [T, N, C, H, W], term t uses noise[t - 1]."""
    _check_x0(x0)
    T = schedule.T
    timesteps = torch.arange(1, T + 1)
    eps_hat = predict_noise(eps_fn, x0, schedule, noise, timesteps, batch_size=batch_size, progress=progress)
    return bound_from_predictions(x0, schedule, noise, eps_hat, timesteps, variance)


def bound_from_predictions(x0: Tensor, schedule: Schedule, noise: Tensor, eps_hat: Tensor, timesteps: Tensor,
                           variance: DdpmVariance) -> VlbTerms:
    """``vlb_terms`` from predictions already made at all t = 1..T (``timesteps`` = 1..T): one set of
    network calls serves both variances."""
    T, N = schedule.T, x0.shape[0]
    if not torch.equal(timesteps.cpu(), torch.arange(1, T + 1)):
        raise ValueError("bound_from_predictions needs the predictions at every t = 1..T")
    dims = x0[0].numel()
    terms = terms_nats(x0.repeat(T, 1, 1, 1), timesteps.repeat_interleave(N), noise.flatten(0, 1),
                       eps_hat.flatten(0, 1), schedule, variance).reshape(T, N).T
    prior = prior_nats(x0, schedule)
    mse = ((noise.to(torch.float64) - eps_hat.to(torch.float64)) ** 2).flatten(2).mean(2).T
    return VlbTerms(prior_bpd=nats_to_bpd(prior, dims), terms_bpd=nats_to_bpd(terms, dims),
                    total_bpd=nats_to_bpd(prior + terms.sum(1), dims), eps_mse=mse)
