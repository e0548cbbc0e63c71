"""What the posterior page computes for one (digit, t, seed) and how it draws it. The math is
diffusion_core.process.posterior's (Ho et al. 2020, eqs. 6-7, 10-12, 15); here it is only run on one digit, cached,
and turned into pictures and numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from diffusion_core.data.images import image_to_tensor, unit_to_uint8
from diffusion_core.process.elbo import normal_kl, posterior_kl_from_eps
from diffusion_core.process.forward import q_sample
from diffusion_core.process.posterior import (
    eps_from_mean,
    mean_from_eps,
    model_variance,
    p_mean_variance,
    q_posterior_mean_variance,
    x0_from_mean,
)
from diffusion_core.process.schedules import Schedule
from diffusion_core.samplers import DdpmVariance
from ui import charts
from ui.model import SharedDenoiser

N_DRAWS = 4  # draws of x_{t-1} ~ q(x_{t-1} | x_t, x_0) shown
MARK_COLOR = (214, 39, 40)  # the chosen pixel's outline (charts.PALETTE[1])


@dataclass(frozen=True)
class PosteriorPictures:
    """q(x_{t-1} | x_t, x_0) on one digit; float64 arrays [28, 28] in the model's [-1, 1] scale."""

    t: int
    x0: np.ndarray  # the digit
    eps: np.ndarray  # the noise that made x_t (seed)
    x_t: np.ndarray  # sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4)
    mu_tilde: np.ndarray  # posterior mean (eq. 7)
    beta_tilde: float  # posterior variance (eq. 7)
    draws: np.ndarray  # [N_DRAWS, 28, 28]: mu_tilde + sqrt(beta_tilde) z
    mu_tilde_eq10: np.ndarray  # mu~_t from the true eps (eq. 10): the same as mu_tilde


@dataclass(frozen=True)
class NetworkStep:
    """The network's p_theta(x_{t-1} | x_t) on the same x_t; float64 arrays [28, 28]."""

    eps_hat: np.ndarray  # eps_theta(x_t, t)
    x0_hat: np.ndarray  # eq. 15, not clipped
    mu_theta: np.ndarray  # mu~_t(x_t, x0_hat) (eqs. 7, 15)
    mu_eq11: np.ndarray  # 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps_hat) (eq. 11)
    eps_back: np.ndarray  # eps recovered from mu_theta (eq. 11 solved for eps)
    x0_back: np.ndarray  # x_0 recovered from mu_theta (eq. 7 solved for x_0)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(torch.float64).cpu().numpy().reshape(x.shape[-2:] if x.shape[0] == 1 else (x.shape[0], *x.shape[-2:]))


@st.cache_data(max_entries=512, show_spinner=False)
def posterior_pictures(digit: np.ndarray, t: int, seed: int, _schedule: Schedule, schedule_key: str) -> PosteriorPictures:
    """x_0, x_t, mu~_t and a few draws of x_{t-1} for one digit (uint8 [28, 28]); the noise comes from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    x0 = image_to_tensor(digit).to(torch.float64)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    z = torch.randn((N_DRAWS, *x0.shape[1:]), generator=g, dtype=torch.float64)
    x_t = q_sample(x0, t, eps, _schedule)
    mu, var = q_posterior_mean_variance(x0, x_t, t, _schedule)
    draws = mu + var.sqrt() * z
    return PosteriorPictures(t=t, x0=_np(x0), eps=_np(eps), x_t=_np(x_t), mu_tilde=_np(mu), beta_tilde=float(var.flatten()[0]),
                             draws=_np(draws), mu_tilde_eq10=_np(mean_from_eps(x_t, eps, t, _schedule)))


@st.cache_data(max_entries=512, show_spinner=False)
def network_step(digit: np.ndarray, label: int, t: int, seed: int, _shared: SharedDenoiser, device: str) -> NetworkStep:
    """One network call on the x_t of ``posterior_pictures`` (same seed), conditional on ``label`` (-1: none), s = 1."""
    model, schedule = _shared.model, _shared.model.schedule
    q = posterior_pictures(digit, t, seed, schedule, schedule_key(schedule))
    x_t = torch.from_numpy(q.x_t)[None, None]
    labels = torch.tensor([label], device=_shared.device)

    def eps_fn(x: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        with _shared.lock, torch.inference_mode():
            return model(x.to(_shared.device, torch.float32), tt.to(_shared.device), labels).to("cpu", torch.float64)

    p = p_mean_variance(eps_fn, x_t, t, schedule)
    return NetworkStep(eps_hat=_np(p.eps_hat), x0_hat=_np(p.x0_hat), mu_theta=_np(p.mean),
                       mu_eq11=_np(mean_from_eps(x_t, p.eps_hat, t, schedule)),
                       eps_back=_np(eps_from_mean(x_t, p.mean, t, schedule)),
                       x0_back=_np(x0_from_mean(x_t, p.mean, t, schedule)))


def draws_rms(q: PosteriorPictures) -> float:
    """Root-mean-square distance of the draws of x_{t-1} from mu~_t over all their pixels: an estimate of sqrt(beta~_t)."""
    return float(np.sqrt(np.mean((q.draws - q.mu_tilde) ** 2)))


def schedule_key(schedule: Schedule) -> str:
    return f"{schedule.kind}-{schedule.T}"


@dataclass(frozen=True)
class KlNumbers:
    """KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) two ways, for t >= 2."""

    pixel_nats: float  # the chosen pixel's 1-D KL
    direct_bpd: float  # normal_kl summed over the pixels, / (D ln 2)
    eq12_bpd: float  # C + weight ||eps - eps_hat||^2 (eq. 12), / (D ln 2)


def kl_numbers(q: PosteriorPictures, net: NetworkStep, schedule: Schedule, variance: DdpmVariance,
               row: int, col: int) -> KlNumbers | None:
    """None at t = 1, where q is a point mass (beta~_1 = 0) and the bound uses the decoder L_0 instead."""
    if q.t < 2:
        return None
    sigma2 = model_variance(schedule, q.t, variance)
    kl = normal_kl(torch.from_numpy(q.mu_tilde), q.beta_tilde, torch.from_numpy(net.mu_theta), sigma2)
    dims_ln2 = q.x0.size * math.log(2)
    eq12 = posterior_kl_from_eps(torch.from_numpy(q.eps)[None], torch.from_numpy(net.eps_hat)[None], q.t, schedule, variance)
    return KlNumbers(pixel_nats=float(kl[row, col]), direct_bpd=float(kl.sum()) / dims_ln2, eq12_bpd=float(eq12[0]) / dims_ln2)


# ------------------------------------------------------------------ pictures
def marked(x: np.ndarray, row: int | None = None, col: int | None = None, side: int = 224) -> np.ndarray:
    """A [-1, 1] picture as enlarged uint8 RGB (crisp pixels), the pixel (row, col) outlined when given."""
    image = charts.enlarge(unit_to_uint8(x), side)
    rgb = np.repeat(image[:, :, None], 3, axis=2)
    if row is not None and col is not None:
        f = image.shape[0] // x.shape[0]
        r0, c0, w = row * f, col * f, max(2, f // 4)
        for r, c in ((slice(r0, r0 + f), slice(c0, c0 + w)), (slice(r0, r0 + f), slice(c0 + f - w, c0 + f)),
                     (slice(r0, r0 + w), slice(c0, c0 + f)), (slice(r0 + f - w, r0 + f), slice(c0, c0 + f))):
            rgb[r, c] = MARK_COLOR
    return rgb


def difference_picture(d: np.ndarray) -> tuple[np.ndarray, float]:
    """d / max|d| on the grey scale (mid-grey = 0) and that max, the scale of the picture."""
    scale = float(np.abs(d).max())
    return (d / scale if scale > 0 else d), scale


def draws_grid(draws: np.ndarray, pad: int = 1) -> np.ndarray:
    """The draws [K, 28, 28] side by side in two rows, white gaps, in [-1, 1]."""
    k, h, w = draws.shape
    cols = math.ceil(k / 2)
    out = np.ones((2 * h + pad, cols * w + (cols - 1) * pad))
    for i, d in enumerate(draws):
        r, c = divmod(i, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = d
    return out


def density_grid(means: list[float], stds: list[float], n: int = 400) -> np.ndarray:
    """Abscissae covering every mean +- 5 std, denser around each mean (the narrower peak stays resolved)."""
    lo = min(m - 5 * s for m, s in zip(means, stds))
    hi = max(m + 5 * s for m, s in zip(means, stds))
    parts = [np.linspace(lo, hi, n)] + [np.linspace(m - 5 * s, m + 5 * s, n) for m, s in zip(means, stds) if s > 0]
    return np.unique(np.concatenate(parts))
