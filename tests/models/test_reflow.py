"""The reflowed student (diffusion_core.models.reflow): its reading of the UNet as a v-prediction at the teacher's
SNR against the path's own algebra, its sampler through the public calls, and its files."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from diffusion_core import WeightsError, generate, load_denoiser
from diffusion_core.models.reflow import (CONFIG_NAME, WEIGHTS_NAME, ReflowStudent, StudentConfig, build_student,
                                          load_reflow, save_student, student_velocity, teacher_time)
from diffusion_core.models.unet import UNet, UNetConfig
from diffusion_core.models.weights import DenoiserConfig
from diffusion_core.process.schedules import make_schedule

TINY = UNetConfig(channels=(8, 16), blocks_per_level=(1, 1), emb_dim=16, attention=False)
TEACHER = DenoiserConfig(unet=TINY, schedule="cosine", T=100)


class Oracle(nn.Module):
    """A 'network' that returns the exact v-prediction (Salimans & Ho 2022: v = alpha eps - sigma x_0) of known
    (x_0, x_1) on the variance-preserving form of the path, and records the timesteps it was asked at."""

    def __init__(self, x0, x1, t):
        super().__init__()
        r = torch.sqrt((1 - t) ** 2 + t**2).reshape(-1, 1, 1, 1)
        alpha, sigma = (1 - t).reshape(-1, 1, 1, 1) / r, t.reshape(-1, 1, 1, 1) / r
        self.v = (alpha * x1 - sigma * x0).float()
        self.seen = []

    def forward(self, x, tau, labels):
        self.seen.append(tau)
        return self.v


def test_the_exact_v_prediction_gives_the_pair_velocity():
    """With the exact v of (x_0, x_1) the student's velocity is x_1 - x_0, d x_t / dt of x_t = (1 - t) x_0 + t x_1."""
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.rand(5, 1, 28, 28, generator=g) * 2 - 1, torch.randn(5, 1, 28, 28, generator=g)
    t = torch.tensor([1.0, 0.9, 0.5, 0.2, 0.01], dtype=torch.float64)
    x_t = (1 - t.reshape(-1, 1, 1, 1)).float() * x0 + t.reshape(-1, 1, 1, 1).float() * x1
    u = student_velocity(Oracle(x0, x1, t), x_t, t, torch.zeros(5, dtype=torch.long), make_schedule("cosine", 100))
    torch.testing.assert_close(u, x1 - x0, atol=2e-6, rtol=1e-5)


def test_teacher_time_has_the_teachers_snr():
    """At t with the rectified flow's log SNR 2 log((1 - t) / t) equal to the schedule's log SNR at step k, the
    teacher is asked at timestep k (the schedule's own alpha_bars, not our interpolation); t = 1 is step T."""
    schedule = make_schedule("cosine", 1000)
    for k in (1, 10, 500, 999):
        lam = float(torch.log(schedule.alpha_bars[k] / (1 - schedule.alpha_bars[k])))
        t = 1 / (1 + math.exp(lam / 2))  # solves 2 log((1 - t) / t) = lam
        assert float(teacher_time(torch.tensor([t], dtype=torch.float64), schedule)) == pytest.approx(k, abs=1e-6)
    assert float(teacher_time(torch.tensor([1.0]), schedule)) == 1000


def test_one_time_for_all_rows_is_the_same_velocity_as_one_time_per_row():
    """The sampler's shortcut (a kept teacher timestep when every row has the same t) changes nothing."""
    torch.manual_seed(1)
    net, schedule = UNet(TINY).eval(), make_schedule("cosine", 100)
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([1, 2, 3])
    with torch.no_grad():
        shared = student_velocity(net, x, torch.full((3,), 0.3, dtype=torch.float64), y, schedule)
        per_row = student_velocity(net, x, torch.tensor([0.3, 0.3, 0.7], dtype=torch.float64), y, schedule)
    torch.testing.assert_close(shared[:2], per_row[:2], rtol=0, atol=1e-6)
    assert not torch.allclose(shared[2], per_row[2])


@pytest.fixture
def student():
    torch.manual_seed(0)
    return build_student(UNet(TINY), TEACHER, guidance=1.5, pairs={"count": 0}).eval()


def test_generate_is_k_euler_steps_of_its_flow(student):
    calls = []
    original = student.net.forward
    student.net.forward = lambda *a: calls.append(a[1]) or original(*a)
    x = generate(student, [3, 1, 4], steps=2, generator=torch.Generator().manual_seed(1))
    assert x.shape == (3, 1, 28, 28) and float(x.abs().max()) <= 1
    assert len(calls) == 2 and all(len(c) == 3 for c in calls)  # two calls, one pass of the three digits each
    # the same thing by hand: x_1 ~ N(0, I), x_1/2 = x_1 - u(x_1, 1) / 2, x_0 = x_1/2 - u(x_1/2, 1/2) / 2
    x1 = torch.randn((3, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    y = torch.tensor([3, 1, 4])
    with torch.no_grad():
        half = x1 - 0.5 * student.velocity(x1, torch.ones(3, dtype=torch.float64), y)
        x0 = half - 0.5 * student.velocity(half, torch.full((3,), 0.5, dtype=torch.float64), y)
    torch.testing.assert_close(x, x0.clamp(-1, 1))
    assert torch.equal(generate(student, [3, 1, 4], steps=2, generator=torch.Generator().manual_seed(1)), x)


def test_generate_refuses_what_the_student_cannot_do(student):
    with pytest.raises(ValueError, match="built in"):
        student.generate([1], steps=1, guidance=3.0)
    with pytest.raises(ValueError, match="digits 0-9"):
        student.generate([-1], steps=1)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        student.generate([1], steps=0)
    assert student.generate([1], steps=1, guidance=1.5).shape == (1, 1, 28, 28)  # its own scale is accepted


def test_saved_student_loads_the_same_and_broken_files_name_themselves(student, tmp_path):
    save_student(student, tmp_path, {"training": {"steps": 3}})
    loaded = load_reflow("cpu", tmp_path)
    assert isinstance(loaded, ReflowStudent) and loaded.config == student.config
    g = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    torch.testing.assert_close(loaded.generate([0, 9], steps=1, generator=g()),
                               student.generate([0, 9], steps=1, generator=g()), atol=1e-5, rtol=1e-5)
    assert json.loads((tmp_path / CONFIG_NAME).read_text())["training"] == {"steps": 3}
    (tmp_path / WEIGHTS_NAME).write_bytes((tmp_path / WEIGHTS_NAME).read_bytes()[:500])
    with pytest.raises(WeightsError, match="damaged or truncated") as err:
        load_reflow("cpu", tmp_path)
    assert str(tmp_path / WEIGHTS_NAME) in str(err.value)
    with pytest.raises(WeightsError, match="not found"):
        load_reflow("cpu", tmp_path / "nothing")


def test_the_shipped_student_through_the_public_calls():
    """What the acceptance check does: by name, then k network calls with its own sampler and guidance."""
    model = load_denoiser("cpu", name="reflow")
    assert isinstance(model, ReflowStudent) and not model.training
    for k in (1, 2):
        x = generate(model, list(range(10)), steps=k, generator=torch.Generator().manual_seed(0))
        assert x.shape == (10, 1, 28, 28) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert StudentConfig.from_dict(model.config.to_dict()) == model.config
