"""Benchmarks of the denoiser: ``python -m bench.run`` (see run.py)."""
