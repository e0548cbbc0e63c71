"""The bundled sample images and their loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffusion_core.data.samples import ASSETS_DIR, list_sample_images, load_sample_image, sample_kind

MNIST = Path("/work/shared/data/mnist")


def test_names_and_kinds():
    digits = [f"digit_{d}" for d in range(10)]
    assert list_sample_images("digit") == digits
    photos = list_sample_images("photo")
    assert {"astronaut", "chelsea", "coffee"} <= set(photos)
    assert list_sample_images() == digits + photos
    assert sample_kind("digit_4") == "digit" and sample_kind("chelsea") == "photo"
    with pytest.raises(ValueError, match="no bundled image"):
        load_sample_image("lena")
    with pytest.raises(ValueError, match="unknown kind"):
        list_sample_images("video")


def test_shapes_dtypes_and_resizing():
    for name in list_sample_images("digit"):
        image = load_sample_image(name)
        assert image.shape == (28, 28) and image.dtype == np.uint8 and image.max() > 200
    for name in list_sample_images("photo"):
        image = load_sample_image(name)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        assert max(image.shape[:2]) == 256
        small = load_sample_image(name, 96)
        assert max(small.shape[:2]) == 96 and small.dtype == np.uint8
        ratio = image.shape[0] / image.shape[1]
        assert small.shape[0] / small.shape[1] == pytest.approx(ratio, abs=0.02)
    assert load_sample_image("digit_0", 96).shape == (28, 28)  # never enlarged


def test_every_asset_is_documented():
    readme = (ASSETS_DIR / "README.md").read_text()
    for name in list_sample_images():
        assert name in readme
    assert "CC BY-SA 3.0" in readme and "CC0" in readme and "public domain" in readme


@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="MNIST files not present")
def test_digits_are_the_first_of_each_class_in_the_mnist_test_set():
    from diffusion_core.data.mnist import load_mnist

    images, labels = load_mnist(MNIST, "test")
    for d in range(10):
        first = int(np.flatnonzero(labels == d)[0])
        assert np.array_equal(load_sample_image(f"digit_{d}"), images[first]), d
