"""Page 1: the Gaussian density N(x | mu, sigma^2), checked against samples; then N(x; mu, sigma^2 I) in 2-D."""

from ui.sidebar import sidebar, current_seed, current_device  # noqa: F401  (the line every page starts with)
from ui.exercises import check_yourself

import numpy as np
import streamlit as st

from diffusion_core.process.gaussian import (
    density_grid,
    isotropic_normal_pdf,
    normal_pdf,
    product_of_normal_pdfs,
    sample_covariance,
    sample_normal,
    sample_stats,
    trapezoid,
)
from ui.gaussian import view as gv
from ui.i18n import Translator
from ui.follow import show_in_place, update_in_place

tr = sidebar("gaussian")

N_OPTIONS = (10, 100, 1_000, 10_000, 100_000)
N_2D = 1_000
GRID_2D = 121


def fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"


# Computed once for every student at the same settings and seed (read-only: st.cache_resource, no copy).
@st.cache_resource(max_entries=256, show_spinner=False)
def one_d(mu: float, sigma: float, n: int, seed: int):
    """The numbers that check the histogram against the density, for these settings (every student)."""
    samples = sample_normal(mu, sigma, n, np.random.default_rng(seed))
    grid = density_grid(mu, sigma)
    return len(grid), trapezoid(normal_pdf(grid, mu, sigma), grid), sample_stats(samples)


@st.cache_resource(max_entries=16, show_spinner=False)
def one_d_data(n: int, seed: int, lang: str) -> dict:
    """The 1-D figure's data in standard units (ui/gaussian/view.py): the same for every mu and sigma."""
    tr = Translator(lang)
    eps = sample_normal(0.0, 1.0, n, np.random.default_rng(seed))  # the draws behind x = mu + sigma eps
    bins = int(np.clip(2 * n ** (1 / 3), 8, 80))  # Rice's rule
    return gv.one_d_data(eps, bins, tr("gaussian.x_axis"), tr("gaussian.density_axis"), tr("gaussian.hist_name"),
                         tr("gaussian.curve_name"))


@st.cache_resource(max_entries=48, show_spinner=False)  # about half a megabyte each
def two_d(mu1: float, mu2: float, sigma2d: float, seed: int):
    """The points, the density on a grid and the sample covariance, for these settings (every student)."""
    mu_vec = np.array([mu1, mu2])
    points = sample_normal(mu_vec, sigma2d, N_2D, np.random.default_rng([seed, 2]))
    gx = np.linspace(mu1 - 3.5 * sigma2d, mu1 + 3.5 * sigma2d, GRID_2D)
    gy = np.linspace(mu2 - 3.5 * sigma2d, mu2 + 3.5 * sigma2d, GRID_2D)
    xy = np.stack(np.meshgrid(gx, gy), axis=-1)  # [len(gy), len(gx), 2]
    joint = isotropic_normal_pdf(xy, mu_vec, sigma2d)
    return points, xy, joint, sample_covariance(points)


@st.cache_resource(max_entries=8, show_spinner=False)
def two_d_data(seed: int, lang: str) -> dict:
    """The 2-D figure's data in standard units: the same cloud and contours for every mu and sigma."""
    tr = Translator(lang)
    eps = sample_normal(np.zeros(2), 1.0, N_2D, np.random.default_rng([seed, 2]))
    return gv.two_d_data(eps, tr("gaussian.x1_axis"), tr("gaussian.x2_axis"),
                         tr("gaussian.points_name", n=N_2D), tr("gaussian.contour_name"))


st.title(tr("gaussian.title"))
st.markdown(tr("gaussian.intro"))
st.latex(r"\mathcal{N}(x \mid \mu, \sigma^2) = \frac{1}{\sqrt{2\pi\sigma^2}}\,"
         r"\exp\!\left(-\frac{(x-\mu)^2}{2\sigma^2}\right)")
st.markdown(tr("gaussian.try_this"))


# The three sliders and what they drive: a move reruns only this, not the 2-D part below.
@st.fragment
def section_1d() -> None:
    c1, c2, c3 = st.columns(3)
    mu = c1.slider(tr("gaussian.mu"), -3.0, 3.0, 0.0, 0.1, key="gaussian_mu", help=tr("gaussian.mu_help"))
    sigma = c2.slider(tr("gaussian.sigma"), 0.05, 5.0, 1.0, 0.05, key="gaussian_sigma", help=tr("gaussian.sigma_help"))
    n = c3.select_slider(tr("gaussian.n_samples"), N_OPTIONS, value=1_000, key="gaussian_n",
                         format_func=lambda v: f"{v:,}".replace(",", "\u202f"), help=tr("gaussian.n_help"))  # 100 000: a narrow space, never a comma
    seed = current_seed()
    points, area, stats = one_d(mu, sigma, n, seed)
    # The chart element stays the figure at the defaults; the browser applies this step's axes (and, for a new
    # n, its histogram) to it: ui/follow.py, ui/gaussian/view.py.
    show_in_place(st, gv.one_d_at(one_d_data(1_000, seed, tr.lang), 0.0, 1.0, f"{seed}-1000"), "gaussian_fig_1d")
    update_in_place({"gaussian_fig_1d": gv.one_d_at(one_d_data(n, seed, tr.lang), mu, sigma, f"{seed}-{n}")},
                    key="gaussian_1d_update")

    st.subheader(tr("gaussian.checks_title"))
    q, f, s, se, z = (tr(f"gaussian.{k}") for k in ("quantity_col", "formula_col", "sample_col", "se_col", "z_col"))
    st.table({
        q: [tr("gaussian.check_integral", points=points), tr("gaussian.check_mean"), tr("gaussian.check_var")],
        f: ["1", f"μ = {fmt(mu)}", f"σ² = {fmt(sigma**2)}"],
        s: [f"{area:.8f}", fmt(stats.mean), fmt(stats.variance)],
        se: ["—", fmt(stats.mean_se), fmt(stats.variance_se)],
        z: ["—", f"{stats.mean_z(mu):+.2f}", f"{stats.variance_z(sigma**2):+.2f}"],
    })
    st.caption(tr("gaussian.se_note"))


section_1d()

# ------------------------------------------------------------------ 2-D isotropic
st.header(tr("gaussian.iso_title"))
st.markdown(tr("gaussian.iso_intro"))
st.latex(r"\begin{aligned}\mathcal{N}(\mathbf{x}; \boldsymbol{\mu}, \sigma^2\mathbf{I}) &= (2\pi\sigma^2)^{-d/2}\\ "
         r"&\times \exp\!\left(-\frac{\lVert \mathbf{x}-\boldsymbol{\mu} \rVert^2}{2\sigma^2}\right)\end{aligned}")


# The 2-D sliders and what they drive: a move reruns only this.
@st.fragment
def section_2d() -> None:
    c1, c2, c3 = st.columns(3)
    mu1 = c1.slider(tr("gaussian.mu1"), -3.0, 3.0, 0.0, 0.1, key="gaussian_mu1")
    mu2 = c2.slider(tr("gaussian.mu2"), -3.0, 3.0, 0.0, 0.1, key="gaussian_mu2")
    sigma2d = c3.slider(tr("gaussian.sigma_2d"), 0.05, 5.0, 1.0, 0.05, key="gaussian_sigma_2d")
    mu_vec = np.array([mu1, mu2])
    seed = current_seed()
    points, xy, joint, cov = two_d(mu1, mu2, sigma2d, seed)

    col_plot, col_num = st.columns([3, 2])
    with col_plot:
        data = two_d_data(seed, tr.lang)
        show_in_place(st, gv.two_d_at(data, 0.0, 0.0, 1.0, str(seed)), "gaussian_fig_2d")
        update_in_place({"gaussian_fig_2d": gv.two_d_at(data, mu1, mu2, sigma2d, str(seed), with_picture=False)},
                        key="gaussian_2d_update")
    with col_num:
        st.markdown(f"**{tr('gaussian.cov_title')}**")
        m = cov.matrix
        st.latex(r"\hat{\Sigma} = \begin{pmatrix}" + f"{m[0, 0]:.3f} & {m[0, 1]:.3f} \\\\ {m[1, 0]:.3f} & {m[1, 1]:.3f}"
                 + r"\end{pmatrix}")
        st.latex(r"\sigma^2\mathbf{I} = \begin{pmatrix}" + f"{sigma2d**2:.3f} & 0 \\\\ 0 & {sigma2d**2:.3f}" + r"\end{pmatrix}")
        st.caption(tr("gaussian.cov_note", cov=m[0, 1], se=cov.offdiag_se[0, 1], v1=m[0, 0], v2=m[1, 1], var=sigma2d**2))
        if st.checkbox(tr("gaussian.show_product"), key="gaussian_show_product"):
            st.markdown(tr("gaussian.product_intro"))
            st.latex(r"\begin{aligned}\mathcal{N}(\mathbf{x}; \boldsymbol{\mu}, \sigma^2\mathbf{I}) "
                     r"&= \mathcal{N}(x_1 \mid \mu_1, \sigma^2)\\ &\times \mathcal{N}(x_2 \mid \mu_2, \sigma^2)\end{aligned}")
            product = product_of_normal_pdfs(xy, mu_vec, sigma2d)
            p0 = points[0]
            st.markdown(tr(
                "gaussian.product_check", x1=p0[0], x2=p0[1],
                joint=isotropic_normal_pdf(p0, mu_vec, sigma2d).item(),
                prod=product_of_normal_pdfs(p0, mu_vec, sigma2d).item(),
                points=joint.size, maxdiff=float(np.max(np.abs(product - joint) / joint)),
            ))


section_2d()

st.subheader(tr("gaussian.pixels_title"))
st.markdown(tr("gaussian.pixels"))

check_yourself(tr, "gaussian")
