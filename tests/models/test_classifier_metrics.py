"""The Fréchet distance against closed forms, class accuracy and spread, and the shipped classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from diffusion_core.models.classifier import (CONFIG_NAME, WEIGHTS_NAME, Classifier, ClassifierConfig, embed,
                                       load_classifier, save_classifier)
from diffusion_core.models.metrics import (GaussianStats, class_accuracy, class_spread, frechet_distance,
                                    frechet_distance_from_stats, gaussian_stats, trace_sqrt_product)
from diffusion_core.models.weights import PRETRAINED_DIR, WeightsError

ROOT = Path(__file__).resolve().parents[2]
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"  # CI keeps ../shared beside the repository


def random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def denman_beavers_sqrt(m: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Principal square root of a (not necessarily symmetric) matrix with positive eigenvalues by
    the Denman-Beavers iteration (1976): an independent reference for Tr (S_a S_b)^{1/2}."""
    y, z = m.copy(), np.eye(len(m))
    for _ in range(iterations):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


# ---------------------------------------------------------------- Fréchet distance
def test_frechet_diagonal_gaussians_closed_form():
    # For diagonal covariances diag(s1^2), diag(s2^2): d^2 = sum (m1 - m2)^2 + sum (s1 - s2)^2.
    m1, m2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([0.5, 1.0, -1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5, 3.0]), np.array([1.5, 1.0, 0.5, 0.1])
    expected = ((m1 - m2) ** 2).sum() + ((s1 - s2) ** 2).sum()
    got = frechet_distance_from_stats(GaussianStats(m1, np.diag(s1**2), 0), GaussianStats(m2, np.diag(s2**2), 0))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_one_dimension_closed_form():
    # d^2 = (m1 - m2)^2 + (s1 - s2)^2 in one dimension.
    got = frechet_distance_from_stats(GaussianStats(np.array([3.0]), np.array([[4.0]]), 0),
                                      GaussianStats(np.array([1.0]), np.array([[0.25]]), 0))
    assert got == pytest.approx(2.0**2 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_frechet_from_samples_matches_closed_form():
    rng = np.random.default_rng(0)
    n = 200_000
    m1, m2 = np.array([0.0, 0.0, 0.0]), np.array([0.5, -0.3, 0.2])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    a = m1 + s1 * rng.standard_normal((n, 3))
    b = m2 + s2 * rng.standard_normal((n, 3))
    expected = ((m1 - m2) ** 2).sum() + ((s1 - s2) ** 2).sum()
    # Delta method: a sample mean has variance s^2 / n and a sample std s^2 / (2n), so the term
    # (m1 - m2)^2 has variance (2 (m1 - m2))^2 (s1^2 + s2^2) / n and (s1 - s2)^2 has
    # (2 (s1 - s2))^2 (s1^2 + s2^2) / (2n); the bias (s1^2 + s2^2) / n is far smaller. Allow 5 sigma.
    var = (s1**2 + s2**2) / n
    std_error = np.sqrt(((2 * (m1 - m2)) ** 2 * var + (2 * (s1 - s2)) ** 2 * var / 2).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, abs=5 * std_error + var.sum())


def test_trace_sqrt_product_matches_denman_beavers():
    rng = np.random.default_rng(1)
    sa, sb = random_spd(6, rng), random_spd(6, rng)  # do not commute
    reference = np.trace(denman_beavers_sqrt(sa @ sb))
    assert trace_sqrt_product(sa, sb) == pytest.approx(reference, rel=1e-10)


def test_frechet_is_zero_for_identical_sets_and_symmetric():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))
    b = rng.standard_normal((700, 8)) * 2 + 1
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)


def test_frechet_invariant_to_common_rotation_and_shift():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((400, 5)) * np.array([1, 2, 3, 0.5, 1])
    b = rng.standard_normal((400, 5)) + 0.3
    r, shift = random_rotation(5, rng), rng.standard_normal(5)
    assert frechet_distance(a @ r.T + shift, b @ r.T + shift) == pytest.approx(frechet_distance(a, b), rel=1e-9)


def test_frechet_handles_singular_covariances():
    # A feature that never varies (a dead ReLU) makes S singular; the result stays finite and >= 0.
    rng = np.random.default_rng(4)
    a = np.concatenate([rng.standard_normal((300, 3)), np.zeros((300, 1))], axis=1)
    b = np.concatenate([rng.standard_normal((300, 3)), np.zeros((300, 1))], axis=1)
    d = frechet_distance(a, b)
    assert np.isfinite(d) and d >= 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_gaussian_stats_rejects_bad_shapes():
    with pytest.raises(ValueError):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


# ---------------------------------------------------------------- accuracy and spread
def test_class_accuracy_and_spread():
    assert class_accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    even = class_spread(np.repeat(np.arange(10), 7))
    assert even.counts.tolist() == [7] * 10
    assert even.normalized_entropy == pytest.approx(1.0) and even.max_min_ratio == 1.0
    one = class_spread(np.full(50, 3))
    assert one.entropy == 0.0 and one.max_min_ratio == float("inf")
    skewed = class_spread(np.array([0] * 30 + [1] * 10 + list(range(2, 10))))
    assert skewed.max_min_ratio == 30.0
    with pytest.raises(ValueError):
        class_spread(np.array([10]))


# ---------------------------------------------------------------- the classifier
def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig()).eval()
    save_classifier(model, tmp_path)
    loaded = load_classifier(tmp_path)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
        assert loaded.features(x).shape == (4, ClassifierConfig().feature_dim)


def test_loading_errors_name_the_file(tmp_path):
    with pytest.raises(WeightsError, match=CONFIG_NAME):
        load_classifier(tmp_path)
    save_classifier(Classifier(ClassifierConfig()), tmp_path)
    weights = tmp_path / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated download
    with pytest.raises(WeightsError, match="truncated") as err:
        load_classifier(tmp_path)
    assert str(weights) in str(err.value)
    weights.unlink()
    with pytest.raises(WeightsError, match="not found"):
        load_classifier(tmp_path)
    save_classifier(Classifier(ClassifierConfig(channels=(8, 16, 32))), tmp_path)
    (tmp_path / CONFIG_NAME).write_text('{"channels": [24, 48, 96]}')  # config of another network
    with pytest.raises(WeightsError, match="do not match"):
        load_classifier(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(WeightsError, match="invalid"):
        load_classifier(tmp_path)


@pytest.fixture(scope="module")
def shipped():
    path = PRETRAINED_DIR / WEIGHTS_NAME
    assert path.is_file(), f"{path} is shipped with the repository"
    assert path.stat().st_size < 2_000_000
    return load_classifier()


def test_shipped_classifier_reads_the_bundled_digits(shipped):
    from diffusion_core.data.samples import load_sample_image

    images = np.stack([load_sample_image(f"digit_{d}") for d in range(10)])
    x = images.astype(np.float32)[:, None] / 127.5 - 1
    assert embed(shipped, x).predictions.tolist() == list(range(10))


def test_shipped_classifier_on_mnist_test_digits(shipped):
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST test set not found at {MNIST_DIR}")
    from diffusion_core.data.mnist import load_mnist, to_model_range

    images, labels = load_mnist(MNIST_DIR, "test")
    out = embed(shipped, to_model_range(images[:500]))
    assert class_accuracy(out.predictions, labels[:500].astype(np.int64)) >= 0.98
    assert out.features.shape == (500, shipped.config.feature_dim)
    assert np.allclose(out.probabilities.sum(axis=1), 1.0)
