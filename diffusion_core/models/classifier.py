"""The evaluation classifier: a small CNN that reads 28x28 digits in [-1, 1].

It is a measuring instrument, not part of the diffusion model: its logits give
the class accuracy of generated digits, and its penultimate layer (``features``,
a global average of the last feature map) plays the role that Inception-v3's
pool features play in the FID of Heusel et al. (2017), for MNIST.

Trained by ``python -m diffusion_core.training.classifier``; the weights ship as
``pretrained/classifier.safetensors`` with ``classifier.json`` beside them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .weights import (
    PRETRAINED_DIR,
    WeightsError,
    load_matching_state,
    load_state,
    save_state,
)

WEIGHTS_NAME = "classifier.safetensors"
CONFIG_NAME = "classifier.json"


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig:
    """Architecture of the classifier; saved as JSON beside its weights."""

    image_size: int = 28  # height = width of the digits
    in_channels: int = 1  # grayscale
    channels: tuple[int, int, int] = (24, 48, 96)  # widths at 28x28, 14x14 and 7x7; the last is D
    num_classes: int = 10  # digits 0-9

    @property
    def feature_dim(self) -> int:
        """D, the size of ``features(x)``."""
        return self.channels[-1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**d)


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Classifier(nn.Module):
    """x [N, 1, 28, 28] in [-1, 1] -> logits [N, 10]; ``features(x)`` -> [N, D].

    Conv-BN-ReLU at 28x28, max-pool, two at 14x14, max-pool, one at 7x7, then a
    global average pool (the features) and one linear layer (the logits)."""

    def __init__(self, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.body = nn.Sequential(
            *_conv_bn_relu(config.in_channels, c1), nn.MaxPool2d(2),  # 28 -> 14
            *_conv_bn_relu(c1, c2), *_conv_bn_relu(c2, c2), nn.MaxPool2d(2),  # 14 -> 7
            *_conv_bn_relu(c2, c3),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(c3, config.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations [N, D] (D = config.channels[-1])."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True)
class Embedding:
    """What the classifier says about a set of images."""

    features: np.ndarray  # float64 [N, D], penultimate layer
    predictions: np.ndarray  # int64 [N], argmax of the logits
    probabilities: np.ndarray  # float64 [N, 10], softmax of the logits


@torch.inference_mode()
def embed(classifier: Classifier, images: Tensor | np.ndarray, batch_size: int = 500) -> Embedding:
    """Run ``classifier`` (in eval mode) over images [N, 1, 28, 28] in [-1, 1], batch by batch."""
    classifier.eval()
    device = next(classifier.parameters()).device
    images = torch.as_tensor(images, dtype=torch.float32)
    feats, probs = [], []
    for start in range(0, len(images), batch_size):
        f = classifier.features(images[start:start + batch_size].to(device))
        feats.append(f.double().cpu())
        probs.append(torch.softmax(classifier.head(f).double(), dim=1).cpu())
    features = torch.cat(feats).numpy() if feats else np.zeros((0, classifier.config.feature_dim))
    probabilities = torch.cat(probs).numpy() if probs else np.zeros((0, classifier.config.num_classes))
    return Embedding(features=features, predictions=probabilities.argmax(axis=1), probabilities=probabilities)


def save_classifier(model: Classifier, directory: str | Path) -> Path:
    """Write ``classifier.safetensors`` and ``classifier.json`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_state(model, directory / WEIGHTS_NAME)
    (directory / CONFIG_NAME).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    return directory / WEIGHTS_NAME


def read_classifier_config(path: Path) -> ClassifierConfig:
    """Parse the JSON config, with an error that names the file."""
    try:
        return ClassifierConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise WeightsError(f"classifier config not found: {path}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"classifier config {path} is invalid: {e}") from None


def load_classifier(directory: str | Path = PRETRAINED_DIR, device: str | torch.device = "cpu") -> Classifier:
    """The shipped classifier from ``directory`` (``pretrained/`` by default), in eval mode on ``device``.
    Raises WeightsError naming the file if it is missing, truncated or does not fit the network."""
    directory = Path(directory)
    config = read_classifier_config(directory / CONFIG_NAME)
    weights_path = directory / WEIGHTS_NAME
    model = Classifier(config)
    load_matching_state(model, load_state(weights_path, "classifier"), weights_path, directory / CONFIG_NAME,
                        "classifier")
    return model.to(device).eval()
