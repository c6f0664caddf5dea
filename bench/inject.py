"""1,000 injections of mixed texts into 10 panes: how many arrive exactly and are submitted,
and the time per injection (goal: all of them).

A private tmux server, 10 fake Claude-like agents (comm_node_tui.demo.fake_agent), one
thread per pane injecting its share in turn. Usage: python bench/inject.py [TOTAL] [PANES]
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import machine, median, pct

from comm_node_tui.panes.manager import AgentPanes
from comm_node_tui.workspace.discovery import load_workspace

BASE = [
    "one line",
    "-leading dash",
    "ends with a semicolon;",
    "#{pane_id} #(id) $(whoami)",
    "Enter",
    "C-c",
    "unicode: naïve café ✓ 日本語 🚀",
    "tabs\tbetween\twords",
    "first line\nsecond line\n\nfourth",
    "Please review artifacts/api.yaml and reply",
]


def texts(rng: random.Random, n: int) -> list[str]:
    out = []
    for i in range(n):
        t = rng.choice(BASE)
        if i % 25 == 0:
            t = "long " + "lorem ipsum " * rng.randrange(100, 900)  # 1 to 11 KB
        out.append(f"{t} #{i}")
    return out


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_panes = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    socket = f"cn-bench-{os.getpid()}"
    os.environ["COMM_NODE_TMUX_SOCKET"] = socket
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        parts = ['[project]\nname = "bench"\n']
        names = [f"p{i:02d}" for i in range(n_panes)]
        for name in names:
            (root / name).mkdir()
            parts.append(
                f'[[domains]]\nname = "{name}"\npath = "{name}"\ncommand = '
                f'"{sys.executable} -m comm_node_tui.demo.fake_agent --busy 0.02 '
                f'--log {root / name}.log"\n'
            )
        (root / "comm-node.toml").write_text("\n".join(parts))
        ap = AgentPanes(load_workspace(str(root)))
        try:
            ap.up()
            for name in names:
                while "❯" not in ap.peek(name):
                    time.sleep(0.05)
            plan = {name: texts(rng, total // n_panes) for name in names}
            times: list[float] = []
            unconfirmed = [0]
            lock = threading.Lock()

            def worker(name: str) -> None:
                mine = AgentPanes(ap.ws, ap.coord)  # one tmux client per thread
                for text in plan[name]:
                    t0 = time.perf_counter()
                    res = mine.inject(name, text)
                    dt = time.perf_counter() - t0
                    with lock:
                        times.append(dt)
                        unconfirmed[0] += not res["confirmed"]

            t_start = time.perf_counter()
            threads = [threading.Thread(target=worker, args=(n,)) for n in names]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t_start
            time.sleep(1.0)
            exact = 0
            for name in names:
                got = [
                    json.loads(x)["text"]
                    for x in (root / f"{name}.log").read_text().splitlines()
                    if json.loads(x)["event"] == "submit"
                ]
                exact += sum(1 for a, b in zip(got, plan[name], strict=False) if a == b)
                if len(got) != len(plan[name]):
                    print(f"{name}: {len(got)} submitted of {len(plan[name])}")
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
    done = len(times)
    print(f"machine: {machine()}")
    print(f"{done} injections into {n_panes} panes ({done // n_panes} each, panes in parallel)")
    print(
        f"arrived exactly and submitted: {exact}/{done}; unconfirmed by the screen check: "
        f"{unconfirmed[0]}"
    )
    print(
        f"per injection: median {median(times) * 1000:.0f} ms, p95 "
        f"{pct(times, 95) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
        f"wall {wall:.1f} s"
    )


if __name__ == "__main__":
    main()
