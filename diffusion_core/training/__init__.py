"""The training scripts: the MNIST denoiser (``python -m diffusion_core.training.denoiser``) and the evaluation classifier."""
