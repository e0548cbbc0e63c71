"""The exact marginal p_t of a finite data set carried along a Gaussian path, in continuous time: its log density,
its score, its noise prediction and the terms of its Fokker-Planck equation.

With x_0 uniform over the rows x_1..x_M of ``data`` and x_t = alpha(t) x_0 + sigma(t) eps,

    p_t(x) = (1 / M) sum_i N(x; alpha x_i, sigma^2 I),

a mixture of M Gaussians (undefined at t = 0, where it is M point masses). Its score is
grad log p_t(x) = (alpha E[x_0 | x] - x) / sigma^2, the posterior weights w_i = softmax_i(-|x - alpha x_i|^2 / 2 sigma^2)
(Bayes); toy2d.exact computes the same denoiser for a discrete schedule with this module's ``posterior_mean``.
Everything is float64 and differentiable in x (autograd checks the score and the divergence against it).
Shapes: x [N, 2] (any dimension d works), data [M, d], t a number in (0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..process.paths import GaussianPath, as_time
from ..process.sde import PathEpsFn, diffusion_squared, drift_coefficient

CHUNK_ELEMENTS = 2**20  # query-data pairs per chunk: 8 MB per float64 [rows, M] matrix


def _coefficients(t: Tensor | float, path: GaussianPath) -> tuple[Tensor, Tensor]:
    t = as_time(t)
    if t.ndim != 0:
        raise ValueError("t must be one number in (0, 1]")
    if float(t) == 0:
        raise ValueError("p_t is undefined at t = 0: the data themselves are point masses (pick t > 0)")
    return path.alpha(t), path.sigma(t)


def _check(x: Tensor, data: Tensor) -> None:
    if x.ndim != 2 or data.ndim != 2 or x.shape[1] != data.shape[1] or len(data) == 0:
        raise ValueError(f"need x [N, d] and data [M, d] with M >= 1, got {tuple(x.shape)} and {tuple(data.shape)}")


def _logits(x: Tensor, alpha: Tensor, sigma: Tensor, data: Tensor, *, full: bool = True) -> Tensor:
    """-|x - alpha x_i|^2 / (2 sigma^2) for every row and data point: [rows, M]. Without ``full`` the term
    -|x|^2 / (2 sigma^2), the same for every i, is left out: the softmax over i does not change, and far queries
    keep their precision (no cancellation of a huge |x|^2)."""
    cross = 2 * alpha * (x @ data.T) - alpha**2 * (data**2).sum(1)
    if not full:
        return cross / (2 * sigma**2)
    return -((x**2).sum(1, keepdim=True) - cross).clamp(min=0) / (2 * sigma**2)


def posterior_mean(x: Tensor, alpha: Tensor | float, sigma: Tensor | float, data: Tensor, *,
                   chunk_elements: int = CHUNK_ELEMENTS) -> Tensor:
    """E[x_0 | x_t = x] = sum_i w_i x_i, w = softmax_i(-|x - alpha x_i|^2 / (2 sigma^2)), for x [N, d]; alpha and
    sigma numbers or one per row ([N] or [N, 1]). In chunks of rows (about ``chunk_elements`` query-data pairs
    each) so that memory stays bounded for any N and M; the softmax subtracts its largest logit. float64."""
    x, d = x.double(), data.double()
    alpha = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1, 1).expand(len(x), 1)
    sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1).expand(len(x), 1)
    rows = max(1, chunk_elements // len(d))
    parts = []
    for i in range(0, len(x), rows):
        logits = _logits(x[i:i + rows], alpha[i:i + rows], sigma[i:i + rows], d, full=False)
        parts.append(torch.softmax(logits, dim=1) @ d)
    return torch.cat(parts) if parts else x.new_zeros((0, d.shape[1]))


def marginal_log_density(x: Tensor, t: Tensor | float, data: Tensor, path: GaussianPath) -> Tensor:
    """log p_t(x) = log (1/M) sum_i N(x; alpha x_i, sigma^2 I), exact, for x [N, d]: [N] float64 nats.
    Raises ValueError at t = 0, where p_0 has no density."""
    _check(x, data)
    alpha, sigma = _coefficients(t, path)
    x, d = x.double(), data.double()
    dim, rows = x.shape[1], max(1, CHUNK_ELEMENTS // len(d))
    log_norm = -math.log(len(d)) - 0.5 * dim * torch.log(2 * math.pi * sigma**2)
    parts = [torch.logsumexp(_logits(x[i:i + rows], alpha, sigma, d), dim=1) for i in range(0, len(x), rows)]
    return (torch.cat(parts) if parts else x.new_zeros(0)) + log_norm


def marginal_score(x: Tensor, t: Tensor | float, data: Tensor, path: GaussianPath) -> Tensor:
    """grad log p_t(x) = (alpha E[x_0 | x] - x) / sigma^2, exact: [N, d] float64. At t = k / T of
    ``paths.from_schedule(schedule)`` it is toy2d.optimal_score(x, k, data, schedule)."""
    _check(x, data)
    alpha, sigma = _coefficients(t, path)
    return (alpha * posterior_mean(x, alpha, sigma, data) - x.double()) / sigma**2


def marginal_eps_fn(data: Tensor, path: GaussianPath) -> PathEpsFn:
    """The exact noise prediction E[eps | x_t] = -sigma(t) grad log p_t as a PathEpsFn (t float64 [N]: every row at
    one time), for process.sde and process.likelihood. Returns x_t's dtype."""
    def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        if not bool((t == t[0]).all()):
            raise ValueError("the exact 2-D predictor takes one time for every row")
        sigma = path.sigma(t[0])
        return (-sigma * marginal_score(x_t, t[0], data, path)).to(x_t.dtype)
    return eps_fn


def sample_marginal(data: Tensor, t: float, path: GaussianPath, n: int, generator: torch.Generator) -> Tensor:
    """n fresh draws of p_t: x_i picked uniformly, then alpha x_i + sigma z. float64 [n, d]."""
    pick = torch.randint(0, len(data), (n,), generator=generator)
    z = torch.randn((n, data.shape[1]), generator=generator, dtype=torch.float64)
    return path.sample(data.double()[pick], t, z)


# ------------------------------------------------------------------ the Fokker-Planck equation
@dataclass(frozen=True)
class FokkerPlanck:
    """The terms of dp/dt = -div(f x p) + 1/2 g^2 Laplacian p at the points x [N, d], each [N] float64."""

    density: Tensor  # p_t(x)
    dp_dt: Tensor  # the left side
    transport: Tensor  # -div(f x p) = -f (d p + x . grad p)
    diffusion: Tensor  # 1/2 g^2 Laplacian p
    residual: Tensor  # dp_dt - transport - diffusion: 0 if f and g^2 belong to the path

    @property
    def relative_residual(self) -> float:
        """max |residual| / the largest of the three terms anywhere on the points."""
        return self.relative_residual_with(1.0)

    def relative_residual_with(self, g2_scale: float) -> float:
        """The relative residual had g^2 been multiplied by ``g2_scale`` (the diffusion term scales with it)."""
        diffusion = g2_scale * self.diffusion
        largest = max(float(v.abs().max()) for v in (self.dp_dt, self.transport, diffusion))
        residual = self.dp_dt - self.transport - diffusion
        return float(residual.abs().max()) / largest if largest > 0 else 0.0


def fokker_planck_terms(x: Tensor, t: float, data: Tensor, path: GaussianPath, *,
                        g2_scale: float = 1.0) -> FokkerPlanck:
    """Every term of the Fokker-Planck equation of the forward SDE (Risken 1989; Song et al. 2021, app. D.1) with
    the exact p_t, in closed form, component by component: for phi_i = N(x; m_i, sigma^2 I), m_i = alpha x_i,
    r = x - m_i,  grad phi_i = -r phi_i / sigma^2,  Laplacian phi_i = (|r|^2 / sigma^4 - d / sigma^2) phi_i,
    d phi_i / dt = (r . alpha' x_i / sigma^2 + |r|^2 sigma' / sigma^3 - d sigma' / sigma) phi_i.
    ``g2_scale`` multiplies g^2 (a wrong diffusion coefficient, to show that the check can fail)."""
    _check(x, data)
    alpha, sigma = _coefficients(t, path)
    d_alpha, d_sigma = path.d_alpha(t), path.d_sigma(t)
    f, g2 = drift_coefficient(path, t), g2_scale * diffusion_squared(path, t)
    x, dat = x.double(), data.double()
    n, dim = x.shape
    out = {k: torch.zeros(n, dtype=torch.float64) for k in ("p", "dp", "xgrad", "lap")}
    rows = max(1, CHUNK_ELEMENTS // len(dat))
    norm = (2 * math.pi * sigma**2) ** (-dim / 2) / len(dat)
    for i in range(0, n, rows):
        xi = x[i:i + rows]
        r = xi[:, None, :] - alpha * dat[None]  # [r, M, d]
        r2 = (r**2).sum(2)
        phi = norm * torch.exp(-r2 / (2 * sigma**2))  # [r, M]
        rate = (r * (d_alpha * dat[None])).sum(2) / sigma**2 + r2 * d_sigma / sigma**3 - dim * d_sigma / sigma
        grad = -(r * phi[..., None]).sum(1) / sigma**2  # [r, d]
        out["p"][i:i + rows] = phi.sum(1)
        out["dp"][i:i + rows] = (rate * phi).sum(1)
        out["xgrad"][i:i + rows] = (xi * grad).sum(1)
        out["lap"][i:i + rows] = ((r2 / sigma**4 - dim / sigma**2) * phi).sum(1)
    transport = -f * (dim * out["p"] + out["xgrad"])  # div(f x p) = f (d p + x . grad p)
    diffusion = 0.5 * g2 * out["lap"]
    return FokkerPlanck(density=out["p"], dp_dt=out["dp"], transport=transport, diffusion=diffusion,
                        residual=out["dp"] - transport - diffusion)
