"""The Gaussian densities, the trapezoid rule and the sample statistics, against independent references:
tabulated values of the standard normal density, the general multivariate formula with numpy's
determinant and inverse, numpy's own trapezoid and covariance, and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diffusion_core.process.gaussian import (
    density_grid,
    isotropic_level_radius,
    isotropic_normal_log_pdf,
    isotropic_normal_pdf,
    normal_log_pdf,
    normal_pdf,
    product_of_normal_pdfs,
    sample_covariance,
    sample_normal,
    sample_stats,
    trapezoid,
)

Z = 5.0  # Monte Carlo tolerance in standard errors


def test_standard_normal_against_tabulated_values():
    # phi(0) = 1/sqrt(2 pi), phi(1), phi(2): standard tables (Abramowitz & Stegun, table 26.1).
    np.testing.assert_allclose(normal_pdf([0.0, 1.0, -1.0, 2.0]),
                               [0.3989422804014327, 0.24197072451914337, 0.24197072451914337, 0.05399096651318806],
                               rtol=1e-14)


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.5, 0.05), (-3.0, 5.0), (2.0, 1e-4), (0.0, 1e4)])
def test_normal_pdf_is_the_formula(mu, sigma):
    x = mu + sigma * np.array([-3.0, -0.5, 0.0, 0.7, 2.5])
    ref = [math.exp(-((v - mu) ** 2) / (2 * sigma**2)) / math.sqrt(2 * math.pi * sigma**2) for v in x]
    np.testing.assert_allclose(normal_pdf(x, mu, sigma), ref, rtol=1e-12)
    np.testing.assert_allclose(normal_log_pdf(x, mu, sigma), np.log(ref), rtol=1e-12, atol=1e-12)


def test_extreme_sigmas_stay_finite():
    # Peak 1 / (sigma sqrt(2 pi)) for a tiny sigma; far tails underflow to 0, never nan.
    assert normal_pdf(0.0, 0.0, 1e-3).item() == pytest.approx(398.9422804014327, rel=1e-12)
    assert normal_pdf(0.0, 0.0, 1e-300).item() == pytest.approx(3.989422804014327e299, rel=1e-12)
    far = normal_pdf(1e3, 0.0, 1e-3)
    assert far.item() == 0.0
    assert np.isfinite(normal_log_pdf(1e3, 0.0, 1e-3)).all()
    flat = normal_pdf([-1e3, 0.0, 1e3], 0.0, 1e6)
    assert np.all(flat > 0) and np.all(np.isfinite(flat))
    assert flat[1] == pytest.approx(1 / (1e6 * math.sqrt(2 * math.pi)), rel=1e-12)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_sigma_is_an_error(sigma):
    with pytest.raises(ValueError, match="sigma must be"):
        normal_pdf(0.0, 0.0, sigma)
    with pytest.raises(ValueError, match="sigma must be"):
        isotropic_normal_pdf(np.zeros(2), np.zeros(2), sigma)


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (2.0, 0.05), (-1.0, 5.0), (0.0, 1e-4), (3.0, 1e4)])
def test_density_integrates_to_one(mu, sigma):
    grid = density_grid(mu, sigma)
    assert grid[0] == pytest.approx(mu - 10 * sigma) and grid[-1] == pytest.approx(mu + 10 * sigma)
    # Trapezoid error on 2001 points over +-10 sigma is ~1e-6 relative at most.
    assert trapezoid(normal_pdf(grid, mu, sigma), grid) == pytest.approx(1.0, abs=1e-6)


def test_trapezoid_against_exact_integrals_and_numpy():
    x = np.linspace(-2.0, 3.0, 11)
    assert trapezoid(2 * x + 1, x) == pytest.approx(10.0, rel=1e-14)  # exact for a line: [x^2 + x] from -2 to 3 = 12 - 2
    rng = np.random.default_rng(0)
    xs = np.sort(rng.uniform(-1, 1, 50))  # uneven spacing
    ys = rng.normal(size=50)
    assert trapezoid(ys, xs) == pytest.approx(np.trapezoid(ys, xs), rel=1e-12)
    fine = np.linspace(0, math.pi, 20001)
    assert trapezoid(np.sin(fine), fine) == pytest.approx(2.0, abs=1e-7)
    with pytest.raises(ValueError):
        trapezoid([1.0, 2.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError):
        trapezoid([1.0], [0.0])


@pytest.mark.parametrize("d", [1, 2, 5])
def test_isotropic_density_is_the_general_multivariate_formula(d):
    rng = np.random.default_rng(d)
    mu, sigma = rng.normal(size=d), 0.7
    x = rng.normal(size=(6, d))
    cov = sigma**2 * np.eye(d)  # general N(x; mu, Sigma) = (2 pi)^{-d/2} |Sigma|^{-1/2} exp(-1/2 (x-mu)^T Sigma^{-1} (x-mu))
    diff = x - mu
    quad = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    ref = (2 * math.pi) ** (-d / 2) * np.linalg.det(cov) ** -0.5 * np.exp(-0.5 * quad)
    np.testing.assert_allclose(isotropic_normal_pdf(x, mu, sigma), ref, rtol=1e-12)
    np.testing.assert_allclose(product_of_normal_pdfs(x, mu, sigma), ref, rtol=1e-12)
    np.testing.assert_allclose(isotropic_normal_log_pdf(x, mu, sigma), np.log(ref), rtol=1e-12)


def test_isotropic_density_integrates_to_one_in_2d():
    mu, sigma = np.array([0.5, -1.0]), 0.8
    gx = density_grid(mu[0], sigma, 8.0, 401)
    gy = density_grid(mu[1], sigma, 8.0, 401)
    p = isotropic_normal_pdf(np.stack(np.meshgrid(gx, gy), axis=-1), mu, sigma)
    inner = [trapezoid(row, gx) for row in p]
    assert trapezoid(np.array(inner), gy) == pytest.approx(1.0, abs=1e-5)


def test_isotropic_shape_errors():
    with pytest.raises(ValueError, match="x must be"):
        isotropic_normal_pdf(np.zeros((4, 3)), np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="x must be"):
        product_of_normal_pdfs(np.zeros((4, 3)), np.zeros(2), 1.0)


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (-2.0, 0.05), (1.0, 5.0)])
def test_sample_normal_moments(mu, sigma):
    n = 20_000
    x = sample_normal(mu, sigma, n, np.random.default_rng(1))
    assert x.shape == (n,)
    assert abs(x.mean() - mu) <= Z * sigma / math.sqrt(n)
    assert abs(x.var(ddof=1) - sigma**2) <= Z * sigma**2 * math.sqrt(2 / (n - 1))
    assert np.array_equal(x, sample_normal(mu, sigma, n, np.random.default_rng(1)))
    pts = sample_normal(np.array([1.0, -1.0]), sigma, n, np.random.default_rng(2))
    assert pts.shape == (n, 2)
    assert np.all(np.abs(pts.mean(0) - [1.0, -1.0]) <= Z * sigma / math.sqrt(n))


def test_sample_stats_exact_values():
    s = sample_stats([1.0, 2.0, 3.0, 4.0])
    assert (s.n, s.mean) == (4, 2.5)
    assert s.variance == pytest.approx(5 / 3)  # sum of squares 5, over n - 1 = 3
    assert s.mean_se == pytest.approx(math.sqrt(5 / 3 / 4))
    assert s.variance_se == pytest.approx(5 / 3 * math.sqrt(2 / 3))
    assert s.std == pytest.approx(math.sqrt(5 / 3))
    assert s.mean_z(2.0) == pytest.approx(0.5 / s.mean_se)
    assert s.variance_z(1.0) == pytest.approx((5 / 3 - 1) / s.variance_se)
    constant = sample_stats([2.0, 2.0])
    assert constant.mean_z(2.0) == 0.0 and constant.mean_z(1.0) == math.inf
    with pytest.raises(ValueError):
        sample_stats([1.0])


def test_standard_errors_cover_the_truth_as_often_as_they_should():
    """Over many small samples, |z| < 2 about 95% of the time: the standard errors are the right size
    (too small a SE would give far fewer, too large far more). Binomial SE of the rate: ~0.005."""
    rng = np.random.default_rng(3)
    reps, n = 2000, 200
    draws = sample_normal(1.0, 2.0, reps * n, rng).reshape(reps, n)
    stats = [sample_stats(row) for row in draws]
    mean_cover = np.mean([abs(s.mean_z(1.0)) < 2 for s in stats])
    var_cover = np.mean([abs(s.variance_z(4.0)) < 2 for s in stats])
    assert 0.93 <= mean_cover <= 0.97, mean_cover
    assert 0.92 <= var_cover <= 0.97, var_cover


def test_sample_covariance_against_numpy_and_independence():
    rng = np.random.default_rng(4)
    x = sample_normal(np.array([0.0, 3.0]), 1.5, 5000, rng)
    c = sample_covariance(x)
    np.testing.assert_allclose(c.matrix, np.cov(x, rowvar=False), rtol=1e-12)
    assert abs(c.matrix[0, 1]) <= Z * c.offdiag_se[0, 1]
    assert c.offdiag_se[0, 1] == pytest.approx(1.5**2 / math.sqrt(5000), rel=0.1)
    with pytest.raises(ValueError):
        sample_covariance(np.zeros(5))


@pytest.mark.parametrize("sigma, d", [(1.0, 2), (0.3, 2), (2.0, 3)])
def test_the_level_radius_is_where_the_density_equals_the_level(sigma, d):
    peak = (2 * np.pi * sigma**2) ** (-d / 2)
    levels = peak * np.array([0.9, 0.5, 0.1, 1e-3])
    radius = isotropic_level_radius(levels, sigma, d)
    points = np.zeros((len(levels), d))
    points[:, 0] = radius  # a point at that distance from the mean, in any direction
    np.testing.assert_allclose(isotropic_normal_pdf(points, np.zeros(d), sigma), levels, rtol=1e-12)
    assert np.isnan(isotropic_level_radius(2 * peak, sigma, d)) and isotropic_level_radius(peak, sigma, d) < 1e-6 * sigma
