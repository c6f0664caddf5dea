"""Kill a pane's whole process tree: TERM, a grace period, then KILL.

Claude Code ignores SIGHUP in recent versions, so closing the pane is not enough; and the
agent's children (shells, test runners, servers) must not outlive it.
"""

from __future__ import annotations

import os
import signal
import time


def _children() -> dict[int, list[int]]:
    """Every process's children, from one pass over /proc (`ps` elsewhere)."""
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
    return children


def descendants(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """`pid` and every process below it (Linux /proc; `ps` elsewhere)."""
    children = _children() if children is None else children
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


def _signal(pids: list[int], sig: int) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pids: list[int], timeout_s: float, every_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(every_s)


def kill_trees(pids: list[int], grace_s: float = 3.0) -> dict[int, dict]:
    """kill_tree for several trees at once: one TERM round for all of them, one shared
    grace period, one KILL round. `comm-node down` took the grace period once per agent
    that ignores TERM (12 s for 4 Claude Codes); now it takes it once. Per root pid: what
    happened to its tree, for the log."""
    children = _children()
    trees = {pid: descendants(pid, children) for pid in pids}
    everyone = [p for tree in trees.values() for p in tree]
    _signal(everyone, signal.SIGTERM)
    _wait_gone(everyone, grace_s, 0.05)
    survivors = [p for p in everyone if alive(p)]
    _signal(survivors, signal.SIGKILL)
    _wait_gone(survivors, 2.0, 0.02)
    left = {p for p in survivors if alive(p)}
    killed = set(survivors)
    return {
        pid: {
            "pids": tree,
            "killed": [p for p in tree if p in killed],
            "left": [p for p in tree if p in left],
        }
        for pid, tree in trees.items()
    }


def kill_tree(pid: int, grace_s: float = 3.0) -> dict:
    """TERM the tree, wait up to `grace_s`, KILL what is left. What happened, for the log."""
    return kill_trees([pid], grace_s)[pid]


def stop_tmux_server(socket: str) -> None:
    """Kill every pane's process tree on the tmux server `socket`, then the server: Claude
    Code ignores the SIGHUP a dying tmux server sends, so killing the server alone would
    leave the agents running (the tests' and benches' private servers)."""
    import subprocess

    out = subprocess.run(
        ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_pid}"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    for pid in out.split():
        if pid.isdigit():
            kill_tree(int(pid), grace_s=2.0)
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
