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
from ui import charts
from ui.i18n import Translator

tr = sidebar("gaussian")

N_OPTIONS = (10, 100, 1_000, 10_000, 100_000)
N_2D = 1_000
GRID_2D = 121


def fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"


# Computed once for every student at the same settings and seed (read-only: st.cache_resource, no copy).
@st.cache_resource(max_entries=256, show_spinner=False)
def one_d(mu: float, sigma: float, n: int, seed: int, lang: str):
    """The histogram against the density, and the numbers that check it, for these settings (every student)."""
    tr = Translator(lang)
    samples = sample_normal(mu, sigma, n, np.random.default_rng(seed))
    # Axis: at least [-4, 4] so a narrow bell looks narrow, wider when the bell is wider.
    x_lo, x_hi = min(-4.0, mu - 4.5 * sigma), max(4.0, mu + 4.5 * sigma)
    x_plot = np.union1d(np.linspace(x_lo, x_hi, 801), density_grid(mu, sigma, half_width=5.0, n=401))
    bins = int(np.clip(2 * n ** (1 / 3), 8, 80))  # Rice's rule
    fig = charts.histogram_density_figure(
        samples, x_plot, normal_pdf(x_plot, mu, sigma), tr("gaussian.x_axis"), tr("gaussian.density_axis"),
        hist_name=tr("gaussian.hist_name"), density_name=tr("gaussian.curve_name"), bins=bins,
        hist_range=(mu - 4 * sigma, mu + 4 * sigma), x_range=(x_lo, x_hi), height=380,
    )
    grid = density_grid(mu, sigma)
    return fig, len(grid), trapezoid(normal_pdf(grid, mu, sigma), grid), sample_stats(samples)


@st.cache_resource(max_entries=48, show_spinner=False)  # about half a megabyte each
def two_d(mu1: float, mu2: float, sigma2d: float, seed: int, lang: str):
    """The points and the density's contours on a grid, for these settings (every student)."""
    tr = Translator(lang)
    mu_vec = np.array([mu1, mu2])
    points = sample_normal(mu_vec, sigma2d, N_2D, np.random.default_rng([seed, 2]))
    gx = np.linspace(mu1 - 3.5 * sigma2d, mu1 + 3.5 * sigma2d, GRID_2D)
    gy = np.linspace(mu2 - 3.5 * sigma2d, mu2 + 3.5 * sigma2d, GRID_2D)
    xy = np.stack(np.meshgrid(gx, gy), axis=-1)  # [len(gy), len(gx), 2]
    joint = isotropic_normal_pdf(xy, mu_vec, sigma2d)
    fig = charts.scatter_contour_figure(
        points, gx, gy, joint, tr("gaussian.x1_axis"), tr("gaussian.x2_axis"),
        points_name=tr("gaussian.points_name", n=N_2D), contour_name=tr("gaussian.contour_name"), height=460,
    )
    return fig, points, xy, joint, sample_covariance(points)


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
    fig, points, area, stats = one_d(mu, sigma, n, current_seed(), tr.lang)
    st.plotly_chart(fig, key="gaussian_fig_1d")

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
    fig2, points, xy, joint, cov = two_d(mu1, mu2, sigma2d, current_seed(), tr.lang)

    col_plot, col_num = st.columns([3, 2])
    with col_plot:
        st.plotly_chart(fig2, key="gaussian_fig_2d")
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
