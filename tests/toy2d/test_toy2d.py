"""diffusion_core.toy2d: the data sets, the exact denoiser of a finite set (against brute force, autograd
and Monte Carlo), its limits, the MLP's training and samples, and pictures refused by the safe loader."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core import toy2d
from diffusion_core.data.images import ErrorCode, ImageLoadError
from diffusion_core.process.schedules import make_schedule
from tests.data.test_hostile_images import CORPUS, KNOWN

LINEAR = make_schedule("linear", 1000)
COSINE = make_schedule("cosine", 200)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def brute_force_x0(x_t: np.ndarray, t: int, data: np.ndarray, schedule) -> np.ndarray:
    """Bayes' rule written out: weights q(x_t | x_i) from the Gaussian density of eq. 4, no log tricks."""
    abar = float(schedule.alpha_bars[t])
    var = 1 - abar
    out = []
    for x in x_t:
        dens = np.array([math.exp(-((x - math.sqrt(abar) * xi) ** 2).sum() / (2 * var)) / (2 * math.pi * var)
                         for xi in data])
        out.append((dens[:, None] * data).sum(0) / dens.sum())
    return np.array(out)


# ------------------------------------------------------------------ data sets
@pytest.mark.parametrize("name", toy2d.DATASETS)
def test_data_sets_are_standardised_and_reproducible(name):
    dist = toy2d.distribution(name)
    x = dist.sample(toy2d.MAX_POINTS, gen(1))
    assert x.shape == (toy2d.MAX_POINTS, 2) and x.dtype == torch.float32
    # constants of the distribution, so a draw of 10 000 has mean 0 +- 4 standard errors (0.04) and std near 1
    assert x.mean(0).abs().max() < 0.04 and (x.std(0) - 1).abs().max() < 0.04
    assert torch.equal(x, dist.sample(toy2d.MAX_POINTS, gen(1)))
    assert not torch.equal(x[:10], dist.sample(10, gen(2)))
    assert dist.sample(1, gen(0)).shape == (1, 2)


@pytest.mark.parametrize("n", [0, -1, toy2d.MAX_POINTS + 1, 2.5, True, "10"])
def test_invalid_sizes_are_a_clear_error(n):
    with pytest.raises(ValueError, match="number of points must be an integer from 1 to 10000"):
        toy2d.distribution("moons").sample(n, gen())


def test_unknown_data_set():
    with pytest.raises(ValueError, match="unknown data set"):
        toy2d.distribution("spiral")  # type: ignore[arg-type]


def test_picture_points_stand_upright_in_the_dark_pixels():
    pixels = np.full((10, 20), 255, np.uint8)
    pixels[1, 2] = 0  # one dark pixel near the top left
    pixels[8, 17] = 40  # one near the bottom right
    x = toy2d.picture_distribution(pixels).raw(2000, gen())
    top_left = x[:, 0] < 10
    assert ((x[top_left, 0] >= 2) & (x[top_left, 0] <= 3) & (x[top_left, 1] >= -2) & (x[top_left, 1] <= -1)).all()
    assert ((x[~top_left, 0] >= 17) & (x[~top_left, 0] <= 18) & (x[~top_left, 1] >= -9)).all()
    assert 0.4 < top_left.float().mean() < 0.6


def test_bundled_picture_and_blank_pictures():
    assert toy2d.bundled_picture().shape == (128, 128)
    with pytest.raises(toy2d.BlankPictureError):
        toy2d.picture_distribution(np.full((32, 32, 3), 250, np.uint8))
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buffer, format="PNG")
    with pytest.raises(toy2d.BlankPictureError):
        toy2d.picture_from_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    Image.fromarray(toy2d.bundled_picture()).save(buffer, format="PNG")
    assert toy2d.picture_from_bytes(buffer.getvalue()).sample(5, gen()).shape == (5, 2)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("name", "code"), KNOWN.items())  # the loader's fates, tests/data/test_hostile_images.py
def test_hostile_pictures_are_refused_with_the_loaders_codes(name, code):
    if not (CORPUS / name).is_file():
        pytest.skip(f"{name} is not in {CORPUS}")
    with pytest.raises(ImageLoadError) as info:
        toy2d.picture_from_bytes((CORPUS / name).read_bytes())
    assert info.value.code is code


def test_empty_and_non_picture_uploads():
    for data, code in ((b"", ErrorCode.EMPTY), (b"not a picture" * 20, ErrorCode.NOT_IMAGE)):
        with pytest.raises(ImageLoadError) as info:
            toy2d.picture_from_bytes(data)
        assert info.value.code is code


# ------------------------------------------------------------------ the exact denoiser
@pytest.mark.parametrize(("schedule", "t"), [(LINEAR, 50), (LINEAR, 300), (LINEAR, 900), (COSINE, 20), (COSINE, 150)])
def test_exact_denoiser_against_brute_force(schedule, t):
    data = torch.tensor([[-1.0, 0.5], [0.3, -0.7], [1.2, 1.1], [0.0, 0.0], [-0.4, -1.5]])
    x_t = torch.randn(40, 2, generator=gen(3)) * 1.2
    got = toy2d.optimal_x0(x_t.double(), t, data, schedule).numpy()
    np.testing.assert_allclose(got, brute_force_x0(x_t.double().numpy(), t, data.double().numpy(), schedule),
                               rtol=0, atol=1e-10)


def test_exact_score_is_the_gradient_of_the_log_density():
    """Tweedie: the score from optimal_x0 equals autograd's gradient of log q_t, the mixture of eq. 4's Gaussians."""
    data = toy2d.distribution("mixture").sample(7, gen(4)).double()
    x = (torch.randn(25, 2, generator=gen(5)) * 1.5).double().requires_grad_(True)
    for t in (3, 100, 700):
        abar = LINEAR.alpha_bars[t]
        log_q = torch.logsumexp(-((x[:, None] - abar.sqrt() * data[None]) ** 2).sum(-1) / (2 * (1 - abar)), dim=1)
        (grad,) = torch.autograd.grad(log_q.sum(), x)
        torch.testing.assert_close(toy2d.optimal_score(x.detach(), t, data, LINEAR), grad, rtol=1e-9, atol=1e-9)


def test_exact_denoiser_against_monte_carlo_posterior_mean():
    """Draw (x_0, x_t) pairs from the model itself, keep those with x_t in a small disc around a query point,
    and average their x_0: the posterior mean, up to Monte Carlo error and the disc's O(r^2) bias."""
    data = torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.2, -1.2]], dtype=torch.float64)
    t, r, n = 250, 0.06, 2_000_000
    g = gen(6)
    abar = LINEAR.alpha_bars[t]
    x0 = data[torch.randint(0, 3, (n,), generator=g)]
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * torch.randn(n, 2, generator=g, dtype=torch.float64)
    for query in ([0.0, 0.0], [0.4, 0.2], [-0.5, -0.3]):
        q = torch.tensor(query, dtype=torch.float64)
        near = ((x_t - q) ** 2).sum(1) < r**2
        kept = x0[near]
        assert len(kept) > 2000
        mc, se = kept.mean(0), kept.std(0) / math.sqrt(len(kept))
        exact = toy2d.optimal_x0(q[None], t, data, LINEAR)[0]
        assert ((mc - exact).abs() < 4 * se + 0.01).all(), (query, mc, exact, se)


def test_limit_t_to_zero_gives_the_nearest_point():
    """At t = 1 of a long schedule (T = 4000: sqrt(1 - abar_1) = 0.005 linear, 0.003 cosine) the softmax picks
    one point: queries near the data, and far from a tiny set (away from the bisectors between its points)."""
    data = toy2d.distribution("checkerboard").sample(50, gen(7))
    queries = data[torch.randint(0, 50, (500,), generator=gen(8))] + 0.01 * torch.randn(500, 2, generator=gen(9))
    sparse = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    far = torch.randn(200, 2, generator=gen(10)) * 2
    for schedule in (make_schedule("linear", 4000), make_schedule("cosine", 4000)):
        scaled = float(schedule.sqrt_alpha_bars[1]) * data  # q(x_1 | x_0) is centred on sqrt(abar_1) x_0
        nearest = data[torch.cdist(queries, scaled).argmin(1)]
        got = toy2d.optimal_x0(queries, 1, data, schedule)
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, nearest, rtol=0, atol=1e-5)
        nearest = sparse[torch.cdist(far, float(schedule.sqrt_alpha_bars[1]) * sparse).argmin(1)]
        ties = (torch.cdist(far, sparse).sort(1).values[:, :2].diff(dim=1).squeeze(1) < 0.05)  # near a bisector
        torch.testing.assert_close(toy2d.optimal_x0(far, 1, sparse, schedule)[~ties], nearest[~ties], rtol=0, atol=1e-5)


def test_limit_t_to_T_gives_nearly_the_data_mean():
    data = toy2d.distribution("moons").sample(2000, gen(9))
    queries = torch.randn(300, 2, generator=gen(10))  # x_T ~ N(0, I)
    for schedule in (LINEAR, COSINE):
        got = toy2d.optimal_x0(queries, schedule.T, data, schedule)
        # weights tilt from uniform by sqrt(abar_T) <x_T, x_i> / (1 - abar_T): sqrt(abar_T) <= 0.007 here
        assert float(schedule.sqrt_alpha_bars[-1]) < 0.007
        assert (got - data.mean(0)).norm(dim=1).max() < 0.05


def test_exact_denoiser_is_chunked_and_stable(monkeypatch):
    data = toy2d.distribution("swiss_roll").sample(toy2d.MAX_POINTS, gen(11))
    queries = torch.cat([torch.randn(200, 2, generator=gen(12)), torch.tensor([[40.0, -40.0], [1e3, 1e3]])])
    whole = toy2d.optimal_x0(queries, 1, data, LINEAR)
    monkeypatch.setattr(toy2d.exact, "_CHUNK_ELEMENTS", 3 * toy2d.MAX_POINTS)  # three queries per chunk
    torch.testing.assert_close(toy2d.optimal_x0(queries, 1, data, LINEAR), whole, rtol=0, atol=1e-6)
    assert torch.isfinite(whole).all()  # far queries: huge logits, still a proper softmax
    per_row_t = torch.full((len(queries),), 500)
    per_row_t[:100] = 7
    mixed = toy2d.optimal_x0(queries, per_row_t, data, LINEAR)
    torch.testing.assert_close(mixed[:100], toy2d.optimal_x0(queries[:100], 7, data, LINEAR))
    torch.testing.assert_close(mixed[100:], toy2d.optimal_x0(queries[100:], 500, data, LINEAR))


def test_exact_denoiser_refuses_t_zero_and_bad_shapes():
    data = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="t must lie in 1..1000"):
        toy2d.optimal_x0(torch.zeros(2, 2), 0, data, LINEAR)
    with pytest.raises(ValueError, match="x_t"):
        toy2d.optimal_x0(torch.zeros(2, 3), 1, data, LINEAR)


def test_exact_samples_land_on_the_training_points():
    """DDIM over every step with the exact denoiser copies training points: its samples sit much closer to
    them than fresh points of the same distribution do."""
    schedule = make_schedule("linear", 200)
    dist = toy2d.distribution("moons")
    data = dist.sample(100, gen(13))
    x_T = torch.randn(100, 2, generator=gen(14))
    samples = toy2d.reverse_paths(toy2d.exact_eps_fn(data, schedule), x_T, schedule, sampler="ddim", steps=200)[-1]
    copied = toy2d.nearest_distance(samples, data).median()
    fresh = toy2d.nearest_distance(dist.sample(100, gen(15)), data).median()
    assert copied < fresh / 10


# ------------------------------------------------------------------ the MLP
def test_mlp_shapes_and_size():
    for width in (64, 128, 256):
        model = toy2d.EpsMLP(toy2d.MLPConfig(T=1000, width=width))
        assert sum(p.numel() for p in model.parameters()) < 300_000
    out = model(torch.randn(5, 2), torch.tensor([0, 1, 500, 999, 1000]))
    assert out.shape == (5, 2)


def test_training_is_seeded_reports_progress_and_refuses_a_wrong_T():
    data = toy2d.distribution("mixture").sample(200, gen())
    calls = []
    config = toy2d.TrainConfig(steps=60, seed=3)
    a = toy2d.train_mlp(data, COSINE, toy2d.MLPConfig(T=200, width=32), config, progress=lambda *c: calls.append(c), every=25)
    b = toy2d.train_mlp(data, COSINE, toy2d.MLPConfig(T=200, width=32), config)
    assert [c[0] for c in calls] == [25, 50, 60] and all(c[1] == 60 for c in calls)
    assert a.steps == [25, 50, 60] and len(a.losses) == 3
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q) and not p.requires_grad
    with pytest.raises(ValueError, match="T = 200"):
        toy2d.train_mlp(data, COSINE, toy2d.MLPConfig(T=1000), config)


def test_trained_mlp_loss_falls_and_its_samples_match_the_data():
    schedule = make_schedule("linear", 1000)
    dist = toy2d.distribution("mixture")
    data = dist.sample(2000, gen(16))
    result = toy2d.train_mlp(data, schedule, toy2d.MLPConfig(T=1000, width=128), toy2d.TrainConfig(steps=2000))
    assert result.losses[-1] < 0.6 * result.losses[0]
    n = 800
    # threshold from data against data: energy distances between independent draws of n points
    null = [abs(toy2d.energy_distance(dist.sample(n, gen(100 + i)), dist.sample(n, gen(200 + i)))) for i in range(6)]
    threshold = 4 * max(null)
    fresh = dist.sample(n, gen(17))
    for sampler in ("ddim", "ddpm"):
        x_T = torch.randn(n, 2, generator=gen(18))
        samples = toy2d.reverse_paths(toy2d.mlp_eps_fn(result.model), x_T, schedule, sampler=sampler, steps=100,
                                      generator=gen(19))[-1]
        assert toy2d.energy_distance(samples, fresh) < threshold, (sampler, threshold)
    untrained = toy2d.EpsMLP(toy2d.MLPConfig(T=1000, width=128))
    bad = toy2d.reverse_paths(toy2d.mlp_eps_fn(untrained), torch.randn(n, 2, generator=gen(20)), schedule,
                              sampler="ddim", steps=100)[-1]
    assert toy2d.energy_distance(bad, fresh) > threshold  # the test can fail


def test_reverse_paths_shape_and_determinism():
    data = toy2d.distribution("moons").sample(50, gen())
    fn = toy2d.exact_eps_fn(data, COSINE)
    x_T = torch.randn(6, 2, generator=gen(21))
    a = toy2d.reverse_paths(fn, x_T, COSINE, sampler="ddpm", steps=20, generator=gen(22))
    b = toy2d.reverse_paths(fn, x_T, COSINE, sampler="ddpm", steps=20, generator=gen(22))
    assert a.shape == (21, 6, 2) and torch.equal(a, b) and torch.equal(a[0], x_T)
    c = toy2d.reverse_paths(fn, x_T, COSINE, sampler="ddim", steps=20)
    assert torch.equal(c, toy2d.reverse_paths(fn, x_T, COSINE, sampler="ddim", steps=20))


def test_energy_distance_and_nearest_distance():
    a = torch.randn(500, 2, generator=gen(23))
    assert abs(toy2d.energy_distance(a, torch.randn(500, 2, generator=gen(24)))) < 0.02
    assert toy2d.energy_distance(a, torch.randn(500, 2, generator=gen(25)) + 1.0) > 0.3
    data = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    torch.testing.assert_close(toy2d.nearest_distance(torch.tensor([[0.0, 1.0], [3.0, 0.0]]), data),
                               torch.tensor([1.0, 3.0], dtype=torch.float64))
    assert toy2d.grid(2.0, 3)[:3].tolist() == [[-2.0, -2.0], [0.0, -2.0], [2.0, -2.0]]
