"""`comm-node down` with agents that ignore SIGHUP and SIGTERM: how long until every process
tree is gone and the session ended, against the old way (one agent after another).

A private tmux server, N fake agents started with `--ignore-signals` (each then costs the
whole TERM grace period, 3 s, before KILL). Usage: python bench/down.py [AGENTS] [RUNS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, median

from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.panes.processes import alive, descendants, kill_tree
from comm_node_tui.workspace.discovery import load_workspace

AGENT = f"{sys.executable} -m comm_node_tui.demo.fake_agent --ignore-signals"


def started(root: Path, n: int) -> tuple[AgentPanes, list[int]]:
    ap = AgentPanes(load_workspace(str(root)))
    ap.up()
    deadline = time.monotonic() + 30
    while not all("❯" in ap.peek(f"a{i}") for i in range(n)):
        assert time.monotonic() < deadline, "agents did not start"
        time.sleep(0.05)
    pids = [p for pane in ap.tmux.panes().values() for p in descendants(pane.pid)]
    return ap, pids


def serial_down(ap: AgentPanes) -> None:
    """What `down` did before: each tree in turn, then the session."""
    for pane in ap.tmux.panes().values():
        if pane.pid and not pane.dead:
            kill_tree(pane.pid)
    ap.tmux.cmd("kill-session", "-t", f"={ap.session}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    socket = f"cn-bench-down-{os.getpid()}"
    os.environ["COMM_NODE_TMUX_SOCKET"] = socket
    times: dict[str, list[float]] = {"down (parallel)": [], "one after another": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            parts = ['[project]\nname = "bench"\n']
            for i in range(n):
                (root / f"a{i}").mkdir()
                parts.append(f'[[domains]]\nname = "a{i}"\npath = "a{i}"\ncommand = "{AGENT}"\n')
            (root / "comm-node.toml").write_text("\n".join(parts))
            for _ in range(runs):
                for label, stop in (
                    ("down (parallel)", lambda ap: ap.down()),
                    ("one after another", serial_down),
                ):
                    ap, pids = started(root, n)
                    t0 = time.perf_counter()
                    stop(ap)
                    times[label].append(time.perf_counter() - t0)
                    assert not any(alive(p) for p in pids) and not ap.tmux.has_session()
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
    print(machine())
    for label, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"{label}: {n} stubborn agents, median {median(values):.2f} s ({shown})")


if __name__ == "__main__":
    main()
