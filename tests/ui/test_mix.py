"""ui/mix.py's payload, read back as the browser reads it (ui/assets/mix_picture.js): the header, the bases
to within half their quantisation step, the weights exactly, and the picture of a mix to one grey level."""

from __future__ import annotations

import numpy as np
import pytest

from diffusion_core.data.images import unit_to_uint8
from tests.pages.followed import read_mix
from ui.mix import MixedPicture, encode


def test_the_payload_reads_back():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (7, 5, 3))
    eps = rng.standard_normal((7, 5, 3))
    ts = np.arange(1, 11)
    weights = np.stack([np.sqrt(1 / ts), np.sqrt(1 - 1 / ts)], 1)
    payload = encode([x0, eps], [MixedPicture(weights, "a {v}"), MixedPicture(weights[::-1].copy(), "b")],
                     slider="s", minimum=1, min_side=20)
    head, bases, read = read_mix(payload)
    assert (head["h"], head["w"], head["c"], head["positions"], head["min"], head["factor"]) == (7, 5, 3, 10, 1, 4)
    assert head["captions"] == ["a {v}", "b"] and head["slider"] == "s"
    for q, scale, original in zip(bases, head["scales"], (x0, eps)):
        assert np.abs(q * scale - original.ravel()).max() <= scale / 2 + 1e-15
    assert np.array_equal(read[0], weights) and np.array_equal(read[1], weights[::-1])
    # The browser's picture at every position against the mix of the exact arrays: one grey level at most.
    for p in range(10):
        mix = sum(w * q.astype(np.float64) * s for w, q, s in zip(read[0][p], bases, head["scales"]))
        assert np.abs(unit_to_uint8(mix).astype(int) - unit_to_uint8(weights[p, 0] * x0 + weights[p, 1] * eps).ravel()).max() <= 1


def test_grey_pictures_and_bad_shapes():
    head, bases, _ = read_mix(encode([np.zeros((4, 6)), np.ones((4, 6))], [MixedPicture(np.ones((3, 2)), "")], slider="s"))
    assert (head["h"], head["w"], head["c"]) == (4, 6, 1)
    assert np.all(bases[0] == 0) and np.all(bases[1] == 32767)
    with pytest.raises(ValueError, match="shape"):
        encode([np.zeros((4, 6)), np.zeros((4, 5))], [MixedPicture(np.ones((3, 2)), "")], slider="s")
    with pytest.raises(ValueError, match="weights"):
        encode([np.zeros((4, 6))], [MixedPicture(np.ones((3, 2)), "")], slider="s")
