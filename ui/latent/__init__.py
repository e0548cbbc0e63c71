"""The latent diffusion page's views and cached runs (pages/13_Latent_diffusion.py)."""
