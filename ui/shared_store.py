"""A bounded store of results shared by every session of the server: one copy of the least-recently-used
store that pages 6, 8 and 9 keep their slow results in, and the key of a picture in it (``picture_id``).

Why not ``st.cache_data``: a page must know whether a result is there before it starts computing (a miss
shows a progress bar with real progress, a hit shows nothing), and a cached function cannot report
progress from inside. ``shared_store(name, max_entries)`` gives each page its own store, created once
per server process (``st.cache_resource``).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
import streamlit as st


class SharedStore:
    """At most ``max_entries`` values, least recently used dropped first; safe across sessions, and
    ``get`` computes each key once at a time (a second session asking for it waits for the first)."""

    def __init__(self, max_entries: int):
        self.max_entries, self._data, self._lock = max_entries, OrderedDict(), threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def peek(self, key: Hashable) -> object | None:
        """The value if some session already stored it (it becomes the most recent), else None."""
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def get(self, key: Hashable, compute: Callable[[], object]) -> object:
        """The stored value, or ``compute()`` stored; a computation that raises is not kept."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # a second session asking for the same key waits for the first one's result
            with self._lock:
                if key in self._data:
                    return self._data[key]
            try:
                value = compute()  # may raise: Streamlit stops a script whose tab asked for something else
            except BaseException:
                with self._lock:
                    self._key_locks.pop(key, None)
                raise
            self.put(key, value)
            with self._lock:
                self._key_locks.pop(key, None)
            return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data


def picture_id(pixels: np.ndarray) -> str:
    """A picture's key in a shared store or cache: the hash of its pixels and shape (the pixels themselves
    need not travel in the key)."""
    pixels = np.ascontiguousarray(pixels)
    return hashlib.sha1(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()


@st.cache_resource(show_spinner=False)
def shared_store(name: str, max_entries: int) -> SharedStore:
    """The store called ``name``, one per server process."""
    return SharedStore(max_entries)
