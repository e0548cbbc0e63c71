"""The network sampled in continuous time: calls per method, the ODE deterministic and the SDE not, the labels
checked, the result in [-1, 1]; with a tiny stand-in for the UNet whose eps is exact for Gaussian data, the ODE's
digits have the data's mean and spread."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diffusion_core.process.paths import from_schedule
from diffusion_core.process.schedules import make_schedule
from diffusion_core.samplers.continuous import sample_continuous, steps_for

MEAN, STD = 0.2, 0.3  # the stand-in's data: every pixel N(MEAN, STD^2)


class GaussianNet(nn.Module):
    """eps_theta(x_t, t, y) = E[eps | x_t] for pixel-wise N(MEAN, STD^2) data, at any (fractional) t; counts calls."""

    def __init__(self):
        super().__init__()
        self.schedule = make_schedule("cosine", 1000)
        self.path = from_schedule(self.schedule)
        self.weight = nn.Parameter(torch.zeros(()))  # so that the model has a dtype and a device
        self.calls = 0

    def forward(self, x, t, labels):
        self.calls += 1
        tau = t.double().reshape(-1, 1, 1, 1) / self.schedule.T
        a, s = self.path.alpha(tau).to(x.dtype), self.path.sigma(tau).to(x.dtype)
        return s * (x - a * MEAN) / (a**2 * STD**2 + s**2)


def test_steps_for():
    assert steps_for("em", 20) == 20 and steps_for("pc", 20) == 10 and steps_for("ode", 20) == 10
    for method, calls in (("pc", 7), ("ode", 1), ("em", 0)):
        with pytest.raises(ValueError, match="call"):
            steps_for(method, calls)
    with pytest.raises(ValueError, match="method"):
        steps_for("ddim", 10)


@pytest.mark.parametrize("method", ["em", "pc", "ode"])
def test_calls_progress_and_range(method):
    net = GaussianNet()
    seen = []
    x = sample_continuous(net, [1, 2], method=method, calls=20, guidance=1.0, generator=torch.Generator().manual_seed(0),
                          progress=lambda done, total: seen.append((done, total)))
    assert net.calls == 20 and seen[-1] == (20, 20)
    assert x.shape == (2, 1, 28, 28) and float(x.abs().max()) <= 1


def test_the_ode_is_deterministic_and_reaches_the_data():
    net = GaussianNet()
    x1 = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    runs = [sample_continuous(net, [0] * 4, method="ode", calls=100, guidance=1.0, x_start=x1,
                              generator=torch.Generator().manual_seed(s)) for s in (2, 3)]
    assert torch.equal(runs[0], runs[1])
    assert abs(float(runs[0].mean()) - MEAN) < 0.02 and abs(float(runs[0].std()) - STD) < 0.02
    sde = [sample_continuous(net, [0] * 4, method="em", calls=100, guidance=1.0, x_start=x1,
                             generator=torch.Generator().manual_seed(s)) for s in (2, 3)]
    assert float((sde[0] - sde[1]).abs().mean()) > 0.05
    assert abs(float(sde[0].mean()) - MEAN) < 0.02 and abs(float(sde[0].std()) - STD) < 0.03


def test_labels_are_checked():
    with pytest.raises(ValueError, match="labels"):
        sample_continuous(GaussianNet(), [11], method="em", calls=2)
