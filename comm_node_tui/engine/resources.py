"""Each agent's CPU and resident memory, so a noisy neighbour is visible (issue 23).

Read from /proc every SAMPLE_S seconds (not per frame): one pass over /proc/<pid>/stat
builds the process tree, and an agent's figures are its pane process's whole tree (claude,
the shells and builds it runs). CPU % is the tree's user+system time since the last sample
over the wall time between them (100 = one core). Linux only: elsewhere nothing is shown.
"""

from __future__ import annotations

import os

from comm_node_tui.engine.context import EngineContext

SAMPLE_S = 5.0
PROC = "/proc"


def read_procs(proc: str = PROC) -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, user+system clock ticks, resident pages), every process."""
    out: dict[int, tuple[int, int, int]] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat", "rb") as fh:
                raw = fh.read(4096)
        except OSError:
            continue  # gone meanwhile
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        rest = raw[raw.rfind(b")") + 2 :].split()
        try:
            # fields 4 (ppid), 14 (utime), 15 (stime), 24 (rss) of proc(5), counted from 3
            out[int(name)] = (int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[21]))
        except (IndexError, ValueError):
            continue
    return out


def tree_totals(procs: dict[int, tuple[int, int, int]], root: int) -> tuple[int, int] | None:
    """(clock ticks, resident pages) of `root` and all its descendants; None when gone."""
    if root not in procs:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _t, _r) in procs.items():
        children.setdefault(ppid, []).append(pid)
    ticks = pages = 0
    todo = [root]
    seen: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        _ppid, t, r = procs[pid]
        ticks += t
        pages += r
        todo += children.get(pid, [])
    return ticks, pages


class ResourceMonitor:
    """Samples the agents' process trees; `latest` maps domain -> (cpu %, resident bytes)."""

    def __init__(self, ctx: EngineContext, proc: str = PROC, every_s: float = SAMPLE_S) -> None:
        self.ctx = ctx
        self.proc = proc
        self.every_s = every_s
        self.latest: dict[str, tuple[float | None, int]] = {}
        self._last_at: float | None = None
        self._ticks: dict[str, tuple[int, int]] = {}  # domain -> (root pid, ticks) last time
        self._hz = _clock_ticks()
        self._page = _page_size()

    def tick(self) -> None:
        now = self.ctx.clock.monotonic()
        if self._last_at is not None and now - self._last_at < self.every_s:
            return
        if not os.path.isdir(self.proc):
            return
        elapsed = None if self._last_at is None else now - self._last_at
        self._last_at = now
        roots = {}
        for name, pane in self.ctx.panes.items():
            pid = pane.get("pid") if isinstance(pane, dict) else None
            if isinstance(pid, int) and pid > 0 and not pane.get("dead"):
                roots[name] = pid
        procs = read_procs(self.proc) if roots else {}
        latest: dict[str, tuple[float | None, int]] = {}
        ticks: dict[str, tuple[int, int]] = {}
        for name, pid in roots.items():
            totals = tree_totals(procs, pid)
            if totals is None:
                continue
            t, pages = totals
            cpu = None
            before = self._ticks.get(name)
            if elapsed and before is not None and before[0] == pid and t >= before[1]:
                cpu = round((t - before[1]) / self._hz / elapsed * 100, 1)
            ticks[name] = (pid, t)
            latest[name] = (cpu, pages * self._page)
        self._ticks = ticks
        self.latest = latest  # swapped whole: the room's thread reads it


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK")) or 100
    except (ValueError, OSError, AttributeError):
        return 100


def _page_size() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) or 4096
    except (ValueError, OSError, AttributeError):
        return 4096
