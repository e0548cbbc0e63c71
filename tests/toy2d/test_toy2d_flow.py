"""diffusion_core.toy2d.flow: the exact marginal velocity against brute-force Bayes and against Monte Carlo of the
conditional velocity, its posterior variance (the gap between the conditional and marginal losses, Lipman et al.
2023, thm 2), the velocity MLP's training, and Euler on the exact field converging to the data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion_core import toy2d
from diffusion_core.process.paths import from_schedule, rectified_flow, vp_cosine, vp_linear
from diffusion_core.process.schedules import make_schedule
from diffusion_core.samplers.flow import flow_times, integrate_flow

PATHS = {"rectified_flow": rectified_flow(), "vp_cosine": vp_cosine(), "vp_linear": vp_linear(),
         "cosine_T1000": from_schedule(make_schedule("cosine", 1000))}
DATA = torch.tensor([[-1.0, 0.5], [0.3, -0.7], [1.2, 1.1], [0.0, 0.0], [-0.4, -1.5]], dtype=torch.float64)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def coefficients(path, t: float) -> tuple[float, float, float, float]:
    return tuple(float(f(torch.tensor(t, dtype=torch.float64))) for f in (path.alpha, path.sigma, path.d_alpha,
                                                                          path.d_sigma))


def brute_force(x_t: np.ndarray, t: float, data: np.ndarray, path) -> tuple[np.ndarray, np.ndarray]:
    """Bayes written out in float64 numpy, no log tricks: the weight of x_i is the density N(x_t; alpha x_i,
    sigma^2 I); each pair's conditional velocity alpha' x_i + sigma' (x_t - alpha x_i) / sigma, averaged with those
    weights (the marginal velocity), and the weighted variance of that target around it, per coordinate."""
    a, s, da, ds = coefficients(path, t)
    means, variances = [], []
    for x in x_t:
        dens = np.array([math.exp(-((x - a * xi) ** 2).sum() / (2 * s * s)) / (2 * math.pi * s * s) for xi in data])
        w = dens / dens.sum()
        targets = np.array([da * xi + ds * (x - a * xi) / s for xi in data])
        mean = (w[:, None] * targets).sum(0)
        means.append(mean)
        variances.append((w * ((targets - mean) ** 2).sum(1)).sum() / 2)
    return np.array(means), np.array(variances)


@pytest.mark.parametrize("name", PATHS)
@pytest.mark.parametrize("t", [0.15, 0.5, 0.85, 1.0])
def test_exact_velocity_and_its_variance_against_brute_force_bayes(name, t):
    path = PATHS[name]
    if t == 1.0 and name != "rectified_flow":
        t = 0.97  # a VP path's alpha' is 0 / 0 at t = 1 in float64 (abar(1) = 0)
    x_t = (torch.randn(30, 2, generator=gen(1)) * 1.3).double()
    u, var = brute_force(x_t.numpy(), t, DATA.numpy(), path)
    np.testing.assert_allclose(toy2d.optimal_velocity(x_t, t, DATA, path).numpy(), u, rtol=0, atol=1e-10)
    np.testing.assert_allclose(toy2d.velocity_variance(x_t, t, DATA, path).numpy(), var, rtol=1e-9, atol=1e-12)
    per_row = torch.full((30,), t, dtype=torch.float64)
    torch.testing.assert_close(toy2d.optimal_velocity(x_t, per_row, DATA, path),
                               toy2d.optimal_velocity(x_t, t, DATA, path), rtol=0, atol=1e-12)


def test_exact_velocity_against_monte_carlo_of_the_conditional_velocity():
    """Draw pairs (x_0, eps) from the model, keep those whose x_t falls in a small disc around a query, and
    average their conditional velocities alpha' x_0 + sigma' eps: E[target | x_t], up to Monte Carlo error and
    the disc's O(r^2) bias. The spread of the kept targets is the posterior variance (plus the disc's spread)."""
    data = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.2, -1.2]], dtype=torch.float64)
    n, r = 2_000_000, 0.05
    g = gen(6)
    for path, t in ((rectified_flow(), 0.4), (vp_cosine(), 0.6)):
        x0 = data[torch.randint(0, 3, (n,), generator=g)]
        noise = torch.randn(n, 2, generator=g, dtype=torch.float64)
        x_t = path.sample(x0, t, noise)
        target = path.d_alpha(torch.tensor(t)) * x0 + path.d_sigma(torch.tensor(t)) * noise
        for query in ([0.0, 0.0], [0.4, 0.2], [-0.5, -0.3]):
            q = torch.tensor(query, dtype=torch.float64)
            near = ((x_t - q) ** 2).sum(1) < r**2
            kept = target[near]
            assert len(kept) > 2000
            mc, se = kept.mean(0), kept.std(0) / math.sqrt(len(kept))
            exact = toy2d.optimal_velocity(q[None], t, data, path)[0]
            assert ((mc - exact).abs() < 4 * se + 0.02).all(), (query, mc, exact, se)
            mc_var = float(((kept - mc) ** 2).sum(1).mean() / 2)
            assert mc_var == pytest.approx(float(toy2d.velocity_variance(q[None], t, data, path)[0]), rel=0.1, abs=0.01)


def test_conditional_and_marginal_losses_differ_by_the_expected_variance():
    """Lipman et al. (2023), thm 2: for any u_theta, E||u_theta - target||^2 - E||u_theta - u||^2 =
    E Var(target | x_t), the same for an untrained network and for the exact field itself (u_theta = u)."""
    data = toy2d.distribution("moons").sample(200, gen(2)).double()
    path, t, n = rectified_flow(), 0.5, 60_000
    g = gen(3)
    x0 = data[torch.randint(0, len(data), (n,), generator=g)]
    noise = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x_t = path.sample(x0, t, noise)
    target = noise - x0  # alpha' = -1, sigma' = 1
    u = toy2d.optimal_velocity(x_t, t, data, path)
    net = toy2d.mlp_velocity_fn(toy2d.VelocityMLP())
    expected = toy2d.expected_velocity_variance(t, data, path, n=10_000, generator=gen(4))
    for guess in (net(x_t, torch.full((n,), t)), u, torch.zeros_like(u)):
        gap = float((((guess - target) ** 2).mean(1) - ((guess - u) ** 2).mean(1)).mean())
        assert gap == pytest.approx(expected.mean, abs=4 * expected.standard_error + 0.01)
    assert expected.mean > 0.05  # a real constant, not 0: moons overlap at t = 0.5


def test_exact_velocity_refuses_t_zero_and_bad_shapes():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        toy2d.optimal_velocity(torch.zeros(2, 2), 0.0, DATA, rectified_flow())
    with pytest.raises(ValueError, match="x_t"):
        toy2d.optimal_velocity(torch.zeros(2, 3), 0.5, DATA, rectified_flow())
    with pytest.raises(ValueError, match="one time per row"):
        toy2d.optimal_velocity(torch.zeros(2, 2), torch.tensor([0.5, 0.5, 0.5]), DATA, rectified_flow())


def test_exact_velocity_is_chunked(monkeypatch):
    data = toy2d.distribution("swiss_roll").sample(toy2d.MAX_POINTS, gen(11))
    queries = torch.cat([torch.randn(200, 2, generator=gen(12)), torch.tensor([[40.0, -40.0]])])
    whole = toy2d.optimal_velocity(queries, 0.01, data, rectified_flow())
    monkeypatch.setattr(toy2d.flow, "_CHUNK_ELEMENTS", 3 * toy2d.MAX_POINTS)
    torch.testing.assert_close(toy2d.optimal_velocity(queries, 0.01, data, rectified_flow()), whole, rtol=0, atol=1e-5)
    assert torch.isfinite(whole).all()


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_the_flow_of_the_exact_velocity_reaches_the_data_with_more_steps(method):
    """Euler (and Heun) from t = 1 on the exact field: with one step every sample lands on the data mean, and the
    energy distance to the training points falls as the steps grow, down to that of a fresh draw."""
    dist = toy2d.distribution("mixture")
    data = dist.sample(200, gen(13))
    x1 = torch.randn(300, 2, generator=gen(14), dtype=torch.float64)
    fn = toy2d.exact_velocity_fn(data, rectified_flow())
    with toy2d.one_thread():  # many small products: a second thread only waits (see mlp.one_thread)
        ends = {n: integrate_flow(fn, x1, flow_times(n), method=method) for n in (1, 3, 10, 30)}
    if method == "euler":
        torch.testing.assert_close(ends[1], data.double().mean(0).expand(300, 2), rtol=0, atol=1e-9)
    distances = [toy2d.energy_distance(ends[n], data) for n in sorted(ends)]
    assert all(b < a for a, b in zip(distances, distances[1:])), distances
    fresh = toy2d.energy_distance(dist.sample(300, gen(15)), data)
    assert distances[-1] < 2 * abs(fresh) + 0.01 and distances[0] > 10 * (abs(fresh) + 0.01)


def test_velocity_mlp_shapes_and_time_embedding():
    model = toy2d.VelocityMLP(toy2d.VelocityMLPConfig(width=64))
    out = model(torch.randn(5, 2), torch.tensor([0.0, 0.001, 0.5, 0.999, 1.0]))
    assert out.shape == (5, 2)
    fn = toy2d.mlp_velocity_fn(model)
    x = torch.zeros(2, 2, dtype=torch.float64)
    a, b = fn(x, torch.tensor([0.3, 0.3001], dtype=torch.float64))
    assert fn(x, torch.tensor([0.3, 0.3])).dtype == torch.float64
    assert not torch.equal(a, b)  # continuous t: a thousandth of a step still moves the embedding


def test_velocity_training_is_seeded_and_reports_progress():
    data = toy2d.distribution("mixture").sample(200, gen())
    calls = []
    config = toy2d.FlowTrainConfig(steps=60, seed=3)
    small = toy2d.VelocityMLPConfig(width=32)
    a = toy2d.train_velocity_mlp(data, rectified_flow(), small, config, progress=lambda *c: calls.append(c), every=25)
    b = toy2d.train_velocity_mlp(data, rectified_flow(), small, config)
    assert [c[0] for c in calls] == [25, 50, 60] and a.steps == [25, 50, 60] and len(a.losses) == 3
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q) and not p.requires_grad
    with pytest.raises(ValueError, match="time sampling"):
        toy2d.train_velocity_mlp(data, rectified_flow(), small, toy2d.FlowTrainConfig(steps=2, time_sampling="beta"))


@pytest.mark.parametrize("sampling", ["uniform", "logit_normal"])
def test_trained_velocity_falls_and_approaches_the_exact_field(sampling):
    """The conditional loss falls, and at t = 0.3, 0.6, 0.9 the trained field sits far closer to the exact
    marginal one than the untrained network does; its marginal loss is a fraction of the unavoidable E Var."""
    path = rectified_flow()
    data = toy2d.distribution("moons").sample(500, gen(16))
    result = toy2d.train_velocity_mlp(data, path, toy2d.VelocityMLPConfig(width=64),
                                      toy2d.FlowTrainConfig(steps=800, time_sampling=sampling))
    assert result.losses[-1] < 0.8 * result.losses[0]
    trained = toy2d.mlp_velocity_fn(result.model)
    untrained = toy2d.mlp_velocity_fn(toy2d.VelocityMLP(toy2d.VelocityMLPConfig(width=64)))
    g = gen(17)
    for t in (0.3, 0.6, 0.9):
        x_t = path.sample(data[torch.randint(0, 500, (2000,), generator=g)].double(), t,
                          torch.randn(2000, 2, generator=g, dtype=torch.float64))
        exact = toy2d.optimal_velocity(x_t, t, data, path)
        tt = torch.full((2000,), t, dtype=torch.float64)
        err = ((trained(x_t, tt) - exact) ** 2).mean()
        # measured: 0.14 at t = 0.3 (where the 500 points' field turns sharp), below 0.05 at 0.6 and 0.9
        assert err < 0.25 * ((untrained(x_t, tt) - exact) ** 2).mean(), t
        assert err < 0.25 * ((exact - exact.mean(0)) ** 2).mean(), t  # it learned the field, not just its mean
