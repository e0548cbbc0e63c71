"""Home page: what the course is and where to start.  Run: streamlit run app.py"""

import streamlit as st

from ui.sidebar import available_pages, sidebar

tr = sidebar("home")

st.title(tr("home.title"))
st.markdown(tr("home.intro"))
st.latex(r"\begin{aligned}q(x_t \mid x_{t-1}) &= \mathcal{N}\!\left(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t \mathbf{I}\right)\\"
         r"p_\theta(x_{t-1} \mid x_t) &= \mathcal{N}\!\left(x_{t-1};\ \mu_\theta(x_t, t),\ \sigma_t^2 \mathbf{I}\right)\end{aligned}")

st.header(tr("home.path_title"))
for path, page_id, icon in available_pages()[1:]:
    with st.container(border=True):
        st.page_link(path, label=tr(f"nav.{page_id}"), icon=icon)
        st.caption(tr(f"home.summary_{page_id}"))

st.header(tr("home.how_title"))
st.markdown(tr("home.how"))
st.caption(tr("home.notation"))
