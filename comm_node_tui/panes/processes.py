"""Kill a pane's whole process tree: TERM, a grace period, then KILL.

Claude Code ignores SIGHUP in recent versions, so closing the pane is not enough; and the
agent's children (shells, test runners, servers) must not outlive it.
"""

from __future__ import annotations

import os
import signal
import time


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (Linux /proc; `ps` elsewhere)."""
    children: dict[int, list[int]] = {}
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    stat = fh.read().decode(errors="replace")
            except OSError:
                continue
            # the command name is in parentheses and may hold spaces
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    except FileNotFoundError:
        import subprocess

        out = subprocess.run(
            ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, timeout=10
        ).stdout
        for line in out.splitlines():
            p, pp = (int(x) for x in line.split())
            children.setdefault(pp, []).append(p)
    tree, stack = [], [pid]
    while stack:
        p = stack.pop()
        tree.append(p)
        stack.extend(children.get(p, []))
    return tree


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().decode(errors="replace").rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")  # a zombie has exited; its parent just has not reaped it
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


def kill_tree(pid: int, grace_s: float = 3.0) -> dict:
    """TERM the tree, wait up to `grace_s`, KILL what is left. What happened, for the log."""
    tree = descendants(pid)
    for p in tree:
        try:
            os.kill(p, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        time.sleep(0.05)
    survivors = [p for p in tree if alive(p)]
    for p in survivors:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(alive(p) for p in survivors):
        time.sleep(0.02)
    return {"pids": tree, "killed": survivors, "left": [p for p in survivors if alive(p)]}
