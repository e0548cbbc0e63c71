"""The class-conditional network sampled in continuous time, at a given number of network calls: the reverse SDE
by Euler-Maruyama, the same with the Langevin corrector (predictor-corrector, Song et al. 2021, algorithm 2), or
the probability-flow ODE by Heun (samplers/sde.py, samplers/flow.py), all on the VP-SDE path where
``process.sde.network_ode`` puts the network, from t = 1 down to its t_start, on equal steps in t.

Calls per run (a guided call batches its two passes as one, as everywhere in the project):
"em" K steps, K calls; "pc" K steps of predictor + one corrector step, 2K calls; "ode" K Heun steps, 2K calls
(none of them ends at t = 0, so Heun's last step is not shortened). So ``calls`` must be even for "pc" and "ode".
The result is the state at t_start (sigma = 0.0064 of noise left, below half a grey level) clipped to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from ..models.unet import NULL_LABEL
from ..process.sde import network_ode, path_eps_fn, pf_ode_drift
from .flow import flow_ode, flow_times
from .guidance import DEFAULT_GUIDANCE, guided_eps_fn
from .sde import LangevinCorrector, reverse_sde

ContinuousMethod = Literal["em", "pc", "ode"]
CONTINUOUS_METHODS: tuple[str, ...] = get_args(ContinuousMethod)
Progress = Callable[[int, int], None]  # progress(calls done, calls in all)


def steps_for(method: ContinuousMethod, calls: int) -> int:
    """Steps of ``method`` that spend ``calls`` network calls (module docstring)."""
    if method not in CONTINUOUS_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {CONTINUOUS_METHODS}")
    per_step = 1 if method == "em" else 2
    if calls < per_step or calls % per_step:
        raise ValueError(f"{method} spends {per_step} call(s) per step: {calls} calls do not fit")
    return calls // per_step


def sample_continuous(model: nn.Module, labels: Tensor | list[int], *, method: ContinuousMethod, calls: int,
                      guidance: float = DEFAULT_GUIDANCE, generator: torch.Generator | None = None,
                      x_start: Tensor | None = None, progress: Progress | None = None) -> Tensor:
    """Digits for ``labels`` (0-9, or -1 for none) by ``method`` with ``calls`` network calls, from x_1 ~ N(0, I)
    drawn with ``generator`` (or ``x_start``); the SDE's noise comes from the same generator. [N, 1, 28, 28] in [-1, 1]."""
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if len(labels) == 0 or bool(((labels < NULL_LABEL) | (labels > 9)).any()):
        raise ValueError("labels must hold digits 0-9 or -1 (no label)")
    steps = steps_for(method, calls)
    schedule = model.schedule
    ode = network_ode(schedule)
    x = x_start if x_start is not None else torch.randn((len(labels), 1, 28, 28), generator=generator)
    x = x.float()
    eps_fn = path_eps_fn(guided_eps_fn(model, labels, guidance), schedule, ode.path)
    times = flow_times(steps, ode.t_end, ode.t_start)
    with torch.inference_mode():
        if method == "ode":
            for s in flow_ode(pf_ode_drift(eps_fn, ode.path), x, times, method="heun"):
                x = s.x_next
                if progress is not None:
                    progress(2 * (s.index + 1), calls)
        else:
            corrector = LangevinCorrector() if method == "pc" else None
            for s in reverse_sde(eps_fn, x, ode.path, times, generator=generator, corrector=corrector):
                x = s.x_next
                if progress is not None:
                    progress(s.calls, calls)
    return x.clamp(-1, 1)
