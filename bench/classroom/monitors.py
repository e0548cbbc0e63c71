"""What the server costs during a class: CPU time and resident memory of its processes, read from /proc."""


from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")  # clock ticks per second of /proc's CPU times


# ------------------------------------------------------------------ /proc
def proc_stat(pid: int) -> tuple[int, int]:
    """(ppid, utime + stime in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_tree() -> dict[int, tuple[int, int]]:
    tree = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                tree[int(p.name)] = proc_stat(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return tree


def descendants(root: int, tree: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in tree.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = set(), [root]
    while stack:
        for c in children.get(stack.pop(), []):
            out.add(c)
            stack.append(c)
    return out


class Monitor:
    """Samples, once a second, the CPU ticks and RSS of the server processes and the CPU ticks of the
    browser (every process below this one that is not a server)."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids
        self.samples: list[tuple[float, float, float, float]] = []  # (t, server ticks, browser ticks, rss MB)
        self._task: asyncio.Task | None = None

    def sample(self) -> tuple[float, float, float, float]:
        tree = process_tree()
        server = set(self.server_pids)
        for pid in self.server_pids:
            server |= descendants(pid, tree)
        browser = descendants(os.getpid(), tree) - server
        s_ticks = sum(tree[p][1] for p in server if p in tree)
        b_ticks = sum(tree[p][1] for p in browser if p in tree)
        rss = 0.0
        for p in self.server_pids:
            try:
                rss += rss_mb(p)
            except OSError:
                pass
        return time.monotonic(), s_ticks, b_ticks, rss

    async def _run(self) -> None:
        while True:
            self.samples.append(self.sample())
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self.samples = [self.sample()]
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.samples.append(self.sample())
        if self._task:
            self._task.cancel()
