"""The student's check-yourself progress: which exercises of which page were tried and solved.

It lives in ``st.session_state`` under one plain (non-widget) key, so it survives page and language
changes for the browser session, and nowhere else: nothing is stored on disk or sent anywhere.
The sidebar reads it (``progress_lines``); ui.exercises writes it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

PROGRESS_KEY = "_exercise_progress"


@dataclass
class PageProgress:
    """Exercise ids (kinds) of one page: tried = a number was checked at least once; solved = answered right."""

    tried: set[str] = field(default_factory=set)
    solved: set[str] = field(default_factory=set)


def progress(state: MutableMapping) -> dict[str, PageProgress]:
    """The progress table (page id -> PageProgress), created empty on first use."""
    return state.setdefault(PROGRESS_KEY, {})


def record(state: MutableMapping, page: str, kind: str, right: bool) -> bool:
    """Note one checked answer; True when the page's counts changed (so the sidebar must be redrawn)."""
    p = progress(state).setdefault(page, PageProgress())
    before = (len(p.tried), len(p.solved))
    p.tried.add(kind)
    if right:
        p.solved.add(kind)
    return (len(p.tried), len(p.solved)) != before
