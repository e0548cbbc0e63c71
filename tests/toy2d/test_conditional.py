"""Class-conditional 2-D diffusion (toy2d/conditional.py): the exact denoiser of one class against the closed form
of a single point and of two points (x tanh), guidance against its formula written out here, and a conditional MLP
that learns two classes in a few hundred steps and, guided, samples each near its own class."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion_core import toy2d
from diffusion_core.process.schedules import make_schedule


@pytest.fixture(autouse=True)
def _one_thread():
    with toy2d.one_thread():
        yield


SCHEDULE = make_schedule("linear", 100)
A = 1.5
DATA = torch.tensor([[-A, 0.0], [A, 0.0]])  # class 0 on the left, class 1 on the right
LABELS = torch.tensor([0, 1])


def closed_forms(x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """eps of class 1 alone (one point: (x_t - sqrt(abar) x_0) / sqrt(1 - abar)) and of both points (the x
    coordinate of E[x_0 | x_t] is A tanh(sqrt(abar) A x / (1 - abar)): two equally likely points)."""
    abar = float(SCHEDULE.alpha_bars[t])
    one = (x - math.sqrt(abar) * DATA[1]) / math.sqrt(1 - abar)
    x0 = torch.stack([A * torch.tanh(math.sqrt(abar) * A * x[:, 0] / (1 - abar)), torch.zeros(len(x))], dim=1)
    return one, (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)


def test_the_exact_conditional_denoiser_is_the_exact_denoiser_of_its_class():
    model = toy2d.ExactConditionalDenoiser(DATA, LABELS, SCHEDULE)
    x = torch.tensor([[0.3, -0.2], [-1.0, 0.5], [2.0, 1.0]])
    t = torch.full((3,), 40)
    one, both = closed_forms(x, 40)
    assert torch.allclose(model(x, t, torch.tensor([1, 1, 1])), one, atol=1e-5)
    assert torch.allclose(model(x, t, torch.tensor([-1, -1, -1])), both, atol=1e-5)
    mixed = model(x, t, torch.tensor([1, -1, 1]))
    assert torch.allclose(mixed[1], both[1], atol=1e-5) and torch.allclose(mixed[0], one[0], atol=1e-5)
    with pytest.raises(ValueError, match="label 7"):
        model(x, t, torch.tensor([7, 7, 7]))


def test_guidance_is_the_formula_of_ho_and_salimans():
    """eps = eps_none + s (eps_y - eps_none) (Ho & Salimans 2022, eq. 6 in eps form), for s = 0, 1 and 3."""
    model = toy2d.ExactConditionalDenoiser(DATA, LABELS, SCHEDULE)
    x, t = torch.tensor([[0.3, -0.2], [0.1, 0.4]]), torch.full((2,), 60)
    one, both = closed_forms(x, 60)
    for s in (0.0, 1.0, 3.0):
        guided = toy2d.guided_eps_2d(model, [1, 1], s)(x, t)
        assert torch.allclose(guided, both + s * (one - both), atol=1e-5), s


def test_a_conditional_mlp_learns_two_classes_and_guidance_separates_them():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    labels = torch.randint(0, 2, (2000,), generator=g)
    data = centres[labels] + 0.15 * torch.randn(2000, 2, generator=g)
    schedule = make_schedule("linear", 100)
    config = toy2d.CondMLPConfig(mlp=toy2d.MLPConfig(T=100, width=64), num_classes=2)
    result = toy2d.train_conditional_mlp(data, labels, schedule, config, toy2d.TrainConfig(steps=300, batch=128, seed=0))
    assert result.losses[-1] < 0.8 * result.losses[0]
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    for y in (0, 1):
        fn = toy2d.guided_eps_2d(result.model, [y] * 200, 2.0)
        end = toy2d.reverse_paths(fn, x_T, schedule, sampler="ddim", steps=50)[-1]
        share = ((end[:, 0] > 0) == bool(y)).float().mean()
        assert share > 0.9, (y, share)  # the guided samples land on the asked class's side
