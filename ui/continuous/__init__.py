"""The continuous-time page (pages/11_Continuous_time.py), by section: the chain as an SDE (``steps``), three
dynamics in 2-D (``dynamics``), the network's SDE and ODE and its ODE likelihood on MNIST (``mnist``), the 2-D
likelihood checks (``likelihood``)."""
