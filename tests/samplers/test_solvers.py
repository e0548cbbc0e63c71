"""DPM-Solver++(2M) and the timestep spacings, against the exact probability-flow ODE of Gaussian data.

For x_0 ~ N(m, s^2 I), x_t = alpha_t x_0 + sigma_t eps (alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t))
is N(alpha_t m, v_t I) with v_t = abar_t s^2 + 1 - abar_t, and the optimal noise predictor is
E[eps | x_t] = sigma_t (x_t - alpha_t m) / v_t. The probability-flow ODE (Song et al. 2021, SDE paper,
eq. 13) then moves every point along u = (x_t - alpha_t m) / sqrt(v_t) = const, so the exact solution
from x_T is x_0 = m + s (x_T - alpha_T m) / sqrt(v_T): written here from that closed form, independently
of the samplers. The tests check:
1. the orders of convergence: doubling the steps divides the error by about 2 for DDIM (eta = 0, the first-order
   exponential integrator in lambda) and about 4 for DPM-Solver++(2M) (Lu et al. 2022, algorithm 2);
2. DPM-Solver++ of order 1 is DDIM with eta = 0 (Lu et al. 2022, DPM-Solver++, sec. 3) to float precision;
3. the coefficients rebuild each step, the step to x_0 is first order, and the stepper's per-step
   fields (order, D, h, r) are the ones of the algorithm;
4. guidance, determinism and pausing, and the properties of the "logsnr" spacing.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from diffusion_core.samplers import (EpsReverseProcess, ReverseProcess, ddim_step, dpm_solver_coefficients,
                                     dpm_solver_order, dpm_solver_step, generate, half_log_snr, sample, sample_eps,
                                     timesteps)
from diffusion_core.process.schedules import make_schedule
from diffusion_core.models.unet import NULL_LABEL, UNet, UNetConfig

COSINE = make_schedule("cosine", 1000)  # the denoiser's schedule
LINEAR = make_schedule("linear", 1000)
S = 0.5  # data std


def gaussian_eps_fn(schedule, m: float = 0.0, s: float = S):
    """eps_fn(x_t, t) of the optimal predictor for x_0 ~ N(m, s^2 I), computed in float64."""
    abar = schedule.alpha_bars

    def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
        a = abar[t].reshape(-1, *[1] * (x_t.dim() - 1))
        return (torch.sqrt(1 - a) * (x_t.double() - a.sqrt() * m) / (a * s * s + 1 - a)).float()

    return eps_fn


def exact_x0(x_T: Tensor, schedule, m: float = 0.0, s: float = S) -> Tensor:
    """The probability-flow ODE's x_0 from x_T for N(m, s^2) data (module docstring)."""
    a = float(schedule.alpha_bars[schedule.T])
    return m + s * (x_T.double() - math.sqrt(a) * m) / math.sqrt(a * s * s + 1 - a)


def x_T(n: int = 2000, seed: int = 0) -> Tensor:
    return torch.randn((n, 4), generator=torch.Generator().manual_seed(seed))


def ode_error(sampler: str, steps: int, schedule, spacing: str) -> float:
    x = x_T()
    run = list(sample_eps(gaussian_eps_fn(schedule), x, schedule, sampler=sampler, steps=steps, clip=False,
                          spacing=spacing))
    return float((run[-1].x_prev.double() - exact_x0(x, schedule)).pow(2).mean().sqrt())


@pytest.mark.parametrize("schedule,counts", [(COSINE, (40, 80, 160)), (LINEAR, (20, 40, 80))], ids=["cosine", "linear"])
def test_orders_of_convergence(schedule, counts):
    # Even in lambda the steps halve when their number doubles: DDIM's first-order error halves (measured 1.9-2.0),
    # the 2M error falls about fourfold (measured 3.9 and 4.4 on the cosine schedule, 3.8 and 4.7 on the
    # linear one). Beyond these counts the integer timesteps near t = 1 crowd (lambda_1 - lambda_2 = 0.5
    # on the linear schedule) and the grid stops being even in lambda, so the ratios mean less.
    ddim = [ode_error("ddim", n, schedule, "logsnr") for n in counts]
    dpm = [ode_error("dpm_solver++", n, schedule, "logsnr") for n in counts]
    for e in (ddim, dpm):
        assert e[0] > e[1] > e[2] > 0
    ddim_ratios, dpm_ratios = [ddim[i] / ddim[i + 1] for i in (0, 1)], [dpm[i] / dpm[i + 1] for i in (0, 1)]
    assert all(1.7 < r < 2.3 for r in ddim_ratios), ddim_ratios
    assert all(3.3 < r < 5.0 for r in dpm_ratios), dpm_ratios
    assert dpm[0] < ddim[0] / 5  # and far more accurate at the same number of network evaluations


@pytest.mark.parametrize("spacing", ["linear", "logsnr"])
@pytest.mark.parametrize("clip", [True, False])
def test_first_order_dpm_solver_is_ddim(spacing, clip):
    eps_fn = gaussian_eps_fn(COSINE, m=0.3)
    x = 1.5 * x_T(200, seed=1)
    # start at t = 900: from t = T, x0_hat = (x_T - sigma eps) / alpha_T with alpha_T = 5e-5 magnifies the
    # float32 rounding of both computations ten thousandfold
    ddim = list(sample_eps(eps_fn, x, COSINE, sampler="ddim", steps=10, t_start=900, spacing=spacing, clip=clip))
    dpm = list(sample_eps(eps_fn, x, COSINE, sampler="dpm_solver++", steps=10, t_start=900, spacing=spacing,
                          clip=clip, order=1))
    assert [s.t for s in dpm] == [s.t for s in ddim]
    for a, b in zip(ddim, dpm):
        assert b.order == 1 and b.r is None
        torch.testing.assert_close(b.x_prev, a.x_prev, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(b.x0_hat, a.x0_hat, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dpm[-1].x_prev, dpm[-1].x0_hat, rtol=0, atol=0)  # the step to x_0 lands on x0_hat


@pytest.mark.parametrize("t,t_prev,t_last", [(500, 400, 600), (30, 12, 74), (999, 987, 1000), (5, 3, 200)])
def test_coefficients_rebuild_the_second_order_step(t, t_prev, t_last):
    lam = half_log_snr(COSINE).tolist()
    c = dpm_solver_coefficients(COSINE, t, t_prev, t_last)
    h, h_last = lam[t_prev] - lam[t], lam[t] - lam[t_last]
    assert c.order == 2 and c.h == pytest.approx(h) and c.h_last == pytest.approx(h_last)
    assert c.r == pytest.approx(h_last / h)
    assert c.d_coef_x0 == pytest.approx(1 + h / (2 * h_last)) and c.d_coef_x0_last == pytest.approx(-h / (2 * h_last))
    ab = COSINE.alpha_bars.tolist()
    assert c.coef_xt == pytest.approx(math.sqrt((1 - ab[t_prev]) / (1 - ab[t])))
    assert c.coef_d == pytest.approx(math.sqrt(ab[t_prev]) * -math.expm1(-h))  # algorithm 2: -alpha (e^{-h} - 1)
    g = torch.Generator().manual_seed(2)
    x, eps, x0_last = (torch.randn(3, 4, generator=g) for _ in range(3))
    out = dpm_solver_step(x, eps, t, t_prev, COSINE, x0_last=x0_last, t_last=t_last)
    x0 = (x - math.sqrt(1 - ab[t]) * eps) / math.sqrt(ab[t])  # Ho et al. 2020, eq. 15
    d = c.d_coef_x0 * x0 + c.d_coef_x0_last * x0_last
    torch.testing.assert_close(out.d, d)
    torch.testing.assert_close(out.x_prev, c.coef_xt * x + c.coef_d * d)
    assert out.sigma == 0 and torch.equal(out.noise, torch.zeros_like(x)) and torch.equal(out.mean, out.x_prev)
    assert out.alpha == pytest.approx(ab[t] / ab[t_prev]) and out.beta == pytest.approx(1 - out.alpha)


def test_step_to_x0_is_first_order_and_lands_on_x0_hat():
    c = dpm_solver_coefficients(COSINE, 12, 0)
    assert c.order == 1 and c.h == math.inf and c.lambda_prev == math.inf and (c.coef_xt, c.coef_d) == (0.0, 1.0)
    with pytest.raises(ValueError, match="first order"):
        dpm_solver_coefficients(COSINE, 12, 0, 74)
    with pytest.raises(ValueError):
        dpm_solver_coefficients(COSINE, 12, 5, 12)  # the previous prediction must come from later in time
    with pytest.raises(ValueError):
        dpm_solver_step(torch.zeros(1), torch.zeros(1), 12, 5, COSINE, t_last=74)  # t_last without x0_last
    orders = [dpm_solver_order(i, 10, t) for i, t in enumerate([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])]
    assert orders == [1] + [2] * 8 + [1]  # the default: first order only where it must be
    assert dpm_solver_order(8, 10, 1, lower_order_final=True) == 1
    assert dpm_solver_order(18, 20, 1, lower_order_final=True) == 2  # only below 15 steps
    assert [dpm_solver_order(i, 3, t, order=1) for i, t in enumerate([2, 1, 0])] == [1, 1, 1]
    with pytest.raises(ValueError):
        dpm_solver_order(1, 3, 1, order=3)


def test_stepper_reports_the_correction():
    eps_fn = gaussian_eps_fn(COSINE, m=0.2)
    run = list(sample_eps(eps_fn, x_T(50), COSINE, sampler="dpm_solver++", steps=10, spacing="logsnr", clip=False))
    assert [s.order for s in run] == [1] + [2] * 8 + [1]
    lof = list(sample_eps(eps_fn, x_T(50), COSINE, sampler="dpm_solver++", steps=10, spacing="logsnr", clip=False,
                          lower_order_final=True))
    assert [s.order for s in lof] == [1] + [2] * 7 + [1, 1]
    torch.testing.assert_close(lof[7].x_prev, run[7].x_prev, rtol=0, atol=0)  # the same until the step into t_1
    for prev, s in zip(run, run[1:]):
        assert prev.x_prev is s.x_t or torch.equal(prev.x_prev, s.x_t)
        assert s.solver is not None and s.solver.t == s.t and s.h == s.solver.h
        if s.order == 2:
            assert s.solver.t_last == prev.t and s.r == pytest.approx(s.solver.h_last / s.h)
            torch.testing.assert_close(s.d, (1 + 1 / (2 * s.r)) * s.x0_hat - 1 / (2 * s.r) * prev.x0_hat)
        else:
            assert s.r is None and torch.equal(s.d, s.x0_hat)
        assert s.sigma == 0 and not s.noise.any()
    assert run[-1].t_prev == 0 and run[-1].h == math.inf and torch.equal(run[-1].x_prev, run[-1].x0_hat)
    for sampler in ("ddpm", "ddim"):  # the solver fields stay empty for the other samplers
        s = next(sample_eps(eps_fn, x_T(5), COSINE, sampler=sampler, steps=10, generator=torch.Generator()))
        assert (s.order, s.d, s.h, s.r, s.solver) == (None, None, None, None, None)


def guided_oracle(m_cond: list[float], m_null: float):
    class Oracle(nn.Module):
        """model(x_t, t, labels): the optimal predictor for N(m_y, S^2), label -1 -> m_null."""

        def __init__(self):
            super().__init__()
            self.schedule, self.calls = COSINE, 0

        def forward(self, x, t, labels):
            self.calls += 1
            m = torch.tensor([*m_cond, m_null], dtype=torch.float64)[torch.where(labels < 0, 10, labels)]
            a = COSINE.alpha_bars[t].reshape(-1, 1, 1, 1)
            return (torch.sqrt(1 - a) * (x.double() - a.sqrt() * m.reshape(-1, 1, 1, 1)) / (a * S * S + 1 - a)).float()

    return Oracle()


def test_guided_dpm_solver_follows_the_flow_of_the_extrapolated_mean():
    # eps is affine in m, so guidance s is the oracle of N(m_u + s (m_y - m_u), S^2) (Ho & Salimans 2022,
    # eq. 6, for Gaussians): guided DPM-Solver++ must be the run of that oracle, close to its exact flow,
    # with one batched network call per step.
    oracle, s, y = guided_oracle([0.1 * d for d in range(10)], -0.2), 3.0, 4
    target = -0.2 + s * (0.1 * y + 0.2)
    run = list(sample(oracle, [y] * 500, sampler="dpm_solver++", steps=20, spacing="logsnr", guidance=s,
                      clip=False, image_shape=(1, 2, 2), generator=torch.Generator().manual_seed(3)))
    plain = list(sample_eps(gaussian_eps_fn(COSINE, m=target), run[0].x_t, COSINE, sampler="dpm_solver++",
                            steps=20, spacing="logsnr", clip=False))
    torch.testing.assert_close(run[-1].x_prev, plain[-1].x_prev, rtol=1e-4, atol=1e-4)
    exact = exact_x0(run[0].x_t, COSINE, m=target)
    assert float((run[-1].x_prev - exact).pow(2).mean().sqrt()) < 0.02  # 0.013 measured; DDIM-20: 0.087
    assert oracle.calls == 20
    clipped = generate(oracle, [y] * 50, sampler="dpm_solver++", steps=8, guidance=s, image_shape=(1, 2, 2),
                       generator=torch.Generator().manual_seed(3))
    assert clipped.abs().max() <= 1 + 1e-6 and clipped.max() == 1  # x0_hat is clipped, the last x is x0_hat


TINY_UNET = UNetConfig(channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16, attention=False)


def tiny_net() -> UNet:
    torch.manual_seed(0)
    net = UNet(TINY_UNET).eval()
    for p in net.parameters():  # the UNet starts with a zero output layer; make it predict something
        nn.init.normal_(p, std=0.3)
    net.schedule = make_schedule("cosine", 100)
    return net


@pytest.mark.parametrize("spacing", ["linear", "logsnr"])
def test_dpm_solver_on_the_network_shape_determinism_pause_and_final_step(spacing):
    net = tiny_net()

    def run(seed: int) -> Tensor:
        return generate(net, [0, 5, NULL_LABEL], sampler="dpm_solver++", steps=8, guidance=2.0, spacing=spacing,
                        generator=torch.Generator().manual_seed(seed))

    a, b, c = run(0), run(0), run(1)
    assert a.shape == (3, 1, 28, 28) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() <= 1 + 1e-5
    process = ReverseProcess(net, [0, 5, NULL_LABEL], sampler="dpm_solver++", steps=8, guidance=2.0, spacing=spacing,
                             generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        process.step()
    resumed = ReverseProcess(net, [0, 5, NULL_LABEL], sampler="dpm_solver++", steps=8, guidance=2.0,
                             spacing=spacing, generator=torch.Generator().manual_seed(0))
    steps = [resumed.step() for _ in range(8)]
    rest = [process.step() for _ in range(5)]
    assert process.done and torch.equal(rest[-1].x_prev, a) and torch.equal(steps[-1].x_prev, a)
    assert steps[-1].t_prev == 0 and torch.equal(steps[-1].x_prev, steps[-1].x0_hat)


@pytest.mark.parametrize("schedule", [COSINE, LINEAR], ids=["cosine", "linear"])
@pytest.mark.parametrize("t_start", [None, 600, 37, 1])
@pytest.mark.parametrize("steps", [1, 2, 5, 6, 8, 10, 20, 50, 100, 500])
def test_logsnr_spacing_properties(schedule, t_start, steps):
    start = t_start or schedule.T
    if steps > start:
        with pytest.raises(ValueError):
            timesteps(schedule, steps, t_start, spacing="logsnr")
        return
    seq = timesteps(schedule, steps, t_start, spacing="logsnr")
    assert len(seq) == steps and seq[0] == start and seq[-1] >= 1
    assert all(a > b for a, b in zip(seq, seq[1:]))  # strictly decreasing: no duplicates
    assert timesteps(schedule.T, steps, t_start, spacing="logsnr", schedule=schedule) == seq


def test_logsnr_spacing_is_even_in_lambda():
    # On the linear schedule lambda changes slowly enough near T for no collision at 10 steps: every
    # point is the t nearest to lambda(t_start) + i (lambda(1) - lambda(t_start)) / steps.
    lam = half_log_snr(LINEAR)
    seq = timesteps(LINEAR, 10, spacing="logsnr")
    grid = [float(lam[1000]) + (float(lam[1]) - float(lam[1000])) * i / 10 for i in range(10)]
    for t, target in zip(seq, grid):
        assert abs(float(lam[t]) - target) <= min(abs(float(lam[u]) - target) for u in range(1, 1001)) + 1e-12
    gaps = [float(lam[b] - lam[a]) for a, b in zip(seq, seq[1:])]
    assert max(gaps) / min(gaps) < 1.1
    assert timesteps(LINEAR, 1000, spacing="logsnr") == list(range(1000, 0, -1))  # every t
    # the cosine schedule's lambda falls steeply near T (-9.9 at T, -6.5 at T - 1): the top points collide
    # and move down to the next free t
    assert timesteps(COSINE, 10, spacing="logsnr")[:4] == [1000, 999, 998, 997]


def test_spacing_arguments_are_checked():
    with pytest.raises(ValueError, match="spacing"):
        timesteps(COSINE, 10, spacing="quadratic")
    with pytest.raises(ValueError, match="schedule"):
        timesteps(1000, 10, spacing="logsnr")
    with pytest.raises(ValueError):
        timesteps(500, 10, spacing="logsnr", schedule=COSINE)  # T does not match
    eps_fn = gaussian_eps_fn(COSINE)
    with pytest.raises(ValueError, match="dpm_solver"):
        EpsReverseProcess(eps_fn, x_T(2), COSINE, sampler="dpm_solver")
    with pytest.raises(ValueError, match="order"):
        EpsReverseProcess(eps_fn, x_T(2), COSINE, sampler="dpm_solver++", order=3)
    x = torch.zeros(1, 4)
    assert torch.equal(ddim_step(x, x, 5, 0, COSINE).x_prev, dpm_solver_step(x, x, 5, 0, COSINE).x_prev)


@pytest.mark.parametrize("schedule", [COSINE, LINEAR], ids=["cosine", "linear"])
@pytest.mark.parametrize("steps,spacing", [(10, "logsnr"), (6, "logsnr"), (8, "linear")])
@pytest.mark.parametrize("order", [1, 2])
def test_agrees_with_diffusers(schedule, steps, spacing, order):
    """diffusers' DPMSolverMultistepScheduler (a test-only dependency, in requirements-dev.txt; skipped without it), given our betas
    and timesteps (its index is our t - 1) and a zero final sigma, takes the same steps: second order
    everywhere but the first step and the step to x_0, as ours by default (lower_order_final=False).
    Measured: 1e-6 (float32 rounding) except from t = T on the cosine schedule (4e-4, alpha_T = 5e-5)."""
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.DPMSolverMultistepScheduler(
        trained_betas=schedule.betas[1:].numpy(), algorithm_type="dpmsolver++", solver_order=order,
        solver_type="midpoint", final_sigmas_type="zero", thresholding=False, prediction_type="epsilon")
    seq = timesteps(schedule, steps, spacing=spacing)
    scheduler.set_timesteps(timesteps=[t - 1 for t in seq])
    eps_fn, x = gaussian_eps_fn(schedule, m=0.3), x_T(500)
    theirs = x.double()
    for index in scheduler.timesteps:
        eps = eps_fn(theirs.float(), torch.full((len(x),), int(index) + 1)).double()
        theirs = scheduler.step(eps, index, theirs).prev_sample
    ours = list(sample_eps(eps_fn, x, schedule, sampler="dpm_solver++", steps=steps, spacing=spacing, clip=False,
                           order=order))[-1].x_prev
    torch.testing.assert_close(ours.double(), theirs, rtol=0, atol=1e-3 if schedule is COSINE else 1e-5)
