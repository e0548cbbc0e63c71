"""The solver paths along the probability-flow ODE (diffusion_core.samplers.ode_paths) against the samplers'
own steps and the closed-form flow of Gaussian data; Wilson's interval and the worst-judged digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion_core.models.metrics import Z_95, label_probability, wilson_interval, worst_judged
from diffusion_core.samplers.ode_paths import (alpha_sigma, ddim_in_x0_form, dpm_solver_plan, first_order_path, lambdas, pick_pixels,
                                      pixel_path, prediction_used, step_curves)
from diffusion_core.samplers import ddim_step, dpm_solver_coefficients, sample_eps
from diffusion_core.process.schedules import make_schedule

SCHEDULE = make_schedule("cosine", 1000)


def test_lambda_is_half_the_log_snr_and_gives_alpha_and_sigma():
    t = np.array([1, 10, 500, 999, 1000])
    abar = SCHEDULE.alpha_bars.numpy()[t]
    lam = lambdas(SCHEDULE, t)
    np.testing.assert_allclose(lam, 0.5 * np.log(abar / (1 - abar)), rtol=1e-12)
    assert np.all(np.diff(lam) < 0) and lambdas(SCHEDULE, 0) == np.inf  # lambda falls as t grows
    alpha, sigma = alpha_sigma(lam)
    np.testing.assert_allclose(alpha, np.sqrt(abar), rtol=1e-9)
    np.testing.assert_allclose(sigma, np.sqrt(1 - abar), rtol=1e-9)
    assert alpha_sigma(np.inf) == (1.0, 0.0)
    with pytest.raises(ValueError):
        lambdas(SCHEDULE, 1001)


@pytest.mark.parametrize("clip", [False, True])
def test_the_first_order_step_is_ddim(clip):
    """Holding x0_hat fixed from lambda_t to lambda_prev lands where DDIM (eta = 0) lands, and solving the
    step for its prediction gives DDIM's x0_hat back (clipped, when the step clipped it)."""
    g = torch.Generator().manual_seed(0)
    x_t, eps = torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64), torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64)
    for t, t_prev in ((1000, 900), (500, 499), (40, 0)):
        out = ddim_step(x_t, eps, t, t_prev, SCHEDULE, clip=clip)
        lam_t, lam_prev = lambdas(SCHEDULE, [t, t_prev])
        x_end = first_order_path(x_t.numpy(), out.x0_hat.numpy(), lam_t, np.array([lam_prev]))[0]
        np.testing.assert_allclose(x_end, out.x_prev.numpy(), atol=1e-9)
        np.testing.assert_allclose(prediction_used(x_t.numpy(), out.x_prev.numpy(), lam_t, lam_prev),
                                   out.x0_hat.numpy(), atol=1e-6)
        c, (a, b) = dpm_solver_coefficients(SCHEDULE, t, t_prev), ddim_in_x0_form(SCHEDULE, t, t_prev)
        assert (c.coef_xt, c.coef_d) == (pytest.approx(a, abs=1e-12), pytest.approx(b, abs=1e-12))


def gaussian_oracle(s: float):
    """For data x_0 ~ N(0, s^2) the ideal eps-predictor is eps*(x_t) = sigma_t x_t / (alpha_t^2 s^2 + sigma_t^2),
    and the probability-flow ODE keeps x_t / sqrt(alpha_t^2 s^2 + sigma_t^2) constant."""
    def eps_fn(x_t, t):
        abar = SCHEDULE.alpha_bars[t].to(x_t.dtype).view(-1, *[1] * (x_t.dim() - 1))
        return (1 - abar).sqrt() * x_t / (abar * s**2 + 1 - abar)
    return eps_fn


def test_ddim_paths_approach_the_exact_flow_of_gaussian_data():
    """DDIM steps of the oracle predictor, seen through pixel_path: the prediction each step used is its
    x0_hat; the points lie on the exact flow up to the solver's error, which falls as the steps grow."""
    s, t_start = 0.5, 1000
    x_T = torch.randn(1, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    std = lambda t: math.sqrt(float(SCHEDULE.alpha_bars[t]) * s**2 + 1 - float(SCHEDULE.alpha_bars[t]))  # noqa: E731
    errors = []
    for k in (10, 40, 160):
        steps = list(sample_eps(gaussian_oracle(s), x_T, SCHEDULE, sampler="ddim", steps=k, clip=False))
        t = [st.t for st in steps] + [0]
        x = np.stack([steps[0].x_t[0].numpy()] + [st.x_prev[0].numpy() for st in steps])
        path = pixel_path(SCHEDULE, t, x, np.stack([st.x0_hat[0].numpy() for st in steps]))
        # the runs are float32 (EpsReverseProcess): solving the first step, whose weight alpha_prev (1 - e^-h)
        # is ~1e-4, for its prediction magnifies their rounding to ~1e-3
        np.testing.assert_allclose(path.used, path.x0_hat, atol=2e-3)
        exact = x_T[0].numpy() * s / std(t_start)
        errors.append(float(np.abs(path.x[-1] - exact).max()))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01, errors


def run_path(sampler: str, steps: int, s: float = 0.7, seed: int = 2, spacing: str = "linear"):
    x_T = torch.randn(1, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    run = list(sample_eps(gaussian_oracle(s), x_T, SCHEDULE, sampler=sampler, steps=steps, clip=False, spacing=spacing))
    t = [st.t for st in run] + [0]
    x = np.stack([run[0].x_t[0].numpy()] + [st.x_prev[0].numpy() for st in run])
    return run, pixel_path(SCHEDULE, t, x, np.stack([st.x0_hat[0].numpy() for st in run]))


def test_the_prediction_a_dpm_solver_step_used_is_its_d():
    """Solving each DPM-Solver++(2M) step for its prediction gives D: the corrected one on second-order
    steps, x0_hat on first-order ones (the first, and the step to x_0)."""
    run, path = run_path("dpm_solver++", 6, spacing="logsnr")
    for i, st in enumerate(run):
        np.testing.assert_allclose(path.used[i], st.d[0].numpy(), atol=2e-3)
        if st.order == 1:
            np.testing.assert_allclose(path.used[i], path.x0_hat[i], atol=2e-3)
    assert [st.order for st in run] == [1, 2, 2, 2, 2, 1]


@pytest.mark.parametrize("spacing", ["linear", "logsnr"])
def test_the_plan_is_what_a_run_computes_with(spacing):
    for steps in (1, 2, 6, 20):
        run, _ = run_path("dpm_solver++", steps, spacing=spacing)
        assert dpm_solver_plan(SCHEDULE, steps, spacing) == [st.solver for st in run]


def test_step_curves_join_the_points():
    _, path = run_path("ddim", 4)
    x = path.x
    lams, used, euler = step_curves(path, lam_end=7.0, points=9)
    assert lams.shape == (4, 9) and used.shape == euler.shape == (4, 9, 2)
    np.testing.assert_allclose(used[:, 0], x[:-1], atol=1e-12)  # each curve starts at its step's x_t
    np.testing.assert_allclose(used[:-1, -1], x[1:-1], atol=1e-9)  # and ends at the next point
    np.testing.assert_allclose(used[-1, -1], x[-1], atol=1e-12)  # the last one at x_0, drawn at lam_end
    np.testing.assert_allclose(used, euler, atol=1e-5)  # DDIM: no correction
    assert lams[-1, -1] == 7.0
    with pytest.raises(ValueError):
        step_curves(path, lam_end=float(path.lam[-2]) - 1)


def test_pixel_path_checks_its_input():
    with pytest.raises(ValueError):
        pixel_path(SCHEDULE, [10, 5], np.zeros((2, 1)), np.zeros((1, 1)))  # does not end at 0
    with pytest.raises(ValueError):
        pixel_path(SCHEDULE, [10, 0], np.zeros((3, 1)), np.zeros((1, 1)))


def test_pick_pixels():
    img = -np.ones((5, 5))
    img[2, 1:4] = [0.9, 1.0, 0.05]
    other = img.copy()
    other[4, 4] = 1.0
    assert pick_pixels(img, [other]) == [(2, 2), (2, 3), (4, 4)]
    assert len(set(pick_pixels(np.zeros((3, 3))))) == 3  # distinct even when all are equal


# ------------------------------------------------------------------ the quality meter's statistics
def test_wilson_bounds_are_the_roots_of_the_score_equation():
    for k, n in ((0, 10), (3, 10), (19, 20), (20, 20), (497, 500)):
        lo, hi = wilson_interval(k, n)
        p = k / n
        for q in (lo, hi):
            assert (p - q) ** 2 == pytest.approx(Z_95**2 * q * (1 - q) / n, abs=1e-12)
        assert 0 <= lo <= p <= hi <= 1
        assert wilson_interval(n - k, n) == pytest.approx((1 - hi, 1 - lo), abs=1e-12)  # symmetric
    assert wilson_interval(0, 10) == (0.0, pytest.approx(Z_95**2 / (10 + Z_95**2)))  # closed form at k = 0
    for bad in ((3, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def test_wilson_covers_about_95_percent():
    """Exact coverage, summing the binomial probabilities of the k whose interval holds p: close to 95 %
    on average over p, as Brown, Cai & DasGupta (2001, fig. 4) find."""
    from math import comb

    n = 40
    intervals = [wilson_interval(k, n) for k in range(n + 1)]
    coverage = []
    for p in np.linspace(0.05, 0.95, 91):
        coverage.append(sum(comb(n, k) * p**k * (1 - p) ** (n - k) for k, (lo, hi) in enumerate(intervals) if lo <= p <= hi))
    assert 0.94 < np.mean(coverage) < 0.96 and min(coverage) > 0.88, (np.mean(coverage), min(coverage))


def test_worst_judged():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.5, 0.5]])
    labels = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(label_probability(probs, labels), [0.9, 0.4, 0.8, 0.5])
    assert list(worst_judged(probs, labels, 2)) == [1, 3] and len(worst_judged(probs, labels, 9)) == 4
    with pytest.raises(ValueError):
        label_probability(probs, labels[:2])
