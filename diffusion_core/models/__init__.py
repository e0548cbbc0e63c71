"""The networks and their files: the UNet denoiser, the evaluation classifier, weight loading, devices, quality metrics."""
