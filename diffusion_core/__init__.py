"""The math and the models of the course, importable without Streamlit, in wings by concept:

- ``process``: the probability path (schedules, the forward process, the posterior, the bound);
- ``samplers``: the reverse process, a file per algorithm;
- ``models``: the networks (UNet denoiser, classifier), their weights, devices and quality metrics;
- ``training``: the training scripts (``python -m diffusion_core.training.denoiser``);
- ``data``: MNIST, images, the safe upload loader, the bundled samples;
- ``toy2d``: the 2-D data sets, their exact denoiser, the MLP and its training;
- ``exercises``: the check-yourself exercises.

The names a user calls most are here:

    from diffusion_core import load_denoiser, make_schedule, q_sample, sample, generate
"""

from .models.weights import WeightsError, load_denoiser
from .process.forward import q_sample
from .process.schedules import make_schedule
from .samplers import DEFAULT_GUIDANCE, generate, sample

__all__ = ["DEFAULT_GUIDANCE", "WeightsError", "generate", "load_denoiser", "make_schedule", "q_sample", "sample"]
