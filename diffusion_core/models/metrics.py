"""How good are generated digits? The Fréchet distance, class accuracy and class spread.

All in float64 numpy. The features come from the evaluation classifier
(``diffusion_core.models.classifier.embed``); the functions here work on any features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance of a set of feature vectors."""

    mu: np.ndarray  # float64 [D]
    sigma: np.ndarray  # float64 [D, D], unbiased sample covariance
    n: int  # number of vectors


def gaussian_stats(features: np.ndarray) -> GaussianStats:
    """Sample mean and covariance (divided by n - 1) of features [N, D], N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must have shape [N, D] with N >= 2, got {f.shape}")
    return GaussianStats(mu=f.mean(axis=0), sigma=np.atleast_2d(np.cov(f, rowvar=False)), n=len(f))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix, through eigh;
    eigenvalues below 0 (rounding) are clamped to 0."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """Tr (S_a S_b)^{1/2} for covariances S_a, S_b.

    S_a S_b is not symmetric, but it is similar to the symmetric PSD matrix
    S_a^{1/2} S_b S_a^{1/2} (same eigenvalues), so the trace is the sum of the
    square roots of that matrix's eigenvalues: no complex numbers, no sqrtm."""
    root_a = _psd_sqrt(sigma_a)
    m = root_a @ sigma_b @ root_a
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance_from_stats(a: GaussianStats, b: GaussianStats) -> float:
    """d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}): the squared 2-Wasserstein
    (Fréchet) distance between N(mu_a, S_a) and N(mu_b, S_b) (Dowson & Landau 1982),
    the formula of the FID of Heusel et al. (2017)."""
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"feature sizes differ: {a.mu.shape[0]} and {b.mu.shape[0]}")
    diff = a.mu - b.mu
    d2 = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * trace_sqrt_product(a.sigma, b.sigma)
    return max(float(d2), 0.0)  # rounding can leave -1e-15 for identical sets


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to features [N_a, D] and [N_b, D]
    (Heusel et al. 2017); see ``frechet_distance_from_stats``."""
    return frechet_distance_from_stats(gaussian_stats(features_a), gaussian_stats(features_b))


def class_accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of predictions [N] equal to labels [N]."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1 or len(labels) == 0:
        raise ValueError(f"need two non-empty [N] arrays, got {predictions.shape} and {labels.shape}")
    return float((predictions == labels).mean())


@dataclass(frozen=True)
class ClassSpread:
    """How evenly samples fall over the classes (for unconditional samples: is every digit made?)."""

    counts: np.ndarray  # int64 [num_classes], samples per predicted class
    entropy: float  # H = -sum p log p of the class frequencies, in nats
    normalized_entropy: float  # H / log(num_classes): 1 for a perfectly even spread, 0 for one class
    max_min_ratio: float  # largest count / smallest count (inf if a class is missing)


def class_spread(predictions: np.ndarray, num_classes: int = 10) -> ClassSpread:
    """Counts per class of predictions [N] (values 0..num_classes-1), their entropy and max/min ratio."""
    predictions = np.asarray(predictions)
    if predictions.ndim != 1 or len(predictions) == 0:
        raise ValueError(f"predictions must be a non-empty [N] array, got shape {predictions.shape}")
    if predictions.min() < 0 or predictions.max() >= num_classes:
        raise ValueError(f"predictions must lie in 0..{num_classes - 1}")
    counts = np.bincount(predictions.astype(np.int64), minlength=num_classes)
    p = counts / counts.sum()
    nz = p[p > 0]
    entropy = max(0.0, float(-(nz * np.log(nz)).sum()))  # no -0.0 for a single class
    ratio = float(counts.max() / counts.min()) if counts.min() > 0 else float("inf")
    return ClassSpread(counts=counts, entropy=entropy, normalized_entropy=entropy / np.log(num_classes),
                       max_min_ratio=ratio)


Z_95 = 1.959963984540054  # the 97.5 % quantile of N(0, 1): a two-sided 95 % interval


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's (1927) score interval for a proportion, from ``successes`` out of ``n`` trials:
    (p + z^2/2n -/+ z sqrt(p (1 - p)/n + z^2/4n^2)) / (1 + z^2/n), p = successes / n.

    Its bounds are the two roots in q of (p - q)^2 = z^2 q (1 - q) / n: the proportions q at which
    the observed p lies exactly z standard errors away. Unlike p -/+ z sqrt(p (1 - p)/n) it stays
    inside [0, 1] and does not shrink to a point at 0 or n successes (Brown, Cai & DasGupta 2001
    recommend it for small n)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # The exact bounds at 0 and n successes are 0 and 1; rounding would leave 1e-17 instead.
    return (0.0 if successes == 0 else max(0.0, centre - half), 1.0 if successes == n else min(1.0, centre + half))


def label_probability(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The probability [N] that the classifier gives to the asked label of each sample
    (probabilities [N, C], labels [N] in 0..C-1)."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels, dtype=np.int64)
    if probabilities.ndim != 2 or labels.shape != (len(probabilities),):
        raise ValueError(f"need probabilities [N, C] and labels [N], got {probabilities.shape} and {labels.shape}")
    return probabilities[np.arange(len(labels)), labels]


def worst_judged(probabilities: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k samples whose asked label gets the lowest probability, worst first
    (ties keep the samples' order)."""
    p = label_probability(probabilities, labels)
    return np.argsort(p, kind="stable")[: max(0, k)]
