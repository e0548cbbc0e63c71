"""Page 10's 2-D laboratory: a bounded store of trained pairs (the velocity MLP and the eps-MLP of the
playground on the same points), and the cached quantities the page draws from them: the exact pair and marginal
paths, E Var(target | x_t) over t, the fields at t, the losses at t, samples at N steps, energy against calls.
The math lives in ``diffusion_core.toy2d``; the plotly figures in ``ui.flow.view`` and ``ui.playground.lab``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from diffusion_core import toy2d
from diffusion_core.process.paths import rectified_flow
from diffusion_core.process.schedules import Schedule
from diffusion_core.samplers.flow import flow_times, integrate_flow
from diffusion_core.toy2d.flow_measure import energy_by_calls, flow_paths, loss_gap, variance_curve
from ui.playground.lab import GRID, LIMIT
from ui.shared_store import SharedStore, shared_store

PATH = rectified_flow()  # the 2-D flows run on the rectified flow (alpha = 1 - t, sigma = t)
N_PAIRS = 40  # pairs (x0, eps) drawn as straight lines and as marginal trajectories
PATH_STEPS = 100  # Euler steps of the exact marginal trajectories: fine enough to look like the ODE's solution
N_SAMPLES = 500  # samples of each sampler at N steps, and of the energy-by-calls chart
VARIANCE_TIMES = 40  # times of the E Var(target | x_t) curve
EXACT_BUDGET = 2e7  # query-point x data-point x step products of one exact Euler run: about 0.3 s of one core
CLOUD = 300  # points of x_t under the fields, and training points behind the samples: fewer points, a faster browser
BACKGROUND = CLOUD
CALL_STEPS = {"euler": (2, 3, 4, 6, 8, 12, 16, 24, 32, 50), "heun": (2, 3, 4, 5, 6, 8, 12, 16, 25)}
MAX_LABS = 12


@dataclass
class FlowLab:
    """One setting's training points, the two trained networks, the fixed noises, and lazily computed extras."""

    key: tuple  # (data id, points, seed, steps, width, time sampling)
    data: torch.Tensor  # [M, 2]
    flow: toy2d.FlowTrainResult  # the velocity MLP (conditional flow matching)
    eps: toy2d.TrainResult  # the eps-MLP of the playground (L_simple), at the same steps and width
    schedule: Schedule  # the eps-MLP's discrete schedule
    x1: torch.Tensor  # N_SAMPLES starting points at t = 1, N(0, I)
    extras: dict = field(default_factory=dict)


def lab_store() -> SharedStore:
    return shared_store("flow", MAX_LABS)


@st.cache_data(max_entries=32, show_spinner=False)
def exact_paths(key: tuple, _data: torch.Tensor, seed: int) -> dict[str, np.ndarray]:
    """N_PAIRS pairs (x0, eps): their straight conditional paths (x0 to eps) and, from the same eps at t = 1, the
    trajectories of the exact marginal field by Euler over PATH_STEPS steps: [PATH_STEPS + 1, n, 2] each, x(1) first."""
    g = torch.Generator().manual_seed(seed + 7)
    d = _data.double()
    x0 = d[torch.randint(0, len(d), (N_PAIRS,), generator=g)]
    eps = torch.randn(N_PAIRS, 2, generator=g, dtype=torch.float64)
    times = flow_times(PATH_STEPS)
    straight = torch.stack([PATH.sample(x0, float(t), eps) for t in times])
    marginal = flow_paths(toy2d.exact_velocity_fn(d, PATH), eps, PATH_STEPS)
    return {"straight": straight.numpy(), "marginal": marginal.numpy()}


@st.cache_data(max_entries=32, show_spinner=False)
def variance_over_t(key: tuple, _data: torch.Tensor) -> dict[str, np.ndarray]:
    """E Var(target | x_t) at VARIANCE_TIMES times from 0.001 to 1, evenly spaced in log t, so that the fall to 0
    near t = 0 shows (toy2d.flow_measure.variance_curve)."""
    times = torch.logspace(-3, 0, VARIANCE_TIMES, dtype=torch.float64)
    n = max(100, min(600, int(3e6 / len(_data))))  # fewer draws of x_t for many points: 600 up to M = 5000
    return {"t": times.numpy(), "variance": variance_curve(_data, PATH, times, n=n).numpy()}


def exact_sample_count(points: int, steps: int) -> int:
    """How many of the N_SAMPLES starting points the exact field carries at ``steps`` steps: all of them up to
    EXACT_BUDGET products, fewer (at least 50) for many training points and many steps."""
    return max(50, min(N_SAMPLES, int(EXACT_BUDGET / (points * steps))))


@st.cache_data(max_entries=2000, show_spinner=False)
def fields_at(key: tuple, t: float, _lab: FlowLab) -> dict[str, np.ndarray]:
    """The exact and the learned velocity on the grid at t, and x_t of a few hundred training points."""
    grid = toy2d.grid(LIMIT, GRID)
    with toy2d.one_thread():
        exact = toy2d.optimal_velocity(grid, t, _lab.data, PATH)
        learned = toy2d.mlp_velocity_fn(_lab.flow.model)(grid, torch.full((len(grid),), t, dtype=torch.float64))
    shown = _lab.data[:CLOUD]
    cloud = PATH.sample(shown, t, _lab.x1[: len(shown)])
    return {"grid": grid.numpy(), "exact": exact.numpy(), "learned": learned.numpy(), "cloud": cloud.numpy()}


@st.cache_data(max_entries=2000, show_spinner=False)
def losses_at(key: tuple, t: float, _lab: FlowLab) -> dict[str, float]:
    """The trained field's conditional and marginal losses at t and E Var(target | x_t) (flow_measure.loss_gap)."""
    gap = loss_gap(toy2d.mlp_velocity_fn(_lab.flow.model), _lab.data, PATH, t, n=2000,
                   generator=torch.Generator().manual_seed(11))
    return gap.__dict__


@st.cache_data(max_entries=500, show_spinner=False)
def samples_at(key: tuple, steps: int, _lab: FlowLab) -> dict[str, np.ndarray | float]:
    """N_SAMPLES samples at ``steps`` steps from the same x1: the velocity MLP by Euler on the flow ODE, the eps-MLP
    by DDIM (eta = 0), the exact field by Euler; the energy distance of each to the training points."""
    with toy2d.one_thread():
        flow = integrate_flow(toy2d.mlp_velocity_fn(_lab.flow.model), _lab.x1, flow_times(steps))
        n_exact = exact_sample_count(len(_lab.data), steps)
        exact = integrate_flow(toy2d.exact_velocity_fn(_lab.data, PATH), _lab.x1[:n_exact].double(),
                               flow_times(steps)).float()
    ddim = toy2d.reverse_paths(toy2d.mlp_eps_fn(_lab.eps.model), _lab.x1, _lab.schedule, sampler="ddim", steps=steps)[-1]
    out: dict[str, np.ndarray | float] = {}
    for name, x in (("flow", flow), ("ddim", ddim), ("exact", exact)):
        out[name] = x.numpy()
        out[f"{name}_energy"] = toy2d.energy_distance(x, _lab.data)
    return out


@st.cache_data(max_entries=64, show_spinner=False)
def energy_curves(key: tuple, _lab: FlowLab) -> list[dict]:
    """Euler and Heun on the trained velocity MLP at CALL_STEPS: velocity calls against the energy distance of the
    N_SAMPLES end points to the training points."""
    points = energy_by_calls(toy2d.mlp_velocity_fn(_lab.flow.model), _lab.x1, _lab.data, CALL_STEPS)
    return [p.__dict__ for p in points]


@st.cache_data(max_entries=64, show_spinner=False)
def energy_floor(key: tuple, _data: torch.Tensor, _sample: torch.Tensor) -> float:
    """The energy distance of N_SAMPLES fresh points of the same distribution to the training points: what a
    perfect sampler scores at this sample size (around 0; it can come out slightly negative)."""
    return toy2d.energy_distance(_sample, _data)


def warm_in_background(key: tuple, lab: FlowLab, steps: tuple[int, ...], times: tuple[float, ...]) -> None:
    """Once per lab, in a background thread: the samples at every number of steps and the fields and losses at every
    t of the page's sliders (a few seconds of one core in all), so that a step of N or t only reads the caches;
    a value the thread has not reached yet is computed by the step itself, as before."""
    if lab.extras.setdefault("warming", False):
        return
    lab.extras["warming"] = True

    def work() -> None:
        for n in steps:
            samples_at(key, n, lab)
        for t in times:
            fields_at(key, t, lab)
            losses_at(key, t, lab)

    threading.Thread(target=work, name=f"flow-warm-{hash(key)}", daemon=True).start()
