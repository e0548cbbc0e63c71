"""process.predictions: the five faces of one eps prediction against the formulas written out, and round trips
exact to float64 (v against diffusers' get_velocity: tests/process/test_paths.py)."""

from __future__ import annotations

import pytest
import torch

from diffusion_core.process.paths import PREDICTIONS, UndefinedConversion, rectified_flow, vp_cosine
from diffusion_core.process.predictions import all_predictions, round_trip_error


def test_the_faces_are_the_formulas():
    path, g = vp_cosine(), torch.Generator().manual_seed(0)
    t = torch.rand(6, generator=g, dtype=torch.float64) * 0.9 + 0.05
    x_t, eps = (torch.randn(6, 2, generator=g, dtype=torch.float64) for _ in range(2))
    a, s, da, ds = (f(t)[:, None] for f in (path.alpha, path.sigma, path.d_alpha, path.d_sigma))
    faces = all_predictions(eps, x_t=x_t, t=t, path=path)
    x0 = (x_t - s * eps) / a
    expected = {"eps": eps, "x0": x0, "score": -eps / s, "v": a * eps - s * x0, "velocity": da * x0 + ds * eps}
    assert set(faces) == set(PREDICTIONS)
    for p in PREDICTIONS:
        torch.testing.assert_close(faces[p], expected[p], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("face", PREDICTIONS)
def test_round_trips_are_exact_in_float64(face):
    g = torch.Generator().manual_seed(2)
    x_t, eps = (torch.randn(5, 1, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    for path in (rectified_flow(), vp_cosine()):
        for t in (0.02, 0.5, 0.98):
            assert round_trip_error(eps, face, x_t=x_t, t=t, path=path) < 1e-10
    if face in ("x0", "v", "velocity"):  # these need alpha: undefined at the noise end of the rectified flow
        with pytest.raises(UndefinedConversion):
            round_trip_error(eps, face, x_t=x_t, t=1.0, path=rectified_flow())
