"""The data: the MNIST reader, image conversions, the safe upload loader and the bundled sample pictures."""
