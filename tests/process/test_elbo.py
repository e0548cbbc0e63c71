"""The variational bound (diffusion_core.process.elbo) against independent references: the eps-MSE form of
Ho et al. (2020), eq. 12; Monte Carlo; the 256 decoder bins summing to 1; a brute float64 loop over
pixels written from the paper's equations with Python's math module; and Gaussian data N(0, s^2 I)
with its exact optimal predictor, whose expected KL terms are known in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core.process.elbo import (
    discretized_gaussian_log_likelihood,
    eps_mse_weight,
    nats_to_bpd,
    normal_kl,
    predict_noise,
    prior_nats,
    terms_nats,
    variance_kl_per_dim,
    vlb_terms,
)
from diffusion_core.process.bound_estimate import mean_and_standard_error, stratified_plan, stratified_total
from diffusion_core.process.posterior import model_variances
from diffusion_core.samplers import guided_eps_fn
from diffusion_core.process.schedules import make_schedule

COSINE = make_schedule("cosine", 1000)  # the shipped network's schedule
LINEAR = make_schedule("linear", 1000)
SMALL = make_schedule("cosine", 30)  # for the brute loop
VARIANCES = ("beta", "beta_tilde")


def grid_images(n: int, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Random 8-bit images k / 127.5 - 1, with both ends of the range present."""
    k = torch.randint(0, 256, (n, *shape), generator=generator).double()
    k.view(-1)[0], k.view(-1)[1] = 0, 255
    return k / 127.5 - 1


def gaussian_oracle(s: float, schedule):
    """E[eps | x_t] for x_0 ~ N(0, s^2 I): sqrt(1 - abar_t) x_t / v_t, v_t = abar_t s^2 + 1 - abar_t."""
    def eps_fn(x_t, t):
        abar = schedule.alpha_bars[t].reshape(-1, *[1] * (x_t.ndim - 1)).to(x_t.dtype)
        return (1 - abar).sqrt() * x_t / (abar * s**2 + 1 - abar)
    return eps_fn


def wobbly_predictor(x_t, t):
    """A deliberately imperfect predictor (any function of x_t and t will do for the identities)."""
    tt = t.to(x_t.dtype).reshape(-1, *[1] * (x_t.ndim - 1))
    return 0.8 * torch.tanh(x_t) + 0.1 * torch.sin(tt / 7.0) + 0.05 * x_t.roll(1, dims=-1)


# ------------------------------------------------------------------ eq. 12
@pytest.mark.parametrize("schedule", [COSINE, LINEAR], ids=["cosine", "linear"])
@pytest.mark.parametrize("variance", VARIANCES)
def test_each_kl_is_the_weighted_eps_mse_of_eq12(schedule, variance):
    """L_{t-1} = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) ||eps - eps_hat||^2 + D c_t, for every t >= 2;
    c_t = 0 for sigma_t^2 = beta~_t, so there the KL is exactly the weighted eps-MSE."""
    g = torch.Generator().manual_seed(1)
    T, n = schedule.T, 2
    t = torch.arange(2, T + 1).repeat_interleave(n)
    x0 = grid_images(n, (1, 4, 4), g).repeat(T - 1, 1, 1, 1)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    eps_hat = noise + 0.3 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    kl = terms_nats(x0, t, noise, eps_hat, schedule, variance)
    sse = ((noise - eps_hat) ** 2).flatten(1).sum(1)
    w, c = eps_mse_weight(schedule, variance)[t], variance_kl_per_dim(schedule, variance)[t]
    expected = w * sse + 16 * c
    assert torch.allclose(kl, expected, rtol=1e-9, atol=1e-12)
    if variance == "beta_tilde":
        assert torch.all(c.abs() < 1e-12)
        assert torch.allclose(kl, w * sse, rtol=1e-9, atol=1e-12)
    else:
        assert torch.all(c[t > 2] > 0)  # beta_t > beta~_t costs a constant at every t >= 3


def test_weight_and_variances_by_hand():
    """The eq. 12 weight and sigma_t^2 at a few t, written out from the schedule's numbers."""
    s = COSINE
    for t in (2, 10, 500, 1000):
        b, a, ab, ab_prev = (float(v) for v in (s.betas[t], s.alphas[t], s.alpha_bars[t], s.alpha_bars[t - 1]))
        bt = (1 - ab_prev) / (1 - ab) * b
        assert float(model_variances(s, "beta")[t]) == pytest.approx(b, rel=1e-12)
        assert float(model_variances(s, "beta_tilde")[t]) == pytest.approx(bt, rel=1e-12)
        assert float(eps_mse_weight(s, "beta_tilde")[t]) == pytest.approx(b * b / (2 * bt * a * (1 - ab)), rel=1e-10)
    beta_tilde_2 = (1 - float(s.alpha_bars[1])) / (1 - float(s.alpha_bars[2])) * float(s.betas[2])
    for v in VARIANCES:  # the decoder's variance is beta~_2 under either choice
        assert float(model_variances(s, v)[1]) == pytest.approx(beta_tilde_2, rel=1e-12)
        assert math.isnan(float(eps_mse_weight(s, v)[1]))
    with pytest.raises(ValueError, match="variance"):
        model_variances(s, "large")


# ------------------------------------------------------------------ KL against Monte Carlo
@pytest.mark.parametrize("m1,v1,m2,v2", [(0.0, 1.0, 0.0, 1.0), (0.3, 0.5, -0.2, 2.0), (1.0, 1e-3, 0.9, 2e-3)])
def test_normal_kl_against_monte_carlo(m1, v1, m2, v2):
    """KL(q || p) = E_q[log q(x) - log p(x)], estimated with 400 000 draws (tolerance: 5 standard errors)."""
    g = torch.Generator().manual_seed(2)
    x = m1 + math.sqrt(v1) * torch.randn(400_000, generator=g, dtype=torch.float64)

    def log_density(x, m, v):
        return -0.5 * math.log(2 * math.pi * v) - (x - m) ** 2 / (2 * v)

    diff = log_density(x, m1, v1) - log_density(x, m2, v2)
    se = float(diff.std() / math.sqrt(len(x)))
    assert float(normal_kl(m1, v1, m2, v2)) == pytest.approx(float(diff.mean()), abs=5 * se + 1e-12)


# ------------------------------------------------------------------ the decoder
@pytest.mark.parametrize("mean", [-3.0, -1.0, -0.9987, 0.0, 0.4, 1.0, 2.5])
@pytest.mark.parametrize("variance", [1e-8, float(model_variances(COSINE, "beta")[1]), 0.01, 1.0, 100.0])
def test_decoder_bins_sum_to_one(mean, variance):
    """The 256 bins (open at -1 and +1) tile the line: their probabilities sum to 1 (to the float rounding of
    the shared bin edges, ~1e-17 / sigma); no log is NaN."""
    levels = torch.arange(256, dtype=torch.float64) / 127.5 - 1
    logp = discretized_gaussian_log_likelihood(levels, torch.full_like(levels, mean), variance)
    assert not torch.isnan(logp).any()
    assert float(torch.logsumexp(logp, 0).exp()) == pytest.approx(1.0, abs=1e-11)


def test_decoder_against_the_cdf_and_in_the_tails():
    """Central bins against erf written out; tails stay finite and match the asymptotic normal tail."""
    sigma = 0.05
    for x0, mean in [(0.0, 0.01), (0.5 - 1 / 127.5, 0.47), (-1.0, -0.98), (1.0, 1.02)]:
        phi = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))  # noqa: E731
        hi = 1.0 if x0 == 1.0 else phi((x0 + 1 / 255 - mean) / sigma)
        lo = 0.0 if x0 == -1.0 else phi((x0 - 1 / 255 - mean) / sigma)
        got = float(discretized_gaussian_log_likelihood(torch.tensor([x0], dtype=torch.float64), torch.tensor([mean], dtype=torch.float64), sigma**2))
        assert got == pytest.approx(math.log(hi - lo), rel=1e-10)
    # A bin 40 standard deviations above the mean: Phi(-a) - Phi(-b) ~ phi(a) / a for the lower edge a.
    x0, mean, sigma = 1.0 - 2 / 255, -1.0 + 0.0, 0.05
    a = (x0 - 1 / 255 - mean) / sigma
    got = float(discretized_gaussian_log_likelihood(torch.tensor([x0], dtype=torch.float64), torch.tensor([mean], dtype=torch.float64), sigma**2))
    assert math.isfinite(got)
    assert got == pytest.approx(-0.5 * a * a - math.log(a * math.sqrt(2 * math.pi)), rel=1e-3)
    # The same far out in the lower tail.
    got_low = float(discretized_gaussian_log_likelihood(torch.tensor([-x0], dtype=torch.float64), torch.tensor([-mean], dtype=torch.float64), sigma**2))
    assert got_low == pytest.approx(got, rel=1e-12)


# ------------------------------------------------------------------ the total against a brute loop
def brute_bound_bpd(eps_fn, x0, noise, schedule, variance):
    """Eq. 5 pixel by pixel with Python floats, from the equations (eqs. 4, 6-7, 13, 15), not from elbo.py."""
    T = schedule.T
    beta = [float(b) for b in schedule.betas]
    abar = [1.0]
    for t in range(1, T + 1):
        abar.append(abar[-1] * (1 - beta[t]))

    def beta_tilde(t):
        return (1 - abar[t - 1]) / (1 - abar[t]) * beta[t]

    def kl(m1, v1, m2, v2):
        return 0.5 * (math.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)

    def phi(z):
        return 0.5 * math.erfc(-z / math.sqrt(2))

    n, dims = x0.shape[0], x0[0].numel()
    totals = []
    for i in range(n):
        flat0 = x0[i].flatten().tolist()
        nats = sum(kl(math.sqrt(abar[T]) * v, 1 - abar[T], 0.0, 1.0) for v in flat0)  # L_T
        for t in range(1, T + 1):
            x_t = math.sqrt(abar[t]) * x0[i] + math.sqrt(1 - abar[t]) * noise[t - 1, i]
            eps_hat = eps_fn(x_t[None], torch.tensor([t]))[0].flatten().tolist()
            for x0_v, xt_v, e in zip(flat0, x_t.flatten().tolist(), eps_hat):
                x0_hat = (xt_v - math.sqrt(1 - abar[t]) * e) / math.sqrt(abar[t])
                if t == 1:
                    sigma = math.sqrt(beta_tilde(2))
                    hi = 1.0 if x0_v > 0.999 else phi((x0_v + 1 / 255 - x0_hat) / sigma)
                    lo = 0.0 if x0_v < -0.999 else phi((x0_v - 1 / 255 - x0_hat) / sigma)
                    nats -= math.log(hi - lo)
                    continue
                c0 = math.sqrt(abar[t - 1]) * beta[t] / (1 - abar[t])
                ct = math.sqrt(1 - beta[t]) * (1 - abar[t - 1]) / (1 - abar[t])
                var_p = beta[t] if variance == "beta" else beta_tilde(t)
                nats += kl(c0 * x0_v + ct * xt_v, beta_tilde(t), c0 * x0_hat + ct * xt_v, var_p)
        totals.append(nats / (dims * math.log(2)))
    return torch.tensor(totals, dtype=torch.float64)


@pytest.mark.parametrize("variance", VARIANCES)
def test_total_against_a_brute_float64_loop(variance):
    g = torch.Generator().manual_seed(3)
    x0 = grid_images(3, (1, 3, 3), g)
    noise = torch.randn((SMALL.T, *x0.shape), generator=g, dtype=torch.float64)
    got = vlb_terms(wobbly_predictor, x0, SMALL, noise, variance=variance, batch_size=7)
    assert got.prior_bpd.shape == (3,) and got.terms_bpd.shape == (3, SMALL.T) and got.total_bpd.shape == (3,)
    assert torch.allclose(got.total_bpd, got.prior_bpd + got.terms_bpd.sum(1), rtol=1e-12)
    assert torch.allclose(got.total_bpd, brute_bound_bpd(wobbly_predictor, x0, noise, SMALL, variance), rtol=1e-9)
    assert torch.all(got.terms_bpd[:, 1:] >= 0)  # KLs are never negative


# ------------------------------------------------------------------ Gaussian data, exact predictor
@pytest.mark.parametrize("s", [0.3, 1.0])
@pytest.mark.parametrize("variance", VARIANCES)
def test_gaussian_data_with_its_optimal_predictor(s, variance):
    """For x_0 ~ N(0, s^2 I) and eps_hat = E[eps | x_t], the expected L_{t-1} per dimension is
    c_t + coef_x0^2 Var(x_0 | x_t) / (2 sigma_t^2), with Var(x_0 | x_t) = s^2 (1 - abar_t) / v_t and
    coef_x0 = sqrt(abar_{t-1}) beta_t / (1 - abar_t); and E(eps - eps_hat)^2 = Var(eps | x_t) = abar_t s^2 / v_t."""
    sched, g = COSINE, torch.Generator().manual_seed(4)
    n = 4000  # images of 1 x 2 x 2: 16 000 pixels per t
    ts = torch.tensor([2, 5, 50, 300, 700, 990, 1000])
    x0 = s * torch.randn((n, 1, 2, 2), generator=g, dtype=torch.float64)
    oracle = gaussian_oracle(s, sched)
    for t in ts.tolist():
        noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        t_rows = torch.full((n,), t)
        x_t = sched.sqrt_alpha_bars[t] * x0 + sched.sqrt_one_minus_alpha_bars[t] * noise
        eps_hat = oracle(x_t, t_rows)
        per_dim = terms_nats(x0, t_rows, noise, eps_hat, sched, variance) / 4
        ab, ab_prev, b = (float(v) for v in (sched.alpha_bars[t], sched.alpha_bars[t - 1], sched.betas[t]))
        v_t = ab * s * s + 1 - ab
        coef_x0 = math.sqrt(ab_prev) * b / (1 - ab)
        sigma2 = float(model_variances(sched, variance)[t])
        expected = float(variance_kl_per_dim(sched, variance)[t]) + coef_x0**2 * s * s * (1 - ab) / v_t / (2 * sigma2)
        se = float(per_dim.std() / math.sqrt(n))
        assert float(per_dim.mean()) == pytest.approx(expected, abs=5 * se + 1e-12), t
        mse = ((noise - eps_hat) ** 2).mean()
        assert float(mse) == pytest.approx(ab * s * s / v_t, rel=0.05)
    # L_T = KL(N(sqrt(abar_T) x_0, 1 - abar_T) || N(0, 1)): tiny for the cosine schedule's abar_T ~ 2e-9
    prior = prior_nats(x0, sched) / 4
    ab_T = float(sched.alpha_bars[-1])
    expected_prior = 0.5 * (-math.log(1 - ab_T) + (1 - ab_T) + ab_T * s * s - 1)
    assert float(prior.mean()) == pytest.approx(expected_prior, rel=0.05)


# ------------------------------------------------------------------ the stratified estimator
def test_stratified_estimate_is_unbiased_and_its_standard_error_is_right():
    """With noisy terms f(t) + noise the estimates average to the exact sum, and their spread over many
    draws matches the mean reported standard error (within 10 %)."""
    T = 1000
    t_all = torch.arange(T + 1, dtype=torch.float64)
    f = 1.0 / t_all.clamp(min=1) + 1e-4 * t_all  # a curve like the bound's: steep at small t
    exact = float(f[2:].sum()) + 0.5 + 0.1
    estimates, ses = [], []
    g = torch.Generator().manual_seed(5)
    for _ in range(2000):
        plan = stratified_plan(T, 25, 2, generator=g)
        assert plan.timesteps.min() >= 2 and plan.timesteps.max() <= T
        assert int(plan.sizes.sum()) == T - 1
        noisy = f[plan.timesteps] * (1 + 0.2 * torch.randn(len(plan.timesteps), generator=g, dtype=torch.float64))
        est = stratified_total(plan, torch.tensor([0.5]), torch.tensor([0.1]), noisy[None])
        estimates.append(float(est.total[0]))
        ses.append(float(est.standard_error[0]))
    mean, se_of_mean = mean_and_standard_error(estimates)
    assert mean == pytest.approx(exact, abs=5 * se_of_mean)
    spread = float(torch.tensor(estimates).std())
    assert float(torch.tensor(ses).pow(2).mean().sqrt()) == pytest.approx(spread, rel=0.1)
    with pytest.raises(ValueError):
        stratified_plan(T, 25, 1)
    with pytest.raises(ValueError):
        stratified_plan(T, 1, 2)


# ------------------------------------------------------------------ plumbing
def test_batched_predictions_match_one_call_per_t_and_labels_tile():
    """predict_noise batches many t in one call; guided_eps_fn gives each row its image's label."""
    class LabelEcho(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x_t, t, labels):
            return x_t * 0 + (labels.float() + t.float() / 1000).reshape(-1, 1, 1, 1)

    g = torch.Generator().manual_seed(6)
    x0 = grid_images(3, (1, 2, 2), g).float()
    labels = torch.tensor([4, 7, -1])
    ts = torch.tensor([1, 2, 30, 999, 1000])
    noise = torch.randn((len(ts), *x0.shape), generator=g)
    eps_fn = guided_eps_fn(LabelEcho(), labels, 1.0)
    batched = predict_noise(eps_fn, x0, COSINE, noise, ts, batch_size=7)
    for k, t in enumerate(ts.tolist()):
        assert torch.allclose(batched[k, :, 0, 0, 0], labels.float() + t / 1000)


def test_bad_inputs_are_refused():
    x0 = torch.zeros(1, 1, 2, 2)
    noise = torch.zeros(SMALL.T, 1, 1, 2, 2)
    with pytest.raises(ValueError, match="8-bit grid"):
        vlb_terms(wobbly_predictor, x0 + 0.001, SMALL, noise)
    with pytest.raises(ValueError, match="noise must have shape"):
        vlb_terms(wobbly_predictor, x0 - 1, SMALL, noise[:-1])
    assert float(nats_to_bpd(torch.tensor(784 * math.log(2)), 784)) == pytest.approx(1.0)


def test_stratified_bound_agrees_with_the_full_bound():
    """Over the small schedule, the live estimate (7 strata, 4 draws each) lands within a few standard errors of the full sum, for both variances."""
    from diffusion_core.process.bound_estimate import stratified_bound

    g = torch.Generator().manual_seed(7)
    x0 = grid_images(2, (1, 3, 3), g)
    full = {v: vlb_terms(wobbly_predictor, x0, SMALL, torch.randn((SMALL.T, *x0.shape), generator=g,
                                                                 dtype=torch.float64), variance=v) for v in VARIANCES}
    plan = stratified_plan(SMALL.T, 7, 4, generator=g)
    live = stratified_bound(wobbly_predictor, x0, SMALL, plan, generator=g)
    assert live.sampled_bpd["beta"].shape == (2, 28) and live.eps_mse.shape == (2, 28)
    assert torch.allclose(live.prior_bpd, full["beta"].prior_bpd)
    for v in VARIANCES:
        est = live.estimate[v]
        assert torch.all(est.standard_error > 0)
        assert torch.all((est.total - full[v].total_bpd).abs() < 6 * est.standard_error + 0.05 * full[v].total_bpd)
    assert live.estimate["beta"].per_stratum.shape == (2, 7)


def test_decoder_draws_join_the_standard_error():
    """With m draws of L_0 the estimate uses their mean and adds their variance / m."""
    plan = stratified_plan(30, 5, 2, generator=torch.Generator().manual_seed(8))
    terms = torch.ones(1, len(plan.timesteps), dtype=torch.float64)  # no spread within strata
    one = stratified_total(plan, torch.zeros(1), torch.tensor([0.5]), terms)
    two = stratified_total(plan, torch.zeros(1), torch.tensor([[0.4, 0.6]]), terms)
    assert float(one.standard_error) == 0.0 and float(one.total) == pytest.approx(0.5 + 29)
    assert float(two.total) == pytest.approx(float(one.total))
    assert float(two.standard_error) == pytest.approx(math.sqrt(0.02 / 2))
