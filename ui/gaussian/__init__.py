"""Page 1 (the Gaussian): its figures."""
