"""The waiting line of the denoiser worker: round robin across sessions, one waiting run per session
and purpose, and where each run stands.

A classroom server has one network and many students. A first-come first-served line lets one student
who presses Play five times hold five places; here each session holds at most one waiting run per
``lane`` (the player, the DDPM/DDIM comparison, SDEdit), and a new one from the same session and lane
takes the place of the old (a second Play replaces the first, it does not queue behind it). The
sessions take turns: ``pop`` serves the session at the head of the rotation and sends it to the back,
so a session with two waiting runs (two lanes) is served once per round, like every other, and a run
that comes back after its time slice (ui.worker.pool) waits behind the sessions that were waiting.
Pure Python, no threads: the pool holds its lock around every call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Waiting items, served round robin across sessions; within a session, in the order they came."""

    def __init__(self) -> None:
        # session -> its waiting (lane, item) pairs, oldest first; the dict's order is the rotation
        self._sessions: OrderedDict[Hashable, list[tuple[Hashable, T]]] = OrderedDict()

    def put(self, session: Hashable, item: T, lane: Hashable = None) -> T | None:
        """Add ``item`` for ``session``; returns the item it replaced (same session and lane), if any,
        which loses its place to the new one. A session that was not waiting joins at the back."""
        waiting = self._sessions.get(session)
        if waiting is None:
            self._sessions[session] = [(lane, item)]
            return None
        for i, (other_lane, old) in enumerate(waiting):
            if other_lane == lane:
                waiting[i] = (lane, item)
                return old
        waiting.append((lane, item))
        return None

    def pop(self) -> T | None:
        """The next item: the oldest of the session at the head of the rotation, which then goes to the
        back if it still has items waiting. None when nothing waits."""
        if not self._sessions:
            return None
        session, waiting = next(iter(self._sessions.items()))
        _, item = waiting.pop(0)
        del self._sessions[session]
        if waiting:
            self._sessions[session] = waiting  # to the back of the rotation
        return item

    def remove(self, item: T) -> bool:
        """Take ``item`` out of the line (a cancelled run); False if it was not waiting."""
        for session, waiting in self._sessions.items():
            for i, (_, other) in enumerate(waiting):
                if other is item:
                    del waiting[i]
                    if not waiting:
                        del self._sessions[session]
                    return True
        return False

    def order(self) -> list[T]:
        """Every waiting item in the order ``pop`` would serve them if nothing else came."""
        lanes = [list(w) for w in self._sessions.values()]
        served: list[T] = []
        depth = 0
        while any(depth < len(w) for w in lanes):
            served += [w[depth][1] for w in lanes if depth < len(w)]
            depth += 1
        return served

    def ahead_of(self, item: T) -> int:
        """How many waiting items would be served before ``item``. Raises ValueError if it is not waiting."""
        for i, other in enumerate(self.order()):
            if other is item:
                return i
        raise ValueError("the item is not waiting")

    def __len__(self) -> int:
        return sum(len(w) for w in self._sessions.values())

    def __contains__(self, item: object) -> bool:
        return any(other is item for w in self._sessions.values() for _, other in w)
