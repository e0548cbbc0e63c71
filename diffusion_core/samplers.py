"""The reverse process: DDPM and DDIM steps, classifier-free guidance, and the sampling loop.

Each step goes from x_t to x_{t_prev} (t_prev < t; t_prev = t - 1 for the full
chain, or the previous element of a sub-sequence, Song et al. 2021, sec. 4.2).
For a sub-sequence the one-step quantities use abar only:
alpha = abar_t / abar_{t_prev}, beta = 1 - alpha; for t_prev = t - 1 these are
alpha_t and beta_t of Ho et al. (2020).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from .schedules import Schedule
from .unet import NULL_LABEL

Sampler = Literal["ddpm", "ddim"]
DdpmVariance = Literal["beta", "beta_tilde"]
EpsFn = Callable[[Tensor, Tensor], Tensor]  # eps_fn(x_t [N, ...], t LongTensor [N]) -> eps_hat, x_t's shape
DEFAULT_GUIDANCE = 1.5  # guidance scale s of sample(); see pretrained/MODEL_CARD.md for the sweep


@dataclass(frozen=True)
class StepOutput:
    """One reverse step x_t -> x_{t_prev}; tensors have x_t's shape."""

    x_prev: Tensor  # x_{t_prev} = mean + sigma z
    x0_hat: Tensor  # predicted clean image (Ho et al. 2020, eq. 15), clipped if asked
    eps: Tensor  # the noise prediction the step used (recomputed from x0_hat after clipping)
    mean: Tensor  # mean of p_theta(x_{t_prev} | x_t)
    noise: Tensor  # sigma z, the noise added
    sigma: float  # standard deviation of the added noise
    alpha: float  # abar_t / abar_{t_prev} (alpha_t for a single step)
    beta: float  # 1 - alpha


def predict_x0_from_eps(x_t: Tensor, eps: Tensor, alpha_bar_t: float | Tensor) -> Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (Ho et al. 2020, eq. 15).
    abar_t: a float, or a tensor that broadcasts against x_t (e.g. [N, 1, 1, 1], one t per image)."""
    sqrt = torch.sqrt if isinstance(alpha_bar_t, Tensor) else math.sqrt
    return (x_t - sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_bar_t)


def predict_eps_from_x0(x_t: Tensor, x0: Tensor, alpha_bar_t: float) -> Tensor:
    """eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t): eq. 4 solved for eps."""
    return (x_t - math.sqrt(alpha_bar_t) * x0) / math.sqrt(1 - alpha_bar_t)


def _check_pair(t: int, t_prev: int, schedule: Schedule) -> None:
    if not (0 <= t_prev < t <= schedule.T):
        raise ValueError(f"need 0 <= t_prev < t <= {schedule.T}, got t = {t}, t_prev = {t_prev}")


@dataclass(frozen=True)
class StepCoefficients:
    """The numbers in the formulas of one step x_t -> x_{t_prev} (t_prev = 0 on the last step): the
    steps below compute with them, and the reverse-process page prints them."""

    t: int  # current timestep
    t_prev: int  # timestep the step reaches
    alpha_bar_t: float  # abar_t
    alpha_bar_prev: float  # abar_{t_prev}
    sqrt_alpha_bar_t: float  # sqrt(abar_t): divides in x0_hat (Ho et al. 2020, eq. 15)
    sqrt_one_minus_alpha_bar_t: float  # sqrt(1 - abar_t): std of the noise in x_t (eq. 4)
    alpha: float  # abar_t / abar_{t_prev}: alpha_t for a single step
    beta: float  # 1 - alpha: beta_t for a single step
    sigma: float  # std of the noise the step adds
    ddpm_coef_xt: float  # 1 / sqrt(alpha), in front of x_t in eq. 11
    ddpm_coef_eps: float  # beta / sqrt(1 - abar_t), in front of eps_hat inside the bracket of eq. 11
    ddim_coef_x0: float  # sqrt(abar_{t_prev}), in front of x0_hat in Song et al. (2021), eq. 12
    ddim_coef_eps: float  # sqrt(1 - abar_{t_prev} - sigma^2), in front of eps_hat in eq. 12


def step_coefficients(schedule: Schedule, t: int, t_prev: int, sigma: float) -> StepCoefficients:
    """The coefficients of Ho et al. (2020), eqs. 11 and 15, and Song et al. (2021), eq. 12, for the
    step t -> t_prev, with alpha = abar_t / abar_{t_prev} (sec. 4.2 of Song et al. for strided
    steps); ``sigma`` is the one the step uses (``SampleStep.sigma``)."""
    _check_pair(t, t_prev, schedule)
    abar_t, abar_prev = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[t_prev])
    alpha = abar_t / abar_prev
    beta = 1 - alpha
    return StepCoefficients(
        t=t, t_prev=t_prev, alpha_bar_t=abar_t, alpha_bar_prev=abar_prev,
        sqrt_alpha_bar_t=math.sqrt(abar_t), sqrt_one_minus_alpha_bar_t=math.sqrt(1 - abar_t),
        alpha=alpha, beta=beta, sigma=sigma,
        ddpm_coef_xt=1 / math.sqrt(alpha), ddpm_coef_eps=beta / math.sqrt(1 - abar_t),
        ddim_coef_x0=math.sqrt(abar_prev), ddim_coef_eps=math.sqrt(max(1 - abar_prev - sigma**2, 0.0)),
    )


def _x0_and_eps(x_t: Tensor, eps_hat: Tensor, alpha_bar_t: float, clip: bool) -> tuple[Tensor, Tensor]:
    x0_hat = predict_x0_from_eps(x_t, eps_hat, alpha_bar_t)
    if not clip:
        return x0_hat, eps_hat
    x0_hat = x0_hat.clamp(-1, 1)
    return x0_hat, predict_eps_from_x0(x_t, x0_hat, alpha_bar_t)


def ddpm_step(
    x_t: Tensor, eps_hat: Tensor, t: int, t_prev: int, schedule: Schedule, *,
    variance: DdpmVariance = "beta_tilde", noise: Tensor | None = None, clip: bool = False,
) -> StepOutput:
    """Ancestral step of Ho et al. (2020), eq. 11 / algorithm 2:
    x_{t_prev} = 1/sqrt(alpha) (x_t - beta / sqrt(1 - abar_t) eps) + sigma z,
    sigma^2 = beta or beta~ = (1 - abar_{t_prev}) / (1 - abar_t) beta (sec. 3.2).
    No noise is added on the last step (t_prev = 0), as in algorithm 2."""
    _check_pair(t, t_prev, schedule)
    abar_t, abar_prev = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[t_prev])
    sigma = 0.0 if t_prev == 0 else ddpm_sigma(abar_t, abar_prev, variance)
    c = step_coefficients(schedule, t, t_prev, sigma)
    x0_hat, eps = _x0_and_eps(x_t, eps_hat, abar_t, clip)
    mean = (x_t - c.ddpm_coef_eps * eps) / math.sqrt(c.alpha)  # = ddpm_coef_xt (...), as the page prints it
    added = sigma * noise if (sigma > 0 and noise is not None) else torch.zeros_like(x_t)
    if sigma > 0 and noise is None:
        raise ValueError("ddpm_step needs noise when sigma > 0")
    return StepOutput(x_prev=mean + added, x0_hat=x0_hat, eps=eps, mean=mean, noise=added,
                      sigma=sigma, alpha=c.alpha, beta=c.beta)


def ddpm_sigma(alpha_bar_t: float, alpha_bar_prev: float, variance: DdpmVariance) -> float:
    """sigma with sigma^2 = beta or beta~ = (1 - abar_{t_prev}) / (1 - abar_t) beta, where
    beta = 1 - abar_t / abar_{t_prev} (Ho et al. 2020, sec. 3.2)."""
    beta = 1 - alpha_bar_t / alpha_bar_prev
    if variance == "beta":
        return math.sqrt(beta)
    if variance == "beta_tilde":
        return math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta)
    raise ValueError(f"unknown DDPM variance {variance!r}; expected 'beta' or 'beta_tilde'")


def ddim_sigma(alpha_bar_t: float, alpha_bar_prev: float, eta: float) -> float:
    """sigma = eta sqrt((1 - abar_{t_prev}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t_prev}) (Song et al. 2021, eq. 16)."""
    return eta * math.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) * math.sqrt(1 - alpha_bar_t / alpha_bar_prev)


def ddim_step(
    x_t: Tensor, eps_hat: Tensor, t: int, t_prev: int, schedule: Schedule, *,
    eta: float = 0.0, noise: Tensor | None = None, clip: bool = False,
) -> StepOutput:
    """Song et al. (2021), eq. 12:
    x_{t_prev} = sqrt(abar_{t_prev}) x0_hat + sqrt(1 - abar_{t_prev} - sigma^2) eps + sigma z,
    with sigma from eq. 16; eta = 0 is deterministic, eta = 1 over all T steps is DDPM with sigma^2 = beta~."""
    _check_pair(t, t_prev, schedule)
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    abar_t, abar_prev = float(schedule.alpha_bars[t]), float(schedule.alpha_bars[t_prev])
    sigma = ddim_sigma(abar_t, abar_prev, eta)
    c = step_coefficients(schedule, t, t_prev, sigma)
    x0_hat, eps = _x0_and_eps(x_t, eps_hat, abar_t, clip)
    mean = c.ddim_coef_x0 * x0_hat + c.ddim_coef_eps * eps
    if sigma > 0 and noise is None:
        raise ValueError("ddim_step needs noise when eta > 0")
    added = sigma * noise if sigma > 0 else torch.zeros_like(x_t)
    return StepOutput(x_prev=mean + added, x0_hat=x0_hat, eps=eps, mean=mean, noise=added,
                      sigma=sigma, alpha=c.alpha, beta=c.beta)


def timesteps(T: int, steps: int, t_start: int | None = None) -> list[int]:
    """Decreasing timesteps tau_S > ... > tau_1 >= 1 to visit, the last step going to x_0.

    Song et al. (2021), appendix D.2, linear sub-sequence tau_i = floor(c i), with
    c = t_start / S so that tau_S = t_start (T by default): the first step starts
    from exactly the x_T (or x_{t_start}) that was drawn. steps = t_start gives every t."""
    t_start = T if t_start is None else t_start
    if not 1 <= t_start <= T:
        raise ValueError(f"t_start must lie in 1..{T}, got {t_start}")
    if not 1 <= steps <= t_start:
        raise ValueError(f"steps must lie in 1..{t_start}, got {steps}")
    return [math.floor(i * t_start / steps) for i in range(steps, 0, -1)]


def guided_eps(model: nn.Module, x_t: Tensor, t: int | Tensor, labels: Tensor, guidance: float) -> Tensor:
    """eps = eps(x_t, none) + s (eps(x_t, y) - eps(x_t, none)) (Ho & Salimans 2022, eq. 6 in eps form).

    t: one timestep for every row, or a LongTensor [N] (one per row). s = 1 is the plain
    conditional model and s = 0 the unconditional one (one network pass each); otherwise
    both passes go through the network as one batch. Rows whose label is -1 are
    unconditional whatever s is."""
    n = x_t.shape[0]
    t_batch = t.to(x_t.device) if isinstance(t, Tensor) else torch.full((n,), t, dtype=torch.long, device=x_t.device)
    null = torch.full_like(labels, NULL_LABEL)
    if guidance == 0:
        return model(x_t, t_batch, null)
    if guidance == 1 or bool((labels == NULL_LABEL).all()):
        return model(x_t, t_batch, labels)
    eps_cond, eps_uncond = model(torch.cat([x_t, x_t]), torch.cat([t_batch, t_batch]), torch.cat([labels, null])).chunk(2)
    return eps_uncond + guidance * (eps_cond - eps_uncond)


def guided_eps_fn(model: nn.Module, labels: Tensor, guidance: float) -> EpsFn:
    """The network as ``eps_fn(x_t, t)`` (t a LongTensor [M]) for N images with ``labels`` [N], guided
    with scale s (``guided_eps``). x_t is cast to the network's dtype and device, eps_hat comes back in
    x_t's. M may be a multiple of N: rows are whole copies of the N images, row j is image j mod N (the
    layout of ``elbo.predict_noise``, which evaluates many t in one call)."""
    p = next(iter(model.parameters()), None)
    dtype, device = (p.dtype, p.device) if p is not None else (torch.float32, torch.device("cpu"))
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1).to(device)

    def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
        if x_t.shape[0] % len(labels):
            raise ValueError(f"{x_t.shape[0]} rows are not whole copies of the {len(labels)} labelled images")
        rows = labels.repeat(x_t.shape[0] // len(labels))
        return guided_eps(model, x_t.to(device, dtype), t.to(device), rows, guidance).to(x_t.device, x_t.dtype)

    return eps_fn


@dataclass(frozen=True)
class SampleStep:
    """What one step of the reverse process shows; tensors are [N, C, H, W] on the CPU."""

    index: int  # 0 for the first step
    t: int  # current timestep
    t_prev: int  # timestep reached by this step (0 at the end)
    x_t: Tensor  # input of the step
    eps_hat: Tensor  # guided noise prediction used by the step
    x0_hat: Tensor  # predicted clean image
    mean: Tensor  # mean of p_theta(x_{t_prev} | x_t)
    noise: Tensor  # sigma z added
    sigma: float  # its standard deviation
    alpha: float  # abar_t / abar_{t_prev}
    beta: float  # 1 - alpha
    x_prev: Tensor  # x_{t_prev}


def _model_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


class EpsReverseProcess:
    """The reverse process of any noise predictor, as a resumable stepper.

    ``eps_fn(x_t, t)`` takes x_t [N, ...] on ``device`` and t as a LongTensor [N] and returns
    eps_hat (the MNIST network with labels and guidance is one, a closed-form predictor or the 2-D
    MLP another). ``x_start`` is x_{t_start} (x_T by default), any shape [N, ...]. ``step()`` runs one
    step x_t -> x_{t_prev} and returns it as a SampleStep; a caller may stop between steps and go
    on later: the result is the same as one uninterrupted run. Noise is drawn on the CPU with
    ``generator`` so that results do not depend on the device."""

    def __init__(
        self,
        eps_fn: EpsFn,
        x_start: Tensor,
        schedule: Schedule,
        *,
        sampler: Sampler = "ddim",
        steps: int = 50,
        eta: float = 0.0,
        variance: DdpmVariance = "beta_tilde",
        generator: torch.Generator | None = None,
        t_start: int | None = None,
        clip: bool = True,
        device: torch.device | str = "cpu",
    ):
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"unknown sampler {sampler!r}; expected 'ddpm' or 'ddim'")
        self.eps_fn, self.schedule, self.sampler, self.eta = eps_fn, schedule, sampler, eta
        self.variance, self.generator, self.clip = variance, generator, clip
        self.device = torch.device(device)
        self.timesteps: list[int] = timesteps(schedule.T, steps, t_start)
        self.x = x_start.detach().float().cpu()
        self.position = 0  # index into timesteps of the next step

    @property
    def done(self) -> bool:
        """True once x_0 has been reached."""
        return self.position >= len(self.timesteps)

    @property
    def t(self) -> int:
        """The timestep of the current x (0 once done)."""
        return 0 if self.done else self.timesteps[self.position]

    @torch.inference_mode()
    def step(self) -> SampleStep:
        """One step from the current x_t to x_{t_prev}; x moves on to x_{t_prev}."""
        if self.done:
            raise RuntimeError("the reverse process has already reached x_0")
        index, seq, x = self.position, self.timesteps, self.x
        t = seq[index]
        t_prev = seq[index + 1] if index + 1 < len(seq) else 0
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=self.device)
        eps_hat = self.eps_fn(x.to(self.device), t_batch).float().cpu()
        z = torch.randn(x.shape, generator=self.generator) if t_prev > 0 else None
        if self.sampler == "ddpm":
            out = ddpm_step(x, eps_hat, t, t_prev, self.schedule, variance=self.variance, noise=z, clip=self.clip)
        else:
            out = ddim_step(x, eps_hat, t, t_prev, self.schedule, eta=self.eta,
                            noise=z if self.eta > 0 else None, clip=self.clip)
        self.x, self.position = out.x_prev, index + 1
        return SampleStep(index=index, t=t, t_prev=t_prev, x_t=x, eps_hat=out.eps, x0_hat=out.x0_hat,
                          mean=out.mean, noise=out.noise, sigma=out.sigma, alpha=out.alpha, beta=out.beta,
                          x_prev=out.x_prev)


def sample_eps(eps_fn: EpsFn, x_start: Tensor, schedule: Schedule, **kwargs) -> Iterator[SampleStep]:
    """Run ``EpsReverseProcess(eps_fn, x_start, schedule, **kwargs)`` to x_0, yielding every step."""
    process = EpsReverseProcess(eps_fn, x_start, schedule, **kwargs)
    while not process.done:
        yield process.step()


class ReverseProcess(EpsReverseProcess):
    """The class-conditional network's reverse process: ``EpsReverseProcess`` with
    eps_fn = the guided prediction of ``model`` for ``labels`` (``guided_eps``) and x_T ~ N(0, I)
    drawn here with ``generator`` (or ``x_start`` for SDEdit). Arguments are those of ``sample``."""

    def __init__(
        self,
        model: nn.Module,
        labels: Tensor | list[int],
        *,
        sampler: Sampler = "ddim",
        steps: int = 50,
        eta: float = 0.0,
        guidance: float = DEFAULT_GUIDANCE,
        variance: DdpmVariance = "beta_tilde",
        generator: torch.Generator | None = None,
        schedule: Schedule | None = None,
        x_start: Tensor | None = None,
        t_start: int | None = None,
        clip: bool = True,
        image_shape: tuple[int, int, int] = (1, 28, 28),
    ):
        schedule = schedule if schedule is not None else model.schedule
        if sampler not in ("ddpm", "ddim"):
            raise ValueError(f"unknown sampler {sampler!r}; expected 'ddpm' or 'ddim'")
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if len(labels) == 0:
            raise ValueError("labels must hold at least one entry")
        if bool(((labels < NULL_LABEL) | (labels > 9)).any()):
            raise ValueError("labels must be digits 0-9 or -1 (no label)")
        n = len(labels)
        timesteps(schedule.T, steps, t_start)  # check steps and t_start before drawing x_T
        if x_start is None:
            x_start = torch.randn((n, *image_shape), generator=generator)  # x_T ~ N(0, I)
        elif x_start.shape[0] != n:
            raise ValueError(f"x_start holds {x_start.shape[0]} images for {n} labels")
        device = _model_device(model)
        labels_dev = labels.to(device)
        self.model, self.guidance, self.labels = model, guidance, labels

        def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
            return guided_eps(model, x_t, int(t[0]), labels_dev, guidance)

        super().__init__(eps_fn, x_start, schedule, sampler=sampler, steps=steps, eta=eta, variance=variance,
                         generator=generator, t_start=t_start, clip=clip, device=device)


@torch.inference_mode()
def sample(
    model: nn.Module,
    labels: Tensor | list[int],
    *,
    sampler: Sampler = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    guidance: float = DEFAULT_GUIDANCE,
    variance: DdpmVariance = "beta_tilde",
    generator: torch.Generator | None = None,
    schedule: Schedule | None = None,
    x_start: Tensor | None = None,
    t_start: int | None = None,
    clip: bool = True,
    image_shape: tuple[int, int, int] = (1, 28, 28),
) -> Iterator[SampleStep]:
    """Run the reverse process, yielding every step as it happens.

    labels: one entry per sample, digits 0-9 or -1 for "no label". sampler:
    "ddpm" (Ho et al. 2020, eq. 11, sigma^2 = ``variance``) or "ddim" (Song et
    al. 2021, eq. 12, with ``eta``); ``steps`` timesteps from ``timesteps``.
    Starts from x_T ~ N(0, I) drawn with ``generator`` or, for SDEdit (Meng et
    al. 2022), from ``x_start`` taken to be x_{t_start}. ``clip`` clips x0_hat to
    [-1, 1]. The schedule defaults to ``model.schedule``. Noise is drawn on the
    CPU with ``generator`` so that results do not depend on the device.
    A thin loop over ``ReverseProcess``; arguments are checked at the first ``next``."""
    process = ReverseProcess(
        model, labels, sampler=sampler, steps=steps, eta=eta, guidance=guidance, variance=variance,
        generator=generator, schedule=schedule, x_start=x_start, t_start=t_start, clip=clip,
        image_shape=image_shape,
    )
    while not process.done:
        yield process.step()


def generate(model: nn.Module, labels: Tensor | list[int], **kwargs) -> Tensor:
    """Like ``sample`` with the same arguments, but returns only the final images [N, C, H, W] in [-1, 1]."""
    x = None
    for step in sample(model, labels, **kwargs):
        x = step.x_prev
    return x
