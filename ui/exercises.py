"""The "Check yourself" block at the end of every lesson page: ``check_yourself(tr, page_id)``.

Each exercise (diffusion_core.exercises) sits in a bordered box inside its own ``st.fragment``, so
checking an answer, drawing new numbers or opening the solution reruns only that box. The numbers
come from the student's seed (sidebar), the page, the exercise and an instance counter ("New numbers"
adds one). A right answer gets a confirmation with the exact value; a wrong one the hint that points
to the page's formula, or the hint of a detected common mistake; after two wrong tries, or on request,
the worked solution. Progress goes to ui.exercise_progress (shown in the sidebar); the sidebar is
redrawn (one rerun of the page) only when a page's counts change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import streamlit as st

from diffusion_core.exercises import (
    EXERCISES,
    SETTING_KEYS,
    Exercise,
    Verdict,
    check_answer,
    make_exercise,
)
from diffusion_core.process.schedules import SCHEDULE_KINDS

from .exercise_progress import record
from .i18n import Translator
from .script_run import in_fragment_run
from .sidebar import current_seed

SLOTS_KEY = "_exercise_slots"  # (page, kind) -> Slot
REDRAW_KEY = "_exercise_redraw_sidebar"  # set by a callback when the sidebar's counts changed
WRONG_TRIES_BEFORE_SOLUTION = 2


@dataclass
class Slot:
    """What one exercise box remembers between reruns."""

    seed: int  # the student's seed the numbers come from
    instance: int = 0  # "New numbers" counter
    version: int = 0  # bumped whenever the numbers change: the text inputs get fresh keys
    fields: tuple = ()  # the numbers shown, to notice a change of the page's settings
    wrong_tries: int = 0
    verdicts: tuple[Verdict, ...] = ()  # of the last check, one per part
    texts: tuple[str, ...] = ()  # what was checked, for the "not a number" message
    solved: bool = False
    show_solution: bool = False
    auto_solution: bool = False  # opened by the second wrong try


def format_number(v: float | int, digits: int = 6) -> str:
    """A number as the student reads it: decimal point, ``digits`` significant digits, no exponent,
    no thousands separator; whole numbers without a decimal part."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if v == round(v) and abs(v) < 1e9:
        return str(int(round(v)))
    text = np.format_float_positional(v, precision=digits, unique=False, fractional=False, trim="-")
    return text.rstrip(".")


def statement_fields(tr: Translator, ex: Exercise) -> dict[str, str]:
    out = {}
    for name, value in ex.fields:
        if isinstance(value, str):
            out[name] = tr(f"exercises.schedule_{value}") if value in SCHEDULE_KINDS else value
        else:
            out[name] = format_number(value)
    return out


def _tolerance_text(tr: Translator, ex: Exercise) -> str:
    tol = ex.parts[0].tolerance
    if tol.kind == "integer":
        return tr("exercises.tolerance_integer")
    if tol.kind == "decimals":
        return tr("exercises.tolerance_decimals", n=int(tol.value), step=format_number(0.5 * 10 ** -tol.value))
    return tr("exercises.tolerance_relative", percent=format_number(100 * tol.value))


def _settings(page: str) -> dict[str, object]:
    return {k: st.session_state[k] for k in SETTING_KEYS.get(page, ()) if k in st.session_state}


def _slots() -> dict[tuple[str, str], Slot]:
    return st.session_state.setdefault(SLOTS_KEY, {})


def _slot(page: str, kind: str, seed: int) -> Slot:
    slots = _slots()
    slot = slots.get((page, kind))
    if slot is None or slot.seed != seed:
        version = slot.version + 1 if slot else 0
        slot = slots[(page, kind)] = Slot(seed=seed, version=version)
    return slot


def _reset(slot: Slot) -> None:
    slot.version += 1
    slot.wrong_tries = 0
    slot.verdicts = ()
    slot.texts = ()
    slot.solved = False
    slot.show_solution = slot.auto_solution = False


def input_key(page: str, kind: str, slot: Slot, part: int) -> str:
    return f"_ex_{page}_{kind}_{slot.version}_{part}"


def _on_check(page: str, kind: str, ex: Exercise) -> None:
    slot = _slots()[(page, kind)]
    texts = tuple(str(st.session_state.get(input_key(page, kind, slot, i)) or "") for i in range(len(ex.parts)))
    verdicts = tuple(check_answer(ex, text, i) for i, text in enumerate(texts))
    slot.verdicts, slot.texts = verdicts, texts
    if not all(v.counts for v in verdicts):
        return  # an empty or unreadable box is not a try
    right = all(v.right for v in verdicts)
    if right:
        slot.solved = True
    else:
        slot.wrong_tries += 1
        if slot.wrong_tries >= WRONG_TRIES_BEFORE_SOLUTION and not slot.show_solution:
            slot.show_solution = slot.auto_solution = True
    if record(st.session_state, page, kind, right):
        st.session_state[REDRAW_KEY] = True


def _on_new(page: str, kind: str) -> None:
    slot = _slots()[(page, kind)]
    slot.instance += 1
    _reset(slot)


def _on_solution(page: str, kind: str) -> None:
    slot = _slots()[(page, kind)]
    slot.show_solution = not slot.show_solution
    slot.auto_solution = False


def mistake_hint(tr: Translator, ex: Exercise, verdict: Verdict) -> str:
    """The hint of a detected mistake: the exercise's own wording if it has one, else the shared one."""
    own = f"{ex.prefix}.mistake_{verdict.mistake}"
    return tr(own) if tr.has(own) else tr(verdict.mistake_key)


def _feedback(tr: Translator, ex: Exercise, slot: Slot) -> None:
    many = len(ex.parts) > 1
    for i, (v, text) in enumerate(zip(slot.verdicts, slot.texts)):
        label = f"**{tr(ex.part_key(i))}:** " if many else ""
        if v.status == "right":
            st.success(label + tr("exercises.verdict.right", answer=format_number(v.answer, 8)), icon=":material/check_circle:")
        elif v.status == "mistake":
            st.warning(label + tr("exercises.verdict.mistake", value=format_number(v.value)) + " " + mistake_hint(tr, ex, v),
                       icon=":material/lightbulb:")
        elif v.status == "wrong":
            st.warning(label + tr("exercises.verdict.wrong", value=format_number(v.value)) + " " + tr(ex.hint_key),
                       icon=":material/lightbulb:")
        else:
            st.info(label + tr(v.message_key, text=text.strip()), icon=":material/keyboard:")


def _exercise_box(tr: Translator, page: str, kind: str, number: int) -> None:
    if in_fragment_run() and st.session_state.pop(REDRAW_KEY, False):
        st.rerun(scope="app")  # a page's counts changed: redraw the sidebar's progress too
    st.session_state.pop(REDRAW_KEY, None)
    seed = current_seed()
    slot = _slot(page, kind, seed)
    ex = make_exercise(page, kind, seed, slot.instance, _settings(page))
    if ex.fields != slot.fields:  # new numbers: a new seed, New numbers, or a changed page setting
        if slot.fields:
            _reset(slot)
        slot.fields = ex.fields
    values = statement_fields(tr, ex)
    with st.container(border=True, key=f"ex_box_{page}_{kind}"):
        done = " ✓" if slot.solved else ""
        st.markdown(f"**{tr('exercises.exercise_n', n=number)} · {tr(ex.title_key)}**{done}")
        st.markdown(tr(ex.statement_key, **values))
        st.caption(_tolerance_text(tr, ex))
        with st.form(key=f"ex_form_{page}_{kind}_{slot.version}", border=False, enter_to_submit=True):
            cols = st.columns(len(ex.parts)) if len(ex.parts) > 1 else [st.container()]
            for i, col in enumerate(cols):
                col.text_input(tr(ex.part_key(i)), key=input_key(page, kind, slot, i),
                               placeholder=tr("exercises.placeholder"), autocomplete="off")
            st.form_submit_button(tr("exercises.check"), on_click=_on_check, args=(page, kind, ex), type="primary",
                                  icon=":material/done:", key=f"ex_check_{page}_{kind}_{slot.version}")
        _feedback(tr, ex, slot)
        c1, c2 = st.columns(2)
        c1.button(tr("exercises.new_numbers"), key=f"ex_new_{page}_{kind}", on_click=_on_new, args=(page, kind),
                  icon=":material/casino:", width="stretch")
        c2.button(tr("exercises.hide_solution" if slot.show_solution else "exercises.show_solution"),
                  key=f"ex_solution_{page}_{kind}", on_click=_on_solution, args=(page, kind),
                  icon=":material/menu_book:", width="stretch")
        if slot.show_solution:
            if slot.auto_solution:
                st.caption(tr("exercises.solution_after_tries"))
            st.markdown(f"**{tr('exercises.solution_title')}**")
            st.markdown(tr(ex.solution_key, **values))


_exercise_fragment = st.fragment(_exercise_box)


def check_yourself(tr: Translator, page_id: str) -> None:
    """Draw the page's "Check yourself" block (heading, then one box per exercise). The last call of a page."""
    if page_id not in EXERCISES:
        raise ValueError(f"no exercises for page {page_id!r}; known: {sorted(EXERCISES)}")
    st.divider()
    st.header(tr("exercises.heading"), anchor="check-yourself")
    st.markdown(tr("exercises.intro"))
    for number, kind in enumerate(EXERCISES[page_id], start=1):
        _exercise_fragment(tr, page_id, kind, number)
