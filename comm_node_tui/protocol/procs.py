"""Which process is an agent, and is it still the same one: Linux /proc, standard library only
(the hook imports this on every agent step).

An agent is identified by its Claude Code process: its pid and its start time (clock ticks
since boot, field 22 of /proc/PID/stat), so a recycled pid is never taken for the agent.
"""

from __future__ import annotations

import os

# A hook runs as `sh -c CMD` under the claude process: look a few levels up, no further.
MAX_DEPTH = 6
# The native binary runs as `claude` (or `claude.exe`, npm's name for it); an install that
# goes through Node shows as `node` with claude in its command line.
AGENT_NAMES = ("claude", "claude.exe")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])  # field 22 overall; the list starts at field 3
    except ValueError:
        return None


def parent(pid: int) -> int | None:
    fields = _stat(pid)
    try:
        return int(fields[1]) if fields else None
    except ValueError:
        return None


def is_alive(pid: int, start: int | None = None) -> bool | None:
    """True/False for a process (the same one, when `start` is given); None when this system
    has no /proc to tell."""
    if not os.path.isdir("/proc/self"):
        return None
    fields = _stat(pid)
    if fields is None:
        return False
    if fields[0] in ("Z", "X"):  # exited; its parent has not reaped it yet
        return False
    if start is None:
        return True
    try:
        return int(fields[19]) == int(start)
    except (ValueError, IndexError):
        return False


def agent_process(pid: int | None = None) -> tuple[int, int] | None:
    """(pid, start time) of the nearest `claude` process above `pid` (default: this one's
    parent), or None when there is none within a few levels (not run by Claude Code)."""
    current: int | None = os.getppid() if pid is None else pid
    for _ in range(MAX_DEPTH):
        if current is None or current <= 1:
            return None
        if _comm(current) in AGENT_NAMES or (
            _comm(current) == "node" and "claude" in _cmdline(current)
        ):
            start = start_time(current)
            return (current, start) if start is not None else None
        current = parent(current)
    return None


def under_agent(pid: int) -> bool:
    """True when another agent process runs above `pid` (a `claude -p` started by an agent's
    own shell, for example)."""
    above = parent(pid)
    # An unreadable parent (the process just exited) is no agent: agent_process(None) would
    # look above this hook's own parent instead.
    return above is not None and agent_process(above) is not None
