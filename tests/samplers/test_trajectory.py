"""The resumable stepper (samplers.ReverseProcess) and what the reverse page reads off a run
(diffusion_core.samplers.trajectory). No trained weights needed: a small stand-in network."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from diffusion_core.process.forward import q_sample
from diffusion_core.samplers import ReverseProcess, ddim_step, ddpm_step, generate, sample, step_coefficients
from diffusion_core.process.schedules import make_schedule
from diffusion_core.samplers.trajectory import noise_level, rms_distance, sdedit_start

COSINE = make_schedule("cosine", 1000)


class LinearEps(nn.Module):
    """eps_hat = a x_t + b label: cheap, depends on x_t and on the label, so a wrong trajectory shows."""

    def __init__(self, schedule=COSINE):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.6))
        self.schedule = schedule

    def forward(self, x, t, labels):
        return self.a * x + 0.01 * labels.clamp(min=0).float().view(-1, 1, 1, 1)


@pytest.mark.parametrize("kwargs", [dict(sampler="ddpm", steps=7, variance="beta"), dict(sampler="ddim", steps=6, eta=0.5),
                                    dict(sampler="ddim", steps=5, guidance=3.0)])
def test_stepper_paused_and_resumed_gives_the_uninterrupted_run(kwargs):
    """Two runs stepped in turn (two students sharing the server, each pausing) each equal their own generate()."""
    model = LinearEps()
    a = ReverseProcess(model, [1, 2, -1], generator=torch.Generator().manual_seed(1), **kwargs)
    b = ReverseProcess(model, [4, 5, 6], generator=torch.Generator().manual_seed(2), **kwargs)
    while not (a.done and b.done):
        for r in (a, b):
            if not r.done:
                r.step()
    assert torch.equal(a.x, generate(model, [1, 2, -1], generator=torch.Generator().manual_seed(1), **kwargs))
    assert torch.equal(b.x, generate(model, [4, 5, 6], generator=torch.Generator().manual_seed(2), **kwargs))
    assert a.t == 0 and a.position == len(a.timesteps)
    with pytest.raises(RuntimeError):
        a.step()


@pytest.mark.parametrize("kwargs", [dict(sampler="ddpm", steps=7, variance="beta"), dict(sampler="ddim", steps=6, eta=0.5),
                                    dict(sampler="dpm_solver++", steps=6)])
def test_a_state_taken_up_by_another_stepper_gives_the_uninterrupted_run(kwargs):
    """state() after 3 steps, restore() into a stepper built with the same arguments but another seed (as the
    app's denoiser worker does): the rest of the run equals generate()'s, noise draws and DPM memory included."""
    model = LinearEps()
    a = ReverseProcess(model, [1, 2, -1], generator=torch.Generator().manual_seed(1), **kwargs)
    for _ in range(3):
        a.step()
    b = ReverseProcess(model, [1, 2, -1], generator=torch.Generator().manual_seed(99), **kwargs)
    b.restore(a.state())
    a.step()  # the original goes on: the state was a copy
    while not b.done:
        b.step()
    assert torch.equal(b.x, generate(model, [1, 2, -1], generator=torch.Generator().manual_seed(1), spacing="linear",
                                     **kwargs))
    with pytest.raises(ValueError):
        ReverseProcess(model, [1, 2], **kwargs).restore(a.state())  # another batch: refused
    with pytest.raises(ValueError):
        ReverseProcess(model, [1, 2, -1], **kwargs).restore(a.state())  # no generator to take the noise state


def test_sample_still_checks_its_arguments_lazily():
    """sample() is a generator: bad arguments raise at the first next(), as before the stepper existed."""
    it = sample(LinearEps(), [11])
    with pytest.raises(ValueError, match="labels"):
        next(it)


def test_stepper_starts_from_x_start_at_t_start():
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    r = ReverseProcess(LinearEps(), [3, 3], steps=4, x_start=x, t_start=300)
    assert r.timesteps == [300, 225, 150, 75] and r.t == 300
    assert torch.equal(r.step().x_t, x)


@pytest.mark.parametrize("t, t_prev", [(1000, 980), (500, 499), (37, 0), (1, 0)])
def test_step_coefficients_rebuild_the_steps(t, t_prev):
    """The numbers the page prints in front of x_t, eps_hat and x0_hat give back the means of ddpm_step / ddim_step."""
    g = torch.Generator().manual_seed(t)
    x_t, eps, z = (torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    out = ddpm_step(x_t, eps, t, t_prev, COSINE, variance="beta", noise=z)
    c = step_coefficients(COSINE, t, t_prev, out.sigma)
    torch.testing.assert_close(out.mean, c.ddpm_coef_xt * (x_t - c.ddpm_coef_eps * eps))
    torch.testing.assert_close(out.x0_hat, (x_t - c.sqrt_one_minus_alpha_bar_t * eps) / c.sqrt_alpha_bar_t)
    assert (c.alpha, c.beta) == pytest.approx((out.alpha, out.beta), rel=1e-12)
    out = ddim_step(x_t, eps, t, t_prev, COSINE, eta=0.7, noise=z)
    c = step_coefficients(COSINE, t, t_prev, out.sigma)
    torch.testing.assert_close(out.mean, c.ddim_coef_x0 * out.x0_hat + c.ddim_coef_eps * out.eps)
    # for a single step alpha is the schedule's alpha_t (Ho et al. 2020)
    if t_prev == t - 1:
        assert c.alpha == pytest.approx(float(COSINE.alphas[t]), rel=1e-12)


def test_step_coefficients_refuse_a_backward_step():
    with pytest.raises(ValueError):
        step_coefficients(COSINE, 10, 10, 0.0)


def test_noise_level_runs_from_one_to_zero():
    levels = noise_level(COSINE, [1000, 500, 0])
    assert levels[0] == pytest.approx(1.0, abs=1e-3) and levels[2] == 0.0  # abar_T ~ 0, abar_0 = 1
    assert levels[1] == pytest.approx(math.sqrt(1 - float(COSINE.alpha_bars[500])))


def test_rms_distance_in_model_units():
    black = np.zeros((3, 28, 28), np.uint8)
    white = np.full((3, 28, 28), 255, np.uint8)
    np.testing.assert_allclose(rms_distance(np.stack([black, white]), black), [0.0, 2.0])  # -1 against +1


def test_sdedit_start_is_the_closed_form_with_the_generators_noise():
    x0 = torch.rand(2, 1, 28, 28) * 2 - 1
    x_t0 = sdedit_start(x0, 250, COSINE, torch.Generator().manual_seed(5))
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(x_t0, q_sample(x0, 250, noise, COSINE))


def test_eps_process_of_any_predictor_matches_the_network_process():
    """EpsReverseProcess with eps_fn = the network's guided prediction is ReverseProcess, bit for bit,
    and runs on shapes that are not images (the 2-D playground's [N, 2] points)."""
    from diffusion_core.samplers import EpsReverseProcess, guided_eps, sample_eps

    model = LinearEps()
    labels = torch.tensor([1, 2])
    ref = ReverseProcess(model, labels, sampler="ddpm", steps=5, guidance=2.0,
                         generator=torch.Generator().manual_seed(3))
    x_T = ref.x.clone()
    process = EpsReverseProcess(lambda x, t: guided_eps(model, x, int(t[0]), labels, 2.0), x_T, model.schedule,
                                sampler="ddpm", steps=5, generator=torch.Generator().manual_seed(3))
    # the network process drew x_T first from its generator: advance this one's generator the same way
    torch.randn(x_T.shape, generator=process.generator)
    while not ref.done:
        a, b = ref.step(), process.step()
        torch.testing.assert_close(a.x_prev, b.x_prev, rtol=0, atol=0)
    points = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    steps = list(sample_eps(lambda x, t: torch.zeros_like(x), points, model.schedule, steps=4, clip=False))
    assert [s.t for s in steps] == [model.schedule.T * k // 4 for k in (4, 3, 2, 1)]
    assert steps[-1].x_prev.shape == (7, 2)
