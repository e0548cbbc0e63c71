"""The math and the model of the course, importable without Streamlit.

    from diffusion_core import load_denoiser, sample, generate
"""

from .samplers import DEFAULT_GUIDANCE, generate, sample
from .weights import WeightsError, load_denoiser

__all__ = ["DEFAULT_GUIDANCE", "WeightsError", "generate", "load_denoiser", "sample"]
