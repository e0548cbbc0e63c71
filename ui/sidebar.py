"""The sidebar every page draws first: language, seed, device and the page links.

Usage, as the first line of every page::

    tr = sidebar("gaussian")

Values live in ``st.session_state`` under plain keys ("lang", "seed",
"device"), copied from their widgets, so they survive page changes (Streamlit
forgets a widget's value when a page without it runs). The language is also
kept in the URL (``?lang=vi`` or ``?lang=en``) so a shared link opens in it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from diffusion_core.models.devices import cuda_available, resolve_device

from .exercise_progress import progress
from .i18n import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, Translator

APP_DIR = Path(__file__).resolve().parent.parent
# (page file relative to the app folder, page id for "nav.<id>", icon), in teaching order.
PAGES: list[tuple[str, str, str]] = [
    ("app.py", "home", ":material/home:"),
    ("pages/1_Gaussian.py", "gaussian", ":material/bar_chart:"),
    ("pages/2_Forward_chain.py", "forward_chain", ":material/link:"),
    ("pages/3_Closed_form.py", "closed_form", ":material/functions:"),
    ("pages/4_Your_image.py", "your_image", ":material/image:"),
    ("pages/5_Posterior.py", "posterior", ":material/compare_arrows:"),
    ("pages/6_Bound.py", "bound", ":material/stacked_line_chart:"),
    ("pages/7_Reverse_process.py", "reverse", ":material/auto_awesome:"),
    ("pages/8_How_many_steps.py", "steps", ":material/speed:"),
    ("pages/9_Playground_2D.py", "playground", ":material/scatter_plot:"),
    ("pages/10_Flow_matching.py", "flow", ":material/air:"),
    ("pages/11_Continuous_time.py", "continuous", ":material/timeline:"),
    ("pages/12_Few_steps.py", "fewstep", ":material/bolt:"),
    ("pages/13_Latent_diffusion.py", "latent", ":material/compress:"),
]
DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEFAULT_SEED = 0
MAX_SEED = 2**31 - 1


def _copy(widget_key: str, state_key: str) -> None:
    st.session_state[state_key] = st.session_state[widget_key]


def _persistent_widget(state_key: str, default: object) -> str:
    """Seed the widget key from the persistent value; returns the widget key."""
    if state_key not in st.session_state:
        st.session_state[state_key] = default
    widget_key = f"_widget_{state_key}"
    st.session_state[widget_key] = st.session_state[state_key]
    return widget_key


def _initial_language() -> str:
    lang = st.query_params.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def available_pages() -> list[tuple[str, str, str]]:
    """The pages of PAGES whose file exists, in teaching order."""
    return [p for p in PAGES if (APP_DIR / p[0]).is_file()]


def sidebar(page_id: str) -> Translator:
    """Draw the shared sidebar and return the translator for the chosen language."""
    lang_key = _persistent_widget("lang", _initial_language())
    tr = Translator(st.session_state["lang"])
    st.set_page_config(page_title=f"{tr(f'nav.{page_id}')} · {tr('common.app_name')}", page_icon=":material/blur_on:", layout="wide")

    with st.sidebar:
        st.radio(
            "Ngôn ngữ · Language",
            LANGUAGES,
            format_func=LANGUAGE_NAMES.get,
            key=lang_key,
            horizontal=True,
            on_change=_copy,
            args=(lang_key, "lang"),
        )
        tr = Translator(st.session_state["lang"])
        st.query_params["lang"] = tr.lang

        st.markdown(f"**{tr('common.app_name')}**")
        for path, pid, icon in available_pages():
            st.page_link(path, label=tr(f"nav.{pid}"), icon=icon)
        _exercise_progress(tr)

        st.divider()
        seed_key = _persistent_widget("seed", DEFAULT_SEED)
        st.number_input(
            tr("common.seed"),
            min_value=0,
            max_value=MAX_SEED,
            step=1,
            key=seed_key,
            help=tr("common.seed_help"),
            on_change=_copy,
            args=(seed_key, "seed"),
        )
        has_cuda = cuda_available()
        choices = DEVICE_CHOICES if has_cuda else DEVICE_CHOICES[:2]
        if st.session_state.get("device") not in choices:
            st.session_state["device"] = "auto"
        device_key = _persistent_widget("device", "auto")
        st.radio(
            tr("common.device"),
            choices,
            format_func=lambda c: tr(f"common.device_{c}"),
            key=device_key,
            horizontal=True,
            on_change=_copy,
            args=(device_key, "device"),
        )
        if not has_cuda:
            st.caption(tr("common.no_cuda"))
    return tr


def _exercise_progress(tr: Translator) -> None:
    """One compact line per page with check-yourself exercises tried: solved/tried (ui.exercise_progress)."""
    table = progress(st.session_state)
    lines = [tr("exercises.progress_line", page=tr(f"nav.{pid}"), solved=len(p.solved), tried=len(p.tried))
             for _, pid, _ in PAGES if (p := table.get(pid)) and p.tried]
    text = "  \n".join(lines) if lines else tr("exercises.progress_none")
    st.caption(f"**{tr('exercises.progress_title')}** · {text}" if not lines else
               f"**{tr('exercises.progress_title')}**  \n{text}", help=tr("exercises.progress_help"))


def current_seed() -> int:
    """The seed chosen in the sidebar."""
    return int(st.session_state.get("seed", DEFAULT_SEED))


def current_device():
    """The torch device chosen in the sidebar ("auto": CUDA when present)."""
    return resolve_device(st.session_state.get("device", "auto"))
