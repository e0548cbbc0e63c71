"""Oracle tests of the samplers: Gaussian data, whose optimal noise predictor is known in closed form.

For x_0 ~ N(m, s^2 I), x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps is Gaussian with variance
v_t = abar_t s^2 + 1 - abar_t, and the best eps-predictor (the one a perfect network learns) is
    E[eps | x_t] = sqrt(1 - abar_t) (x_t - sqrt(abar_t) m) / v_t.
With it every DDPM or DDIM step is affine in x_t plus independent Gaussian noise, so the law of the
samples is Gaussian and its mean and variance follow exactly from a scalar recursion (``chain_moments``,
written here in float64 from the papers' equations, independently of ``samplers.py``). The tests check:
1. the samples against those exact moments, for every sampler and step count (tolerance: sampling error);
2. the exact moments against the data, N(m, s^2), once the chain is fine (DDPM and DDIM over all T steps).
   With few steps the samplers are biased even with a perfect predictor: for s < 1, DDIM-10 (eta = 0)
   and DDPM-10 with beta~ give too small a variance (by 25-40 % here), DDPM-10 with beta too large; the
   means stay exact. ``test_few_steps_are_biased_in_variance_only`` pins that down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import pytest
import torch
from torch import Tensor, nn

from diffusion_core.process.posterior import q_posterior_mean_variance
from diffusion_core.samplers import ddim_step, ddpm_step, generate, guided_eps, sample, timesteps
from diffusion_core.process.schedules import Schedule, make_schedule
from diffusion_core.models.unet import NULL_LABEL, UNet, UNetConfig

DATA_MEAN, DATA_STD = 0.3, 0.5  # the Gaussian "data set": x_0 ~ N(0.3, 0.5^2) in every pixel
N_IMAGES, SHAPE = 4000, (1, 2, 2)  # 16,000 independent pixels per run
Z = 4.5  # tolerance in standard errors: P(|N(0, 1)| > 4.5) = 7e-6 per comparison
COSINE = make_schedule("cosine", 1000)  # the denoiser's schedule
LINEAR = make_schedule("linear", 1000)


class GaussianOracle(nn.Module):
    """The optimal eps-predictor for x_0 ~ N(m_y, s^2 I), with the network's signature
    ``model(x_t, t, labels) -> eps_hat``. ``class_means[y]`` is m_y for the digits; label -1
    ("no label") uses ``null_mean``. Records the batch size of every call."""

    def __init__(self, schedule: Schedule, std: float = DATA_STD, class_means: list[float] | None = None,
                 null_mean: float = DATA_MEAN):
        super().__init__()
        self.schedule, self.std = schedule, std
        means = class_means if class_means is not None else [DATA_MEAN] * 10
        self.means = torch.tensor([*means, null_mean], dtype=torch.float64)  # index 10 = no label
        self.calls: list[int] = []

    def forward(self, x_t: Tensor, t: Tensor, labels: Tensor) -> Tensor:
        self.calls.append(len(x_t))
        abar = self.schedule.alpha_bars[t].reshape(-1, 1, 1, 1)
        m = self.means[torch.where(labels < 0, 10, labels)].reshape(-1, 1, 1, 1)
        v = abar * self.std**2 + 1 - abar
        return (torch.sqrt(1 - abar) * (x_t.double() - abar.sqrt() * m) / v).float()


@dataclass(frozen=True)
class Moments:
    mean: float
    var: float


def chain_moments(schedule: Schedule, sampler: str, steps: int, *, eta: float = 0.0,
                  variance: str = "beta_tilde", m: float = DATA_MEAN, s: float = DATA_STD) -> Moments:
    """Exact mean and variance of one pixel after the reverse chain from x_T ~ N(0, 1) with the
    oracle, in float64. Each step is x_prev = A x_t + B + sigma z (Ho et al. 2020, eq. 11;
    Song et al. 2021, eqs. 12 and 16), so mean <- A mean + B, var <- A^2 var + sigma^2."""
    abar = schedule.alpha_bars.tolist()
    seq = [schedule.T * i // steps for i in range(steps, 0, -1)] + [0]  # Song et al. 2021, app. D.2
    mean, var = 0.0, 1.0
    for t, t_prev in zip(seq[:-1], seq[1:]):
        a_t, a_p = abar[t], abar[t_prev]
        k = math.sqrt(1 - a_t) / (a_t * s * s + 1 - a_t)  # eps_hat = k x_t - k sqrt(a_t) m
        e1, e0 = k, -k * math.sqrt(a_t) * m
        x1, x0 = (1 - math.sqrt(1 - a_t) * e1) / math.sqrt(a_t), -math.sqrt(1 - a_t) * e0 / math.sqrt(a_t)
        alpha = a_t / a_p
        if sampler == "ddpm":  # mean = (x_t - (1 - alpha) / sqrt(1 - a_t) eps) / sqrt(alpha)
            c = (1 - alpha) / math.sqrt(1 - a_t)
            A, B = (1 - c * e1) / math.sqrt(alpha), -c * e0 / math.sqrt(alpha)
            beta_tilde = (1 - a_p) / (1 - a_t) * (1 - alpha)
            sigma2 = 0.0 if t_prev == 0 else (1 - alpha if variance == "beta" else beta_tilde)
        else:  # sqrt(a_p) x0_hat + sqrt(1 - a_p - sigma^2) eps_hat + sigma z
            sigma2 = eta**2 * (1 - a_p) / (1 - a_t) * (1 - alpha)
            r = math.sqrt(max(1 - a_p - sigma2, 0.0))
            A, B = math.sqrt(a_p) * x1 + r * e1, math.sqrt(a_p) * x0 + r * e0
        mean, var = A * mean + B, A * A * var + sigma2
    return Moments(mean, var)


def run_oracle(sampler: str, steps: int, *, schedule: Schedule = COSINE, seed: int = 0, **kwargs) -> Tensor:
    oracle = GaussianOracle(schedule)
    g = torch.Generator().manual_seed(seed)
    return generate(oracle, [0] * N_IMAGES, sampler=sampler, steps=steps, generator=g, clip=False,
                    guidance=1.0, image_shape=SHAPE, **kwargs)


def assert_moments(x: Tensor, expected: Moments, extra: float = 0.0) -> None:
    """Sample mean and variance of x's pixels equal ``expected`` within Z standard errors
    (SE of the mean sqrt(var / n); of a Gaussian sample variance var sqrt(2 / (n - 1))),
    plus ``extra`` (relative, for the variance; times the std, for the mean)."""
    x = x.double().flatten()
    n, sd = len(x), math.sqrt(expected.var)
    assert abs(float(x.mean()) - expected.mean) <= Z * sd / math.sqrt(n) + extra * sd, (float(x.mean()), expected)
    rel = float(x.var()) / expected.var - 1
    assert abs(rel) <= Z * math.sqrt(2 / (n - 1)) + extra, (float(x.var()), expected)


# ---------------------------------------------------------------- 1. samples = exact law of the chain
CONFIGS = [  # (sampler, steps, options, schedule)
    ("ddpm", 10, {"variance": "beta"}, COSINE),
    ("ddpm", 10, {"variance": "beta_tilde"}, COSINE),
    ("ddpm", 50, {"variance": "beta_tilde"}, LINEAR),
    ("ddpm", 1000, {"variance": "beta"}, COSINE),
    ("ddpm", 1000, {"variance": "beta_tilde"}, COSINE),
    ("ddim", 10, {"eta": 0.0}, COSINE),
    ("ddim", 50, {"eta": 0.0}, COSINE),
    ("ddim", 10, {"eta": 0.5}, LINEAR),
    ("ddim", 50, {"eta": 0.5}, COSINE),
    ("ddim", 10, {"eta": 1.0}, COSINE),
    ("ddim", 50, {"eta": 1.0}, COSINE),
]


@pytest.mark.parametrize("sampler,steps,options,schedule", CONFIGS,
                         ids=[f"{c[0]}-{c[1]}-{list(c[2].values())[0]}-{c[3].kind}" for c in CONFIGS])
def test_samples_follow_the_exact_law_of_the_chain(sampler, steps, options, schedule):
    x = run_oracle(sampler, steps, schedule=schedule, **options)
    assert x.shape == (N_IMAGES, *SHAPE) and x.dtype == torch.float32
    assert_moments(x, chain_moments(schedule, sampler, steps, **options))


# ---------------------------------------------------------------- 2. the chain reaches the data
@pytest.mark.parametrize("sampler,options", [
    ("ddpm", {"variance": "beta"}), ("ddpm", {"variance": "beta_tilde"}),
    ("ddim", {"eta": 0.0}), ("ddim", {"eta": 1.0})])
@pytest.mark.parametrize("schedule", [COSINE, LINEAR], ids=["cosine", "linear"])
def test_full_chain_reproduces_the_data(sampler, options, schedule):
    # Over all T = 1000 steps the discretisation error is O(1/T): within 2 % in variance, and the
    # mean is off only by the prior mismatch x_T ~ N(0, 1) instead of N(sqrt(abar_T) m, ...),
    # sqrt(abar_T) m < 0.01 s for the linear schedule (abar_T = 4e-5), 0 for the cosine one.
    exact = chain_moments(schedule, sampler, 1000, **options)
    assert abs(exact.mean - DATA_MEAN) < 0.01 * DATA_STD
    assert abs(exact.var / DATA_STD**2 - 1) < 0.02


@pytest.mark.parametrize("sampler,options", [("ddpm", {"variance": "beta"}), ("ddim", {"eta": 0.0})],
                         ids=["ddpm-beta", "ddim-eta0"])
def test_full_chain_samples_reproduce_the_data(sampler, options):
    # The Monte Carlo version of the test above: samples of DDPM and DDIM over all T steps have the data's
    # mean m and variance s^2, within sampling error plus the 2 % discretisation allowance.
    assert_moments(run_oracle(sampler, 1000, **options), Moments(DATA_MEAN, DATA_STD**2), extra=0.02)


def test_few_steps_are_biased_in_variance_only():
    # A perfect predictor does not make a short chain exact: x0_hat = E[x_0 | x_t] is a shrunk guess,
    # so deterministic DDIM steps lose variance (for s < 1); the mean is still exact.
    for sampler, options in [("ddim", {"eta": 0.0}), ("ddpm", {"variance": "beta_tilde"})]:
        few, many = chain_moments(COSINE, sampler, 10, **options), chain_moments(COSINE, sampler, 1000, **options)
        assert abs(few.mean - DATA_MEAN) < 1e-3 and abs(many.mean - DATA_MEAN) < 1e-3
        assert few.var < 0.8 * DATA_STD**2 < many.var
    assert chain_moments(COSINE, "ddim", 50).var == pytest.approx(DATA_STD**2, rel=0.08)


def test_ddim_eta_one_is_ddpm_beta_tilde():
    # Song et al. (2021), eq. 16: eta = 1 gives sigma^2 = beta~ and the same mean as Ho et al.'s eq. 11,
    # on every sub-sequence; with the same generator the two samplers give the same images.
    for steps in (1000, 20):
        a = run_oracle("ddpm", steps, variance="beta_tilde")
        b = run_oracle("ddim", steps, eta=1.0)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- single steps against the posterior
def test_ddpm_step_mean_is_the_posterior_mean_at_x0_hat():
    # Ho et al. (2020), eqs. 7 and 11: with x0_hat from eq. 15, the eps-form mean is mu~_t(x_t, x0_hat).
    g = torch.Generator().manual_seed(1)
    x_t, eps = torch.randn((3, 1, 4, 4), generator=g), torch.randn((3, 1, 4, 4), generator=g)
    for t in (1, 2, 500, 1000):
        out = ddpm_step(x_t, eps, t, t - 1, COSINE, variance="beta_tilde", noise=torch.zeros_like(x_t))
        mean, variance = q_posterior_mean_variance(out.x0_hat.double(), x_t.double(), t, COSINE)
        torch.testing.assert_close(out.mean.double(), mean, rtol=1e-4, atol=1e-4)
        assert out.sigma**2 == pytest.approx(float(variance.flatten()[0]), rel=1e-9, abs=1e-15)


def test_last_step_lands_on_x0_hat():
    g = torch.Generator().manual_seed(2)
    x_t, eps = torch.randn((2, 1, 3, 3), generator=g), torch.randn((2, 1, 3, 3), generator=g)
    for out in (ddpm_step(x_t, eps, 7, 0, COSINE, variance="beta", noise=torch.randn_like(x_t)),
                ddim_step(x_t, eps, 7, 0, COSINE, eta=1.0, noise=torch.randn_like(x_t))):
        assert out.sigma == 0.0 and torch.count_nonzero(out.noise) == 0
        torch.testing.assert_close(out.x_prev, out.x0_hat)
    steps = list(sample(GaussianOracle(COSINE), [0, 1], steps=5, generator=g, clip=False, image_shape=SHAPE))
    assert steps[-1].t_prev == 0 and steps[-1].sigma == 0.0
    torch.testing.assert_close(steps[-1].x_prev, steps[-1].x0_hat)


def test_step_records_chain_together():
    g = torch.Generator().manual_seed(3)
    steps = list(sample(GaussianOracle(COSINE), [0, 1, 2], sampler="ddpm", steps=7, generator=g, image_shape=SHAPE))
    assert [s.t for s in steps] == timesteps(1000, 7) and [s.index for s in steps] == list(range(7))
    assert [s.t_prev for s in steps] == timesteps(1000, 7)[1:] + [0]
    for a, b in zip(steps, steps[1:]):
        assert torch.equal(a.x_prev, b.x_t)
    for s in steps:
        assert s.x_t.shape == s.eps_hat.shape == s.x0_hat.shape == s.x_prev.shape == (3, *SHAPE)
        torch.testing.assert_close(s.x_prev, s.mean + s.noise)


# ---------------------------------------------------------------- timesteps
@pytest.mark.parametrize("steps", [1, 2, 10, 50, 333, 999, 1000])
def test_timesteps_strictly_decrease_from_T(steps):
    seq = timesteps(1000, steps)
    assert len(seq) == steps and seq[0] == 1000 and seq[-1] >= 1
    assert all(a > b for a, b in zip(seq, seq[1:]))
    c = Fraction(1000, steps)  # Song et al. (2021), appendix D.2: linear tau_i = floor(c i), i = 1..S
    assert seq == [math.floor(c * i) for i in range(steps, 0, -1)]


def test_timesteps_full_and_errors():
    assert timesteps(1000, 1000) == list(range(1000, 0, -1))
    assert timesteps(1000, 10, t_start=300)[0] == 300
    for bad in (0, 1001):
        with pytest.raises(ValueError):
            timesteps(1000, bad)


# ---------------------------------------------------------------- guidance
def class_oracle() -> GaussianOracle:
    # Digit y has mean 0.1 y; "no label" has mean -0.2: different enough to tell runs apart.
    return GaussianOracle(COSINE, class_means=[0.1 * y for y in range(10)], null_mean=-0.2)


def run_guided(model: nn.Module, labels: list[int], guidance: float, seed: int = 4) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return generate(model, labels, steps=20, eta=0.5, guidance=guidance, generator=g, clip=False, image_shape=SHAPE)


def test_guidance_zero_is_unconditional_and_one_is_conditional():
    labels = [3, 7, 0, 9]
    oracle = class_oracle()
    unconditional = run_guided(oracle, [NULL_LABEL] * 4, 1.0)
    torch.testing.assert_close(run_guided(oracle, labels, 0.0), unconditional, rtol=0, atol=0)
    conditional_only = GaussianOracle(COSINE, class_means=[0.1 * y for y in range(10)], null_mean=float("nan"))
    torch.testing.assert_close(run_guided(oracle, labels, 1.0), run_guided(conditional_only, labels, 1.0),
                               rtol=0, atol=0)


def test_guidance_extrapolates_the_mean():
    # The oracle's eps is affine in m, so guidance s with equal variances samples N(m_u + s (m_y - m_u), .):
    # Ho & Salimans (2022), eq. 6, for Gaussians. One batched network pass per step for 0 < s != 1.
    oracle, s, y = class_oracle(), 3.0, 4
    g = torch.Generator().manual_seed(5)
    x = generate(oracle, [y] * N_IMAGES, steps=50, guidance=s, generator=g, clip=False, image_shape=SHAPE)
    target = -0.2 + s * (0.1 * y + 0.2)
    assert_moments(x, chain_moments(COSINE, "ddim", 50, m=target))
    assert set(oracle.calls) == {2 * N_IMAGES} and len(oracle.calls) == 50


def test_guided_eps_combines_the_two_predictions():
    oracle = class_oracle()
    g = torch.Generator().manual_seed(6)
    x = torch.randn((4, *SHAPE), generator=g)
    labels = torch.tensor([1, 5, NULL_LABEL, 8])
    t_batch = torch.full((4,), 400)
    cond, uncond = oracle(x, t_batch, labels), oracle(x, t_batch, torch.full_like(labels, NULL_LABEL))
    torch.testing.assert_close(guided_eps(oracle, x, 400, labels, 2.5), uncond + 2.5 * (cond - uncond))
    # a row without a label stays unconditional whatever s is
    torch.testing.assert_close(guided_eps(oracle, x, 400, labels, 2.5)[2], uncond[2])


# ---------------------------------------------------------------- one shared test over every sampler
TINY_UNET = UNetConfig(channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16, attention=False)


@pytest.mark.parametrize("sampler,options", [("ddpm", {"variance": "beta"}), ("ddpm", {"variance": "beta_tilde"}),
                                             ("ddim", {"eta": 0.0}), ("ddim", {"eta": 1.0})])
def test_every_sampler_shape_dtype_determinism_and_clipping(sampler, options):
    torch.manual_seed(0)
    net = UNet(TINY_UNET).eval()
    for p in net.parameters():  # the UNet starts with a zero output layer; make it predict something
        nn.init.normal_(p, std=0.3)
    net.schedule = make_schedule("cosine", 100)

    def run(seed: int) -> Tensor:
        return generate(net, [0, 5, NULL_LABEL], sampler=sampler, steps=8, guidance=2.0,
                        generator=torch.Generator().manual_seed(seed), **options)

    a, b, c = run(0), run(0), run(1)
    assert a.shape == (3, 1, 28, 28) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() <= 1 + 1e-5  # clip (the default) keeps x0_hat, the last x, in [-1, 1] (to rounding)


def test_bad_arguments_are_refused():
    oracle = GaussianOracle(COSINE)
    with pytest.raises(ValueError):
        generate(oracle, [10], image_shape=SHAPE)
    with pytest.raises(ValueError):
        generate(oracle, [0], sampler="euler", image_shape=SHAPE)
    x = torch.zeros((1, *SHAPE))
    with pytest.raises(ValueError):
        ddpm_step(x, x, 5, 5, COSINE, noise=x)
    with pytest.raises(ValueError):
        ddim_step(x, x, 5, 4, COSINE, eta=0.5)  # eta > 0 needs noise
