"""Schedules, the forward process, the chain and the posterior, against independent references.

References used here, none of them our own code: numpy float64 arithmetic written out from the
papers (Ho et al. 2020, eqs. 4, 6, 7; Nichol & Dhariwal 2021, eq. 17), published numbers, and Monte
Carlo. Monte Carlo tolerances are Z standard errors of the statistic for the sample size used.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion_core.process.chain import pixel_chains, q_chain, q_chain_frames, step_noise
from diffusion_core.process.forward import q_mean_variance, q_sample, q_sample_weights, q_step
from diffusion_core.process.marginals import marginal_curves, xt_pixel_moments
from diffusion_core.process.posterior import q_posterior_mean_variance
from diffusion_core.process.schedules import T_MAX, T_MIN, make_schedule

Z = 5.0  # Monte Carlo tolerance in standard errors: a false alarm has probability ~6e-7 per check


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The step loops run thousands of small ops; on a busy 2-core machine torch's intra-op threads
    make each one ~30x slower than a single thread does."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_mean_var(x: torch.Tensor, mean: float, var: float, what: str = "") -> None:
    """Sample mean and unbiased variance of x (one value per draw, dim 0) within Z standard errors
    of (mean, var): SE(mean) = sqrt(var / n), SE(s^2) = var sqrt(2 / (n - 1)) for Gaussian draws."""
    x = x.double()
    n = x.shape[0]
    m, v = x.mean(0), x.var(0, unbiased=True)
    se_m, se_v = math.sqrt(var / n), var * math.sqrt(2 / (n - 1))
    assert torch.all((m - mean).abs() <= Z * se_m), f"{what}: mean {m} vs {mean} (SE {se_m:.2e})"
    assert torch.all((v - var).abs() <= Z * se_v), f"{what}: variance {v} vs {var} (SE {se_v:.2e})"


# ----------------------------------------------------------------------------- schedules
def test_linear_betas_are_exactly_ho_et_al():
    s = make_schedule("linear", 1000)
    ref = np.linspace(1e-4, 0.02, 1000)  # Ho et al. 2020, sec. 4
    np.testing.assert_allclose(s.betas[1:].numpy(), ref, rtol=1e-13, atol=0)
    assert s.betas[1].item() == 1e-4 and s.betas[1000].item() == 0.02
    assert s.betas.dtype == torch.float64


def test_linear_alpha_bar_T_against_numpy_and_published_value():
    s = make_schedule("linear", 1000)
    betas = np.linspace(1e-4, 0.02, 1000)
    ref = np.prod(1.0 - betas)  # independent float64 product
    assert s.alpha_bars[1000].item() == pytest.approx(ref, rel=1e-12)
    # Published: abar_T = 4.035e-5 for this schedule (Lin et al. 2024, "Common diffusion noise
    # schedules and sample steps are flawed", sec. 3.1: sqrt(abar_T) = 0.0064).
    assert s.alpha_bars[1000].item() == pytest.approx(4.04e-5, abs=0.01e-5)
    # Every abar_t against the running product.
    np.testing.assert_allclose(s.alpha_bars[1:].numpy(), np.cumprod(1.0 - betas), rtol=1e-12)


@pytest.mark.parametrize("T", [T_MIN, 250, 1000, T_MAX])
def test_cosine_alpha_bar_is_eq_17_where_not_clipped(T):
    s = make_schedule("cosine", T)
    off = 0.008  # s of Nichol & Dhariwal (2021)

    def f(t):
        return math.cos((t / T + off) / (1 + off) * math.pi / 2) ** 2

    ref = np.array([f(t) / f(0) for t in range(T + 1)])
    betas = s.betas.numpy()
    clipped = np.flatnonzero(betas >= 0.999)
    first_clip = int(clipped[0]) if clipped.size else T + 1
    assert first_clip > T // 2, "clipping only happens at the very end"
    np.testing.assert_allclose(s.alpha_bars.numpy()[:first_clip], ref[:first_clip], rtol=1e-10, atol=1e-15)
    assert betas[T] == pytest.approx(0.999)  # f(T) ~ 0, so beta_T = 1 is clipped to 0.999
    assert np.all(betas[1:] <= 0.999)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("T", [T_MIN, 1000, T_MAX])
def test_schedule_layout(kind, T):
    s = make_schedule(kind, T)
    for name in ("betas", "alphas", "alpha_bars", "sqrt_alpha_bars", "sqrt_one_minus_alpha_bars", "snr"):
        v = getattr(s, name)
        assert v.shape == (T + 1,) and v.dtype == torch.float64, name
    assert s.alpha_bars[0].item() == 1.0 and s.betas[0].item() == 0.0
    assert torch.all(s.betas[1:] > 0) and torch.all(s.betas[1:] < 1)
    assert torch.all(s.alpha_bars[1:] < s.alpha_bars[:-1]), "abar_t strictly decreasing"
    np.testing.assert_allclose(s.sqrt_alpha_bars.numpy() ** 2, s.alpha_bars.numpy(), rtol=1e-12)
    np.testing.assert_allclose(s.sqrt_one_minus_alpha_bars.numpy() ** 2, 1 - s.alpha_bars.numpy(), rtol=1e-12, atol=1e-15)
    log_snr = s.log_snr.numpy()
    assert log_snr[0] == np.inf and np.all(np.isfinite(log_snr[1:]))
    np.testing.assert_allclose(log_snr[1:], np.log(s.alpha_bars.numpy()[1:]) - np.log1p(-s.alpha_bars.numpy()[1:]),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("T", [T_MIN, 250, 4000])
def test_linear_schedule_scales_with_T(T):
    s = make_schedule("linear", T)
    scale = 1000 / T  # both ends scaled, as in Nichol & Dhariwal's get_named_beta_schedule
    np.testing.assert_allclose(s.betas[1:].numpy(), np.linspace(1e-4 * scale, 0.02 * scale, T), rtol=1e-12)
    # The scaling keeps sum(beta) ~ 10.05, so abar_T stays near the T = 1000 value (order 1e-5).
    assert 1e-7 < s.alpha_bars[T].item() < 1e-3


@pytest.mark.parametrize("kind, T", [("quadratic", 1000), ("linear", T_MIN - 1), ("linear", T_MAX + 1),
                                     ("cosine", 0), ("linear", 1000.0), ("linear", True), ("linear", "1000")])
def test_make_schedule_rejects(kind, T):
    with pytest.raises(ValueError, match="kind|T must be"):
        make_schedule(kind, T)


# ----------------------------------------------------------------------------- q_sample, q_step
X0_VALUES = torch.tensor([-1.0, -0.3, 0.4, 1.0], dtype=torch.float64)  # one pixel per value


def image_batch(n: int, dtype=torch.float64) -> torch.Tensor:
    """n copies of a 2x2 picture holding X0_VALUES: [n, 1, 2, 2]."""
    return X0_VALUES.to(dtype).reshape(1, 1, 2, 2).expand(n, 1, 2, 2).clone()


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("t", [1, 10, 500, 1000])
def test_q_sample_matches_closed_form_moments(kind, t):
    s = make_schedule(kind, 1000)
    n = 20_000
    x0 = image_batch(n)
    xt = q_sample(x0, t, torch.randn(x0.shape, generator=gen(t), dtype=torch.float64), s)
    abar = float(np.prod(1 - s.betas.numpy()[1 : t + 1]))  # independent of the stored cumprod
    for i, v in enumerate(X0_VALUES.tolist()):
        assert_mean_var(xt[:, 0, i // 2, i % 2], math.sqrt(abar) * v, 1 - abar, f"t={t}, x0={v}")


@pytest.mark.parametrize("kind, T, ts", [("linear", 1000, [1, 7, 1000]), ("cosine", 1000, [1, 300, 1000]),
                                         ("linear", T_MIN, [1, T_MIN])])
def test_iterated_q_step_equals_q_sample_in_distribution(kind, T, ts):
    s = make_schedule(kind, T)
    n = 4_000  # x is [n, 4] (16,000 numbers, one op per step): the T-step loop stays fast
    g = gen(1)
    x0 = X0_VALUES.expand(n, 4).clone()
    x = x0
    for t in range(1, max(ts) + 1):
        x = q_step(x, t, torch.randn(x.shape, generator=g, dtype=torch.float64), s)
        if t in ts:
            jump = q_sample(x0, t, torch.randn(x.shape, generator=g, dtype=torch.float64), s)
            mean, var = q_mean_variance(x0[:1], t, s)
            for i in range(4):
                assert_mean_var(x[:, i], mean[0, i].item(), var[0, i].item(), f"chain t={t}")
                assert_mean_var(jump[:, i], mean[0, i].item(), var[0, i].item(), f"jump t={t}")
            # Two-sample check of the means: SE of a difference of two independent means.
            diff_se = math.sqrt(2 * var[0, 0].item() / n)
            assert torch.all((x.mean(0) - jump.mean(0)).abs() <= Z * diff_se)


def test_q_sample_at_t_1_is_one_step_and_at_T_is_almost_noise():
    s = make_schedule("linear", 1000)
    x0 = torch.rand((3, 1, 5, 5), generator=gen(2), dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=gen(3), dtype=torch.float64)
    torch.testing.assert_close(q_sample(x0, 1, eps, s), q_step(x0, 1, eps, s), rtol=1e-12, atol=1e-12)
    # abar_1 = 1 - beta_1: x_1 = sqrt(1 - 1e-4) x0 + 0.01 eps.
    torch.testing.assert_close(q_sample(x0, 1, eps, s), math.sqrt(1 - 1e-4) * x0 + 0.01 * eps)
    # At T = 1000, sqrt(abar_T) = 0.00635: x_T is eps up to 0.0064 |x0| + (1 - sqrt(1 - abar_T)).
    assert (q_sample(x0, 1000, eps, s) - eps).abs().max().item() < 0.0064 + 2.1e-5


def test_q_sample_accepts_a_timestep_per_image():
    s = make_schedule("cosine", 100)
    x0 = torch.ones((3, 1, 2, 2))
    eps = torch.zeros_like(x0)
    out = q_sample(x0, torch.tensor([1, 50, 100]), eps, s)
    expected = s.sqrt_alpha_bars[[1, 50, 100]].float()
    torch.testing.assert_close(out[:, 0, 0, 0], expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_are_kept(dtype):
    s = make_schedule("linear", 100)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        x0 = torch.zeros((2, 3, 4, 4), dtype=dtype, device=device)
        eps = torch.randn(x0.shape, generator=gen(0)).to(device=device, dtype=dtype)
        for out in (q_sample(x0, 5, eps, s), q_step(x0, 5, eps, s), *q_mean_variance(x0, 5, s),
                    q_chain(x0, 0, 3, s, seed=1), *q_posterior_mean_variance(x0, x0, 5, s)):
            assert out.dtype == dtype and out.device.type == device and out.shape == x0.shape


@pytest.mark.parametrize("fn", [q_sample, q_step])
def test_bad_timesteps_and_shapes_are_errors(fn):
    s = make_schedule("linear", 1000)
    x = torch.zeros((2, 1, 3, 3))
    eps = torch.zeros_like(x)
    with pytest.raises(ValueError, match=r"t must lie in 1\.\.1000"):
        fn(x, 0, eps, s)
    with pytest.raises(ValueError, match=r"t must lie in 1\.\.1000"):
        fn(x, 1001, eps, s)
    with pytest.raises(ValueError, match="integer timestep"):
        fn(x, 1.0, eps, s)
    with pytest.raises(ValueError, match=r"shape \[2\]"):
        fn(x, torch.tensor([1, 2, 3]), eps, s)
    with pytest.raises(ValueError, match="noise must have the shape"):
        fn(x, 1, torch.zeros((1, 1, 3, 3)), s)


# ----------------------------------------------------------------------------- the chain (chain.py)
def test_step_noise_depends_only_on_seed_and_t():
    like = torch.zeros((1, 1, 8, 8), dtype=torch.float64)
    a, b = step_noise(5, 17, like), step_noise(5, 17, like)
    assert torch.equal(a, b) and a.dtype == torch.float64
    assert not torch.equal(a, step_noise(5, 18, like)) and not torch.equal(a, step_noise(6, 17, like))
    with pytest.raises(ValueError):
        step_noise(0, 0, like)


def test_q_chain_can_be_resumed_from_any_frame():
    s = make_schedule("cosine", 200)
    x0 = torch.rand((1, 3, 6, 6), generator=gen(4)) * 2 - 1
    full = q_chain(x0, 0, 150, s, seed=9)
    torch.testing.assert_close(q_chain(q_chain(x0, 0, 60, s, seed=9), 60, 150, s, seed=9), full, rtol=0, atol=0)
    frames = q_chain_frames(x0, [0, 1, 60, 150], s, seed=9)
    assert frames.shape == (4, *x0.shape)
    assert torch.equal(frames[0], x0) and torch.equal(frames[3], full)
    torch.testing.assert_close(frames[1], q_step(x0, 1, step_noise(9, 1, x0), s), rtol=0, atol=0)
    assert torch.equal(q_chain(x0, 7, 7, s, seed=9), x0)
    for bad in [(-1, 3), (5, 4), (0, 201), (0.0, 3)]:
        with pytest.raises(ValueError):
            q_chain(x0, *bad, s, seed=9)
    with pytest.raises(ValueError, match="sorted"):
        q_chain_frames(x0, [3, 1], s, seed=9)


@pytest.mark.parametrize("kind, t", [("linear", 1), ("linear", 400), ("cosine", 1000)])
def test_q_chain_pixels_follow_the_closed_form(kind, t):
    """All 64x64 pixels of a flat picture are independent chains: 4096 draws of one pixel's x_t."""
    s = make_schedule(kind, 1000)
    x0_value = 0.6
    x = q_chain(torch.full((1, 1, 64, 64), x0_value, dtype=torch.float64), 0, t, s, seed=3)
    abar = float(np.prod(1 - s.betas.numpy()[1 : t + 1]))
    assert_mean_var(x.flatten(), math.sqrt(abar) * x0_value, 1 - abar, f"{kind} t={t}")


def test_pixel_chains_follow_the_closed_form_at_every_t():
    s = make_schedule("linear", 300)
    n, x0 = 4000, -0.8
    runs = pixel_chains(x0, s, n, gen(5))
    assert runs.shape == (301, n) and torch.all(runs[0] == x0)
    mean, std = marginal_curves(x0, s)
    np.testing.assert_allclose(mean, s.sqrt_alpha_bars.numpy() * x0, rtol=1e-12)
    np.testing.assert_allclose(std, np.sqrt(1 - np.cumprod(1 - s.betas.numpy())), rtol=1e-9, atol=1e-12)
    for t in (1, 20, 150, 300):
        assert_mean_var(runs[t], mean[t], std[t] ** 2, f"t={t}")
    # Determinism under a fixed generator; a different seed differs.
    assert torch.equal(pixel_chains(x0, s, 10, gen(5)), pixel_chains(x0, s, 10, gen(5)))
    assert not torch.equal(pixel_chains(x0, s, 10, gen(5)), pixel_chains(x0, s, 10, gen(6)))


def test_xt_pixel_moments_against_monte_carlo():
    """The predicted pixel mean/variance of x_t and their spreads, against many noise draws on one picture."""
    s = make_schedule("cosine", 1000)
    x0 = torch.rand((1, 1, 16, 16), generator=gen(7), dtype=torch.float64) * 2 - 1
    reps = 4000
    for t in (1, 300, 900):
        pm = xt_pixel_moments(x0, t, s)
        eps = torch.randn((reps, 1, 16, 16), generator=gen(t), dtype=torch.float64)
        xt = q_sample(x0.expand(reps, -1, -1, -1), t, eps, s).flatten(1)
        means, variances = xt.mean(1), xt.var(1, unbiased=True)
        # The statistics average to the prediction, and spread by the predicted standard error.
        assert abs(means.mean().item() - pm.mean) <= Z * pm.mean_se / math.sqrt(reps)
        assert abs(variances.mean().item() - pm.variance) <= Z * pm.variance_se / math.sqrt(reps)
        assert means.std().item() == pytest.approx(pm.mean_se, rel=Z * math.sqrt(1 / (2 * reps)))
        assert variances.std().item() == pytest.approx(pm.variance_se, rel=0.1)
    assert xt_pixel_moments(x0, 0, s).mean == pytest.approx(x0.mean().item())
    with pytest.raises(ValueError):
        xt_pixel_moments(x0, 1001, s)


# ----------------------------------------------------------------------------- posterior
def posterior_reference(schedule, t: int) -> tuple[float, float, float]:
    """Ho et al. 2020, eq. 7, written out in numpy float64 from the betas alone:
    mu~ = sqrt(abar_{t-1}) beta_t/(1-abar_t) x0 + sqrt(alpha_t)(1-abar_{t-1})/(1-abar_t) xt,
    beta~ = (1-abar_{t-1})/(1-abar_t) beta_t."""
    betas = schedule.betas.numpy()[1:]
    abar = np.cumprod(1 - betas)
    abar_t = abar[t - 1]
    abar_prev = abar[t - 2] if t >= 2 else 1.0
    beta_t = betas[t - 1]
    coef_x0 = math.sqrt(abar_prev) * beta_t / (1 - abar_t)
    coef_xt = math.sqrt(1 - beta_t) * (1 - abar_prev) / (1 - abar_t)
    return coef_x0, coef_xt, (1 - abar_prev) / (1 - abar_t) * beta_t


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("t", [2, 10, 500, 1000])
def test_posterior_matches_eqs_6_7(kind, t):
    s = make_schedule(kind, 1000)
    x0 = torch.rand((4, 1, 3, 3), generator=gen(t), dtype=torch.float64) * 2 - 1
    xt = torch.randn((4, 1, 3, 3), generator=gen(t + 1), dtype=torch.float64)
    mean, var = q_posterior_mean_variance(x0, xt, t, s)
    c0, ct, v = posterior_reference(s, t)
    torch.testing.assert_close(mean, c0 * x0 + ct * xt, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(var, torch.full_like(xt, v), rtol=1e-10, atol=1e-15)


def test_posterior_at_t_1_is_x0_with_no_variance():
    s = make_schedule("linear", 1000)
    x0 = torch.rand((2, 1, 4, 4), generator=gen(8), dtype=torch.float64)
    xt = torch.randn((2, 1, 4, 4), generator=gen(9), dtype=torch.float64)
    mean, var = q_posterior_mean_variance(x0, xt, 1, s)
    torch.testing.assert_close(mean, x0, rtol=1e-12, atol=1e-12)
    assert torch.all(var == 0)


@pytest.mark.parametrize("kind, t", [("linear", 2), ("linear", 300), ("cosine", 50), ("cosine", 999)])
def test_posterior_against_monte_carlo_regression(kind, t):
    """Draw x_{t-1} ~ q(x_{t-1} | x0) and x_t ~ q(x_t | x_{t-1}); for Gaussians E[x_{t-1} | x_t, x0] is linear
    in x_t, so least squares of x_{t-1} on x_t recovers coef_xt (slope), coef_x0 x0 (intercept), and
    the residual variance recovers beta~_t."""
    s = make_schedule(kind, 1000)
    n, x0 = 40_000, 0.7
    x0s = torch.full((n,), x0, dtype=torch.float64)
    g = gen(10 + t)
    x_prev = q_sample(x0s, t - 1, torch.randn(n, generator=g, dtype=torch.float64), s)
    x_t = q_step(x_prev, t, torch.randn(n, generator=g, dtype=torch.float64), s)
    X = np.stack([np.ones(n), x_t.numpy()], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(X, x_prev.numpy(), rcond=None)
    resid = x_prev.numpy() - X @ np.array([intercept, slope])
    resid_var = resid @ resid / (n - 2)

    mean, var = q_posterior_mean_variance(torch.tensor([x0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64), t, s)
    c0 = mean.item() / x0  # at x_t = 0 the mean is coef_x0 x0
    ct = (q_posterior_mean_variance(torch.tensor([x0], dtype=torch.float64),
                                    torch.tensor([1.0], dtype=torch.float64), t, s)[0].item() - mean.item())
    beta_tilde = var.item()
    # Standard errors of ordinary least squares: SE(slope) = sqrt(s^2 / Sxx), SE(intercept) =
    # sqrt(s^2 (1/n + xbar^2 / Sxx)); SE(residual variance) = s^2 sqrt(2 / (n - 2)).
    sxx = float(((x_t.numpy() - x_t.numpy().mean()) ** 2).sum())
    se_slope = math.sqrt(resid_var / sxx)
    se_int = math.sqrt(resid_var * (1 / n + x_t.numpy().mean() ** 2 / sxx))
    assert abs(slope - ct) <= Z * se_slope, (slope, ct, se_slope)
    assert abs(intercept - c0 * x0) <= Z * se_int, (intercept, c0 * x0, se_int)
    assert abs(resid_var - beta_tilde) <= Z * beta_tilde * math.sqrt(2 / (n - 2)), (resid_var, beta_tilde)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_q_sample_weights_are_the_products_of_eq_4(kind):
    """Row t - 1 of the weights mixes x_0 and eps into q_sample's x_t; sqrt(abar_t) from an independent
    running product of (1 - beta_s) in numpy, and the two weights' squares sum to 1."""
    s = make_schedule(kind, 200)
    w = q_sample_weights(s)
    assert w.shape == (200, 2) and w.dtype == torch.float64
    abar = np.cumprod(1 - s.betas[1:].numpy())
    np.testing.assert_allclose(w[:, 0].numpy(), np.sqrt(abar), rtol=1e-12)
    np.testing.assert_allclose((w**2).sum(1).numpy(), 1.0, rtol=1e-12)
    x0, eps = torch.rand(1, 1, 4, 4) * 2 - 1, torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    for t in (1, 57, 200):
        torch.testing.assert_close(q_sample(x0, t, eps, s), (w[t - 1, 0] * x0 + w[t - 1, 1] * eps).float())
