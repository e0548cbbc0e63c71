"""One error, five losses: how the MSE of each prediction (eps, x0, score, v, velocity) weights the eps-MSE on a
Gaussian path, the choice of t as a second weighting (SD3's logit-normal), and the weight over log SNR they imply
together (Kingma & Gao 2023, sec. 2 and table 1). Continuous t in [0, 1], t = 0 data, t = 1 noise (``paths``).

Every prediction is linear in the eps error at fixed (x_t, t): with x0_hat = (x_t - sigma eps_hat) / alpha,
x0_hat - x0 = -(sigma / alpha)(eps_hat - eps), so pred_hat - pred = k(t) (eps_hat - eps) with k = 1 for eps,
-sigma / alpha for x0, -1 / sigma for the score, (alpha^2 + sigma^2) / alpha for v and sigma' - alpha' sigma / alpha
for the velocity. Each MSE is k(t)^2 times the eps-MSE, sample by sample. On the rectified flow
(alpha = 1 - t, sigma = t) the velocity's k is 1 + t / (1 - t) = 1 / (1 - t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .paths import PREDICTIONS, GaussianPath, Prediction, as_time, convert, expand

TimeSampling = Literal["uniform", "logit_normal"]


def velocity_target(x0: Tensor, noise: Tensor, t: Tensor | float, path: GaussianPath) -> Tensor:
    """The conditional velocity of one pair, d x_t / dt = alpha'(t) x0 + sigma'(t) eps: the regression target of
    conditional flow matching (Lipman et al. 2023, eq. 9, with t = 0 data; their t = 0 is noise, so their target is
    minus ours: on the rectified flow theirs is x0 - eps, ours eps - x0)."""
    return expand(path.d_alpha(t), x0) * x0 + expand(path.d_sigma(t), x0) * noise


def loss_weight(prediction: Prediction, t: Tensor | float, path: GaussianPath) -> Tensor:
    """k(t)^2: the MSE of ``prediction`` is k(t)^2 times the eps-MSE at the same (x_t, t) (module docstring).
    float64, t's shape; inf where the factor divides by zero (alpha = 0 at the noise end, sigma = 0 at the data)."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}; expected one of {PREDICTIONS}")
    t = as_time(t)
    a, s = path.alpha(t), path.sigma(t)
    if prediction == "eps":
        k = torch.ones_like(t)
    elif prediction == "x0":
        k = s / a
    elif prediction == "score":
        k = 1 / s
    elif prediction == "v":
        k = (a**2 + s**2) / a
    else:
        k = path.d_sigma(t) - path.d_alpha(t) * s / a
    return k**2


def logit_normal_density(t: Tensor | float, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """pi(t) = 1 / (s sqrt(2 pi)) * 1 / (t (1 - t)) * exp(-(logit t - m)^2 / (2 s^2)): the density of
    t = sigmoid(m + s n), n ~ N(0, 1) (Esser et al. 2024, eq. 19; SD3 uses m = 0, s = 1). 0 at t = 0 and 1."""
    t = as_time(t)
    inside = (t > 0) & (t < 1)
    tc = t.clamp(1e-300, 1 - 1e-16)
    logit = torch.log(tc) - torch.log1p(-tc)
    dens = torch.exp(-((logit - mean) ** 2) / (2 * std**2)) / (std * math.sqrt(2 * math.pi) * tc * (1 - tc))
    return torch.where(inside, dens, torch.zeros_like(t))


def time_density(t: Tensor | float, sampling: TimeSampling = "uniform", mean: float = 0.0, std: float = 1.0) -> Tensor:
    """The density of the training times: 1 on [0, 1] for U(0, 1), else ``logit_normal_density``."""
    if sampling == "uniform":
        return torch.ones_like(as_time(t))
    if sampling == "logit_normal":
        return logit_normal_density(t, mean, std)
    raise ValueError(f"unknown time sampling {sampling!r}; expected 'uniform' or 'logit_normal'")


def sample_flow_times(n: int, sampling: TimeSampling = "uniform", *, generator: torch.Generator | None = None,
                      mean: float = 0.0, std: float = 1.0) -> Tensor:
    """n training times, float64 [n]: t ~ U(0, 1) (Lipman et al. 2023) or t = sigmoid(m + s n) (Esser et al. 2024)."""
    if sampling == "uniform":
        return torch.rand(n, generator=generator, dtype=torch.float64)
    if sampling == "logit_normal":
        return torch.sigmoid(mean + std * torch.randn(n, generator=generator, dtype=torch.float64))
    raise ValueError(f"unknown time sampling {sampling!r}; expected 'uniform' or 'logit_normal'")


def implied_weight(prediction: Prediction, log_snr: Tensor, path: GaussianPath, sampling: TimeSampling = "uniform",
                   mean: float = 0.0, std: float = 1.0) -> Tensor:
    """The weight w(lambda) of the eps-MSE over log SNR lambda implied by minimising the MSE of ``prediction`` on
    ``path`` with training times from ``sampling`` (Kingma & Gao 2023, eq. 5 and table 1): w(lambda) =
    k(t)^2 p(lambda), where p(lambda) = p_t(t) / |d lambda / dt| is the density of lambda at the path's t(lambda)
    and d lambda / dt = 2 (alpha' / alpha - sigma' / sigma). float64, log_snr's shape.
    Examples (Kingma & Gao, table 1): eps on vp_cosine with t ~ U gives sech(lambda / 2) / (2 pi); v on vp_cosine and
    velocity on the rectified flow with t ~ U both give e^(-lambda / 2) up to a constant (1 / pi and 1 / 2)."""
    lam = torch.as_tensor(log_snr, dtype=torch.float64)
    t = path.t_at_log_snr(lam)
    a, s, da, ds = path.alpha(t), path.sigma(t), path.d_alpha(t), path.d_sigma(t)
    d_lambda = 2 * (da / a - ds / s)  # negative: the SNR falls with t
    return loss_weight(prediction, t, path) * time_density(t, sampling, mean, std) / d_lambda.abs()


@dataclass(frozen=True)
class WeightingCheck:
    """The per-sample MSEs of one batch, to check ``loss_weight`` on real predictions."""

    eps_mse: Tensor  # ||eps_hat - eps||^2 / D per sample, [N]
    velocity_mse: Tensor  # ||u_hat - u||^2 / D per sample, u the pair's velocity_target, u_hat from eps_hat, [N]
    weight: Tensor  # loss_weight("velocity", t, path) per sample, [N]

    @property
    def worst_relative_gap(self) -> float:
        """max |velocity_mse - weight eps_mse| / velocity_mse: 0 up to rounding, if the identity holds."""
        return float(((self.velocity_mse - self.weight * self.eps_mse).abs() / self.velocity_mse).max())


def weighting_check(eps_hat: Tensor, x0: Tensor, noise: Tensor, t: Tensor, path: GaussianPath) -> WeightingCheck:
    """The velocity MSE against k(t)^2 times the eps-MSE on a batch: x_t = alpha x0 + sigma eps, eps_hat a network's
    prediction at (x_t, t), u_hat = convert(eps_hat -> velocity). Inputs [N, ...] with t float64 [N] in (0, 1)."""
    x_t = path.sample(x0, t, noise)
    u_hat = convert(eps_hat, source="eps", target="velocity", x_t=x_t, t=t, path=path)
    u = velocity_target(x0, noise, t, path).to(u_hat.dtype)

    def mse(a: Tensor, b: Tensor) -> Tensor:
        return ((a - b) ** 2).reshape(len(a), -1).mean(1).double()

    return WeightingCheck(eps_mse=mse(eps_hat, noise.to(eps_hat.dtype)), velocity_mse=mse(u_hat, u),
                          weight=loss_weight("velocity", t, path))
