"""The Gaussian (normal) density, the only distribution the forward process uses.

Univariate:   N(x | mu, sigma^2) = (2 pi sigma^2)^{-1/2} exp{-(x - mu)^2 / (2 sigma^2)}.
Isotropic:    N(x; mu, sigma^2 I) = (2 pi sigma^2)^{-d/2} exp{-||x - mu||^2 / (2 sigma^2)}
              = prod_{i=1}^d N(x_i | mu_i, sigma^2)   (the covariance sigma^2 I is diagonal),
which is why q(x_t | x_{t-1}) = N(x_t; sqrt(1 - beta_t) x_{t-1}, beta_t I) (Ho et al. 2020, eq. 2)
adds independent noise to every pixel.

Densities are computed in log space, so a tiny sigma gives a tall, finite peak and a
huge sigma a flat, positive curve instead of 0/0 or overflow. Everything is float64 numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

LOG_2PI = math.log(2.0 * math.pi)


def _check_sigma(sigma: float) -> float:
    sigma = float(sigma)
    if not (sigma > 0.0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
    return sigma


def normal_log_pdf(x: ArrayLike, mu: float = 0.0, sigma: float = 1.0) -> np.ndarray:
    """log N(x | mu, sigma^2) = -1/2 log(2 pi) - log sigma - (x - mu)^2 / (2 sigma^2), elementwise."""
    sigma = _check_sigma(sigma)
    z = (np.asarray(x, dtype=np.float64) - mu) / sigma
    return -0.5 * LOG_2PI - math.log(sigma) - 0.5 * z * z


def normal_pdf(x: ArrayLike, mu: float = 0.0, sigma: float = 1.0) -> np.ndarray:
    """N(x | mu, sigma^2) = (2 pi sigma^2)^{-1/2} exp{-(x - mu)^2 / (2 sigma^2)}, elementwise."""
    return np.exp(normal_log_pdf(x, mu, sigma))


def isotropic_normal_log_pdf(x: ArrayLike, mu: ArrayLike, sigma: float) -> np.ndarray:
    """log N(x; mu, sigma^2 I) = -d/2 log(2 pi sigma^2) - ||x - mu||^2 / (2 sigma^2).

    x: [..., d] (the last axis holds the d coordinates), mu: [d]; returns [...].
    """
    sigma = _check_sigma(sigma)
    x = np.asarray(x, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if x.ndim == 0 or mu.shape != (x.shape[-1],):
        raise ValueError(f"x must be [..., d] and mu [d]; got x {x.shape} and mu {mu.shape}")
    d = x.shape[-1]
    sq = np.sum(((x - mu) / sigma) ** 2, axis=-1)
    return -0.5 * d * LOG_2PI - d * math.log(sigma) - 0.5 * sq


def isotropic_normal_pdf(x: ArrayLike, mu: ArrayLike, sigma: float) -> np.ndarray:
    """N(x; mu, sigma^2 I) = (2 pi sigma^2)^{-d/2} exp{-||x - mu||^2 / (2 sigma^2)}; x [..., d] -> [...]."""
    return np.exp(isotropic_normal_log_pdf(x, mu, sigma))


def isotropic_level_radius(level: ArrayLike, sigma: float, d: int = 2) -> np.ndarray:
    """The radius r of the sphere on which N(x; mu, sigma^2 I) in d dimensions equals ``level``: solving
    (2 pi sigma^2)^{-d/2} exp(-r^2 / (2 sigma^2)) = level gives r = sigma sqrt(-2 ln(level (2 pi sigma^2)^{d/2})).
    NaN for a level above the density's peak (no such sphere); the contours of the density are these spheres."""
    sigma = _check_sigma(sigma)
    level = np.asarray(level, dtype=np.float64)
    inside = -2.0 * np.log(level * (2.0 * math.pi * sigma**2) ** (d / 2))
    with np.errstate(invalid="ignore"):
        return np.where(inside >= 0, sigma * np.sqrt(np.maximum(inside, 0.0)), np.nan)


def product_of_normal_pdfs(x: ArrayLike, mu: ArrayLike, sigma: float) -> np.ndarray:
    """prod_i N(x_i | mu_i, sigma^2), one univariate density per coordinate; x [..., d] -> [...].

    Equals isotropic_normal_pdf (the factorisation of a diagonal covariance); kept
    separate so the page can show both numbers side by side."""
    x = np.asarray(x, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    if x.ndim == 0 or mu.shape != (x.shape[-1],):
        raise ValueError(f"x must be [..., d] and mu [d]; got x {x.shape} and mu {mu.shape}")
    out = np.ones(x.shape[:-1])
    for i in range(x.shape[-1]):
        out = out * normal_pdf(x[..., i], mu[i], sigma)
    return out


def trapezoid(y: ArrayLike, x: ArrayLike) -> float:
    """Trapezoid rule: integral of y dx ~ sum_i (x_{i+1} - x_i) (y_i + y_{i+1}) / 2 for 1-D x, y."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or y.shape != x.shape or len(x) < 2:
        raise ValueError(f"x and y must be 1-D of the same length >= 2; got {x.shape} and {y.shape}")
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def density_grid(mu: float, sigma: float, half_width: float = 10.0, n: int = 2001) -> np.ndarray:
    """n evenly spaced points on [mu - half_width sigma, mu + half_width sigma]: enough to integrate
    N(mu, sigma^2) (the mass outside +-10 sigma is ~1.5e-23) whatever the scale of sigma."""
    sigma = _check_sigma(sigma)
    return np.linspace(mu - half_width * sigma, mu + half_width * sigma, n)


def sample_normal(mu: ArrayLike, sigma: float, n: int, generator: np.random.Generator) -> np.ndarray:
    """n draws from N(mu, sigma^2 I) by reparameterisation, x = mu + sigma eps with eps ~ N(0, I).

    mu a scalar gives [n]; mu of shape [d] gives [n, d] (the isotropic multivariate case)."""
    sigma = _check_sigma(sigma)
    mu = np.asarray(mu, dtype=np.float64)
    eps = generator.standard_normal((n, *mu.shape))
    return mu + sigma * eps


@dataclass(frozen=True)
class SampleStats:
    """Sample mean and (unbiased) variance of n draws, with their standard errors.

    For draws from N(mu, sigma^2): SE(mean) = sigma / sqrt(n) and SE(variance) =
    sigma^2 sqrt(2 / (n - 1)); both are estimated here with the sample variance. A sample
    mean within ~2-3 standard errors of mu is as close as n draws can be expected to get."""

    n: int  # number of draws
    mean: float  # (1/n) sum x_i
    variance: float  # 1/(n-1) sum (x_i - mean)^2
    mean_se: float  # sqrt(variance / n)
    variance_se: float  # variance sqrt(2 / (n - 1)), exact for Gaussian draws

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    def mean_z(self, mu: float) -> float:
        """How many standard errors the sample mean lies from mu."""
        if self.mean_se > 0:
            return (self.mean - mu) / self.mean_se
        return 0.0 if self.mean == mu else math.inf

    def variance_z(self, var: float) -> float:
        """How many standard errors the sample variance lies from var."""
        if self.variance_se > 0:
            return (self.variance - var) / self.variance_se
        return 0.0 if self.variance == var else math.inf


def sample_stats(x: ArrayLike) -> SampleStats:
    """Mean, unbiased variance and their standard errors of the draws x (flattened, n >= 2)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    n = x.size
    if n < 2:
        raise ValueError(f"need at least 2 draws, got {n}")
    mean = float(x.mean())
    variance = float(np.sum((x - mean) ** 2) / (n - 1))
    return SampleStats(
        n=n,
        mean=mean,
        variance=variance,
        mean_se=math.sqrt(variance / n),
        variance_se=variance * math.sqrt(2.0 / (n - 1)),
    )


@dataclass(frozen=True)
class CovarianceStats:
    """Unbiased sample covariance of n draws of a d-vector, with the standard error of each
    off-diagonal entry under independence: SE(s_ij) = sqrt(s_ii s_jj / n) (for independent
    Gaussian coordinates Var(x_i x_j) = sigma_i^2 sigma_j^2)."""

    n: int  # number of draws
    matrix: np.ndarray  # [d, d], 1/(n-1) sum (x - mean)(x - mean)^T
    offdiag_se: np.ndarray  # [d, d], sqrt(s_ii s_jj / n)


def sample_covariance(x: ArrayLike) -> CovarianceStats:
    """Sample covariance matrix of draws x [n, d] (n >= 2) and the off-diagonal standard errors."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be [n, d] with n >= 2, got {x.shape}")
    n = x.shape[0]
    centred = x - x.mean(axis=0)
    matrix = centred.T @ centred / (n - 1)
    diag = np.diag(matrix)
    return CovarianceStats(n=n, matrix=matrix, offdiag_se=np.sqrt(np.outer(diag, diag) / n))
