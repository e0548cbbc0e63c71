"""The ODE likelihood of a discrete-time noise network on 8-bit images, in bits per dimension, two ways.

The network eps_theta(x_t, t) of a schedule with t = 1..T is seen in continuous time on the VP-SDE path of
Song et al. (2021) (paths.vp_linear, beta from 0.1 to 20) at equal SNR (samplers.flow.eps_fn_on_path). Its
PF-ODE runs from t_start, the time whose SNR is the schedule's at t = 1 (the least noise the network was trained
at: sigma = sqrt(1 - abar_1)), to t_end = 1, where the prior N(0, sigma(1)^2 I) stands in for p_1 (alpha(1) =
0.0066 is left out). Any VP path gives the same ODE up to a change of time, so the same likelihood.

1. ``dequantised_bpd``, Song et al. (2021)'s recipe: x = x_0 + (u - 1/2) / 127.5, u ~ U[0, 1)^D, is taken as the
   state at t_start; bpd = -log p_{t_start}(x) / (D ln 2) + log2 127.5 (likelihood.bits_per_dim). An upper bound
   on the NLL of the discrete model "ODE, then round to the bin" (Jensen over u).
2. ``ode_decoder_bound``, the bound of page 6 with the ODE in place of the chain's steps t >= 2: for x_1 ~ q(x_1 | x_0),
   -log P(x_0) <= E_q[-log p_ODE(x_1) + log q(x_1 | x_0) - log p_theta(x_0 | x_1)], the last term Ho et al.'s
   discretised decoder (eq. 13, elbo.terms_nats at t = 1). An upper bound on the NLL of the model "x_1 from the
   ODE, x_0 from the decoder"; one draw of x_1 per call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from ..samplers import EpsFn
from ..samplers.ode_solvers import DormandPrince, Progress, Solver
from . import elbo
from .likelihood import SCALE, bits_per_dim, dequantize, gaussian_log_density, ode_likelihood
from .schedules import Schedule
from .sde import network_ode, path_eps_fn

LN2 = math.log(2.0)
PAGE_SOLVER = DormandPrince(rtol=1e-3, atol=1e-3)  # a digit in a few seconds; the benchmark uses 1e-5 (Song et al.)
BENCH_SOLVER = DormandPrince(rtol=1e-5, atol=1e-5)


@dataclass(frozen=True)
class ImageLikelihood:
    """Bits per dimension of each image [N], with the parts and the cost."""

    bpd: Tensor  # [N] the estimate
    ode_nats: Tensor  # [N] log p_{t_start} of the ODE's starting point, nats
    prior_nats: Tensor  # [N] log N(z; 0, sigma(1)^2 I) of its latent code z
    latent_sq: Tensor  # [N] |z|^2 / D (about 1 for a typical point of the prior)
    decoder_bpd: Tensor | None  # [N] L_0 (ode_decoder_bound only)
    nfe: int
    seconds: float


def dequantisation_floor(sigma: float) -> float:
    """The bits/dim of recipe 1 for a pixel whose value the model knows for sure (p_{t_start} = N(alpha k, sigma^2)
    around it): log2 127.5 + E_u[-log N(u; 0, sigma^2)] / ln 2 with u uniform on +-1/255,
    = log2 127.5 + (1/2 ln(2 pi sigma^2) + (1/255)^2 / (6 sigma^2)) / ln 2. No model can do better on such a pixel;
    at sigma = sqrt(1 - abar_1) of the shipped cosine schedule it is 1.13 bits."""
    half = 0.5 / SCALE
    return math.log2(SCALE) + (0.5 * math.log(2 * math.pi * sigma**2) + half**2 / (6 * sigma**2)) / LN2


def dequantised_bpd(eps_fn: EpsFn, x0: Tensor, schedule: Schedule, *, solver: Solver = BENCH_SOLVER,
                    hutchinson: int | None = 1, generator: torch.Generator | None = None,
                    progress: Progress | None = None) -> ImageLikelihood:
    """Recipe 1 (Song et al. 2021): bits/dim of x0 [N, C, H, W] on the 8-bit grid, with u and the Hutchinson
    probes drawn from ``generator`` (in that order)."""
    ode = network_ode(schedule)
    dims = x0[0].numel()
    u = torch.rand(x0.shape, generator=generator, dtype=torch.float64)
    x = dequantize(x0, u)
    began = time.perf_counter()
    out = ode_likelihood(path_eps_fn(eps_fn, schedule, ode.path), x, ode.path, t_start=ode.t_start, t_end=ode.t_end,
                         solver=solver, hutchinson=hutchinson, generator=generator, progress=progress)
    return ImageLikelihood(bpd=bits_per_dim(out.log_p, dims), ode_nats=out.log_p, prior_nats=out.prior_log_p,
                           latent_sq=out.z.reshape(len(x0), -1).pow(2).mean(1), decoder_bpd=None, nfe=out.nfe,
                           seconds=time.perf_counter() - began)


def ode_decoder_bound(eps_fn: EpsFn, x0: Tensor, schedule: Schedule, *, solver: Solver = BENCH_SOLVER,
                      hutchinson: int | None = 1, generator: torch.Generator | None = None,
                      progress: Progress | None = None) -> ImageLikelihood:
    """Recipe 2: E_q[-log p_ODE(x_1) + log q(x_1 | x_0) + L_0(x_0 | x_1)] / (D ln 2) for one draw x_1 =
    sqrt(abar_1) x_0 + sqrt(1 - abar_1) eps (eps, then the probes, from ``generator``). eps_fn(x_t, t) is the
    network at the schedule's integer t (for the decoder at t = 1 and, through the equal-SNR map, the ODE)."""
    ode = network_ode(schedule)
    dims = x0[0].numel()
    a1, s1 = float(schedule.sqrt_alpha_bars[1]), float(schedule.sqrt_one_minus_alpha_bars[1])
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    x1 = a1 * x0.double() + s1 * noise  # = x_{t_start} of the path: the same alpha and sigma (equal SNR, VP)
    began = time.perf_counter()
    out = ode_likelihood(path_eps_fn(eps_fn, schedule, ode.path), x1, ode.path, t_start=ode.t_start, t_end=ode.t_end,
                         solver=solver, hutchinson=hutchinson, generator=generator, progress=progress)
    log_q = gaussian_log_density(s1 * noise, s1)  # log N(x_1; sqrt(abar_1) x_0, (1 - abar_1) I)
    with torch.no_grad():
        ones = torch.ones(len(x0), dtype=torch.long)
        eps_hat = eps_fn(x1.to(x0.dtype), ones).double()
    decoder = elbo.terms_nats(x0, ones, noise, eps_hat, schedule, "beta_tilde")  # L_0 (sigma_1^2 = beta~_2 either way)
    nats = -out.log_p + log_q + decoder
    return ImageLikelihood(bpd=nats / (dims * LN2), ode_nats=out.log_p, prior_nats=out.prior_log_p,
                           latent_sq=out.z.reshape(len(x0), -1).pow(2).mean(1), decoder_bpd=decoder / (dims * LN2),
                           nfe=out.nfe + 1, seconds=time.perf_counter() - began)
