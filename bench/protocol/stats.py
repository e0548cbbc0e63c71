"""Summary statistics of the load generator's timings, and the server's CPU and memory from /proc."""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.classroom.monitors import TICK, descendants, process_tree


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks (numpy's default,
    "linear": Hyndman and Fan 1996, definition 7); NaN for no values."""
    if not values:
        return math.nan
    xs = sorted(values)
    rank = (len(xs) - 1) * q / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p95: float
    max: float


def summarize(values: list[float]) -> Summary:
    return Summary(len(values), percentile(values, 50), percentile(values, 95), max(values) if values else math.nan)


# ------------------------------------------------------------------ /proc
def _ticks_and_rss(pid: int) -> tuple[int, float]:
    """(utime + stime in clock ticks, resident MB) of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
            break
    return int(fields[11]) + int(fields[12]), rss


@dataclass
class ServerMonitor:
    """CPU and RSS of the server: the given pids (the app processes, HAProxy) and their children, read
    from /proc every ``every`` seconds; and this process's own CPU (the generator's). A process that
    died keeps the CPU it had used."""

    pids: list[int]
    every: float = 1.0
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (t, server CPU s, server RSS MB)
    _last: dict[int, int] = field(default_factory=dict)  # pid -> ticks last seen
    _members: set[int] = field(default_factory=set)
    _task: asyncio.Task | None = None
    _self_start: float = 0.0
    _self_end: float = 0.0

    def _refresh_members(self) -> None:
        tree = process_tree()
        members = {p for p in self.pids if p in tree}
        for p in list(members):
            members |= descendants(p, tree)
        self._members = members

    def sample(self) -> tuple[float, float, float]:
        rss = 0.0
        for pid in list(self._members):
            try:
                ticks, r = _ticks_and_rss(pid)
            except (OSError, IndexError, ValueError):
                continue
            self._last[pid] = ticks
            rss += r
        cpu = sum(self._last.values()) / TICK
        s = (time.monotonic(), cpu, rss)
        self.samples.append(s)
        return s

    async def _run(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.every)
            n += 1
            if n % 10 == 0:
                self._refresh_members()
            self.sample()

    def start(self) -> None:
        self._refresh_members()
        self.samples = []
        self.sample()
        self._self_start = _self_cpu()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()
        self._self_end = _self_cpu()

    @property
    def wall(self) -> float:
        return self.samples[-1][0] - self.samples[0][0] if len(self.samples) > 1 else math.nan

    @property
    def server_cpu_percent(self) -> float:
        """The server's CPU over the class, in % of one core."""
        return 100 * (self.samples[-1][1] - self.samples[0][1]) / self.wall if len(self.samples) > 1 else math.nan

    @property
    def own_cpu_percent(self) -> float:
        """The generator's own CPU over the class, in % of one core."""
        return 100 * (self._self_end - self._self_start) / self.wall if len(self.samples) > 1 else math.nan

    @property
    def rss(self) -> tuple[float, float, float]:
        """(start, peak, end) resident MB of the server processes together."""
        values = [s[2] for s in self.samples]
        return (values[0], max(values), values[-1]) if values else (math.nan,) * 3


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system
