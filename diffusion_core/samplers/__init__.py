"""The reverse process, one file per algorithm (the way diffusers keeps one scheduler per file):

- ``coefficients``: eps_hat <-> x0_hat (Ho et al. 2020, eq. 15), StepOutput, the DDPM/DDIM coefficients;
- ``ddpm``: the ancestral step (Ho et al. 2020, eq. 11);
- ``ddim``: the DDIM step (Song et al. 2021, eq. 12);
- ``dpm_solver``: DPM-Solver++(2M) (Lu et al. 2022, algorithm 2);
- ``timesteps``: which timesteps to visit (linear in t, or even in lambda = 1/2 log SNR);
- ``guidance``: classifier-free guidance (Ho & Salimans 2022);
- ``process``: the shared loop (EpsReverseProcess, ReverseProcess, sample_eps, sample, generate);
- ``flow``: the flow ODE of a Gaussian path (Euler, Heun) and an eps network as a velocity field;
- ``sde``: Euler-Maruyama for the forward and reverse-time SDEs, the Langevin corrector (Song et al. 2021);
- ``ode_solvers``: Dormand-Prince RK45 and fixed-step Heun for any ODE (the ODE likelihood's solver);
- ``continuous``: the class-conditional network sampled by the reverse SDE or the PF-ODE at a number of calls;
- ``ode_paths`` and ``trajectory``: what the pages read off the probability-flow ODE and off a reverse run.

Every name callers used from the former ``samplers.py`` is re-exported here.
"""

from .coefficients import (
    StepCoefficients,
    StepOutput,
    predict_eps_from_x0,
    predict_x0_from_eps,
    step_coefficients,
)
from .ddim import ddim_sigma, ddim_step
from .ddpm import DdpmVariance, ddpm_sigma, ddpm_step
from .dpm_solver import (
    DpmSolverCoefficients,
    DpmSolverStepOutput,
    dpm_solver_coefficients,
    dpm_solver_order,
    dpm_solver_step,
)
from .guidance import DEFAULT_GUIDANCE, guided_eps, guided_eps_fn
from .process import (
    SAMPLERS,
    EpsFn,
    EpsReverseProcess,
    ReverseProcess,
    Sampler,
    SampleStep,
    StepperState,
    generate,
    sample,
    sample_eps,
)
from .timesteps import SPACINGS, Spacing, half_log_snr, timesteps

__all__ = [
    "DEFAULT_GUIDANCE", "SAMPLERS", "SPACINGS", "DdpmVariance", "DpmSolverCoefficients", "DpmSolverStepOutput",
    "EpsFn", "EpsReverseProcess", "ReverseProcess", "SampleStep", "Sampler", "StepperState", "Spacing", "StepCoefficients",
    "StepOutput", "ddim_sigma", "ddim_step", "ddpm_sigma", "ddpm_step", "dpm_solver_coefficients",
    "dpm_solver_order", "dpm_solver_step", "generate", "guided_eps", "guided_eps_fn", "half_log_snr", "predict_eps_from_x0",
    "predict_x0_from_eps", "sample", "sample_eps", "step_coefficients", "timesteps",
]
